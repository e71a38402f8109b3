"""Shared fixtures: everything offline, on the CPU, with the embedded model or a tiny one built from a config."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A folder holding the real MGSM files (mgsm_<lang>.tsv, e.g. a download of juletxara/mgsm): the tests that
# read them in full run only when it is set, and are skipped with that reason otherwise.
REAL_MGSM = Path(os.environ["LIDR_MGSM_DIR"]) if os.environ.get("LIDR_MGSM_DIR") else None

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def real_mgsm_dir() -> Path:
    """The folder of real MGSM files named by LIDR_MGSM_DIR; skips the calling test when it is not set."""
    if REAL_MGSM is None or not any(REAL_MGSM.glob("mgsm_*.tsv")):
        pytest.skip("set LIDR_MGSM_DIR to a folder of the real MGSM files (mgsm_<lang>.tsv) to run this test")
    return REAL_MGSM


def write_mgsm_layout(folder: Path, langs=("en", "de", "zh", "bn"), rows: int = 250) -> Path:
    """Files in the real MGSM layout, written by the project: no header, question TAB answer, quotes left
    unescaped in questions (the files are read with QUOTE_NONE), gold answers with comma thousands separators."""
    folder.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        lines = []
        for i in range(rows):
            answer = f"{1000 + 137 * i:,}" if i % 60 == 3 else str(18 + i)
            lines.append(f'Q{i} ({lang}): "{i}" ducks lay 16 eggs a day; how many?\t{answer}\n')
        (folder / f"mgsm_{lang}.tsv").write_text("".join(lines), encoding="utf-8")
    return folder


@pytest.fixture(autouse=True)
def _cpu_only(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    """Journals and trainer checkpoints of a test stay in its own folder."""
    import lidr.generate
    import lidr.train

    monkeypatch.setattr(lidr.generate, "JOURNAL_DIR", tmp_path / ".lidr" / "journal")
    monkeypatch.setattr(lidr.train, "CHECKPOINT_ROOT", tmp_path / ".lidr" / "checkpoints")


@pytest.fixture(scope="session")
def params():
    from lidr.config import load_params

    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def embedded_model(tmp_path_factory, params) -> Path:
    """The embedded SmolLM2-135M-Instruct, materialised once per test session (about 40 s)."""
    from lidr.model import materialise_base_model

    out = tmp_path_factory.mktemp("m0") / "m0"
    materialise_base_model(params.model, out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, embedded_model) -> Path:
    """A 2-layer Llama with random weights and the embedded model's tokenizer: fast, same code paths."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(embedded_model)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    out = tmp_path_factory.mktemp("tiny") / "tiny"
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def copy_project(dest: Path) -> Path:
    """A copy of the project (no caches, no outputs) to run DVC in."""
    ignore = shutil.ignore_patterns(
        ".venv",
        ".git",
        ".lidr",
        "__pycache__",
        "*.egg-info",
        ".pytest_cache",
        ".ruff_cache",
        "models",
        "dvclive",
        "plots",
    )
    for name in ("dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore", ".dvcignore"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("lidr", "stages", "data", "tests", "configs", ".dvc"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for p in (dest / "data").iterdir():  # only the inputs (built-in sources, X-AlpacaEval), no outputs of earlier runs
        if p.name not in ("builtin", "xalpacaeval"):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    shutil.rmtree(dest / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(dest / ".dvc" / "tmp", ignore_errors=True)
    return dest


def dvc(cwd: Path, *args: str) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(cwd)}
    for name in ("LIDR_JOURNAL_DIR", "LIDR_CHECKPOINT_DIR"):  # each copy keeps its own, under .lidr/
        env.pop(name, None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=test@lidr", "-c", "user.name=test", *args], cwd=cwd, check=True, capture_output=True
    )


def output_digests(root: Path) -> dict[str, str]:
    """sha256 of every data output, model file, quality metric, plot and report of a pipeline run.

    Left out, since they differ between runs by nature: cost metrics and their report (seconds, tokens/s, memory) and
    dvclive's folder (it records runtimes); dvc.lock too, as it holds the cost files' hashes.
    """
    out = {}
    for top in ("data", "models", "metrics", "plots"):
        for f in sorted((root / top).rglob("*")):
            rel = f.relative_to(root).as_posix()
            if f.is_file() and not rel.startswith(("data/builtin/", "metrics/cost/", "metrics/cost.md")):
                out[rel] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@dataclass
class TinyRun:
    path: Path
    log: str  # stdout of `dvc repro`
    digests: dict[str, str]  # output_digests() right after the run


def repro_tiny(dest: Path) -> TinyRun:
    """`dvc repro` of the tiny configuration in a fresh copy of the project (git repo, no journal, no cache)."""
    copy_project(dest)
    shutil.copy(ROOT / "tests" / "fixtures" / "tiny_params.yaml", dest / "params.yaml")
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "tiny")
    log = dvc(dest, "repro")
    return TinyRun(dest, log, output_digests(dest))


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> TinyRun:
    """The whole pipeline run once on the tiny configuration (several minutes), shared by the slow tests."""
    return repro_tiny(tmp_path_factory.mktemp("project"))
