"""Sample this iteration's English prompts from its chain's sources: a seeded block per source, disjoint across
the chain's iterations (each takes the block of its round).

With `--heldout`, the fixed held-out block instead (`heldout.sources`, each source's first n prompts
of its seeded order), checked to share no id and no text with any chain's source: no iteration
ever trains on it.

Output: lidr.records.PROMPT_EN

    python -m stages.sample --iteration general-m1 --out data/general-m1/prompts_en.jsonl
    python -m stages.sample --heldout --out data/heldout/prompts_en.jsonl
"""

import polars as pl

from lidr import stage
from lidr.data import heldout_prompts, sample_prompts
from lidr.records import PROMPT_EN, write_records


def main(args) -> None:
    params = stage.params_of(args)
    if args.heldout:
        prompts = heldout_prompts(params.heldout.sources, params.training_sources, params.seed)
    else:
        it = params.iteration(args.iteration)
        prompts = sample_prompts(params.chain(args.iteration).sources, it.round, params.seed)
    write_records(args.out, PROMPT_EN, prompts)
    print(pl.DataFrame(prompts).group_by("kind").len().sort("kind"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--iteration")
    which.add_argument("--heldout", action="store_true", help="the held-out block (heldout.sources)")
    ap.add_argument("--out", required=True)
    stage.run(main, ap)
