"""The real pipeline, small: `dvc repro` on the tiny configuration in a copy of the project, a second
run in another copy that must give byte-identical outputs, then a `dvc exp run -S beta=...` that must
rerun training and what depends on it, and nothing before."""

import json
import re

import pytest

from tests.conftest import dvc, git, repro_tiny

pytestmark = pytest.mark.slow

SCHEMAS = {
    "data/{it}/prompts_en.jsonl": {"id", "kind", "text", "source"},
    "data/{it}/prompts.jsonl": {"id", "kind", "lang", "text", "origin", "ok", "error", "finish_reason"},
    "data/{it}/responses.jsonl": {"id", "kind", "lang", "messages", "response", "finish_reason", "n_tokens"},
    "data/{it}/translations.jsonl": {
        "id",
        "source_lang",
        "target_lang",
        "source_text",
        "text",
        "ok",
        "error",
        "raw",
        "finish_reason",
        "n_tokens",
    },
    "data/{it}/pairs.jsonl": {
        "id",
        "lang",
        "source_lang",
        "pair_type",
        "kind",
        "prompt",
        "chosen",
        "rejected",
        "chosen_origin",
        "rejected_origin",
        "chosen_finish_reason",
        "rejected_finish_reason",
        "translation_ok",
        "asks_translation",
        "chosen_source",
        "rejected_source",
        "chosen_source_finish_reason",
        "rejected_source_finish_reason",
    },
    "data/{it}/pairs_kept.jsonl": {"id", "lang", "source_lang", "pair_type", "prompt", "chosen", "rejected"},
    "data/{it}/eval_answers.jsonl": {
        "id",
        "lang",
        "question",
        "gold",
        "response",
        "predicted",
        "correct",
        "detected_lang",
        "on_target",
        "finish_reason",
        "n_tokens",
    },
    "data/{it}/alpaca_answers.jsonl": {
        "id",
        "lang",
        "dataset",
        "instruction",
        "output",
        "generator",
        "finish_reason",
        "n_tokens",
        "detected_lang",
        "on_target",
    },
    "data/{it}/heldout_scores.jsonl": {
        "id",
        "source_lang",
        "pair_type",
        "lang",
        "chosen_logp",
        "rejected_logp",
        "chosen_tokens",
        "rejected_tokens",
        "margin",
    },
    "data/{it}/judgements.jsonl": {
        "comparison",
        "id",
        "lang",
        "instruction",
        "model",
        "opponent",
        "output",
        "opponent_output",
        "judge",
        "orders",
        "preference",
        "verdict",
        "ok",
        "error",
        "orders_used",
        "order_disagreement",
        "identical_outputs",
    },
}


def ran(log: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", log))


def test_repro_runs_every_stage_and_writes_the_schemas(tiny_project):
    project, log = tiny_project.path, tiny_project.log
    heldout = {f"heldout_{s}@heldout" for s in ("sample", "translate_prompts", "generate", "translate_responses")}
    heldout |= {"heldout_pair@heldout", "heldout_filter@heldout", "heldout_score_m0"}
    expected = (
        {"prepare_model", "eval@m0", "judge@m0", "likelihood@m0", "summarize"}
        | heldout
        | {
            f"{s}@{it}"
            for it in ("general-m1", "general-m2")
            for s in (
                "sample",
                "translate_prompts",
                "generate",
                "translate_responses",
                "pair",
                "filter",
                "train",
                "eval",
                "judge",
                "likelihood",
                "compare",
                "head_to_head",
                "preference",
                "card",
            )
        }
    )
    assert ran(log) == expected
    for it in ("general-m1", "general-m2"):
        for pattern, fields in SCHEMAS.items():
            lines = (project / pattern.format(it=it)).read_text(encoding="utf-8").splitlines()
            assert lines, pattern
            for line in lines:
                assert set(json.loads(line)) == fields, pattern
        assert (project / f"models/{it}/model.safetensors").exists()
        assert (project / f"models/{it}/README.md").read_text().count(f"iteration: `{it}`") == 1
        assert "## Evaluation (MGSM" in (project / f"cards/{it}/README.md").read_text()
        assert (project / f"dvclive/{it}/plots/metrics/nll.tsv").exists()
        gate = json.loads((project / f"metrics/gate/{it}.json").read_text())
        assert gate["total"]["kept"] > 0
        evals = json.loads((project / f"metrics/eval/{it}.json").read_text())
        compare = json.loads((project / f"metrics/compare/{it}.json").read_text())
        assert compare["vs_m0"]["fidelity"]["es"]["n"] == 2 and evals["fidelity"]["all"]["n"] == 4
        ll = compare["vs_m0"]["likelihood"]
        assert set(ll["gain"]) == {"en", "es"} and set(ll["contrast"]) == {"es"} and ll["contrast"]["es"]["n"] == 2
        scores = (project / f"data/{it}/reference_likelihood.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(scores) == 4 and all(0 < json.loads(line)["n_tokens"] <= 8 for line in scores)
        h2h = json.loads((project / f"metrics/head_to_head/{it}.json").read_text())
        assert set(h2h["head_to_head"]) == {"previous", "m0"}
        pref = json.loads((project / f"metrics/preference/{it}.json").read_text())
        assert pref["heldout"] and all("all" in per_lang for per_lang in pref["heldout"].values())
    summary = json.loads((project / "metrics/summary.json").read_text())
    assert summary["iteration"] == 2
    assert {"fidelity_gain", "heldout_x_acc", "ll_contrast", "mgsm"} <= set(summary)
    assert not {"fidelity", "kept_x_pairs", "train_loss"} & set(summary)  # in the headline files and metrics/train
    assert {"goal_a", "goal_b", "goal_c", "goal"} <= set(summary)
    assert all(isinstance(v, int | float) for v in summary.values())  # one flat row for `dvc metrics show`
    for model in ("m0", "general-m1", "general-m2"):
        assert {p.name for p in (project / "metrics/headline" / model).iterdir()} == {"en.json", "es.json", "avg.json"}
    for name in (
        "alpaca_win_rate",
        "language_fidelity",
        "heldout_x_pair_accuracy",
        "mgsm_accuracy",
        "reference_likelihood",
        "likelihood_contrast",
    ):
        assert (project / f"plots/{name}.csv").exists(), name
        assert (project / f"plots/{name}.png").exists(), name
    assert (project / "plots/training_loss.csv").read_text().count("\ngeneral-m2,") >= 1
    # `dvc metrics show` reads the summary only: one compact row
    shown = dvc(project, "metrics", "show", "--json")
    assert [list(rev["data"]) for rev in json.loads(shown).values()] == [["metrics/summary.json"]]
    report = (project / "metrics/report.md").read_text()
    assert "| m0 |" in report and "Held-out preference accuracy" in report and "Goal" in report
    assert "## The decision rule, per language" in report and "## Reference likelihood" in report
    for name in (
        "data/general-m1/responses.meta.json",
        "data/general-m1/eval_answers.meta.json",
        "models/general-m1/lidr.meta.json",
    ):
        meta = json.loads((project / name).read_text())
        assert {"torch", "transformers"} <= set(meta["versions"]) and meta["backend"], name
    git(project, "add", "-A")
    git(project, "commit", "-qm", "run")


def test_a_second_run_gives_byte_identical_outputs(tiny_project, tmp_path):
    first = tiny_project.digests
    assert {
        "data/general-m2/responses.jsonl",
        "data/general-m2/pairs_kept.jsonl",
        "models/general-m2/model.safetensors",
        "metrics/eval/general-m2.json",
        "metrics/summary.json",
        "plots/mgsm_accuracy.csv",
    } <= set(first)
    second = repro_tiny(tmp_path).digests
    assert set(second) == set(first)
    assert [name for name in first if first[name] != second[name]] == []


def test_beta_experiment_reruns_training_and_what_follows_only(tiny_project):
    project = tiny_project.path
    log = dvc(project, "exp", "run", "-S", "beta=0.1")
    started = ran(log)
    assert {"train@general-m1", "eval@general-m1", "train@general-m2", "translate_prompts@general-m2"} <= started
    untouched = {
        f"{s}@general-m1" for s in ("sample", "translate_prompts", "generate", "translate_responses", "pair", "filter")
    } | {"prepare_model", "eval@m0", "judge@m0", "sample@general-m2"}
    assert not started & untouched
    table = dvc(project, "exp", "show", "--csv", "--no-pager").splitlines()
    column = table[0].split(",").index("beta")
    assert {row.split(",")[column] for row in table[1:]} >= {"0.5", "0.1"}
    # the documented form (README.md) after the experiment: the changed params and measures, within 120 columns
    shown = dvc(
        project,
        "exp",
        "show",
        "--no-pager",
        "--only-changed",
        "--drop",
        "Created|State|Executor|.*/",
        "--keep",
        "goal_",
    )
    assert "beta" in shown and "goal_a" in shown
    assert max(len(line.rstrip()) for line in shown.splitlines()) <= 120, shown
