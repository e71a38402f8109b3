"""The vLLM backend hands vLLM token ids with the template's BOS once, never a string vLLM would re-tokenize.

vLLM is not installed here: a stand-in `vllm` module records what the backend hands `LLM.generate` and answers
with objects shaped like vLLM's RequestOutput. A string prompt is tokenized the way vLLM does it (special tokens
added), so a backend that passed strings would show a second BOS.
"""

from __future__ import annotations

import json
import sys
import types
from types import SimpleNamespace

import pytest

from lidr.backends import Decoding, Request

WORDS = ["user", "assistant", ":", "Say", "hi", ".", "Is", "it", "good", "?", "yes", "no", "Hello"]
BOS, EOS, UNK = "<s>", "</s>", "[UNK]"


@pytest.fixture
def tokenizer_dir(tmp_path):
    """A word-level tokenizer whose chat template starts with the BOS token and that adds BOS when asked."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {UNK: 0, BOS: 1, EOS: 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([UNK, BOS, EOS])
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, 1)])
    folder = tmp_path / "tok"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    template = (
        "{{ bos_token }}{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}assistant : {% endif %}"
    )
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": UNK,
        "chat_template": template,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


class FakeLLM:
    """Records the token ids each prompt would run with; answers like vLLM's LLM.generate."""

    instances: list[FakeLLM] = []

    def __init__(self, model, **kwargs):
        from transformers import AutoTokenizer

        self.model, self.kwargs = model, kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.calls: list[list[list[int]]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, sampling_params, use_tqdm=True):
        run = []
        for p in prompts:
            if isinstance(p, str):  # what vLLM does with a string prompt: tokenize it, special tokens included
                run.append(list(self.tokenizer(p)["input_ids"]))
            else:
                assert set(p) == {"prompt_token_ids"}, p
                run.append(list(p["prompt_token_ids"]))
        self.calls.append(run)
        outs = []
        for ids in run:
            if sampling_params.kwargs.get("prompt_logprobs") is not None:
                last = {ids[-1]: SimpleNamespace(logprob=-0.25 * ids[-1], rank=1)}
                outs.append(
                    SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=[None, *[{}] * (len(ids) - 2), last])
                )
            else:
                done = SimpleNamespace(text="Hello . </s>", token_ids=[15, 8, 2], finish_reason="stop")
                outs.append(SimpleNamespace(prompt_token_ids=ids, outputs=[done]))
        return outs


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def backend(monkeypatch, tokenizer_dir, params):
    fake = types.ModuleType("vllm")
    fake.LLM = FakeLLM
    fake.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", fake)
    FakeLLM.instances.clear()
    from lidr.backends.vllm_backend import VllmBackend

    b = VllmBackend(str(tokenizer_dir), params.generation, params.model, params.seed)
    assert FakeLLM.instances == [b.llm] and b.llm.model == str(tokenizer_dir)
    return b


def test_the_tokenizer_really_adds_bos_and_the_template_starts_with_it(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Say hi ."}], add_generation_prompt=True, tokenize=False
    )
    assert text == "<s>user : Say hi . assistant : "
    # a string tokenized with special tokens gets a second BOS: the bug this backend must avoid
    assert tok(text)["input_ids"][:2] == [1, 1]
    assert tok(text, add_special_tokens=False)["input_ids"] == [1, 3, 5, 6, 7, 8, 4, 5]


def test_generation_hands_vllm_token_ids_with_one_bos(backend):
    texts = [backend.render(Request.chat([{"role": "user", "content": "Say hi ."}]))]
    texts.append(backend.render(Request.chat([{"role": "user", "content": "Is it good ?"}], prefix="Hello")))
    assert all(t.startswith("<s>") for t in texts)
    out = backend.generate_batch(texts, Decoding(max_new_tokens=8, stop=(" .",)))
    (run,) = backend.llm.calls
    assert run == [[1, 3, 5, 6, 7, 8, 4, 5], [1, 3, 5, 9, 10, 11, 12, 4, 5, 15]]
    assert all(ids.count(1) == 1 and ids[0] == 1 for ids in run)
    assert [c.text for c in out] == ["Hello .", "Hello ."] and [c.n_tokens for c in out] == [3, 3]
    assert backend.prompt_length(texts[0]) == len(run[0])


def test_judge_logprobs_hand_vllm_token_ids_with_one_bos(backend):
    text = backend.render(Request.chat([{"role": "user", "content": "Is it good ?"}]))
    rows = backend.token_logprobs([text, text], ("yes", "no"))
    (run,) = backend.llm.calls
    prompt = [1, 3, 5, 9, 10, 11, 12, 4, 5]
    assert run == [[*prompt, 13], [*prompt, 14]] * 2
    assert all(ids.count(1) == 1 and ids[0] == 1 for ids in run)
    # each candidate's log-probability is read at its own prompt's last position
    assert rows == [{"yes": -3.25, "no": -3.5}] * 2
