"""CPU cost of one training step on the embedded model (SmolLM2-135M): seconds per optimizer step and peak
memory, for LoRA and full fine-tuning, with the params.yaml training settings (batch, accumulation, length).

Each mode runs in its own process so that its peak resident memory is its own. The machine may be shared:
the figures are upper bounds.

    python benchmarks/train_cpu.py --steps 3 --out /tmp/train_cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_pairs(path: Path, n: int) -> None:
    """Pairs with responses of realistic length (about 60 to 150 tokens), in the pipeline's format."""
    sentence = "The answer follows from the numbers in the question, step by step, with each result checked. "
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(
                json.dumps(
                    {
                        "prompt": [
                            {"role": "user", "content": f"Question {i}: how many apples are left after {i} are eaten?"}
                        ],
                        "chosen": [{"role": "assistant", "content": sentence * (4 + i % 4)}],
                        "rejected": [{"role": "assistant", "content": "apples " * (40 + 10 * (i % 3))}],
                    }
                )
                + "\n"
            )


def one_mode(mode: str, model: str, steps: int) -> dict:
    from transformers import TrainerCallback

    import lidr.train
    from lidr.config import load_params

    params = load_params(ROOT / "params.yaml")
    params = dataclasses.replace(params, train=params.train.replace(mode=mode, save_steps=10**6))
    t = params.train
    work = Path(tempfile.mkdtemp())
    lidr.train.CHECKPOINT_ROOT = work / "ckpt"
    pairs = work / "pairs.jsonl"
    make_pairs(pairs, steps * t.per_device_train_batch_size * t.gradient_accumulation_steps)
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    summary = lidr.train.train(params, model, str(pairs), None, None, callbacks=[Clock()])
    return {
        "mode": mode,
        "steps": summary["steps"],
        "pairs_per_step": t.per_device_train_batch_size * t.gradient_accumulation_steps,
        "max_length": t.max_length,
        "seconds_per_step": [round(x, 1) for x in times],
        "median_seconds_per_step": round(statistics.median(times), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": __import__("torch").get_num_threads(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--model", default=None, help="a model folder (default: materialise the embedded model)")
    ap.add_argument("--mode", choices=["lora", "full"], default=None, help="(internal) run one mode")
    ap.add_argument("--out", default=None, help="write the results here as JSON")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.mode:
        print("RESULT " + json.dumps(one_mode(args.mode, args.model, args.steps)), flush=True)
        return
    model = args.model
    if model is None:
        from lidr.config import load_params
        from lidr.model import materialise_base_model

        model = str(Path(tempfile.mkdtemp()) / "m0")
        materialise_base_model(load_params(ROOT / "params.yaml").model, Path(model))
    results = []
    for mode in ("lora", "full"):
        cmd = [sys.executable, __file__, "--mode", mode, "--model", model, "--steps", str(args.steps)]
        out = subprocess.run(
            cmd, capture_output=True, text=True, check=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}
        )
        results.append(json.loads(next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))[7:]))
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
