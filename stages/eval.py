"""Evaluate a model per language on an MGSM-layout math set (accuracy, off-target rate; only with
eval.mgsm.enabled) and write its answers to X-AlpacaEval-layout instructions, which the judge stage compares.

The question goes in the reference's math wrapper; greedy decoding, repetition penalty from params.
Accuracy: the last number of the answer equals the gold answer. Off-target: py3langid, restricted to
the configured languages, says the answer is not in the question's language.

Language fidelity: the share of instruction answers written in the instruction's language (py3langid,
same restriction; an empty answer is not). Each share has its n and 95% Wilson interval. The same stage
evaluates m0 and every iteration; stages.compare pairs an iteration's outcomes with m0's, item by item.

Output: lidr.records.EVAL_ANSWER (MGSM answers) and lidr.records.ALPACA_ANSWER (instruction answers).
Metrics: {"mgsm": {lang: {"accuracy", "accuracy_ci95", "off_target_rate", "n"}},
          "mgsm_avg": {"accuracy", "off_target_rate"},
          "fidelity": {lang|"all": {"k", "n", "share", "ci95"}}}
Instruction answers: greedy, repetition penalty from params; alpaca_eval's "output"/"generator" fields, so the
file can serve as reference outputs. Each part's cost goes to its own file.

    python -m stages.eval --model models/general-m1 --answers data/general-m1/eval_answers.jsonl \
        --metrics metrics/eval/general-m1.json --cost metrics/cost/general-m1/eval.json \
        --meta data/general-m1/eval_answers.meta.json --alpaca-answers data/general-m1/alpaca_answers.jsonl \
        --alpaca-cost metrics/cost/general-m1/eval_alpaca.json
"""

from pathlib import Path

import polars as pl

from lidr import stage
from lidr.backends import Request, make_backend
from lidr.data import load_alpaca, load_mgsm
from lidr.evaluate import detect_language, extract_last_number, is_correct
from lidr.generate import decoding_for, generate
from lidr.io import write_json
from lidr.prompts import task_messages
from lidr.records import ALPACA_ANSWER, EVAL_ANSWER, write_records
from lidr.stats import share, wilson


def score(rows: list[dict], completions, languages: tuple[str, ...]) -> list[dict]:
    out = []
    for row, c in zip(rows, completions, strict=True):
        response = c.text.strip()
        detected, _ = detect_language(response, languages) if response else (None, 0.0)
        out.append(
            {
                "id": row["id"],
                "lang": row["lang"],
                "question": row["question"],
                "gold": row["answer"],
                "response": response,
                "predicted": extract_last_number(response),
                "correct": is_correct(response, row["answer"]),
                "detected_lang": detected,
                "on_target": detected == row["lang"],
                "finish_reason": c.finish_reason,
                "n_tokens": c.n_tokens,
            }
        )
    return out


def summarise(records: list[dict]) -> dict:
    df = pl.DataFrame(records)
    per_lang = df.group_by("lang", maintain_order=True).agg(
        pl.col("correct").mean().alias("accuracy"),
        (~pl.col("on_target")).mean().alias("off_target_rate"),
        pl.len().alias("n"),
    )
    mgsm = {
        r["lang"]: {
            "accuracy": round(r["accuracy"], 4),
            "accuracy_ci95": [round(v, 4) for v in wilson(round(r["accuracy"] * r["n"]), r["n"])],
            "off_target_rate": round(r["off_target_rate"], 4),
            "n": r["n"],
        }
        for r in per_lang.iter_rows(named=True)
    }
    return {
        "mgsm": mgsm,
        "mgsm_avg": {
            "accuracy": round(per_lang["accuracy"].mean(), 4),
            "off_target_rate": round(per_lang["off_target_rate"].mean(), 4),
        },
    }


def answer_records(rows: list[dict], completions, generator: str, languages: tuple[str, ...]) -> list[dict]:
    out = []
    for row, c in zip(rows, completions, strict=True):
        text = c.text.strip()
        detected = detect_language(text, languages)[0] if text else None
        out.append(
            {
                **row,
                "output": text,
                "generator": generator,
                "finish_reason": c.finish_reason,
                "n_tokens": c.n_tokens,
                "detected_lang": detected,
                "on_target": detected == row["lang"],
            }
        )
    return out


def fidelity(records: list[dict]) -> dict:
    """Share of answers in the asked language, per language and over all, with n and 95% interval."""
    out = {}
    for lang in dict.fromkeys(r["lang"] for r in records):
        rs = [r for r in records if r["lang"] == lang]
        out[lang] = share(sum(r["on_target"] for r in rs), len(rs))
    out["all"] = share(sum(r["on_target"] for r in records), len(records))
    return out


def main(args) -> None:
    params = stage.params_of(args)
    m = params.eval.mgsm
    decoding = decoding_for(params.generation, params.seed, "mgsm", params.eval)
    # the inputs are read (and their errors reported) before any model loads
    mgsm_rows = [r for lang in m.languages for r in load_mgsm(m.path, lang, m.limit)] if m.enabled else []
    a = params.eval.alpaca
    rows = [r for lang in a.languages for r in load_alpaca(a.path, lang, a.limit, params.seed)]
    backend = make_backend(args.model, params.generation, params.model, params.seed)
    cost = stage.Cost()
    records, metrics = [], {"mgsm": {}, "mgsm_avg": {"accuracy": None, "off_target_rate": None}}
    if m.enabled:  # eval.mgsm.enabled: off, the answers file is empty and the tables are too
        requests = [Request.chat(task_messages(r["question"], "math", r["lang"])) for r in mgsm_rows]
        completions = generate(backend, requests, decoding, model_dir=args.model, desc="evaluate mgsm", cost=cost)
        languages = tuple(dict.fromkeys((*params.languages.all, *m.languages)))
        records = score(mgsm_rows, completions, languages)
        metrics = summarise(records)
    mgsm_cost = cost.as_metrics()

    cost = stage.Cost()
    requests = [Request.chat(task_messages(r["instruction"], "general", r["lang"])) for r in rows]
    answer_decoding = decoding_for(params.generation, params.seed, "instruction", params.eval)
    completions = generate(
        backend, requests, answer_decoding, model_dir=args.model, desc="answer instructions", cost=cost
    )
    languages = tuple(dict.fromkeys((*params.languages.all, *a.languages)))
    answers = answer_records(rows, completions, Path(args.model).name, languages)
    metrics["fidelity"] = fidelity(answers)
    write_records(args.answers, EVAL_ANSWER, records)
    write_records(args.alpaca_answers, ALPACA_ANSWER, answers)
    write_json(args.metrics, metrics)
    write_json(args.cost, mgsm_cost)
    write_json(args.alpaca_cost, cost.as_metrics())
    stage.write_meta(
        args.meta,
        backend.name,
        args.model,
        decoding=decoding.__dict__,
        answer_decoding=answer_decoding.__dict__,
        mgsm=m.path,
    )
    if metrics["mgsm"]:
        print(pl.DataFrame([{"lang": k, **v} for k, v in metrics["mgsm"].items()]).drop("accuracy_ci95"))
    print(pl.DataFrame([{"lang": k, **v} for k, v in metrics["fidelity"].items()]).drop("ci95"))


if __name__ == "__main__":
    ap = stage.parser(__doc__)
    for flag in ("--model", "--answers", "--metrics", "--cost", "--meta", "--alpaca-answers", "--alpaca-cost"):
        ap.add_argument(flag, required=True)
    stage.run(main, ap)
