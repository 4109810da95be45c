"""SQL text handling with sqlglot: transpiling feature-view SQL from the canonical dialect,
checking SQL sources, naming datasets portably, and binding named parameters.

* :func:`transpile_view` -- canonical (DuckDB) SQL to Snowflake, every identifier quoted (so
  no name can collide with a keyword of either engine). Unquoted identifiers are folded to
  uppercase as Snowflake would (``clicks`` is ``"CLICKS"``), quoted ones follow the naming rule
  of :mod:`strataml_snowflake.names` (``"clicks"`` is ``"CLICKS"``, ``"userId"`` stays as is);
  DuckDB matches names case-insensitively, so write mixed-case names quoted, exactly.
* :func:`single_query` -- one ``SELECT``/``WITH`` statement in Snowflake's dialect, or
  :class:`~strataml.errors.SchemaError`.
* :func:`rewrite_datasets` -- ``datasets.<name>`` (how SQL sources name training datasets on
  every backend) replaced by the dataset's current table.
* :func:`positional` -- ``:name`` placeholders and a mapping turned into ``?`` and a list (the
  connector binds ``qmark`` parameters server-side, by position only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from strataml.errors import InvalidInput, SchemaError
from strataml.models import CANONICAL_DIALECT
from strataml_snowflake.names import to_sf

__all__ = [
    "DIALECT",
    "positional",
    "rewrite_datasets",
    "single_query",
    "transpile_view",
    "utc_ntz",
]

#: sqlglot's name for Snowflake's dialect.
DIALECT = "snowflake"


def _parse(sql: str, dialect: str, what: str) -> exp.Query:
    try:
        trees = [t for t in sqlglot.parse(sql, read=dialect) if t is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SchemaError(f"{what}: SQL does not parse: {first}") from exc
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        raise SchemaError(f"{what}: the SQL must be exactly one SELECT (or WITH) query")
    return trees[0]


def transpile_view(sql: str, what: str) -> str:
    """A feature view's SQL (canonical dialect) in Snowflake's dialect."""
    tree = _parse(sql, CANONICAL_DIALECT, what)
    for ident in tree.find_all(exp.Identifier):
        ident.set("this", to_sf(ident.this) if ident.quoted else ident.this.upper())
        ident.set("quoted", True)
    return tree.sql(dialect=DIALECT)


def single_query(sql: str, what: str = "query") -> exp.Query:
    """Parse one Snowflake ``SELECT``/``WITH`` statement."""
    return _parse(sql.strip().rstrip(";"), DIALECT, what)


def rewrite_datasets(tree: exp.Query, resolve: Callable[[str, bool], exp.Expression]) -> bool:
    """Replace every ``datasets.<name>`` table in ``tree`` by ``resolve(name, quoted)`` (an
    aliased subquery); return whether anything was replaced."""
    changed = False
    for table in list(tree.find_all(exp.Table)):
        if table.db.lower() != "datasets" or table.catalog:
            continue
        ident = table.args["this"]
        alias = table.alias or table.name
        replacement = resolve(table.name, bool(getattr(ident, "quoted", False)))
        replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        table.replace(replacement)
        changed = True
    return changed


def positional(sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
    """``:name`` placeholders bound from ``params``, as ``?`` placeholders and a value list."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except SqlglotError as exc:
        raise SchemaError(f"SQL does not parse: {str(exc).splitlines()[0]}") from exc
    values: list[Any] = []
    for node in list(tree.walk(bfs=False)):
        if not isinstance(node, exp.Placeholder):
            continue
        name = node.this
        if not name:
            raise InvalidInput("use either ? placeholders with a sequence or :name with a mapping")
        if name not in params:
            raise InvalidInput(f"no value for the parameter :{name}")
        values.append(params[name])
        node.replace(exp.Placeholder())
    return tree.sql(dialect=DIALECT), values


def utc_ntz(expr: str, kind: str) -> str:
    """SQL turning a timestamp/date expression of ``kind`` into a naive-UTC TIMESTAMP_NTZ."""
    if kind == "tstz":
        return f"CONVERT_TIMEZONE('UTC', {expr})::TIMESTAMP_NTZ(9)"
    if kind == "date":
        return f"{expr}::TIMESTAMP_NTZ(9)"
    return expr
