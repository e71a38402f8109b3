"""An interrupted training run, rerun with the same inputs, resumes from its last checkpoint and ends where an
uninterrupted run ends; the dvclive curves continue instead of restarting."""

import csv
import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

import lidr.train
from lidr.train import run_key, train

PAIRS = [
    {
        "prompt": [{"role": "user", "content": f"Question {i}?"}],
        "chosen": [{"role": "assistant", "content": f"A careful answer number {i}" + " indeed" * i + "."}],
        "rejected": [{"role": "assistant", "content": f"bad {i} bad"}],
    }
    for i in range(8)
]


class Interrupt(Exception):
    pass


class StopAfterCheckpoint(TrainerCallback):
    """Simulates a crash (power cut, pre-emption) right after the checkpoint of step `at` is written."""

    def __init__(self, at: int):
        self.at = at

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise Interrupt(f"stopped after the checkpoint of step {self.at}")


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_interrupted_run_resumes_to_the_same_weights(mode, params, tiny_model, tmp_path, monkeypatch):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    t = params.train.replace(
        mode=mode,
        per_device_train_batch_size=2,
        gradient_accumulation_steps=1,
        max_length=64,
        learning_rate=1e-2,
        num_train_epochs=1,
        save_steps=2,
        logging_steps=1,
    )
    p = dataclasses.replace(params, train=t)

    monkeypatch.setattr(lidr.train, "CHECKPOINT_ROOT", tmp_path / "once")
    whole = train(p, str(tiny_model), str(pairs), tmp_path / "whole", None)
    assert whole["steps"] == 4 and whole["resumed_from"] is None

    monkeypatch.setattr(lidr.train, "CHECKPOINT_ROOT", tmp_path / "twice")
    live = tmp_path / "live"
    with pytest.raises(Interrupt):
        train(p, str(tiny_model), str(pairs), tmp_path / "unused", str(live), callbacks=[StopAfterCheckpoint(2)])
    assert (tmp_path / "twice" / run_key(p, str(tiny_model), str(pairs)) / "checkpoint-2").is_dir()
    again = train(p, str(tiny_model), str(pairs), tmp_path / "resumed", str(live))
    assert again["resumed_from"] == "checkpoint-2" and again["steps"] == 4

    expected, got = (
        load_file(tmp_path / "whole" / "model.safetensors"),
        load_file(tmp_path / "resumed" / "model.safetensors"),
    )
    assert set(expected) == set(got)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=1e-6, msg=name)
    before = load_file(tiny_model / "model.safetensors")
    assert any(not torch.equal(before[k], got[k]) for k in before), "training changed the weights"

    with open(live / "plots" / "metrics" / "loss.tsv") as f:
        steps = [int(row["step"]) for row in csv.DictReader(f, delimiter="\t")]
    assert steps == [0, 1, 2, 3], "one point per optimizer step, continued across the restart"
