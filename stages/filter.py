"""Gate the preference pairs: drop failed translations, empty and identical sides; count per language and rule.

Inputs: pairs.jsonl. Outputs: kept pairs (what training reads), rejected pairs with `rejected_by`,
and metrics {"kept": {lang: n}, "rejected": {lang: n}, "rules": {rule: n}, "kept_share": {lang: x}}.

    python -m stages.filter --pairs data/m1/pairs.jsonl --kept data/m1/pairs_kept.jsonl \
        --rejected data/m1/pairs_rejected.jsonl --metrics metrics/gate/m1.json
"""

import polars as pl

from lidr import stage
from lidr.errors import GateError
from lidr.gate import apply_rules
from lidr.io import read_jsonl, write_json, write_jsonl

TRAIN_FIELDS = ("id", "lang", "source_lang", "pair_type", "prompt", "chosen", "rejected")


def gate_metrics(kept: list[dict], rejected: list[dict], langs: tuple[str, ...]) -> dict:
    k = pl.DataFrame({"lang": [p["lang"] for p in kept]}, schema={"lang": pl.String})
    r = pl.DataFrame({"lang": [p["lang"] for p in rejected]}, schema={"lang": pl.String})
    kept_n = {lang: k.filter(pl.col("lang") == lang).height for lang in langs}
    rej_n = {lang: r.filter(pl.col("lang") == lang).height for lang in langs}
    rules = pl.DataFrame({"rule": [x for p in rejected for x in p["rejected_by"]]}, schema={"rule": pl.String})
    return {
        "kept": kept_n,
        "rejected": rej_n,
        "kept_share": {
            lang: round(kept_n[lang] / (kept_n[lang] + rej_n[lang]), 4) if kept_n[lang] + rej_n[lang] else 0.0
            for lang in langs
        },
        "rules": {row["rule"]: row["len"] for row in rules.group_by("rule").len().sort("rule").iter_rows(named=True)},
        "total": {"kept": len(kept), "rejected": len(rejected)},
    }


def main(args) -> None:
    params = stage.params_of(args)
    pairs = read_jsonl(args.pairs, required=("id", "lang", "prompt", "chosen", "rejected", "translation_ok"))
    kept, rejected = apply_rules(pairs, params.filter)
    if not kept:
        raise GateError(f"{args.pairs}: the gate rejected every pair; nothing to train on")
    metrics = gate_metrics(kept, rejected, params.languages.all)
    write_jsonl(args.kept, [{f: p[f] for f in TRAIN_FIELDS} for p in kept])
    write_jsonl(args.rejected, rejected)
    write_json(args.metrics, metrics)
    print(metrics)


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--pairs", "--kept", "--rejected", "--metrics"):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
