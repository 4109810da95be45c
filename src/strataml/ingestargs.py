"""Arguments of :class:`~strataml.protocols.IngestStore` methods, validated the same way on every
backend: idempotency keys, field-name options and (for stores whose positions are sequence
numbers) cursors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strataml._args import utf8_error
from strataml.errors import InvalidInput, LimitExceeded

__all__ = ["batch_records", "field_name", "idempotency_key", "page_limit", "seq_cursor"]


def field_name(value: Any, what: str) -> str | None:
    """``key_field=`` / ``time_field=``: a non-empty string or ``None``."""
    if value is None or (isinstance(value, str) and value):
        return value
    raise InvalidInput(f"{what} must be a non-empty field name (str) or None, got {value!r}")


def idempotency_key(value: Any, where: str) -> str | None:
    """An idempotency key: a string, or an int (stored as its decimal string, so ``42`` and
    ``"42"`` are the same key); ``None``: no key. NUL characters and text that is not valid
    Unicode (a lone surrogate such as ``"\\ud800"``) are refused (backends cannot store them)."""
    if value is None:
        return None
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(f"{where}: an idempotency key cannot hold a NUL character")
        bad = utf8_error(value)
        if bad is not None:
            raise InvalidInput(
                f"{where}: an idempotency key must be valid Unicode text, got {value!r}"
            ) from bad
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


def batch_records(records: Any, max_rows: int | None) -> Sequence[Any]:
    """``write_batch``'s records as a sequence (an iterable is read once), within ``max_rows``.

    Errors: :class:`InvalidInput` for a single mapping, a string or a non-iterable;
    :class:`LimitExceeded` for more than ``max_rows`` records. Each record is checked later,
    by the store, before anything is written.
    """
    if isinstance(records, Mapping | str | bytes):
        raise InvalidInput(
            f"records must be an iterable of mappings, got a {type(records).__name__}; "
            "use write() for a single record"
        )
    if isinstance(records, list | tuple):
        items: Sequence[Any] = records
    else:
        try:
            iterator = iter(records)
        except TypeError as exc:
            raise InvalidInput(
                f"records must be an iterable of mappings, got {type(records).__name__}"
            ) from exc
        items = list(iterator)
    if max_rows is not None and len(items) > max_rows:
        raise LimitExceeded(
            f"a batch of {len(items)} records is over the limit of {max_rows}; "
            "split it into smaller batches"
        )
    return items


def page_limit(limit: Any) -> int:
    """``read``'s ``limit``: a positive int."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"limit must be a positive int, got {limit!r}")
    return limit
