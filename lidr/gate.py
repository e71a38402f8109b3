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
| degenerate         | a side loops, or one repetition is much of it (more than its source has)    |
| length_ratio       | a translated side's length over its source's is outside the language's band |
| echo               | a translated side is its source, unchanged                                  |
| duplicate          | an earlier pair has the same language, prompt, chosen and rejected          |
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple

from lidr.config import DegenerateRule, FilterParams
from lidr.evaluate import detect_language

SIDES = ("chosen", "rejected")
_WS = re.compile(r"\s+")
# Scripts without spaces between words (CJK, kana) and pictographs (emoji, dingbats): one token per character.
_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u2600-\u27bf\U0001f000-\U0001faff"
# Those characters one by one, and words; a word followed by an apostrophe and a letter ends with the
# apostrophe, so French and Italian elisions are words of their own (l'océan -> l', océan).
_TOKEN = re.compile(rf"[{_CHARS}]|[^\W{_CHARS}]+(?:['\u2019](?=[^\W\d_{_CHARS}]))?")


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


def words(text: str) -> list[str]:
    """Lower-cased word tokens (see _TOKEN); the typographic apostrophe is read as '."""
    return [w.replace("\u2019", "'") for w in _TOKEN.findall(text.lower())]


def marked_words(text: str) -> list[tuple[str, str]]:
    """Each word of `text` with the punctuation that follows it (spacing removed): the unit of a loop,
    so that code lines differing only in an operator, `p > 0` and `p < 0`, do not repeat."""
    low = text.lower()
    spans = [m.span() for m in _TOKEN.finditer(low)]
    ends = [s for s, _ in spans[1:]] + [len(low)]
    return [(low[a:b].replace("\u2019", "'"), _WS.sub("", low[b:c])) for (a, b), c in zip(spans, ends, strict=True)]


# ---------------------------------------------------------------------------------------------
# Repetition, for the degenerate rule. Each measure finds one kind of repetition in a text, as a
# Repeat: how many copies of which unit, and what share of the text those copies make up.


class Repeat(NamedTuple):
    kind: str  # "loop": a block of words back to back; "tail": characters to the end; "line"; "ngram"
    unit: str
    copies: int
    words: int  # words the copies cover (characters for "tail")
    share: float  # of the text's words; of its non-blank lines for "line"; of its characters for "tail"


NO_REPEAT = Repeat("", "", 0, 0, 0.0)
MAX_BLOCK = 40  # longest block, in words, that the loop measure looks for back to back
TAIL_BLOCK = 16  # longest block, in characters, that the tail measure looks for
_LIST_MARK = re.compile(r"^\s*(?:[-*+\u2022]|\d+[.)])\s+")


def _runs(keys: list, max_block: int, floors: tuple[int, ...], keep: Callable[[list], bool]) -> list[tuple]:
    """Per floor in `floors`: (start, block length, keys covered) of the back-to-back run of one block
    of at most `max_block` keys, with at least that many copies and `keep(block)`, that covers the most
    keys (a last partial copy included); (0, 0, 0) when there is none."""
    n, best = len(keys), [(0, 0, 0)] * len(floors)
    for k in range(1, min(max_block, n // 2) + 1):
        run = 0
        for i in range(n - k):
            run = run + 1 if keys[i] == keys[i + k] else 0
            covered = run + k
            if covered // k < 2:
                continue
            for f, floor in enumerate(floors):
                if covered // k >= floor and covered > best[f][2] and keep(keys[i + 1 - run : i + 1 - run + k]):
                    best[f] = (i + 1 - run, k, covered)
    return best


def loop_runs(marked: list[tuple[str, str]], floors: tuple[int, ...], max_block: int = MAX_BLOCK) -> list[Repeat]:
    """Per floor: the back-to-back repetition of one block of words (each with its punctuation, see
    marked_words), with at least that many copies, that covers the most words. Numbers count as equal
    inside a block that has words ("1. Step" repeats "2. Step"); a block of numbers alone must repeat
    exactly (a count 1, 2, 3, 4 is no loop)."""
    masked = [("0" if w.isdigit() else w, p) for w, p in marked]
    mixed = _runs(masked, max_block, floors, lambda block: any(w != "0" for w, _ in block))
    numbers = _runs(marked, max_block, floors, lambda block: all(w.isdigit() for w, _ in block))
    out = []
    for a, b in zip(mixed, numbers, strict=True):
        start, k, covered = max(a, b, key=lambda r: r[2])
        unit = " ".join(w for w, _ in marked[start : start + k])
        out.append(Repeat("loop", unit, covered // k, covered, covered / len(marked)) if covered else NO_REPEAT)
    return out


def _visible(block: str) -> bool:
    """Not punctuation, spacing, math signs or box drawing alone (rules, ellipses, table borders)."""
    return any(
        not (c.isspace() or unicodedata.category(c)[0] == "P" or unicodedata.category(c) == "Sm")
        and not "\u2500" <= c <= "\u259f"
        for c in block
    )


def tail_run(text: str) -> Repeat:
    """The block of at most TAIL_BLOCK characters repeated to the end of `text` with the most copies (a
    last partial copy counts in the characters covered): loops inside one token, of digits or letters."""
    s = text.rstrip()
    best = NO_REPEAT
    for p in range(1, min(TAIL_BLOCK, len(s) // 2) + 1):
        j = len(s) - 1
        while j - p >= 0 and s[j] == s[j - p]:
            j -= 1
        covered = len(s) - 1 - j + p
        block = s[len(s) - covered : len(s) - covered + p]
        if covered // p > max(best.copies, 1) and _visible(block):
            best = Repeat("tail", block, covered // p, covered, covered / len(s))
    return best


def top_line(text: str) -> Repeat:
    """The most repeated non-blank line (list markers aside, case folded), as a share of those lines."""
    lines = [norm(_LIST_MARK.sub("", line)).lower() for line in text.splitlines() if re.search(r"\w", line)]
    if not lines:
        return NO_REPEAT
    line, copies = Counter(lines).most_common(1)[0]
    return Repeat("line", line, copies, copies * len(words(line)), copies / len(lines))


def top_ngram(tokens: list[str], n: int) -> Repeat:
    """The most repeated word n-gram, with the words its occurrences cover."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return NO_REPEAT
    gram, copies = Counter(grams).most_common(1)[0]
    covered = {j for i, g in enumerate(grams) if g == gram for j in range(i, i + n)}
    return Repeat("ngram", " ".join(gram), copies, len(covered), len(covered) / len(tokens))


def repetitions(text: str, rule: DegenerateRule) -> list[Repeat]:
    """Each kind of repetition the rule weighs, measured on `text`."""
    return [
        *loop_runs(marked_words(text), (rule.loop_copies, rule.min_copies)),
        tail_run(text),
        top_line(text),
        top_ngram(words(text), rule.ngram),
    ]


def excessive(r: Repeat, rule: DegenerateRule) -> bool:
    """Whether one measured repetition is degenerate under the rule: a long back-to-back loop
    (loop_copies copies over loop_words words); the end of the text repeating one short block; or any
    repetition (min_copies copies, ngram_copies for an n-gram, over min_words words) that makes up more
    than max_share of the text."""
    if r.kind == "tail":
        return r.copies >= rule.tail_copies and r.words >= rule.tail_chars
    if r.copies < (rule.ngram_copies if r.kind == "ngram" else rule.min_copies) or r.words < rule.min_words:
        return False
    long_loop = r.kind == "loop" and r.copies >= rule.loop_copies and r.words >= rule.loop_words
    return long_loop or r.share > rule.max_share


def describe(r: Repeat) -> str:
    unit = f"{r.unit[:40]!r}"
    return {
        "loop": f"{unit} {r.copies} times back to back ({r.share:.0%} of the words)",
        "tail": f"the text ends repeating {unit} {r.copies} times",
        "line": f"line {unit} {r.copies} times ({r.share:.0%} of the lines)",
        "ngram": f"{len(r.unit.split())}-gram {unit} {r.copies} times ({r.share:.0%} of the words)",
    }[r.kind]


def degenerate(text: str, rule: DegenerateRule, source: str | None = None) -> Repeat | None:
    """The first degenerate repetition of `text`, else None. With the `source` a translation was made
    from, a repetition the source has too (at least source_ratio of the copies, of the same kind) is
    the source's and passes: a translated song keeps its chorus, translated code its repeated lines."""
    source_reps = None
    for i, r in enumerate(repetitions(text, rule)):
        if not excessive(r, rule):
            continue
        if source and source_reps is None:
            source_reps = repetitions(source, rule)
        if source_reps and source_reps[i].copies >= rule.source_ratio * r.copies:
            continue
        return r
    return None


def rule_degenerate(pair: dict, f: FilterParams) -> list[Finding]:
    rule = f.degenerate
    out = []
    for s in rule.sides:
        text = content(pair, s)
        if not text:
            continue
        # a source that ended in a loop or at the token limit may be degenerate itself: not a reference
        trusted = pair.get(f"{s}_source_finish_reason") not in ("loop", "length")
        found = degenerate(text, rule, _source(pair, s) if trusted else None)
        if found:
            out.append(Finding("degenerate", s, describe(found)))
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
