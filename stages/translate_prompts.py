"""Prompts in every language: taken from a parallel source when it has them, else self-translated.

The sampled prompts are English (records.SOURCE_LANG): the English prompt is the source text itself, and
every other language's, the dominant one's included when it is not English, comes from the parallel
source (`chains.<chain>.parallel` of the block's chain, the held-out block's included) or is translated
from the English text. A prompt whose dominant-language version failed to translate is not answered in any
language (`ok` false): none of its pairs could be built.

Input: lidr.records.PROMPT_EN. Output: lidr.records.PROMPT

    python -m stages.translate_prompts --chain general --model models/m0 \
        --prompts data/general-m1/prompts_en.jsonl --out data/general-m1/prompts.jsonl \
        --meta data/general-m1/prompts.meta.json --cost metrics/cost/general-m1/translate_prompts.json
"""

import polars as pl

from lidr import stage
from lidr.data import load_parallel
from lidr.generate import decoding_for
from lidr.io import write_json
from lidr.records import PROMPT, PROMPT_EN, SOURCE_LANG, read_records, write_records
from lidr.translate import translate


def main(args) -> None:
    params = stage.params_of(args)
    langs = params.languages
    prompts = read_records(args.prompts, PROMPT_EN)
    parallel = params.chain_named(args.chain).parallel
    given = load_parallel(parallel) if parallel else {}
    out = {
        (p["id"], SOURCE_LANG): {
            "id": p["id"],
            "kind": p["kind"],
            "lang": SOURCE_LANG,
            "text": p["text"],
            "origin": "source",
            "ok": True,
            "error": None,
            "finish_reason": None,
        }
        for p in prompts
    }
    jobs = []
    for p in prompts:
        for x in langs.all:
            if x == SOURCE_LANG:
                continue
            if (p["id"], x) in given:
                out[(p["id"], x)] = {
                    "id": p["id"],
                    "kind": p["kind"],
                    "lang": x,
                    "text": given[(p["id"], x)],
                    "origin": "parallel",
                    "ok": True,
                    "error": None,
                    "finish_reason": None,
                }
            else:
                jobs.append({"id": p["id"], "kind": p["kind"], "source_text": p["text"], "target_lang": x})
    cost = stage.Cost()
    backend_name = "none"
    if jobs:
        from lidr.backends import make_backend

        backend = make_backend(args.model, params.generation, params.model, params.seed)
        backend_name = backend.name
        decoding = decoding_for(params.generation, params.seed, "translation")
        for t in translate(backend, jobs, decoding, args.model, desc="translate prompts", cost=cost):
            out[(t["id"], t["target_lang"])] = {
                "id": t["id"],
                "kind": t["kind"],
                "lang": t["target_lang"],
                "text": t["text"],
                "origin": "self-translation",
                "ok": t["ok"],
                "error": t["error"],
                "finish_reason": t["finish_reason"],
            }
    for p in prompts:  # without a prompt in the dominant language, no pair of this id can be built
        if not out[(p["id"], langs.dominant)]["ok"]:
            for x in langs.others:
                if out[(p["id"], x)]["ok"]:
                    out[(p["id"], x)] = {**out[(p["id"], x)], "ok": False, "error": f"no {langs.dominant} prompt"}
    records = [out[(p["id"], lang)] for p in prompts for lang in langs.all]
    write_records(args.out, PROMPT, records)
    stage.write_meta(args.meta, backend_name, args.model, parallel=parallel)
    write_json(args.cost, cost.as_metrics())
    print(pl.DataFrame(records).group_by("lang", "origin").agg(pl.col("ok").sum().alias("ok"), pl.len()).sort("lang"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--prompts", "--out", "--meta", "--cost"):
        ap.add_argument(flag, required=True)
    stage.add_chain(ap)
    stage.run(main, ap)
