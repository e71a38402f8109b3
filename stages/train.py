"""Train the iteration's model: DPO + NLL on the kept pairs, from (and against) the starting model.

Outputs: the merged checkpoint (with a model card and lidr.meta.json: library versions),
training curves through dvclive, and metrics
{"steps", "pairs", "train_loss", "final_loss", "seconds", "peak_memory_mb"}.

    python -m stages.train --iteration m1 --model models/m0 --pairs data/m1/pairs_kept.jsonl \
        --out models/m1 --live dvclive/m1 --metrics metrics/train/m1.json
"""

import json
import time
from dataclasses import asdict

from lidr import stage
from lidr.io import atomic_path, write_json
from lidr.train import file_sha256, train

CARD = """---
base_model: {base}
library_name: transformers
tags: [lidr, dpo, multilingual]
---
# {iteration}: Language Imbalance Driven Rewarding

Trained by [lidr](https://github.com/) (Yang et al., ICLR 2025) with DPO + NLL on the model's own
preference pairs.

- base model (this project's m0): `{base}`
- iteration: `{iteration}`, started from `{start}` (`{model_dir}`)
- pairs: `{pairs}` (sha256 `{pairs_sha}`), {n_pairs} pairs
- beta: {beta}, NLL weight: {nll_weight}, seed: {seed}
- training: {steps} steps, final loss {final_loss}

Training settings:
```json
{train}
```

Evaluation metrics are written by the eval stage to `metrics/eval/{iteration}.json`.
"""


def main(args) -> None:
    params = stage.params_of(args)
    it = params.iteration(args.iteration)
    started = time.perf_counter()
    with atomic_path(args.out, directory=True) as tmp:
        summary = train(params, args.model, args.pairs, tmp, args.live)
        (tmp / "README.md").write_text(
            CARD.format(
                base=params.model.base,
                iteration=args.iteration,
                start=it.start,
                model_dir=args.model,
                pairs=args.pairs,
                pairs_sha=file_sha256(args.pairs),
                n_pairs=summary["pairs"],
                beta=params.beta,
                nll_weight=params.nll_weight,
                seed=params.seed,
                steps=summary["steps"],
                final_loss=summary["final_loss"],
                train=json.dumps(asdict(params.train), indent=2),
            ),
            encoding="utf-8",
        )
        # Not the run key: it hashes the weight files' mtimes, so identical runs would differ.
        stage.write_meta(tmp / "lidr.meta.json", "trl.DPOTrainer", args.model, pairs=args.pairs)
    metrics = {k: summary[k] for k in ("steps", "pairs", "train_loss", "final_loss")}
    write_json(args.metrics, metrics)
    write_json(
        args.cost, {"seconds": round(time.perf_counter() - started, 1), "peak_memory_mb": stage.peak_memory_mb()}
    )
    print(summary)


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--iteration", "--model", "--pairs", "--out", "--metrics", "--cost"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--live", default=None, help="dvclive folder for the training curves")
    stage.run(main, ap)
