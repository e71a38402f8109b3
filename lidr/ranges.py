"""Ranges of params.yaml settings, declared beside the fields they check.

A field made by one of these carries its check in its metadata; lidr/config.py's loader runs it on the value
and raises ParamsError naming the key and the problem. Shared by lidr/config.py's sections and the gate's rule
settings (lidr/gate.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import field
from typing import Any

from lidr.errors import ParamsError
from lidr.languages import UnknownLanguageError, language_name


def checked(check: Callable[[Any], str | None], default: Any = dataclasses.MISSING, **kw) -> Any:
    return field(default=default, metadata={"check": check}, **kw)


def positive(default: Any = dataclasses.MISSING) -> Any:
    return checked(lambda v: None if v > 0 else f"expected a value > 0, got {v}", default)


def at_least(low: float, default: Any = dataclasses.MISSING, why: str = "") -> Any:
    return checked(lambda v: None if v >= low else f"expected a value >= {low}{why}, got {v}", default)


def within(low: float, high: float, default: Any = dataclasses.MISSING) -> Any:
    return checked(lambda v: None if low <= v <= high else f"expected {low} to {high}, got {v}", default)


def share(default: Any = dataclasses.MISSING) -> Any:
    return checked(lambda v: None if 0.0 < v <= 1.0 else f"expected a share above 0 and at most 1, got {v}", default)


def check_languages(key: str, codes) -> None:
    try:
        for i, code in enumerate(codes):
            language_name(code, where=f"{key}[{i}]")
    except UnknownLanguageError as e:
        raise ParamsError(str(e)) from None
