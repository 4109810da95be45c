"""Arrow record batches to and from PostgreSQL's binary COPY format, column at a time.

Writing: each column becomes a flat byte array of length-prefixed fields (NumPy, no Python loop
over rows), then the fields are interleaved into rows. Reading: :class:`CopyOutReader` drains a
``COPY ... TO STDOUT (FORMAT BINARY)`` straight from libpq into one buffer per batch (PostgreSQL
sends each row as one message, so row boundaries come for free); :func:`decode_rows` then walks
the columns with vectorised gathers and builds Arrow arrays. Only array columns with null
elements and numeric values take a per-value Python path.

Format: a 19-byte header, then per row an ``int16`` field count and per field an ``int32``
length (``-1`` for NULL) followed by the value in the type's binary send format (big-endian),
then the ``int16`` trailer ``-1``.
"""

from __future__ import annotations

import select
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import pq

from strataml.errors import BackendError, InvalidInput
from strataml_postgres.jsonb import has_nul, to_jsonb
from strataml_postgres.pgtypes import ELEMENT_OID, ResultColumn

__all__ = [
    "ENCODE_ROWS",
    "HEADER",
    "TRAILER",
    "CopyOutReader",
    "Field",
    "chunks_field",
    "decode_rows",
    "encode_batch",
    "encode_column",
    "encode_rows",
    "fixed_field",
    "numeric_binary",
    "var_field",
]

U8: TypeAlias = npt.NDArray[np.uint8]
I64: TypeAlias = npt.NDArray[np.int64]
Mask: TypeAlias = npt.NDArray[np.bool_]

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in microseconds since 1970-01-01
PG_EPOCH_DAYS = 10_957
_US_PER_DAY = 86_400_000_000
_I64_MIN, _I64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max
_AR4 = np.arange(4, dtype=np.int64)
_PAD = 32  # zero bytes after a decode buffer, so gathers past a NULL field stay in bounds

_BE: dict[str, str] = {
    "bool": "u1",
    "int2": ">i2",
    "int4": ">i4",
    "int8": ">i8",
    "float4": ">f4",
    "float8": ">f8",
    "timestamp": ">i8",
    "timestamptz": ">i8",
    "date": ">i4",
    "time": ">i8",
}
_NATIVE: dict[str, str] = {
    "bool": "u1",
    "int2": "i2",
    "int4": "i4",
    "int8": "i8",
    "float4": "f4",
    "float8": "f8",
    "timestamp": "i8",
    "timestamptz": "i8",
    "date": "i4",
    "time": "i8",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One column's fields for ``n`` rows: ``data`` holds them back to back (length word and
    value each); ``sizes`` is each field's byte size, or one int when they are all equal."""

    data: U8
    sizes: I64 | int


# ==================================================================================== encoding
def _valid(arr: pa.Array) -> Mask | None:
    if arr.null_count == 0:
        return None
    out: Mask = arr.is_valid().to_numpy(zero_copy_only=False)
    return out


def fixed_field(values: npt.NDArray[Any], be: str, valid: Mask | None) -> Field:
    """Fields of a fixed-width kind: ``values`` written as the big-endian dtype ``be``."""
    n = len(values)
    width = np.dtype(be).itemsize
    rec = np.empty(n, dtype=np.dtype([("l", ">i4"), ("v", be)]))
    rec["l"] = width
    rec["v"] = values
    flat: U8 = rec.view(np.uint8)
    if valid is None:
        return Field(flat, 4 + width)
    rec["l"][~valid] = -1
    keep = np.ones((n, 4 + width), dtype=np.bool_)
    keep[~valid, 4:] = False
    return Field(flat[keep.reshape(-1)], np.where(valid, 4 + width, 4).astype(np.int64))


def var_field(data: U8, starts: I64, lens: I64, valid: Mask | None, prefix: bytes = b"") -> Field:
    """Fields of variable width: row ``i`` is ``prefix + data[starts[i]:starts[i] + lens[i]]``
    (``lens`` must be 0 for NULL rows)."""
    n = len(lens)
    p = len(prefix)
    sizes = (4 + p + lens).astype(np.int64)
    if valid is not None:
        sizes[~valid] = 4
    offsets = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    words = (lens + p).astype(">i4")
    if valid is not None:
        words[~valid] = -1
    out[offsets[:, None] + _AR4] = words.view(np.uint8).reshape(n, 4)
    rows = offsets if valid is None else offsets[valid]
    for k, byte in enumerate(prefix):
        out[rows + 4 + k] = byte
    total = int(lens.sum())
    if total:
        cum = np.cumsum(lens) - lens
        dst = np.repeat(offsets + 4 + p - cum, lens) + np.arange(total, dtype=np.int64)
        first = int(starts[0]) if n else 0
        if bool(np.all(starts - cum == first)):
            out[dst] = data[first : first + total]
        else:
            out[dst] = data[np.repeat(starts - cum, lens) + np.arange(total, dtype=np.int64)]
    return Field(out, sizes)


def _binary_parts(arr: pa.Array) -> tuple[U8, I64, I64, Mask | None]:
    """Data bytes, per-row starts and lengths (0 for NULL) of a string/binary array."""
    if pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type):
        off_type: Any = np.int64
    else:
        off_type = np.int32
    _, offs_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offs_buf, dtype=off_type)[arr.offset : arr.offset + len(arr) + 1]
    offsets = offsets.astype(np.int64)
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    starts = offsets[:-1]
    lens = np.diff(offsets)
    valid = _valid(arr)
    if valid is not None:
        lens = np.where(valid, lens, 0)
    return data, starts, lens, valid


def _as_plain(arr: pa.Array, target: pa.DataType) -> pa.Array:
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"cannot convert {arr.type} to {target}: {exc}") from exc


def _micros_utc(arr: pa.Array, name: str, *, floor: bool) -> tuple[I64, Mask | None]:
    """Microseconds since 1970 (UTC) of a timestamp or date array."""
    valid = _valid(arr)
    if pa.types.is_date(arr.type):
        days = _as_plain(arr, pa.date32()).cast(pa.int32()).fill_null(0).to_numpy()
        return days.astype(np.int64) * _US_PER_DAY, valid
    unit = arr.type.unit
    raw = (
        arr.cast(pa.timestamp(unit, tz=arr.type.tz))
        .cast(pa.int64())
        .fill_null(0)
        .to_numpy(zero_copy_only=False)
    )
    raw = raw.astype(np.int64)
    if unit == "s":
        return raw * 1_000_000, valid
    if unit == "ms":
        return raw * 1_000, valid
    if unit == "ns":
        if not floor and bool(np.any(raw % 1000)):
            raise InvalidInput(
                f"column {name!r} holds nanoseconds; PostgreSQL stores microseconds: round the "
                "timestamps (e.g. pyarrow.compute.floor_temporal) or cast to timestamp('us')"
            )
        return raw // 1000, valid
    return raw, valid


def encode_column(arr: pa.Array, kind: str, name: str, *, floor_ns: bool = False) -> Field:
    """The binary COPY fields of ``arr`` stored as a column of ``kind``.

    Raises :class:`InvalidInput` when a value does not fit (an integer too wide, a string with
    a NUL character, sub-microsecond timestamps unless ``floor_ns``).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if kind in ("timestamp", "timestamptz", "date") and (
        pa.types.is_timestamp(arr.type) or pa.types.is_date(arr.type)
    ):
        micros, valid = _micros_utc(arr, name, floor=floor_ns)
        if kind == "date":
            if pa.types.is_timestamp(arr.type):
                raise InvalidInput(f"column {name!r}: timestamps cannot be stored as dates")
            return fixed_field(
                (micros // _US_PER_DAY - PG_EPOCH_DAYS).astype(np.int32), ">i4", valid
            )
        return fixed_field(micros - PG_EPOCH_US, ">i8", valid)
    if pa.types.is_null(arr.type):
        return Field(np.tile(np.array([255, 255, 255, 255], np.uint8), len(arr)), 4)
    if kind in ("int2", "int4", "int8", "float4", "float8", "bool"):
        target = {
            "int2": pa.int16(),
            "int4": pa.int32(),
            "int8": pa.int64(),
            "float4": pa.float32(),
            "float8": pa.float64(),
            "bool": pa.bool_(),
        }[kind]
        plain = _as_plain(arr, target)
        valid = _valid(plain)
        values = plain.fill_null(False if kind == "bool" else 0).to_numpy(zero_copy_only=False)
        return fixed_field(values, _BE[kind], valid)
    if kind == "time":
        plain = _as_plain(arr, pa.time64("us"))
        micros = plain.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return fixed_field(micros, ">i8", _valid(plain))
    if kind == "interval":
        plain = _as_plain(arr, pa.duration("us"))
        micros = plain.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        rec = np.zeros(len(plain), dtype=np.dtype([("us", ">i8"), ("d", ">i4"), ("m", ">i4")]))
        rec["us"] = micros
        return fixed_field(rec.view("V16").reshape(-1), "V16", _valid(plain))
    if kind == "text":
        plain = _as_plain(arr, pa.string())
        data, starts, lens, valid = _binary_parts(plain)
        if len(data) and bool(np.any(data == 0)):
            raise InvalidInput(
                f"column {name!r} holds a NUL character (\\x00), which PostgreSQL text cannot "
                "store; remove it or store the column as binary"
            )
        return var_field(data, starts, lens, valid)
    if kind == "bytea":
        plain = _as_plain(arr, pa.binary())
        data, starts, lens, valid = _binary_parts(plain)
        return var_field(data, starts, lens, valid)
    if kind.endswith("[]"):
        return _array_field(arr, kind[:-2], name)
    return _pyvalue_field(arr, kind, name)


def _pyvalue_field(arr: pa.Array, kind: str, name: str) -> Field:
    """Per-value encoding (``numeric``, ``jsonb``): rare column types, a Python loop."""
    from strataml._json import dumps_record

    chunks: list[bytes | None] = []
    for value in arr.to_pylist():
        if value is None:
            chunks.append(None)
        elif kind == "jsonb":
            # the value's JSON text: serialise {"v": value} and cut the wrapper off
            text = dumps_record({"v": value}, f"column {name!r}")[5:-1]
            if has_nul(text):
                raise InvalidInput(
                    f"column {name!r} holds a NUL character (\\x00), which PostgreSQL's jsonb "
                    "cannot store"
                )
            chunks.append(b"\x01" + to_jsonb(text))
        elif kind == "numeric":
            chunks.append(numeric_binary(Decimal(value)))
        else:
            raise InvalidInput(f"column {name!r}: cannot store values as {kind}")
    return chunks_field(chunks)


def chunks_field(chunks: Sequence[bytes | None]) -> Field:
    """Fields from already-encoded values (``None``: NULL)."""
    valid = np.fromiter((c is not None for c in chunks), dtype=np.bool_, count=len(chunks))
    lens = np.fromiter((len(c) if c else 0 for c in chunks), dtype=np.int64, count=len(chunks))
    data = np.frombuffer(b"".join(c for c in chunks if c), dtype=np.uint8)
    starts = np.cumsum(lens) - lens
    return var_field(data, starts, lens, None if bool(valid.all()) else valid)


def numeric_binary(value: Decimal) -> bytes:
    """PostgreSQL's binary ``numeric``: base-10000 digit groups, weight, sign, display scale."""
    if value.is_nan():
        return struct.pack(">hhHH", 0, 0, 0xC000, 0)
    if value.is_infinite():
        return struct.pack(">hhHH", 0, 0, 0xD000 if value > 0 else 0xF000, 0)
    sign, digit_tuple, exp = value.as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    if exp >= 0:
        int_part, frac_part = digits + "0" * exp, ""
    elif len(digits) > -exp:
        int_part, frac_part = digits[:exp], digits[exp:]
    else:
        int_part, frac_part = "", "0" * (-exp - len(digits)) + digits
    dscale = len(frac_part)
    int_part = "0" * (-len(int_part) % 4) + int_part
    frac_part = frac_part + "0" * (-len(frac_part) % 4)
    groups = [int(int_part[i : i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i : i + 4]) for i in range(0, len(frac_part), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(
        f">hhHH{len(groups)}H", len(groups), weight, 0x4000 if sign else 0, dscale, *groups
    )


def _array_field(arr: pa.Array, elem: str, name: str) -> Field:
    """One-dimensional arrays (lower bound 1) from a list column."""
    lists = arr
    if pa.types.is_fixed_size_list(lists.type) or pa.types.is_large_list(lists.type):
        lists = _as_plain(lists, pa.list_(lists.type.value_type))
    n = len(lists)
    valid = _valid(lists)
    offs_buf = lists.buffers()[1]
    offsets = np.frombuffer(offs_buf, dtype=np.int32)[lists.offset : lists.offset + n + 1]
    offsets = offsets.astype(np.int64)
    counts = np.diff(offsets)
    if valid is not None:
        counts = np.where(valid, counts, 0)
    values = lists.values
    # only the values the rows refer to, in row order
    take = np.repeat(offsets[:-1], counts) + (
        np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    flat_values = values.take(pa.array(take, pa.int64()))
    elem_field = encode_column(flat_values, elem, name)
    oid = ELEMENT_OID[elem]
    has_null = flat_values.null_count > 0
    # header: ndim, has-null flag, element oid, then (dim, lower bound) when not empty
    hdr = np.zeros((n, 5), dtype=">i4")
    hdr[:, 0] = (counts > 0).astype(np.int32)
    hdr[:, 1] = 1 if has_null else 0
    hdr[:, 2] = oid
    hdr[:, 3] = counts
    hdr[:, 4] = 1
    hdr_len = np.where(counts > 0, 20, 12).astype(np.int64)
    elem_sizes = _sizes(elem_field, len(flat_values))
    elem_cum = np.concatenate([[0], np.cumsum(elem_sizes)]).astype(np.int64)
    body_len = elem_cum[np.cumsum(counts)] - elem_cum[np.cumsum(counts) - counts]
    lens = hdr_len + body_len
    if valid is not None:
        lens = np.where(valid, lens, 0)
    # assemble header + element bytes per row into one buffer, then wrap as var fields
    blob = np.empty(int(lens.sum()), dtype=np.uint8)
    row_off = np.cumsum(lens) - lens
    hdr_bytes = hdr.view(np.uint8).reshape(n, 20)
    sel = np.arange(n) if valid is None else np.flatnonzero(valid)
    _scatter(blob, row_off[sel], hdr_len[sel], hdr_bytes[sel])
    if len(elem_field.data):
        dst_start = np.repeat(row_off + hdr_len, counts)
        elem_row_start = np.repeat(elem_cum[np.cumsum(counts) - counts], counts)
        dst = dst_start + (elem_cum[:-1] - elem_row_start)
        _scatter_var(blob, dst, elem_sizes, elem_field.data)
    return var_field(blob, row_off, lens, valid)


def _sizes(field: Field, n: int) -> I64:
    if isinstance(field.sizes, int):
        return np.full(n, field.sizes, dtype=np.int64)
    return field.sizes


def _scatter(out: U8, starts: I64, lens: I64, rows: U8) -> None:
    """``out[starts[i]:starts[i]+lens[i]] = rows[i, :lens[i]]``."""
    width = rows.shape[1]
    cols = np.arange(width, dtype=np.int64)
    mask = cols[None, :] < lens[:, None]
    out[(starts[:, None] + cols[None, :])[mask]] = rows[mask]


def _scatter_var(out: U8, dst: I64, sizes: I64, flat: U8) -> None:
    """Copy consecutive pieces of ``flat`` (of ``sizes``) to offsets ``dst`` of ``out``."""
    src = np.cumsum(sizes) - sizes
    total = int(sizes.sum())
    out[np.repeat(dst - src, sizes) + np.arange(total, dtype=np.int64)] = flat


def encode_rows(fields: Sequence[Field], n: int, prefix: bytes = b"") -> memoryview:
    """Interleave per-column fields into ``n`` binary COPY rows.

    ``prefix`` is written after each row's field count: constant fields (already encoded with
    their length words) that every row shares; the count includes them.
    """
    nfields = len(fields) + _count_fields(prefix)
    head = struct.pack(">h", nfields) + prefix
    if all(isinstance(f.sizes, int) for f in fields):
        dtype = np.dtype(
            [("h", f"V{len(head)}")] + [(f"f{j}", f"V{f.sizes}") for j, f in enumerate(fields)]
        )
        rec = np.empty(n, dtype=dtype)
        rec["h"] = np.frombuffer(head, dtype=f"V{len(head)}")[0]
        for j, f in enumerate(fields):
            rec[f"f{j}"] = f.data.view(f"V{f.sizes}")
        return rec.view(np.uint8).data
    sizes = np.full(n, len(head), dtype=np.int64)
    for f in fields:
        sizes += f.sizes
    offsets = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    h = len(head)
    out[offsets[:, None] + np.arange(h, dtype=np.int64)] = np.frombuffer(head, dtype=np.uint8)
    cur = offsets + h
    for f in fields:
        if isinstance(f.sizes, int):
            s = f.sizes
            out[cur[:, None] + np.arange(s, dtype=np.int64)] = f.data.reshape(n, s)
            cur += s
        else:
            _scatter_var(out, cur, f.sizes, f.data)
            cur += f.sizes
    return out.data


def _count_fields(prefix: bytes) -> int:
    count, pos = 0, 0
    while pos < len(prefix):
        (length,) = struct.unpack_from(">i", prefix, pos)
        pos += 4 + max(length, 0)
        count += 1
    return count


#: Rows encoded at a time: bounds the temporary index arrays of the vectorised encoder.
ENCODE_ROWS = 65_536


def encode_batch(
    batch: pa.RecordBatch | pa.Table, kinds: Sequence[str], prefix: bytes = b""
) -> Iterator[memoryview]:
    """Rows of ``batch`` (its columns stored as ``kinds``) in binary COPY format (no header),
    in pieces of at most :data:`ENCODE_ROWS` rows."""
    for start in range(0, batch.num_rows, ENCODE_ROWS):
        part = batch.slice(start, ENCODE_ROWS)
        fields = [
            encode_column(part.column(i), kind, part.schema.names[i])
            for i, kind in enumerate(kinds)
        ]
        yield encode_rows(fields, part.num_rows, prefix)


# ==================================================================================== decoding
class CopyOutReader:
    """Read a binary ``COPY ... TO STDOUT`` from inside a psycopg ``cursor.copy()`` block.

    :meth:`read` appends up to ``max_rows`` raw rows to a buffer; PostgreSQL sends each row as
    one CopyData message, so the row sizes come with it. Data is taken from libpq directly
    (no per-row round trip through psycopg's generators); the end of the stream is left to
    psycopg so that the connection ends in a clean state.
    """

    def __init__(self, conn: psycopg.Connection[Any], copy: psycopg.Copy) -> None:
        self._conn = conn
        self._copy = copy
        self._pgconn = conn.pgconn
        self._header_seen = False
        self.done = False

    def read(self, max_rows: int) -> tuple[bytearray, list[int]]:
        buf = bytearray()
        lens: list[int] = []
        if self.done:
            return buf, lens
        get = self._pgconn.get_copy_data
        extend, append = buf.extend, lens.append
        while len(lens) < max_rows:
            nbytes, data = get(1)
            if nbytes > 0:
                if nbytes == 2 and data == TRAILER:
                    self._finish()
                    break
                if not self._header_seen:
                    rest = self._strip_header(data)
                    if rest == TRAILER:  # no rows: header and trailer in one message
                        self._finish()
                        break
                    if rest:
                        extend(rest)
                        append(len(rest))
                    continue
                extend(data)
                append(nbytes)
            elif nbytes == 0:
                select.select([self._pgconn.socket], [], [])
                self._pgconn.consume_input()
            else:
                self._fail(nbytes)
        return buf, lens

    def _strip_header(self, data: Any) -> bytes:
        """The first message without the file header (it may hold the first row)."""
        raw = bytes(data)
        if raw[: len(SIGNATURE)] != SIGNATURE:
            raise BackendError("binary COPY data does not start with PostgreSQL's signature")
        ext = struct.unpack_from(">i", raw, len(SIGNATURE) + 4)[0]
        self._header_seen = True
        return raw[len(SIGNATURE) + 8 + ext :]

    def _finish(self) -> None:
        self.done = True
        if self._copy.read():  # consumes the final result (psycopg checks it)
            raise BackendError("unexpected data after the end of a binary COPY")

    def _fail(self, code: int) -> None:
        """The COPY ended without its trailer: collect the final result, raise its error."""
        self.done = True
        error: psycopg.Error | None = None
        ok = False
        while (res := self._pgconn.get_result()) is not None:
            if res.status == pq.ExecStatus.COMMAND_OK:
                ok = True
            elif res.status == pq.ExecStatus.FATAL_ERROR and error is None:
                state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
                message = (res.error_message or b"").decode("utf-8", "replace").strip()
                cls = psycopg.errors.lookup(state) if state else psycopg.DatabaseError
                error = cls(message)
        if error is None and not ok:
            detail = str(self._pgconn.get_error_message()).strip()
            error = psycopg.OperationalError(detail or f"COPY ended unexpectedly ({code})")
        if error is not None:
            raise error


def _words(buf: U8, pos: I64, be: str) -> npt.NDArray[Any]:
    """The big-endian values of width ``itemsize(be)`` at byte offsets ``pos`` of ``buf``."""
    width = np.dtype(be).itemsize
    raw = buf[pos[:, None] + np.arange(width, dtype=np.int64)]
    out: npt.NDArray[Any] = raw.view(be).reshape(-1)
    return out


def _bitmap(valid: Mask | None) -> pa.Buffer | None:
    if valid is None:
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def decode_rows(
    buf: bytearray, lens: Sequence[int], columns: Sequence[ResultColumn]
) -> list[pa.Array]:
    """Decode raw binary COPY rows (``lens``: each row's size) into one Arrow array per column."""
    n = len(lens)
    if n == 0:
        return [pa.array([], type=c.arrow) for c in columns]
    buf.extend(b"\x00" * _PAD)
    data: U8 = np.frombuffer(buf, dtype=np.uint8)
    sizes = np.asarray(lens, dtype=np.int64)
    starts = np.cumsum(sizes) - sizes
    counts = _words(data, starts, ">i2")
    if bool(np.any(counts != len(columns))):
        raise BackendError(
            f"binary COPY rows have {int(counts[counts != len(columns)][0])} fields, "
            f"expected {len(columns)}"
        )
    pos = starts + 2
    out: list[pa.Array] = []
    for col in columns:
        flen = _words(data, pos, ">i4").astype(np.int64)
        valid_all = flen >= 0
        valid = None if bool(valid_all.all()) else valid_all
        vpos = pos + 4
        out.append(_decode_column(data, vpos, flen, valid, col))
        pos = vpos + np.maximum(flen, 0)
    if bool(np.any(pos != starts + sizes)):
        raise BackendError("binary COPY rows do not match the expected column types")
    return out


def _decode_column(
    data: U8, pos: I64, flen: I64, valid: Mask | None, col: ResultColumn
) -> pa.Array:
    kind = col.kind
    n = len(pos)
    if kind in _BE:
        width = np.dtype(_BE[kind]).itemsize
        bad = flen != width if valid is None else valid & (flen != width)
        if bool(np.any(bad)):
            raise BackendError(f"column {col.name!r}: unexpected field width for {kind}")
        raw = _words(data, pos, _BE[kind]).astype(_NATIVE[kind])
        return _fixed_array(raw, valid, kind, col)
    if kind == "interval":
        us = _words(data, pos, ">i8").astype(np.int64)
        days = _words(data, pos + 8, ">i4").astype(np.int32)
        months = _words(data, pos + 12, ">i4").astype(np.int32)
        rec = np.empty(n, dtype=np.dtype([("m", "<i4"), ("d", "<i4"), ("ns", "<i8")]))
        rec["m"], rec["d"], rec["ns"] = months, days, us * 1000
        return pa.Array.from_buffers(
            pa.month_day_nano_interval(), n, [_bitmap(valid), pa.py_buffer(rec)]
        )
    if kind in ("text", "bytea"):
        arr = _var_array(data, pos, flen, valid, pa.string() if kind == "text" else pa.binary())
        if col.arrow != arr.type:
            return _cast_decoded(arr, col)
        return arr
    if kind.endswith("[]"):
        return _decode_array(data, pos, flen, valid, kind[:-2], col)
    raise BackendError(f"column {col.name!r}: no decoder for {kind}")


def _fixed_array(
    raw: npt.NDArray[Any], valid: Mask | None, kind: str, col: ResultColumn
) -> pa.Array:
    if kind in ("timestamp", "timestamptz", "date"):
        sentinel = (raw == np.iinfo(raw.dtype).max) | (raw == np.iinfo(raw.dtype).min)
        if valid is not None:
            sentinel &= valid
        if bool(np.any(sentinel)):
            raise InvalidInput(
                f"column {col.name!r} holds 'infinity', which Arrow timestamps cannot represent; "
                "filter those rows out or cast the column in the query"
            )
        raw = raw + (PG_EPOCH_US if kind != "date" else PG_EPOCH_DAYS)
    if kind == "bool":
        raw = raw.astype(np.bool_)
    mask = None if valid is None else ~valid
    return pa.array(raw, type=col.arrow, mask=mask)


def _var_array(data: U8, pos: I64, flen: I64, valid: Mask | None, arrow: pa.DataType) -> pa.Array:
    n = len(pos)
    lens = np.maximum(flen, 0)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    total = int(offsets[-1])
    gathered = data[np.repeat(pos - offsets[:-1], lens) + np.arange(total, dtype=np.int64)]
    if total >= 2**31 - 1:
        arrow = pa.large_string() if pa.types.is_string(arrow) else pa.large_binary()
        offs_buf = pa.py_buffer(offsets)
    else:
        offs_buf = pa.py_buffer(offsets.astype(np.int32))
    return pa.Array.from_buffers(arrow, n, [_bitmap(valid), offs_buf, pa.py_buffer(gathered)])


def _cast_decoded(arr: pa.Array, col: ResultColumn) -> pa.Array:
    try:
        return pc.cast(arr, col.arrow)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise BackendError(f"column {col.name!r}: cannot read {arr.type} as {col.arrow}") from exc


def _decode_array(
    data: U8, pos: I64, flen: I64, valid: Mask | None, elem: str, col: ResultColumn
) -> pa.Array:
    """One-dimensional arrays; vectorised for fixed-width elements without NULLs."""
    n = len(pos)
    sel = np.ones(n, dtype=np.bool_) if valid is None else valid
    ndim = np.where(sel, _words(data, pos, ">i4"), 0).astype(np.int64)
    has_null = np.where(sel, _words(data, pos + 4, ">i4"), 0)
    arrow_elem = col.arrow.value_type
    if elem in _BE and bool(np.all(ndim <= 1)) and not bool(np.any(has_null)):
        counts = np.where(ndim == 1, _words(data, pos + 12, ">i4"), 0).astype(np.int64)
        width = np.dtype(_BE[elem]).itemsize
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        total = int(offsets[-1])
        first = pos + 20 + 4  # first element's value, after its length word
        at = np.repeat(first - offsets[:-1] * (4 + width), counts) + np.arange(
            total, dtype=np.int64
        ) * (4 + width)
        values = _words(data, at, _BE[elem]).astype(_NATIVE[elem])
        if elem == "bool":
            values = values.astype(np.bool_)
        inner = pa.array(values, type=arrow_elem)
        return pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32)),
            inner,
            mask=None if valid is None else pa.array(~valid),
        )
    return _decode_array_slow(data, pos, flen, valid, elem, arrow_elem, col)


def _decode_array_slow(
    data: U8,
    pos: I64,
    flen: I64,
    valid: Mask | None,
    elem: str,
    arrow_elem: pa.DataType,
    col: ResultColumn,
) -> pa.Array:
    raw = data.tobytes()
    fmt = {"bool": "?", "int2": ">h", "int4": ">i", "int8": ">q", "float4": ">f", "float8": ">d"}
    out: list[list[Any] | None] = []
    for i in range(len(pos)):
        if valid is not None and not valid[i]:
            out.append(None)
            continue
        p = int(pos[i])
        ndim, _flag, _oid = struct.unpack_from(">iii", raw, p)
        if ndim > 1:
            raise InvalidInput(
                f"column {col.name!r} holds a {ndim}-dimensional array; only one-dimensional "
                "arrays are read (unnest or cast it in the query)"
            )
        if ndim == 0:
            out.append([])
            continue
        (count,) = struct.unpack_from(">i", raw, p + 12)
        q = p + 20
        items: list[Any] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", raw, q)
            q += 4
            if length < 0:
                items.append(None)
                continue
            chunk = raw[q : q + length]
            q += length
            if elem == "text":
                items.append(chunk.decode("utf-8"))
            else:
                items.append(struct.unpack(fmt[elem], chunk)[0])
        out.append(items)
    return pa.array(out, type=pa.list_(arrow_elem))
