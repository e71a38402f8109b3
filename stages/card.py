"""Model card with evaluation metrics: the training card of a checkpoint, completed with the eval stage's metrics.

A checkpoint folder is the train stage's DVC output, written before the model is evaluated, so its own
README.md cannot hold the eval metrics without changing an output after the fact. This stage writes the
complete card (training card + MGSM metrics) as a separate output.

Input: the checkpoint's README.md (stages/train.py), the eval metrics
{"mgsm": {lang: {"accuracy", "off_target_rate", "n"}}, "mgsm_avg": {"accuracy", "off_target_rate"}}.
Output: a Markdown card.

    python -m stages.card --model models/general-m1 --eval metrics/eval/general-m1.json \
        --out cards/general-m1/README.md
"""

import json
from pathlib import Path

from lidr import stage
from lidr.errors import DataError
from lidr.io import write_text

PENDING = "Evaluation metrics: not known when this checkpoint is written."


def card_with_metrics(card: str, metrics: dict, eval_path: str) -> str:
    if PENDING not in card:
        raise DataError(f"the model card does not have the pending-evaluation paragraph ({PENDING!r})")
    head = card[: card.index(PENDING)].rstrip()
    rows = ["| language | accuracy | off-target rate | n |", "|---|---|---|---|"]
    for lang, m in metrics.get("mgsm", {}).items():
        rows.append(f"| {lang} | {m['accuracy']} | {m['off_target_rate']} | {m['n']} |")
    if "mgsm_avg" in metrics:
        avg = metrics["mgsm_avg"]
        rows.append(f"| average | {avg['accuracy']} | {avg['off_target_rate']} | |")
    return f"{head}\n\n## Evaluation (MGSM, from `{eval_path}`)\n\n" + "\n".join(rows) + "\n"


def main(args) -> None:
    card_path = Path(args.model) / "README.md"
    if not card_path.exists():
        raise DataError(f"{card_path}: file not found (the train stage writes it)")
    try:
        metrics = json.loads(Path(args.eval).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{args.eval}: cannot read the eval metrics ({e})") from None
    write_text(args.out, card_with_metrics(card_path.read_text(encoding="utf-8"), metrics, args.eval))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--eval", "--out"):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
