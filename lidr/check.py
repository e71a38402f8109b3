"""Check params.yaml (and the files it names) without running anything.

Also hands `train` to trl.DPOConfig and `train.lora` to peft.LoraConfig, as the train stage will, so that a
key those libraries refuse is found before the first stage runs (--no-libraries skips it: seconds faster).

python -m lidr.check [--params params.yaml] [--no-libraries]
"""

from __future__ import annotations

import argparse
import sys

from lidr.config import HELDOUT_CHAIN, chain_order, load_params
from lidr.errors import LidrError, ParamsError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--no-libraries", action="store_true", help="skip the trl.DPOConfig/peft.LoraConfig check")
    args = ap.parse_args(argv)
    try:
        p = load_params(args.params)
        if not args.no_libraries:
            from lidr.train import check_train

            try:
                check_train(p)
            except ParamsError as e:
                raise ParamsError(f"{args.params}: {e}") from None
    except LidrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = chain_order(p)
    iters = "; ".join(
        f"chain {c}: " + ", ".join(f"{k} (from {p.iterations[k].start})" for k in ks) for c, ks in runs.items()
    )
    idle = [c for c in p.chains if c not in runs and c != HELDOUT_CHAIN]
    if idle:
        iters += f"; chains without iterations (not run): {', '.join(idle)}"
    iters += f"; held-out block: {sum(s.n for s in p.heldout.sources)} prompts ({HELDOUT_CHAIN})"
    iters += f"; evaluated: {', '.join(p.eval.models)}"
    others = ", ".join(p.languages.others)
    print(
        f"{args.params}: ok. model {p.model.base}; languages {p.languages.dominant} + {others};"
        f" {iters}; backend {p.generation.backend}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
