"""Encoding a write before any I/O: row keys, row values and expiries.

A row is stored as one msgpack map ``{feature: value}`` (the bytes
:func:`strataml.codec.encode_row` would decode to the same values). Rows given as mappings are
encoded with :func:`~strataml.codec.encode_row`; Arrow input is encoded **column-wise**: every
null-free column of a fixed-width type (floats, integers, booleans, timestamps, dates) becomes
a numpy byte matrix of ready msgpack ``key value`` pairs, runs of such columns are joined into
one matrix, and only the remaining columns (strings, nested values, columns with nulls) are
encoded value by value (strings once per distinct value). Fixed-width values use msgpack's
full-width forms (``float 64``, ``int 64`` / ``uint 64``, ``timestamp 96``), which every
msgpack reader decodes to the same value as the minimal forms.

Everything that can fail on input (entity keys, values, the record-size limit) fails here,
naming the row, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strataml import codec
from strataml.errors import InvalidInput, LimitExceeded
from strataml.online_rows import Batch, py_values, time_micros
from strataml_redis.keys import KeyLayout

__all__ = ["EXPIRED", "EncodedWrite", "encode_write"]

#: The expiry of a row already expired when written: it is deleted, not stored.
EXPIRED = -1
_MAX_PEXPIREAT_MS = 2**62


class EncodedWrite:
    """Per row: its key, its value (a msgpack map) and its ``PXAT`` milliseconds (``None``
    for no expiry, :data:`EXPIRED` for a row to delete); ``expire_ms`` is ``None`` when the
    write has no TTL."""

    __slots__ = ("expire_ms", "keys", "n", "values")

    def __init__(self, keys: list[bytes], values: list[bytes], expire_ms: list[int] | None) -> None:
        self.keys = keys
        self.values = values
        self.expire_ms = expire_ms
        self.n = len(keys)


def encode_write(
    batch: Batch,
    head: bytes,
    ttl_us: int | None,
    now_us: int,
    max_record_bytes: int | None,
    where: str,
) -> EncodedWrite:
    """Validate and encode ``batch`` (raises :class:`InvalidInput` / :class:`LimitExceeded`
    naming the row)."""
    keys = _keys(batch, head, where)
    if batch.table is not None:
        values = _arrow_values(batch.table, batch.feature_names, batch.n, where)
    else:
        values = _mapping_values(batch.features, where)
    if max_record_bytes is not None:
        for i, value in enumerate(values):
            if len(value) > max_record_bytes:
                raise LimitExceeded(
                    f"{where}: row {i} encodes to {len(value)} bytes, over the "
                    f"{max_record_bytes}-byte record limit"
                )
    return EncodedWrite(keys, values, _expiries(batch, ttl_us, now_us))


def expire_at_ms(expiry_us: int) -> int:
    """The ``PXAT`` / ``PEXPIREAT`` milliseconds of an expiry instant (µs since the epoch).

    Redis keeps a key while its clock (ms) is not *past* that value, so this is one
    millisecond before the expiry rounded down: the row is never visible at or after
    ``expiry_us``, and disappears at most 1 ms early when the expiry is not a whole ms.
    """
    return min(expiry_us // 1000 - 1, _MAX_PEXPIREAT_MS)


# --------------------------------------------------------------------------------- pieces
def _keys(batch: Batch, head: bytes, where: str) -> list[bytes]:
    encode_key = codec.encode_key
    row_key = KeyLayout.row_key
    out: list[bytes] = []
    append = out.append
    try:
        for values in zip(*batch.key_columns, strict=True):
            append(row_key(head, encode_key(values)))
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: row {len(out)}: {exc}") from exc
    except (TypeError, OverflowError, ValueError) as exc:
        raise InvalidInput(f"{where}: row {len(out)}: the entity key cannot be encoded") from exc
    return out


def _expiries(batch: Batch, ttl_us: int | None, now_us: int) -> list[int] | None:
    if ttl_us is None:
        return None
    events = batch.event_us
    out: list[int] = []
    for i in range(batch.n):
        expiry = (events[i] if events is not None else now_us) + ttl_us
        out.append(EXPIRED if expiry <= now_us else expire_at_ms(expiry))
    return out


def _mapping_values(rows: Any, where: str) -> list[bytes]:
    encode_row = codec.encode_row
    out: list[bytes] = []
    for i, feats in enumerate(rows):
        try:
            out.append(encode_row(feats))
        except InvalidInput:
            raise _bad_row(feats, i, where) from None
    return out


def _bad_row(feats: dict[str, Any], i: int, where: str) -> InvalidInput:
    """Which feature of a row failed to encode (re-encoded one by one)."""
    for name, value in feats.items():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return InvalidInput(f"{where}: row {i}: feature name {name!r} is not valid Unicode")
        try:
            codec.encode_value(value)
        except InvalidInput as exc:
            return InvalidInput(f"{where}: row {i}: feature {name!r}: {exc}")
    return InvalidInput(f"{where}: row {i} cannot be encoded")


# --------------------------------------------------------------------------- column-wise
def _map_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x80 | n,))
    if n < 65536:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


def _be(values: np.ndarray, dtype: str) -> np.ndarray:
    arr = np.ascontiguousarray(values.astype(dtype, copy=False))
    return arr.view(np.uint8).reshape(len(arr), arr.dtype.itemsize)


def _with_prefix(prefix: bytes, payload: np.ndarray) -> np.ndarray:
    out = np.empty((payload.shape[0], len(prefix) + payload.shape[1]), np.uint8)
    out[:, : len(prefix)] = np.frombuffer(prefix, np.uint8)
    out[:, len(prefix) :] = payload
    return out


def fixed_values(col: pa.ChunkedArray | pa.Array, where: str = "column") -> np.ndarray | None:
    """The msgpack values of a null-free fixed-width column as a (rows, width) uint8 matrix;
    ``None`` for any other column. :class:`InvalidInput` for a time no datetime can hold."""
    t = col.type
    if col.null_count:
        return None
    if pa.types.is_floating(t):
        return _with_prefix(b"\xcb", _be(col.cast(pa.float64()).to_numpy(), ">f8"))
    if pa.types.is_integer(t):
        if pa.types.is_uint64(t):
            return _with_prefix(b"\xcf", _be(col.to_numpy(), ">u8"))
        return _with_prefix(b"\xd3", _be(col.to_numpy(), ">i8"))
    if pa.types.is_boolean(t):
        flags: np.ndarray = col.to_numpy().astype(np.uint8)
        return (flags + 0xC2).reshape(-1, 1)  # false c2, true c3
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        # the instant (naive columns are UTC) as timestamp 96: nanoseconds (uint32), then
        # seconds (int64), both big-endian -- what codec encodes for the UTC datetime
        micros = time_micros(col, where).to_numpy()
        secs, rem = np.divmod(micros, 1_000_000)
        payload = np.concatenate([_be(rem * 1000, ">u4"), _be(secs, ">i8")], axis=1)
        return _with_prefix(b"\xc7\x0c\xff", payload)
    return None


def _var_values(col: pa.ChunkedArray, name: str, key: bytes, where: str) -> list[bytes]:
    """A column encoded value by value: per row ``key`` + the value's msgpack bytes."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        encoded = pc.dictionary_encode(col).combine_chunks()
        pairs = [key + codec.encode_value(v) for v in encoded.dictionary.to_pylist()]
        nil = key + b"\xc0"
        return [nil if i is None else pairs[i] for i in encoded.indices.to_pylist()]
    out: list[bytes] = []
    encode_value = codec.encode_value
    values = py_values(col, f"{where}: feature {name!r}")  # a whole-column failure: no row
    try:
        for value in values:
            out.append(key + encode_value(value))
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: row {len(out)}: feature {name!r}: {exc}") from exc
    return out


def _arrow_values(table: pa.Table, names: Sequence[str], n: int, where: str) -> list[bytes]:
    """Each row's msgpack map of ``names``, in column order."""
    segments: list[Any] = []  # np.ndarray (a run of fixed columns) or list[bytes]
    run: list[np.ndarray] = [np.frombuffer(_map_header(len(names)), np.uint8)[None, :].repeat(n, 0)]
    for name in names:
        try:
            key = codec.encode_value(name)
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: feature name {name!r} is not valid Unicode") from exc
        col = table.column(name)
        fixed = fixed_values(col, f"{where}: feature {name!r}")
        if fixed is not None:
            run.append(_with_prefix(key, fixed))
            continue
        if run:
            segments.append(np.concatenate(run, axis=1))
            run = []
        segments.append(_var_values(col, name, key, where))
    if run:
        segments.append(np.concatenate(run, axis=1))
    lists = [_rows(s) if isinstance(s, np.ndarray) else s for s in segments]
    if len(lists) == 1:
        return lists[0]
    return list(map(b"".join, zip(*lists, strict=True)))


def _rows(matrix: np.ndarray) -> list[bytes]:
    """A (rows, width) byte matrix as one bytes object per row."""
    width = matrix.shape[1]
    if width == 0:
        return [b""] * matrix.shape[0]
    flat = matrix.tobytes()
    return [flat[i : i + width] for i in range(0, len(flat), width)]
