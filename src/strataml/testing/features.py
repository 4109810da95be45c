"""Contract tests for :class:`~strataml.protocols.FeatureStore`.

Subclass :class:`FeatureStoreTests` and provide a ``feature_store`` fixture yielding an empty,
isolated store. SQL in these tests is written in the canonical dialect
(:data:`~strataml.models.CANONICAL_DIALECT`) and transpiled with sqlglot to ``store.dialect``
where the test calls the :meth:`~strataml.protocols.FeatureStore.sql` escape hatch.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.errors import InvalidInput, NotFound, SchemaError
from strataml.models import CANONICAL_DIALECT, FeatureView
from strataml.testing._base import ContractBase, raises_strata

__all__ = [
    "FeatureCheckpointTests",
    "FeatureComputeTests",
    "FeatureEvolutionTests",
    "FeatureHistoricalInputTests",
    "FeatureHistoricalTests",
    "FeatureLoadTests",
    "FeatureRegisterTests",
    "FeatureSQLTests",
    "FeatureStoreTests",
    "FeatureTablesTests",
]

T0 = dt.datetime(2024, 1, 1)
TS = pa.timestamp("us")
Uid = Callable[[str], str]


def at(minutes: float) -> dt.datetime:
    """``T0`` plus some minutes (naive, i.e. UTC)."""
    return T0 + dt.timedelta(minutes=minutes)


def feature_rows(rows: Sequence[tuple[Any, float, Any]]) -> pa.Table:
    """``(id, minutes, x)`` rows as a feature source table ``id, ts, x``."""
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "ts": pa.array([at(r[1]) for r in rows], TS),
            "x": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


def label_rows(rows: Sequence[tuple[Any, float]], **extra: Sequence[Any]) -> pa.Table:
    """``(id, minutes)`` rows as labels ``id, ts`` plus extra columns."""
    cols: dict[str, Any] = {
        "id": pa.array([r[0] for r in rows], pa.int64()),
        "ts": pa.array([at(r[1]) for r in rows], TS),
    }
    cols.update({k: pa.array(list(v)) for k, v in extra.items()})
    return pa.table(cols)


def naive_utc(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def rows_of(data: pa.Table | pa.RecordBatchReader) -> list[dict[str, Any]]:
    table = data.read_all() if isinstance(data, pa.RecordBatchReader) else data
    return [{k: naive_utc(v) for k, v in row.items()} for row in table.to_pylist()]


def portable(store: Any, query: str) -> str:
    """``query`` (canonical dialect) in the store's dialect."""
    return str(sqlglot.transpile(query, read=CANONICAL_DIALECT, write=store.dialect)[0])


def count_rows(store: Any, table: str) -> int:
    out = store.sql(portable(store, f"SELECT count(*) AS n FROM {table}"))
    return int(out.column(0)[0].as_py())


def column(store: Any, table: str, name: str, order_by: str = "id") -> list[Any]:
    out = store.sql(portable(store, f"SELECT {name} FROM {table} ORDER BY {order_by}"))
    return [naive_utc(v) for v in out.column(0).to_pylist()]


def simple_view(store: Any, uid: Uid, rows: Sequence[tuple[Any, float, Any]], **kw: Any) -> str:
    """Load ``rows`` into table ``<view>_src``; register view ``SELECT id, ts, x FROM it``."""
    name = kw.pop("name", None) or uid("v")
    table = f"{name}_src"
    store.load(table, feature_rows(rows))
    store.register(
        FeatureView(name=name, sql=f"SELECT id, ts, x FROM {table}", entities=("id",), **kw)
    )
    return name


# ------------------------------------------------------------------------------------- load
class FeatureLoadTests(ContractBase):
    """``load``: Arrow in (table, reader, iterable of batches), append/replace, schema changes."""

    def test_load_table_returns_count_and_creates_table(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        assert feature_store.load(t, feature_rows([(1, 0, 1.0), (2, 1, 2.0)])) == 2
        assert t in feature_store.tables()
        assert column(feature_store, t, "x") == [1.0, 2.0]

    def test_load_record_batch_reader(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        data = feature_rows([(i, i, float(i)) for i in range(10)])
        reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches(max_chunksize=3))
        assert feature_store.load(t, reader) == 10
        assert count_rows(feature_store, t) == 10

    def test_load_iterable_of_batches(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        data = feature_rows([(i, i, float(i)) for i in range(7)])

        def batches() -> Iterator[pa.RecordBatch]:
            yield from data.to_batches(max_chunksize=2)

        assert feature_store.load(t, batches()) == 7
        assert column(feature_store, t, "id") == list(range(7))

    def test_append_adds_rows(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]))
        assert feature_store.load(t, feature_rows([(2, 0, 2.0), (3, 0, 3.0)])) == 2
        assert column(feature_store, t, "x") == [1.0, 2.0, 3.0]

    def test_replace_replaces_rows_and_schema(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        feature_store.load(t, feature_rows([(1, 0, 1.0), (2, 0, 2.0)]))
        n = feature_store.load(t, pa.table({"id": [9], "name": ["nine"]}), mode="replace")
        assert n == 1
        out = rows_of(feature_store.sql(portable(feature_store, f"SELECT * FROM {t}")))
        assert out == [{"id": 9, "name": "nine"}]

    def test_append_with_new_columns_adds_them(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]))
        more = feature_rows([(2, 1, 2.0)]).append_column("extra", pa.array(["b"]))
        assert feature_store.load(t, more) == 1
        assert column(feature_store, t, "extra") == [None, "b"]
        assert column(feature_store, t, "x") == [1.0, 2.0]

    def test_append_with_missing_columns_fills_nulls(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]))
        feature_store.load(t, pa.table({"id": pa.array([2], pa.int64())}))
        assert column(feature_store, t, "x") == [1.0, None]

    def test_incompatible_type_is_schema_error_table_unchanged(
        self, feature_store: Any, uid: Uid
    ) -> None:
        t = uid("t")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]))
        bad = pa.table({"id": pa.array(["not-a-number"]), "fresh": pa.array([1])})
        with raises_strata(SchemaError):
            feature_store.load(t, bad)
        assert count_rows(feature_store, t) == 1
        cols = feature_store.sql(portable(feature_store, f"SELECT * FROM {t}")).column_names
        assert "fresh" not in cols  # no new column left behind either

    def test_bad_table_name_and_mode(self, feature_store: Any, uid: Uid) -> None:
        with raises_strata(InvalidInput):
            feature_store.load("bad name; drop", feature_rows([(1, 0, 1.0)]))
        with raises_strata(InvalidInput):
            feature_store.load(uid("t"), feature_rows([(1, 0, 1.0)]), mode="upsert")
        assert uid("t") not in feature_store.tables()


# ------------------------------------------------------------------------------- checkpoint
class FeatureCheckpointTests(ContractBase):
    """``checkpoint=(key, value)`` is committed with the rows, or not at all."""

    def test_missing_checkpoint_is_none(self, feature_store: Any, uid: Uid) -> None:
        assert feature_store.checkpoint(uid("k")) is None

    def test_checkpoint_stored_with_load(self, feature_store: Any, uid: Uid) -> None:
        t, k = uid("t"), uid("k")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]), checkpoint=(k, "offset-1"))
        assert feature_store.checkpoint(k) == "offset-1"
        feature_store.load(t, feature_rows([(2, 0, 2.0)]), checkpoint=(k, "offset-2"))
        assert feature_store.checkpoint(k) == "offset-2"
        feature_store.load(t, feature_rows([(3, 0, 3.0)]))
        assert feature_store.checkpoint(k) == "offset-2"

    def test_failed_load_keeps_old_checkpoint(self, feature_store: Any, uid: Uid) -> None:
        t, k = uid("t"), uid("k")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]), checkpoint=(k, "a"))
        with raises_strata(SchemaError):
            feature_store.load(t, pa.table({"x": ["text"]}), checkpoint=(k, "b"))
        assert feature_store.checkpoint(k) == "a"
        assert count_rows(feature_store, t) == 1

    def test_stream_failing_midway_writes_nothing(self, feature_store: Any, uid: Uid) -> None:
        t, k = uid("t"), uid("k")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]), checkpoint=(k, "a"))
        good = feature_rows([(2, 0, 2.0)]).to_batches()[0]
        other = pa.record_batch({"other": pa.array([1])})

        def batches() -> Iterator[pa.RecordBatch]:
            yield good
            yield other  # disagrees with the first batch's schema

        with raises_strata(InvalidInput):
            feature_store.load(t, batches(), checkpoint=(k, "b"))
        assert count_rows(feature_store, t) == 1
        assert feature_store.checkpoint(k) == "a"


# ----------------------------------------------------------------------------------- tables
class FeatureTablesTests(ContractBase):
    def test_tables_lists_source_tables_sorted(self, feature_store: Any, uid: Uid) -> None:
        before = set(feature_store.tables())
        b, a = uid("b_tbl"), uid("a_tbl")
        feature_store.load(b, feature_rows([(1, 0, 1.0)]), checkpoint=(uid("k"), "1"))
        feature_store.load(a, feature_rows([(1, 0, 1.0)]))
        feature_store.register(
            FeatureView(name=uid("v"), sql=f"SELECT id, ts, x FROM {a}", entities=("id",))
        )
        listed = feature_store.tables()
        assert listed == sorted(listed)
        assert set(listed) - before == {a, b}  # no views, no internal catalog tables


# --------------------------------------------------------------------------------- register
class FeatureRegisterTests(ContractBase):
    """``register``/``get_view``/``views``: validation, resolution, versions, idempotency."""

    @pytest.fixture
    def source(self, feature_store: Any, uid: Uid) -> str:
        t = uid("src")
        data = feature_rows([(1, 0, 1.0), (2, 5, 2.0)]).append_column("y", pa.array([3, 4]))
        feature_store.load(t, data)
        return t

    def test_features_resolved_when_omitted(
        self, feature_store: Any, uid: Uid, source: str
    ) -> None:
        v = FeatureView(name=uid("v"), sql=f"SELECT y, ts, id, x FROM {source}", entities=("id",))
        got = feature_store.register(v)
        assert got.features == ("y", "x")
        assert feature_store.get_view(v.name).features == ("y", "x")

    def test_explicit_features_kept(self, feature_store: Any, uid: Uid, source: str) -> None:
        v = FeatureView(
            name=uid("v"), sql=f"SELECT * FROM {source}", entities=("id",), features=("x",)
        )
        assert feature_store.register(v).features == ("x",)

    def test_reregister_identical_is_noop(self, feature_store: Any, uid: Uid, source: str) -> None:
        name = uid("v")
        first = FeatureView(name=name, sql=f"SELECT id, ts, x FROM {source}", entities=("id",))
        feature_store.register(first)
        again = FeatureView(
            name=name,
            sql=f"select id,\n   ts , x  -- the same logic\nFROM {source} /* reformatted */",
            entities=("id",),
            description="whitespace and comments do not matter",
        )
        assert feature_store.register(again).features == ("x",)
        assert [(v.name, v.version) for v in feature_store.views() if v.name == name] == [(name, 1)]

    def test_changed_sql_same_version_is_schema_error(
        self, feature_store: Any, uid: Uid, source: str
    ) -> None:
        name = uid("v")
        feature_store.register(
            FeatureView(name=name, sql=f"SELECT id, ts, x FROM {source}", entities=("id",))
        )
        changed = FeatureView(
            name=name, sql=f"SELECT id, ts, x * 2 AS x FROM {source}", entities=("id",)
        )
        with raises_strata(SchemaError):
            feature_store.register(changed)
        assert feature_store.get_view(name).sql == f"SELECT id, ts, x FROM {source}"

    def test_versions_coexist(self, feature_store: Any, uid: Uid, source: str) -> None:
        name = uid("v")
        v1 = FeatureView(name=name, sql=f"SELECT id, ts, x FROM {source}", entities=("id",))
        v2 = FeatureView(
            name=name, version=2, sql=f"SELECT id, ts, x * 2 AS x FROM {source}", entities=("id",)
        )
        feature_store.register(v1)
        feature_store.register(v2)
        assert feature_store.get_view(name).version == 2
        assert feature_store.get_view(name, 1).sql == v1.sql
        assert feature_store.get_view(name, 2).sql == v2.sql

    def test_views_sorted_by_name_then_version(
        self, feature_store: Any, uid: Uid, source: str
    ) -> None:
        sql = f"SELECT id, ts, x FROM {source}"
        b, a = uid("b"), uid("a")
        for name, version in [(b, 2), (a, 1), (b, 1)]:
            feature_store.register(
                FeatureView(name=name, version=version, sql=sql, entities=("id",))
            )
        got = [(v.name, v.version) for v in feature_store.views() if v.name in (a, b)]
        assert got == [(a, 1), (b, 1), (b, 2)]

    @pytest.mark.parametrize(
        "sql",
        [
            "SELEC id, ts FROM {t}",  # does not parse
            "SELECT id, ts, x FROM {t}_missing",  # reads a missing table
            "SELECT id, ts, no_such_column FROM {t}",  # reads a missing column
            "DROP TABLE {t}",  # not a query
        ],
    )
    def test_bad_sql_is_schema_error(
        self, feature_store: Any, uid: Uid, source: str, sql: str
    ) -> None:
        name = uid("v")
        with raises_strata(SchemaError):
            feature_store.register(
                FeatureView(name=name, sql=sql.format(t=source), entities=("id",))
            )
        with raises_strata(NotFound):
            feature_store.get_view(name)
        assert count_rows(feature_store, source) == 2

    @pytest.mark.parametrize(
        ("sql", "kw"),
        [
            ("SELECT id AS user_id, ts, x FROM {t}", {"entities": ("id",)}),
            ("SELECT id, ts AS event_time, x FROM {t}", {"entities": ("id",)}),
            ("SELECT id, ts, x FROM {t}", {"entities": ("id",), "features": ("x", "nope")}),
            ("SELECT id, x, y FROM {t}", {"entities": ("id",), "timestamp": "x"}),
        ],
        ids=["no-entity", "no-timestamp", "no-feature", "timestamp-not-a-time"],
    )
    def test_view_lacking_columns_is_schema_error(
        self, feature_store: Any, uid: Uid, source: str, sql: str, kw: dict[str, Any]
    ) -> None:
        name = uid("v")
        with raises_strata(SchemaError):
            feature_store.register(FeatureView(name=name, sql=sql.format(t=source), **kw))
        assert all(v.name != name for v in feature_store.views())

    def test_unknown_view_or_version_not_found(
        self, feature_store: Any, uid: Uid, source: str
    ) -> None:
        name = uid("v")
        with raises_strata(NotFound):
            feature_store.get_view(name)
        feature_store.register(
            FeatureView(name=name, sql=f"SELECT id, ts, x FROM {source}", entities=("id",))
        )
        with raises_strata(NotFound):
            feature_store.get_view(name, 2)


# ---------------------------------------------------------------------------------- compute
class FeatureComputeTests(ContractBase):
    """``compute``: all rows, ``[start, end)`` windows, bounded batches."""

    ROWS = [(1, 0, 1.0), (1, 10, 2.0), (2, 10, 3.0), (2, 20, 4.0), (3, 30, 5.0)]

    def test_compute_all_rows(self, feature_store: Any, uid: Uid) -> None:
        name = simple_view(feature_store, uid, self.ROWS)
        reader = feature_store.compute(name)
        assert isinstance(reader, pa.RecordBatchReader)
        got = sorted((r["id"], r["ts"], r["x"]) for r in rows_of(reader))
        assert got == sorted((i, at(m), x) for i, m, x in self.ROWS)

    def test_compute_window_is_half_open(self, feature_store: Any, uid: Uid) -> None:
        name = simple_view(feature_store, uid, self.ROWS)
        got = rows_of(feature_store.compute(name, start=at(10), end=at(30)))
        assert sorted(r["x"] for r in got) == [2.0, 3.0, 4.0]
        aware = at(10).replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=-5)))
        got = rows_of(feature_store.compute(name, start=aware))
        assert sorted(r["x"] for r in got) == [2.0, 3.0, 4.0, 5.0]
        assert rows_of(feature_store.compute(name, end=at(0))) == []

    def test_compute_batch_size_bound(self, feature_store: Any, uid: Uid) -> None:
        rows = [(i, i, float(i)) for i in range(50)]
        name = simple_view(feature_store, uid, rows)
        batches = list(feature_store.compute(name, batch_size=7))
        assert all(b.num_rows <= 7 for b in batches)
        assert sum(b.num_rows for b in batches) == 50

    def test_compute_by_definition_and_version(self, feature_store: Any, uid: Uid) -> None:
        name = simple_view(feature_store, uid, self.ROWS)
        v1 = feature_store.get_view(name)
        feature_store.register(
            FeatureView(
                name=name,
                version=2,
                sql=f"SELECT id, ts, x + 100 AS x FROM {name}_src",
                entities=("id",),
            )
        )
        assert max(r["x"] for r in rows_of(feature_store.compute(name))) == 105.0
        assert max(r["x"] for r in rows_of(feature_store.compute(v1))) == 5.0

    def test_compute_latest_per_entity_ordered_by_key(self, feature_store: Any, uid: Uid) -> None:
        rows = [*self.ROWS, (3, 5, 0.5), (2, 15, 3.5)]
        name = simple_view(feature_store, uid, rows)
        got = [
            (r["id"], r["ts"], r["x"]) for r in rows_of(feature_store.compute(name, latest=True))
        ]
        assert got == [(1, at(10), 2.0), (2, at(20), 4.0), (3, at(30), 5.0)]
        window = rows_of(feature_store.compute(name, end=at(20), latest=True))
        assert [(r["id"], r["x"]) for r in window] == [(1, 2.0), (2, 3.5), (3, 0.5)]
        many = [(i % 13, i, float(i)) for i in range(60)]
        other = simple_view(feature_store, uid, many, name=uid("w"))
        batches = list(feature_store.compute(other, latest=True, batch_size=4))
        assert all(b.num_rows <= 4 for b in batches)
        ids = [r["id"] for b in batches for r in b.to_pylist()]
        assert ids == list(range(13))
        assert [r["x"] for b in batches for r in b.to_pylist()] == [
            float(max(i for i in range(60) if i % 13 == k)) for k in range(13)
        ]

    def test_compute_unknown_view_not_found(self, feature_store: Any, uid: Uid) -> None:
        with raises_strata(NotFound):
            feature_store.compute(uid("nope"))


# ------------------------------------------------------------------------------- historical
class FeatureHistoricalTests(ContractBase):
    """Point-in-time correctness of ``historical``."""

    def test_latest_value_at_or_before_label(self, feature_store: Any, uid: Uid) -> None:
        v = simple_view(feature_store, uid, [(1, 0, 1.0), (1, 10, 2.0), (1, 20, 3.0)])
        labels = label_rows([(1, 5), (1, 10), (1, 19.99), (1, 25), (1, -1)])
        out = feature_store.historical(labels, [f"{v}:x"])
        # 10 == 10: the equal timestamp is included; 19.99 < 20: never the future value
        assert out.column("x").to_pylist() == [1.0, 2.0, 2.0, 3.0, None]

    def test_late_arriving_rows_are_honoured(self, feature_store: Any, uid: Uid) -> None:
        t, v = uid("src"), uid("v")
        feature_store.load(t, feature_rows([(1, 0, 1.0), (1, 30, 3.0)]))
        feature_store.register(
            FeatureView(name=v, sql=f"SELECT id, ts, x FROM {t}", entities=("id",))
        )
        labels = label_rows([(1, 20)])
        assert feature_store.historical(labels, [f"{v}:x"]).column("x").to_pylist() == [1.0]
        feature_store.load(t, feature_rows([(1, 15, 2.0)]))  # event time before loaded rows
        assert feature_store.historical(labels, [f"{v}:x"]).column("x").to_pylist() == [2.0]

    def test_ttl_expiry_nulls_but_keeps_rows(self, feature_store: Any, uid: Uid) -> None:
        v = simple_view(
            feature_store, uid, [(1, 0, 1.0), (2, 0, 2.0)], ttl=dt.timedelta(minutes=10)
        )
        labels = label_rows([(1, 10), (2, 10.5), (1, 5), (2, 60)])
        out = feature_store.historical(labels, [f"{v}:x"])
        assert out.num_rows == 4
        assert out.column("x").to_pylist() == [1.0, None, 1.0, None]

    def test_every_label_once_in_order_with_columns(self, feature_store: Any, uid: Uid) -> None:
        v = simple_view(feature_store, uid, [(1, 0, 1.0), (2, 0, 2.0), (1, 10, 3.0)])
        keys = [(2, 5), (1, 20), (9, 5), (1, 5), (2, 5), (1, 20)]
        labels = label_rows(keys, label=[10, 20, 30, 40, 50, 60], note=list("abcdef"))
        out = feature_store.historical(labels, [f"{v}:x"])
        assert out.column_names == ["id", "ts", "label", "note", "x"]
        assert out.select(["id", "ts", "label", "note"]).to_pylist() == labels.to_pylist()
        assert out.column("x").to_pylist() == [2.0, 3.0, None, 1.0, 2.0, 3.0]

    def test_two_views_in_one_call(self, feature_store: Any, uid: Uid) -> None:
        a = simple_view(feature_store, uid, [(1, 0, 1.0)], name=uid("a"))
        t = uid("src2")
        feature_store.load(
            t,
            pa.table(
                {
                    "id": pa.array([1, 1], pa.int64()),
                    "at": pa.array([at(0), at(10)], TS),
                    "clicks": pa.array([5, 7], pa.int64()),
                }
            ),
        )
        b = uid("b")
        feature_store.register(
            FeatureView(
                name=b, sql=f"SELECT id, at, clicks FROM {t}", entities=("id",), timestamp="at"
            )
        )
        out = feature_store.historical(label_rows([(1, 5), (1, 15)]), [f"{b}:clicks", f"{a}:x"])
        assert out.column_names == ["id", "ts", "clicks", "x"]
        assert out.column("clicks").to_pylist() == [5, 7]
        assert out.column("x").to_pylist() == [1.0, 1.0]

    def test_multi_column_entity_key(self, feature_store: Any, uid: Uid) -> None:
        t, v = uid("src"), uid("v")
        feature_store.load(
            t,
            pa.table(
                {
                    "user": pa.array([1, 1, 2], pa.int64()),
                    "item": ["a", "b", "a"],
                    "ts": pa.array([at(0), at(0), at(0)], TS),
                    "score": [1.0, 2.0, 3.0],
                }
            ),
        )
        feature_store.register(
            FeatureView(name=v, sql=f"SELECT * FROM {t}", entities=("user", "item"))
        )
        labels = pa.table(
            {
                "user": pa.array([2, 1, 1, 2], pa.int64()),
                "item": ["a", "b", "a", "b"],
                "ts": pa.array([at(1)] * 4, TS),
            }
        )
        out = feature_store.historical(labels, [f"{v}:score"])
        assert out.column("score").to_pylist() == [3.0, 2.0, 1.0, None]

    def test_versioned_references(self, feature_store: Any, uid: Uid) -> None:
        t, v = uid("src"), uid("v")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]))
        feature_store.register(
            FeatureView(name=v, sql=f"SELECT id, ts, x FROM {t}", entities=("id",))
        )
        feature_store.register(
            FeatureView(
                name=v, version=2, sql=f"SELECT id, ts, x * 10 AS x FROM {t}", entities=("id",)
            )
        )
        labels = label_rows([(1, 1)])
        assert feature_store.historical(labels, [f"{v}@1:x"]).column("x").to_pylist() == [1.0]
        assert feature_store.historical(labels, [f"{v}:x"]).column("x").to_pylist() == [10.0]
        assert feature_store.historical(labels, [f"{v}@2:x"]).column("x").to_pylist() == [10.0]

    def test_star_and_full_names(self, feature_store: Any, uid: Uid) -> None:
        t, v = uid("src"), uid("v")
        feature_store.load(t, feature_rows([(1, 0, 1.0)]).append_column("y", pa.array(["k"])))
        feature_store.register(FeatureView(name=v, sql=f"SELECT * FROM {t}", entities=("id",)))
        labels = label_rows([(1, 1)])
        out = feature_store.historical(labels, [f"{v}:*"])
        assert out.column_names == ["id", "ts", "x", "y"]
        out = feature_store.historical(labels, [f"{v}:y", f"{v}:*"], full_names=True)
        assert out.column_names == ["id", "ts", f"{v}__y", f"{v}__x"]
        assert out.to_pylist()[0][f"{v}__y"] == "k"

    def test_name_clash_needs_full_names(self, feature_store: Any, uid: Uid) -> None:
        a = simple_view(feature_store, uid, [(1, 0, 1.0)], name=uid("a"))
        b = simple_view(feature_store, uid, [(1, 0, 2.0)], name=uid("b"))
        labels = label_rows([(1, 1)])
        with raises_strata(InvalidInput):
            feature_store.historical(labels, [f"{a}:x", f"{b}:x"])
        out = feature_store.historical(labels, [f"{a}:x", f"{b}:x"], full_names=True)
        assert out.select([f"{a}__x", f"{b}__x"]).to_pylist() == [{f"{a}__x": 1.0, f"{b}__x": 2.0}]

    def test_tz_aware_timestamps_compare_in_utc(self, feature_store: Any, uid: Uid) -> None:
        t, v = uid("src"), uid("v")
        ny = pa.timestamp("us", tz="America/New_York")
        feature_store.load(
            t,
            pa.table(
                {  # 09:00 and 10:00 UTC, stored with a New York zone
                    "id": pa.array([1, 1], pa.int64()),
                    "ts": pa.array([at(9 * 60), at(10 * 60)], TS)
                    .cast(pa.timestamp("us", tz="UTC"))
                    .cast(ny),
                    "x": [9.0, 10.0],
                }
            ),
        )
        feature_store.register(
            FeatureView(name=v, sql=f"SELECT id, ts, x FROM {t}", entities=("id",))
        )
        tokyo = dt.timezone(dt.timedelta(hours=9))
        labels = pa.table(
            {
                "id": pa.array([1, 1], pa.int64()),
                # 18:30+09:00 is 09:30 UTC; 19:30+09:00 is 10:30 UTC
                "ts": pa.array(
                    [
                        dt.datetime(2024, 1, 1, 18, 30, tzinfo=tokyo),
                        dt.datetime(2024, 1, 1, 19, 30, tzinfo=tokyo),
                    ],
                    pa.timestamp("us", tz="Asia/Tokyo"),
                ),
            }
        )
        out = feature_store.historical(labels, [f"{v}:x"])
        assert out.column("x").to_pylist() == [9.0, 10.0]
        assert [naive_utc(x) for x in out.column("ts").to_pylist()] == [at(570), at(630)]

    def test_time_range_without_labels(self, feature_store: Any, uid: Uid) -> None:
        a = simple_view(feature_store, uid, [(1, 0, 1.0), (1, 10, 2.0), (2, 5, 3.0), (2, 30, 4.0)])
        b = simple_view(
            feature_store, uid, [(1, 2, 10.0), (2, 1, 20.0), (2, 20, 30.0)], name=uid("b")
        )
        got = feature_store.historical(
            None, [f"{a}:x", f"{b}:x"], start=at(5), end=at(30), full_names=True
        )
        rows = sorted(
            (r["id"], naive_utc(r["ts"]), r[f"{a}__x"], r[f"{b}__x"]) for r in got.to_pylist()
        )
        assert rows == [(1, at(10), 2.0, 10.0), (2, at(5), 3.0, 20.0)]
        with raises_strata(InvalidInput):
            feature_store.historical(None, [f"{a}:x"], start=at(5))
        with raises_strata(InvalidInput):
            feature_store.historical(label_rows([(1, 10)]), [f"{a}:x"], start=at(0), end=at(9))

    def test_empty_labels(self, feature_store: Any, uid: Uid) -> None:
        v = simple_view(feature_store, uid, [(1, 0, 1.0)])
        out = feature_store.historical(label_rows([]), [f"{v}:x"])
        assert out.num_rows == 0
        assert out.column_names == ["id", "ts", "x"]

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        feats=st.lists(
            st.tuples(st.integers(1, 3), st.integers(0, 20)), min_size=1, max_size=25, unique=True
        ),
        labels=st.lists(st.tuples(st.integers(1, 4), st.integers(-2, 23)), max_size=25),
        split=st.integers(0, 25),
    )
    def test_point_in_time_matches_reference(
        self,
        feature_store: Any,
        uid: Uid,
        feats: list[tuple[int, int]],
        labels: list[tuple[int, int]],
        split: int,
    ) -> None:
        """Random data against a brute-force reference; data arrives in two loads, the second
        possibly holding event times earlier than the first (late arrivals)."""
        t, plain, ttl = uid("src"), uid("plain"), uid("ttl")
        rows = [(e, m, float(i)) for i, (e, m) in enumerate(feats)]
        feature_store.load(t, feature_rows(rows[:split] or rows[:1]), mode="replace")
        if rows[split:] and split:
            feature_store.load(t, feature_rows(rows[split:]))
        sql = f"SELECT id, ts, x FROM {t}"
        feature_store.register(FeatureView(name=plain, sql=sql, entities=("id",)))
        feature_store.register(
            FeatureView(name=ttl, sql=sql, entities=("id",), ttl=dt.timedelta(minutes=3))
        )
        out = feature_store.historical(
            label_rows(labels), [f"{plain}:x", f"{ttl}:x"], full_names=True
        )
        loaded = rows if split else rows[:1]

        def expect(entity: int, minute: int, ttl_minutes: int | None) -> float | None:
            seen = [(m, x) for e, m, x in loaded if e == entity and m <= minute]
            if not seen:
                return None
            m, x = max(seen)
            return None if ttl_minutes is not None and minute - m > ttl_minutes else x

        assert out.column(f"{plain}__x").to_pylist() == [expect(e, m, None) for e, m in labels]
        assert out.column(f"{ttl}__x").to_pylist() == [expect(e, m, 3) for e, m in labels]
        assert out.select(["id", "ts"]).to_pylist() == label_rows(labels).to_pylist()


class FeatureHistoricalInputTests(ContractBase):
    """``historical`` accepts pandas and polars labels and rejects bad input with typed errors."""

    def test_pandas_labels(self, feature_store: Any, uid: Uid) -> None:
        pd = pytest.importorskip("pandas")
        v = simple_view(feature_store, uid, [(1, 0, 1.0), (1, 10, 2.0)])
        labels = pd.DataFrame({"id": [1, 1, 2], "ts": [at(5), at(10), at(10)], "y": [0, 1, 0]})
        out = feature_store.historical(labels, [f"{v}:x"])
        assert isinstance(out, pa.Table)
        assert out.column("x").to_pylist() == [1.0, 2.0, None]
        assert out.column("y").to_pylist() == [0, 1, 0]

    def test_polars_labels(self, feature_store: Any, uid: Uid) -> None:
        pl = pytest.importorskip("polars")
        v = simple_view(feature_store, uid, [(1, 0, 1.0), (1, 10, 2.0)])
        labels = pl.DataFrame({"id": [1, 1], "ts": [at(9), at(11)]})
        out = feature_store.historical(labels, [f"{v}:x"])
        assert out.column("x").to_pylist() == [1.0, 2.0]

    def test_labels_missing_timestamp_or_entity(self, feature_store: Any, uid: Uid) -> None:
        v = simple_view(feature_store, uid, [(1, 0, 1.0)])
        labels = label_rows([(1, 1)])
        with raises_strata(InvalidInput):
            feature_store.historical(labels.drop_columns(["ts"]), [f"{v}:x"])
        with raises_strata(InvalidInput):
            feature_store.historical(labels, [f"{v}:x"], timestamp="event_time")
        with raises_strata(InvalidInput):
            feature_store.historical(labels.drop_columns(["id"]), [f"{v}:x"])

    def test_unknown_view_version_or_feature(self, feature_store: Any, uid: Uid) -> None:
        v = simple_view(feature_store, uid, [(1, 0, 1.0)])
        labels = label_rows([(1, 1)])
        with raises_strata(NotFound):
            feature_store.historical(labels, [f"{uid('nope')}:x"])
        with raises_strata(NotFound):
            feature_store.historical(labels, [f"{v}@7:x"])
        with raises_strata(NotFound):
            feature_store.historical(labels, [f"{v}:nope"])

    @pytest.mark.parametrize("ref", ["no_colon", "a:b:c", "v@x:f", ":f", "v:", "v@1", "v:f-g"])
    def test_bad_reference_syntax(self, feature_store: Any, uid: Uid, ref: str) -> None:
        simple_view(feature_store, uid, [(1, 0, 1.0)])
        with raises_strata(InvalidInput):
            feature_store.historical(label_rows([(1, 1)]), [ref])


# -------------------------------------------------------------------------------------- sql
class FeatureSQLTests(ContractBase):
    """The ``sql`` escape hatch: parameters bound, Arrow out, strataml errors."""

    def test_sql_binds_parameters(self, feature_store: Any, uid: Uid) -> None:
        t = uid("t")
        feature_store.load(t, pa.table({"name": ["O'Brien", "x"], "n": [1, 2]}))
        query = portable(feature_store, f"SELECT n FROM {t} WHERE name = ?")
        out = feature_store.sql(query, ["O'Brien"])
        assert isinstance(out, pa.Table)
        assert out.column(0).to_pylist() == [1]

    def test_bad_sql_is_schema_error(self, feature_store: Any) -> None:
        with raises_strata(SchemaError):
            feature_store.sql("SELEC 1 FROM")


class FeatureEvolutionTests(ContractBase):
    """The registry under concurrent writers, additive schema evolution, lineage."""

    @pytest.fixture
    def evo_source(self, feature_store: Any, uid: Uid) -> str:
        t = uid("src")
        feature_store.load(t, feature_rows([(1, 0, 1.0), (2, 5, 2.0), (1, 9, 4.0)]))
        return t

    def test_concurrent_registers_lose_nothing(
        self, feature_store: Any, uid: Uid, evo_source: str
    ) -> None:
        shared = FeatureView(
            name=uid("shared"), sql=f"SELECT id, ts, x FROM {evo_source}", entities=("id",)
        )
        names = [uid(f"c{i}") for i in range(8)]
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                feature_store.register(shared)
                feature_store.register(
                    FeatureView(
                        name=names[i],
                        sql=f"SELECT id, ts, x + {i} AS x FROM {evo_source}",
                        entities=("id",),
                    )
                )
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        registered = {(v.name, v.version): v for v in feature_store.views()}
        assert (shared.name, 1) in registered
        for i, name in enumerate(names):
            view = registered[(name, 1)]
            assert str(i) in view.sql
            assert feature_store.get_view(name).fingerprint == view.fingerprint

    def test_conflicting_concurrent_registers_one_wins(
        self, feature_store: Any, uid: Uid, evo_source: str
    ) -> None:
        name = uid("race")
        outcomes: list[Any] = []

        def work(i: int) -> None:
            view = FeatureView(
                name=name,
                sql=f"SELECT id, ts, x * {i + 2} AS x FROM {evo_source}",
                entities=("id",),
            )
            try:
                outcomes.append(feature_store.register(view))
            except SchemaError as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [o for o in outcomes if isinstance(o, FeatureView)]
        assert len(won) == 1, outcomes
        assert sum(isinstance(o, SchemaError) for o in outcomes) == 5
        assert feature_store.get_view(name).fingerprint == won[0].fingerprint

    def test_adding_columns_is_allowed_within_a_version(
        self, feature_store: Any, uid: Uid, evo_source: str
    ) -> None:
        name = uid("evo")
        old = FeatureView(name=name, sql=f"SELECT id, ts, x FROM {evo_source}", entities=("id",))
        v1 = feature_store.register(old)
        assert v1.features == ("x",)
        wider = FeatureView(
            name=name,
            sql=f"SELECT id, ts, x, x * 2 AS doubled FROM {evo_source} -- now with more",
            entities=("id",),
        )
        evolved = feature_store.register(wider)
        assert evolved.version == 1
        assert evolved.features == ("x", "doubled")
        assert feature_store.get_view(name).features == ("x", "doubled")
        assert [v.version for v in feature_store.views() if v.name == name] == [1]
        rows = rows_of(feature_store.compute(name))
        assert sorted(r["doubled"] for r in rows) == [2.0, 4.0, 8.0]
        # code still holding the old definition keeps computing it
        assert sorted(rows_of(feature_store.compute(v1))[0]) == ["id", "ts", "x"]
        got = feature_store.historical(label_rows([(1, 10)]), [f"{name}:doubled"])
        assert got.column("doubled").to_pylist() == [8.0]

    @pytest.mark.parametrize(
        "change",
        [
            "SELECT id, ts, x FROM {t}",  # removes a column
            "SELECT id, ts, x, x + 2 AS z FROM {t}",  # changes how one is computed
            "SELECT id, ts, x, x + 1 AS renamed FROM {t}",  # renames one
            "SELECT id, ts, x, x + 1 AS z, x * 3 AS w FROM {t} WHERE x > 1",  # adds a filter
        ],
    )
    def test_other_changes_need_a_new_version(
        self, feature_store: Any, uid: Uid, evo_source: str, change: str
    ) -> None:
        name = uid("evo")
        base = FeatureView(
            name=name, sql=f"SELECT id, ts, x, x + 1 AS z FROM {evo_source}", entities=("id",)
        )
        registered = feature_store.register(base)
        with raises_strata(SchemaError):
            feature_store.register(
                FeatureView(name=name, sql=change.format(t=evo_source), entities=("id",))
            )
        assert feature_store.get_view(name) == registered
        v2 = feature_store.register(
            FeatureView(name=name, version=2, sql=change.format(t=evo_source), entities=("id",))
        )
        assert feature_store.get_view(name).version == v2.version == 2
        assert feature_store.get_view(name, 1) == registered

    def test_lineage_lists_the_sources(self, feature_store: Any, uid: Uid, evo_source: str) -> None:
        other = uid("other")
        feature_store.load(other, feature_rows([(1, 0, 5.0)]))
        view = feature_store.register(
            FeatureView(
                name=uid("lin"),
                sql=(
                    f"WITH a AS (SELECT id, ts, x FROM {evo_source}) "
                    f"SELECT a.id, a.ts, a.x, o.x AS ox FROM a JOIN {other} o ON a.id = o.id"
                ),
                entities=("id",),
            )
        )
        assert view.sources == tuple(sorted([evo_source, other]))
        listed = {v.name: v for v in feature_store.views()}
        assert listed[view.name].sources == view.sources


class FeatureStoreTests(
    FeatureLoadTests,
    FeatureCheckpointTests,
    FeatureTablesTests,
    FeatureRegisterTests,
    FeatureEvolutionTests,
    FeatureComputeTests,
    FeatureHistoricalTests,
    FeatureHistoricalInputTests,
    FeatureSQLTests,
):
    """The whole :class:`~strataml.protocols.FeatureStore` contract."""
