"""Sample this iteration's English prompts: a seeded block per source, disjoint across iterations.

Output record: {"id", "kind": "general"|"math", "text", "source"}

    python -m stages.sample --iteration m1 --out data/m1/prompts_en.jsonl
"""

import polars as pl

from lidr import stage
from lidr.data import sample_prompts
from lidr.io import write_jsonl


def main(args) -> None:
    params = stage.params_of(args)
    it = params.iteration(args.iteration)
    prompts = sample_prompts(params.prompts.sources, it.round, params.seed)
    write_jsonl(args.out, prompts)
    print(pl.DataFrame(prompts).group_by("kind").len().sort("kind"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    ap.add_argument("--iteration", required=True)
    ap.add_argument("--out", required=True)
    stage.run(main, ap)
