"""Scoring shared by evaluation and the data-quality gate: answer extraction and language identification.

lm-evaluation-harness scores MGSM (its mgsm native-CoT tasks, "flexible-extract" filter) by taking the *last*
number-like span of the response, regex `(-?[$0-9.,]{2,})|(-?[0-9]+)` with `group_select: -1`, and comparing it
with the gold `answer_number` by exact_match with `ignore_case` and `ignore_punctuation` (every ASCII punctuation
character, `$ , . -` included, deleted from both sides). lidr reads the last number as a value and compares
values; it agrees with the harness on `The answer is 18.`, `$1,200`, `Die Antwort lautet 1.234.`, `2.500 euros`,
`1.234.567`, `−5` and `-$5` for golds 18, 1200, 1234, 2500, 1234567, -5 and -5. A number is read with these rules:

* `,` followed by groups of exactly three digits is a thousands separator: `1,200`, `1,234,567.5`.
* `.` is a thousands separator when each dot of a run of them is followed by exactly three digits and the run
  by no digit, and the first group is 1-3 digits not starting with 0: `1.234`, `2.500`, `1.234.567`, `1.234,5`.
  Any other dot is a decimal point: `3.5`, `18.00`, `0.125`, `1.2345`. So `2.125` reads 2125, as the harness
  reads it; a decimal with exactly three decimals and a non-zero integer part is misread on purpose (MGSM's
  gold answers are integers, and dot-grouped thousands are common in de/es/fr/ru/sw answers).
* A single space (also no-break, narrow no-break or thin space) followed by groups of exactly three digits is a
  thousands separator: `1 000`, `12 500` (so a list written `125 250 375` reads as one number).
* `,` followed by one or two digits (and no third) is a decimal comma: `3,5`, `18,00`.
* A sign is `-`, `+` or the Unicode minus `−` (U+2212), possibly followed by `$` (`-$5`), when it does not
  directly follow a letter, digit, `.` or `,` (so `3-5` and `COVID-19` end in 5 and 19, not -5 and -19).

Gold answers are read with the same rules (`normalise_number`).

Where lidr deliberately differs from the harness (the harness is wrong in each case):

* `18.0` / `18.00` for gold 18: the harness deletes the dot and compares "180" with "18" (wrong); lidr: 18.
* `18,00` for gold 18: the harness reads 1800; lidr reads 18 (decimal comma).
* `1 000` for gold 1000: the harness takes the last match "000"; lidr reads 1000.
* `3.5` for gold 35 (or `35` for gold 3.5): the harness deletes the dot and accepts; lidr compares 3.5 with 35.
* `5` for gold -5: the harness deletes the minus from both and accepts; lidr keeps signs, so only `-5`, `−5`
  and `-$5` match gold -5.
"""

from __future__ import annotations

import functools
import re

_SPACES = " \u00a0\u202f\u2009"  # space, no-break space, narrow no-break space, thin space

# One number as written in an answer; the named group says which writing it is (see the module docstring).
_NUMBER = re.compile(
    r"(?:(?<![\w.,])(?P<sign>[-+\u2212])\$?)?"
    r"(?:"
    r"(?P<comma>[1-9]\d{0,2}(?:,\d{3})+(?!\d)(?:\.\d+)?)"  # 1,234,567.5
    r"|(?P<dot>[1-9]\d{0,2}(?:\.\d{3})+(?!\d)(?:,\d+)?)"  # 1.234.567,5
    rf"|(?P<space>[1-9]\d{{0,2}}(?:[{_SPACES}]\d{{3}})+(?!\d)(?:[.,]\d+)?)"  # 1 234 567
    r"|(?P<dcomma>\d+,\d{1,2}(?!\d))"  # 3,5  18,00
    r"|(?P<plain>\d+(?:\.\d+)?)"  # 1200  3.5  18.00
    r")"
)


def _value(match: re.Match) -> float:
    kind = match.lastgroup
    body = match.group(kind)
    if kind == "comma":
        body = body.replace(",", "")
    elif kind == "dot":
        body = body.replace(".", "").replace(",", ".")
    elif kind == "space":
        body = re.sub(f"[{_SPACES}]", "", body).replace(",", ".")
    elif kind == "dcomma":
        body = body.replace(",", ".")
    value = float(body)
    return -value if match.group("sign") in ("-", "\u2212") else value


def _format(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return repr(value)


def normalise_number(text: str) -> str | None:
    """'1,200' -> '1200', '1.234' -> '1234', '18.0' -> '18', '3.50' -> '3.5', '−5' -> '-5'; None if `text` is
    not one number."""
    match = _NUMBER.fullmatch(text.strip())
    return _format(_value(match)) if match else None


def extract_last_number(text: str) -> str | None:
    """The last number in a model's answer, normalised; None when the answer has no number."""
    found = list(_NUMBER.finditer(text))
    return _format(_value(found[-1])) if found else None


def is_correct(answer: str, gold: str) -> bool:
    pred, ref = extract_last_number(answer), normalise_number(gold)
    return pred is not None and ref is not None and float(pred) == float(ref)


@functools.cache
def _identifier(languages: tuple[str, ...]):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(languages))
    return ident


def detect_language(text: str, languages: tuple[str, ...]) -> tuple[str, float]:
    """The most likely of `languages` for `text`, and its probability (py3langid, restricted)."""
    lang, prob = _identifier(tuple(sorted(set(languages)))).classify(text)
    return lang, float(prob)
