"""The gate between pairing and training: named rules, applied per pair and per side.

Each rule looks at one pair and returns its findings: (rule, side, detail), empty when the pair
passes. A pair is kept when no enabled rule finds anything. Every rule is switched and tuned in
params.yaml under `filter.<rule>`; `sides` says which of chosen/rejected a per-side rule checks.

| rule               | rejects a pair when                                                        |
|--------------------|----------------------------------------------------------------------------|
| failed_translation | a translated side has no `<translated>` span (content null)                 |
| empty              | a side is blank                                                              |
| identical          | chosen equals rejected after whitespace normalisation                       |
| truncated          | a side (or the response it translates) stopped at the token limit           |
| wrong_language     | a side is confidently in another language than the pair's                   |
| degenerate         | a side repeats a line or an n-gram many times                               |
| length_ratio       | a translated side's length over its source's is outside the language's band |
| echo               | a translated side is its source, unchanged                                  |
| duplicate          | an earlier pair has the same language, prompt, chosen and rejected          |
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from lidr.config import FilterParams
from lidr.evaluate import detect_language

SIDES = ("chosen", "rejected")
_WS = re.compile(r"\s+")
# Words, and each CJK/kana character on its own (those scripts do not separate words by spaces).
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W\u3040-\u30ff\u3400-\u9fff]+")


class Finding(NamedTuple):
    rule: str
    side: str | None  # None: the pair as a whole
    detail: str

    def __str__(self) -> str:
        return f"{self.rule}[{self.side}]: {self.detail}" if self.side else f"{self.rule}: {self.detail}"


def norm(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()


def content(pair: dict, side: str) -> str | None:
    return pair[side][-1]["content"]


def _source(pair: dict, side: str) -> str | None:
    return pair.get(f"{side}_source")


# ---------------------------------------------------------------------------------------------
# Rules: (pair, settings) -> findings


def rule_failed_translation(pair: dict, f: FilterParams) -> list[Finding]:
    if pair["translation_ok"]:
        return []
    sides = [s for s in SIDES if content(pair, s) is None] or [None]
    return [Finding("failed_translation", s, "no <translated> span in the self-translation") for s in sides]


def rule_empty(pair: dict, f: FilterParams) -> list[Finding]:
    return [
        Finding("empty", s, "blank text")
        for s in f.empty.sides
        if content(pair, s) is not None and not norm(content(pair, s))
    ]


def rule_identical(pair: dict, f: FilterParams) -> list[Finding]:
    c, r = content(pair, "chosen"), content(pair, "rejected")
    if c is None or r is None or norm(c) != norm(r):
        return []
    return [Finding("identical", None, "chosen equals rejected after whitespace normalisation")]


def rule_truncated(pair: dict, f: FilterParams) -> list[Finding]:
    out = []
    for s in f.truncated.sides:
        if pair.get(f"{s}_finish_reason") == "length":
            out.append(Finding("truncated", s, "generation stopped at the token limit"))
        elif f.truncated.include_source and pair.get(f"{s}_source_finish_reason") == "length":
            out.append(Finding("truncated", s, "translates a response that stopped at the token limit"))
    return out


def rule_wrong_language(pair: dict, f: FilterParams, languages: tuple[str, ...]) -> list[Finding]:
    rule = f.wrong_language
    if pair.get("asks_translation"):  # the prompt itself asks for another language
        return []
    candidates = tuple(dict.fromkeys((*languages, pair["lang"], *rule.confusers)))
    out = []
    for s in rule.sides:
        text = norm(content(pair, s))
        if len(text) < rule.min_chars:
            continue
        lang, prob = detect_language(text, candidates)
        if lang != pair["lang"] and prob >= rule.min_confidence:
            out.append(Finding("wrong_language", s, f"detected {lang} ({prob:.2f}), expected {pair['lang']}"))
    return out


def repeats(text: str, n: int) -> tuple[tuple[str, int], tuple[str, int]]:
    """The most repeated non-blank line and word n-gram of `text`, each with its count."""
    lines = Counter(norm(line) for line in text.splitlines() if re.search(r"\w", line))
    tokens = _TOKEN.findall(text.lower())
    grams = Counter(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    top_line = lines.most_common(1)[0] if lines else ("", 0)
    top_gram = grams.most_common(1)[0] if grams else ("", 0)
    return top_line, top_gram


def rule_degenerate(pair: dict, f: FilterParams) -> list[Finding]:
    rule = f.degenerate
    out = []
    for s in rule.sides:
        text = content(pair, s)
        if not text:
            continue
        (line, n_line), (gram, n_gram) = repeats(text, rule.ngram)
        if n_line >= rule.max_line_repeats:
            out.append(Finding("degenerate", s, f"line {line[:40]!r} repeated {n_line} times"))
        elif n_gram >= rule.max_ngram_repeats:
            out.append(Finding("degenerate", s, f"{rule.ngram}-gram {gram!r} repeated {n_gram} times"))
    return out


def length_ratio(pair: dict, side: str, dominant: str) -> tuple[str, float] | None:
    """(non-dominant language, its characters per dominant character) for a translated side, else None."""
    text, source = norm(content(pair, side)), norm(_source(pair, side))
    if not text or not source:
        return None
    other = pair["source_lang"]
    # A translated side of an x pair is in x (source dominant); of an en pair, in dominant (source x).
    if pair["lang"] == dominant:
        return other, len(source) / len(text)
    return other, len(text) / len(source)


def rule_length_ratio(pair: dict, f: FilterParams, dominant: str) -> list[Finding]:
    rule = f.length_ratio
    out = []
    for s in rule.sides:
        source = norm(_source(pair, s))
        if len(source) < rule.min_chars:
            continue
        measured = length_ratio(pair, s, dominant)
        if measured is None:
            continue
        lang, ratio = measured
        low, high = rule.bands[lang]
        if not low <= ratio <= high:
            out.append(Finding("length_ratio", s, f"{lang}/{dominant} characters {ratio:.2f} outside [{low}, {high}]"))
    return out


def rule_echo(pair: dict, f: FilterParams) -> list[Finding]:
    return [
        Finding("echo", s, "the translation is its source, unchanged")
        for s in SIDES
        if _source(pair, s) and norm(_source(pair, s)) == norm(content(pair, s))
    ]


def duplicate_key(pair: dict) -> tuple:
    return (
        pair["lang"],
        norm(pair["prompt"][-1]["content"]),
        norm(content(pair, "chosen")),
        norm(content(pair, "rejected")),
    )


# ---------------------------------------------------------------------------------------------
# Applying them


RULE_NAMES = (
    "failed_translation",
    "empty",
    "identical",
    "truncated",
    "wrong_language",
    "degenerate",
    "length_ratio",
    "echo",
    "duplicate",
)


def _enabled(f: FilterParams, name: str) -> bool:
    return getattr(f, name).enabled


def check_pair(pair: dict, f: FilterParams, languages: tuple[str, ...]) -> list[Finding]:
    """Findings of every enabled per-pair rule (all but duplicate)."""
    dominant = languages[0]
    rules: dict[str, Callable[[dict], list[Finding]]] = {
        "failed_translation": lambda p: rule_failed_translation(p, f),
        "empty": lambda p: rule_empty(p, f),
        "identical": lambda p: rule_identical(p, f),
        "truncated": lambda p: rule_truncated(p, f),
        "wrong_language": lambda p: rule_wrong_language(p, f, languages),
        "degenerate": lambda p: rule_degenerate(p, f),
        "length_ratio": lambda p: rule_length_ratio(p, f, dominant),
        "echo": lambda p: rule_echo(p, f),
    }
    return [finding for name, rule in rules.items() if _enabled(f, name) for finding in rule(pair)]


def apply_rules(pairs: list[dict], f: FilterParams, languages: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """(kept, rejected). `languages` starts with the dominant one. Each rejected pair carries
    `rejected_by` (rule names) and `reasons` (one readable line per finding)."""
    kept, rejected, seen = [], [], set()
    for pair in pairs:
        findings = check_pair(pair, f, languages)
        key = duplicate_key(pair)
        if f.duplicate.enabled and key in seen:
            findings.append(
                Finding("duplicate", None, "same language, prompt, chosen and rejected as an earlier pair")
            )
        seen.add(key)
        if findings:
            rules = list(dict.fromkeys(x.rule for x in findings))
            rejected.append({**pair, "rejected_by": rules, "reasons": [str(x) for x in findings]})
        else:
            kept.append(pair)
    return kept, rejected
