"""Reference likelihood: how likely a model finds a reference answer (GPT-4-turbo's, in X-AlpacaEval) to
an instruction, per token, in each language (docs/evaluation.md).

For an item i in language l and a model pi, with y the first N tokens of the reference answer as the chat
template puts it after the instruction's prompt x (the answering prompt of language fidelity),

    ll(pi, i, l) = (1 / |y|) * sum_t log pi(y_t | x, y_<t)        (nats per token)

Against m0, per item: gain(i, l) = ll(pi, i, l) - ll(m0, i, l); the contrast of language x with the dominant
language d, per item: gain(i, x) - gain(i, d) (the items are parallel). Each is reported as a mean over the
items with its normal 95% interval (lidr.stats.mean_interval). Forward passes only.
"""

from __future__ import annotations

from collections.abc import Sequence

from lidr.preference import batch_logps, response_token_ids
from lidr.stats import mean_interval

KEY = ("lang", "id")


def reference_tokens(tokenizer, prompt: list[dict], reference: str, max_tokens: int) -> tuple[list[int], int]:
    """Token ids of the prompt and the first `max_tokens` tokens of the reference answer, and where it starts."""
    ids, start = response_token_ids(tokenizer, prompt, reference)
    return ids[: start + max_tokens], start


def mean_logps(model, tokenizer, items: Sequence[tuple[list[dict], str]], max_tokens: int, batch_size: int = 8):
    """Per (prompt, reference) item: the mean log-probability per scored token, and the number of tokens scored.

    Items are batched by length (less padding); the results come back in the items' order."""
    import torch
    from tqdm.auto import tqdm

    encoded = [reference_tokens(tokenizer, p, r, max_tokens) for p, r in items]
    for k, (ids, start) in enumerate(encoded):
        if len(ids) <= start:
            raise ValueError(f"item {k}: the reference answer has no tokens to score")
    order = sorted(range(len(encoded)), key=lambda k: (len(encoded[k][0]), k))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[tuple[float, int] | None] = [None] * len(encoded)
    model.eval()
    with torch.inference_mode():
        for i in tqdm(range(0, len(order), batch_size), desc="score references", unit="batch", dynamic_ncols=True):
            ks = order[i : i + batch_size]
            sums = batch_logps(model, [encoded[k] for k in ks], pad).tolist()
            for k, total in zip(ks, sums, strict=True):
                ids, start = encoded[k]
                out[k] = (total / (len(ids) - start), len(ids) - start)
    return out


def per_language(scores: list[dict]) -> dict:
    """Per language: the mean of the items' `logp` with its 95% interval and n."""
    out = {}
    for lang in dict.fromkeys(s["lang"] for s in scores):
        out[lang] = mean_interval([s["logp"] for s in scores if s["lang"] == lang])
    return out


def _by_key(scores: list[dict], where: str) -> dict[tuple[str, str], float]:
    table = {}
    for s in scores:
        key = (s["lang"], s["id"])
        if key in table:
            raise ValueError(f"{where}: {s['lang']} item {s['id']!r} is scored twice")
        table[key] = s["logp"]
    return table


def gains(base: list[dict], new: list[dict]) -> dict[tuple[str, str], float]:
    """Per (lang, id): the new model's log-likelihood minus the base model's; both must score the same items."""
    b, n = _by_key(base, "base scores"), _by_key(new, "new scores")
    if b.keys() != n.keys():
        lang, rid = sorted(b.keys() ^ n.keys())[0]
        raise ValueError(f"the two models scored different items (first: {lang} item {rid!r})")
    return {k: n[k] - b[k] for k in n}


def compare(base: list[dict], new: list[dict], dominant: str) -> dict:
    """{"gain": {lang: mean interval}, "contrast": {x: mean interval of gain(x) - gain(dominant) per item}}."""
    g = gains(base, new)
    langs = list(dict.fromkeys(lang for lang, _ in g))
    out: dict = {"gain": {}, "contrast": {}}
    for lang in langs:
        out["gain"][lang] = mean_interval([v for (lg, _), v in g.items() if lg == lang])
    if dominant not in langs:
        raise ValueError(f"no {dominant} scores: the contrast needs the dominant language's items")
    base_gain = {rid: v for (lg, rid), v in g.items() if lg == dominant}
    for lang in langs:
        if lang == dominant:
            continue
        ids = [rid for (lg, rid) in g if lg == lang]
        missing = [rid for rid in ids if rid not in base_gain]
        if missing:
            raise ValueError(f"{lang} item {missing[0]!r} has no {dominant} counterpart (the contrast pairs items)")
        out["contrast"][lang] = mean_interval([g[(lang, rid)] - base_gain[rid] for rid in ids])
    return out
