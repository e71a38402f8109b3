"""Judge a model's instruction answers: win rate against reference outputs, or head-to-head per language.

Two uses, one stage per model each in dvc.yaml:
- judge@<model> (m0 and every iteration): the "reference" comparison, against the reference outputs of
  eval.alpaca.reference (none when that is "previous": m0 has no previous model);
- head_to_head@<iteration>, with --previous and --base: "previous" (the starting model's answers) and "m0"
  (the base model's); with eval.alpaca.reference "previous", the "reference" comparison is the previous one.
Each comparison is judged in both orders by the judge of eval.judge (lidr.judge); a comparison whose
opponent is the same file as another one's is judged once. The `openai` judge uses alpaca_eval's weighted
GPT-4-turbo annotator prompt (with the multilingual rule), from the alpaca-eval package; the local judge
lidr's prompt.

Input: lidr.records.ALPACA_ANSWER (stages.eval). Output: lidr.records.JUDGEMENT
Metrics: {"judge", "prompt", "reference", "alpaca": {lang: TABLE}, "alpaca_avg": {"win_rate"},
          "head_to_head": {"previous"|"m0": {"opponent", "per_lang": {lang: TABLE}}}}
  (alpaca and alpaca_avg empty where there is no reference comparison, head_to_head empty without --previous)
TABLE, per language (lidr.judge.winrate.win_rates), as alpaca_eval describes a head-to-head (head_to_head):
  win_rate        100 x the mean preference over the instructions with one
  standard_error  100 x its standard error (sample standard deviation / sqrt(n_total)); null below 2
  discrete_win_rate, n_wins (preference > 0.5), n_wins_base (< 0.5), n_draws (exactly 0.5; identical outputs
  are draws without a judge call), n_total (instructions with a preference)
  n               instructions judged; n_failed: those with no preference in either order
  n_one_order     preferences from one order only, the other having failed
  n_identical     draws by identical outputs
  order_disagreements  pairs whose two orders do not lean the same way (position bias, not a draw)
  verdict_mass    the judge's mean probability on the two verdict tokens (null when nothing was judged)
`verdict_mass`: a judge that puts little there (the embedded 135M model) is at chance, whatever its win rate
says. Head-to-head win/tie/loss (the paper's) are n_wins/n_draws/n_wins_base. `eval.judge.limit` judges only
the first instructions of each language (those with reference outputs, in the built-in set).

    python -m stages.judge --answers data/general-m2/alpaca_answers.jsonl --judge-model models/m0 \
        --judgements data/general-m2/judgements.jsonl --metrics metrics/judge/general-m2.json \
        --cost metrics/cost/general-m2/judge.json
    python -m stages.judge --answers data/general-m2/alpaca_answers.jsonl \
        --previous data/general-m1/alpaca_answers.jsonl --base data/m0/alpaca_answers.jsonl \
        --judge-model models/m0 --judgements data/general-m2/head_to_head.jsonl \
        --metrics metrics/head_to_head/general-m2.json --cost metrics/cost/general-m2/head_to_head.json
"""

from pathlib import Path

from lidr import stage
from lidr.backends import make_backend
from lidr.data import load_reference_outputs
from lidr.errors import JoinError
from lidr.io import write_json
from lidr.judge.clients import LocalJudge, OpenAIJudge
from lidr.judge.compare import judge_pairs
from lidr.judge.winrate import summarise
from lidr.records import ALPACA_ANSWER, JUDGEMENT, read_records, write_records


def join_answers(answers: list[dict], path: str) -> tuple[str, list[str]]:
    """An opponent from another model's answers file: its name and its output for each of `answers`."""
    theirs = {(r["lang"], r["id"]): r for r in read_records(path, ALPACA_ANSWER)}
    missing = [(a["lang"], a["id"]) for a in answers if (a["lang"], a["id"]) not in theirs]
    if missing:
        raise JoinError(f"{path}: no answer for {missing[0][0]} instruction {missing[0][1]!r}")
    generator = next(iter(theirs.values()))["generator"]
    return generator, [theirs[(a["lang"], a["id"])]["output"] for a in answers]


def join_reference(answers: list[dict], pattern: str) -> tuple[str, list[str]]:
    tables = {lang: load_reference_outputs(pattern, lang) for lang in dict.fromkeys(a["lang"] for a in answers)}
    outputs, generators = [], set()
    for a in answers:
        ref = tables[a["lang"]].get(a["instruction"])
        if ref is None:
            raise JoinError(
                f"{pattern.format(lang=a['lang'])}: no reference output for instruction {a['id']!r}: "
                f"{a['instruction'][:60]!r}"
            )
        outputs.append(ref["output"])
        generators.add(str(ref["generator"]))
    return "reference:" + "+".join(sorted(generators)), outputs


def opponents(reference: str, previous: str | None, base: str | None) -> dict[str, str]:
    """comparison -> its opponents' source ("reference" or an answers file); equal sources are judged once.

    Without `previous` (judge@<model>): the reference outputs, if eval.alpaca.reference names them. With it
    (head_to_head@<iteration>): the previous model's and m0's answers, and the previous model's as the reference
    when eval.alpaca.reference is "previous"."""
    if not previous:
        return {} if reference == "previous" else {"reference": "reference"}
    out = {"reference": previous} if reference == "previous" else {}
    out["previous"] = previous
    if base:
        out["m0"] = base
    return out


def first_per_language(answers: list[dict], limit: int) -> list[dict]:
    """The first `limit` answers of each language (all with 0)."""
    if not limit:
        return answers
    seen: dict[str, int] = {}
    out = []
    for a in answers:
        seen[a["lang"]] = seen.get(a["lang"], 0) + 1
        if seen[a["lang"]] <= limit:
            out.append(a)
    return out


def main(args) -> None:
    params = stage.params_of(args)
    answers = first_per_language(read_records(args.answers, ALPACA_ANSWER), params.eval.judge.limit)
    cost = stage.Cost()
    # eval.judge.enabled off (the CPU default), or nothing to judge (judge@<model> with eval.alpaca.reference
    # "previous"): no judge is loaded, and the tables are empty
    enabled = params.eval.judge.enabled
    comparisons = opponents(params.eval.alpaca.reference, args.previous, args.base) if enabled else {}
    judge = None
    if comparisons and params.eval.judge.kind == "openai":
        judge = OpenAIJudge.from_env()
    elif comparisons:
        judge = LocalJudge(
            make_backend(args.judge_model, params.generation, params.model, params.seed),
            params.eval.judge.batch_size,
            Path(args.judge_model).name,
        )
    judged: dict[str, list[dict]] = {}
    by_comparison: dict[str, list[dict]] = {}
    for name, source in comparisons.items():
        if source not in judged:
            if source == "reference":
                opponent, outputs = join_reference(answers, params.eval.alpaca.reference)
            else:
                opponent, outputs = join_answers(answers, source)
            items = [
                {
                    "id": a["id"],
                    "lang": a["lang"],
                    "instruction": a["instruction"],
                    "model": a["generator"],
                    "opponent": opponent,
                    "output": a["output"],
                    "opponent_output": o,
                }
                for a, o in zip(answers, outputs, strict=True)
            ]
            judged[source] = judge_pairs(judge, items)
            cost.requests += sum(len(r["orders"]) for r in judged[source])
        by_comparison[name] = [{"comparison": name, **r} for r in judged[source]]
    name, prompt = (judge.name, judge.prompt.source) if judge else ("", "")
    metrics = summarise(by_comparison, name, params.eval.alpaca.reference, prompt)
    write_records(args.judgements, JUDGEMENT, [r for rs in by_comparison.values() for r in rs])
    write_json(args.metrics, metrics)
    write_json(args.cost, cost.as_metrics())
    print({k: metrics[k] for k in ("alpaca_avg", "head_to_head")})


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--answers", "--judge-model", "--judgements", "--metrics", "--cost"):
        ap.add_argument(flag, required=True)
    ap.add_argument("--previous", help="head-to-head: answers of the model this one starts from")
    ap.add_argument("--base", help="head-to-head: answers of the base model m0")
    stage.run(main, ap)
