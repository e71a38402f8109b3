"""The gate between pairing and training: named rules, applied per pair and per side.

Each rule looks at one pair and returns its findings: (rule, side, detail), empty when the pair
passes. A pair is kept when no enabled rule finds anything. Every rule is switched and tuned in
params.yaml under `filter.<rule>`; `sides` says which of chosen/rejected a per-side rule checks.

A rule is one definition here: `@rule(name, settings, doc)` over its check. The settings class is its
section under `filter` (fields, defaults and ranges; lidr/config.py builds `filter` from RULES), the check
takes a pair, that section and the run's Context, and yields (side, detail) per finding; the doc is its
line in the table below and in the report. The gate applies RULES in the order they are defined. A new rule:
its settings class and check here, its section under `filter` in params.yaml.

"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from lidr.errors import ParamsError
from lidr.evaluate import detect_language
from lidr.languages import UnknownLanguageError, language_name
from lidr.ranges import at_least, check_languages, share, within

if TYPE_CHECKING:
    from lidr.config import FilterParams

SIDES = ("chosen", "rejected")
Side = Literal["chosen", "rejected"]
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


class Reason(str):
    """A finding as a rejected pair's `reasons` line ("rule[side]: detail"), which keeps the finding it reads."""

    finding: Finding

    def __new__(cls, finding: Finding) -> Reason:
        reason = super().__new__(cls, str(finding))
        reason.finding = finding
        return reason


@dataclass
class Context:
    """What a rule may know beyond the pair: the run's languages (the dominant one first) and the pairs seen."""

    languages: tuple[str, ...]
    seen: set = field(default_factory=set)  # duplicate_key of every pair checked so far

    @property
    def dominant(self) -> str:
        return self.languages[0]


Check = Callable[[dict, Any, Context], Iterable[tuple[str | None, str]]]


@dataclass(frozen=True)
class Rule:
    name: str  # its key under `filter` in params.yaml, and its name in findings, metrics and the report
    settings: type  # its section under `filter`: a frozen dataclass with `enabled` (and `sides` when per side)
    check: Check  # (pair, its settings, context) -> (side or None for the pair, detail) per finding
    doc: str  # a pair is rejected when ...

    @property
    def sides(self) -> tuple[str, ...] | None:
        """The sides it checks by default, when it is switched per side."""
        return getattr(self.settings(), "sides", None)

    def __call__(self, pair: dict, settings: Any, context: Context) -> list[Finding]:
        return [Finding(self.name, side, detail) for side, detail in self.check(pair, settings, context)]


RULES: list[Rule] = []  # in the order the gate applies them


def rule(name: str, settings: type, doc: str) -> Callable[[Check], Rule]:
    """Registers the check it decorates as the rule `name`, with its settings and documentation."""

    def register(check: Check) -> Rule:
        if name in {r.name for r in RULES}:
            raise ValueError(f"gate rule {name!r} is defined twice")
        RULES.append(Rule(name, settings, check, doc))
        return RULES[-1]

    return register


def norm(text: str | None) -> str:
    return _WS.sub(" ", text or "").strip()


def content(pair: dict, side: str) -> str | None:
    return pair[side][-1]["content"]


def _source(pair: dict, side: str) -> str | None:
    return pair.get(f"{side}_source")


# ---------------------------------------------------------------------------------------------
# Rule settings shared by several rules


@dataclass(frozen=True)
class RuleSwitch:
    enabled: bool = True


@dataclass(frozen=True)
class SidedRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen", "rejected")


# ---------------------------------------------------------------------------------------------
# The rules, in the order the gate applies them


@rule("failed_translation", RuleSwitch, "a translated side has no `<translated>` span (content null)")
def rule_failed_translation(pair: dict, rule: RuleSwitch, context: Context) -> Iterable[tuple[str | None, str]]:
    if pair["translation_ok"]:
        return []
    sides = [s for s in SIDES if content(pair, s) is None] or [None]
    return [(s, "no <translated> span in the self-translation") for s in sides]


@rule("empty", SidedRule, "a side is blank")
def rule_empty(pair: dict, rule: SidedRule, context: Context) -> Iterable[tuple[str | None, str]]:
    return [(s, "blank text") for s in rule.sides if content(pair, s) is not None and not norm(content(pair, s))]


@rule("identical", RuleSwitch, "chosen equals rejected after whitespace normalisation")
def rule_identical(pair: dict, rule: RuleSwitch, context: Context) -> Iterable[tuple[str | None, str]]:
    c, r = content(pair, "chosen"), content(pair, "rejected")
    if c is None or r is None or norm(c) != norm(r):
        return []
    return [(None, "chosen equals rejected after whitespace normalisation")]


@dataclass(frozen=True)
class TruncatedRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen",)
    include_source: bool = True  # a translation of a response cut by the token limit is cut too


@rule("truncated", TruncatedRule, "a side (or the response it translates) stopped at the token limit")
def rule_truncated(pair: dict, rule: TruncatedRule, context: Context) -> Iterable[tuple[str | None, str]]:
    out = []
    for s in rule.sides:
        if pair.get(f"{s}_finish_reason") == "length":
            out.append((s, "generation stopped at the token limit"))
        elif rule.include_source and pair.get(f"{s}_source_finish_reason") == "length":
            out.append((s, "translates a response that stopped at the token limit"))
    return out


@dataclass(frozen=True)
class WrongLanguageRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen",)
    min_confidence: float = within(0, 1, 0.9)  # below this the detector is unsure and the side passes
    min_chars: int = at_least(0, 20)  # shorter texts are too short to identify and pass
    confusers: tuple[str, ...] = ("it", "pt", "nl", "uk")  # also considered by the detector

    def check(self, key: str) -> None:
        check_languages(f"{key}.confusers", self.confusers)


@rule("wrong_language", WrongLanguageRule, "a side is confidently in another language than the pair's")
def rule_wrong_language(pair: dict, rule: WrongLanguageRule, context: Context) -> Iterable[tuple[str | None, str]]:
    if pair.get("asks_translation"):  # the prompt itself asks for another language
        return []
    candidates = tuple(dict.fromkeys((*context.languages, pair["lang"], *rule.confusers)))
    out = []
    for s in rule.sides:
        text = norm(content(pair, s))
        if len(text) < rule.min_chars:
            continue
        lang, prob = detect_language(text, candidates)
        if lang != pair["lang"] and prob >= rule.min_confidence:
            out.append((s, f"detected {lang} ({prob:.2f}), expected {pair['lang']}"))
    return out


def words(text: str) -> list[str]:
    """Lower-cased word tokens (see _TOKEN); the typographic apostrophe is read as '."""
    return [w.replace("\u2019", "'") for w in _TOKEN.findall(text.lower())]


def marked_words(text: str) -> list[tuple[str, str]]:
    """Each word of `text` with the punctuation that follows it (spacing removed): the unit of a loop,
    so that code lines differing only in an operator, `p > 0` and `p < 0`, do not repeat."""
    low = text.lower()
    spans = [m.span() for m in _TOKEN.finditer(low)]
    if not spans:  # no word at all ("...", "  "): nothing can repeat
        return []
    ends = [s for s, _ in spans[1:]] + [len(low)]
    return [(low[a:b].replace("\u2019", "'"), _WS.sub("", low[b:c])) for (a, b), c in zip(spans, ends, strict=True)]


ONE_COPY = " (one copy is no repeat)"


@dataclass(frozen=True)
class DegenerateRule:
    """Repetition judged against the text's length and, for a translation, against its source."""

    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen", "rejected")
    ngram: int = at_least(1, 4)  # words (or CJK characters) per n-gram
    min_copies: int = at_least(2, 3, ONE_COPY)  # a loop or a line with fewer copies is never degenerate
    ngram_copies: int = at_least(2, 4, ONE_COPY)  # nor an n-gram with fewer (a weaker sign than a line or block)
    min_words: int = at_least(1, 8)  # nor one whose copies cover fewer words ("No, no, no.")
    max_share: float = share(0.35)  # degenerate: a loop, line or n-gram making up more of the text (words; lines)
    loop_copies: int = at_least(2, 4, ONE_COPY)  # degenerate at any length: a block repeated back to back...
    loop_words: int = at_least(1, 16)  # ...this many times over this many words
    tail_copies: int = at_least(2, 4, ONE_COPY)  # degenerate: the text ends with one block of <= 16 characters...
    tail_chars: int = at_least(1, 32)  # ...this many times over this many characters (digits, emoji)
    source_ratio: float = share(0.75)  # a translation passes a repetition its source has this share of the copies of


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


@rule("degenerate", DegenerateRule, "a side loops, or one repetition is much of it (more than its source has)")
def rule_degenerate(pair: dict, rule: DegenerateRule, context: Context) -> Iterable[tuple[str | None, str]]:
    out = []
    for s in rule.sides:
        text = content(pair, s)
        if not text:
            continue
        # a source that ended in a loop or at the token limit may be degenerate itself: not a reference
        trusted = pair.get(f"{s}_source_finish_reason") not in ("loop", "length")
        found = degenerate(text, rule, _source(pair, s) if trusted else None)
        if found:
            out.append((s, describe(found)))
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


# Characters of a text in a language per character of the same text in English, as a [low, high]
# band: Chinese and Japanese take about a third of the characters, Romance and Slavic languages a
# little more. Wide on purpose: the rule catches truncated, looping or empty translations, not style.
DEFAULT_LENGTH_BANDS: dict[str, tuple[float, float]] = {
    "en": (0.5, 2.0),
    "es": (0.6, 2.4),
    "fr": (0.6, 2.4),
    "de": (0.6, 2.4),
    "ru": (0.55, 2.3),
    "sw": (0.6, 2.4),
    "bn": (0.5, 2.2),
    "te": (0.5, 2.3),
    "th": (0.45, 2.1),
    "ja": (0.15, 0.9),
    "zh": (0.12, 0.8),
}


@dataclass(frozen=True)
class LengthRatioRule:
    enabled: bool = True
    sides: tuple[Side, ...] = ("chosen", "rejected")
    min_chars: int = at_least(0, 20)  # sources shorter than this are not measured
    # [low, high] per language; a mapping given in params.yaml replaces these
    bands: dict[str, tuple[float, ...]] = field(default_factory=lambda: dict(DEFAULT_LENGTH_BANDS))

    def check(self, key: str) -> None:
        try:
            for code in self.bands:
                language_name(code, where=f"{key}.bands.{code}")
        except UnknownLanguageError as e:
            raise ParamsError(str(e)) from None
        for code, band in self.bands.items():
            if len(band) != 2 or not 0 < band[0] < band[1]:
                raise ParamsError(f"{key}.bands.{code}: expected [low, high] with 0 < low < high, got {list(band)}")


@rule("length_ratio", LengthRatioRule, "a translated side's length over its source's is outside the language's band")
def rule_length_ratio(pair: dict, rule: LengthRatioRule, context: Context) -> Iterable[tuple[str | None, str]]:
    dominant = context.dominant
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
            out.append((s, f"{lang}/{dominant} characters {ratio:.2f} outside [{low}, {high}]"))
    return out


@rule("echo", RuleSwitch, "a translated side is its source, unchanged")  # a "translation" identical to its source
def rule_echo(pair: dict, rule: RuleSwitch, context: Context) -> Iterable[tuple[str | None, str]]:
    return [
        (s, "the translation is its source, unchanged")
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


@rule("duplicate", RuleSwitch, "an earlier pair has the same language, prompt, chosen and rejected")
def rule_duplicate(pair: dict, rule: RuleSwitch, context: Context) -> Iterable[tuple[str | None, str]]:
    key = duplicate_key(pair)
    found = key in context.seen
    context.seen.add(key)
    return [(None, "same language, prompt, chosen and rejected as an earlier pair")] if found else []


# ---------------------------------------------------------------------------------------------
# Applying them


RULE_NAMES = tuple(r.name for r in RULES)


def rules_table() -> str:
    """The rules and what each rejects, as a Markdown table (this module's documentation ends with it)."""
    width = max(len(r.name) for r in RULES)
    doc_width = max(len(r.doc) for r in RULES)
    rows = [("rule", "rejects a pair when"), ("-" * width, "-" * doc_width), *((r.name, r.doc) for r in RULES)]
    return "".join(f"| {name:<{width}} | {doc:<{doc_width}} |\n" for name, doc in rows)


if __doc__:  # not under python -OO
    __doc__ += rules_table()


def check_pair(pair: dict, f: FilterParams, context: Context) -> list[Finding]:
    """Findings of every enabled rule, in the order of RULES; each rule reads its own section of `f`."""
    return [x for r in RULES if (settings := getattr(f, r.name)).enabled for x in r(pair, settings, context)]


def apply_rules(pairs: list[dict], f: FilterParams, languages: tuple[str, ...]) -> tuple[list[dict], list[dict]]:
    """(kept, rejected). `languages` starts with the dominant one. Each rejected pair carries
    `rejected_by` (rule names) and `reasons` (one readable line per finding, a Reason that keeps its Finding)."""
    kept, rejected = [], []
    context = Context(tuple(languages))
    for pair in pairs:
        findings = check_pair(pair, f, context)
        if findings:
            rules = list(dict.fromkeys(x.rule for x in findings))
            rejected.append({**pair, "rejected_by": rules, "reasons": [Reason(x) for x in findings]})
        else:
            kept.append(pair)
    return kept, rejected
