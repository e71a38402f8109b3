"""Language codes and the English names used inside prompts ("Spanish", "German", ...)."""

from __future__ import annotations

# ISO 639-1 code -> English name. Every code here is also known to py3langid.
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic",
    "bn": "Bengali",
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ru": "Russian",
    "sv": "Swedish",
    "sw": "Swahili",
    "te": "Telugu",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


class UnknownLanguageError(ValueError):
    pass


def language_name(code: str, *, where: str = "language") -> str:
    """English name of a language code; an unknown code raises an error naming where it came from."""
    try:
        return LANGUAGE_NAMES[code]
    except KeyError:
        known = ", ".join(sorted(LANGUAGE_NAMES))
        raise UnknownLanguageError(f"{where}: unknown language code {code!r}; expected one of: {known}") from None
