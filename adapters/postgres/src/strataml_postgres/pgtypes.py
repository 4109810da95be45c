"""How Arrow types and PostgreSQL types map onto each other (one table, used by every store).

A *kind* names how values of a column travel in PostgreSQL's binary COPY format
(:mod:`strataml_postgres.pgcopy` encodes and decodes each kind with NumPy):

==============  =========================  ==========================  =======================
kind            PostgreSQL type            Arrow type written          Arrow type read back
==============  =========================  ==========================  =======================
bool            boolean                    bool                        bool
int2/int4/int8  smallint/integer/bigint    (u)int8..int64, uint32      int16/int32/int64
float4/float8   real/double precision      float16/32, float64         float32/float64
numeric         numeric(p, s)              decimal128/256              decimal128/256(p, s)
text            text                       string, large_string        string
bytea           bytea                      binary variants             binary
timestamp       timestamp                  timestamp without zone      timestamp[us]
timestamptz     timestamptz                timestamp with a zone       timestamp[us, tz=UTC]
date            date                       date32/date64               date32
time            time                       time32/time64               time64[us]
interval        interval                   duration                    month_day_nano_interval
jsonb           jsonb                      struct, map, nested lists   string (the JSON text)
<kind>[]        one-dimensional array      list of a scalar kind       list<...>
==============  =========================  ==========================  =======================

A result column of any other type (uuid, json, inet, ...) is read as its text form.
Unconstrained ``numeric`` (e.g. ``avg(bigint)``) is read as ``float64``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from strataml.errors import InvalidInput

__all__ = [
    "ARRAY_ELEMENT_KINDS",
    "ResultColumn",
    "arrow_type_of_kind",
    "kind_of_oid",
    "pg_type_for",
    "result_column",
]

_DDL: dict[str, str] = {
    "bool": "boolean",
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "float4": "real",
    "float8": "double precision",
    "text": "text",
    "bytea": "bytea",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "date": "date",
    "time": "time",
    "interval": "interval",
    "jsonb": "jsonb",
}

#: Element kinds a one-dimensional array column can hold.
ARRAY_ELEMENT_KINDS = frozenset({"bool", "int2", "int4", "int8", "float4", "float8", "text"})

_OID_KIND: dict[int, str] = {
    16: "bool",
    17: "bytea",
    18: "text",  # "char"
    19: "text",  # name
    20: "int8",
    21: "int2",
    23: "int4",
    25: "text",
    700: "float4",
    701: "float8",
    1042: "text",  # bpchar
    1043: "text",  # varchar
    1082: "date",
    1083: "time",
    1114: "timestamp",
    1184: "timestamptz",
    1186: "interval",
    1700: "numeric",
    3802: "jsonb",
    1000: "bool[]",
    1005: "int2[]",
    1007: "int4[]",
    1016: "int8[]",
    1021: "float4[]",
    1022: "float8[]",
    1009: "text[]",
    1015: "text[]",  # varchar[]
}

#: Element type OIDs of the array kinds (written in each array's header).
ELEMENT_OID: dict[str, int] = {
    "bool": 16,
    "int2": 21,
    "int4": 23,
    "int8": 20,
    "float4": 700,
    "float8": 701,
    "text": 25,
}

_ARROW: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "text": pa.string(),
    "bytea": pa.binary(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "interval": pa.month_day_nano_interval(),
    "jsonb": pa.string(),
}


def kind_of_oid(oid: int) -> str | None:
    """The codec kind of a PostgreSQL type OID, ``None`` when it is read as text."""
    return _OID_KIND.get(oid)


def arrow_type_of_kind(kind: str) -> pa.DataType:
    """The Arrow type a column of ``kind`` is decoded to."""
    if kind.endswith("[]"):
        return pa.list_(_ARROW[kind[:-2]])
    return _ARROW[kind]


def _scalar_kind(t: pa.DataType) -> str | None:
    if pa.types.is_dictionary(t):
        return _scalar_kind(t.value_type)
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        if t.bit_width <= 8 or (t.bit_width == 16 and pa.types.is_signed_integer(t)):
            return "int2"
        if t.bit_width == 16 or (t.bit_width == 32 and pa.types.is_signed_integer(t)):
            return "int4"
        return "int8"
    if pa.types.is_floating(t):
        return "float8" if t.bit_width == 64 else "float4"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return "bytea"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t):
        return "interval"
    if pa.types.is_null(t):
        return "text"
    return None


def pg_type_for(t: pa.DataType, where: str) -> tuple[str, str]:
    """``(kind, SQL type)`` of the column that stores Arrow type ``t``.

    Raises :class:`InvalidInput` for types PostgreSQL cannot hold (e.g. decimals wider than
    1000 digits).
    """
    if pa.types.is_dictionary(t):
        return pg_type_for(t.value_type, where)
    kind = _scalar_kind(t)
    if kind is not None:
        return kind, _DDL[kind]
    if pa.types.is_decimal(t):
        if t.precision > 1000:
            raise InvalidInput(f"{where}: {t} has more digits than PostgreSQL's numeric holds")
        return "numeric", f"numeric({t.precision}, {t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        elem = _scalar_kind(t.value_type)
        if elem in ARRAY_ELEMENT_KINDS and not pa.types.is_null(t.value_type):
            return f"{elem}[]", f"{_DDL[elem]}[]"
        return "jsonb", "jsonb"
    if pa.types.is_struct(t) or pa.types.is_map(t) or pa.types.is_list_view(t):
        return "jsonb", "jsonb"
    raise InvalidInput(f"{where}: PostgreSQL cannot store Arrow type {t}")


@dataclass(frozen=True, slots=True)
class ResultColumn:
    """A column of a query result as the decoder reads it.

    ``expr`` wraps the column in a cast when its type has no binary decoder (read as text, or
    unconstrained numeric as ``float8``); ``kind`` is then the kind of the cast result.
    ``arrow`` is the Arrow type of the decoded array.
    """

    name: str
    oid: int
    kind: str
    arrow: pa.DataType
    cast: str | None = None


def result_column(name: str, oid: int, precision: int | None, scale: int | None) -> ResultColumn:
    """How to read a result column of type ``oid`` (``precision``/``scale`` for numeric)."""
    kind = kind_of_oid(oid)
    if kind == "numeric":
        if precision is not None and 0 < precision <= 38:
            return ResultColumn(name, oid, "text", pa.decimal128(precision, scale or 0), "text")
        if precision is not None and 38 < precision <= 76:
            return ResultColumn(name, oid, "text", pa.decimal256(precision, scale or 0), "text")
        return ResultColumn(name, oid, "float8", pa.float64(), "double precision")
    if kind == "jsonb":
        return ResultColumn(name, oid, "text", pa.string(), "text")
    if kind is None:
        return ResultColumn(name, oid, "text", pa.string(), "text")
    return ResultColumn(name, oid, kind, arrow_type_of_kind(kind))
