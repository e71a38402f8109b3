"""Build the preference pairs (docs/method.md, step 5) from responses and their self-translations.

Inputs: lidr.records.PROMPT_EN, RESPONSE, TRANSLATION. Output: lidr.records.PAIR (built as lidr/pairs.py describes;
with the chain's dominant_pairs false, as for the held-out block, the x pairs only).

    python -m stages.pair --chain general --prompts data/general-m1/prompts_en.jsonl \
        --responses data/general-m1/responses.jsonl --translations data/general-m1/translations.jsonl \
        --out data/general-m1/pairs.jsonl
"""

import polars as pl

from lidr import stage
from lidr.pairs import build_pairs
from lidr.records import PAIR, PROMPT_EN, RESPONSE, TRANSLATION, read_records, write_records


def main(args) -> None:
    params = stage.params_of(args)
    prompts = read_records(args.prompts, PROMPT_EN)
    responses = read_records(args.responses, RESPONSE)
    translations = read_records(args.translations, TRANSLATION)
    dominant_pairs = params.chain_named(args.chain).dominant_pairs
    pairs = build_pairs(
        prompts, responses, translations, params.languages.dominant, params.languages.others, dominant_pairs
    )
    write_records(args.out, PAIR, pairs)
    if not pairs:
        print("no pairs: no prompt has a response in a non-dominant language")
        return
    print(
        pl.DataFrame([{k: p[k] for k in ("source_lang", "pair_type", "translation_ok")} for p in pairs])
        .group_by("source_lang", "pair_type")
        .agg(pl.len(), pl.col("translation_ok").sum().alias("translated"))
        .sort("source_lang", "pair_type")
    )


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--prompts", "--responses", "--translations", "--out"):
        ap.add_argument(flag, required=True)
    stage.add_chain(ap)
    stage.run(main, ap)
