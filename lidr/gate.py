"""The gate between pairing and training: named rules, applied per pair and per side.

Each rule returns the reasons it rejects a pair (empty when it passes). A pair is kept when no
enabled rule rejects it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lidr.config import FilterParams

_WS = re.compile(r"\s+")


def _norm(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()


def _content(pair: dict, side: str) -> str | None:
    return pair[side][0]["content"]


def rule_failed_translation(pair: dict) -> list[str]:
    return [] if pair["translation_ok"] else ["failed_translation"]


def rule_empty(pair: dict) -> list[str]:
    return [
        f"empty_{side}"
        for side in ("chosen", "rejected")
        if _content(pair, side) is not None and not _norm(_content(pair, side))
    ]


def rule_identical(pair: dict) -> list[str]:
    c, r = _content(pair, "chosen"), _content(pair, "rejected")
    return ["identical"] if c is not None and r is not None and _norm(c) == _norm(r) else []


RULES: dict[str, tuple[str, Callable[[dict], list[str]]]] = {
    "failed_translation": ("drop_failed_translation", rule_failed_translation),
    "empty": ("drop_empty", rule_empty),
    "identical": ("drop_identical", rule_identical),
}


def apply_rules(pairs: list[dict], settings: FilterParams) -> tuple[list[dict], list[dict]]:
    """(kept, rejected); each rejected pair carries `rejected_by`: the reasons."""
    kept, rejected = [], []
    for pair in pairs:
        reasons = []
        for flag, rule in RULES.values():
            if getattr(settings, flag):
                reasons += rule(pair)
        if reasons:
            rejected.append({**pair, "rejected_by": reasons})
        else:
            kept.append(pair)
    return kept, rejected
