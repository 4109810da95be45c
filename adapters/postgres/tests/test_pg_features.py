"""The feature store contract suite, plus PostgreSQL-specific behaviour, on a real server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from strataml.errors import InvalidInput, SchemaError
from strataml.models import FeatureView
from strataml.testing.features import FeatureStoreTests
from strataml_postgres.features import PostgresFeatureStore
from strataml_postgres.pool import PgDatabase


class TestPostgresFeaturesContract(FeatureStoreTests):
    @pytest.fixture
    def feature_store(self, pg_db: PgDatabase) -> Iterator[PostgresFeatureStore]:
        store = PostgresFeatureStore(pg_db)
        yield store
        store.close()


# --------------------------------------------------------------------- PostgreSQL specifics
T0 = dt.datetime(2024, 1, 1)


def _src(n: int = 3, **cols: pa.Array) -> pa.Table:
    base = {
        "id": pa.array(range(n), pa.int64()),
        "ts": pa.array([T0 + dt.timedelta(minutes=i) for i in range(n)], pa.timestamp("us")),
    }
    return pa.table({**base, **cols})


def test_append_widens_only_losslessly(pg_db: PgDatabase) -> None:
    store = PostgresFeatureStore(pg_db)
    store.load("t", _src(1, small=pa.array([1], pa.int32()), x=pa.array([1.0])))
    # int16 into integer, int32 into double precision, a date into a timestamp: fine
    widened = pa.table(
        {
            "small": pa.array([2], pa.int16()),
            "x": pa.array([2], pa.int32()),
            "ts": pa.array([dt.date(2024, 1, 2)]),
            "ID": pa.array([5], pa.int64()),  # matched case-insensitively
        }
    )
    assert store.load("t", widened) == 1
    rows = store.sql("SELECT id, ts, small, x FROM t ORDER BY id").to_pylist()
    assert rows[-1] == {"id": 5, "ts": dt.datetime(2024, 1, 2), "small": 2, "x": 2.0}
    for bad in (
        pa.table({"small": pa.array([2**40], pa.int64())}),  # bigint into integer
        pa.table({"id": pa.array([1.5])}),  # double into bigint
        pa.table({"ts": pa.array(["2024-01-01"])}),  # text into timestamp
    ):
        with pytest.raises(SchemaError):
            store.load("t", bad)
    assert store.sql("SELECT count(*) AS n FROM t").column(0).to_pylist() == [2]


def test_values_postgres_cannot_store_are_rejected(pg_db: PgDatabase) -> None:
    store = PostgresFeatureStore(pg_db)
    store.load("t", _src(1), checkpoint=("k", "1"))
    for bad in (
        _src(1, name=pa.array(["nul\x00byte"])),
        pa.table({"ts": pa.array([1_700_000_000_000_000_001], pa.timestamp("ns"))}),
    ):
        with pytest.raises(InvalidInput):
            store.load("t", bad, checkpoint=("k", "2"))
    assert store.checkpoint("k") == "1"
    assert store.sql("SELECT count(*) AS n FROM t").column(0).to_pylist() == [1]


def test_tables_hide_other_stores_tables_in_the_schema(pg_db: PgDatabase) -> None:
    from strataml_postgres.ingest import PostgresIngestStore
    from strataml_postgres.training import PostgresTrainingSource

    store = PostgresFeatureStore(pg_db)
    PostgresIngestStore(pg_db).write("events", {"v": 1})
    PostgresTrainingSource(pg_db).write("ds", pa.table({"v": [1]}))
    store.load("mine", _src())
    assert store.tables() == ["mine"]


def test_view_sql_is_transpiled_from_the_canonical_dialect(pg_db: PgDatabase) -> None:
    store = PostgresFeatureStore(pg_db)
    store.load("events", _src(6, user=pa.array([1, 1, 2, 2, 2, 3], pa.int64())))
    view = FeatureView(
        name="latest",
        sql=(
            "SELECT user, ts, id::DOUBLE AS last_id, strftime(ts, '%Y-%m') AS ym FROM events "
            "QUALIFY row_number() OVER (PARTITION BY user ORDER BY ts DESC) = 1"
        ),
        entities=("user",),
    )
    assert store.register(view).features == ("last_id", "ym")
    got = store.compute("latest").read_all().sort_by("user")
    assert got.column("last_id").to_pylist() == [1.0, 4.0, 5.0]
    assert got.column("ym").to_pylist() == ["2024-01"] * 3
    assert got.schema.field("last_id").type == pa.float64()


def test_aggregates_read_as_floats(pg_db: PgDatabase) -> None:
    store = PostgresFeatureStore(pg_db)
    store.load("events", _src(4, user=pa.array([1, 1, 2, 2], pa.int64())))
    store.register(
        FeatureView(
            name="agg",
            sql="SELECT user, max(ts) AS ts, avg(id) AS mean_id, sum(id) AS total FROM events "
            "GROUP BY user",
            entities=("user",),
        )
    )
    labels = pa.table(
        {"user": pa.array([2, 1], pa.int64()), "ts": pa.array([T0.replace(hour=1)] * 2)}
    )
    out = store.historical(labels, ["agg:*"])
    assert out.column("mean_id").to_pylist() == [2.5, 0.5]
    assert out.column("total").to_pylist() == [5.0, 1.0]


def test_historical_date_labels_and_string_entities(pg_db: PgDatabase) -> None:
    store = PostgresFeatureStore(pg_db)
    store.load(
        "profile",
        pa.table(
            {
                "who": ["ann", "bob", "ann"],
                "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 3)]),
                "score": [1.0, 2.0, 3.0],
            }
        ),
    )
    store.register(
        FeatureView(
            name="prof",
            sql="SELECT who, day, score FROM profile",
            entities=("who",),
            timestamp="day",
            ttl=dt.timedelta(days=1),
        )
    )
    labels = pa.table(
        {
            "who": ["ann", "ann", "bob", "cat", "bob"],
            "ts": pa.array(
                [
                    dt.date(2024, 1, 2),
                    dt.date(2024, 1, 3),
                    dt.date(2024, 1, 2),
                    dt.date(2024, 1, 2),
                    dt.date(2024, 1, 3),
                ]
            ),
        }
    )
    out = store.historical(labels, ["prof:score"])
    assert out.column("score").to_pylist() == [1.0, 3.0, 2.0, None, None]
    with pytest.raises(InvalidInput):  # a number compared with text
        store.historical(labels.set_column(0, "who", pa.array([1, 2, 3, 4, 5])), ["prof:score"])


def test_large_point_in_time_join_matches_a_reference(pg_db: PgDatabase) -> None:
    rng = np.random.default_rng(7)
    n, users = 20_000, 500
    feats = pa.table(
        {
            "id": pa.array(rng.integers(0, users, n), pa.int64()),
            "ts": pa.array(
                np.datetime64(T0, "us") + np.arange(n).astype("timedelta64[s]") * 3,
                pa.timestamp("us"),
            ),
            "x": pa.array(rng.random(n)),
        }
    )
    store = PostgresFeatureStore(pg_db)
    store.load("big", feats)
    store.register(FeatureView(name="big_v", sql="SELECT id, ts, x FROM big", entities=("id",)))
    labels = pa.table(
        {
            "id": pa.array(rng.integers(0, users + 10, 3000), pa.int64()),
            "ts": pa.array(
                np.datetime64(T0, "us") + rng.integers(-100, n * 3, 3000).astype("timedelta64[s]"),
                pa.timestamp("us"),
            ),
        }
    )
    got = store.historical(labels, ["big_v:x"]).column("x").to_pylist()
    by_user: dict[int, list[tuple[Any, float]]] = {}
    for r in feats.to_pylist():
        by_user.setdefault(r["id"], []).append((r["ts"], r["x"]))
    want = []
    for r in labels.to_pylist():
        seen = [(t, x) for t, x in by_user.get(r["id"], []) if t <= r["ts"]]
        want.append(max(seen)[1] if seen else None)
    assert got == want


def test_sql_returns_duplicate_column_names(pg_db: PgDatabase) -> None:
    store = PostgresFeatureStore(pg_db)
    store.load("a", pa.table({"id": [1, 2], "x": [1.0, 2.0]}))
    store.load("b", pa.table({"id": [2, 3], "x": [20.0, 30.0]}))
    out = store.sql("SELECT * FROM a JOIN b ON a.id = b.id")
    assert out.column_names == ["id", "x", "id", "x"]
    assert [c.to_pylist() for c in out.columns] == [[2], [2.0], [2], [20.0]]


def test_tables_hide_vector_collections_sharing_the_schema(pg_db: PgDatabase) -> None:
    from strataml_postgres.vectors import PgVectorStore

    vectors = PgVectorStore(pg_db)
    vectors.create_collection("docs", dim=3)
    store = PostgresFeatureStore(pg_db)
    store.load("mine", _src())
    assert store.tables() == ["mine"]
    vectors.close()
