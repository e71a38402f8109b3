"""The data-quality gate: named rules per pair and side, then a great-expectations suite over what is kept.

Rules and thresholds: params.yaml `filter` (lidr/gate.py); the suite: `filter.suite` (lidr/quality.py).

Input: lidr.records.PAIR. Outputs:
- kept pairs, what training reads: lidr.records.KEPT_PAIR;
- rejected pairs: lidr.records.REJECTED_PAIR (the pair, "rejected_by" and "reasons");
- metrics: {"kept"|"rejected"|"kept_share": {lang: x}, "rules": {rule: n}, "rules_by_lang": {lang: {rule: n}},
  "rules_by_side": {side: {rule: n}}, "total": {"kept", "rejected"}, "suite": {"success", "failed"}};
- validation: {"success", "kept": GX result, "per_language": GX result, "failures": [str]};
- report: Markdown for a person.
When the suite fails, the stage writes the validation and the report (both marked failed), removes any
stale kept pairs and metrics, and exits 2 naming the failed expectation, the language and the numbers.

    python -m stages.filter --chain general --pairs data/general-m1/pairs.jsonl \
        --kept data/general-m1/pairs_kept.jsonl --rejected data/general-m1/pairs_rejected.jsonl \
        --metrics metrics/gate/general-m1.json --validation metrics/gate/general-m1.validation.json \
        --report metrics/gate/general-m1.md
"""

from pathlib import Path

from lidr import stage
from lidr.errors import GateError
from lidr.gate import apply_rules
from lidr.io import write_json, write_text
from lidr.quality import gate_metrics, report_markdown, run_suite
from lidr.records import KEPT_PAIR, PAIR, REJECTED_PAIR, read_records, write_records


def gate(pairs: list[dict], params, dominant_pairs: bool = True) -> tuple[list[dict], list[dict], dict, dict]:
    """(kept, rejected, metrics, validation) of the pairs under params.filter. Without `dominant_pairs` (the
    held-out block's x pairs only) no pair is in the dominant language, and the suite does not ask for any."""
    langs = params.languages.all
    pair_langs = langs if dominant_pairs else params.languages.others
    kept, rejected = apply_rules(pairs, params.filter, langs)
    metrics = gate_metrics(kept, rejected, pair_langs)
    validation = run_suite(kept, rejected, langs, params.filter.suite, pair_langs)
    metrics["suite"] = {"success": validation["success"], "failed": len(validation["failures"])}
    return kept, rejected, metrics, validation


def main(args) -> None:
    params = stage.params_of(args)
    pairs = read_records(args.pairs, PAIR)
    kept, rejected, metrics, validation = gate(pairs, params, params.chain_named(args.chain).dominant_pairs)
    write_json(args.validation, validation)
    write_text(args.report, report_markdown(Path(args.pairs).parent.name, metrics, validation, rejected))
    if not validation["success"]:
        for stale in (args.kept, args.metrics):
            Path(stale).unlink(missing_ok=True)
        raise GateError(
            f"{args.pairs}: the data-quality gate failed ({len(kept)} of {len(pairs)} pairs kept; "
            f"report: {args.report}): " + " | ".join(validation["failures"])
        )
    write_records(args.kept, KEPT_PAIR, [{f: p[f] for f in KEPT_PAIR.names} for p in kept])
    write_records(args.rejected, REJECTED_PAIR, rejected)
    write_json(args.metrics, metrics)
    print(f"kept {metrics['kept']}, rejected {metrics['rejected']}; rejections per rule {metrics['rules']}")


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--pairs", "--kept", "--rejected", "--metrics", "--validation", "--report"):
        ap.add_argument(flag, required=True)
    stage.add_chain(ap)
    stage.run(main, ap)
