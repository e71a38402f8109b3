"""Time of the embedded model's linear layers per kernel and number of rows, on CPU.

A decoding step multiplies every weight by as many rows as there are running sequences (times
the tokens each feeds). Printed per layer shape and number of rows: milliseconds per call of
torch's `F.linear` (MKL's sgemm on x86), of `weight @ x.T`, of oneDNN's linear on the weight
as it is and on a copy packed once into oneDNN's blocked layout, and of the backend's choice
(`lidr.backends.cpu_kernels._packed_linear`, `_output_linear` for the output layer). Each weight is one of 30 copies
used in turn, as 30 layers are, so that it is read from memory rather than from cache.

    python -m benchmarks.linear_kernels
    python -m benchmarks.linear_kernels --rows 1 4 16 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

SHAPES = {  # SmolLM2-135M: (out, in)
    "q_proj, o_proj": (576, 576),
    "k_proj, v_proj": (192, 576),
    "gate_proj, up_proj": (1536, 576),
    "down_proj": (576, 1536),
    "lm_head": (49152, 576),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 4, 8, 16, 32, 64])
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over the copies; the median is printed")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from lidr.backends.cpu_kernels import (
        _HAS_ONEDNN_LINEAR,
        _HAS_ONEDNN_PACKING,
        _output_linear,
        _packed_linear,
        _packed_weight,
        _small_batch_linear,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    kernels = {
        "F.linear": lambda m, x: F.linear(x, m.weight),
        "weight @ x.T": lambda m, x: torch.mm(m.weight, x.t()).t(),
    }
    if _HAS_ONEDNN_LINEAR:
        kernels["oneDNN"] = lambda m, x: torch.ops.mkldnn._linear_pointwise(x, m.weight, None, "none", [], "")
    if _HAS_ONEDNN_PACKING:
        kernels["oneDNN packed"] = lambda m, x: torch.ops.mkldnn._linear_pointwise(
            x, _packed_weight(m), None, "none", [], ""
        )
        kernels["backend"] = lambda m, x: (
            _output_linear if m.out_features == SHAPES["lm_head"][0] else _packed_linear
        )(m, x)
    else:
        kernels["backend"] = _small_batch_linear
    print(f"{torch.get_num_threads()} torch threads; ms per call, median of {args.repeats} passes\n")
    print("| layer | rows | " + " | ".join(kernels) + " |")
    print("|---|---|" + "---|" * len(kernels))
    with torch.inference_mode():
        for name, (out, inp) in SHAPES.items():
            copies = 1 if name == "lm_head" else 30
            layers = []
            for _ in range(copies):
                layer = torch.nn.Linear(inp, out, bias=False)
                layer.weight.copy_(torch.randn(out, inp, generator=generator))
                layers.append(layer)
            for rows in args.rows:
                x = torch.randn(rows, inp, generator=generator)
                cells = []
                for kernel in kernels.values():
                    for layer in layers:  # warm up (and pack each copy once)
                        kernel(layer, x)
                    times = []
                    for _ in range(args.repeats):
                        started = time.perf_counter()
                        for layer in layers:
                            kernel(layer, x)
                        times.append((time.perf_counter() - started) / copies * 1000)
                    cells.append(f"{statistics.median(times):.2f}")
                print(f"| {name} | {rows} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
