"""Check params.yaml (and the files it names) without running anything.

python -m lidr.check [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys

from lidr.config import load_params
from lidr.errors import LidrError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    try:
        p = load_params(args.params)
    except LidrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    iters = ", ".join(f"{k} (from {v.start})" for k, v in p.iterations.items())
    others = ", ".join(p.languages.others)
    print(
        f"{args.params}: ok. model {p.model.base}; languages {p.languages.dominant} + {others};"
        f" iterations {iters}; backend {p.generation.backend}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
