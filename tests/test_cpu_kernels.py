"""The CPU kernels change nothing until the backend turns them on: importing the project registers no
attention function with transformers and rebinds no layer; `cpu_kernels` registers its attention and
swaps a model's layers while inside, and puts them back after."""

import subprocess
import sys

from tests.conftest import ROOT

CHECK = """
import importlib, pkgutil

import torch
from transformers import AttentionInterface, LlamaConfig, LlamaForCausalLM
from transformers.masking_utils import AttentionMaskInterface

def registered():
    return set(AttentionInterface._global_mapping), set(AttentionMaskInterface._global_mapping)

before, linear = registered(), torch.nn.Linear.forward
import lidr, stages
names = [m.name for p in (lidr, stages) for m in pkgutil.walk_packages(p.__path__, p.__name__ + ".")]
for name in names:
    importlib.import_module(name)
assert "lidr.backends.cpu_kernels" in names and "lidr.backends.decode" in names, names
assert registered() == before, (registered(), before)
assert torch.nn.Linear.forward is linear

from lidr.backends.cpu_kernels import ATTENTION, cpu_kernels

config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                     num_attention_heads=4, num_key_value_heads=2)
model = LlamaForCausalLM(config).eval()
model.set_attn_implementation("sdpa")
ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
with torch.inference_mode():
    plain = model(input_ids=ids).logits
    with cpu_kernels(model):
        assert ATTENTION in registered()[0] and ATTENTION in registered()[1]
        assert model.config._attn_implementation == ATTENTION
        assert all("forward" in m.__dict__ for m in model.modules() if type(m) is torch.nn.Linear)
        ours = model(input_ids=ids).logits
assert model.config._attn_implementation == "sdpa"
assert not any("forward" in m.__dict__ for m in model.modules() if type(m) is torch.nn.Linear)
torch.testing.assert_close(ours, plain, rtol=1e-4, atol=1e-5)
print("ok")
"""


def test_importing_registers_nothing_and_turning_the_kernels_on_registers_them():
    proc = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
