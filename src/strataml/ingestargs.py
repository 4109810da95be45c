"""Arguments of :class:`~strataml.protocols.IngestStore` methods, validated the same way on every
backend: idempotency keys, field-name options and (for stores whose positions are sequence
numbers) cursors."""

from __future__ import annotations

from typing import Any

from strataml.errors import InvalidInput

__all__ = ["field_name", "idempotency_key", "seq_cursor"]


def field_name(value: Any, what: str) -> str | None:
    """``key_field=`` / ``time_field=``: a non-empty string or ``None``."""
    if value is None or (isinstance(value, str) and value):
        return value
    raise InvalidInput(f"{what} must be a non-empty field name (str) or None, got {value!r}")


def idempotency_key(value: Any, where: str) -> str | None:
    """An idempotency key: a string, or an int (stored as its decimal string, so ``42`` and
    ``"42"`` are the same key); ``None``: no key. NUL characters are refused (several backends
    cannot store them)."""
    if value is None:
        return None
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"{where}: an idempotency key cannot hold a NUL character")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidInput(f"{where}: an idempotency key is a string or an int, got {value!r}")


def seq_cursor(after: Any) -> int:
    """The sequence number in a cursor issued as ``str(seq)`` (``None``: from the start)."""
    if after is None:
        return 0
    if isinstance(after, str) and after.isascii() and after.isdigit() and len(after) < 19:
        return int(after)
    raise InvalidInput(f"invalid cursor {after!r}: pass back the `cursor` of a previous page")
