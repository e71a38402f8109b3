"""The ceiling of CPU decoding with the embedded model: tokens/s per batch size when no row ever ends.

Every row of a batch of random prompts decodes the same number of tokens, so nothing is wasted
on finished rows or padding: the tokens/s printed for a batch size is the most any scheduling of
real requests can reach at that many concurrent rows. Printed per batch size: prefill tokens/s,
the time of one decoding step and decoding tokens/s, with transformers' DynamicCache (which
concatenates the whole cache to add a token) and with the backend's cache (which writes the new
token into spare room), and with the backend's cache and its CPU kernels (`cpu_kernels`: linear
layers and attention computed for few rows). Both caches give the same tokens (the script checks);
the kernels sum in another order, so the table counts the rows whose tokens are the same.

    python -m benchmarks.decode_ceiling                         # batch sizes 1 16 32 64
    python -m benchmarks.decode_ceiling --batch-sizes 8 64 128 --prompt 100 --steps 32
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def measure(model, batch: int, prompt: int, steps: int, roomy: bool, seed: int) -> dict:
    import torch
    from transformers import DynamicCache

    from lidr.backends.decode import _new_cache

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(100, model.config.vocab_size - 100, (batch, prompt), generator=generator)
    cache = _new_cache(model) if roomy else DynamicCache(config=model.config)
    with torch.inference_mode():
        started = time.perf_counter()
        logits = model(input_ids=ids, past_key_values=cache, logits_to_keep=1).logits[:, -1]
        prefill = time.perf_counter() - started
        token = logits.argmax(-1)[:, None]
        mask = torch.ones(batch, prompt + 1, dtype=torch.long)
        position = torch.full((batch, 1), prompt)
        tokens = []
        started = time.perf_counter()
        for _ in range(steps):
            logits = model(input_ids=token, attention_mask=mask, position_ids=position, past_key_values=cache).logits
            token = logits[:, -1].argmax(-1)[:, None]
            tokens.append(token)
            mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)
            position = position + 1
        step = (time.perf_counter() - started) / steps
    return {
        "prefill_tps": batch * prompt / prefill,
        "step_ms": 1000 * step,
        "tps": batch / step,
        "tokens": torch.cat(tokens, dim=1).tolist(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", help="a model folder (default: materialise params' base model in a temp folder)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 32, 64])
    ap.add_argument("--prompt", type=int, default=100, help="prompt tokens per row (default 100)")
    ap.add_argument("--steps", type=int, default=64, help="decoding steps per row (default 64)")
    ap.add_argument("--threads", type=int, help="torch threads (default: generation.threads, else torch's)")
    args = ap.parse_args()

    import torch

    from lidr.backends.cpu_kernels import cpu_kernels
    from lidr.config import load_params
    from lidr.model import load_causal_lm, materialise_base_model

    params = load_params(args.params)
    threads = args.threads or params.generation.threads
    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            model_dir = str(Path(tmp) / "model")
            materialise_base_model(params.model, Path(model_dir))
        model = load_causal_lm(model_dir, params.model).eval()
        print(
            f"prompt {args.prompt} tokens, {args.steps} decoding steps per row, "
            f"{torch.get_num_threads()} torch threads of {os.cpu_count()} CPUs\n"
        )
        print(
            "| rows | prefill tokens/s | step ms (DynamicCache) | tokens/s (DynamicCache) |"
            " step ms (backend cache) | tokens/s (backend cache) | step ms (+ CPU kernels) |"
            " tokens/s (+ CPU kernels) | rows with the same tokens |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for batch in args.batch_sizes:
            plain = measure(model, batch, args.prompt, args.steps, roomy=False, seed=params.seed)
            roomy = measure(model, batch, args.prompt, args.steps, roomy=True, seed=params.seed)
            if plain["tokens"] != roomy["tokens"]:
                raise SystemExit(f"the two caches gave different tokens at {batch} rows")
            with cpu_kernels(model):
                fast = measure(model, batch, args.prompt, args.steps, roomy=True, seed=params.seed)
            same = sum(a == b for a, b in zip(fast["tokens"], roomy["tokens"], strict=True))
            print(
                f"| {batch} | {roomy['prefill_tps']:.0f} | {plain['step_ms']:.0f} | {plain['tps']:.1f} |"
                f" {roomy['step_ms']:.0f} | {roomy['tps']:.1f} | {fast['step_ms']:.0f} | {fast['tps']:.1f} |"
                f" {same}/{batch} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
