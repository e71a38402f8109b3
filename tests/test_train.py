"""Training on a tiny random model: every mode changes the weights and writes a loadable full checkpoint."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from lidr.train import train

PAIRS = [
    {
        "prompt": [{"role": "user", "content": f"Question {i}?"}],
        "chosen": [{"role": "assistant", "content": f"A careful answer number {i}."}],
        "rejected": [{"role": "assistant", "content": f"bad {i} bad {i} bad"}],
    }
    for i in range(4)
]


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return path


def small(params, mode):
    train_params = params.train.replace(
        mode=mode,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        max_length=64,
        learning_rate=1e-2,
        num_train_epochs=1,
    )
    return dataclasses.replace(params, train=train_params)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_training_changes_the_weights(mode, params, tiny_model, pairs_file, tmp_path):
    out = tmp_path / "out"
    summary = train(small(params, mode), str(tiny_model), str(pairs_file), out, live_dir=str(tmp_path / "live"))
    before, after = load_file(tiny_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert summary["steps"] == 2 and summary["pairs"] == 4
    assert set(after) == set(before), "the merged checkpoint has the base model's tensors, no adapter leftovers"
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("q_proj" in k for k in changed)
    if mode == "full":
        assert any("mlp" in k for k in changed)
    else:  # LoRA touches only its target modules
        assert all(any(t in k for t in params.train.lora["target_modules"]) for k in changed)
    assert (tmp_path / "live" / "metrics.json").exists()
