"""The GPU check script runs end to end on the CPU with --tiny and reports what it promises."""

import importlib.util
import json
import math

from tests.conftest import ROOT


def load_gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    return gpu_check


def test_gpu_check_runs_tiny_on_cpu(capsys):
    gpu_check = load_gpu_check()
    result = gpu_check.main(["--tiny"])
    assert result["device"] == "cpu" and result["dtype"] == "float32" and result["tokens_per_step"] == 2 * 2 * 64
    assert result["tokens_per_s"] > 0 and result["model_tflops_per_s"] >= 0
    assert math.isclose(result["loss"], result["dpo"] + 1.0 * result["nll"], abs_tol=2e-4)
    generation = result["generation"]
    assert generation["device"] == "cpu" and generation["dtype"] == "float32" and generation["prompts"] == 8
    assert 0 < generation["generated_tokens"] <= 8 * generation["max_new_tokens"] and generation["tokens_per_s"] > 0
    assert sum(generation["finish_reasons"].values()) == 8 and generation["rows_together"] < 8
    out = capsys.readouterr().out
    assert "tokens_per_s" in out and "generation generated_tokens" in out
    assert json.loads(out.strip().splitlines()[-1]) == result


def test_gpu_check_prompts_are_distinct_and_known_to_its_tokenizer():
    gpu_check = load_gpu_check()
    requests = gpu_check.check_requests(40)
    assert len(set(requests)) == 40 and any(r.prefix for r in requests) and any(not r.prefix for r in requests)
    tokenizer = gpu_check.word_tokenizer(requests, 1000)
    assert len(tokenizer) == 1000
    for r in requests:
        text = tokenizer.apply_chat_template(r.message_dicts(), add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text + r.prefix, add_special_tokens=False)["input_ids"]
        assert tokenizer.unk_token_id not in ids and ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
