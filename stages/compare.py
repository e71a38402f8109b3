"""Compare an iteration's evaluation with m0's on the same items: MGSM correctness, language fidelity and
reference likelihood.

Every per-item outcome of the iteration (stages.eval's answers) is paired with m0's on the same item: the
paired difference of the shares, its 95% interval and the exact McNemar p-value (lidr.stats), per language
and over all.

The reference likelihood (lidr/likelihood.py) is paired per item too: its gain against m0 per language, and
per language x the contrast gain(x) - gain(dominant language) on the same items, each a mean with its 95% interval.

Inputs: lidr.records.EVAL_ANSWER, ALPACA_ANSWER and LIKELIHOOD, of the iteration and of m0.
Metrics: {"vs_m0": {"mgsm"|"fidelity": {lang|"all": {"n", "base", "new", "gained", "lost", "diff", "ci95",
                                                    "p_mcnemar"}},
                    "likelihood": {"gain": {lang: {"n", "mean", "ci95"}}, "contrast": {x: {"n", "mean", "ci95"}}}}}

    python -m stages.compare --answers data/general-m1/eval_answers.jsonl \
        --alpaca-answers data/general-m1/alpaca_answers.jsonl --base-answers data/m0/eval_answers.jsonl \
        --base-alpaca data/m0/alpaca_answers.jsonl --likelihood data/general-m1/reference_likelihood.jsonl \
        --base-likelihood data/m0/reference_likelihood.jsonl --metrics metrics/compare/general-m1.json
"""

import polars as pl

from lidr import likelihood, stage
from lidr.errors import JoinError
from lidr.io import write_json
from lidr.records import ALPACA_ANSWER, EVAL_ANSWER, LIKELIHOOD, read_records
from lidr.stats import paired_shares


def paired(base: list[dict], new: list[dict], field: str, path: str) -> dict:
    """Per language and over all: `field` (yes/no per item) of the new model against the base model's."""
    theirs = {(r["lang"], r["id"]): bool(r[field]) for r in base}
    missing = [(r["lang"], r["id"]) for r in new if (r["lang"], r["id"]) not in theirs]
    if missing:
        raise JoinError(f"{path}: no base-model outcome for {missing[0][0]} item {missing[0][1]!r}")
    out = {}
    for lang in [*dict.fromkeys(r["lang"] for r in new), "all"]:
        rs = [r for r in new if lang in ("all", r["lang"])]
        out[lang] = paired_shares([theirs[(r["lang"], r["id"])] for r in rs], [bool(r[field]) for r in rs])
    return out


def main(args) -> None:
    params = stage.params_of(args)
    try:
        ll = likelihood.compare(
            read_records(args.base_likelihood, LIKELIHOOD),
            read_records(args.likelihood, LIKELIHOOD),
            params.languages.dominant,
        )
    except ValueError as e:
        raise JoinError(f"{args.likelihood} against {args.base_likelihood}: {e}") from None
    metrics = {
        "vs_m0": {
            "mgsm": paired(
                read_records(args.base_answers, EVAL_ANSWER),
                read_records(args.answers, EVAL_ANSWER),
                "correct",
                args.base_answers,
            ),
            "fidelity": paired(
                read_records(args.base_alpaca, ALPACA_ANSWER),
                read_records(args.alpaca_answers, ALPACA_ANSWER),
                "on_target",
                args.base_alpaca,
            ),
            "likelihood": ll,
        }
    }
    write_json(args.metrics, metrics)
    for name in ("mgsm", "fidelity"):
        table = metrics["vs_m0"][name]
        print(name, pl.DataFrame([{"lang": k, **v} for k, v in table.items()]).drop("ci95"))
    for name, table in ll.items():
        print(f"likelihood {name}", pl.DataFrame([{"lang": k, **v} for k, v in table.items()]).drop("ci95"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in (
        "--answers",
        "--alpaca-answers",
        "--base-answers",
        "--base-alpaca",
        "--likelihood",
        "--base-likelihood",
        "--metrics",
    ):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
