"""The Llama-3-8B recipe (configs/llama3-8b/params.yaml) validates and holds the authors' settings."""

from lidr.check import main as check
from lidr.config import chain_order, load_params
from lidr.train import dpo_config
from tests.conftest import ROOT

RECIPE = ROOT / "configs" / "llama3-8b" / "params.yaml"


def test_the_8b_recipe_validates(capsys):
    assert check(["--params", str(RECIPE)]) == 0
    assert "ok. model meta-llama/Meta-Llama-3-8B-Instruct" in capsys.readouterr().out


def test_the_8b_recipe_has_the_authors_settings():
    p = load_params(RECIPE)
    g, t, e = p.generation, p.train, p.eval
    assert (p.model.base, p.model.dtype, g.backend) == ("meta-llama/Meta-Llama-3-8B-Instruct", "bfloat16", "vllm")
    # the authors' token limits: answers, translations, evaluation answers
    assert (g.max_new_tokens, g.translation_max_new_tokens, e.max_new_tokens) == (2400, 4096, 2048)
    assert (g.repetition_penalty, g.translation_repetition_penalty) == (1.1, 1.0)
    # full fine-tuning, lr 5e-7, effective batch 16 on 8 GPUs, beta 0.5, alpha 1
    assert (t.mode, t.launch, p.beta, p.nll_weight) == ("full", "deepspeed_zero3", 0.5, 1.0)
    d = dpo_config(p, "/tmp/lidr-recipe-check", use_cpu=True)  # train as trl.DPOConfig takes it
    assert d.learning_rate == 5e-7
    assert 8 * d.per_device_train_batch_size * d.gradient_accumulation_steps == 16
    # a pair holds a prompt and an answer or translation at the token limits
    assert d.max_length >= 4096 + 512
    # the authors' two chains, 1,000 prompts per iteration each, and the unseen MGSM languages of the paper
    assert {c: [(s.kind, s.n) for s in chain.sources] for c, chain in p.chains.items()} == {
        "general": [("general", 1000)],
        "math": [("math", 1000)],
        "heldout": [("general", 32)],
    }
    assert chain_order(p) == {"general": ["general-m1", "general-m2"], "math": ["math-m1", "math-m2"]}
    assert {"ja", "sw", "th", "zh", "bn"} <= set(e.mgsm.languages) and e.mgsm.path == "juletxara/mgsm"
    assert e.judge.kind == "openai"
