"""Prompts in every language: taken from a parallel source when it has them, else self-translated.

The parallel source is the iteration's chain's (`chains.<chain>.parallel`), or with `--heldout` the held-out
block's `heldout.parallel`.

Input: prompts_en.jsonl {"id", "kind", "text", "source"}
Output record: {"id", "kind", "lang", "text": str|null, "origin": "source"|"parallel"|"self-translation",
                "ok", "error", "finish_reason"}

    python -m stages.translate_prompts --iteration general-m1 --model models/m0 \
        --prompts data/general-m1/prompts_en.jsonl --out data/general-m1/prompts.jsonl \
        --meta data/general-m1/prompts.meta.json --cost metrics/cost/general-m1/translate_prompts.json
"""

import polars as pl

from lidr import stage
from lidr.data import load_parallel
from lidr.io import read_jsonl, write_json, write_jsonl
from lidr.translate import translate, translation_decoding


def main(args) -> None:
    params = stage.params_of(args)
    langs = params.languages
    prompts = read_jsonl(args.prompts, required=("id", "kind", "text"))
    parallel = params.heldout.parallel if args.heldout else params.chain(args.iteration).parallel
    given = load_parallel(parallel) if parallel else {}
    out = {
        (p["id"], langs.dominant): {
            "id": p["id"],
            "kind": p["kind"],
            "lang": langs.dominant,
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
        for x in langs.others:
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

        backend = make_backend(params, args.model)
        backend_name = backend.name
        decoding = translation_decoding(
            params.generation.translation_max_new_tokens,
            params.seed,
            params.generation.loop_span,
            params.generation.translation_repetition_penalty,
        )
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
    records = [out[(p["id"], lang)] for p in prompts for lang in langs.all]
    write_jsonl(args.out, records)
    stage.write_meta(args.meta, backend_name, args.model, parallel=parallel)
    write_json(args.cost, cost.as_metrics())
    print(pl.DataFrame(records).group_by("lang", "origin").agg(pl.col("ok").sum().alias("ok"), pl.len()).sort("lang"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--prompts", "--out", "--meta", "--cost"):
        ap.add_argument(flag, required=True)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--iteration", help="the iteration: given translations from its chain's parallel source")
    which.add_argument("--heldout", action="store_true", help="given translations from heldout.parallel")
    stage.run(main, ap)
