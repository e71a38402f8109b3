"""Reference likelihood of one model (lidr/likelihood.py): per language of eval.likelihood and per item, the mean
per-token log-likelihood of the first eval.likelihood.max_tokens tokens of the reference answer, given the
instruction through the answering prompt of language fidelity. Items: the first eval.likelihood.limit ids of
eval.alpaca's seeded order (lidr.data.sample_ids), the same in every language. Forward passes only.

Output: lidr.records.LIKELIHOOD. Metrics: {"likelihood": {lang: {"n", "mean", "ci95"}}}. Cost: seconds, items
scored and peak memory.
stages.compare pairs an iteration's scores with m0's (the gain, and the contrast with the dominant language).

    python -m stages.likelihood --model models/m0 --scores data/m0/reference_likelihood.jsonl \
        --metrics metrics/likelihood/m0.json --cost metrics/cost/m0/likelihood.json
"""

import time

import polars as pl

from lidr import stage
from lidr.data import load_alpaca, load_references, reference_for
from lidr.errors import DataError
from lidr.io import write_json
from lidr.likelihood import mean_logps, per_language
from lidr.model import load_causal_lm, load_tokenizer
from lidr.prompts import task_messages
from lidr.records import LIKELIHOOD, write_records


def items(params) -> list[dict]:
    """The scored items: {"id", "lang", "messages", "reference"} per language of eval.likelihood."""
    ll, a = params.eval.likelihood, params.eval.alpaca
    out = []
    for lang in ll.languages:
        refs = load_references(ll.reference, lang)
        for row in load_alpaca(a.path, lang, ll.limit, params.seed):
            reference = reference_for(refs, row["id"], row["instruction"])
            if reference is None:
                raise DataError(
                    f"{ll.reference.format(lang=lang)}: no reference answer for item {row['id']!r} "
                    "(joined on id, else on the instruction text)"
                )
            messages = task_messages(row["instruction"], "general", lang)
            out.append({"id": row["id"], "lang": lang, "messages": messages, "reference": reference})
    return out


def main(args) -> None:
    started = time.perf_counter()
    params = stage.params_of(args)
    rows = items(params)
    if params.generation.threads:
        import torch

        torch.set_num_threads(params.generation.threads)
    model, tokenizer = load_causal_lm(args.model, params.model), load_tokenizer(args.model, params.model)
    ll = params.eval.likelihood
    scored = mean_logps(
        model, tokenizer, [(r["messages"], r["reference"]) for r in rows], ll.max_tokens, ll.batch_size
    )
    scores = [
        {"id": r["id"], "lang": r["lang"], "logp": round(logp, 6), "n_tokens": n}
        for r, (logp, n) in zip(rows, scored, strict=True)
    ]
    write_records(args.scores, LIKELIHOOD, scores)
    metrics = {"likelihood": per_language(scores)}
    write_json(args.metrics, metrics)
    write_json(args.cost, stage.timed_cost(started, scored=len(scores)))
    print(pl.DataFrame([{"lang": k, **v} for k, v in metrics["likelihood"].items()]).drop("ci95"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--scores", "--metrics", "--cost"):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
