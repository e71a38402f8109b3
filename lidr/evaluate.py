"""Scoring shared by evaluation and the data-quality gate: answer extraction and language identification."""

from __future__ import annotations

import functools
import re

# A number with thousands separators (1,200 or 114,200.5) or a plain one (1200, 3.5, -4).
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def normalise_number(text: str) -> str | None:
    """'1,200' -> '1200', '18.0' -> '18', '3.50' -> '3.5'; None if `text` is not a number."""
    text = text.strip().replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None
    if value == int(value):
        return str(int(value))
    return repr(value)


def extract_last_number(text: str) -> str | None:
    """The last number in a model's answer, normalised; None when the answer has no number."""
    found = _NUMBER.findall(text)
    return normalise_number(found[-1]) if found else None


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
