"""Shared fixtures: everything offline, on the CPU, with the embedded model or a tiny one built from a config."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
    materialise_base_model(params, out)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, embedded_model) -> Path:
    """A 2-layer Llama with random weights and the embedded model's tokenizer: fast, same code paths."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(embedded_model)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("tiny") / "tiny"
    LlamaForCausalLM(config).save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def copy_project(dest: Path) -> Path:
    """A copy of the project (no caches, no outputs) to run DVC in."""
    ignore = shutil.ignore_patterns(".venv", ".git", ".lidr", "__pycache__", "*.egg-info", ".pytest_cache",
                                    ".ruff_cache", "models", "dvclive", "plots")
    for name in ("dvc.yaml", "params.yaml", "pyproject.toml", ".gitignore"):
        shutil.copy2(ROOT / name, dest / name)
    for name in ("lidr", "stages", "data", "tests", "configs", ".dvc"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    for p in (dest / "data").iterdir():  # only the built-in sources, no outputs of earlier runs
        if p.name != "builtin":
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    shutil.rmtree(dest / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(dest / ".dvc" / "tmp", ignore_errors=True)
    return dest
