"""Held-out preference accuracy: how each model ranks m0's LIDR pairs on prompts it never trained on.

For a pair (prompt x, chosen y_w, rejected y_l), a model pi and the reference pi_ref = m0, the implicit DPO
reward margin is

    margin = [log pi(y_w|x) - log pi_ref(y_w|x)] - [log pi(y_l|x) - log pi_ref(y_l|x)]

(in nats, without beta, whose sign it does not change). m0's margin is 0 by construction; a later model
that learned the method's preference puts it above 0 on more than half of the pairs. Forward passes only.
A response's log-probability is the sum over the tokens that the chat template puts after the prompt
(the response and its end-of-turn tokens), as in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from lidr.stats import binomial_two_sided, mean_interval, share

PAIR_KEY = ("id", "source_lang", "pair_type")


def response_token_ids(tokenizer, prompt: list[dict], response: str) -> tuple[list[int], int]:
    """Token ids of prompt + response through the chat template, and where the response starts."""
    head = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": response}], tokenize=False)
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    start = 0
    while start < min(len(head_ids), len(full_ids)) and head_ids[start] == full_ids[start]:
        start += 1
    return full_ids, start


def batch_logps(model, encoded: Sequence[tuple[list[int], int]], pad: int):
    """Summed response log-probabilities (a tensor, differentiable) of right-padded `(ids, start)` rows."""
    import torch

    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in encoded])
    attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in encoded])
    logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
    positions = torch.arange(width - 1)[None, :]
    starts = torch.tensor([max(start - 1, 0) for _, start in encoded])[:, None]
    ends = torch.tensor([len(ids) - 1 for ids, _ in encoded])[:, None]
    return (logp * ((positions >= starts) & (positions < ends))).sum(-1)


def sequence_logps(model, tokenizer, items: Sequence[tuple[list[dict], str]], batch_size: int = 4, desc: str = ""):
    """Summed log-probability and token count of each response given its prompt (right-padded batches)."""
    import torch
    from tqdm.auto import tqdm

    encoded = [response_token_ids(tokenizer, p, r) for p, r in items]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[tuple[float, int]] = []
    model.eval()
    with torch.inference_mode():
        for i in tqdm(range(0, len(encoded), batch_size), desc=desc or "score", unit="batch", dynamic_ncols=True):
            batch = encoded[i : i + batch_size]
            sums = batch_logps(model, batch, pad).tolist()
            out += [(sums[k], len(ids) - start) for k, (ids, start) in enumerate(batch)]
    return out


def score_pairs(model, tokenizer, pairs: list[dict], batch_size: int = 4) -> list[dict]:
    """Per pair: the summed log-probabilities of its chosen and rejected responses under `model`."""
    items = []
    for p in pairs:
        items += [(p["prompt"], p["chosen"][0]["content"]), (p["prompt"], p["rejected"][0]["content"])]
    logps = sequence_logps(model, tokenizer, items, batch_size, desc="score held-out pairs")
    return [
        {
            **{k: p[k] for k in PAIR_KEY},
            "lang": p["lang"],
            "chosen_logp": round(logps[2 * i][0], 4),
            "rejected_logp": round(logps[2 * i + 1][0], 4),
            "chosen_tokens": logps[2 * i][1],
            "rejected_tokens": logps[2 * i + 1][1],
        }
        for i, p in enumerate(pairs)
    ]


def margins(scores: list[dict], reference: list[dict]) -> pl.DataFrame:
    """Join a model's scores with the reference's on the pair key; one margin per pair."""
    cols = [*PAIR_KEY, "chosen_logp", "rejected_logp"]
    model = pl.DataFrame(scores).select(cols)
    ref = pl.DataFrame(reference).select(cols).rename({"chosen_logp": "ref_chosen", "rejected_logp": "ref_rejected"})
    joined = model.join(ref, on=list(PAIR_KEY), how="full", coalesce=True, validate="1:1")
    if joined.filter(pl.col("chosen_logp").is_null() | pl.col("ref_chosen").is_null()).height:
        raise ValueError("the model's and the reference's scores cover different pairs")
    return joined.with_columns(
        ((pl.col("chosen_logp") - pl.col("ref_chosen")) - (pl.col("rejected_logp") - pl.col("ref_rejected")))
        .round(4)
        .alias("margin")
    )


def summarise(table: pl.DataFrame) -> dict:
    """Per pair type, per language and over all languages: accuracy (margin > 0) and mean margin, with
    their 95% intervals and the sign test's p-value against chance (50%)."""

    def one(df: pl.DataFrame) -> dict:
        values = df["margin"].to_list()
        k = sum(1 for v in values if v > 0)
        return {
            "accuracy": share(k, len(values)),
            "margin": mean_interval(values),
            "p_sign": round(binomial_two_sided(k, len(values)), 4),
        }

    out: dict = {}
    for pair_type in sorted(table["pair_type"].unique().to_list()):
        df = table.filter(pl.col("pair_type") == pair_type)
        per_lang = {lang: one(df.filter(pl.col("source_lang") == lang)) for lang in sorted(df["source_lang"].unique())}
        out[pair_type] = {**per_lang, "all": one(df)}
    return out
