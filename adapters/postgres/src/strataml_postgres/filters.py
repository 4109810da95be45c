"""The strataml filter language compiled to PostgreSQL (``%s`` placeholders, quoted identifiers).

Semantics match :func:`strataml.filters.matches`:

* ``NaN`` in a float column counts as absent (``NULLIF(col, 'NaN')``); PostgreSQL would otherwise
  treat NaN as equal to itself and greater than every number.
* Strings compare by code point (``COLLATE "C"``), whatever the database's collation.
* Datetimes are compared in UTC (naive ones are UTC); a string compared with a timestamp or date
  column is parsed as ISO-8601 first (:class:`~strataml.errors.FilterError` if it is not one).
* Nested fields are :class:`~strataml.errors.Unsupported` (columns are flat).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from strataml._time import to_utc_naive
from strataml.arrowutil import field_type_of, field_types
from strataml.errors import NotFound
from strataml.filters import (
    FieldType,
    SQLFilterCompiler,
    check_types,
    coerce_temporal,
    fields_used,
    parse_filter,
    require_ops,
)

__all__ = ["PgFilterCompiler", "compile_filter"]


class PgFilterCompiler(SQLFilterCompiler):
    """Compile a filter over columns of known Arrow types (``schema``)."""

    backend = "PostgreSQL"
    paramstyle = "format"

    def __init__(self, schema: pa.Schema) -> None:
        super().__init__()
        self._floats = frozenset(f.name for f in schema if pa.types.is_floating(f.type))
        self._strings = frozenset(
            f.name for f in schema if field_type_of(f.type) is FieldType.STRING
        )

    def column(self, field: str) -> str:
        col = super().column(field)
        if field in self._floats:
            return f"NULLIF({col}, 'NaN'::float8)"
        return col

    def column_for(self, field: str, value: Any) -> str:
        col = self.column(field)
        if field in self._strings and isinstance(value, str):
            return f'({col} COLLATE "C")'
        return col

    def bind(self, value: Any) -> str:
        if isinstance(value, dt.datetime):
            # InvalidInput for an aware time whose UTC instant no datetime can hold
            value = to_utc_naive(value, "filter").replace(tzinfo=dt.UTC)
        return super().bind(value)


def compile_filter(spec: Mapping[str, Any] | None, schema: pa.Schema) -> tuple[str, list[Any]]:
    """``(sql, params)`` of a filter over columns of ``schema``; ``("TRUE", [])`` for none.

    Errors: :class:`FilterError` (malformed, or a value of the wrong kind for a column),
    :class:`~strataml.errors.Unsupported` (nested fields), :class:`NotFound` (a column the
    schema lacks).
    """
    expr = parse_filter(spec)
    if expr is None:
        return "TRUE", []
    compiler = PgFilterCompiler(schema)
    require_ops(expr, compiler.supported_ops, compiler.backend)
    used = fields_used(expr)
    for field in used:
        compiler.column(field)  # Unsupported for nested fields, before NotFound
    unknown = sorted(f for f in used if f not in schema.names)
    if unknown:
        raise NotFound(
            f"the filter names column(s) {unknown} the source does not have; "
            f"columns: {schema.names}"
        )
    types = field_types(schema)
    check_types(expr, types)
    return compiler.compile(coerce_temporal(expr, types))
