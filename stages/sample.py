"""Sample a block's English prompts from its chain's sources: a seeded block per source, disjoint across
the chain's iterations (each takes the block of its round).

For the held-out block (`--chain heldout`, round 0), each source's first n prompts of its seeded order,
checked to share no id and no text with any other chain's source: no iteration ever trains on it.

Output: lidr.records.PROMPT_EN

    python -m stages.sample --chain general --round 0 --out data/general-m1/prompts_en.jsonl
    python -m stages.sample --chain heldout --round 0 --out data/heldout/prompts_en.jsonl
"""

import polars as pl

from lidr import stage
from lidr.config import HELDOUT_CHAIN
from lidr.data import heldout_prompts, sample_prompts
from lidr.errors import ParamsError
from lidr.records import PROMPT_EN, write_records


def main(args) -> None:
    params = stage.params_of(args)
    chain = params.chain_named(args.chain)
    if args.chain == HELDOUT_CHAIN:
        if args.round != 0:
            raise ParamsError(f"--round {args.round}: the held-out block ({HELDOUT_CHAIN}) has one block, round 0")
        prompts = heldout_prompts(chain.sources, params.training_sources, params.seed)
    else:
        prompts = sample_prompts(chain.sources, args.round, params.seed)
    write_records(args.out, PROMPT_EN, prompts)
    print(pl.DataFrame(prompts).group_by("kind").len().sort("kind"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    stage.add_chain(ap)
    ap.add_argument("--round", type=int, required=True, help="which disjoint block of the chain's prompts")
    ap.add_argument("--out", required=True)
    stage.run(main, ap)
