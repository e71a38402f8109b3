"""Prefill in groups (`generation.prefill_tokens`) on language fidelity's workload, with the embedded model.

The workload is what `eval@<model>` decodes: the X-AlpacaEval instructions of `eval.alpaca` (its
`limit` items per language, in every language of `eval.alpaca.languages`), through the chat
template, answered greedily with the instruction decoding of params.yaml
(`lidr.generate.decoding_for(..., "instruction")`), by the backend and driver as the pipeline runs
them (`lidr.generate.generate`, no journal). Its prompts are long and unequal (up to 1,344 tokens),
so one forward pass per batch pads every row to the batch's longest prompt.

Each `prefill_tokens` value runs in turn in this process, after one load of the model; printed per
value: the prompts, the prompt tokens, the padded tokens the prefill forward passes computed, the
generated tokens, the wall seconds, and whether the texts equal the first value's.

    python -m benchmarks.prefill                          # prefill_tokens 0 (one pass per batch), then 4096
    python -m benchmarks.prefill --values 0 2048 4096 8192 --limit 50
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", help="a model folder (default: materialise params' base model in a temp folder)")
    ap.add_argument("--values", type=int, nargs="+", default=[0, 4096], help="prefill_tokens values (default 0 4096)")
    ap.add_argument("--limit", type=int, help="items per language (default: eval.alpaca.limit)")
    args = ap.parse_args()

    import lidr.backends.decode as decode
    from lidr.backends import Request, make_backend
    from lidr.config import load_params
    from lidr.data import load_alpaca
    from lidr.generate import decoding_for, generate
    from lidr.prompts import task_messages

    params = load_params(args.params)
    a = params.eval.alpaca
    limit = a.limit if args.limit is None else args.limit
    requests = [
        Request.chat(task_messages(row["instruction"], "general", lang))
        for lang in a.languages
        for row in load_alpaca(a.path, lang, limit, params.seed)
    ]
    decoding = decoding_for(params.generation, params.seed, "instruction", params.eval)
    padded = []
    real_prefill = decode._prefill

    def counting(model, prompts, *rest):
        padded.append(len(prompts) * max(len(p) for p in prompts))
        return real_prefill(model, prompts, *rest)

    decode._prefill = counting
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from lidr.model import materialise_base_model

            model_dir = str(Path(tmp) / "model")
            materialise_base_model(params.model, Path(model_dir))
        backend = make_backend(model_dir, params.generation, params.model, params.seed)
        prompt_tokens = sum(backend.prompt_length(backend.render(r)) for r in requests)
        rows, first = [], None
        for value in args.values:
            backend.prefill_tokens = value
            padded.clear()
            started = time.perf_counter()
            out = generate(
                backend, requests, decoding, model_dir=model_dir, desc=f"prefill_tokens {value}", journal=False
            )
            seconds = time.perf_counter() - started
            texts = [c.text for c in out]
            first = texts if first is None else first
            same = "yes" if texts == first else f"{sum(x != y for x, y in zip(texts, first, strict=True))} differ"
            generated = sum(c.n_tokens for c in out)
            rows.append([value, len(requests), prompt_tokens, sum(padded), generated, f"{seconds:.1f}", same])
    head = ["prefill_tokens", "prompts", "prompt tokens", "prefilled tokens (padded)", "generated tokens", "seconds"]
    head.append(f"same texts as {args.values[0]}")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    print(f"\n{dataclasses.asdict(decoding)}")


if __name__ == "__main__":
    main()
