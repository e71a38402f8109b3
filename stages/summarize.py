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

    python -m stages.summarize --evals metrics/eval --compares metrics/compare --judges metrics/judge \
        --head-to-heads metrics/head_to_head --preference metrics/preference --likelihoods metrics/likelihood \
        --gates metrics/gate \
        --costs metrics/cost --trains metrics/train --live dvclive \
        --summary metrics/summary.json --headline metrics/headline --plots plots \
        --report metrics/report.md --cost-report metrics/cost.md
"""

import json
import os
from pathlib import Path

import polars as pl

from lidr import decision, plots, stage
from lidr.config import BASE_MODEL_KEY, chain_order, iteration_order
from lidr.errors import DataError
from lidr.io import atomic_path, write_json, write_text
from lidr.languages import language_name
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


def verdict(newest: str, pref: dict, evals: dict, others: list[str]) -> tuple[dict, str]:
    """The pre-registered decision rule (lidr.decision) for the newest model of a chain, and its sentence."""
    vs_m0 = evals[newest].get("vs_m0", {})
    d = decision.decide(
        others,
        pref.get(newest, {}).get("heldout", {}).get("x", {}),
        vs_m0.get("fidelity", {}),
        evals[BASE_MODEL_KEY]["fidelity"],
        vs_m0.get("likelihood", {}).get("contrast", {}),
    )
    return d, decision.sentence(newest, d, len(others))


# dvclive's curves of each training run, drawn with one line per iteration
TRAINING_CURVES = ("loss", "nll", "dpo_loss", "rewards/margins", "rewards/accuracies", "learning_rate")


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


def headline(
    model: str,
    ev: dict,
    judge: dict,
    pref: dict | None,
    gate: dict | None,
    trained: list[str],
    dominant: str = "en",
) -> dict[str, dict]:
    """The headline measures of one model: {lang: {measure: value}} for every language measured, and "avg" over
    the trained languages (held-out accuracy pooled over their pairs). A measure the model lacks (m0 has no
    held-out accuracy or kept pairs) is left out, so every key reads the same in every file. The training loss
    is in metrics/train and the report, not here: the files stay one readable row each at 120 columns."""
    fid, vs_m0 = ev["fidelity"], ev.get("vs_m0", {}).get("fidelity", {})
    contrast = ev.get("vs_m0", {}).get("likelihood", {}).get("contrast", {})
    heldout = (pref or {}).get("heldout", {})
    kept = (gate or {}).get("kept_by_type", {}).get("x", {})
    langs = dict.fromkeys([*(k for k in fid if k != "all"), *ev["mgsm"], *judge["alpaca"]])

    def one(lang: str) -> dict:
        row = {
            "fidelity": fid.get(lang, {}).get("share"),
            "fidelity_gain": vs_m0.get(lang, {}).get("diff"),
            "heldout_x_acc": heldout.get("x", {}).get(lang, {}).get("accuracy", {}).get("share"),
            f"heldout_{dominant}_acc": heldout.get(dominant, {}).get(lang, {}).get("accuracy", {}).get("share"),
            "ll_contrast": contrast.get(lang, {}).get("mean"),
            "mgsm": ev["mgsm"].get(lang, {}).get("accuracy"),
            "win_rate": judge["alpaca"].get(lang, {}).get("win_rate"),
            "kept_x_pairs": kept.get(lang, 0) if gate is not None and lang in trained else None,
        }
        return {k: v for k, v in row.items() if v is not None}

    out = {lang: one(lang) for lang in langs}
    avg = {
        "fidelity": _mean(fid.get(x, {}).get("share") for x in trained),
        "fidelity_gain": _mean(vs_m0.get(x, {}).get("diff") for x in trained) if vs_m0 else None,
        "heldout_x_acc": heldout.get("x", {}).get("all", {}).get("accuracy", {}).get("share"),
        f"heldout_{dominant}_acc": heldout.get(dominant, {}).get("all", {}).get("accuracy", {}).get("share"),
        "ll_contrast": _mean(contrast.get(x, {}).get("mean") for x in trained) if contrast else None,
        "mgsm": ev["mgsm_avg"]["accuracy"],
        "win_rate": judge.get("alpaca_avg", {}).get("win_rate"),
        "kept_x_pairs": sum(kept.get(x, 0) for x in trained) if gate is not None else None,
    }
    out["avg"] = {k: v for k, v in avg.items() if v is not None}
    return out


def by_chain(values: dict[str, dict], chains: dict[str, list[str]]) -> dict[str, dict]:
    """With several chains, label each line "<chain>:<lang>" and start it at m0; with one, leave the values as
    they are."""
    if len(chains) < 2:
        return values
    out: dict[str, dict] = {}
    for chain, keys in chains.items():
        for m in [BASE_MODEL_KEY, *keys]:
            for lang, v in values.get(m, {}).items():
                out.setdefault(m, {})[f"{chain}:{lang}"] = v
    return out


def long_table(models: list[str], values: dict[str, dict[str, tuple | None]]) -> pl.DataFrame:
    """One row per model and language: iteration index, model, language, value and its 95% interval."""
    rows = [
        {"iteration": i, "model": m, "lang": lang, "value": v[0], "low": v[1], "high": v[2]}
        for i, m in enumerate(models)
        for lang, v in values.get(m, {}).items()
        if v is not None
    ]
    schema = {"iteration": pl.Int64, "model": pl.String, "lang": pl.String}
    return pl.DataFrame(rows, schema={**schema, "value": pl.Float64, "low": pl.Float64, "high": pl.Float64})


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


def main(args) -> None:
    params = stage.params_of(args)
    iters = iteration_order(params)
    chains = chain_order(params)
    models = [BASE_MODEL_KEY, *iters]
    newest = {chain: keys[-1] for chain, keys in chains.items()}
    others = list(params.languages.others)
    dominant = params.languages.dominant
    evals = {m: read(Path(args.evals) / f"{m}.json", f"evaluate {m}") for m in models}
    for m in iters:  # an iteration's evaluation, with its pairing with m0's
        evals[m] = {**evals[m], **read(Path(args.compares) / f"{m}.json", f"compare {m} with m0")}
    judges = {m: read(Path(args.judges) / f"{m}.json", f"judge {m}") for m in models}
    for m in iters:  # with its head-to-heads (and, for eval.alpaca.reference "previous", its reference table)
        h2h = read(Path(args.head_to_heads) / f"{m}.json", f"judge {m} head-to-head")
        judges[m] = {**judges[m], **{k: v for k, v in h2h.items() if v or k not in judges[m]}}
    pref = {m: read(Path(args.preference) / f"{m}.json", f"score {m} on the held-out pairs") for m in iters}
    gates = {b: read(Path(args.gates) / f"{b}.json", f"filter {b}'s pairs") for b in [*iters, "heldout"]}

    trains = {m: read(Path(args.trains) / f"{m}.json", f"train {m}") for m in iters}
    verdicts = {chain: verdict(n, pref, evals, others) for chain, n in newest.items()}
    sentences = [sentence for _, sentence in verdicts.values()]
    likelihoods = {m: read(Path(args.likelihoods) / f"{m}.json", f"score {m} on the references") for m in models}

    # --- headline measures: per model and language, and averaged over the trained languages
    heads = {m: headline(m, evals[m], judges[m], pref.get(m), gates.get(m), others, dominant) for m in models}

    # one row that fits a 120-column `dvc metrics show`: the rule's measures and counts (the headline files hold
    # fidelity, kept pairs, the dominant pairs and the win rate; metrics/train the loss)
    def chain_summary(chain: str) -> dict:
        d = verdicts[chain][0]
        row = {
            "iteration": len(chains[chain]),
            **heads[newest[chain]]["avg"],
            **{f"goal_{p}": d["count"][p] for p in d["count"]},
            "goal": d["reached"],
        }
        left_out = ("fidelity", "kept_x_pairs", f"heldout_{dominant}_acc", "win_rate")
        return {k: v for k, v in row.items() if k not in left_out}

    if len(chains) == 1:
        summary = chain_summary(next(iter(chains)))
    else:
        summary = {chain: chain_summary(chain) for chain in chains}

    # --- plots: one long CSV per measure (model, language, value, 95% interval), a PNG for the report
    def point(v: dict | None, value: str = "share") -> tuple | None:
        if not v or v.get(value) is None:
            return None
        ci = v.get("accuracy_ci95" if value == "accuracy" else "ci95")
        return (v[value], *ci) if ci else (v[value], None, None)

    measures = {
        "heldout_x_pair_accuracy": {
            m: {k: point(v["accuracy"]) for k, v in pref[m]["heldout"].get("x", {}).items()} for m in iters
        },
        f"heldout_{dominant}_pair_accuracy": {
            m: {k: point(v["accuracy"]) for k, v in pref[m]["heldout"].get(dominant, {}).items()} for m in iters
        },
        "language_fidelity": {m: {k: point(v) for k, v in evals[m]["fidelity"].items()} for m in models},
        "reference_likelihood": {
            m: {k: point(v, "mean") for k, v in likelihoods[m]["likelihood"].items()} for m in models
        },
        "likelihood_contrast": {
            m: {k: point(v, "mean") for k, v in evals[m]["vs_m0"]["likelihood"]["contrast"].items()} for m in iters
        },
        "mgsm_accuracy": {m: {k: point(v, "accuracy") for k, v in evals[m]["mgsm"].items()} for m in models},
        "mgsm_off_target_rate": {
            m: {k: (v["off_target_rate"], None, None) for k, v in evals[m]["mgsm"].items()} for m in models
        },
        "alpaca_win_rate": {
            m: {k: (v["win_rate"], None, None) for k, v in judges[m]["alpaca"].items() if v["win_rate"] is not None}
            for m in models
        },
    }
    measures = {name: by_chain(values, chains) for name, values in measures.items()}
    pictures = {
        "heldout_x_pair_accuracy": (
            "Held-out preference accuracy, x-prompt pairs (95% CI)",
            "accuracy",
            (0.5, "chance"),
        ),
        "language_fidelity": ("Language fidelity: answers in the asked language (95% CI)", "share of answers", None),
        "reference_likelihood": ("Reference likelihood (95% CI)", "log-likelihood per token (nats)", None),
        "likelihood_contrast": (
            "Reference-likelihood contrast with English, against m0 (95% CI)",
            "gain in x minus gain in en (nats/token)",
            (0.0, "no difference"),
        ),
        "mgsm_accuracy": ("MGSM accuracy (95% CI)", "accuracy", None),
        "alpaca_win_rate": ("LLM-judge win rate against the reference (%)", "win rate (%)", (50.0, "chance")),
    }
    curves = {name: training_curve(Path(args.live), iters, name) for name in TRAINING_CURVES}
    with atomic_path(args.plots, directory=True) as tmp:
        for name, values in measures.items():
            long_table(models, values).write_csv(tmp / f"{name}.csv")
        for name, (title, ylabel, chance) in pictures.items():
            values = {m: {k: v for k, v in d.items() if k != "all"} for m, d in measures[name].items()}
            if not any(values.values()):  # a measure that is off (eval.mgsm.enabled, eval.judge.enabled)
                continue
            line, label = chance or (None, "")
            plots.across_iterations(tmp / f"{name}.png", title, models, values, ylabel, line, label)
        for name, rows in curves.items():
            pl.DataFrame(rows, schema={"model": pl.String, "step": pl.Int64, "value": pl.Float64}).write_csv(
                tmp / f"training_{name.replace('/', '_')}.csv"
            )
        loss = {m: [(r["step"], r["value"]) for r in curves["loss"] if r["model"] == m] for m in iters}
        plots.training_curves(tmp / "training_loss.png", "Training loss (DPO + NLL) per iteration", loss, "loss")
    with atomic_path(args.headline, directory=True) as tmp:
        for m, per_lang in heads.items():
            (tmp / m).mkdir()
            for lang, values in per_lang.items():
                write_json(tmp / m / f"{lang}.json", values)
    write_json(args.summary, summary)

    # --- the report; pictures are linked relative to the report's folder
    def picture(name: str) -> str:
        return Path(os.path.relpath(Path(args.plots) / f"{name}.png", Path(args.report).parent)).as_posix()

    langs_fid = [k for k in evals[BASE_MODEL_KEY]["fidelity"] if k != "all"]
    report = [
        f"# lidr run report\n\nModels: {', '.join(models)} (newest: {', '.join(newest.values())}). Every share is "
        "given with its 95% interval and n; every comparison with m0 is paired on the same items (difference, 95% "
        "interval, exact McNemar p, items gained/lost).\n",
        "\n\n".join(sentences) + "\n",
        "## The decision rule, per language\n",
        'As pre-registered in docs/evaluation.md ("Pre-registered evaluation of the default run"), before the run '
        "it judges: (a) in every trained language, (b) and (c) in at least 3 of 4. What changed after it is "
        'listed there, under "Changed after pre-registration".\n',
    ]
    for chain, (d, _) in verdicts.items():
        n = newest[chain]
        x_acc = pref[n]["heldout"].get("x", {})
        fid = evals[n]["vs_m0"]["fidelity"]
        con = evals[n]["vs_m0"]["likelihood"]["contrast"]

        def mark(ok: bool) -> str:
            return "yes" if ok else "no"

        rows = [
            [
                x,
                fmt_share((x_acc.get(x) or {}).get("accuracy")),
                mark(d["parts"]["a"][x]),
                fmt_paired(fid.get(x)),
                mark(d["parts"]["b"][x]),
                f"{fmt_mean(con.get(x))} (n={(con.get(x) or {}).get('n', 0)})",
                mark(d["parts"]["c"][x]),
            ]
            for x in others
        ]
        report.append(
            (f"{n} against m0:\n\n" if len(verdicts) > 1 else "")
            + table(
                [
                    "language",
                    "(a) held-out x-pair accuracy",
                    "(a)",
                    "(b) fidelity, paired with m0",
                    "(b)",
                    "(c) likelihood contrast x - en",
                    "(c)",
                ],
                rows,
            )
        )
    report += [
        "\n## Held-out preference accuracy\n",
        f"![held-out preference accuracy on x-prompt pairs]({picture('heldout_x_pair_accuracy')})\n",
        "m0's LIDR pairs on the held-out block (prompts no iteration trains on), scored by each model's implicit "
        "reward against m0: the share of pairs whose chosen log-ratio exceeds the rejected one, and the mean "
        "margin in nats. m0's margin is 0 by construction; chance is 50%. `x`: the "
        f"{language_name(dominant)} answer translated into x over the model's own x answer (the language-imbalance "
        f"signal); `{dominant}`: the {language_name(dominant)} answer over the x answer translated into "
        f"{language_name(dominant)}.\n",
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
    ll_langs = list(likelihoods[BASE_MODEL_KEY]["likelihood"])
    report += [
        "\n## Reference likelihood\n",
        "Mean log-likelihood per token (nats) of the first tokens of the reference answers given the instruction; "
        "against m0 per item, the gain, and per language x the contrast: the gain in x minus the gain in "
        f"{language_name(dominant)} on the same item.\n",
        f"![reference-likelihood contrast]({picture('likelihood_contrast')})\n",
        table(
            ["model", *ll_langs],
            [[m, *(fmt_mean(likelihoods[m]["likelihood"].get(k)) for k in ll_langs)] for m in models],
        ),
        "\nGain against m0, per item:\n",
        table(
            ["model", *ll_langs],
            [[m, *(fmt_mean(evals[m]["vs_m0"]["likelihood"]["gain"].get(k)) for k in ll_langs)] for m in iters],
        ),
        f"\nContrast (gain in x minus gain in {dominant}), per item:\n",
        table(
            ["model", *others],
            [[m, *(fmt_mean(evals[m]["vs_m0"]["likelihood"]["contrast"].get(k)) for k in others)] for m in iters],
        ),
    ]
    mg_langs = list(evals[BASE_MODEL_KEY]["mgsm"])
    if mg_langs:
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
    rows, masses = [], []
    for m in models:
        for lang, v in judges[m]["alpaca"].items():
            mass = v.get("verdict_mass")
            masses.append(mass or 0.0)
            rows.append([m, lang, v["win_rate"], v["n"], "-" if mass is None else f"{mass:.4f}"])
    if rows:
        report += [
            "\n## LLM judge (X-AlpacaEval-style win rate against the reference outputs)\n",
            f"![LLM-judge win rate]({picture('alpaca_win_rate')})\n",
        ]
        report.append(table(["model", "language", "win rate (%)", "n", "judge's mass on its verdict tokens"], rows))
    judge_name = judges[models[-1]].get("judge", "")
    if masses and max(masses) < CHANCE_JUDGE_MASS:
        report.append(
            f"\nThe judge ({judge_name}) puts at most {max(masses):.2%} of its probability on the two verdict tokens: "
            "it is at chance, and these win rates are noise around 50%, not a result. Use a capable judge "
            "(`eval.judge.kind: openai`) for a real win rate.\n"
        )
    off = [
        name
        for name, on in (
            ("MGSM (eval.mgsm.enabled)", bool(mg_langs)),
            ("the LLM judge (eval.judge.enabled)", bool(rows)),
        )
        if not on
    ]
    if off:
        report.append(f"\nNot measured in this run: {' and '.join(off)}; each is one params line away.\n")
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
    report += [
        "\n## Training\n",
        f"![training loss per iteration]({picture('training_loss')})\n",
        table(
            ["model", "pairs", "steps", "final loss", "final NLL"],
            [[m, t["pairs"], t["steps"], t["final_loss"], t["final_nll"]] for m, t in trains.items()],
        ),
    ]
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
