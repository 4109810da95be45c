"""The point-in-time join in GoogleSQL (BigQuery has no ``ASOF JOIN``).

The labels are staged as a table: ``_strataml_row`` (their position), the entity keys and
``_strataml_lts`` (the label time as a UTC instant). For each view, one window over the union of
the view's rows and the label rows, partitioned by the entity key and ordered by
``(time, feature rows before label rows)``, carries
``LAST_VALUE(STRUCT(event time, features...) IGNORE NULLS)`` -- the latest feature row at or
before each label:

* **ties**: a feature row at exactly the label's time sorts before the label, so it is used;
  among feature rows sharing a time, one of them (unspecified, as the protocol allows);
* **late data**: the window is computed from the rows as they are now, in event-time order,
  whatever order they were loaded in;
* **NULL values**: the whole feature row is carried as one STRUCT, so a NULL feature stays NULL
  (never replaced by an older non-null value); NULL entity keys never match; rows without an
  event time are ignored;
* **TTL**: ``TIMESTAMP_DIFF(label time, feature time, MICROSECOND) > ttl`` nulls the value with a
  ``CASE`` (the label row stays);
* **order**: the result is ordered by ``_strataml_row``.

Only the view rows whose keys occur among the labels enter the window (a join with the labels'
distinct keys), so the sort covers the entities asked for, not the whole view.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from strataml.errors import InvalidInput
from strataml.models import FeatureView
from strataml_bigquery.bqtypes import BQColumn, arrow_type
from strataml_bigquery.sql import infer_param, quote, scalar_param

__all__ = ["LTS", "ROW", "BoundView", "labels_table", "pit_sql", "utc_timestamp_sql"]

ROW = "_strataml_row"
LTS = "_strataml_lts"
_VTS = "_strataml_vts"
_T = "_strataml_t"
_K = "_strataml_k"
_F = "_strataml_f"


@dataclass(frozen=True)
class BoundView:
    """A view checked against BigQuery (a dry run): its definition with features resolved, the
    transpiled SQL, its result columns and BigQuery's estimate of the bytes it scans."""

    view: FeatureView
    sql: str
    columns: dict[str, BQColumn]
    estimate: int = 0


def utc_timestamp_sql(expr: str, bq_type: str) -> str:
    """``expr`` (TIMESTAMP, DATETIME or DATE) as a TIMESTAMP (DATETIME/DATE read as UTC)."""
    return expr if bq_type == "TIMESTAMP" else f"TIMESTAMP({expr})"


def labels_table(labels: pa.Table, timestamp: str, entities: Mapping[str, BQColumn]) -> pa.Table:
    """What the join stages: row number, entity keys (an untyped all-NULL key column takes the
    view's type) and the label time as a UTC instant (naive = UTC, dates = midnight)."""
    ts = labels.column(timestamp)
    if pa.types.is_date(ts.type):
        ts = ts.cast(pa.timestamp("us"))
    if ts.type.tz is None:
        ts = ts.cast(pa.timestamp(ts.type.unit, tz="UTC"))
    cols: dict[str, Any] = {ROW: pa.array(np.arange(labels.num_rows, dtype=np.int64))}
    for name, col in entities.items():
        arr = labels.column(name)
        cols[name] = pa.nulls(len(arr), arrow_type(col)) if pa.types.is_null(arr.type) else arr
    cols[LTS] = ts
    try:
        return pa.table(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"labels cannot be staged: {exc}") from exc


def pit_sql(
    labels: str,
    label_columns: Mapping[str, BQColumn],
    views: Sequence[BoundView],
    outputs: Sequence[Sequence[tuple[str, str]]],
) -> tuple[str, list[Any]]:
    """The join over the staged ``labels`` table (see the module docstring).

    ``label_columns`` are the staged entity columns, ``views[g]`` a view and ``outputs[g]``
    its ``(feature, output column)`` pairs. Returns ``(sql, parameters)``; the result has
    ``_strataml_row`` and then the outputs, ordered by ``_strataml_row``.
    """
    row, lts, t, k, f = quote(ROW), quote(LTS), quote(_T), quote(_K), quote(_F)
    params: list[Any] = []
    select = [f"l.{row}"]
    joins: list[str] = []
    for g, (bound, wanted) in enumerate(zip(views, outputs, strict=True)):
        v = bound.view
        ents = [quote(e) for e in v.entities]
        keys = [  # the label keys, cast to the view's types where they differ
            f"l.{quote(e)}"
            if label_columns[e].type == bound.columns[e].type
            else f"CAST(l.{quote(e)} AS {bound.columns[e].type})"
            for e in v.entities
        ]
        feats = list(dict.fromkeys(name for name, _ in wanted))
        vts = utc_timestamp_sql(f"s.{quote(v.timestamp)}", bound.columns[v.timestamp].type)
        struct = ", ".join(
            [f"{vts} AS {quote(_VTS)}", *(f"s.{quote(x)} AS {quote(x)}" for x in feats)]
        )
        on = " AND ".join(f"s.{e} = k.{e}" for e in ents)
        distinct = ", ".join(f"{key} AS {e}" for key, e in zip(keys, ents, strict=True))
        feature_rows = (
            f"SELECT {', '.join(f's.{e}' for e in ents)}, {vts} AS {t}, 0 AS {k}, "
            f"CAST(NULL AS INT64) AS {row}, STRUCT({struct}) AS {f} FROM ({bound.sql}) AS s "
            f"INNER JOIN (SELECT DISTINCT {distinct} FROM {labels} AS l) AS k ON {on} "
            f"WHERE {vts} IS NOT NULL"
        )
        label_rows = f"SELECT {', '.join(keys)}, l.{lts}, 1, l.{row}, NULL FROM {labels} AS l"
        window = (
            f"SELECT {row}, {k}, LAST_VALUE({f} IGNORE NULLS) OVER (PARTITION BY "
            f"{', '.join(ents)} ORDER BY {t}, {k} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT "
            f"ROW) AS {f} FROM ({feature_rows} UNION ALL {label_rows})"
        )
        joins.append(
            f"LEFT JOIN (SELECT {row}, {f} FROM ({window}) WHERE {k} = 1) AS g{g} "
            f"ON g{g}.{row} = l.{row}"
        )
        for feature, out in wanted:
            value = f"g{g}.{f}.{quote(feature)}"
            if v.ttl is not None:
                name = f"_ttl{g}"
                value = (
                    f"CASE WHEN TIMESTAMP_DIFF(l.{lts}, g{g}.{f}.{quote(_VTS)}, MICROSECOND) "
                    f"<= @{name} THEN {value} END"
                )
                if not any(getattr(p, "name", None) == name for p in params):
                    micros = v.ttl // dt.timedelta(microseconds=1)
                    params.append(scalar_param(name, infer_param(micros)))
            select.append(f"{value} AS {quote(out)}")
    sql = f"SELECT {', '.join(select)} FROM {labels} AS l {' '.join(joins)} ORDER BY l.{row}"
    return sql, params
