"""Decoding workers (`generation.workers`) against one process, on two of the pipeline's workloads.

The workloads are what two stages decode, by the backend and driver as the pipeline runs them
(`lidr.generate.generate`, no journal), with params.yaml's decoding settings:

- `answers`: the held-out block's answers (`generate@heldout`): the first `--limit` held-out prompts
  in English and in each trained language (the answer decoding, up to `generation.max_new_tokens`);
- `fidelity`: language fidelity's (`eval@<model>`): the first `--limit` X-AlpacaEval instructions of
  `eval.alpaca`'s seeded order in each of its languages (the instruction decoding).

Each `workers` value runs in turn, in this process, on a backend built for it (with more than one
worker, their start-up and model loads are timed too); `generation.threads` (0: every core) is shared
out among the workers. Printed per value: prompts, generated tokens, wall seconds, tokens/s, the speed-up
over the first value and whether the texts equal the first value's. Time it alone on the machine.

    python -m benchmarks.workers                                    # answers, workers 1 then 2
    python -m benchmarks.workers --workload fidelity --limit 100 --values 1 2
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


def requests_for(params, workload: str, limit: int) -> tuple[list, str]:
    """The workload's requests and its decoding kind."""
    from lidr.backends import Request
    from lidr.data import load_alpaca
    from lidr.io import read_jsonl
    from lidr.prompts import task_messages

    if workload == "fidelity":
        a = params.eval.alpaca
        rows = [
            (row["instruction"], lang) for lang in a.languages for row in load_alpaca(a.path, lang, limit, params.seed)
        ]
        return [Request.chat(task_messages(text, "general", lang)) for text, lang in rows], "instruction"
    source = params.chains["heldout"].sources[0]
    english = read_jsonl(source.path)[:limit]
    ids = {row["id"] for row in english}
    parallel = [r for r in read_jsonl(params.chains["heldout"].parallel) if r["id"] in ids]
    rows = [(r["instruction"], "en") for r in english] + [(r["text"], r["lang"]) for r in parallel]
    return [Request.chat(task_messages(text, "general", lang)) for text, lang in rows], "answer"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", help="a model folder (default: materialise params' base model in a temp folder)")
    ap.add_argument("--workload", choices=["answers", "fidelity"], default="answers")
    ap.add_argument("--limit", type=int, default=32, help="prompts per language (default 32)")
    ap.add_argument("--values", type=int, nargs="+", default=[1, 2], help="generation.workers values (default 1 2)")
    args = ap.parse_args()

    from lidr.backends import make_backend
    from lidr.config import load_params
    from lidr.generate import decoding_for, generate

    params = load_params(args.params)
    requests, kind = requests_for(params, args.workload, args.limit)
    decoding = decoding_for(params.generation, params.seed, kind, params.eval)
    print(f"{args.workload}: {len(requests)} prompts, chunks of {params.generation.chunk_size}", flush=True)
    rows, first = [], None
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from lidr.model import materialise_base_model

            model_dir = str(Path(tmp) / "model")
            materialise_base_model(params.model, Path(model_dir))
        for value in args.values:
            generation = dataclasses.replace(params.generation, workers=value)
            started = time.perf_counter()
            backend = make_backend(model_dir, generation, params.model, params.seed)
            out = generate(backend, requests, decoding, model_dir=model_dir, desc=f"workers {value}", journal=False)
            seconds = time.perf_counter() - started
            if backend.workers is not None:
                backend.workers.close()
            texts = [c.text for c in out]
            first = first or (texts, seconds)
            tokens = sum(c.n_tokens for c in out)
            rows.append(
                f"| {value} | {len(out)} | {tokens} | {seconds:.1f} | {tokens / seconds:.1f} | "
                f"{first[1] / seconds:.2f} | {'yes' if texts == first[0] else 'no'} |"
            )
    print("\n| workers | prompts | generated tokens | seconds | tokens/s | x first | same texts as first |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
