"""The judge and summarize stages' pure parts: which comparisons run, joins, win rates and the summary files."""

import argparse
import csv
import json

import pytest

from lidr.errors import JoinError
from lidr.io import write_jsonl
from stages import summarize
from stages.judge import join_answers, join_reference, opponents, summarise, win_rates


def test_opponents_judge_a_shared_source_once():
    ref = "data/builtin/xalpaca/reference_{lang}.json"
    assert opponents(ref, None, None) == {"reference": "reference"}
    m1 = opponents(ref, "data/m0/a.jsonl", "data/m0/a.jsonl")
    assert m1 == {"reference": "reference", "previous": "data/m0/a.jsonl", "m0": "data/m0/a.jsonl"}
    assert opponents("previous", None, None) == {}
    assert opponents("previous", "data/m1/a.jsonl", "data/m0/a.jsonl")["reference"] == "data/m1/a.jsonl"


def answer(i, lang="es", out="x"):
    return {"id": f"q{i}", "lang": lang, "instruction": f"Pregunta {i}", "output": out, "generator": "m1"}


def test_join_answers_and_reference_fail_loudly_on_a_missing_item(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{**answer(0), "generator": "m0", "output": "old"}])
    assert join_answers([answer(0)], str(tmp_path / "a.jsonl")) == ("m0", ["old"])
    with pytest.raises(JoinError, match=r"a.jsonl: no answer for es instruction 'q1'"):
        join_answers([answer(0), answer(1)], str(tmp_path / "a.jsonl"))
    ref = [{"instruction": "Pregunta 0", "output": "ref", "generator": "gpt", "dataset": "d"}]
    (tmp_path / "ref_es.json").write_text(json.dumps(ref))
    assert join_reference([answer(0)], str(tmp_path / "ref_{lang}.json")) == ("reference:gpt", ["ref"])
    with pytest.raises(JoinError, match=r"ref_es.json: no reference output for instruction 'q1'"):
        join_reference([answer(1)], str(tmp_path / "ref_{lang}.json"))


def judged(lang, pref, verdict, ok=True):
    return {
        "lang": lang,
        "preference": pref if ok else None,
        "verdict": verdict if ok else None,
        "ok": ok,
        "opponent": "m0",
    }


def test_win_rates_and_head_to_head_counts():
    recs = [
        judged("es", 0.8, "win"),
        judged("es", 0.5, "tie"),
        judged("es", 0.2, "lose"),
        judged("es", 0, "", False),
        judged("en", 0.9, "win"),
    ]
    table = win_rates(recs)
    assert table["es"] == {"win_rate": 50.0, "n": 4, "n_failed": 1, "win": 1, "tie": 1, "lose": 1}
    assert table["en"]["win_rate"] == 90.0
    m = summarise({"reference": recs, "previous": recs}, "local:m0", "ref")
    assert m["alpaca"]["es"] == {"win_rate": 50.0, "n": 4, "n_failed": 1}
    assert m["alpaca_avg"]["win_rate"] == 70.0
    assert m["head_to_head"]["previous"] == {
        "opponent": "m0",
        "per_lang": {
            "es": {"win": 1, "tie": 1, "lose": 1, "win_rate": 50.0},
            "en": {"win": 1, "tie": 0, "lose": 0, "win_rate": 90.0},
        },
    }


def test_summarize_writes_summary_plots_and_report(tmp_path):
    evals, judges = tmp_path / "eval", tmp_path / "judge"
    evals.mkdir()
    judges.mkdir()
    for step, model in enumerate(("m0", "m1", "m2")):
        mgsm = {lang: {"accuracy": 0.1 * step, "off_target_rate": 0.5, "n": 8} for lang in ("en", "es")}
        (evals / f"{model}.json").write_text(json.dumps({"mgsm": mgsm}))
        alpaca = {lang: {"win_rate": 10.0 + step, "n": 3, "n_failed": 0} for lang in ("en", "es")}
        h2h = {}
        if step:
            per_lang = {lang: {"win": 1, "tie": 1, "lose": 1, "win_rate": 40.0 + step} for lang in ("en", "es")}
            h2h = {
                "previous": {"opponent": f"m{step - 1}", "per_lang": per_lang},
                "m0": {"opponent": "m0", "per_lang": per_lang},
            }
        (judges / f"{model}.json").write_text(json.dumps({"alpaca": alpaca, "head_to_head": h2h}))
    args = argparse.Namespace(
        params="params.yaml",
        evals=str(evals),
        judges=str(judges),
        summary=str(tmp_path / "summary.json"),
        plots=str(tmp_path / "plots"),
        report=str(tmp_path / "report.md"),
    )
    summarize.main(args)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["model"] == 2 and summary["alpaca"]["es"] == {"win_rate": 12.0}
    assert summary["alpaca_avg"] == {"win_rate": 12.0}
    assert summary["head_to_head"]["previous"]["en"] == {"win": 1, "tie": 1, "lose": 1, "win_rate": 42.0}
    with open(tmp_path / "plots" / "alpaca_win_rate.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["m0", "m1", "m2"] and rows[2]["es"] == "12.0"
    with open(tmp_path / "plots" / "h2h_previous_win_rate.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["model"], r["en"]) for r in rows] == [("m1", "41.0"), ("m2", "42.0")]
    report = (tmp_path / "report.md").read_text()
    assert "## X-AlpacaEval win rate" in report and "| m2 | previous (m1) | es | 1 | 1 | 1 | 42.0 |" in report


def test_judge_stage_on_a_tiny_model(tmp_path, tiny_model):
    from lidr.data import load_alpaca
    from lidr.io import read_jsonl
    from stages import judge
    from tests.conftest import ROOT

    rows = [r for lang in ("en", "es") for r in load_alpaca(str(ROOT / "data/builtin/xalpaca/{lang}.json"), lang, 1)]
    for name, out in (("m0", "Short."), ("m1", "A longer answer.")):
        write_jsonl(tmp_path / f"{name}.jsonl", [{**r, "output": out, "generator": name} for r in rows])
    args = argparse.Namespace(
        params=str(ROOT / "tests/fixtures/tiny_params.yaml"),
        answers=str(tmp_path / "m1.jsonl"),
        previous=str(tmp_path / "m0.jsonl"),
        base=str(tmp_path / "m0.jsonl"),
        judge_model=str(tiny_model),
        judgements=str(tmp_path / "judgements.jsonl"),
        metrics=str(tmp_path / "metrics.json"),
        cost=str(tmp_path / "cost.json"),
    )
    judge.main(args)
    recs = read_jsonl(tmp_path / "judgements.jsonl")
    assert sorted({r["comparison"] for r in recs}) == ["m0", "previous", "reference"] and len(recs) == 6
    assert {r["opponent"] for r in recs} == {"m0", "reference:lidr-handwritten"}
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["alpaca"]) == {"en", "es"} and 0.0 <= m["alpaca_avg"]["win_rate"] <= 100.0
    assert m["head_to_head"]["previous"] == m["head_to_head"]["m0"]  # the same opponent, judged once
    assert json.loads((tmp_path / "cost.json").read_text())["requests"] == 8  # 2 sources x 2 items x 2 orders
