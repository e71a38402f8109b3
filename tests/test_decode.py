"""The transformers backend's own greedy loop: same outputs as plain greedy `generate`, loops ended and marked."""

import contextlib
import dataclasses

import pytest
import torch

from lidr.backends import Decoding, Request, make_backend
from lidr.backends.decode import greedy_decode, is_loop, prefill_groups
from lidr.config import load_params
from lidr.errors import ParamsError
from lidr.generate import generate
from lidr.prompts import TRANSLATION_PRIMER, TRANSLATION_STOP, translation_messages
from tests.conftest import ROOT
from tests.test_generate import FakeBackend


def reference(backend, request: Request, decoding: Decoding) -> list[int]:
    """Plain greedy `model.generate` on the request alone: its new tokens up to end of turn."""
    tok = backend.tokenizer
    ids = tok(backend.render(request), return_tensors="pt", add_special_tokens=False).input_ids
    extra = {"stop_strings": list(decoding.stop), "tokenizer": tok} if decoding.stop else {}
    with torch.inference_mode():
        out = backend.model.generate(
            ids,
            do_sample=False,
            max_new_tokens=decoding.max_new_tokens,
            repetition_penalty=decoding.repetition_penalty,
            eos_token_id=backend.eos_ids,
            pad_token_id=tok.pad_token_id,
            **extra,
        )
    new = out[0, ids.shape[1] :].tolist()
    return new[: next((i for i, t in enumerate(new) if t in backend.eos_ids), len(new))]


def test_is_loop_needs_three_repeats_of_a_short_block_filling_the_span():
    assert is_loop([9, 1, 2, 3, 1, 2, 3, 1, 2, 3], 9)
    assert is_loop([5] * 6, 6)
    assert not is_loop([1, 2, 3, 1, 2, 3, 1, 2], 9)  # shorter than the span
    assert not is_loop([1, 2, 3, 4, 1, 2, 3, 4, 1], 9)  # block of 4 > 9 // 3
    assert not is_loop(list(range(12)), 12)


def test_loop_span_is_validated(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("loop_span: 48", "loop_span: 3")
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ParamsError, match="generation.loop_span"):
        load_params(tmp_path / "p.yaml")


def test_batched_loop_matches_per_request_greedy_on_the_tiny_model(params, tiny_model):
    backend = make_backend(str(tiny_model), params.generation, params.model, params.seed)
    texts = ("Hi", "Name three big cities please, with their countries", "2+2?", "Why?")
    requests = [Request.chat([{"role": "user", "content": t}]) for t in texts]
    decoding = Decoding(max_new_tokens=24, repetition_penalty=1.3)
    out = generate(backend, requests, decoding, model_dir=tiny_model, journal=False)
    for request, completion in zip(requests, out, strict=True):
        expected = reference(backend, request, decoding)
        assert completion.text == backend.tokenizer.decode(expected, skip_special_tokens=True)
        assert completion.finish_reason == ("length" if len(expected) == 24 else "stop")


class Biased(torch.nn.Module):
    """An output head that favours one token, so that greedy decoding repeats it."""

    def __init__(self, head, token: int):
        super().__init__()
        self.head, self.token = head, token

    def forward(self, hidden):
        logits = self.head(hidden)
        logits[..., self.token] += 100.0
        return logits


def test_a_degenerate_sequence_ends_early_marked_loop_and_is_a_prefix_of_greedy(params, tiny_model):
    backend = make_backend(str(tiny_model), params.generation, params.model, params.seed)
    requests = [Request.chat([{"role": "user", "content": t}]) for t in ("Hi", "Tell me a story")]
    plain = Decoding(max_new_tokens=30)
    normal = generate(backend, requests, dataclasses.replace(plain, loop_span=12), model_dir=tiny_model, journal=False)
    assert normal == generate(backend, requests, plain, model_dir=tiny_model, journal=False)  # no loop: no change
    backend.model.lm_head = Biased(backend.model.lm_head, backend.tokenizer.convert_tokens_to_ids("a"))
    full = generate(backend, requests, plain, model_dir=tiny_model, journal=False)
    cut = generate(backend, requests, dataclasses.replace(plain, loop_span=12), model_dir=tiny_model, journal=False)
    for f, c in zip(full, cut, strict=True):
        assert (f.finish_reason, f.n_tokens, c.finish_reason, c.n_tokens) == ("length", 30, "loop", 12)
        assert f.text == "a" * 30 and c.text == "a" * 12


def test_stop_string_and_end_of_turn_match_plain_greedy_on_the_embedded_model(params, embedded_model):
    """A translation (stops at </translated>) and a short answer (ends its turn) in one batch."""
    backend = make_backend(str(embedded_model), params.generation, params.model, params.seed)
    tok = backend.tokenizer
    translation = Request.chat(translation_messages("The cat sleeps on the warm roof.", "es"), TRANSLATION_PRIMER)
    answer = Request.chat([{"role": "user", "content": "Say only the word yes."}])
    t_dec = Decoding(max_new_tokens=40, stop=(TRANSLATION_STOP,))
    a_dec = Decoding(max_new_tokens=40, repetition_penalty=1.1)
    rows = [tok(backend.render(r), add_special_tokens=False)["input_ids"] for r in (translation, answer)]
    with torch.inference_mode():
        (t_out, _) = greedy_decode(backend.model, tok, rows, t_dec, backend.eos_ids)
        (_, a_out) = greedy_decode(backend.model, tok, rows, a_dec, backend.eos_ids)
    t_ref = tok.decode(reference(backend, translation, t_dec), skip_special_tokens=True)
    assert "</translated>" in t_out.text and t_out.finish_reason == "stop"
    assert t_ref.startswith(t_out.text) and t_out.text.endswith("</translated>")
    assert a_out.text == tok.decode(reference(backend, answer, a_dec), skip_special_tokens=True)
    assert a_out.finish_reason == "stop" and a_out.n_tokens < 40


def test_prompts_the_journal_holds_from_another_stage_are_not_generated_again(tmp_path):
    from tests.test_generate import DECODING, REQUESTS

    first = generate(FakeBackend(), REQUESTS[:3], DECODING, model_dir=tmp_path, desc="generate")
    again = FakeBackend()
    out = generate(again, REQUESTS, DECODING, model_dir=tmp_path, desc="eval")
    assert out[:3] == first
    assert sorted(len(t) for b in again.batches for t in b) == [5, 7]  # only the two prompts not yet answered


@pytest.mark.parametrize("draft", [0, 4])
def test_continuous_batching_matches_per_request_greedy_on_the_embedded_model(
    params, embedded_model, monkeypatch, draft
):
    """Seven prompts, two rows at a time: waiting prompts join the running batch as rows end.

    On the real model, since attention to a joined row's padding or a wrong position would
    change its text (the tiny random model barely attends). With `draft`, each row also feeds
    tokens guessed from its prompt and output, inside `cpu_kernels` as the backend runs it:
    guesses are kept (fewer forward passes than tokens), rejected ones leave masked holes that are
    squeezed out, and the text is still plain greedy's."""
    import lidr.backends.decode as decode
    from lidr.backends.cpu_kernels import cpu_kernels

    backend = make_backend(str(embedded_model), params.generation, params.model, params.seed)
    tok = backend.tokenizer
    texts = (
        "Say only the word yes.",
        "Name three big cities, with their countries.",
        "What is 2+2? Reply with the number only.",
        "Why is the sky blue?",
        "Say only the word no.",
        "Translate 'gato' to English. One word.",
    )
    requests = [Request.chat([{"role": "user", "content": t}]) for t in texts]
    requests.append(Request.chat(translation_messages("The cat sleeps on the warm roof.", "es"), TRANSLATION_PRIMER))
    rows = [tok(backend.render(r), add_special_tokens=False)["input_ids"] for r in requests]
    monkeypatch.setattr(decode._RoomyLayer, "spare", 5)  # the cache's buffers regrow every few tokens
    monkeypatch.setattr(decode._Running, "slack", -(10**6))  # masked columns are squeezed out at every step
    prefills, steps, squeezes = [], [], []
    real_prefill, real_step, real_squeeze = decode._prefill, decode._Running.step, decode._Running._squeeze
    monkeypatch.setattr(
        decode,
        "_prefill",
        lambda model, prompts, *a: prefills.append(len(prompts)) or real_prefill(model, prompts, *a),
    )
    monkeypatch.setattr(decode._Running, "step", lambda run, *a: steps.append(len(run.rows)) or real_step(run, *a))

    def squeeze(run):
        width = run.attention.shape[1]
        real_squeeze(run)
        if run.attention.shape[1] < width:
            squeezes.append(width - run.attention.shape[1])

    monkeypatch.setattr(decode._Running, "_squeeze", squeeze)
    decoding = Decoding(max_new_tokens=24, repetition_penalty=1.1)
    with torch.inference_mode(), cpu_kernels(backend.model) if draft else contextlib.nullcontext():
        out = greedy_decode(backend.model, tok, rows, decoding, backend.eos_ids, max_running=2, draft=draft)
    assert prefills[0] == 2 and len(prefills) >= 3 and sum(prefills) == len(requests)  # joined, each prompt once
    for request, completion in zip(requests, out, strict=True):
        expected = reference(backend, request, decoding)
        assert completion.text == tok.decode(expected, skip_special_tokens=True)
        assert completion.n_tokens == len(expected) + (len(expected) < decoding.max_new_tokens)
    tokens = sum(c.n_tokens for c in out)
    if draft:
        assert sum(steps) + sum(prefills) < tokens  # a row's forward pass gave its own token and kept guesses
        assert squeezes
    else:
        assert sum(steps) + sum(prefills) == tokens  # one token per row and forward pass
        assert not squeezes


def test_grouped_attention_matches_sdpa_and_gives_no_nan_for_a_query_that_sees_nothing():
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from lidr.backends.cpu_kernels import _grouped_attention

    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 3, True
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 6, 4, 8, generator=generator)  # 2 rows, 6 query heads in 2 groups, 4 tokens
    key, value = torch.randn(2, 2, 7, 8, generator=generator), torch.randn(2, 2, 7, 8, generator=generator)
    mask = torch.ones(2, 1, 4, 7, dtype=torch.bool).tril(diagonal=3)  # causal over 3 cached + 4 new columns
    mask[1, :, :, :2] = False  # row 1: two padding columns
    mask[1, :, 0, :] = False  # and a query that attends to nothing
    ours, _ = _grouped_attention(module, query, key, value, mask)
    theirs, _ = sdpa_attention_forward(module, query, key, value, mask)
    assert ours.shape == theirs.shape == (2, 4, 6, 8)
    assert not ours.isnan().any()
    torch.testing.assert_close(ours[0], theirs[0])
    torch.testing.assert_close(ours[1, 1:], theirs[1, 1:])


@pytest.mark.parametrize("rows", [1, 7, 8, 40, 200])
def test_cpu_linear_kernels_match_f_linear_and_a_packed_weight_follows_changes(rows):
    import torch.nn.functional as F

    import lidr.backends.cpu_kernels as cpu

    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 48)
    x = torch.randn(rows, 2, 64)[:, :1]  # a (rows, 1, 64) view with gaps, as a decoding step's slices
    kernels = [cpu._small_batch_linear]
    if cpu._HAS_ONEDNN_PACKING:
        kernels += [cpu._packed_linear, cpu._output_linear]
    for kernel in kernels:
        torch.testing.assert_close(kernel(layer, x), F.linear(x, layer.weight, layer.bias), rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        layer.weight.mul_(-2)  # in place: a packed copy made before must not be used again
    for kernel in kernels:
        torch.testing.assert_close(kernel(layer, x), F.linear(x, layer.weight, layer.bias), rtol=1e-4, atol=1e-5)


def test_prefill_groups_are_consecutive_and_keep_rows_times_longest_within_the_budget():
    lengths = [300, 120, 100, 90, 40, 40, 10]
    groups = prefill_groups(lengths, 256)
    assert [i for g in groups for i in g] == list(range(len(lengths)))  # every prompt once, in order
    # 300 alone; 2 x 120 fits, 3 x 120 not; 2 x 90 fits, 3 x 90 not; then 40 and 10
    assert groups == [[0], [1, 2], [3, 4], [5, 6]]
    for g in groups[1:]:
        assert len(g) * max(lengths[i] for i in g) <= 256
    assert prefill_groups(lengths, 0) == [list(range(len(lengths)))]  # 0: one forward pass for all
    assert prefill_groups([], 256) == []


def test_grouped_prefill_matches_per_request_greedy_on_the_embedded_model(params, embedded_model, monkeypatch):
    """Prompts of very different lengths prefilled in groups, then joined into one running batch:
    each row's text is still plain greedy's (on the real model, whose attention to a wrong position
    or to padding would show)."""
    import lidr.backends.decode as decode

    backend = make_backend(str(embedded_model), params.generation, params.model, params.seed)
    tok = backend.tokenizer
    long_text = "Here is a long story about a cat who lived on a warm roof in a small town by the sea. " * 6
    texts = (long_text + "Summarise it in one sentence.", "Why is the sky blue?", "Say only the word yes.")
    requests = [Request.chat([{"role": "user", "content": t}]) for t in texts]
    rows = [tok(backend.render(r), add_special_tokens=False)["input_ids"] for r in requests]
    assert len(rows[0]) > 2 * len(rows[1])
    prefills, real = [], decode._prefill
    monkeypatch.setattr(
        decode, "_prefill", lambda model, prompts, *a: prefills.append(len(prompts)) or real(model, prompts, *a)
    )
    decoding = Decoding(max_new_tokens=16, repetition_penalty=1.1)
    budget = 2 * len(rows[1])  # the long prompt alone, the two short ones together
    with torch.inference_mode():
        out = greedy_decode(backend.model, tok, rows, decoding, backend.eos_ids, prefill_tokens=budget)
    assert prefills == [1, 2]
    for request, completion in zip(requests, out, strict=True):
        assert completion.text == tok.decode(reference(backend, request, decoding), skip_special_tokens=True)
