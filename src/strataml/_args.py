"""Argument checks shared by the public API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strataml.errors import InvalidInput

__all__ = ["as_list", "utf8_error"]


def utf8_error(text: str) -> UnicodeEncodeError | None:
    """Why ``text`` cannot be stored as UTF-8 -- a lone surrogate such as ``"\\ud800"``, which
    Python strings may hold and no backend can -- or ``None``."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc
    return None


def as_list(
    values: Any,
    what: str,
    items: str,
    *,
    kind: type[Any] | tuple[type[Any], ...] | None = None,
    single: tuple[type[Any], ...] = (),
) -> list[Any]:
    """``values`` (any iterable, read once) as a list; every item an instance of ``kind`` when
    given. A string, bytes, a mapping, an instance of ``kind`` or of ``single`` is one value
    passed where a list was meant -- iterating it would split it into letters or keys -- and,
    like a non-iterable, raises :class:`InvalidInput`: ``"<what> is a list of <items>, got
    ..."``."""
    kinds: tuple[type[Any], ...] = (kind,) if isinstance(kind, type) else kind or ()
    one: tuple[type[Any], ...] = (str, bytes, Mapping, *single, *kinds)
    if isinstance(values, one):
        raise InvalidInput(f"{what} is a list of {items}, got a single {type(values).__name__}")
    try:
        out = list(values)
    except TypeError as exc:
        raise InvalidInput(f"{what} is a list of {items}, got {type(values).__name__}") from exc
    if kind is not None:
        bad = [f"{i}: {type(v).__name__}" for i, v in enumerate(out) if not isinstance(v, kind)]
        if bad:
            raise InvalidInput(f"{what} is a list of {items}, got items {bad[:5]}")
    return out
