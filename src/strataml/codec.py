"""Binary-safe encoding of online feature rows and entity keys (msgpack).

Values round-trip with their types: None, bool, int, float (NaN too), str, bytes, lists, and
datetimes (returned timezone-aware, UTC). Decimals (SQL ``NUMERIC``, ``SUM`` of integers) are
stored as ints when integral and as floats otherwise. NumPy scalars are stored as their Python
values and arrays as (nested) lists of them, ``datetime64`` as datetimes. Shared by every
online adapter, so a row written through one backend decodes identically through another.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from strataml._time import MAX_MICROS, MIN_MICROS
from strataml.errors import InvalidInput

__all__ = ["decode_row", "decode_value", "encode_key", "encode_row", "encode_value"]


def _default(obj: Any) -> Any:
    if isinstance(obj, decimal.Decimal):
        # SQL engines return SUM(BIGINT) and NUMERIC as decimals: integral ones stay exact ints,
        # others become floats (what models consume); NaN/inf decimals become float NaN/inf
        if obj.is_finite() and obj == obj.to_integral_value():
            return int(obj)
        return float(obj)
    if isinstance(obj, dt.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=dt.UTC)
        return msgpack.Timestamp.from_datetime(obj)
    if isinstance(obj, dt.date):
        return msgpack.Timestamp.from_datetime(
            dt.datetime(obj.year, obj.month, obj.day, tzinfo=dt.UTC)
        )
    if type(obj).__module__ == "numpy":
        return _numpy(obj)
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _numpy(obj: Any) -> Any:
    """A NumPy scalar as its Python value, an array as a (nested) list of them; datetime64
    values as naive UTC datetimes (``None`` for NaT). ``TypeError`` / ``OverflowError`` (the
    encoders' :class:`InvalidInput`) for timedelta64 and datetimes beyond the years 1-9999."""
    import numpy as np  # loaded already: obj is a NumPy object

    if not isinstance(obj, np.ndarray | np.generic):
        raise TypeError(f"cannot encode {type(obj).__name__}")
    kind = obj.dtype.kind
    if kind == "m":
        raise TypeError("cannot encode numpy.timedelta64")
    if kind == "M":
        # datetime64 of any unit: .tolist() gives ints for ns (and out-of-range) values
        obj = obj.astype("datetime64[us]")
        micros = obj.astype(np.int64)
        if np.any(~np.isnat(obj) & ((micros < MIN_MICROS) | (micros > MAX_MICROS))):
            raise OverflowError("a numpy.datetime64 is beyond the years 1-9999")
    value = obj.tolist()
    # the packer calls ``default`` once per object: a datetime returned here must be final
    return _default(value) if isinstance(value, dt.date) else value


class _Local(threading.local):
    """One packer per thread: a packer's buffer is not safe to share while ``default`` runs."""

    def __init__(self) -> None:
        self.packer = msgpack.Packer(default=_default, datetime=True, use_bin_type=True)


_local = _Local()


def encode_value(value: Any) -> bytes:
    try:
        return _local.packer.pack(value)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"cannot encode feature value {value!r}: {exc}") from exc


def encode_row(row: Mapping[str, Any]) -> bytes:
    try:
        return _local.packer.pack(row)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"cannot encode feature row: {exc}") from exc


def decode_value(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False, timestamp=3, strict_map_key=False)


def decode_row(blob: bytes) -> dict[str, Any]:
    out: dict[str, Any] = msgpack.unpackb(blob, raw=False, timestamp=3)
    return out


def encode_key(values: Sequence[Any]) -> bytes:
    """Canonical bytes of an entity key's values (in the view's entity-column order).

    ``str`` and ``int`` keys only; ``42`` and ``"42"`` encode differently.
    """
    for v in values:
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise InvalidInput(f"entity key values must be str or int, got {v!r}")
    try:
        return _local.packer.pack(list(values))  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:  # ints beyond 64 bits
        raise InvalidInput(f"entity key {list(values)!r} cannot be encoded: {exc}") from exc
