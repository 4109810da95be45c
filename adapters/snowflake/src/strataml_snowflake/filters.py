"""The strataml filter language compiled to Snowflake SQL (``?`` placeholders bound server-side,
quoted identifiers).

Semantics match :func:`strataml.filters.matches`:

* ``NaN`` in a ``FLOAT`` column counts as absent (``NULLIF(col, 'NaN'::FLOAT)``): Snowflake,
  like PostgreSQL, takes NaN as equal to itself and greater than every number.
* Datetimes are compared in UTC: values are bound as naive UTC ``TIMESTAMP_NTZ``; sessions run
  with ``TIMEZONE = 'UTC'`` so a ``TIMESTAMP_TZ`` column compares by instant. A string compared
  with a timestamp or date column is read as ISO-8601 first (:class:`FilterError` if it is not).
* Strings compare as the column's collation says (binary, i.e. code point order, unless the
  account sets ``DEFAULT_DDL_COLLATION``).
* Nested fields are :class:`~strataml.errors.Unsupported` (columns are flat).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from strataml._time import to_utc_naive
from strataml.arrowutil import field_types
from strataml.errors import NotFound
from strataml.filters import (
    SQLFilterCompiler,
    check_types,
    coerce_temporal,
    fields_used,
    parse_filter,
    require_ops,
)
from strataml_snowflake.names import quote

__all__ = ["SnowflakeFilterCompiler", "compile_filter"]


class SnowflakeFilterCompiler(SQLFilterCompiler):
    """Compile a filter over columns of known Arrow types.

    ``physical`` maps each strataml column name to its Snowflake identifier (as stored);
    ``prefix`` qualifies columns (e.g. ``'"_Q".'``)."""

    backend = "Snowflake"
    paramstyle = "qmark"

    def __init__(self, schema: pa.Schema, physical: Mapping[str, str], prefix: str = "") -> None:
        super().__init__()
        self._physical = physical
        self._prefix = prefix
        self._floats = frozenset(f.name for f in schema if pa.types.is_floating(f.type))

    def column(self, field: str) -> str:
        col = super().column(field)  # Unsupported for nested fields
        col = self._prefix + quote(self._physical.get(field, field))
        if field in self._floats:
            return f"NULLIF({col}, 'NaN'::FLOAT)"
        return col

    def bind(self, value: Any) -> str:
        """A placeholder; floats are cast explicitly (``CAST(? AS FLOAT)``) so an integer
        column is
        compared numerically with them on every engine (the emulator would otherwise coerce
        the parameter to the column's integer type)."""
        if isinstance(value, dt.datetime):
            value = to_utc_naive(value)
        mark = super().bind(value)
        return f"CAST({mark} AS FLOAT)" if isinstance(value, float) else mark


def compile_filter(
    spec: Mapping[str, Any] | None,
    schema: pa.Schema,
    physical: Mapping[str, str],
    prefix: str = "",
) -> tuple[str, list[Any]]:
    """``(sql, params)`` of a filter over the columns of ``schema``; ``("TRUE", [])`` for none.

    Errors: :class:`~strataml.errors.FilterError` (malformed, or a value of the wrong kind for
    a column), :class:`~strataml.errors.Unsupported` (nested fields), :class:`NotFound` (a
    column the schema lacks) -- all raised before any SQL runs.
    """
    expr = parse_filter(spec)
    if expr is None:
        return "TRUE", []
    compiler = SnowflakeFilterCompiler(schema, physical, prefix)
    require_ops(expr, compiler.supported_ops, compiler.backend)
    used = fields_used(expr)
    for field in used:
        if "." in field:
            compiler.column(field)  # Unsupported, before NotFound
    unknown = sorted(f for f in used if f not in schema.names)
    if unknown:
        raise NotFound(
            f"the filter names column(s) {unknown} the source does not have; "
            f"columns: {schema.names}"
        )
    types = field_types(schema)
    check_types(expr, types)
    return compiler.compile(coerce_temporal(expr, types))
