"""Time handling: strataml compares and stores instants in UTC."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from strataml.errors import InvalidInput

EPOCH = dt.datetime(1970, 1, 1)


def utcnow() -> dt.datetime:
    """Naive UTC now."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def to_utc_naive(value: dt.datetime, where: str | None = None) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted.

    :class:`InvalidInput` (prefixed with ``where``) for an aware datetime whose UTC instant
    falls outside the years 1-9999 (``9999-12-31T23:00-05:00``): no datetime can hold it.
    """
    if value.tzinfo is not None:
        try:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError as exc:
            prefix = f"{where}: " if where else ""
            raise InvalidInput(
                f"{prefix}{value.isoformat()} is out of range: in UTC it is outside the range "
                "of datetimes (years 1-9999)"
            ) from exc
    return value


def to_micros(value: dt.datetime) -> int:
    d = to_utc_naive(value) - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def from_micros(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def parse_event_time(value: Any, where: str) -> dt.datetime:
    """A datetime, a date, an ISO-8601 string or epoch seconds -> naive UTC datetime."""
    if isinstance(value, dt.datetime):
        return to_utc_naive(value, where)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise InvalidInput(f"{where}: {value!r} is not a timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: {value!r} is not a timestamp")
        try:
            return EPOCH + dt.timedelta(seconds=float(value))
        except OverflowError as exc:
            raise InvalidInput(f"{where}: {value!r} is out of range") from exc
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"{where}: {value!r} is not an ISO-8601 timestamp") from exc
        return to_utc_naive(parsed, where)
    raise InvalidInput(f"{where}: {value!r} ({type(value).__name__}) is not a timestamp")


_MIN_EPOCH_S = -62_135_596_800  # 0001-01-01T00:00:00
_MAX_EPOCH_S = 253_402_300_799  # 9999-12-31T23:59:59
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: The instants a datetime can hold, in microseconds since the epoch (UTC).
MIN_MICROS = _MIN_EPOCH_S * 1_000_000
MAX_MICROS = (_MAX_EPOCH_S + 1) * 1_000_000 - 1


def _datetime_micros(value: dt.datetime) -> int | None:
    if value.tzinfo is None:
        d = value - EPOCH
    elif value.utcoffset() is not None:
        d = value - _EPOCH_UTC
    else:
        return None  # a tzinfo without an offset: parse_event_time decides
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def event_micros(value: Any, where: str) -> int:
    """An event time in microseconds since the epoch (UTC): exactly what
    :func:`parse_event_time` gives, with fast paths for the common forms on ingestion's hot
    path (int epoch seconds, ISO-8601 strings, datetimes); anything else, and every error,
    goes through ``parse_event_time`` itself."""
    t = type(value)
    if t is int and _MIN_EPOCH_S <= value <= _MAX_EPOCH_S:
        return int(value) * 1_000_000
    micros: int | None = None
    if t is str:
        try:  # Python >= 3.11 reads a trailing "Z" like parse_event_time does
            micros = _datetime_micros(dt.datetime.fromisoformat(value))
        except ValueError:
            micros = None
    elif t is dt.datetime:
        micros = _datetime_micros(value)
    if micros is None or not MIN_MICROS <= micros <= MAX_MICROS:
        # an aware time beyond datetime's range in UTC: parse_event_time raises InvalidInput
        micros = to_micros(parse_event_time(value, where))
    return micros
