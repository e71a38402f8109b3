"""Every prompt answered in every language by the iteration's starting model.

Greedy, repetition penalty from params (1.1), one response per prompt; math prompts go in the
reference's math wrapper. Prompts whose translation failed are not answered.

Input: lidr.records.PROMPT. Output: lidr.records.RESPONSE

    python -m stages.generate --model models/m0 --prompts data/general-m1/prompts.jsonl \
        --out data/general-m1/responses.jsonl --meta data/general-m1/responses.meta.json \
        --cost metrics/cost/general-m1/generate.json
"""

import polars as pl

from lidr import stage
from lidr.backends import Request, make_backend
from lidr.errors import DataError
from lidr.generate import decoding_for, generate
from lidr.io import write_json
from lidr.prompts import task_messages
from lidr.records import PROMPT, RESPONSE, read_records, write_records


def main(args) -> None:
    params = stage.params_of(args)
    prompts = [p for p in read_records(args.prompts, PROMPT) if p["ok"]]
    if not prompts:
        raise DataError(f"{args.prompts}: no prompts to answer (the file is empty or every translation failed)")
    messages = [task_messages(p["text"], p["kind"], p["lang"]) for p in prompts]
    decoding = decoding_for(params.generation, params.seed, "answer")
    cost = stage.Cost()
    backend = make_backend(args.model, params.generation, params.model, params.seed)
    completions = generate(
        backend, [Request.chat(m) for m in messages], decoding, model_dir=args.model, desc="answer prompts", cost=cost
    )
    records = [
        {
            "id": p["id"],
            "kind": p["kind"],
            "lang": p["lang"],
            "messages": m,
            "response": c.text.strip(),
            "finish_reason": c.finish_reason,
            "n_tokens": c.n_tokens,
        }
        for p, m, c in zip(prompts, messages, completions, strict=True)
    ]
    write_records(args.out, RESPONSE, records)
    stage.write_meta(args.meta, backend.name, args.model, decoding=decoding.__dict__)
    write_json(args.cost, cost.as_metrics())
    print(pl.DataFrame(records).group_by("lang", "finish_reason").len().sort("lang", "finish_reason"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--prompts", "--out", "--meta", "--cost"):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
