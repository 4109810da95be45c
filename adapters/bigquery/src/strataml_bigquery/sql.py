"""SQL for BigQuery: quoting, transpiling, the ``datasets.<name>`` rewrite, typed parameters and
the filter compiler.

* Identifiers are always backquoted (:func:`quote`); values are bound as query parameters
  (``@name``), typed from the column they are compared with (a ``DATETIME`` column gets a
  ``DATETIME`` parameter, a ``TIMESTAMP`` column a ``TIMESTAMP`` one).
* Multi-statement scripts cannot take parameters here (bqemulator does not bind them); the few
  values a script needs (a checkpoint key and value) are rendered by :func:`string_literal`,
  which base64-encodes them, so no character of the value ever reaches the SQL text.
* Feature SQL is transpiled from the canonical dialect in exactly one place (:func:`transpile`).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from strataml.errors import FilterError, InvalidInput, SchemaError
from strataml.filters import And, Compare, Expr, Not, Op, Or, SQLFilterCompiler
from strataml.models import CANONICAL_DIALECT

__all__ = [
    "DATASET_QUALIFIER",
    "DIALECT",
    "BigQueryFilter",
    "Param",
    "infer_param",
    "parse_query",
    "quote",
    "rewrite_datasets",
    "string_literal",
    "transpile",
    "typed_filter",
    "user_params",
]

#: The sqlglot dialect of BigQuery's GoogleSQL.
DIALECT = "bigquery"
#: The qualifier SQL sources use for training datasets (``datasets.<name>``).
DATASET_QUALIFIER = "datasets"


def quote(name: str) -> str:
    """A backquoted identifier (or dotted path); backslashes and backquotes escaped."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def string_literal(value: str) -> str:
    """A GoogleSQL expression for ``value`` that no value can break out of (base64 inside)."""
    encoded = base64.b64encode(value.encode("utf-8")).decode("ascii")
    return f"SAFE_CONVERT_BYTES_TO_STRING(FROM_BASE64('{encoded}'))"


# ------------------------------------------------------------------------------- transpiling
def transpile(text: str, ref: str) -> str:
    """Feature-view SQL from the canonical dialect to BigQuery's: the one place it happens.

    Every identifier is backquoted, so names that are reserved in BigQuery but not in the
    canonical dialect keep meaning the column. Exactly one query is accepted; anything else
    (several statements, DDL, DML, SQL that does not parse) raises :class:`SchemaError`.
    """
    try:
        trees = [t for t in sqlglot.parse(text, read=CANONICAL_DIALECT) if t is not None]
    except SqlglotError as exc:
        raise SchemaError(f"feature view {ref}: SQL does not parse: {exc}") from exc
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        raise SchemaError(f"feature view {ref}: the SQL must be exactly one SELECT query")
    try:
        return trees[0].sql(dialect=DIALECT, identify=True)
    except SqlglotError as exc:
        raise SchemaError(f"feature view {ref}: cannot transpile to BigQuery: {exc}") from exc


def parse_query(text: str) -> exp.Query:
    """One ``SELECT``/``WITH`` statement in BigQuery's dialect; :class:`SchemaError` otherwise."""
    try:
        trees = [t for t in sqlglot.parse(text, read=DIALECT) if t is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaError(f"query does not parse: {first}") from exc
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        raise SchemaError("a SQL source must be exactly one SELECT/WITH statement")
    return trees[0]


def rewrite_datasets(text: str, physical: Callable[[str], str]) -> tuple[str, list[str]]:
    """Replace every ``datasets.<name>`` table of a query by the subquery ``physical(name)``
    (a ``SELECT``), keeping the alias (``<name>`` when there is none).

    Returns the SQL to run and the dataset names read. A query that names no dataset is
    returned as written (never regenerated). Errors: :class:`SchemaError` (not one query),
    whatever ``physical`` raises (:class:`~strataml.errors.NotFound` for unknown datasets).
    """
    tree = parse_query(text)
    tables = [
        t
        for t in tree.find_all(exp.Table)
        if t.db == DATASET_QUALIFIER and not t.catalog and isinstance(t.this, exp.Identifier)
    ]
    if not tables:
        return text, []
    names: list[str] = []
    for table in tables:
        name = table.name
        names.append(name)
        inner = sqlglot.parse_one(physical(name), read=DIALECT)
        if not isinstance(inner, exp.Query):
            raise SchemaError(f"internal: dataset {name!r} does not resolve to a query")
        table.replace(inner.subquery(exp.to_identifier(table.alias or name, quoted=True)))
    return tree.sql(dialect=DIALECT), names


# -------------------------------------------------------------------------------- parameters
@dataclass(frozen=True, slots=True)
class Param:
    """A value to bind with its BigQuery type (``cast`` wraps the column it is compared
    with, e.g. ``DATETIME`` when a ``DATE`` column meets a datetime)."""

    type: str
    value: Any
    cast: str | None = None


def _utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _utc_aware(value: dt.datetime) -> dt.datetime:
    return _utc_naive(value).replace(tzinfo=dt.UTC)


def _midnight(value: dt.date) -> dt.datetime:
    return dt.datetime(value.year, value.month, value.day)


def _typed_value(column_type: str, value: Any) -> Param:
    """``value`` (already type-checked against the column) as a typed parameter."""
    is_datetime = isinstance(value, dt.datetime)
    is_date = isinstance(value, dt.date) and not is_datetime
    if column_type == "TIMESTAMP" and (is_datetime or is_date):
        return Param("TIMESTAMP", _utc_aware(value if is_datetime else _midnight(value)))
    if column_type == "DATETIME" and (is_datetime or is_date):
        return Param("DATETIME", _utc_naive(value) if is_datetime else _midnight(value))
    if column_type == "DATE" and is_datetime:
        return Param("DATETIME", _utc_naive(value), cast="DATETIME")
    if column_type == "DATE" and is_date:
        return Param("DATE", value)
    return infer_param(value)


def infer_param(value: Any) -> Param:
    """The BigQuery type of a Python value: bool BOOL, int INT64, float FLOAT64, str STRING,
    bytes BYTES, datetime TIMESTAMP (naive = UTC), date DATE, Decimal NUMERIC."""
    if isinstance(value, bool):
        return Param("BOOL", value)
    if isinstance(value, int):
        return Param("INT64", value)
    if isinstance(value, float):
        return Param("FLOAT64", value)
    if isinstance(value, str):
        return Param("STRING", value)
    if isinstance(value, bytes):
        return Param("BYTES", value)
    if isinstance(value, dt.datetime):
        return Param("TIMESTAMP", _utc_aware(value))
    if isinstance(value, dt.date):
        return Param("DATE", value)
    if isinstance(value, decimal.Decimal):
        return Param("NUMERIC", value)
    if value is None:
        return Param("STRING", None)
    raise InvalidInput(f"cannot bind {value!r} ({type(value).__name__}) as a query parameter")


def scalar_param(name: str | None, param: Param) -> Any:
    """A ``google.cloud.bigquery.ScalarQueryParameter`` (``name=None``: positional)."""
    from google.cloud.bigquery import ScalarQueryParameter

    return ScalarQueryParameter(name, param.type, param.value)


def user_params(params: Sequence[Any] | Mapping[str, Any] | None) -> list[Any]:
    """The parameters of :meth:`~strataml_bigquery.features.BigQueryFeatureStore.sql`: a
    sequence binds ``?`` placeholders in order, a mapping binds ``@name`` ones. Values are
    typed by :func:`infer_param`; ready-made ``google.cloud.bigquery`` query parameter
    objects (e.g. an ``ArrayQueryParameter``) pass through."""
    from google.cloud.bigquery import query as bq_query

    ready = (
        bq_query.ScalarQueryParameter,
        bq_query.ArrayQueryParameter,
        bq_query.StructQueryParameter,
    )
    if params is None:
        return []
    if isinstance(params, Mapping):
        out: list[Any] = []
        for key, value in params.items():
            if not isinstance(key, str) or not key:
                raise InvalidInput(f"parameter names are non-empty strings, got {key!r}")
            if isinstance(value, ready):
                out.append(value)
            else:
                out.append(scalar_param(key, infer_param(value)))
        return out
    return [v if isinstance(v, ready) else scalar_param(None, infer_param(v)) for v in params]


# ----------------------------------------------------------------------------------- filters
def typed_filter(expr: Expr | None, types: Mapping[str, str]) -> Expr | None:
    """The tree with every compared value wrapped in a :class:`Param` typed for its column
    (``types``: column -> BigQuery type). Run it after ``check_types`` and ``coerce_temporal``."""
    if expr is None:
        return None
    if isinstance(expr, And):
        return And(tuple(typed_filter(e, types) for e in expr.items))  # type: ignore[misc]
    if isinstance(expr, Or):
        return Or(tuple(typed_filter(e, types) for e in expr.items))  # type: ignore[misc]
    if isinstance(expr, Not):
        return Not(typed_filter(expr.item, types))  # type: ignore[arg-type]
    if expr.op is Op.EXISTS:
        return expr
    column_type = types.get(expr.field, "")
    if expr.op in (Op.IN, Op.NIN):
        values = tuple(None if v is None else _typed_value(column_type, v) for v in expr.value)
        return Compare(expr.field, expr.op, values)
    if expr.value is None:
        return expr
    return Compare(expr.field, expr.op, _typed_value(column_type, expr.value))


class BigQueryFilter(SQLFilterCompiler):
    """Compile a :func:`typed_filter` tree to a GoogleSQL predicate with named parameters.

    ``nan_columns`` (FLOAT64) read NaN as absent; ``untyped`` columns (every value NULL, from
    an Arrow ``null`` column) compare as a NULL of the value's type.
    """

    backend = "BigQuery"
    quote_char = "`"

    def __init__(
        self,
        nan_columns: frozenset[str] = frozenset(),
        untyped: frozenset[str] = frozenset(),
        prefix: str = "f",
    ) -> None:
        super().__init__()
        self._nan = nan_columns
        self._untyped = untyped
        self._prefix = prefix

    def quote_ident(self, name: str) -> str:
        return quote(name)

    def column(self, field: str) -> str:
        col = super().column(field)
        if field in self._nan:
            return f"IF(IS_NAN({col}), NULL, {col})"
        return col

    def column_for(self, field: str, value: Any) -> str:
        if not isinstance(value, Param):
            raise FilterError(f"internal: filter value for {field!r} was not typed")
        if field in self._untyped:
            return f"CAST(NULL AS {value.type})"
        col = self.column(field)
        return f"{value.cast}({col})" if value.cast else col

    def bind(self, value: Any) -> str:
        if not isinstance(value, Param):
            raise FilterError(f"internal: filter value {value!r} was not typed")
        name = f"_{self._prefix}{len(self.params)}"
        self.params.append(scalar_param(name, value))
        return f"@{name}"
