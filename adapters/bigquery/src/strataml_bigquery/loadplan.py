"""How a feature-store ``load`` changes the target table, decided before anything runs.

BigQuery transactions cannot hold DDL on permanent tables, so a load is: optional DDL
(create the table, add columns, or ``CREATE OR REPLACE ... AS SELECT`` for a ``replace`` that
changes the schema), then one ``INSERT ... SELECT`` from the staging table -- inside a
transaction with the ``DELETE`` of ``replace`` and the checkpoint ``MERGE`` when there are any.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from strataml.errors import SchemaError
from strataml_bigquery.bqtypes import BQColumn, type_sql
from strataml_bigquery.sql import quote, string_literal

__all__ = ["WIDEN", "LoadPlan", "checkpoint_merge", "plan_load"]

#: (incoming type, stored type) -> SQL widening a staged column on append (in UTC for times)
WIDEN: dict[tuple[str, str], str] = {
    ("INT64", "FLOAT64"): "CAST({} AS FLOAT64)",
    ("INT64", "NUMERIC"): "CAST({} AS NUMERIC)",
    ("INT64", "BIGNUMERIC"): "CAST({} AS BIGNUMERIC)",
    ("NUMERIC", "BIGNUMERIC"): "CAST({} AS BIGNUMERIC)",
    ("NUMERIC", "FLOAT64"): "CAST({} AS FLOAT64)",
    ("DATE", "DATETIME"): "DATETIME({})",
    ("DATE", "TIMESTAMP"): "TIMESTAMP({})",
    ("DATETIME", "TIMESTAMP"): "TIMESTAMP({})",
    ("TIMESTAMP", "DATETIME"): "DATETIME({})",
}


@dataclass
class LoadPlan:
    """What a load does.

    * ``create``: the target is missing (create it with these columns);
    * ``direct``: the data has exactly the table's layout (or the table is missing), so without
      a checkpoint one load job into the table does it all, atomically;
    * ``add``: columns to add; ``ctas``: replace the table wholesale;
    * ``truncate``: delete the old rows (in the transaction, or by the direct load);
    * ``targets``/``selects``: the INSERT's column list and the staged expressions.
    """

    create: list[BQColumn] | None = None
    direct: bool = False
    add: list[BQColumn] = field(default_factory=list)
    ctas: bool = False
    truncate: bool = False
    targets: list[str] = field(default_factory=list)
    selects: list[str] = field(default_factory=list)


def _layout(cols: list[BQColumn]) -> list[tuple[str, str, bool]]:
    return [(c.name.lower(), c.type, c.repeated) for c in cols]


def plan_load(
    table: str, mode: str, existing: list[BQColumn] | None, incoming: list[BQColumn]
) -> LoadPlan:
    """The plan of a load into ``table`` (``existing``: its columns, ``None`` if missing).

    Appends match columns case-insensitively (BigQuery column names are), add missing ones,
    widen per :data:`WIDEN`, and write an incoming all-NULL (untyped) column as NULLs of the
    stored type. Errors: :class:`SchemaError` listing every column that cannot take its data.
    """
    names = [quote(c.name) for c in incoming]
    if existing is None:
        return LoadPlan(create=list(incoming), direct=True, targets=names, selects=names)
    same = [(c.name, c.type, c.repeated) for c in existing] == [
        (c.name, c.type, c.repeated) for c in incoming
    ] and not any(c.null_typed for c in incoming)
    if mode == "replace":
        if _layout(existing) == _layout(incoming):
            targets = [quote(c.name) for c in existing]
            return LoadPlan(truncate=True, direct=same, targets=targets, selects=names)
        return LoadPlan(ctas=True)
    if same:
        return LoadPlan(direct=True, targets=names, selects=names)
    by_lower = {c.name.lower(): c for c in existing}
    plan = LoadPlan()
    bad: list[str] = []
    for col in incoming:
        have = by_lower.get(col.name.lower())
        src = quote(col.name)
        if have is None:
            plan.add.append(col)
            plan.targets.append(src)
            plan.selects.append(src)
            continue
        if col.null_typed:  # every value NULL: NULLs (empty arrays) of the stored type
            expr = (
                f"CAST([] AS {type_sql(have)})" if have.repeated else f"CAST(NULL AS {have.type})"
            )
        elif (col.type, col.repeated) == (have.type, have.repeated):
            expr = src
        elif not col.repeated and not have.repeated and (col.type, have.type) in WIDEN:
            expr = WIDEN[(col.type, have.type)].format(src)
        else:
            bad.append(
                f"{col.name!r} is {type_sql(have)} in the table but {type_sql(col)} in the data"
            )
            continue
        plan.targets.append(quote(have.name))
        plan.selects.append(expr)
    if bad:
        raise SchemaError(
            f"load {table}: incompatible column types: {'; '.join(bad)}; cast the data or load "
            "it with mode='replace'"
        )
    return plan


def checkpoint_merge(table: str, key: str, value: str) -> str:
    """One statement storing a checkpoint; the values are :func:`string_literal` expressions
    because scripts carry no parameters here (see :mod:`strataml_bigquery.sql`)."""
    return (
        f"MERGE {table} AS t USING (SELECT {string_literal(key)} AS key, "
        f"{string_literal(value)} AS value) AS s ON t.key = s.key "
        "WHEN MATCHED THEN UPDATE SET value = s.value, updated_at = CURRENT_TIMESTAMP() "
        "WHEN NOT MATCHED THEN INSERT (key, value, updated_at) "
        "VALUES (s.key, s.value, CURRENT_TIMESTAMP())"
    )
