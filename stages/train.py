"""Train the iteration's model: DPO + NLL on the kept pairs, from (and against) the starting model.

Trains with `lidr.train.train` (docs/method.md, step 7) and writes, from the main process only: the merged
full checkpoint to --out, with its model card (README.md) and lidr.meta.json (the trainer, the starting model,
the pairs and the library versions), renamed into place when complete; the training curves to --live (dvclive);
steps, pairs and losses to --metrics; seconds and peak memory to --cost. Under a multi-process launch the other
processes train alongside and take part in gathering the final weights. Launched through accelerate with the
configuration that `train.launch` names, as the `train` stage of dvc.yaml does:

    python -m accelerate.commands.launch --config_file configs/accelerate/cpu.yaml -m stages.train \
        --iteration general-m1 --model models/m0 --pairs data/general-m1/pairs_kept.jsonl --out models/general-m1 \
        --live dvclive/general-m1 --metrics metrics/train/general-m1.json --cost metrics/cost/general-m1/train.json
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

Trained by lidr (Yang et al., ICLR 2025) with DPO + NLL on the model's own preference pairs.

- base model (this project's m0): `{base}`
- iteration: `{iteration}`, started from `{start}` (`{model_dir}`)
- pairs: `{pairs}` (sha256 `{pairs_sha}`), {n_pairs} pairs
- beta: {beta}, NLL weight: {nll_weight}, seed: {seed}
- training: {steps} steps, final loss {final_loss}, final NLL {final_nll}

Training settings:
```json
{train}
```

Evaluation metrics: not known when this checkpoint is written. The eval stage writes them to
`metrics/eval/{iteration}.json`, and the card stage writes this card with them to `cards/{iteration}/README.md`.
"""


def model_card(params, iteration: str, model_dir: str, pairs: str, summary: dict) -> str:
    return CARD.format(
        base=params.model.base,
        iteration=iteration,
        start=params.iteration(iteration).start,
        model_dir=model_dir,
        pairs=pairs,
        pairs_sha=file_sha256(pairs),
        n_pairs=summary["pairs"],
        beta=params.beta,
        nll_weight=params.nll_weight,
        seed=params.seed,
        steps=summary["steps"],
        final_loss=summary["final_loss"],
        final_nll=summary["final_nll"],
        train=json.dumps(asdict(params.train), indent=2),
    )


def main(args) -> None:
    from accelerate import PartialState

    params = stage.params_of(args)
    params.iteration(args.iteration)
    started = time.perf_counter()
    if not PartialState().is_main_process:  # the other processes train and take part in the final gather
        train(params, args.model, args.pairs, None, None)
        return
    with atomic_path(args.out, directory=True) as tmp:
        summary = train(params, args.model, args.pairs, tmp, args.live)
        (tmp / "README.md").write_text(model_card(params, args.iteration, args.model, args.pairs, summary), "utf-8")
        # Not the run key: it hashes the weight files' mtimes, so identical runs would differ.
        stage.write_meta(tmp / "lidr.meta.json", "trl.DPOTrainer", args.model, pairs=args.pairs)
    write_json(args.metrics, {k: summary[k] for k in ("steps", "pairs", "train_loss", "final_loss", "final_nll")})
    write_json(args.cost, stage.timed_cost(started))
    print(summary)


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--iteration", "--model", "--pairs", "--out", "--metrics", "--cost"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--live", default=None, help="dvclive folder for the training curves")
    stage.run(main, ap)
