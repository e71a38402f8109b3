"""The comparison loop: every pair judged in both orders, the model's output first ("m"), then second ("M").

Two identical outputs are not judged: alpaca_eval sets their preference to the midpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

from lidr.judge.clients import Judge
from lidr.judge.prompts import TOKENS
from lidr.judge.winrate import both_orders, preference


def judge_pairs(judge: Judge, items: Sequence[dict]) -> list[dict]:
    """Judge each `{"id", "lang", "instruction", "output", "opponent_output"}` in both orders.

    Returns one record per item with, per order, the prompt, the judge's log-probabilities (None when the
    request failed), the model's preference and the error; then `both_orders` of the two preferences
    (`preference`, `verdict`, `orders_used`, `order_disagreement`, `ok`, `error`) and `identical_outputs`.
    Identical outputs are not sent to the judge: their preference is 0.5, a draw, as in alpaca_eval.
    """
    judged = [k for k, it in enumerate(items) if it["output"] != it["opponent_output"]]
    prompts = []
    for k in judged:
        it = items[k]
        prompts.append(judge.prompt.messages(it["instruction"], it["output"], it["opponent_output"]))  # model is "m"
        prompts.append(judge.prompt.messages(it["instruction"], it["opponent_output"], it["output"]))  # model is "M"
    answers = judge.logprobs(prompts) if prompts else []
    at = {k: 2 * i for i, k in enumerate(judged)}
    records = []
    for k, it in enumerate(items):
        if k not in at:
            same = {"preference": 0.5, "verdict": "tie", "orders_used": 0, "order_disagreement": False}
            records.append(
                {**it, "judge": judge.name, "orders": [], **same, "ok": True, "error": None, "identical_outputs": True}
            )
            continue
        orders = []
        for j, token in enumerate(TOKENS):
            answer = answers[at[k] + j]
            if isinstance(answer, Exception):
                lp, pref, error = None, None, str(answer)
            else:
                lp, pref = answer, preference(answer, token)
                error = None if pref is not None else "the judge named neither output"
            orders.append(
                {
                    "model_token": token,
                    "prompt": judge.prompt_text(prompts[at[k] + j]),
                    "logprobs": lp,
                    "preference": pref,
                    "error": error,
                }
            )
        records.append(
            {
                **it,
                "judge": judge.name,
                "orders": orders,
                **both_orders(orders[0]["preference"], orders[1]["preference"]),
                "identical_outputs": False,
            }
        )
    return records
