"""Point-in-time joins on Snowflake, as a sort-based window query (no ``ASOF JOIN``).

Steps, in one session:

1. The labels go to a transient table (staged Parquet + ``COPY``; dropped at the end): their
   row number ``_ROW``, their entity columns ``_E0, _E1, ...`` and their timestamp as naive
   UTC ``_LTS``.
2. One query. Per view, a CTE ``V<g>`` holds the view's rows restricted to the labels' entities
   and to event times up to the last label time: entities, naive-UTC event time ``_VTS`` and
   the wanted features ``_F0, _F1, ...`` (rows with a null entity never match). Labels and
   view rows are ``UNION ALL``-ed per entity and ordered by ``(time, kind)`` with view rows
   before labels at equal times (so a feature at exactly the label's time counts); the
   running ``MAX`` of the view rows' times over that order is, at each label, the event time
   of the latest view row at or before it. An equi-join on ``(entities, that time)`` fetches
   its values (``QUALIFY`` keeps one row per label when several view rows share it), a
   ``CASE`` nulls values older than the TTL, ``LEFT JOIN``\\ s keep every label, ``ORDER BY
   _ROW`` restores the input order.

This is ``O((labels + rows) log)`` per entity partition (no label x row product), and it runs
the same on Snowflake and on the emulator (which lacks ``ASOF JOIN ... MATCH_CONDITION``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa

from strataml.errors import StrataError
from strataml_snowflake.db import Session, SnowflakeDatabase
from strataml_snowflake.names import quote
from strataml_snowflake.sftypes import ordinal, physical_array, select_expr, sf_type_for
from strataml_snowflake.sql import utc_ntz
from strataml_snowflake.stage import load_into, upload

if TYPE_CHECKING:
    from strataml_snowflake.features import Bound

__all__ = ["point_in_time"]

ViewKey = tuple[str, int]
Output = tuple[ViewKey, str, str]


def _label_timestamps(column: pa.ChunkedArray) -> pa.Array:
    """Label times as naive UTC nanosecond timestamps (dates are midnight UTC)."""
    arr = column.combine_chunks()
    if pa.types.is_date(arr.type):
        return arr.cast(pa.timestamp("ns"))
    unit_ns = pa.timestamp("ns", tz="UTC") if arr.type.tz is not None else pa.timestamp("ns")
    arr = arr.cast(unit_ns, safe=False) if arr.type.unit != "ns" else arr
    if arr.type.tz is not None:
        arr = arr.cast(pa.timestamp("ns", tz="UTC")).cast(pa.timestamp("ns"))
    return arr


def point_in_time(
    db: SnowflakeDatabase,
    s: Session,
    labels: pa.Table,
    timestamp: str,
    entities: list[str],
    groups: dict[ViewKey, Bound],
    outputs: list[Output],
) -> pa.Table:
    """The feature columns (named as ``outputs``) for every label row, in label order."""
    from strataml_snowflake.features import fetch_batches

    fields = [pa.field(out, groups[key].columns[feature].arrow) for key, feature, out in outputs]
    if labels.num_rows == 0:
        return pa.table({f.name: pa.array([], f.type) for f in fields}, schema=pa.schema(fields))
    token = uuid.uuid4().hex.upper()
    # a transient table (COPY INTO needs a real table), dropped below
    lab = db.qualified(f"_STRATAML_LABELS_{token}")
    what = "point-in-time join"
    slot = {e: f"_E{i}" for i, e in enumerate(entities)}
    ctes = [f'"L" AS (SELECT * FROM {lab})']
    select: list[str] = []
    joins: list[str] = []
    for g, (key, bound) in enumerate(groups.items()):
        wanted = list(dict.fromkeys(f for k, f, _ in outputs if k == key))
        ents = [slot[e] for e in bound.view.entities]
        ctes.append(_view_cte(g, bound, wanted, slot))
        ctes.append(_match_cte(g, ents))
        same = " AND ".join(f"f{g}.{quote(e)} = l.{quote(e)}" for e in ents)
        joins.append(
            f'LEFT JOIN "M{g}" AS m{g} ON m{g}."_ROW" = l."_ROW"'
            f' LEFT JOIN "V{g}" AS f{g} ON {same} AND f{g}."_VTS" = m{g}."_MT"'
        )
        ttl = bound.view.ttl
        for k, feature, _ in outputs:
            if k != key:
                continue
            value = f'f{g}."_F{wanted.index(feature)}"'
            if ttl is not None:
                micros = ttl // dt.timedelta(microseconds=1)
                value = (
                    f'CASE WHEN f{g}."_VTS" >= DATEADD(microsecond, {-int(micros)},'
                    f' l."_LTS") THEN {value} END'
                )
            target = bound.columns[feature].arrow
            select.append(f'{select_expr(value, target)} AS "_O{len(select)}"')
    query = (
        f'WITH {", ".join(ctes)} SELECT l."_ROW", {", ".join(select)} FROM "L" AS l'
        f' {" ".join(joins)} QUALIFY ROW_NUMBER() OVER (PARTITION BY l."_ROW"'
        f' ORDER BY l."_ROW") = 1 ORDER BY l."_ROW"'
    )
    schema = pa.schema([pa.field("_ROW", pa.int64()), *fields])
    created = False
    try:
        created = _upload_labels(db, s, lab, labels, timestamp, entities, slot, what)
        cur = s.execute(query, what=what)
        try:
            batches = list(fetch_batches(cur, schema, 1 << 30, what))
        finally:
            cur.close()
    finally:
        if created:
            _drop(s, lab, what)
    result = pa.Table.from_batches(batches, schema=schema)
    if result.num_rows != labels.num_rows:
        raise StrataError(f"{what}: expected {labels.num_rows} rows, got {result.num_rows}")
    return result.drop_columns(["_ROW"])


def _upload_labels(
    db: SnowflakeDatabase,
    s: Session,
    lab: str,
    labels: pa.Table,
    timestamp: str,
    entities: list[str],
    slot: dict[str, str],
    what: str,
) -> bool:
    """Create and fill the labels table; ``True`` once it exists (it must then be dropped)."""
    columns = ['"_ROW" NUMBER(38,0)']
    arrays: list[pa.Array] = [ordinal(0, labels.num_rows)]
    names = ["_ROW"]
    for e in entities:
        type_sql = sf_type_for(labels.schema.field(e).type, f"labels column {e!r}")[1]
        columns.append(f"{quote(slot[e])} {type_sql}")
        arrays.append(physical_array(labels.column(e)))
        names.append(slot[e])
    columns.append('"_LTS" TIMESTAMP_NTZ(9)')
    arrays.append(_label_timestamps(labels.column(timestamp)))
    names.append("_LTS")
    batch = pa.RecordBatch.from_arrays(arrays, names=names)
    staged = upload(s, iter([batch]), lambda b, _n: b, db.config.stage_file_rows, f"{what}: labels")
    try:
        s.execute(f"CREATE TRANSIENT TABLE {lab} ({', '.join(columns)})", what=what)
        try:
            load_into(staged, lab, f"{what}: loading the labels")
        except BaseException:
            _drop(s, lab, what)
            raise
    finally:
        staged.remove()
    return True


def _drop(s: Session, table: str, what: str) -> None:
    try:
        s.execute(f"DROP TABLE IF EXISTS {table}", what=f"{what}: cleaning up")
    except StrataError:
        s.broken = True


def _view_cte(g: int, bound: Bound, wanted: list[str], slot: dict[str, str]) -> str:
    """``V<g>``: the view's rows that can match a label, in the join's column names."""
    v = bound.view
    ts = bound.columns[v.timestamp]
    vts = utc_ntz(f"s.{quote(ts.ident)}", ts.kind)
    ents = [(slot[e], f"s.{quote(bound.columns[e].ident)}") for e in v.entities]
    cols = [f"{expr} AS {quote(name)}" for name, expr in ents]
    cols.append(f'{vts} AS "_VTS"')
    cols += [f's.{quote(bound.columns[f].ident)} AS "_F{i}"' for i, f in enumerate(wanted)]
    present = " AND ".join(f"{expr} IS NOT NULL" for _, expr in ents)
    same = " AND ".join(f"l.{quote(name)} = {expr}" for name, expr in ents)
    return (
        f'"V{g}" AS (SELECT {", ".join(cols)} FROM ({bound.sql}) AS s WHERE {present}'
        f' AND EXISTS (SELECT 1 FROM "L" AS l WHERE {same})'
        f' AND {vts} <= (SELECT MAX("_LTS") FROM "L"))'
    )


def _match_cte(g: int, ents: list[str]) -> str:
    """``M<g>``: for each label row, the event time of its latest view row at or before it."""
    e = ", ".join(quote(x) for x in ents)
    window = (
        f'MAX(CASE WHEN "_K" = 0 THEN "_T" END) OVER (PARTITION BY {e} ORDER BY "_T", "_K"'
        " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    union = (
        f'SELECT {e}, "_LTS" AS "_T", 1 AS "_K", "_ROW" FROM "L"'
        f' UNION ALL SELECT {e}, "_VTS" AS "_T", 0 AS "_K", NULL AS "_ROW" FROM "V{g}"'
    )
    return (
        f'"M{g}" AS (SELECT "_ROW", "_MT" FROM (SELECT "_ROW", "_K", {window} AS "_MT"'
        f' FROM ({union}) AS u) AS w WHERE "_K" = 1)'
    )
