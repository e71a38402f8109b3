"""Score the held-out block's pairs (m0's LIDR pairs on prompts no iteration trains on) with a model.

Without `--reference-scores` (for m0): writes the per-pair log-probabilities only. With them (every
iteration): also the implicit-reward margin of each pair against m0 and the held-out preference
accuracy per pair type and language (lidr.preference).

Input: lidr.records.KEPT_PAIR (the held-out block's, stages.filter), and with a reference its
lidr.records.SCORE. Output: lidr.records.SCORE, or with a reference lidr.records.HELDOUT_SCORE (+ "margin")
Metrics: {"heldout": {pair_type: {lang|"all": {"accuracy": {"k", "n", "share", "ci95"},
                                               "margin": {"n", "mean", "ci95"}, "p_sign"}}}}
Cost: seconds, sequences scored (two per pair) and peak memory.

    python -m stages.preference --model models/m0 --pairs data/heldout/pairs_kept.jsonl \
        --scores data/heldout/scores_m0.jsonl --cost metrics/cost/m0/preference.json
    python -m stages.preference --model models/general-m1 --pairs data/heldout/pairs_kept.jsonl \
        --reference-scores data/heldout/scores_m0.jsonl --scores data/general-m1/heldout_scores.jsonl \
        --metrics metrics/preference/general-m1.json --cost metrics/cost/general-m1/preference.json
"""

import time

import polars as pl

from lidr import stage
from lidr.errors import DataError
from lidr.io import write_json
from lidr.model import load_causal_lm, load_tokenizer
from lidr.preference import PAIR_KEY, margins, score_pairs, summarise
from lidr.records import HELDOUT_SCORE, KEPT_PAIR, SCORE, read_records, write_records


def main(args) -> None:
    started = time.perf_counter()
    params = stage.params_of(args)
    if args.reference_scores and not args.metrics:
        raise DataError("--reference-scores needs --metrics (where the held-out accuracy goes)")
    pairs = read_records(args.pairs, KEPT_PAIR)
    if not pairs:
        raise DataError(
            f"{args.pairs}: no held-out pairs survived the gate; add held-out prompts (chains.heldout.sources)"
        )
    reference = read_records(args.reference_scores, SCORE) if args.reference_scores else None
    if params.generation.threads:
        import torch

        torch.set_num_threads(params.generation.threads)
    model, tokenizer = load_causal_lm(args.model, params.model), load_tokenizer(args.model, params.model)
    scores = score_pairs(model, tokenizer, pairs, batch_size=args.batch_size)
    write_json(args.cost, stage.timed_cost(started, scored=2 * len(scores)))
    if reference is None:
        write_records(args.scores, SCORE, scores)
        return
    try:
        table = margins(scores, reference)
    except ValueError as e:
        raise DataError(f"{args.reference_scores}: {e}; rerun the reference's scoring") from None
    margin = dict(zip(table.select(PAIR_KEY).iter_rows(), table["margin"], strict=True))
    write_records(args.scores, HELDOUT_SCORE, [{**s, "margin": margin[tuple(s[k] for k in PAIR_KEY)]} for s in scores])
    metrics = {"heldout": summarise(table)}
    write_json(args.metrics, metrics)
    print(
        pl.DataFrame(
            [
                {
                    "pair_type": t,
                    "lang": lang,
                    "accuracy": m["accuracy"]["share"],
                    "n": m["accuracy"]["n"],
                    "mean_margin": m["margin"]["mean"],
                    "p_sign": m["p_sign"],
                }
                for t, per_lang in metrics["heldout"].items()
                for lang, m in per_lang.items()
            ]
        )
    )


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--pairs", "--scores", "--cost"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--reference-scores", help="m0's scores of the same pairs (absent when scoring m0)")
    ap.add_argument("--metrics", help="with --reference-scores: where the accuracy metrics go")
    ap.add_argument("--batch-size", type=int, default=4, help="sequences per forward pass (default 4)")
    stage.run(main, ap)
