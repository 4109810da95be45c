"""The strataml filter language compiled to PostgreSQL over a ``metadata jsonb`` column.

Metadata is stored as JSONB (see :func:`encode_metadata`): strings, numbers and booleans as
their JSON kinds, timestamps as ISO-8601 strings with a UTC offset, dates as ``YYYY-MM-DD``,
lists as arrays. The collection registry tracks each field's :class:`FieldType`; the compiler
casts by that type, so a comparison is typed the way :func:`strataml.filters.matches` compares:

=================  ==================================================================
field type         SQL value expression (``v``)
=================  ==================================================================
string             ``(metadata ->> %s) COLLATE "C"`` (code-point order, like Python)
int / float        ``(metadata ->> %s)::numeric`` (exact; see *numbers* below)
bool               ``(metadata ->> %s)::boolean``
timestamp          ``(metadata ->> %s)::timestamptz AT TIME ZONE 'UTC'``
date               ``(metadata ->> %s)::date::timestamp`` (dates compare as midnight UTC)
=================  ==================================================================

Every comparison is two-valued (``COALESCE(..., FALSE)``), presence is ``metadata ? %s``, so
``$ne``/``$nin``/``$not`` keep the null/missing semantics of :mod:`strataml.filters`. Fields the
collection has never stored are absent from every record and compile to a constant.

Safety: field names are validated by the parser *and* bound as parameters (``metadata ->> %s``),
values are always bound; nothing the caller passes is formatted into the SQL text.

Numbers: JSON numbers are stored as Python writes them (``repr`` for floats, digits for ints),
except integral floats of magnitude >= 2**53, stored as their exact integer digits. A stored
value with scale 0 is therefore exact; any other is the shortest decimal of a double. A float
filter value ``x`` is compared with exact ``Decimal(x)`` against the former and with the
shortest ``Decimal(repr(x))`` against the latter, which orders and equates exactly like Python
compares ints and floats (no float8 rounding of big ints, no ``0.1`` surprises).

Timestamp and date fields also accept ISO-8601 strings as filter values (parsed; a string that
is not ISO-8601 raises :class:`FilterError`), as the embedded LanceDB store does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from strataml._args import utf8_error
from strataml.errors import FilterError, Unsupported
from strataml.filters import (
    ALL_OPS,
    And,
    Compare,
    Expr,
    FieldType,
    Not,
    Op,
    Or,
    SQLFilterCompiler,
    check_types,
    coerce_temporal,
    matches,
    parse_filter,
    value_kind,
)

__all__ = [
    "PgVectorFilterCompiler",
    "compile_filter",
    "decode_metadata",
    "encode_metadata",
]

_EXACT_FLOAT_LIMIT = 2.0**53
_KINDS: dict[FieldType, frozenset[str]] = {
    FieldType.STRING: frozenset({"string"}),
    FieldType.INT: frozenset({"number"}),
    FieldType.FLOAT: frozenset({"number"}),
    FieldType.BOOL: frozenset({"bool"}),
    FieldType.TIMESTAMP: frozenset({"timestamp", "date"}),
    FieldType.DATE: frozenset({"timestamp", "date"}),
}
_ARRAY_TYPE = {"string": "text[]", "bool": "boolean[]", "timestamp": "timestamp[]"}
_RANGE_SQL = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}


# ------------------------------------------------------------------------------ values
def _json_scalar(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) >= _EXACT_FLOAT_LIMIT:
        return int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised metadata (from :func:`strataml.vectors.batch.prepare_batch`) as JSON values."""
    return {k: _json_scalar(v) for k, v in metadata.items()}


def decode_metadata(stored: Mapping[str, Any], fields: Mapping[str, FieldType]) -> dict[str, Any]:
    """Stored JSON metadata back to Python values (timestamps aware UTC, dates as ``date``)."""
    out: dict[str, Any] = {}
    for key, value in stored.items():
        ftype = fields.get(key)
        if ftype is FieldType.TIMESTAMP and isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value)
            out[key] = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        elif ftype is FieldType.DATE and isinstance(value, str):
            out[key] = dt.date.fromisoformat(value)
        else:
            out[key] = value
    return out


def _naive_utc(value: dt.date) -> dt.datetime:
    """A date or datetime as the naive UTC datetime the SQL side compares with."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    return dt.datetime(value.year, value.month, value.day)


# ---------------------------------------------------------------------------- compiler
class PgVectorFilterCompiler(SQLFilterCompiler):
    """Compile a parsed filter to a boolean SQL expression over ``metadata`` (``%s`` params).

    ``fields`` are the collection's tracked field types. Type mismatches must have been
    rejected with :func:`strataml.filters.check_types` first (:func:`compile_filter` does).
    """

    paramstyle = "format"
    backend = "pgvector"
    nested_fields = False
    supported_ops = ALL_OPS

    def __init__(self, fields: Mapping[str, FieldType], column: str = "metadata") -> None:
        super().__init__()
        self.fields = fields
        self.metadata_column = column

    # -- fragments (each binds its parameters in the order they appear in the text)
    def _present(self, field: str) -> str:
        return f"({self.metadata_column} ? {self.bind(field)})"

    def _value(self, field: str, ftype: FieldType) -> str:
        raw = f"({self.metadata_column} ->> {self.bind(field)})"
        if ftype is FieldType.STRING:
            return f'({raw} COLLATE "C")'
        if ftype in (FieldType.INT, FieldType.FLOAT):
            return f"({raw}::numeric)"
        if ftype is FieldType.BOOL:
            return f"({raw}::boolean)"
        if ftype is FieldType.TIMESTAMP:
            return f"(({raw}::timestamptz) AT TIME ZONE 'UTC')"
        return f"({raw}::date::timestamp)"

    def _param(self, value: Any) -> str:
        kind = value_kind(value)
        if kind == "number":
            return f"{self.bind(Decimal(value))}::numeric"
        if kind in ("timestamp", "date"):
            return f"{self.bind(_naive_utc(value))}::timestamp"
        if kind == "bool":
            return f"{self.bind(value)}::boolean"
        return f"{self.bind(value)}::text"

    def _comparison(self, field: str, ftype: FieldType, sym: str, value: Any) -> str:
        if value_kind(value) not in _KINDS[ftype]:
            return "FALSE"
        if isinstance(value, float):
            v = self._value(field, ftype)
            scale = f"scale({self._value(field, ftype)})"
            exact = self.bind(Decimal(value))
            shortest = self.bind(Decimal(repr(value)))
            return (
                f"COALESCE({v} {sym} (CASE WHEN {scale} = 0 THEN {exact} ELSE {shortest} END)"
                "::numeric, FALSE)"
            )
        return f"COALESCE({self._value(field, ftype)} {sym} {self._param(value)}, FALSE)"

    def _membership(self, field: str, ftype: FieldType, values: Sequence[Any]) -> str:
        present = [v for v in values if v is not None and value_kind(v) in _KINDS[ftype]]
        parts: list[str] = []
        if present:
            kind = value_kind(present[0])
            if kind == "number":
                v = self._value(field, ftype)
                if any(isinstance(x, float) for x in present):
                    scale = f"scale({self._value(field, ftype)})"
                    exact = self.bind([Decimal(x) for x in present])
                    shortest = self.bind(
                        [Decimal(repr(x)) if isinstance(x, float) else Decimal(x) for x in present]
                    )
                    arr = f"(CASE WHEN {scale} = 0 THEN {exact} ELSE {shortest} END)::numeric[]"
                else:
                    arr = f"{self.bind([Decimal(x) for x in present])}::numeric[]"
            else:
                v = self._value(field, ftype)
                items = (
                    [_naive_utc(x) for x in present] if kind in ("timestamp", "date") else present
                )
                arr = f"{self.bind(items)}::{_ARRAY_TYPE['timestamp' if kind == 'date' else kind]}"
            parts.append(f"COALESCE({v} = ANY({arr}), FALSE)")
        if any(v is None for v in values):
            parts.append(f"(NOT {self._present(field)})")
        if not parts:
            return "FALSE"
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    # -- the hook of SQLFilterCompiler
    def _compare(self, e: Compare) -> str:
        self.column(e.field)  # nested fields raise Unsupported
        ftype = self.fields.get(e.field)
        if ftype is None:  # never stored: absent from every record
            return "TRUE" if matches(e, {}) else "FALSE"
        op, x = e.op, e.value
        if op is Op.EXISTS:
            return self._present(e.field) if x else f"(NOT {self._present(e.field)})"
        if op in (Op.EQ, Op.NE) and x is None:
            present = self._present(e.field)
            return present if op is Op.NE else f"(NOT {present})"
        if op in (Op.IN, Op.NIN) and all(v is None for v in x):
            inner = self._membership(e.field, FieldType.STRING, x)
            return inner if op is Op.IN else f"(NOT {inner})"
        if ftype not in _KINDS:
            if ftype is FieldType.ANY:
                raise Unsupported(f"pgvector cannot compare field {e.field!r} of mixed types")
            raise FilterError(f"field {e.field!r} holds a {ftype}; only scalar fields filter")
        if op is Op.EQ:
            return self._comparison(e.field, ftype, "=", x)
        if op is Op.NE:
            return f"(NOT {self._comparison(e.field, ftype, '=', x)})"
        if op in (Op.IN, Op.NIN):
            inner = self._membership(e.field, ftype, x)
            return inner if op is Op.IN else f"(NOT {inner})"
        return self._comparison(e.field, ftype, _RANGE_SQL[op], x)


# ------------------------------------------------------------------------- entry point


def _check_text(expr: Expr | None) -> None:
    """PostgreSQL text cannot hold NUL characters nor lone surrogates (not UTF-8): such a
    filter value is rejected."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, And | Or):
            stack.extend(node.items)
        elif isinstance(node, Not):
            stack.append(node.item)
        else:
            values = node.value if isinstance(node.value, tuple) else (node.value,)
            for v in values:
                if not isinstance(v, str):
                    continue
                if "\x00" in v:
                    raise FilterError(
                        f"filter on {node.field!r}: PostgreSQL text cannot contain NUL characters"
                    )
                bad = utf8_error(v)
                if bad is not None:
                    raise FilterError(
                        f"filter on {node.field!r}: not valid Unicode text ({bad.reason})"
                    ) from bad


def compile_filter(
    spec: Mapping[str, Any] | Expr | None, fields: Mapping[str, FieldType]
) -> tuple[str, list[Any]]:
    """Parse, type-check and compile a filter: ``(sql, params)``, ``("TRUE", [])`` if empty.

    Raises :class:`FilterError` (malformed, or a type mismatch with a tracked field) and
    :class:`Unsupported` (nested fields).
    """
    expr = parse_filter(spec)
    if expr is None:
        return "TRUE", []
    check_types(expr, fields)
    expr = coerce_temporal(expr, fields)
    _check_text(expr)
    return PgVectorFilterCompiler(fields).compile(expr)
