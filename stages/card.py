"""Model card with evaluation metrics: the training card of a checkpoint, completed with the eval stage's metrics.

A checkpoint folder is the train stage's DVC output, written before the model is evaluated, so its own
README.md cannot hold the eval metrics without changing an output after the fact. This stage writes the
complete card (training card + language fidelity, and MGSM when measured) as a separate output.

Input: the checkpoint's README.md (stages/train.py), the eval metrics
{"fidelity": {lang: {"k", "n", "share", "ci95"}}, "mgsm": {lang: {"accuracy", "off_target_rate", "n"}},
 "mgsm_avg": {"accuracy", "off_target_rate"}} (mgsm empty when eval.mgsm.enabled is off).
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
    sections = []
    fidelity = {k: v for k, v in metrics.get("fidelity", {}).items() if v.get("n")}
    if fidelity:
        rows = ["| language | share in the asked language | 95% interval | n |", "|---|---|---|---|"]
        for lang, m in fidelity.items():
            rows.append(f"| {lang} | {m['share']} | {m['ci95']} | {m['n']} |")
        sections.append(f"## Language fidelity (from `{eval_path}`)\n\n" + "\n".join(rows) + "\n")
    if metrics.get("mgsm"):  # eval.mgsm.enabled
        rows = ["| language | accuracy | off-target rate | n |", "|---|---|---|---|"]
        for lang, m in metrics["mgsm"].items():
            rows.append(f"| {lang} | {m['accuracy']} | {m['off_target_rate']} | {m['n']} |")
        avg = metrics.get("mgsm_avg", {})
        rows.append(f"| average | {avg.get('accuracy')} | {avg.get('off_target_rate')} | |")
        sections.append(f"## Evaluation (MGSM, from `{eval_path}`)\n\n" + "\n".join(rows) + "\n")
    if not sections:
        sections.append(f"## Evaluation\n\nNo measure in `{eval_path}`.\n")
    return head + "\n\n" + "\n".join(sections)


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
