"""The train stage as dvc.yaml runs it (through `accelerate launch`), its model card, the card stage, and the
training curves of two iterations, collected by the summary, in `dvc plots show`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lidr.errors import DataError
from lidr.train import file_sha256
from stages.card import PENDING, card_with_metrics
from tests.conftest import ROOT

PAIRS = [
    {
        "prompt": [{"role": "user", "content": f"Question {i}?"}],
        "chosen": [{"role": "assistant", "content": f"A careful answer number {i}."}],
        "rejected": [{"role": "assistant", "content": f"bad {i} bad"}],
    }
    for i in range(4)
]


def run(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CUDA_VISIBLE_DEVICES": "",
        "DVC_NO_ANALYTICS": "1",
        "LIDR_CHECKPOINT_DIR": str(cwd / ".lidr" / "checkpoints"),
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_stage_writes_card_metrics_and_curves_that_dvc_plots_shows(tiny_model, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    shutil.copy(ROOT / "tests" / "fixtures" / "tiny_params.yaml", project / "params.yaml")
    (project / "data").mkdir()
    pairs = project / "data" / "pairs_kept.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    run(project, "-m", "dvc", "init", "--no-scm", "-q")
    for it in ("general-m1", "general-m2"):
        run(
            project,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(ROOT / "configs/accelerate/cpu.yaml"),
            "-m",
            "stages.train",
            "--iteration",
            it,
            "--model",
            str(tiny_model),
            "--pairs",
            "data/pairs_kept.jsonl",
            "--out",
            f"models/{it}",
            "--live",
            f"dvclive/{it}",
            "--metrics",
            f"metrics/train/{it}.json",
            "--cost",
            f"metrics/cost/{it}/train.json",
        )

    card = (project / "models/general-m1/README.md").read_text()
    assert (
        f"sha256 `{file_sha256(pairs)}`" in card
        and "iteration: `general-m1`" in card
        and "base_model: embedded" in card
    )
    assert '"learning_rate": 5e-05' in card and "beta: 0.5, NLL weight: 1.0" in card
    assert (project / "models/general-m1/model.safetensors").exists()
    metrics = json.loads((project / "metrics/train/general-m1.json").read_text())
    assert metrics["steps"] == 2 and metrics["pairs"] == 4 and metrics["final_nll"] > 0

    # the summary collects dvclive's curves of both iterations; `dvc plots show` draws one plot per measure
    # with a line per iteration (the templates of .dvc/plots)
    import polars as pl

    from stages.summarize import TRAINING_CURVES, training_curve

    shutil.copytree(ROOT / ".dvc" / "plots", project / ".dvc" / "plots")
    (project / "plots").mkdir()
    for name in TRAINING_CURVES:
        rows = training_curve(project / "dvclive", ["general-m1", "general-m2"], name)
        assert {r["model"] for r in rows} == {"general-m1", "general-m2"} and len(rows) == 4, name  # 2 steps each
        pl.DataFrame(rows).write_csv(project / "plots" / f"training_{name.replace('/', '_')}.csv")
    shown = json.loads(run(project, "-m", "dvc", "plots", "show", "--json"))
    loss = shown["data"]["Training loss (DPO + NLL)"][0]
    assert {d["model"] for d in loss["content"]["data"]["values"]} == {"general-m1", "general-m2"}
    # the training curves' data plots (the report's PNG, an image plot that summarize draws, is not written here)
    errors = [e for e in shown.get("errors", []) if "training_" in json.dumps(e) and ".png" not in e.get("source", "")]
    assert not errors, errors


def test_card_stage_adds_the_eval_metrics():
    card = (
        "---\nbase_model: x\n---\n# general-m1\n\n- iteration: `general-m1`\n\n"
        + PENDING
        + " The eval stage writes them.\n"
    )
    metrics = {
        "mgsm": {"en": {"accuracy": 0.5, "off_target_rate": 0.0, "n": 2}},
        "mgsm_avg": {"accuracy": 0.5, "off_target_rate": 0.0},
    }
    out = card_with_metrics(card, metrics, "metrics/eval/general-m1.json")
    assert out.startswith("---\nbase_model: x\n---\n# general-m1\n\n- iteration: `general-m1`\n\n## Evaluation (MGSM")
    assert "| en | 0.5 | 0.0 | 2 |" in out and "| average | 0.5 | 0.0 | |" in out and PENDING not in out
    with pytest.raises(DataError, match="pending-evaluation"):
        card_with_metrics(out, metrics, "metrics/eval/general-m1.json")


def test_card_stage_without_mgsm_has_the_language_fidelity_only():
    card = "# general-m1\n\n" + PENDING + "\n"
    metrics = {
        "mgsm": {},
        "mgsm_avg": {"accuracy": None, "off_target_rate": None},
        "fidelity": {"es": {"k": 150, "n": 200, "share": 0.75, "ci95": [0.69, 0.8]}},
    }
    out = card_with_metrics(card, metrics, "metrics/eval/general-m1.json")
    assert "## Language fidelity" in out and "| es | 0.75 | [0.69, 0.8] | 200 |" in out
    assert "MGSM" not in out and "None" not in out
