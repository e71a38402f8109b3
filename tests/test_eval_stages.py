"""The judge and summarize stages' pure parts: which comparisons run, joins, win rates and the summary files."""

import argparse
import csv
import json
import math

import pytest
import yaml

from lidr.errors import JoinError
from lidr.io import write_jsonl
from lidr.judge.winrate import summarise, win_rates
from stages import summarize
from stages.judge import first_per_language, join_answers, join_reference, opponents
from tests.conftest import ROOT


def test_opponents_judge_a_shared_source_once():
    ref = "data/builtin/xalpaca/reference_{lang}.json"
    assert opponents(ref, None, None) == {"reference": "reference"}  # judge@<model>, m0 included
    m1 = opponents(ref, "data/m0/a.jsonl", "data/m0/a.jsonl")  # head_to_head@<iteration>
    assert m1 == {"previous": "data/m0/a.jsonl", "m0": "data/m0/a.jsonl"}
    assert opponents("previous", None, None) == {}
    m2 = opponents("previous", "data/m1/a.jsonl", "data/m0/a.jsonl")
    assert m2 == {"reference": "data/m1/a.jsonl", "previous": "data/m1/a.jsonl", "m0": "data/m0/a.jsonl"}


def answer(i, lang="es", out="x"):
    """An instruction answer (lidr.records.ALPACA_ANSWER)."""
    return {
        "id": f"q{i}",
        "lang": lang,
        "dataset": "d",
        "instruction": f"Pregunta {i}",
        "output": out,
        "generator": "m1",
        "finish_reason": "stop",
        "n_tokens": 1,
        "detected_lang": lang,
        "on_target": True,
    }


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


def judged(lang, pref, verdict, ok=True, mass=0.5, used=2, disagree=False):
    # each order: log-probabilities of the two verdict tokens, together `mass` of the judge's probability
    lp = math.log(mass / 2)
    return {
        "lang": lang,
        "preference": pref if ok else None,
        "verdict": verdict if ok else None,
        "ok": ok,
        "orders_used": used if ok else 0,
        "order_disagreement": disagree,
        "identical_outputs": False,
        "opponent": "m0",
        "orders": [{"logprobs": {"m": lp, "M": lp}}] * 2,
    }


def test_win_rates_and_head_to_head_counts():
    recs = [
        judged("es", 0.8, "win"),
        judged("es", 0.5, "tie", disagree=True),
        judged("es", 0.2, "lose", used=1),
        judged("es", 0, "", False),
        judged("en", 0.9, "win", mass=0.02),
    ]
    table = win_rates(recs)
    es = {
        "win_rate": 50.0,
        "standard_error": round(100 * 0.3 / math.sqrt(3), 2),  # [0.8, 0.5, 0.2]: sample sd 0.3
        "discrete_win_rate": 50.0,
        "n_wins": 1,
        "n_wins_base": 1,
        "n_draws": 1,
        "n_total": 3,
        "n": 4,
        "n_failed": 1,
        "n_one_order": 1,
        "n_identical": 0,
        "order_disagreements": 1,
        "verdict_mass": 0.5,
    }
    assert table["es"] == es
    assert table["en"]["win_rate"] == 90.0 and table["en"]["verdict_mass"] == 0.02
    assert table["en"]["standard_error"] is None  # one instruction
    m = summarise({"reference": recs, "previous": recs}, "local:m0", "ref", "lidr")
    assert m["alpaca"]["es"] == es and m["prompt"] == "lidr"
    assert m["alpaca_avg"]["win_rate"] == 70.0
    assert m["head_to_head"]["previous"] == {"opponent": "m0", "per_lang": table}


def test_judge_limit_keeps_the_first_instructions_of_each_language():
    rows = [answer(i, lang) for lang in ("en", "es") for i in range(3)]
    assert [(a["lang"], a["id"]) for a in first_per_language(rows, 2)] == [
        ("en", "q0"),
        ("en", "q1"),
        ("es", "q0"),
        ("es", "q1"),
    ]
    assert first_per_language(rows, 0) == rows


def share(k, n):
    from lidr.stats import share as _share

    return _share(k, n)


@pytest.mark.parametrize("every_model", [False, True], ids=["default-m0-and-m2-evaluated", "every-model-evaluated"])
def test_summarize_writes_summary_plots_and_report(tmp_path, monkeypatch, every_model):
    """The default evaluates m0 and general-m2: general-m1 is trained (its gate, loss and curves are reported) but
    not evaluated (a gap in the plots, named in the report). With every model evaluated, M1 is in every table."""
    from lidr.config import parse_params
    from lidr.stats import mean_interval, paired_shares

    if every_model:
        data = yaml.safe_load((ROOT / "params.yaml").read_text())
        data["eval"]["models"] = ["m0", "general-m1", "general-m2"]
        data["eval"]["iterations"] = {"general-m1": "m0", "general-m2": "general-m1"}
        monkeypatch.setattr(summarize.stage, "params_of", lambda args: parse_params(data, root=ROOT))

    names = ("eval", "compare", "judge", "head_to_head", "preference", "likelihood", "gate", "cost", "train")
    dirs = {name: tmp_path / name for name in names}
    for d in dirs.values():
        d.mkdir()
    langs = ("en", "es", "de", "fr", "ru")
    for step, model in enumerate(("m0", "general-m1", "general-m2")):
        mgsm = {
            lang: {"accuracy": 0.0, "accuracy_ci95": [0.0, 0.32], "off_target_rate": 0.5, "n": 8} for lang in langs
        }
        fidelity = {lang: share(6 + 2 * step, 10) for lang in (*langs, "all")}
        ev = {"mgsm": mgsm, "mgsm_avg": {"accuracy": 0.0, "off_target_rate": 0.5}, "fidelity": fidelity}
        if step:
            up = paired_shares([False] * 10, [True] * 10)  # excludes 0
            flat = paired_shares([True] * 10, [True] * 10)
            vs_m0 = {
                "fidelity": {lang: up if lang in ("es", "de", "fr") else flat for lang in (*langs, "all")},
                "mgsm": {lang: flat for lang in (*langs, "all")},
                "likelihood": {
                    "gain": {lang: mean_interval([0.01, 0.02]) for lang in langs},
                    # above 0 in es and de only: (c) holds in 2 of 4
                    "contrast": {
                        lang: mean_interval([0.01, 0.02] if lang in ("es", "de") else [-0.01, 0.02])
                        for lang in langs[1:]
                    },
                },
            }
            (dirs["compare"] / f"{model}.json").write_text(json.dumps({"vs_m0": vs_m0}))
            h2h = {"judge": "local:m0", "alpaca": {}, "head_to_head": {"m0": {"opponent": "m0", "per_lang": {}}}}
            (dirs["head_to_head"] / f"{model}.json").write_text(json.dumps(h2h))
            x = {
                lang: {"accuracy": share(9, 10), "margin": mean_interval([1.0, 2.0]), "p_sign": 0.02}
                for lang in langs[1:]
            }
            x["ru"]["accuracy"] = share(5, 10)
            (dirs["preference"] / f"{model}.json").write_text(json.dumps({"heldout": {"x": x}}))
            gate = {"total": {"kept": 7, "rejected": 3}, "kept_by_type": {"x": {"es": 3, "de": 1}, "en": {"es": 3}}}
            (dirs["gate"] / f"{model}.json").write_text(json.dumps(gate))
            train = {"pairs": 7, "steps": 2, "final_loss": 1.5 - 0.25 * step, "final_nll": 1.0, "train_loss": 1.6}
            (dirs["train"] / f"{model}.json").write_text(json.dumps(train))
            for curve, column in [
                ("loss", "loss"),
                ("nll", "nll"),
                ("dpo_loss", "dpo_loss"),
                ("rewards/margins", "margins"),
                ("rewards/accuracies", "accuracies"),
                ("learning_rate", "learning_rate"),
            ]:
                f = tmp_path / "dvclive" / model / "plots" / "metrics" / f"{curve}.tsv"
                f.parent.mkdir(parents=True, exist_ok=True)
                f.write_text(f"step\t{column}\n0\t2.0\n1\t{1.0 + step}\n")
        (dirs["eval"] / f"{model}.json").write_text(json.dumps(ev))
        ll = {lang: mean_interval([-2.0 + 0.01 * step, -2.1 + 0.01 * step]) for lang in langs}
        (dirs["likelihood"] / f"{model}.json").write_text(json.dumps({"likelihood": ll}))
        alpaca = {lang: {"win_rate": 10.0 + step, "n": 3, "n_failed": 0, "verdict_mass": 0.01} for lang in langs}
        (dirs["judge"] / f"{model}.json").write_text(json.dumps({"judge": "local:m0", "alpaca": alpaca}))
    (dirs["gate"] / "heldout.json").write_text(json.dumps({"total": {"kept": 5, "rejected": 5}, "kept_by_type": {}}))
    (dirs["cost"] / "general-m1").mkdir()
    (dirs["cost"] / "general-m1" / "generate.json").write_text(
        json.dumps({"seconds": 10.0, "generated_tokens": 500, "tokens_per_s": 50.0})
    )
    args = argparse.Namespace(
        params="params.yaml",
        evals=str(dirs["eval"]),
        compares=str(dirs["compare"]),
        judges=str(dirs["judge"]),
        head_to_heads=str(dirs["head_to_head"]),
        preference=str(dirs["preference"]),
        likelihoods=str(dirs["likelihood"]),
        gates=str(dirs["gate"]),
        costs=str(dirs["cost"]),
        trains=str(dirs["train"]),
        live=str(tmp_path / "dvclive"),
        summary=str(tmp_path / "summary.json"),
        headline=str(tmp_path / "headline"),
        plots=str(tmp_path / "plots"),
        report=str(tmp_path / "report.md"),
        cost_report=str(tmp_path / "cost.md"),
    )
    summarize.main(args)
    summary = json.loads((tmp_path / "summary.json").read_text())
    # the newest model, averaged over the trained languages es de fr ru (the made-up files have no pooled
    # held-out accuracy and no average win rate: those keys are left out)
    assert summary == {
        "iteration": 2,
        "fidelity_gain": 0.75,
        "ll_contrast": 0.01,
        "mgsm": 0.0,
        "goal_a": 3,
        "goal_b": 3,
        "goal_c": 2,
        "goal": False,
    }
    es = json.loads((tmp_path / "headline" / "general-m2" / "es.json").read_text())
    assert es == {
        "fidelity": 1.0,
        "fidelity_gain": 1.0,
        "heldout_x_acc": 0.9,
        "ll_contrast": 0.015,
        "mgsm": 0.0,
        "win_rate": 12.0,
        "kept_x_pairs": 3,
    }
    assert json.loads((tmp_path / "headline" / "general-m2" / "ru.json").read_text())["heldout_x_acc"] == 0.5
    m0 = json.loads((tmp_path / "headline" / "m0" / "es.json").read_text())
    assert m0 == {"fidelity": 0.6, "mgsm": 0.0, "win_rate": 10.0}  # no held-out accuracy, pairs or loss for m0
    with open(tmp_path / "plots" / "language_fidelity.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["lang"] == "es"]
    m1 = [("1", "general-m1", "0.8", "0.4902")] if every_model else []  # not evaluated: no row, iterations kept
    assert [(r["iteration"], r["model"], r["value"], r["low"]) for r in rows] == [
        ("0", "m0", "0.6", "0.3127"),
        *m1,
        ("2", "general-m2", "1.0", "0.7225"),
    ]
    with open(tmp_path / "plots" / "heldout_x_pair_accuracy.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["lang"] == "de"]
    m1 = [("general-m1", "0.9")] if every_model else []
    assert [(r["model"], r["value"]) for r in rows] == [*m1, ("general-m2", "0.9")]  # none for m0
    with open(tmp_path / "plots" / "training_rewards_margins.csv") as f:
        assert [(r["model"], r["step"], r["value"]) for r in csv.DictReader(f)] == [
            ("general-m1", "0", "2.0"),
            ("general-m1", "1", "2.0"),
            ("general-m2", "0", "2.0"),
            ("general-m2", "1", "3.0"),
        ]
    for png in ("language_fidelity", "heldout_x_pair_accuracy", "mgsm_accuracy", "training_loss"):
        assert (tmp_path / "plots" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
    report = (tmp_path / "report.md").read_text()
    assert "![language fidelity](plots/language_fidelity.png)" in report
    assert report.count("**Goal not reached**") == 1
    assert "excluding 50%: 3 of 4 (es, de, fr; needed 4): fails" in report  # ru: 5 of 10
    assert "interval excluding 0: 3 of 4 (es, de, fr; needed 3): holds" in report
    assert "interval excluding 0: 2 of 4 (es, de; needed 3): fails" in report
    assert "| ru | 0.50 [0.24, 0.76] (n=10) | no | +0.00 [-0.16, +0.16] p=1 (+0/-0) | no |" in report
    assert "## Reference likelihood" in report
    assert "| general-m2 | x | de | 0.90 [0.60, 0.98] (n=10) | +1.500 [+0.520, +2.480] | 0.02 |" in report
    # all 10 gained: Agresti-Min d = 10/12, se = sqrt(11 - 100/12) / 12, upper end clipped to 1
    assert "| general-m2 | +0.00 [-0.16, +0.16] p=1 (+0/-0) | +1.00 [+0.57, +1.00] p=0.002 (+10/-0) |" in report
    assert "it is at chance" in report
    assert "| general-m1 | x | 3 | 1 | 0 | 0 | 7 | 10 |" in report  # trained: its gate and loss either way
    assert "| general-m1 | 7 | 2 | 1.25 | 1.0 |" in report
    not_evaluated = "the evaluation of general-m1 (trained; eval.models and eval.iterations)"
    assert (not_evaluated in report) is not every_model
    assert ("| general-m1 | x | es | 0.90 [0.60, 0.98] (n=10)" in report) is every_model  # held-out accuracy
    assert "| general-m1 | generate | 10.0 | 500 | 50.0 |" in (tmp_path / "cost.md").read_text()


def test_judge_stage_on_a_tiny_model(tmp_path, tiny_model):
    from lidr.data import load_alpaca
    from lidr.io import read_jsonl
    from stages import judge
    from tests.conftest import ROOT

    rows = [r for lang in ("en", "es") for r in load_alpaca(str(ROOT / "data/xalpacaeval/{lang}.json"), lang, 1)]
    for name, out in (("m0", "Short."), ("m1", "A longer answer.")):
        answers = [
            {
                **r,
                "output": out,
                "generator": name,
                "finish_reason": "stop",
                "n_tokens": 2,
                "detected_lang": r["lang"],
                "on_target": True,
            }
            for r in rows
        ]
        write_jsonl(tmp_path / f"{name}.jsonl", answers)

    def run(name, params=ROOT / "tests/fixtures/tiny_params.yaml", **opponents):
        args = argparse.Namespace(
            params=str(params),
            answers=str(tmp_path / "m1.jsonl"),
            judgements=str(tmp_path / f"{name}.judgements.jsonl"),
            metrics=str(tmp_path / f"{name}.json"),
            cost=str(tmp_path / f"{name}.cost.json"),
            **{"previous": None, "base": None, "judge_model": str(tiny_model), **opponents},
        )
        judge.main(args)
        metrics = json.loads((tmp_path / f"{name}.json").read_text())
        requests = json.loads((tmp_path / f"{name}.cost.json").read_text())["requests"]
        return read_jsonl(tmp_path / f"{name}.judgements.jsonl"), metrics, requests

    recs, m, requests = run("judge")  # judge@m1: against the reference outputs only
    assert {r["comparison"] for r in recs} == {"reference"} and len(recs) == 2
    assert {r["opponent"] for r in recs} == {"reference:gpt-4-turbo-2024-04-09"}
    assert set(m["alpaca"]) == {"en", "es"} and 0.0 <= m["alpaca_avg"]["win_rate"] <= 100.0
    assert m["head_to_head"] == {} and requests == 4  # 2 items x 2 orders

    m0 = str(tmp_path / "m0.jsonl")
    recs, m, requests = run("head_to_head", previous=m0, base=m0)  # head_to_head@m1
    assert sorted({r["comparison"] for r in recs}) == ["m0", "previous"] and len(recs) == 4
    assert {r["opponent"] for r in recs} == {"m0"} and m["alpaca"] == {}
    assert m["head_to_head"]["previous"] == m["head_to_head"]["m0"]  # the same opponent, judged once
    assert requests == 4

    # eval.alpaca.reference "previous": judge@m0 has nothing to judge, and loads no judge (no model at that path)
    params = yaml.safe_load((ROOT / "tests/fixtures/tiny_params.yaml").read_text())
    params["eval"]["alpaca"]["reference"] = "previous"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    recs, m, requests = run("nothing", params=tmp_path / "params.yaml", judge_model=str(tmp_path / "no-model"))
    assert recs == [] and requests == 0 and m["alpaca"] == m["head_to_head"] == {}


def test_language_fidelity_counts_answers_in_the_asked_language():
    from lidr.backends import Completion
    from stages.compare import paired
    from stages.eval import answer_records, fidelity

    rows = [
        {"id": "a", "lang": "es", "instruction": "Saluda."},
        {"id": "b", "lang": "es", "instruction": "Despídete."},
        {"id": "c", "lang": "es", "instruction": "Describe el mar."},
        {"id": "a", "lang": "de", "instruction": "Grüße."},
    ]
    texts = [
        "Hola, ¿cómo estás? Espero que tengas un buen día con tu familia.",
        "Goodbye, my friend, I hope to see you again very soon.",
        "",
        "Guten Morgen, wie geht es dir heute? Ich hoffe, es geht dir gut.",
    ]
    completions = [Completion(t, "stop", 10) for t in texts]
    recs = answer_records(rows, completions, "m1", ("en", "es", "de", "fr", "ru"))
    assert [(r["detected_lang"], r["on_target"]) for r in recs] == [
        ("es", True),
        ("en", False),
        (None, False),  # an empty answer is in no language
        ("de", True),
    ]
    out = fidelity(recs)
    assert (out["es"]["k"], out["es"]["n"], out["de"]["k"], out["all"]["k"], out["all"]["n"]) == (1, 3, 1, 2, 4)
    base = [{**r, "on_target": r["id"] == "b"} for r in recs]  # m0: only the second answer on target
    vs = paired(base, recs, "on_target", "m0.jsonl")
    assert (vs["es"]["gained"], vs["es"]["lost"], vs["all"]["gained"], vs["all"]["lost"]) == (1, 1, 2, 1)
    with pytest.raises(JoinError, match=r"m0.jsonl: no base-model outcome for es item 'c'"):
        paired(base[:2], recs, "on_target", "m0.jsonl")


def test_with_several_chains_each_plot_line_is_one_chain_from_m0():
    from lidr.report import by_chain

    values = {"m0": {"es": 0.5}, "general-m1": {"es": 0.6}, "math-m1": {"es": 0.7}}
    one = {"general": ["general-m1"]}
    assert by_chain(values, one) is values
    two = {"general": ["general-m1"], "math": ["math-m1"]}
    assert by_chain(values, two) == {
        "m0": {"general:es": 0.5, "math:es": 0.5},
        "general-m1": {"general:es": 0.6},
        "math-m1": {"math:es": 0.7},
    }
