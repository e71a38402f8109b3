"""The generation driver and the transformers backend."""

import dataclasses

import pytest
import torch

from lidr.backends import Completion, Decoding, Request, cut_at_stop, make_backend
from lidr.generate import decoding_for, generate


class FakeBackend:
    """Echoes the prompt's length; counts the batches it was asked for; can fail after some batches."""

    name = "fake"

    def __init__(self, batch_size=2, fail_after=None):
        self.batch_size = self.chunk_size = batch_size
        self.fail_after, self.batches = fail_after, []

    def render(self, request):
        return " | ".join(c for _, c in request.messages) + request.prefix

    def prompt_length(self, text):
        return len(text)

    def generate_batch(self, texts, decoding):
        if self.fail_after is not None and len(self.batches) == self.fail_after:
            raise KeyboardInterrupt("killed")
        self.batches.append(list(texts))
        return [Completion(text=f"<{t}:{len(texts)}>", finish_reason="stop", n_tokens=len(t)) for t in texts]


REQUESTS = [Request.chat([{"role": "user", "content": "x" * n}]) for n in (3, 9, 1, 9, 5, 7)]
DECODING = Decoding(max_new_tokens=8)


def test_identical_prompts_are_generated_once_and_results_keep_request_order(tmp_path):
    backend = FakeBackend(batch_size=2)
    out = generate(backend, REQUESTS, DECODING, model_dir=tmp_path, journal=False)
    assert [o.text.split(":")[0] for o in out] == ["<" + "x" * n for n in (3, 9, 1, 9, 5, 7)]
    assert sum(len(b) for b in backend.batches) == 5  # the two "x"*9 requests went out once
    assert [len(b[0]) for b in backend.batches] == [9, 5, 1]  # longest first


def test_a_killed_run_resumes_from_its_journal_with_the_same_output(tmp_path):
    uninterrupted = generate(FakeBackend(), REQUESTS, DECODING, model_dir=tmp_path, journal=False)
    first = FakeBackend(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        generate(first, REQUESTS, DECODING, model_dir=tmp_path)
    second = FakeBackend()
    resumed = generate(second, REQUESTS, DECODING, model_dir=tmp_path)
    assert resumed == uninterrupted
    assert len(second.batches) == 2 and second.batches[0] != first.batches[0]


def test_other_settings_do_not_reuse_the_journal(tmp_path):
    generate(FakeBackend(), REQUESTS, DECODING, model_dir=tmp_path)
    again = FakeBackend()
    generate(again, REQUESTS, dataclasses.replace(DECODING, max_new_tokens=9), model_dir=tmp_path)
    assert len(again.batches) == 3


def test_cut_at_stop_keeps_the_stop_string():
    assert cut_at_stop("a</translated> more", ("</translated>",)) == ("a</translated>", True)
    assert cut_at_stop("no stop", ("</translated>",)) == ("no stop", False)


def test_transformers_backend_matches_plain_greedy_generate(params, tiny_model):
    backend = make_backend(str(tiny_model), params.generation, params.model, params.seed)
    requests = [Request.chat([{"role": "user", "content": t}]) for t in ("Hi", "Name three big cities please", "2+2?")]
    decoding = Decoding(max_new_tokens=10, repetition_penalty=1.1)
    out = generate(backend, requests, decoding, model_dir=tiny_model, journal=False)
    tok, model = backend.tokenizer, backend.model
    for request, completion in zip(requests, out, strict=True):
        ids = tok(backend.render(request), return_tensors="pt", add_special_tokens=False).input_ids
        with torch.inference_mode():
            ref = model.generate(
                ids,
                do_sample=False,
                max_new_tokens=10,
                repetition_penalty=1.1,
                eos_token_id=backend.eos_ids,
                pad_token_id=tok.pad_token_id,
            )
        new = ref[0, ids.shape[1] :].tolist()
        new = new[: next((i for i, t in enumerate(new) if t in backend.eos_ids), len(new))]
        assert completion.text == tok.decode(new, skip_special_tokens=True)
        assert completion.n_tokens >= len(new)


def test_backend_stops_at_end_of_turn_on_the_embedded_model(params, embedded_model):
    backend = make_backend(str(embedded_model), params.generation, params.model, params.seed)
    (out,) = generate(
        backend,
        [Request.chat([{"role": "user", "content": "Say only the word yes."}])],
        Decoding(max_new_tokens=40),
        model_dir=embedded_model,
        journal=False,
    )
    assert out.finish_reason == "stop" and 0 < out.n_tokens < 40
    assert "<|im_end|>" not in out.text and out.text.strip()


def test_cost_counts_only_the_tokens_generated_here(tmp_path):
    from lidr.stage import Cost

    first = Cost()
    generate(FakeBackend(), REQUESTS[:3], DECODING, model_dir=tmp_path, cost=first)
    assert (first.requests, first.generated, first.tokens) == (3, 3, 3 + 9 + 1)
    again = Cost()  # three prompts are in the journal, and "x" * 9 is asked for twice
    generate(FakeBackend(), REQUESTS, DECODING, model_dir=tmp_path, cost=again)
    assert (again.requests, again.generated, again.tokens) == (6, 2, 5 + 7)
    assert again.as_metrics()["generated_requests"] == 2


def test_each_kind_of_generation_reads_its_own_decoding_settings(params):
    """`decoding_for` is where the kinds differ: the length limit and repetition penalty; the rest is shared."""
    from lidr.prompts import TRANSLATION_STOP

    g, e = params.generation, params.eval
    p = dataclasses.replace(
        params,
        seed=7,
        generation=dataclasses.replace(
            g,
            max_new_tokens=11,
            translation_max_new_tokens=22,
            repetition_penalty=1.3,
            translation_repetition_penalty=1.0,
        ),
        eval=dataclasses.replace(e, max_new_tokens=33, alpaca=dataclasses.replace(e.alpaca, max_new_tokens=44)),
    )
    shared = {"seed": 7, "loop_span": g.loop_span}
    assert decoding_for(p.generation, 7, "answer") == Decoding(max_new_tokens=11, repetition_penalty=1.3, **shared)
    assert decoding_for(p.generation, 7, "translation") == Decoding(
        max_new_tokens=22, repetition_penalty=1.0, stop=(TRANSLATION_STOP,), **shared
    )
    assert decoding_for(p.generation, 7, "mgsm", p.eval) == Decoding(
        max_new_tokens=33, repetition_penalty=1.3, **shared
    )
    assert decoding_for(p.generation, 7, "instruction", p.eval) == Decoding(
        max_new_tokens=44, repetition_penalty=1.3, **shared
    )
    no_limit = dataclasses.replace(
        p, eval=dataclasses.replace(p.eval, alpaca=dataclasses.replace(e.alpaca, max_new_tokens=0))
    )
    assert (
        decoding_for(no_limit.generation, 7, "instruction", no_limit.eval).max_new_tokens == 33
    )  # 0: eval.max_new_tokens
    with pytest.raises(ValueError, match="the mgsm decoding reads the eval section"):
        decoding_for(p.generation, 7, "mgsm")
    with pytest.raises(ValueError, match="unknown decoding kind 'judge'"):
        decoding_for(p.generation, 7, "judge")


def test_every_stage_builds_its_decoding_with_decoding_for():
    """No stage or benchmark builds the settings of a kind by hand (gpu_check's come from its command line)."""
    import ast

    from tests.conftest import ROOT

    for path in [*(ROOT / "stages").glob("*.py"), ROOT / "benchmarks/generation.py", ROOT / "lidr/translate.py"]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Decoding"]
        assert not calls, f"{path.name} builds Decoding(...) itself: use lidr.generate.decoding_for"
