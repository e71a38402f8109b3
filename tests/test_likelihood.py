"""Reference likelihood: a hand-computed value on a tiny model, the gains and the contrast against m0."""

import math

import pytest

from lidr.likelihood import compare, mean_logps, per_language, reference_tokens


def test_the_mean_log_likelihood_is_the_hand_computed_one_on_a_tiny_model(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, torch_dtype=torch.float32)
    prompt = [{"role": "user", "content": "Nenne eine Farbe."}]
    reference = "Blau ist eine schöne Farbe, die oft den Himmel beschreibt."
    ids, start = reference_tokens(tok, prompt, reference, max_tokens=5)
    assert len(ids) - start == 5  # only the first five tokens of the answer are scored

    # by hand: one forward pass over the whole sequence, then log softmax at each answer position
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    by_hand = 0.0
    for t in range(start, len(ids)):
        row = logits[t - 1]
        by_hand += (row[ids[t]] - torch.logsumexp(row, dim=0)).item()
    by_hand /= len(ids) - start

    # batched with a longer and a shorter item around it (padding and length sorting must not change it)
    items = [(prompt, reference), ([{"role": "user", "content": "Hi"}], "Hello"), (prompt, reference + " " * 3)]
    out = mean_logps(model, tok, items, max_tokens=5, batch_size=2)
    assert out[0][1] == 5 and out[0][0] == pytest.approx(by_hand, abs=1e-4)
    assert out[2][0] == pytest.approx(by_hand, abs=1e-4)  # the same first five tokens
    assert out[1][1] <= 5 and math.isfinite(out[1][0])


def scores(values: dict[tuple[str, str], float]) -> list[dict]:
    return [{"id": rid, "lang": lang, "logp": v, "n_tokens": 32} for (lang, rid), v in values.items()]


def test_gain_and_contrast_are_paired_per_item():
    base = scores({("en", "1"): -2.0, ("en", "3"): -3.0, ("es", "1"): -4.0, ("es", "3"): -5.0})
    new = scores({("en", "1"): -1.9, ("en", "3"): -3.0, ("es", "1"): -3.5, ("es", "3"): -4.8})
    out = compare(base, new, "en")
    # gains: en 0.1, 0.0 -> 0.05; es 0.5, 0.2 -> 0.35; contrast per item: 0.4, 0.2 -> 0.3
    assert out["gain"]["en"]["mean"] == pytest.approx(0.05)
    assert out["gain"]["es"]["mean"] == pytest.approx(0.35)
    assert out["contrast"]["es"]["mean"] == pytest.approx(0.3) and out["contrast"]["es"]["n"] == 2
    sd = math.sqrt(((0.4 - 0.3) ** 2 + (0.2 - 0.3) ** 2) / 1)
    half = 1.959963984540054 * sd / math.sqrt(2)
    assert out["contrast"]["es"]["ci95"] == pytest.approx([0.3 - half, 0.3 + half], abs=1e-4)
    assert "en" not in out["contrast"]
    assert per_language(base)["es"]["mean"] == -4.5


def test_items_that_do_not_pair_are_refused():
    base = scores({("en", "1"): -2.0, ("es", "1"): -4.0})
    with pytest.raises(ValueError, match="different items"):
        compare(base, scores({("en", "1"): -2.0, ("es", "3"): -4.0}), "en")
    with pytest.raises(ValueError, match="no en scores"):
        compare(scores({("es", "1"): -4.0}), scores({("es", "1"): -4.0}), "en")
    with pytest.raises(ValueError, match="es item '1' has no en counterpart"):
        compare(
            scores({("en", "3"): -1.0, ("es", "1"): -4.0}),
            scores({("en", "3"): -1.0, ("es", "1"): -4.0}),
            "en",
        )
