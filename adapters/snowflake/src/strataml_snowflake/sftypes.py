"""Arrow <-> Snowflake types.

* :func:`sf_type_for` -- the column type a Snowflake table gets for an Arrow field (DDL).
* :func:`arrow_type_of` -- the Arrow type strataml returns for a result column (from the
  connector's column description).
* :func:`conform` -- a batch from the connector in the Arrow types of a target schema (JSON
  text of ``VARIANT`` columns back into lists/structs/maps, ``NUMBER`` back into integers, ...).

=================================  ==========================  ===============================
Arrow                              Snowflake                   back to Arrow (results)
=================================  ==========================  ===============================
bool                               BOOLEAN                     bool
int8 .. int64, uint8 .. uint64     NUMBER(38,0)                int64
float16/32/64                      FLOAT                       float64
decimal128(p, s)                   NUMBER(p,s)                 decimal128(p, s)
string, large_string               VARCHAR                     string
binary, large/fixed binary         BINARY                      binary
date32/64                          DATE                        date32
timestamp(unit)                    TIMESTAMP_NTZ(scale)        timestamp(us)
timestamp(unit, tz)                TIMESTAMP_TZ(scale)         timestamp(us, UTC)
time32/64                          TIME(scale)                 time64(us)
duration(unit)                     NUMBER(38,0) (the count)    int64
null                               VARCHAR                     string
list, struct, map                  VARIANT (JSON)              string (JSON text)
=================================  ==========================  ===============================

Training datasets keep the Arrow schema they were written with and come back in exactly those
types (:func:`conform` restores durations, unsigned ints, lists, structs and maps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from strataml.errors import InvalidInput, SchemaError

__all__ = [
    "ColumnKind",
    "arrow_type_of",
    "conform",
    "kind_of_arrow",
    "kind_of_description",
    "physical_batch",
    "select_expr",
    "sf_type_for",
]

#: Connector type codes (``snowflake.connector.constants.FIELD_TYPES``).
_FIXED, _REAL, _TEXT, _DATE, _TIMESTAMP, _VARIANT, _LTZ, _TZ, _NTZ = range(9)
_OBJECT, _ARRAY, _BINARY, _TIME, _BOOLEAN = range(9, 14)

#: number | decimal | float | text | binary | bool | date | ts | tstz | time | variant | null
ColumnKind = str


def _scale(unit: str) -> int:
    return {"s": 0, "ms": 3, "us": 6, "ns": 9}[unit]


def sf_type_for(t: pa.DataType, where: str) -> tuple[ColumnKind, str]:
    """``(kind, Snowflake type)`` of the column an Arrow type is stored in.

    :class:`InvalidInput` for types Snowflake cannot store (unions, month-day intervals,
    decimals wider than 38 digits)."""
    if pa.types.is_dictionary(t):
        return sf_type_for(t.value_type, where)
    if pa.types.is_boolean(t):
        return "bool", "BOOLEAN"
    if pa.types.is_integer(t) or pa.types.is_duration(t):
        return "number", "NUMBER(38,0)"
    if pa.types.is_floating(t):
        return "float", "FLOAT"
    if pa.types.is_decimal(t):
        if t.precision > 38:
            raise InvalidInput(f"{where}: {t} has more than Snowflake's 38 digits")
        return ("number" if t.scale == 0 else "decimal"), f"NUMBER({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text", "VARCHAR"
    if pa.types.is_null(t):
        return "null", "VARCHAR"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary", "BINARY"
    if pa.types.is_date(t):
        return "date", "DATE"
    if pa.types.is_timestamp(t):
        scale = _scale(t.unit)
        if t.tz is None:
            return "ts", f"TIMESTAMP_NTZ({scale})"
        return "tstz", f"TIMESTAMP_TZ({scale})"
    if pa.types.is_time(t):
        return "time", f"TIME({_scale(t.unit)})"
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_struct(t)
        or pa.types.is_map(t)
    ):
        return "variant", "VARIANT"
    raise InvalidInput(f"{where}: Snowflake cannot store Arrow type {t}")


def kind_of_arrow(t: pa.DataType) -> ColumnKind:
    """The kind of an Arrow type (no error: unknown types are their own kind)."""
    try:
        return sf_type_for(t, "")[0]
    except InvalidInput:
        return str(t)


def kind_of_description(col: Any) -> ColumnKind:
    """The kind of a result column described by the connector (``ResultMetadata``)."""
    code = int(col.type_code)
    if code == _FIXED:
        return "number" if not col.scale else "decimal"
    return {
        _REAL: "float",
        _TEXT: "text",
        _DATE: "date",
        _TIMESTAMP: "ts",
        _NTZ: "ts",
        _LTZ: "tstz",
        _TZ: "tstz",
        _BINARY: "binary",
        _TIME: "time",
        _BOOLEAN: "bool",
        _VARIANT: "variant",
        _OBJECT: "variant",
        _ARRAY: "variant",
    }.get(code, f"code:{code}")


def arrow_type_of(col: Any) -> pa.DataType:
    """The Arrow type strataml returns for a described result column (see the module table)."""
    kind = kind_of_description(col)
    if kind == "number":
        return pa.int64()
    if kind == "decimal":
        return pa.decimal128(int(col.precision or 38), int(col.scale))
    simple: dict[str, pa.DataType] = {
        "float": pa.float64(),
        "text": pa.string(),
        "variant": pa.string(),
        "date": pa.date32(),
        "ts": pa.timestamp("us"),
        "tstz": pa.timestamp("us", tz="UTC"),
        "binary": pa.binary(),
        "time": pa.time64("us"),
        "bool": pa.bool_(),
    }
    return simple.get(kind, pa.string())


# ----------------------------------------------------------------------------------- writing
def physical_array(arr: pa.Array | pa.ChunkedArray, target: pa.DataType | None = None) -> pa.Array:
    """An input column in the form its Parquet file carries (``target``: the Arrow type of an
    existing column it is appended to)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_duration(t):
        arr = arr.cast(pa.int64())
    elif pa.types.is_null(t):
        arr = pa.nulls(len(arr), pa.string())
    elif pa.types.is_float16(t):
        arr = arr.cast(pa.float32())
    if target is not None and not arr.type.equals(target):
        arr = _to_target(arr, target)
    return arr


def _to_target(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast an incoming column to an existing column's type (instants stay instants)."""
    if pa.types.is_timestamp(arr.type) and pa.types.is_timestamp(target):
        if arr.type.tz is not None and target.tz is None:
            arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC")).cast(pa.timestamp(arr.type.unit))
        elif arr.type.tz is None and target.tz is not None:
            arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC"))
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(f"cannot convert {arr.type} values to {target}: {exc}") from exc


def physical_batch(
    batch: pa.RecordBatch, names: list[str], targets: list[pa.DataType | None]
) -> pa.RecordBatch:
    """A batch renamed to physical column names and converted for Parquet."""
    arrays = [physical_array(batch.column(i), targets[i]) for i in range(batch.num_columns)]
    return pa.RecordBatch.from_arrays(arrays, names=names)


# ----------------------------------------------------------------------------------- reading
def select_expr(expr: str, target: pa.DataType) -> str:
    """How a column is selected to come back as ``target``: timestamps travel as epoch
    microseconds (nanoseconds for ``ns`` targets) in a ``NUMBER``, which :func:`conform` turns
    back into timestamps. That is exact, keeps nulls, and works for any date (the connector's
    own timestamp decoding is limited to 1677..2262 at nanosecond precision)."""
    if pa.types.is_timestamp(target):
        part = "EPOCH_NANOSECOND" if target.unit == "ns" else "EPOCH_MICROSECOND"
        return f"DATE_PART({part}, {expr})"
    return expr


def conform(table: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A connector result (columns in ``schema``'s order) in exactly ``schema``'s types."""
    if isinstance(table, pa.Table):
        table = table.combine_chunks()
        batch = (
            table.to_batches()[0]
            if table.num_rows
            else pa.RecordBatch.from_pylist([], schema=table.schema)
        )
    else:
        batch = table
    arrays = [_restore(batch.column(i), f.type, f.name) for i, f in enumerate(schema)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _restore(arr: pa.Array, target: pa.DataType, name: str) -> pa.Array:
    if arr.type.equals(target):
        return arr
    if pa.types.is_null(target):
        return pa.nulls(len(arr))
    if pa.types.is_string(arr.type) and (
        pa.types.is_list(target)
        or pa.types.is_large_list(target)
        or pa.types.is_fixed_size_list(target)
        or pa.types.is_struct(target)
        or pa.types.is_map(target)
    ):
        values = [None if v is None else orjson.loads(v) for v in arr.to_pylist()]
        if pa.types.is_map(target):
            values = [None if v is None else _map_items(v) for v in values]
        return pa.array(values, type=target)
    if pa.types.is_duration(target):
        return pc.cast(arr, pa.int64()).cast(target)
    if pa.types.is_timestamp(target) and (
        pa.types.is_integer(arr.type) or pa.types.is_decimal(arr.type)
    ):  # epoch counts from select_expr
        unit = "ns" if target.unit == "ns" else "us"
        arr = arr.cast(pa.int64()).cast(pa.timestamp(unit, tz="UTC" if target.tz else None))
    if pa.types.is_timestamp(arr.type) and pa.types.is_timestamp(target):
        if arr.type.tz is not None and target.tz is not None and arr.type.tz != target.tz:
            arr = arr.cast(pa.timestamp(arr.type.unit, tz=target.tz))
        if target.tz is None and arr.type.tz is not None:
            arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC")).cast(pa.timestamp(arr.type.unit))
    if pa.types.is_decimal(arr.type) and pa.types.is_integer(target):
        try:
            return arr.cast(target)
        except pa.ArrowInvalid as exc:
            raise SchemaError(
                f"column {name!r} holds numbers that do not fit {target}; CAST it in SQL"
            ) from exc
    try:
        return arr.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(f"column {name!r}: cannot read {arr.type} as {target}: {exc}") from exc


def _map_items(value: Any) -> list[tuple[Any, Any]]:
    """A map read back from VARIANT: an object, or a list of ``{key, value}`` entries."""
    if isinstance(value, dict):
        return list(value.items())
    return [(e["key"], e["value"]) for e in value]


def split(batch: pa.RecordBatch, size: int) -> list[pa.RecordBatch]:
    """``batch`` in slices of at most ``size`` rows."""
    if batch.num_rows <= size:
        return [batch]
    return [batch.slice(i, size) for i in range(0, batch.num_rows, size)]


def ordinal(start: int, n: int) -> pa.Array:
    return pa.array(np.arange(start, start + n, dtype=np.int64))
