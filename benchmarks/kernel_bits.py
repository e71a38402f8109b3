"""Do the matrix kernels give the same bits whatever the memory alignment, and with one thread as with two?

Two checks, each printed as a table of shapes and whether every result equals the first bit for bit:

- alignment: a linear layer's product (SmolLM2-135M's up-projection shape, 576 -> 1,536, random weights)
  through the kernel `cpu_kernels` binds to it (`weight @ x.T`, oneDNN on the packed weight or torch's
  `F.linear`, by the number of rows), and attention's batched product, with the inputs (then the
  weights) copied to 16 consecutive float offsets;
- threads: the embedded model's logits (or `--model`'s) at the shapes of decoding (1 to 64 rows of one
  token) and of prefill (up to 64 x 60 tokens), with torch's plain kernels and inside `cpu_kernels`,
  with 1 thread and with 2. Another thread count (`generation.threads`, or decoding split among
  processes of one thread each, tried and not adopted: benchmarks/README.md) writes the same texts only
  where the kernels it runs pass this check.

    python -m benchmarks.kernel_bits                      # the embedded model, materialised in a temp folder
    python -m benchmarks.kernel_bits --model models/m0
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OFFSETS = 16
ROWS = (3, 64, 200, 1000)
MODEL_SHAPES = ((1, 40), (4, 1), (12, 1), (64, 1), (8, 150), (64, 60))


def at_offset(x, k: int):
    """A copy of `x` starting `k` floats into a fresh buffer."""
    import torch

    buf = torch.empty(x.numel() + OFFSETS)
    view = buf[k : k + x.numel()].view_as(x)
    view.copy_(x)
    return view


def linear(weight, x):
    """`x` through a linear layer of `weight`, by the kernel `cpu_kernels` binds to such a layer: the packed
    one where oneDNN can pack weights (`weight @ x.T`, oneDNN or torch's `F.linear` by the number of rows)."""
    import torch

    from lidr.backends import cpu_kernels as k

    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    layer.weight = torch.nn.Parameter(weight, requires_grad=False)  # the same memory, at its offset
    kernel = k._packed_linear if k._HAS_ONEDNN_PACKING else k._small_batch_linear
    return kernel(layer, x)


def alignment_rows() -> list[str]:
    import torch

    torch.manual_seed(0)
    weight = torch.randn(1536, 576) * 0.05
    rows = []
    for n in ROWS:
        x = torch.randn(n, 576)
        by_input = [linear(weight, at_offset(x, k)) for k in range(OFFSETS)]
        by_weight = [linear(at_offset(weight, k), x) for k in range(OFFSETS)]
        same = all(torch.equal(by_input[0], y) for y in by_input + by_weight)
        rows.append(f"| linear, {n} rows | {'yes' if same else 'no'} |")
    for b, t, length in ((8, 1, 300), (64, 1, 300), (8, 200, 200)):
        q, key = torch.randn(b, 3, 3 * t, 64), torch.randn(b, 3, length, 64)
        keys = [at_offset(key, (3 * k) % OFFSETS).transpose(-1, -2) for k in range(OFFSETS)]
        out = [torch.matmul(at_offset(q, k), keys[k]) for k in range(OFFSETS)]
        same = all(torch.equal(out[0], y) for y in out)
        rows.append(f"| attention scores, batch {b}, {t} new x {length} | {'yes' if same else 'no'} |")
    return rows


def thread_rows(model_dir: str, params) -> list[str]:
    import torch

    from lidr.backends.cpu_kernels import cpu_kernels
    from lidr.model import load_causal_lm

    model = load_causal_lm(model_dir, params.model).eval()
    torch.manual_seed(0)
    inputs = [torch.randint(0, model.config.vocab_size, shape) for shape in MODEL_SHAPES]
    logits: dict[tuple[str, int], list] = {}
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            with torch.inference_mode():
                logits["plain", threads] = [model(input_ids=ids).logits for ids in inputs]
                with cpu_kernels(model):
                    logits["kernels", threads] = [model(input_ids=ids).logits for ids in inputs]
    finally:
        torch.set_num_threads(before)
    rows = []
    for i, (b, t) in enumerate(MODEL_SHAPES):
        same = [torch.equal(logits[path, 1][i], logits[path, 2][i]) for path in ("plain", "kernels")]
        rows.append(f"| {b} x {t} | {'yes' if same[0] else 'no'} | {'yes' if same[1] else 'no'} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--model", help="a model folder (default: materialise params' base model in a temp folder)")
    args = ap.parse_args()

    from lidr.config import load_params

    params = load_params(args.params)
    print(f"| product | same bits at {OFFSETS} offsets of inputs and weights |\n|---|---|")
    print("\n".join(alignment_rows()))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model
        if model_dir is None:
            from lidr.model import materialise_base_model

            model_dir = str(Path(tmp) / "model")
            materialise_base_model(params.model, Path(model_dir))
        print("\n| rows x tokens | plain: 1 thread = 2 threads | cpu_kernels: 1 thread = 2 threads |\n|---|---|---|")
        print("\n".join(thread_rows(model_dir, params)))


if __name__ == "__main__":
    main()
