"""SQL plumbing shared by the PostgreSQL stores: identifiers, locks, DDL, transpiling, queries
streamed to Arrow.

* Identifiers are always quoted (:func:`ident`, :func:`qname`); values are always bound.
* DDL runs under a transaction-scoped advisory lock per schema (:func:`run_ddl`), so concurrent
  first writers (threads or processes) never race on ``CREATE ... IF NOT EXISTS``.
* Feature SQL is transpiled from the canonical dialect in exactly one place (:func:`transpile`).
* :func:`describe` and :func:`stream_query` turn any query into Arrow record batches of bounded
  size through ``COPY (query) TO STDOUT (FORMAT BINARY)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, LiteralString

import psycopg
import pyarrow as pa
import sqlglot
from psycopg import sql
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from strataml.errors import SchemaError
from strataml.models import CANONICAL_DIALECT
from strataml_postgres.pgcopy import CopyOutReader, decode_rows
from strataml_postgres.pgtypes import ResultColumn, result_column

__all__ = [
    "DIALECT",
    "advisory_lock",
    "decodable",
    "describe",
    "ident",
    "is_query",
    "qname",
    "run_ddl",
    "stream_query",
    "transpile",
    "user_sql",
    "with_literals",
]

#: The sqlglot dialect of the PostgreSQL stores.
DIALECT = "postgres"

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


def ident(name: str) -> sql.Identifier:
    """A quoted identifier."""
    return sql.Identifier(name)


def qname(schema: str, name: str) -> sql.Identifier:
    """A quoted, schema-qualified name."""
    return sql.Identifier(schema, name)


def advisory_lock(conn: psycopg.Connection[Any], *key: str) -> None:
    """Take a transaction-scoped advisory lock on ``key`` (released at commit/rollback)."""
    conn.execute(_LOCK, ("strataml:" + "\x1f".join(key),))


def run_ddl(
    conn: psycopg.Connection[Any], schema: str, statements: Sequence[sql.Composed | sql.SQL]
) -> None:
    """Run idempotent DDL for ``schema`` under its DDL lock (inside the caller's transaction)."""
    advisory_lock(conn, "ddl", schema)
    for statement in statements:
        conn.execute(statement)


def with_literals(text: str, params: Sequence[Any]) -> sql.Composed:
    """``text`` (trusted SQL with ``%s`` placeholders, e.g. a compiled filter) with each
    placeholder replaced by the psycopg-escaped literal of its value.

    Used where a statement cannot take bound parameters (``COPY``) or also embeds user SQL
    whose ``%`` signs must not be read as placeholders.
    """
    pieces = text.split("%s")
    if len(pieces) != len(params) + 1:
        raise ValueError(f"{len(pieces) - 1} placeholders for {len(params)} values")
    parts: list[sql.Composable] = [sql.SQL(pieces[0])]
    for value, piece in zip(params, pieces[1:], strict=True):
        parts.append(sql.Literal(value))
        parts.append(sql.SQL(piece))
    return sql.Composed(parts)


def user_sql(text: str) -> sql.SQL:
    """SQL text the user wrote (a view, a query source), embedded verbatim: statements that
    contain it are run without bound parameters (see :func:`with_literals`)."""
    return sql.SQL(text)


def transpile(text: str, ref: str) -> str:
    """Feature-view SQL from the canonical dialect to PostgreSQL's: the one place it happens.

    Unquoted identifiers are folded to lower case (as PostgreSQL would) and every identifier is
    then quoted, so column names that are reserved words in PostgreSQL but not in the canonical
    dialect (``user``, ``order``...) keep meaning the column. Exactly one query statement is
    accepted; anything else (several statements, DDL, DML, SQL that does not parse) raises
    :class:`SchemaError`.
    """
    try:
        trees = [t for t in sqlglot.parse(text, read=CANONICAL_DIALECT) if t is not None]
    except SqlglotError as exc:
        raise SchemaError(f"feature view {ref}: SQL does not parse: {exc}") from exc
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        raise SchemaError(f"feature view {ref}: the SQL must be exactly one SELECT query")
    try:
        tree = normalize_identifiers(trees[0], dialect=DIALECT)
        return tree.sql(dialect=DIALECT, identify=True)
    except SqlglotError as exc:
        raise SchemaError(f"feature view {ref}: cannot transpile to PostgreSQL: {exc}") from exc


def describe(conn: psycopg.Connection[Any], query: sql.Composable) -> list[ResultColumn]:
    """The columns ``query`` returns (it runs with ``LIMIT 0``) and how to decode each."""
    wrapped = sql.SQL("SELECT * FROM ({}) AS _strataml_d LIMIT 0").format(query)
    cur = conn.execute(wrapped)
    if cur.description is None:
        raise SchemaError("the statement returns no rows")
    return [
        result_column(col.name, col.type_code, col.precision, col.scale) for col in cur.description
    ]


def decodable(
    query: sql.Composable, columns: Sequence[ResultColumn], *, order_by_first: bool = False
) -> sql.Composed:
    """``query`` wrapped to return ``columns`` in decodable form (casts where needed).

    The result's columns are addressed by position (a column alias list), so queries returning
    duplicate names (``SELECT * FROM a JOIN b``) read fine. ``order_by_first`` orders the rows
    by the first column.
    """
    alias = ident("_strataml_s")
    positional = [ident(f"_strataml_c{i}") for i in range(len(columns))]
    parts: list[sql.Composable] = []
    for col, pos in zip(columns, positional, strict=True):
        ref = sql.SQL("{}.{}").format(alias, pos)
        if col.cast is not None:
            cast = sql.SQL(_cast_sql(col.cast))
            parts.append(sql.SQL("CAST({} AS {}) AS {}").format(ref, cast, ident(col.name)))
        else:
            parts.append(sql.SQL("{} AS {}").format(ref, ident(col.name)))
    wrapped = sql.SQL("SELECT {} FROM ({}) AS {}({})").format(
        sql.SQL(", ").join(parts), query, alias, sql.SQL(", ").join(positional)
    )
    if order_by_first and positional:
        wrapped = sql.SQL("{} ORDER BY {}.{}").format(wrapped, alias, positional[0])
    return wrapped


def _cast_sql(name: str) -> LiteralString:
    casts: dict[str, LiteralString] = {"text": "text", "double precision": "double precision"}
    return casts[name]


def stream_query(
    conn: psycopg.Connection[Any],
    query: sql.Composable,
    columns: Sequence[ResultColumn],
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """Run ``query`` (already in decodable form, values as literals) as a binary COPY; yield
    batches of at most ``batch_size`` rows."""
    schema = pa.schema([pa.field(c.name, c.arrow) for c in columns])
    statement = sql.SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(query)
    with conn.cursor() as cur, cur.copy(statement) as copy:
        reader = CopyOutReader(conn, copy)
        while not reader.done:
            buf, lens = reader.read(batch_size)
            if lens:
                arrays = decode_rows(buf, lens, columns)
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)


_SELECT_RE = re.compile(r"^\s*(\(\s*)*(select|with|values|table)\b", re.IGNORECASE)


def is_query(text: str) -> bool:
    """Whether ``text`` reads like a query (``SELECT``/``WITH``/``VALUES``/``TABLE``)."""
    return _SELECT_RE.match(text) is not None
