"""Held-out preference accuracy: response log-probabilities, margins against the reference, the summary."""

import polars as pl
import pytest

from lidr.preference import margins, response_token_ids, score_pairs, summarise


def pair(i, lang="es", pair_type="x", chosen="Hola, ¿qué tal?", rejected="Hello there."):
    return {
        "id": f"p{i}",
        "lang": lang if pair_type != "en" else "en",
        "source_lang": lang,
        "pair_type": pair_type,
        "prompt": [{"role": "user", "content": "Saluda a un amigo."}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def test_response_tokens_follow_the_prompt(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    prompt = [{"role": "user", "content": "Saluda."}]
    ids, start = response_token_ids(tok, prompt, "Hola")
    head = tok(tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True), add_special_tokens=False)
    assert ids[:start] == head["input_ids"] and "Hola" in tok.decode(ids[start:])


def test_margins_join_on_the_pair_and_subtract_the_reference():
    model = [
        {"id": "a", "source_lang": "es", "pair_type": "x", "chosen_logp": -10.0, "rejected_logp": -12.0},
        {"id": "a", "source_lang": "es", "pair_type": "en", "chosen_logp": -5.0, "rejected_logp": -4.0},
    ]
    ref = [
        {"id": "a", "source_lang": "es", "pair_type": "en", "chosen_logp": -5.0, "rejected_logp": -5.0},
        {"id": "a", "source_lang": "es", "pair_type": "x", "chosen_logp": -11.0, "rejected_logp": -11.0},
    ]
    table = margins(model, ref).sort("pair_type")
    # x: (-10 - -11) - (-12 - -11) = 2; en: (-5 - -5) - (-4 - -5) = -1
    assert table.select("pair_type", "margin").rows() == [("en", -1.0), ("x", 2.0)]
    with pytest.raises(ValueError, match="different pairs"):
        margins(model[:1], ref)


def test_summary_counts_positive_margins_per_language_and_type():
    table = pl.DataFrame(
        {
            "pair_type": ["x", "x", "x", "en"],
            "source_lang": ["es", "es", "de", "es"],
            "margin": [0.5, -0.2, 0.0, 1.0],
        }
    )
    out = summarise(table)
    assert out["x"]["es"]["accuracy"]["k"] == 1 and out["x"]["es"]["accuracy"]["n"] == 2
    assert out["x"]["de"]["accuracy"]["k"] == 0  # a zero margin is not a win
    assert out["x"]["all"]["accuracy"]["n"] == 3 and out["en"]["all"]["margin"]["mean"] == 1.0


def test_training_toward_the_chosen_side_makes_the_heldout_margin_positive(tiny_model, params):
    """A few steps of DPO (lidr.dpo_loss) against a frozen copy on one pair (Spanish over English answers):
    the margin of another, held-out pair of the same kind becomes > 0."""
    import torch
    from transformers import AutoTokenizer

    from lidr.dpo_loss import dpo_nll_loss
    from lidr.model import load_causal_lm
    from lidr.preference import batch_logps

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ref, model = load_causal_lm(tiny_model, params.model), load_causal_lm(tiny_model, params.model)
    train = pair(0, chosen="Hola, amigo. ¿Cómo estás hoy?", rejected="Hello, friend. How are you today?")
    pairs = [pair(1, chosen="Hola, ¿qué tal estás?", rejected="Hello, how are you?")]
    before = margins(score_pairs(model, tok, pairs), score_pairs(ref, tok, pairs))["margin"][0]
    assert before == 0.0  # the same weights: 0 by construction
    encoded = [response_token_ids(tok, train["prompt"], train[side][0]["content"]) for side in ("chosen", "rejected")]
    with torch.no_grad():
        ref_logps = batch_logps(ref, encoded, tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(5):
        logps = batch_logps(model, encoded, tok.pad_token_id)
        length = torch.tensor([float(len(encoded[0][0]) - encoded[0][1])])
        loss = dpo_nll_loss(logps[:1], logps[1:], ref_logps[:1], ref_logps[1:], length, beta=0.5, alpha=1.0).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = margins(score_pairs(model, tok, pairs), score_pairs(ref, tok, pairs))
    assert after["margin"][0] > 0
    assert summarise(after)["x"]["es"]["accuracy"]["k"] == 1
