"""Self-translation of responses: every dominant-language response into every x, every x response into the
dominant language (with the chain's dominant_pairs false, as for the held-out block, the first only).

Input: lidr.records.RESPONSE. Output: lidr.records.TRANSLATION

    python -m stages.translate_responses --chain general --model models/m0 \
        --responses data/general-m1/responses.jsonl --out data/general-m1/translations.jsonl \
        --meta data/general-m1/translations.meta.json --cost metrics/cost/general-m1/translate_responses.json
"""

import polars as pl

from lidr import stage
from lidr.backends import make_backend
from lidr.generate import decoding_for
from lidr.io import write_json
from lidr.pairs import translation_jobs
from lidr.records import RESPONSE, TRANSLATION, read_records, write_records
from lidr.translate import translate


def main(args) -> None:
    params = stage.params_of(args)
    responses = read_records(args.responses, RESPONSE)
    dominant_pairs = params.chain_named(args.chain).dominant_pairs
    jobs = translation_jobs(responses, params.languages.dominant, params.languages.others, dominant_pairs)
    backend = make_backend(args.model, params.generation, params.model, params.seed)
    decoding = decoding_for(params.generation, params.seed, "translation")
    cost = stage.Cost()
    records = translate(backend, jobs, decoding, args.model, desc="translate responses", cost=cost)
    write_records(args.out, TRANSLATION, records)
    stage.write_meta(args.meta, backend.name, args.model, decoding=decoding.__dict__)
    write_json(args.cost, cost.as_metrics())
    print(pl.DataFrame(records).group_by("source_lang", "target_lang").agg(pl.col("ok").mean(), pl.len()))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--responses", "--out", "--meta", "--cost"):
        ap.add_argument(flag, required=True)
    stage.add_chain(ap)
    stage.run(main, ap)
