"""The real pipeline, small: `dvc repro` on the tiny configuration in a copy of the project, then a
`dvc exp run -S beta=...` that must rerun training and what depends on it, and nothing before."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_project

pytestmark = pytest.mark.slow

SCHEMAS = {
    "data/{it}/prompts_en.jsonl": {"id", "kind", "text", "source"},
    "data/{it}/prompts.jsonl": {"id", "kind", "lang", "text", "origin", "ok", "error", "finish_reason"},
    "data/{it}/responses.jsonl": {"id", "kind", "lang", "messages", "response", "finish_reason", "n_tokens"},
    "data/{it}/translations.jsonl": {"id", "source_lang", "target_lang", "source_text", "text", "ok", "error", "raw",
                                     "finish_reason", "n_tokens"},
    "data/{it}/pairs.jsonl": {"id", "lang", "source_lang", "pair_type", "kind", "prompt", "chosen", "rejected",
                              "chosen_origin", "rejected_origin", "chosen_finish_reason", "rejected_finish_reason",
                              "translation_ok", "asks_translation"},
    "data/{it}/pairs_kept.jsonl": {"id", "lang", "source_lang", "pair_type", "prompt", "chosen", "rejected"},
    "data/{it}/eval_answers.jsonl": {"id", "lang", "question", "gold", "response", "predicted", "correct",
                                     "detected_lang", "on_target", "finish_reason", "n_tokens"},
}


def dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(cwd)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=test@lidr", "-c", "user.name=test", *args], cwd=cwd, check=True,
                   capture_output=True)


def ran(log: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", log))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    dest = copy_project(tmp_path_factory.mktemp("project"))
    shutil.copy(ROOT / "tests" / "fixtures" / "tiny_params.yaml", dest / "params.yaml")
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "tiny")
    return dest


def test_repro_runs_every_stage_and_writes_the_schemas(project):
    log = dvc(project, "repro")
    expected = {"prepare_model", "eval_m0", "summarize"} | {
        f"{s}@{it}" for it in ("m1", "m2")
        for s in ("sample", "translate_prompts", "generate", "translate_responses", "pair", "filter", "train", "eval",
                  "card")
    }
    assert ran(log) == expected
    for it in ("m1", "m2"):
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
    summary = json.loads((project / "metrics/summary.json").read_text())
    assert set(summary["mgsm"]) == {"en", "es"} and summary["model"] == 2
    assert "| m0 |" in (project / "metrics/report.md").read_text()
    git(project, "add", "-A")
    git(project, "commit", "-qm", "run")


def test_beta_experiment_reruns_training_and_what_follows_only(project):
    log = dvc(project, "exp", "run", "-S", "beta=0.1")
    started = ran(log)
    assert {"train@m1", "eval@m1", "train@m2", "translate_prompts@m2"} <= started
    untouched = {f"{s}@m1" for s in ("sample", "translate_prompts", "generate", "translate_responses", "pair",
                                     "filter")} | {"prepare_model", "eval_m0", "sample@m2"}
    assert not started & untouched
    table = dvc(project, "exp", "show", "--csv", "--no-pager").splitlines()
    column = table[0].split(",").index("beta")
    assert {row.split(",")[column] for row in table[1:]} >= {"0.5", "0.1"}
