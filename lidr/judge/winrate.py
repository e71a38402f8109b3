"""The judge's arithmetic: log-probabilities -> preference, the two orders combined, win rates per language.

The preference is the probability mass on the token naming the model's output, renormalised over the two
tokens: alpaca_eval's `logprob_parser` with `is_binarize: false`, on a 0..1 scale (alpaca_eval's 1..2
preference minus 1, with the model as output_2). The two orders' preferences are averaged, which cancels the
judge's position bias; when one order failed (an endpoint error, no log-probabilities, neither token), the
other order's preference is kept.

Win rate and its standard error as alpaca_eval computes them (`metrics.helpers.AbsoluteScoringRule.
describe_head2head`, `head_to_head` here): win_rate = 100 x the mean preference over instructions,
standard_error = 100 x its standard error of the mean (sample standard deviation / sqrt(n)); a win is a
preference above 0.5, a loss below, a draw exactly 0.5. `order_disagreement` marks a pair whose two orders
do not both lean the same way, which says something about the judge, not about the outputs.

`win_rates` makes the judge stage's per-language TABLE of the judged records (lidr.judge.compare) and
`summarise` its metrics (stages.judge describes both).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from lidr.judge.prompts import TOKENS


def preference(logprobs: dict[str, float], token: str) -> float | None:
    """Probability mass on `token` among the two identifiers; None when the judge gave neither.

    A token absent from `logprobs` (outside an API's top log-probabilities) has no mass.
    """
    masses = {t: math.exp(logprobs[t]) for t in TOKENS if t in logprobs and logprobs[t] is not None}
    total = sum(masses.values())
    if total <= 0.0:
        return None
    return masses.get(token, 0.0) / total


def verdict_of(pref: float) -> str:
    """alpaca_eval's head-to-head outcome of one preference: a draw only exactly at the midpoint."""
    return "win" if pref > 0.5 else "lose" if pref < 0.5 else "tie"


def both_orders(first: float | None, second: float | None) -> dict:
    """Combine the model's preference with its output shown first and shown second.

    The mean of the two, or the one that exists when the other order failed (`orders_used` 1).
    `order_disagreement`: both orders exist and do not both lean the same way.
    """
    used = [p for p in (first, second) if p is not None]
    if not used:
        return {
            "preference": None,
            "verdict": None,
            "orders_used": 0,
            "order_disagreement": False,
            "ok": False,
            "error": "the judge gave no preference in either order",
        }
    pref = sum(used) / len(used)
    agree = len(used) < 2 or (first > 0.5 and second > 0.5) or (first < 0.5 and second < 0.5)
    return {
        "preference": pref,
        "verdict": verdict_of(pref),
        "orders_used": len(used),
        "order_disagreement": not agree,
        "ok": True,
        "error": None,
    }


def head_to_head(preferences: Sequence[float | None]) -> dict:
    """alpaca_eval's description of a head-to-head (metrics.helpers.AbsoluteScoringRule.describe_head2head).

    `preferences` are the model's, 0..1; None (no preference) is left out, as alpaca_eval drops NaN.
    win_rate = 100 x mean; standard_error = 100 x sample standard deviation / sqrt(n_total) (pandas' sem,
    None below 2 preferences); n_wins > 0.5, n_wins_base < 0.5, n_draws == 0.5; discrete_win_rate =
    100 x (n_wins + n_draws / 2) / n_total (alpaca_eval's ZeroOneScoringRule).
    """
    ps = [p for p in preferences if p is not None and not math.isnan(p)]
    n = len(ps)
    wins, base, draws = sum(p > 0.5 for p in ps), sum(p < 0.5 for p in ps), sum(p == 0.5 for p in ps)
    return {
        "win_rate": 100 * statistics.fmean(ps) if n else None,
        "standard_error": 100 * statistics.stdev(ps) / math.sqrt(n) if n > 1 else None,
        "discrete_win_rate": 100 * (wins + draws / 2) / n if n else None,
        "n_wins": wins,
        "n_wins_base": base,
        "n_draws": draws,
        "n_total": n,
    }


def verdict_mass(record: dict) -> float | None:
    """The judge's probability on the two verdict tokens together, averaged over the orders it answered.

    Near 1: the judge answers as asked. A few hundredths: it would rather say something else, and
    its preference between the two tokens is noise around 50%. None when no order was answered (a failed
    request, identical outputs).
    """
    masses = [
        sum(math.exp(lp) for lp in o["logprobs"].values() if lp is not None)
        for o in record["orders"]
        if o["logprobs"] is not None
    ]
    return sum(masses) / len(masses) if masses else None


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def win_rates(records: list[dict]) -> dict:
    """Per language, alpaca_eval's head-to-head description of the preferences and lidr's counts (TABLE)."""
    per_lang: dict[str, list[dict]] = {}
    for r in records:
        per_lang.setdefault(r["lang"], []).append(r)
    out = {}
    for lang, rs in per_lang.items():
        stats = head_to_head([r["preference"] for r in rs if r["ok"]])
        masses = [m for m in (verdict_mass(r) for r in rs) if m is not None]
        out[lang] = {
            **stats,
            **{k: _round(stats[k], 2) for k in ("win_rate", "standard_error", "discrete_win_rate")},
            "n": len(rs),
            "n_failed": sum(not r["ok"] for r in rs),
            "n_one_order": sum(r["ok"] and r["orders_used"] == 1 for r in rs),
            "n_identical": sum(r["identical_outputs"] for r in rs),
            "order_disagreements": sum(r["order_disagreement"] for r in rs),
            "verdict_mass": _round(sum(masses) / len(masses), 4) if masses else None,
        }
    return out


def summarise(by_comparison: dict[str, list[dict]], judge: str, reference: str, prompt: str = "") -> dict:
    """The judge stage's metrics: the "reference" comparison's TABLE and its average over the languages, and the
    head-to-heads' ("previous", "m0") TABLEs with their opponent."""
    metrics: dict = {
        "judge": judge,
        "prompt": prompt,
        "reference": reference,
        "alpaca": {},
        "alpaca_avg": {},
        "head_to_head": {},
    }
    if "reference" in by_comparison:
        metrics["alpaca"] = table = win_rates(by_comparison["reference"])
        rates = [v["win_rate"] for v in table.values() if v["win_rate"] is not None]
        metrics["alpaca_avg"] = {"win_rate": round(sum(rates) / len(rates), 2) if rates else None}
    for name in ("previous", "m0"):
        if name in by_comparison:
            metrics["head_to_head"][name] = {
                "opponent": by_comparison[name][0]["opponent"],
                "per_lang": win_rates(by_comparison[name]),
            }
    return metrics
