"""Collect every model's evaluation into one table: per language, per iteration.

Writes metrics/summary.json (the newest iteration's metrics under stable keys, so `dvc metrics diff`
across per-iteration commits compares like with like), a wide CSV per metric for `dvc plots`
(one row per model, one column per language: MGSM accuracy and off-target rate, X-AlpacaEval win rate,
head-to-head win rate against the previous model) and a Markdown report.

    python -m stages.summarize --evals metrics/eval --judges metrics/judge --summary metrics/summary.json \
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


def load_judges(judges: Path, models: list[str]) -> tuple[pl.DataFrame, list[dict]]:
    """Win rates (step, model, lang, win_rate) and head-to-head rows (model, opponent, lang, win, tie, lose)."""
    rates, h2h = [], []
    for step, model in enumerate(models):
        path = judges / f"{model}.json"
        if not path.exists():
            raise DataError(f"{path}: missing; run `dvc repro` to judge {model}")
        data = json.loads(path.read_text(encoding="utf-8"))
        for lang, m in data["alpaca"].items():
            rates.append({"step": step, "model": model, "lang": lang, "win_rate": m["win_rate"]})
        for name, comp in data["head_to_head"].items():
            for lang, m in comp["per_lang"].items():
                h2h.append(
                    {"step": step, "model": model, "against": name, "opponent": comp["opponent"], "lang": lang, **m}
                )
    schema = {"step": pl.Int64, "model": pl.String, "lang": pl.String, "win_rate": pl.Float64}
    return pl.DataFrame(rates, schema=schema), h2h


def h2h_markdown(rows: list[dict]) -> str:
    head = "| model | against | lang | win | tie | lose | win rate |\n|---|---|---|---|---|---|---|\n"
    return head + "".join(
        f"| {r['model']} | {r['against']} ({r['opponent']}) | {r['lang']} | "
        f"{r['win']} | {r['tie']} | {r['lose']} | {r['win_rate']} |\n"
        for r in rows
    )


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
    rates, h2h = load_judges(Path(args.judges), models)
    newest_rates = rates.filter(pl.col("model") == newest)
    summary["alpaca"] = {r["lang"]: {"win_rate": r["win_rate"]} for r in newest_rates.iter_rows(named=True)}
    valid = newest_rates["win_rate"].drop_nulls()
    summary["alpaca_avg"] = {"win_rate": round(valid.mean(), 2) if len(valid) else None}
    summary["head_to_head"] = {}
    for r in (r for r in h2h if r["model"] == newest):
        counts = {k: r[k] for k in ("win", "tie", "lose", "win_rate")}
        summary["head_to_head"].setdefault(r["against"], {})[r["lang"]] = counts
    write_json(args.summary, summary)
    previous = pl.DataFrame(
        [r for r in h2h if r["against"] == "previous"] or None,
        schema={"step": pl.Int64, "model": pl.String, "lang": pl.String, "win_rate": pl.Float64},
    )
    with atomic_path(args.plots, directory=True) as tmp:
        for metric in ("accuracy", "off_target_rate"):
            wide = table.pivot(on="lang", index=["step", "model"], values=metric).sort("step")
            wide.write_csv(tmp / f"mgsm_{metric}.csv")
        for name, df in (("alpaca_win_rate", rates), ("h2h_previous_win_rate", previous)):
            if len(df):
                df.pivot(on="lang", index=["step", "model"], values="win_rate").sort("step").write_csv(
                    tmp / f"{name}.csv"
                )
    report = [
        f"# lidr run report\n\nNewest model: {newest} (iteration {len(models) - 1}).\n",
        "## MGSM accuracy\n",
        markdown(table, "accuracy"),
        "\n## MGSM off-target rate (answers not in the question's language)\n",
        markdown(table, "off_target_rate"),
    ]
    if len(rates):
        report += ["\n## X-AlpacaEval win rate (%) against the reference\n", markdown(rates, "win_rate")]
    if h2h:
        report += ["\n## Head-to-head (both orders; a tie when they disagree)\n", h2h_markdown(h2h)]
    write_text(args.report, "\n".join(report))
    print("\n".join(report))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--evals", "--judges", "--summary", "--plots", "--report"):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
