"""Collect every model's measures into one report: per language, per iteration, each with n and a 95% interval.

Reads metrics/eval (MGSM, language fidelity), metrics/likelihood (reference likelihood), metrics/compare (each
iteration paired with m0 on the same items: fidelity, MGSM, the likelihood's gain and contrast),
metrics/preference (held-out preference accuracy), metrics/judge (LLM-judge win rates and the judge's mass on
its verdict tokens), metrics/head_to_head (each iteration against its starting model and m0),
metrics/gate (pairs kept per language and type), metrics/train (the final training loss), dvclive (training
curves) and metrics/cost (each stage's seconds and tokens/s, written to their own report, since they differ
from run to run).

Writes
- metrics/summary.json: the newest iteration's headline measures, averaged over the trained languages, under
  keys that are the same for every iteration (`dvc metrics show`, `dvc metrics diff` across per-iteration
  commits, `dvc exp show`): iteration, fidelity_gain (paired difference with m0), heldout_x_acc,
  ll_contrast (reference-likelihood contrast with the dominant language), mgsm (when measured), and the
  decision rule's counts goal_a, goal_b, goal_c and goal (lidr.decision); with more than one
  chain running, one such object per chain
  ({"general": {...}, "math": {...}});
- metrics/headline/<model>/<lang>.json (and avg.json): the same measures, with fidelity, kept_x_pairs,
  heldout_en_acc and win_rate, per model and language: a compact second group (`dvc metrics show -R metrics/headline`);
- plots/<measure>.csv: one row per model and language (iteration, model, lang, value, low, high), drawn by
  `dvc plots show` with the models on the x axis (with several chains, each line is "<chain>:<lang>" and starts
  at m0); plots/training_<curve>.csv: one row per iteration and step;
  PNGs of the headline measures and the training loss, embedded in the report.
  The dominant language's pairs are of type `en` by default; with another dominant language d, their
  measures are named after it: heldout_<d>_acc, plots/heldout_<d>_pair_accuracy.csv.
- metrics/report.md: every table, and one sentence on whether the effect is significant; metrics/cost.md.

The tables, the summary and the report's text are lidr.report's; this stage reads the metrics, draws the PNGs
(lidr.plots) and writes the files.

    python -m stages.summarize --evals metrics/eval --compares metrics/compare --judges metrics/judge \
        --head-to-heads metrics/head_to_head --preference metrics/preference --likelihoods metrics/likelihood \
        --gates metrics/gate \
        --costs metrics/cost --trains metrics/train --live dvclive \
        --summary metrics/summary.json --headline metrics/headline --plots plots \
        --report metrics/report.md --cost-report metrics/cost.md
"""

import json
from pathlib import Path

import polars as pl

from lidr import plots, report, stage
from lidr.config import BASE_MODEL_KEY, chain_order, evaluated_order, iteration_order
from lidr.errors import DataError
from lidr.io import atomic_path, write_json, write_text

# dvclive's curves of each training run, drawn with one line per iteration
TRAINING_CURVES = ("loss", "nll", "dpo_loss", "rewards/margins", "rewards/accuracies", "learning_rate")


def read(path: Path, what: str) -> dict:
    if not path.exists():
        raise DataError(f"{path}: missing; run `dvc repro` to {what}")
    return json.loads(path.read_text(encoding="utf-8"))


def training_curve(live: Path, iterations: list[str], name: str) -> list[dict]:
    """dvclive's `<live>/<it>/plots/metrics/<name>.tsv` of every iteration, as rows {model, step, value}."""
    rows = []
    for it in iterations:
        path = live / it / "plots" / "metrics" / f"{name}.tsv"
        if not path.exists():
            raise DataError(f"{path}: missing; run `dvc repro train@{it}` to write the training curves")
        df = pl.read_csv(path, separator="\t")
        column = name.rsplit("/", 1)[-1]
        rows += [{"model": it, "step": int(s), "value": float(v)} for s, v in zip(df["step"], df[column], strict=True)]
    return rows


def read_run(args, params) -> report.Run:
    """Every model's metrics, an iteration's merged with its comparison with m0 and its head-to-heads."""
    iters = evaluated_order(params)  # the iterations evaluated (eval.models); every iteration is trained
    trained = iteration_order(params)
    models = [BASE_MODEL_KEY, *iters]
    evals = {m: read(Path(args.evals) / f"{m}.json", f"evaluate {m}") for m in models}
    for m in iters:  # an iteration's evaluation, with its pairing with m0's
        evals[m] = {**evals[m], **read(Path(args.compares) / f"{m}.json", f"compare {m} with m0")}
    judges = {m: read(Path(args.judges) / f"{m}.json", f"judge {m}") for m in models}
    for m in iters:  # with its head-to-heads (and, for eval.alpaca.reference "previous", its reference table)
        h2h = read(Path(args.head_to_heads) / f"{m}.json", f"judge {m} head-to-head")
        judges[m] = report.with_head_to_head(judges[m], h2h)
    return report.Run(
        iters=iters,
        chains={
            c: [k for k in keys if k in iters] for c, keys in chain_order(params).items() if set(keys) & set(iters)
        },
        trained=chain_order(params),
        others=list(params.languages.others),
        dominant=params.languages.dominant,
        evals=evals,
        judges=judges,
        pref={m: read(Path(args.preference) / f"{m}.json", f"score {m} on the held-out pairs") for m in iters},
        gates={b: read(Path(args.gates) / f"{b}.json", f"filter {b}'s pairs") for b in [*trained, "heldout"]},
        trains={m: read(Path(args.trains) / f"{m}.json", f"train {m}") for m in trained},
        likelihoods={m: read(Path(args.likelihoods) / f"{m}.json", f"score {m} on the references") for m in models},
    )


def read_costs(costs: Path) -> dict[tuple[str, str], dict]:
    """metrics/cost/<block>/<stage>.json, by (block, stage), sorted."""
    out = {}
    for folder in sorted(costs.iterdir()) if costs.is_dir() else []:
        for f in sorted(folder.glob("*.json")):
            out[(folder.name, f.stem)] = json.loads(f.read_text(encoding="utf-8"))
    return out


def main(args) -> None:
    run = read_run(args, stage.params_of(args))
    trained = [k for keys in run.trained.values() for k in keys]
    axis = [BASE_MODEL_KEY, *trained]  # every model on the x axis: one trained but not evaluated is a gap
    curves = {name: training_curve(Path(args.live), trained, name) for name in TRAINING_CURVES}
    costs = read_costs(Path(args.costs))

    verdicts = report.verdicts(run)
    heads = report.headlines(run)
    measures = report.measures(run)

    with atomic_path(args.plots, directory=True) as tmp:
        for name, values in measures.items():
            report.long_table(axis, values).write_csv(tmp / f"{name}.csv")
        for name, (title, ylabel, chance) in report.PICTURES.items():
            values = report.pictured(measures[name])
            if not any(values.values()):  # a measure that is off (eval.mgsm.enabled, eval.judge.enabled)
                continue
            line, label = chance or (None, "")
            plots.across_iterations(tmp / f"{name}.png", title, axis, values, ylabel, line, label)
        for name, rows in curves.items():
            report.curve_table(rows).write_csv(tmp / f"training_{name.replace('/', '_')}.csv")
        loss = report.curve_points(curves["loss"], trained)
        plots.training_curves(tmp / "training_loss.png", "Training loss (DPO + NLL) per iteration", loss, "loss")
    with atomic_path(args.headline, directory=True) as tmp:
        for m, per_lang in heads.items():
            (tmp / m).mkdir()
            for lang, values in per_lang.items():
                write_json(tmp / m / f"{lang}.json", values)
    write_json(args.summary, report.summary(run, heads, verdicts))

    text = report.report_markdown(run, verdicts, args.plots, args.report, args.cost_report)
    cost = report.cost_markdown(costs)
    write_text(args.report, text)
    write_text(args.cost_report, cost)
    print(text + "\n" + cost)


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in (
        "--evals",
        "--compares",
        "--judges",
        "--head-to-heads",
        "--preference",
        "--likelihoods",
        "--gates",
        "--costs",
        "--trains",
        "--live",
        "--summary",
        "--headline",
        "--plots",
        "--report",
        "--cost-report",
    ):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
