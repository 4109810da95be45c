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


def to_utc_naive(value: dt.datetime) -> dt.datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def to_micros(value: dt.datetime) -> int:
    d = to_utc_naive(value) - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def from_micros(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def parse_event_time(value: Any, where: str) -> dt.datetime:
    """A datetime, a date, an ISO-8601 string or epoch seconds -> naive UTC datetime."""
    if isinstance(value, dt.datetime):
        return to_utc_naive(value)
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
            return to_utc_naive(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError as exc:
            raise InvalidInput(f"{where}: {value!r} is not an ISO-8601 timestamp") from exc
    raise InvalidInput(f"{where}: {value!r} ({type(value).__name__}) is not a timestamp")
