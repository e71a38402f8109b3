"""Collect every model's measures into one report: per language, per iteration, each with n and a 95% interval.

Reads metrics/eval (MGSM, language fidelity, paired comparisons with m0), metrics/preference (held-out
preference accuracy), metrics/judge (LLM-judge win rates and the judge's mass on its verdict tokens),
metrics/gate (pairs kept per language and type) and metrics/cost (each stage's seconds and tokens/s, written
to their own report, since they differ from run to run).

Writes metrics/summary.json (the newest iteration's headline measures under stable keys, so `dvc metrics
diff` across per-iteration commits compares like with like), a wide CSV per measure for `dvc plots` (one
row per model, one column per language) and a Markdown report that states whether the effect is
significant.

    python -m stages.summarize --evals metrics/eval --judges metrics/judge --preference metrics/preference \
        --gates metrics/gate --costs metrics/cost --summary metrics/summary.json --plots plots \
        --report metrics/report.md --cost-report metrics/cost.md
"""

import json
import os
from pathlib import Path

import polars as pl

from lidr import plots, stage
from lidr.config import BASE_MODEL_KEY, iteration_order
from lidr.errors import DataError
from lidr.io import atomic_path, write_json, write_text
from lidr.stats import fmt_paired, fmt_share

# a local judge that puts less than this on its two verdict tokens answers something else: its
# preference between them is noise around 50%
CHANCE_JUDGE_MASS = 0.5


def read(path: Path, what: str) -> dict:
    if not path.exists():
        raise DataError(f"{path}: missing; run `dvc repro` to {what}")
    return json.loads(path.read_text(encoding="utf-8"))


def table(head: list[str], rows: list[list]) -> str:
    out = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    return out + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in rows)


def fmt_acc(m: dict) -> str:
    ci = m.get("accuracy_ci95")
    return f"{m['accuracy']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] (n={m['n']})" if ci else f"{m['accuracy']:.2f}"


def fmt_mean(m: dict | None) -> str:
    if not m or m.get("mean") is None:
        return "-"
    ci = m.get("ci95")
    return f"{m['mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{m['mean']:+.3f}"


def verdict(newest: str, pref: dict, evals: dict, others: list[str]) -> tuple[str, dict]:
    """One sentence on the goal, and the counts behind it."""
    x = pref.get(newest, {}).get("heldout", {}).get("x", {})
    above = [
        lang for lang in others if lang in x and x[lang]["accuracy"]["ci95"] and x[lang]["accuracy"]["ci95"][0] > 0.5
    ]
    fid = evals[newest].get("vs_m0", {}).get("fidelity", {})
    better = [lang for lang in others if lang in fid and fid[lang]["ci95"] and fid[lang]["ci95"][0] > 0]
    counts = {"x_pairs_above_chance": len(above), "fidelity_above_m0": len(better), "trained_languages": len(others)}
    reached = len(above) == len(others) and len(better) >= min(3, len(others))
    sentence = (
        f"**{'Goal reached' if reached else 'Goal not reached'}.** {newest}'s held-out preference accuracy on "
        f"x-prompt pairs is above 50% with the 95% interval excluding 50% in {len(above)} of {len(others)} trained "
        f"languages ({', '.join(above) or 'none'}), and its language fidelity beats m0's with the interval of the "
        f"paired difference excluding 0 in {len(better)} of {len(others)} ({', '.join(better) or 'none'})."
    )
    return sentence, counts


def main(args) -> None:
    params = stage.params_of(args)
    iters = iteration_order(params)
    models = [BASE_MODEL_KEY, *iters]
    newest = models[-1]
    others = list(params.languages.others)
    evals = {m: read(Path(args.evals) / f"{m}.json", f"evaluate {m}") for m in models}
    judges = {m: read(Path(args.judges) / f"{m}.json", f"judge {m}") for m in models}
    pref = {m: read(Path(args.preference) / f"{m}.json", f"score {m} on the held-out pairs") for m in iters}
    gates = {b: read(Path(args.gates) / f"{b}.json", f"filter {b}'s pairs") for b in [*iters, "heldout"]}

    # --- summary.json: the newest iteration's headline measures
    e, j, pr = evals[newest], judges[newest], pref.get(newest, {}).get("heldout", {})
    sentence, counts = verdict(newest, pref, evals, others)
    summary = {
        "model": len(models) - 1,
        "fidelity": {lang: m["share"] for lang, m in e["fidelity"].items()},
        "fidelity_vs_m0": {lang: m["diff"] for lang, m in e.get("vs_m0", {}).get("fidelity", {}).items()},
        "heldout_accuracy": {
            t: {lang: m["accuracy"]["share"] for lang, m in per_lang.items()} for t, per_lang in pr.items()
        },
        "mgsm": {lang: {"accuracy": m["accuracy"]} for lang, m in e["mgsm"].items()},
        "mgsm_avg": {"accuracy": e["mgsm_avg"]["accuracy"]},
        "alpaca": {lang: {"win_rate": m["win_rate"]} for lang, m in j["alpaca"].items()},
        "kept_x_pairs": gates[newest].get("kept_by_type", {}).get("x", {}) if newest in gates else {},
        "goal": counts,
    }
    write_json(args.summary, summary)

    # --- plots: one CSV per measure, one row per model, one column per language
    def wide(values: dict[str, dict[str, float | None]]) -> pl.DataFrame:
        rows = [{"step": i, "model": m, **values[m]} for i, m in enumerate(models) if m in values]
        return pl.DataFrame(rows)

    measures = {
        "mgsm_accuracy": {m: {k: v["accuracy"] for k, v in evals[m]["mgsm"].items()} for m in models},
        "mgsm_off_target_rate": {m: {k: v["off_target_rate"] for k, v in evals[m]["mgsm"].items()} for m in models},
        "language_fidelity": {
            m: {k: v["share"] for k, v in evals[m]["fidelity"].items() if k != "all"} for m in models
        },
        "alpaca_win_rate": {m: {k: v["win_rate"] for k, v in judges[m]["alpaca"].items()} for m in models},
        "heldout_x_pair_accuracy": {
            BASE_MODEL_KEY: {x: 0.0 for x in others},
            **{
                m: {k: v["accuracy"]["share"] for k, v in pref[m]["heldout"].get("x", {}).items() if k != "all"}
                for m in iters
            },
        },
    }

    def with_ci(per_model: dict[str, dict], pick) -> dict[str, dict]:
        return {m: {k: pick(v) for k, v in d.items() if k != "all"} for m, d in per_model.items()}

    def share_point(v: dict):
        return None if v.get("share") is None else (v["share"], *v["ci95"])

    pictures = {
        "heldout_x_pair_accuracy": (
            "Held-out preference accuracy, x-prompt pairs (95% CI)",
            "accuracy (margin > 0)",
            0.5,
            with_ci({m: pref[m]["heldout"].get("x", {}) for m in iters}, lambda v: share_point(v["accuracy"])),
        ),
        "language_fidelity": (
            "Language fidelity: answers in the asked language (95% CI)",
            "share of answers",
            None,
            with_ci({m: evals[m]["fidelity"] for m in models}, share_point),
        ),
        "mgsm_accuracy": (
            "MGSM accuracy (95% CI)",
            "accuracy",
            None,
            {
                m: {
                    k: (v["accuracy"], *v["accuracy_ci95"]) if v.get("accuracy_ci95") else v["accuracy"]
                    for k, v in evals[m]["mgsm"].items()
                }
                for m in models
            },
        ),
        "alpaca_win_rate": (
            "LLM-judge win rate against the reference (%)",
            "win rate (%)",
            50.0,
            measures["alpaca_win_rate"],
        ),
    }
    with atomic_path(args.plots, directory=True) as tmp:
        for name, values in measures.items():
            wide(values).write_csv(tmp / f"{name}.csv")
        for name, (title, ylabel, chance, values) in pictures.items():
            plots.across_iterations(tmp / f"{name}.png", title, models, values, ylabel, chance=chance)

    # --- the report; pictures are linked relative to the report's folder
    def picture(name: str) -> str:
        return Path(os.path.relpath(Path(args.plots) / f"{name}.png", Path(args.report).parent)).as_posix()

    langs_fid = [k for k in evals[BASE_MODEL_KEY]["fidelity"] if k != "all"]
    report = [
        f"# lidr run report\n\nModels: {', '.join(models)} (newest: {newest}). Every share is given with its 95% "
        "interval and n; every comparison with m0 is paired on the same items (difference, 95% interval, exact "
        "McNemar p, items gained/lost).\n",
        sentence + "\n",
        "## Held-out preference accuracy\n",
        f"![held-out preference accuracy on x-prompt pairs]({picture('heldout_x_pair_accuracy')})\n",
        "m0's LIDR pairs on the held-out block (prompts no iteration trains on), scored by each model's implicit "
        "reward against m0: the share of pairs whose chosen log-ratio exceeds the rejected one, and the mean "
        "margin in nats. m0's margin is 0 by construction; chance is 50%. `x`: the English answer translated "
        "into x over the model's own x answer (the language-imbalance signal); `en`: the English answer over "
        "the x answer translated into English.\n",
    ]
    rows = []
    for m in iters:
        for t, per_lang in pref[m]["heldout"].items():
            for lang, v in per_lang.items():
                rows.append([m, t, lang, fmt_share(v["accuracy"]), fmt_mean(v["margin"]), v["p_sign"]])
    report.append(
        table(["model", "pair type", "language", "accuracy [95% CI]", "mean margin [95% CI]", "sign p"], rows)
    )
    report += [
        "\n## Language fidelity\n",
        "Share of answers to the instruction set written in the asked language.\n",
        f"![language fidelity]({picture('language_fidelity')})\n",
    ]
    report.append(
        table(
            ["model", *langs_fid, "all"],
            [[m, *(fmt_share(evals[m]["fidelity"][k]) for k in [*langs_fid, "all"])] for m in models],
        )
    )
    report.append("\nPaired against m0 (same instructions):\n")
    report.append(
        table(
            ["model", *langs_fid, "all"],
            [[m, *(fmt_paired(evals[m]["vs_m0"]["fidelity"].get(k)) for k in [*langs_fid, "all"])] for m in iters],
        )
    )
    mg_langs = list(evals[BASE_MODEL_KEY]["mgsm"])
    report += ["\n## MGSM accuracy\n", f"![MGSM accuracy]({picture('mgsm_accuracy')})\n"]
    report.append(
        table(["model", *mg_langs], [[m, *(fmt_acc(evals[m]["mgsm"][k]) for k in mg_langs)] for m in models])
    )
    report.append("\nPaired against m0:\n")
    report.append(
        table(
            ["model", *mg_langs, "all"],
            [[m, *(fmt_paired(evals[m]["vs_m0"]["mgsm"].get(k)) for k in [*mg_langs, "all"])] for m in iters],
        )
    )
    report += [
        "\n## LLM judge (X-AlpacaEval-style win rate against the reference outputs)\n",
        f"![LLM-judge win rate]({picture('alpaca_win_rate')})\n",
    ]
    rows, masses = [], []
    for m in models:
        for lang, v in judges[m]["alpaca"].items():
            mass = v.get("verdict_mass")
            masses.append(mass or 0.0)
            rows.append([m, lang, v["win_rate"], v["n"], "-" if mass is None else f"{mass:.4f}"])
    report.append(table(["model", "language", "win rate (%)", "n", "judge's mass on its verdict tokens"], rows))
    judge_name = judges[newest].get("judge", "")
    if masses and max(masses) < CHANCE_JUDGE_MASS:
        report.append(
            f"\nThe judge ({judge_name}) puts at most {max(masses):.2%} of its probability on the two verdict tokens: "
            "it is at chance, and these win rates are noise around 50%, not a result. Use a capable judge "
            "(`eval.judge.kind: openai`) for a real win rate.\n"
        )
    report += ["\n## Pairs kept by the gate\n", "Per block, pair type and the language the pair was built for.\n"]
    rows = []
    for b, g in gates.items():
        for t, per_lang in g.get("kept_by_type", {}).items():
            rows.append(
                [
                    b,
                    t,
                    *(per_lang.get(x, 0) for x in others),
                    g["total"]["kept"],
                    g["total"]["kept"] + g["total"]["rejected"],
                ]
            )
    report.append(table(["block", "pair type", *others, "kept (all types)", "pairs (all types)"], rows))
    report.append(
        f"\nEach stage's seconds and tokens/s: {Path(args.cost_report).name} (they differ from run to run).\n"
    )
    rows = []
    for folder in sorted(Path(args.costs).iterdir()) if Path(args.costs).is_dir() else []:
        for f in sorted(folder.glob("*.json")):
            c = json.loads(f.read_text(encoding="utf-8"))
            rows.append(
                [folder.name, f.stem, c.get("seconds"), c.get("generated_tokens", "-"), c.get("tokens_per_s", "-")]
            )
    cost = "# lidr run cost\n\n" + table(["block", "stage", "seconds", "generated tokens", "tokens/s"], rows)
    write_text(args.report, "\n".join(report))
    write_text(args.cost_report, cost)
    print("\n".join(report) + "\n" + cost)


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in (
        "--evals",
        "--judges",
        "--preference",
        "--gates",
        "--costs",
        "--summary",
        "--plots",
        "--report",
        "--cost-report",
    ):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
