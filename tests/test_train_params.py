"""The training keys of params.yaml: defaults, and clear errors naming the key."""

import copy

import pytest
import yaml

from lidr.config import ParamsError, parse_params
from tests.conftest import ROOT

BASE = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_train(**changes):
    data = copy.deepcopy(BASE)
    data["train"].update(changes)
    return parse_params(data, root=ROOT)


def test_defaults():
    t = with_train().train
    assert (t.launch, t.dpo["save_steps"], t.dpo["precompute_ref_log_probs"]) == ("cpu", 10, True)


@pytest.mark.parametrize("launch", ["cpu", "single_gpu", "multi_gpu"])
def test_every_launch_has_its_accelerate_config(launch):
    assert with_train(launch=launch).train.launch == launch
    assert (ROOT / "configs" / "accelerate" / f"{launch}.yaml").exists()


@pytest.mark.parametrize("launch", ["deepspeed_zero3", "fsdp"])
def test_sharded_launches_need_full_fine_tuning(launch):
    assert with_train(launch=launch, mode="full").train.launch == launch
    assert (ROOT / "configs" / "accelerate" / f"{launch}.yaml").exists()
    with pytest.raises(ParamsError, match=f"train.launch: '{launch}' shards the weights"):
        with_train(launch=launch, mode="lora")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"launch": "tpu"}, "train.launch: expected 'cpu' or 'single_gpu'"),
        ({"save_steps": 0}, "train.save_steps: expected a value > 0, got 0"),
        ({"per_device_train_batch_size": 0}, "train.per_device_train_batch_size: expected a value > 0"),
        ({"save_steps": 1.5}, "train.save_steps: DPOConfig refused it: --save_steps must be an integer"),
        ({"precompute_ref_log_probs": "yes"}, "train.precompute_ref_log_probs: expected bool"),
        ({"nll_weight": 0.5}, "train.nll_weight: set by lidr .the top-level nll_weight"),
        ({"nll_wieght": 0.5}, "unknown key train.nll_wieght: not a field of trl.DPOConfig"),
    ],
)
def test_bad_training_keys_name_the_key(changes, message):
    from lidr.train import check_train

    with pytest.raises(ParamsError, match=message.replace("(", r"\(")):
        check_train(with_train(**changes))


def test_the_nll_weight_is_a_field_of_the_training_config(tmp_path):
    """The top-level nll_weight reaches the trainer as a field of its config (a DPOConfig subclass), which a
    trainer checkpoint saves (training_args.bin) and loads back."""
    import dataclasses
    import pickle

    from trl import DPOConfig

    from lidr.train import dpo_config

    params = parse_params({**copy.deepcopy(BASE), "nll_weight": 0.25}, root=ROOT)
    config = dpo_config(params, str(tmp_path), use_cpu=True)
    assert isinstance(config, DPOConfig) and "nll_weight" in {f.name for f in dataclasses.fields(config)}
    assert (config.nll_weight, config.beta) == (0.25, params.beta)
    assert pickle.loads(pickle.dumps(config)).nll_weight == 0.25
