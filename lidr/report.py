"""The run report's content, as pure functions of the metrics that stages.summarize reads.

`Run` holds every model's metrics; from it come the decision rule's verdict per chain (`verdicts`), the
headline measures per model and language (`headlines`), the summary row(s) of metrics/summary.json
(`summary`), the long tables behind the plots (`measures`, `long_table`), the report's markdown
(`report_markdown`) and the cost report's (`cost_markdown`). Reading and writing files is the stage's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from lidr import decision
from lidr.config import BASE_MODEL_KEY
from lidr.languages import language_name
from lidr.stats import fmt_paired, fmt_share

# a local judge that puts less than this on its two verdict tokens answers something else: its
# preference between them is noise around 50%
CHANCE_JUDGE_MASS = 0.5

# the measures drawn as PNGs for the report: (title, y label, (chance line, its label) or None)
PICTURES = {
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


@dataclass(frozen=True)
class Run:
    """Every model's metrics, as the stages wrote them.

    `iters`, `chains`: the evaluated iterations (eval.models), in order and per chain; `trained`: every iteration,
    per chain. `evals`: metrics/eval per model, an iteration's merged with its metrics/compare (`vs_m0`); `judges`:
    metrics/judge per model, an iteration's merged with its metrics/head_to_head (`with_head_to_head`);
    `pref`: per evaluated iteration; `trains`: per iteration; `gates`: per iteration and "heldout";
    `likelihoods`: per model.
    """

    iters: list[str]
    chains: dict[str, list[str]]
    trained: dict[str, list[str]]
    others: list[str]
    dominant: str
    evals: dict[str, dict]
    judges: dict[str, dict]
    pref: dict[str, dict]
    gates: dict[str, dict]
    trains: dict[str, dict]
    likelihoods: dict[str, dict]

    @property
    def models(self) -> list[str]:
        return [BASE_MODEL_KEY, *self.iters]

    @property
    def newest(self) -> dict[str, str]:
        """Each chain's newest evaluated model."""
        return {chain: keys[-1] for chain, keys in self.chains.items()}


def with_head_to_head(judge: dict, h2h: dict) -> dict:
    """An iteration's judge metrics with its head-to-heads (and, for eval.alpaca.reference "previous", its
    reference table): a key of the head-to-head metrics replaces the judge's unless it is empty."""
    return {**judge, **{k: v for k, v in h2h.items() if v or k not in judge}}


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


def verdicts(run: Run) -> dict[str, tuple[dict, str]]:
    """Per chain, the decision rule for its newest model and its sentence."""
    return {chain: verdict(n, run.pref, run.evals, run.others) for chain, n in run.newest.items()}


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


def headlines(run: Run) -> dict[str, dict[str, dict]]:
    """The headline measures of every model, per language and averaged over the trained languages."""
    return {
        m: headline(m, run.evals[m], run.judges[m], run.pref.get(m), run.gates.get(m), run.others, run.dominant)
        for m in run.models
    }


def summary(run: Run, heads: dict[str, dict[str, dict]], verdicts: dict[str, tuple[dict, str]]) -> dict:
    """metrics/summary.json: per chain, one row that fits a 120-column `dvc metrics show`: the newest model's
    averages over the trained languages, the rule's measures and counts (the headline files hold fidelity,
    kept pairs, the dominant pairs and the win rate; metrics/train the loss). One chain: its row alone."""

    def chain_summary(chain: str) -> dict:
        d = verdicts[chain][0]
        row = {
            "iteration": run.trained[chain].index(run.newest[chain]) + 1,
            **heads[run.newest[chain]]["avg"],
            **{f"goal_{p}": d["count"][p] for p in d["count"]},
            "goal": d["reached"],
        }
        left_out = ("fidelity", "kept_x_pairs", f"heldout_{run.dominant}_acc", "win_rate")
        return {k: v for k, v in row.items() if k not in left_out}

    if len(run.chains) == 1:
        return chain_summary(next(iter(run.chains)))
    return {chain: chain_summary(chain) for chain in run.chains}


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


def point(v: dict | None, value: str = "share") -> tuple | None:
    """(value, low, high) of one measure with its 95% interval (None, None without one); None without a value."""
    if not v or v.get(value) is None:
        return None
    ci = v.get("accuracy_ci95" if value == "accuracy" else "ci95")
    return (v[value], *ci) if ci else (v[value], None, None)


def measures(run: Run) -> dict[str, dict[str, dict[str, tuple | None]]]:
    """Per plotted measure, {model: {lang: (value, low, high)}}; with several chains, one line per chain
    (`by_chain`)."""
    iters, models, dominant = run.iters, run.models, run.dominant
    pref, evals, judges, likelihoods = run.pref, run.evals, run.judges, run.likelihoods
    values = {
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
    return {name: by_chain(v, run.chains) for name, v in values.items()}


def pictured(values: dict[str, dict]) -> dict[str, dict]:
    """A measure's values as its PNG draws them: the languages, without "all"."""
    return {m: {k: v for k, v in d.items() if k != "all"} for m, d in values.items()}


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


def curve_table(rows: list[dict]) -> pl.DataFrame:
    """A training curve's rows {model, step, value} as plots/training_<curve>.csv holds them."""
    return pl.DataFrame(rows, schema={"model": pl.String, "step": pl.Int64, "value": pl.Float64})


def curve_points(rows: list[dict], iters: list[str]) -> dict[str, list[tuple]]:
    """A training curve's rows as (step, value) points per iteration, for its PNG."""
    return {m: [(r["step"], r["value"]) for r in rows if r["model"] == m] for m in iters}


def report_markdown(run: Run, verdicts: dict[str, tuple[dict, str]], plots: str, report: str, cost_report: str) -> str:
    """metrics/report.md: the decision rule's sentences and table, then every measure's table and picture.

    `plots`, `report`, `cost_report`: where the pictures, the report and the cost report are written; the
    pictures are linked relative to the report's folder.
    """
    models, iters, newest, others, dominant = run.models, run.iters, run.newest, run.others, run.dominant
    evals, judges, pref = run.evals, run.judges, run.pref
    gates, trains, likelihoods = run.gates, run.trains, run.likelihoods

    def picture(name: str) -> str:
        return Path(os.path.relpath(Path(plots) / f"{name}.png", Path(report).parent)).as_posix()

    langs_fid = [k for k in evals[BASE_MODEL_KEY]["fidelity"] if k != "all"]
    out = [
        f"# lidr run report\n\nModels evaluated: {', '.join(models)} (newest: {', '.join(newest.values())}). Every "
        "share is given with its 95% interval and n; every comparison with m0 is paired on the same items "
        "(difference, 95% interval, exact McNemar p, items gained/lost).\n",
        "\n\n".join(sentence for _, sentence in verdicts.values()) + "\n",
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
        out.append(
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
    out += [
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
    out.append(table(["model", "pair type", "language", "accuracy [95% CI]", "mean margin [95% CI]", "sign p"], rows))
    out += [
        "\n## Language fidelity\n",
        "Share of answers to the instruction set written in the asked language.\n",
        f"![language fidelity]({picture('language_fidelity')})\n",
    ]
    out.append(
        table(
            ["model", *langs_fid, "all"],
            [[m, *(fmt_share(evals[m]["fidelity"][k]) for k in [*langs_fid, "all"])] for m in models],
        )
    )
    out.append("\nPaired against m0 (same instructions):\n")
    out.append(
        table(
            ["model", *langs_fid, "all"],
            [[m, *(fmt_paired(evals[m]["vs_m0"]["fidelity"].get(k)) for k in [*langs_fid, "all"])] for m in iters],
        )
    )
    ll_langs = list(likelihoods[BASE_MODEL_KEY]["likelihood"])
    out += [
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
        out += ["\n## MGSM accuracy\n", f"![MGSM accuracy]({picture('mgsm_accuracy')})\n"]
        out.append(
            table(["model", *mg_langs], [[m, *(fmt_acc(evals[m]["mgsm"][k]) for k in mg_langs)] for m in models])
        )
        out.append("\nPaired against m0:\n")
        out.append(
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
        out += [
            "\n## LLM judge (X-AlpacaEval-style win rate against the reference outputs)\n",
            f"![LLM-judge win rate]({picture('alpaca_win_rate')})\n",
        ]
        out.append(table(["model", "language", "win rate (%)", "n", "judge's mass on its verdict tokens"], rows))
    judge_name = judges[models[-1]].get("judge", "")
    if masses and max(masses) < CHANCE_JUDGE_MASS:
        out.append(
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
    unevaluated = [m for keys in run.trained.values() for m in keys if m not in iters]
    if unevaluated:
        off.append(f"the evaluation of {', '.join(unevaluated)} (trained; eval.models and eval.iterations)")
    if off:
        out.append(f"\nNot measured in this run: {'; '.join(off)}. Each is a params change away.\n")
    out += ["\n## Pairs kept by the gate\n", "Per block, pair type and the language the pair was built for.\n"]
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
    out.append(table(["block", "pair type", *others, "kept (all types)", "pairs (all types)"], rows))
    out += [
        "\n## Training\n",
        f"![training loss per iteration]({picture('training_loss')})\n",
        table(
            ["model", "pairs", "steps", "final loss", "final NLL"],
            [[m, t["pairs"], t["steps"], t["final_loss"], t["final_nll"]] for m, t in trains.items()],
        ),
    ]
    out.append(f"\nEach stage's seconds and tokens/s: {Path(cost_report).name} (they differ from run to run).\n")
    return "\n".join(out)


def cost_markdown(costs: dict[tuple[str, str], dict]) -> str:
    """metrics/cost.md: each stage's seconds, generated tokens and tokens/s, per (block, stage) in the given
    order."""
    rows = [
        [block, name, c.get("seconds"), c.get("generated_tokens", "-"), c.get("tokens_per_s", "-")]
        for (block, name), c in costs.items()
    ]
    return "# lidr run cost\n\n" + table(["block", "stage", "seconds", "generated tokens", "tokens/s"], rows)
