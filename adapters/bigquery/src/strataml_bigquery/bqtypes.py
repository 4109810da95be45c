"""Arrow <-> BigQuery types: what a loaded column becomes, and what a result column reads as.

Loading (Arrow -> BigQuery), checked before anything is sent:

==========================================  ===========================================
Arrow                                       BigQuery column (the Parquet file carries)
==========================================  ===========================================
bool                                        BOOL
int8..int64, uint8..uint64                  INT64 (uint64 above 2^63-1: InvalidInput)
float16/32/64                               FLOAT64
decimal (scale <= 9, integer digits <= 29)  NUMERIC; other decimals: BIGNUMERIC
string, large_string, string_view           STRING
binary, large_binary, fixed_size_binary     BYTES
date32, date64                              DATE
timestamp without a time zone               DATETIME (naive = UTC; floored to microseconds)
timestamp with a time zone                  TIMESTAMP (an instant; floored to microseconds)
time32, time64                              TIME (microseconds)
dictionary<_, T>                            as T (the values are stored)
null (a column with no type yet)            STRING, every value NULL
list / large_list / fixed_size_list of a    ARRAY<T> (REPEATED); BigQuery arrays hold no
scalar above                                NULL elements (InvalidInput) and a NULL list
                                            reads back as an empty one
==========================================  ===========================================

Anything else (structs, maps, durations, nested lists) raises
:class:`~strataml.errors.InvalidInput` naming the column.

Reading (BigQuery -> Arrow): INT64 int64, FLOAT64 float64, NUMERIC decimal128(38, 9),
BIGNUMERIC decimal256(76, 38), BOOL bool, STRING/JSON/GEOGRAPHY string, BYTES binary, DATE
date32, DATETIME timestamp[us], TIMESTAMP timestamp[us, UTC], TIME time64[us], ARRAY<T> list<T>.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from strataml.errors import InvalidInput

__all__ = [
    "TIME_TYPES",
    "BQColumn",
    "arrow_type",
    "bq_column",
    "canonical_type",
    "conform",
    "family",
    "from_schema_field",
    "result_schema",
    "schema_fields",
    "to_upload",
    "type_sql",
    "upload_schema",
]

#: BigQuery types a point-in-time join and ``compute`` accept as event time.
TIME_TYPES = frozenset({"TIMESTAMP", "DATETIME", "DATE"})

_ALIASES = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "DECIMAL": "NUMERIC",
    "BIGDECIMAL": "BIGNUMERIC",
    "RECORD": "STRUCT",
}
_NUMERIC = pa.decimal128(38, 9)
_BIGNUMERIC = pa.decimal256(76, 38)
_FAMILIES = {
    "INT64": "number",
    "FLOAT64": "number",
    "NUMERIC": "number",
    "BIGNUMERIC": "number",
    "TIMESTAMP": "time",
    "DATETIME": "time",
    "DATE": "time",
}


@dataclass(frozen=True, slots=True)
class BQColumn:
    """A BigQuery column: name, (canonical) type, whether it is an ARRAY, and whether it came
    from an Arrow ``null`` column (typeless: every value is NULL)."""

    name: str
    type: str
    repeated: bool = False
    null_typed: bool = False


def canonical_type(name: str) -> str:
    """A BigQuery type name as GoogleSQL spells it (``INTEGER`` -> ``INT64``)."""
    upper = name.upper()
    return _ALIASES.get(upper, upper)


def family(bq_type: str) -> str:
    """Coarse comparison family (numbers compare with numbers, times with times)."""
    t = canonical_type(bq_type)
    return _FAMILIES.get(t, t)


def type_sql(col: BQColumn) -> str:
    """The column's type in DDL (``ARRAY<INT64>`` for a repeated column)."""
    return f"ARRAY<{col.type}>" if col.repeated else col.type


def from_schema_field(field: Any) -> BQColumn:
    """A :class:`BQColumn` from a ``google.cloud.bigquery.SchemaField``."""
    return BQColumn(
        name=str(field.name),
        type=canonical_type(str(field.field_type)),
        repeated=str(field.mode).upper() == "REPEATED",
    )


def schema_fields(columns: Sequence[BQColumn]) -> list[Any]:
    """``SchemaField`` objects for a load job's or a table's explicit schema."""
    from google.cloud.bigquery import SchemaField

    return [
        SchemaField(c.name, c.type, mode="REPEATED" if c.repeated else "NULLABLE") for c in columns
    ]


# ----------------------------------------------------------------------------------- loading
def _scalar(t: pa.DataType, where: str) -> tuple[str, pa.DataType]:
    """BigQuery type and upload Arrow type of a scalar Arrow type."""
    if pa.types.is_boolean(t):
        return "BOOL", pa.bool_()
    if pa.types.is_integer(t):
        return "INT64", pa.int64()
    if pa.types.is_floating(t):
        return "FLOAT64", pa.float64()
    if pa.types.is_decimal(t):
        if t.scale <= 9 and t.precision - t.scale <= 29 and t.scale >= 0:
            return "NUMERIC", _NUMERIC
        return "BIGNUMERIC", _BIGNUMERIC
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "STRING", pa.string()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return "BYTES", pa.binary()
    if pa.types.is_date(t):
        return "DATE", pa.date32()
    if pa.types.is_timestamp(t):
        if t.tz is None:
            return "DATETIME", pa.timestamp("us")
        return "TIMESTAMP", pa.timestamp("us", tz="UTC")
    if pa.types.is_time(t):
        return "TIME", pa.time64("us")
    raise InvalidInput(
        f"{where}: Arrow type {t} has no BigQuery column type in strataml (store structs and "
        "maps as JSON strings, durations as integers)"
    )


def bq_column(name: str, t: pa.DataType, where: str = "data") -> tuple[BQColumn, pa.DataType]:
    """The BigQuery column an Arrow field becomes, and the Arrow type it is uploaded as."""
    here = f"{where}: column {name!r}"
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_null(t):
        return BQColumn(name, "STRING", null_typed=True), pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner = t.value_type
        if pa.types.is_dictionary(inner):
            inner = inner.value_type
        if pa.types.is_nested(inner) or pa.types.is_null(inner):
            raise InvalidInput(f"{here}: BigQuery arrays hold scalars, not {inner}")
        bq, up = _scalar(inner, here)
        return BQColumn(name, bq, repeated=True), pa.list_(up)
    bq, up = _scalar(t, here)
    return BQColumn(name, bq), up


def upload_schema(schema: pa.Schema, where: str = "data") -> tuple[list[BQColumn], pa.Schema]:
    """The BigQuery columns of ``schema`` and the Arrow schema of the Parquet upload."""
    cols: list[BQColumn] = []
    fields: list[pa.Field] = []
    for f in schema:
        col, up = bq_column(f.name, f.type, where)
        cols.append(col)
        fields.append(pa.field(f.name, up))
    return cols, pa.schema(fields)


def _floor_us(arr: pa.Array) -> pa.Array:
    """Timestamps/times at sub-microsecond precision floored to microseconds (never later)."""
    t = arr.type
    if pa.types.is_timestamp(t) and t.unit == "ns":
        floored = pc.floor_temporal(arr, unit="microsecond")
        return floored.cast(pa.timestamp("us", tz=t.tz), safe=False)
    if pa.types.is_time64(t) and t.unit == "ns":
        return arr.cast(pa.time64("us"), safe=False)
    return arr


def _convert_list(arr: pa.Array, target: pa.DataType, where: str) -> pa.Array:
    """A list / large_list / fixed_size_list array as ``list<target value type>``."""
    flat = pc.list_flatten(arr)
    if flat.null_count:
        raise InvalidInput(f"{where}: BigQuery arrays cannot hold NULL elements")
    values = _convert(flat, target.value_type, where)
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32())
    mask = arr.is_null() if arr.null_count else None
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def _convert(arr: pa.Array, target: pa.DataType, where: str) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_list(target):
        return _convert_list(arr, target, where)
    arr = _floor_us(arr)
    if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
        arr = arr.cast(pa.timestamp(arr.type.unit, tz="UTC"))
    if arr.type == target:
        return arr
    try:
        return arr.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(f"{where}: cannot store {arr.type} values as {target}: {exc}") from exc


def to_upload(batch: pa.RecordBatch, schema: pa.Schema, where: str = "data") -> pa.RecordBatch:
    """``batch`` converted column by column to the upload ``schema`` (same names, in order)."""
    arrays = [
        _convert(col, f.type, f"{where}: column {f.name!r}")
        for col, f in zip(batch.columns, schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# ----------------------------------------------------------------------------------- reading
def arrow_type(col: BQColumn) -> pa.DataType:
    """The Arrow type a BigQuery column reads as."""
    scalar: dict[str, pa.DataType] = {
        "INT64": pa.int64(),
        "FLOAT64": pa.float64(),
        "NUMERIC": _NUMERIC,
        "BIGNUMERIC": _BIGNUMERIC,
        "BOOL": pa.bool_(),
        "STRING": pa.string(),
        "JSON": pa.string(),
        "GEOGRAPHY": pa.string(),
        "BYTES": pa.binary(),
        "DATE": pa.date32(),
        "DATETIME": pa.timestamp("us"),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
        "TIME": pa.time64("us"),
    }
    base = scalar.get(col.type, pa.string())
    return pa.list_(base) if col.repeated else base


def result_schema(columns: Sequence[BQColumn]) -> pa.Schema:
    """The Arrow schema of a result with these BigQuery columns."""
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in columns])


def _cast(arr: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type == target:
        return arr
    if pa.types.is_null(target):
        return pa.nulls(len(arr))
    return arr.cast(target, safe=True)


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    """``batch``'s columns (by position) cast to ``schema``; field metadata dropped."""
    if batch.num_columns != len(schema):
        raise ValueError(f"expected {len(schema)} columns, got {batch.num_columns}")
    arrays = [_cast(col, f.type) for col, f in zip(batch.columns, schema, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
