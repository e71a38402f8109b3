"""Collect every model's evaluation into one table: per language, per iteration.

Writes metrics/summary.json (the newest iteration's metrics under stable keys, so `dvc metrics diff`
across per-iteration commits compares like with like), a wide CSV per metric for `dvc plots`
(one row per model, one column per language) and a Markdown report.

    python -m stages.summarize --evals metrics/eval --summary metrics/summary.json \
        --plots plots --report metrics/report.md
"""

import json
from pathlib import Path

import polars as pl

from lidr import stage
from lidr.config import BASE_MODEL_KEY, iteration_order
from lidr.errors import DataError
from lidr.io import atomic_path, write_json, write_text


def load_table(evals: Path, models: list[str]) -> pl.DataFrame:
    rows = []
    for step, model in enumerate(models):
        path = evals / f"{model}.json"
        if not path.exists():
            raise DataError(f"{path}: missing; run `dvc repro` to evaluate {model}")
        data = json.loads(path.read_text(encoding="utf-8"))
        for lang, m in data["mgsm"].items():
            rows.append({"step": step, "model": model, "lang": lang, **m})
    return pl.DataFrame(rows)


def markdown(table: pl.DataFrame, metric: str) -> str:
    wide = table.pivot(on="lang", index=["step", "model"], values=metric).sort("step").drop("step")
    langs = [c for c in wide.columns if c != "model"]
    wide = wide.with_columns(pl.mean_horizontal(langs).round(4).alias("avg"))
    head = "| " + " | ".join(wide.columns) + " |\n|" + "---|" * len(wide.columns) + "\n"
    return head + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in wide.iter_rows())


def main(args) -> None:
    params = stage.params_of(args)
    models = [BASE_MODEL_KEY, *iteration_order(params)]
    table = load_table(Path(args.evals), models)
    newest = models[-1]
    latest = table.filter(pl.col("model") == newest)
    summary = {
        "model": len(models) - 1,
        "mgsm": {
            r["lang"]: {"accuracy": r["accuracy"], "off_target_rate": r["off_target_rate"]}
            for r in latest.iter_rows(named=True)
        },
        "mgsm_avg": {
            "accuracy": round(latest["accuracy"].mean(), 4),
            "off_target_rate": round(latest["off_target_rate"].mean(), 4),
        },
    }
    write_json(args.summary, summary)
    with atomic_path(args.plots, directory=True) as tmp:
        for metric in ("accuracy", "off_target_rate"):
            wide = table.pivot(on="lang", index=["step", "model"], values=metric).sort("step")
            wide.write_csv(tmp / f"mgsm_{metric}.csv")
    report = [
        f"# lidr run report\n\nNewest model: {newest} (iteration {len(models) - 1}).\n",
        "## MGSM accuracy\n",
        markdown(table, "accuracy"),
        "\n## MGSM off-target rate (answers not in the question's language)\n",
        markdown(table, "off_target_rate"),
    ]
    write_text(args.report, "\n".join(report))
    print("\n".join(report))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--evals", "--summary", "--plots", "--report"):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
