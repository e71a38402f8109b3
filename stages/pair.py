"""Build the preference pairs (docs/method.md, step 5) from responses and their self-translations.

Inputs: prompts_en.jsonl, responses.jsonl, translations.jsonl. Output: pairs.jsonl (schema in lidr/pairs.py).

    python -m stages.pair --prompts data/m1/prompts_en.jsonl --responses data/m1/responses.jsonl \
        --translations data/m1/translations.jsonl --out data/m1/pairs.jsonl
"""

import polars as pl

from lidr import stage
from lidr.io import read_jsonl, write_jsonl
from lidr.pairs import build_pairs


def main(args) -> None:
    params = stage.params_of(args)
    prompts = read_jsonl(args.prompts, required=("id", "text"))
    responses = read_jsonl(args.responses, required=("id", "kind", "lang", "messages", "response", "finish_reason"))
    translations = read_jsonl(
        args.translations, required=("id", "source_lang", "target_lang", "text", "ok", "finish_reason")
    )
    pairs = build_pairs(prompts, responses, translations, params.languages.dominant, params.languages.others)
    write_jsonl(args.out, pairs)
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
    stage.run(main, ap)
