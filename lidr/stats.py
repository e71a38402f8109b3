"""Intervals and paired tests for the evaluation measures (docs in README, "Measures").

Every measure is reported with its n and a 95% interval, and every later model is compared with m0
on the same items:

- a share (k of n): the Wilson score interval;
- a paired difference of two shares on the same items (model vs m0, yes/no per item): the
  difference with the Agresti-Min interval (half an observation added to each cell of the 2x2 table,
  then the Wald interval; good coverage at small n, and never of zero width), and the exact
  McNemar test on the discordant items;
- a mean (of implicit-reward margins): the normal-approximation interval;
- a share against one half (preference accuracy): the exact two-sided binomial (sign) test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval of the share k/n; None when n == 0."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n trials against p = 1/2 (1.0 when n == 0)."""
    if n <= 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_shares(base: Sequence[bool], new: Sequence[bool], z: float = Z95) -> dict:
    """Difference new - base of two shares measured on the same items, in the same order.

    Returns n, the two shares, `gained` (base no, new yes), `lost` (base yes, new no), the difference,
    its Agresti-Min 95% interval and the exact McNemar p-value.
    """
    if len(base) != len(new):
        raise ValueError(f"paired outcomes need the same items: {len(base)} against {len(new)}")
    n = len(base)
    gained = sum(1 for a, b in zip(base, new, strict=True) if b and not a)
    lost = sum(1 for a, b in zip(base, new, strict=True) if a and not b)
    out = {
        "n": n,
        "base": round(sum(map(bool, base)) / n, 4) if n else None,
        "new": round(sum(map(bool, new)) / n, 4) if n else None,
        "gained": gained,
        "lost": lost,
    }
    if n == 0:
        return {**out, "diff": None, "ci95": None, "p_mcnemar": 1.0}
    b, c, m = gained + 0.5, lost + 0.5, n + 2
    d = (b - c) / m
    se = math.sqrt(max((b + c) - (b - c) ** 2 / m, 0.0)) / m
    return {
        **out,
        "diff": round((gained - lost) / n, 4),
        "ci95": [round(max(-1.0, d - z * se), 4), round(min(1.0, d + z * se), 4)],
        "p_mcnemar": round(binomial_two_sided(gained, gained + lost), 4),
    }


def mean_interval(values: Sequence[float], z: float = Z95) -> dict:
    """Mean, normal-approximation 95% interval and n of `values`."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "ci95": None}
    mean = sum(values) / n
    if n == 1:
        return {"n": 1, "mean": round(mean, 4), "ci95": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return {"n": n, "mean": round(mean, 4), "ci95": [round(mean - half, 4), round(mean + half, 4)]}


def share(k: int, n: int) -> dict:
    """k of n with its Wilson interval, as stored in the metrics files."""
    ci = wilson(k, n)
    return {
        "k": k,
        "n": n,
        "share": round(k / n, 4) if n else None,
        "ci95": [round(ci[0], 4), round(ci[1], 4)] if ci else None,
    }


def fmt_share(m: dict | None) -> str:
    """'0.62 [0.45, 0.76] (n=40)' for a share dict; '-' when missing."""
    if not m or m.get("n", 0) == 0 or m.get("share") is None:
        return "-"
    lo, hi = m["ci95"]
    return f"{m['share']:.2f} [{lo:.2f}, {hi:.2f}] (n={m['n']})"


def fmt_paired(m: dict | None) -> str:
    """'+0.10 [+0.01, +0.19] p=0.04 (+6/-2)' for a paired comparison; '-' when missing."""
    if not m or m.get("diff") is None:
        return "-"
    lo, hi = m["ci95"]
    return f"{m['diff']:+.2f} [{lo:+.2f}, {hi:+.2f}] p={m['p_mcnemar']:.3g} (+{m['gained']}/-{m['lost']})"
