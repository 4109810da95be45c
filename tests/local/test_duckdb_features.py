"""The FeatureStore contract on the embedded DuckDB store, plus DuckDB-specific behaviour."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from strataml.errors import InvalidInput, NotFound, SchemaError, StrataError
from strataml.local.duckdb_engine import DuckDBEngine
from strataml.local.duckdb_features import DuckDBFeatureStore
from strataml.models import FeatureView
from strataml.protocols import FeatureStore
from strataml.testing.features import FeatureStoreTests, at, feature_rows, label_rows


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(tmp_path / "f.duckdb", threads=2)
    yield eng
    eng.close()


class TestDuckDBFeatureStore(FeatureStoreTests):
    @pytest.fixture
    def feature_store(self, engine: DuckDBEngine) -> Iterator[DuckDBFeatureStore]:
        store = DuckDBFeatureStore(engine)
        yield store
        store.close()


@pytest.fixture
def store(engine: DuckDBEngine) -> Iterator[DuckDBFeatureStore]:
    s = DuckDBFeatureStore(engine)
    yield s
    s.close()


def _view(store: DuckDBFeatureStore, name: str, table: str, **kw: Any) -> FeatureView:
    return store.register(
        FeatureView(name=name, sql=f"SELECT id, ts, x FROM {table}", entities=("id",), **kw)
    )


def test_satisfies_protocol(store: DuckDBFeatureStore) -> None:
    assert isinstance(store, FeatureStore)
    assert store.dialect == "duckdb"


def test_views_and_checkpoints_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "reopen.duckdb"
    eng = DuckDBEngine(path)
    store = DuckDBFeatureStore(eng)
    store.load("src", feature_rows([(1, 0, 1.0), (1, 10, 2.0)]), checkpoint=("src", "42"))
    _view(store, "v", "src", ttl=dt.timedelta(hours=1), tags={"team": "ml"})
    store.register(
        FeatureView(name="v", version=2, sql="SELECT id, ts, x * 2 AS x FROM src", entities=("id",))
    )
    before = store.views()
    store.close()
    eng.close()

    eng = DuckDBEngine(path)
    store = DuckDBFeatureStore(eng)
    try:
        assert store.views() == before
        assert store.get_view("v", 1).ttl == dt.timedelta(hours=1)
        assert store.get_view("v", 1).tags == {"team": "ml"}
        assert store.get_view("v", 1).fingerprint == before[0].fingerprint
        assert store.checkpoint("src") == "42"
        assert store.tables() == ["src"]
        labels = label_rows([(1, 11)])
        assert store.historical(labels, ["v@1:x"]).column("x").to_pylist() == [2.0]
        assert store.historical(labels, ["v:x"]).column("x").to_pylist() == [4.0]
    finally:
        store.close()
        eng.close()


def test_readers_see_whole_loads_with_their_checkpoint(store: DuckDBFeatureStore) -> None:
    """Threads reading while one thread loads: every read sees whole loads only, and the
    checkpoint committed with exactly those rows."""
    per_load, loads = 50, 25

    def batch(i: int) -> pa.Table:
        return feature_rows([(j, i, float(i)) for j in range(per_load)])

    store.load("events", batch(1), checkpoint=("events", "1"))
    _view(store, "v", "events")
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0, 0]

    def loader() -> None:
        try:
            for i in range(2, loads + 1):
                store.load("events", batch(i), checkpoint=("events", str(i)))
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)
        finally:
            stop.set()

    def reader(slot: int) -> None:
        labels = label_rows([(j, 10_000) for j in range(per_load)])
        try:
            while not stop.is_set() or reads[slot] == 0:
                row = store.sql(
                    "SELECT (SELECT count(*) FROM events) AS n, (SELECT value FROM "
                    "_strataml_checkpoints WHERE key = 'events') AS cp"
                ).to_pylist()[0]
                assert row["n"] == int(row["cp"]) * per_load
                out = store.historical(labels, ["v:x"])
                assert out.num_rows == per_load
                assert len(set(out.column("x").to_pylist())) == 1  # one load's values
                reads[slot] += 1
        except BaseException as exc:  # noqa: BLE001 -- reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=loader)] + [
        threading.Thread(target=reader, args=(i,)) for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert all(reads)
    assert store.checkpoint("events") == str(loads)
    assert store.sql("SELECT count(*) AS n FROM events").column("n")[0].as_py() == loads * per_load


def test_compute_stream_survives_other_queries_on_the_thread(store: DuckDBFeatureStore) -> None:
    store.load("src", feature_rows([(i, i, float(i)) for i in range(100)]))
    _view(store, "v", "src")
    reader = store.compute("v", batch_size=10)
    first = reader.read_next_batch()
    store.sql("SELECT 1")  # same thread, same engine, while the stream is open
    assert store.historical(label_rows([(5, 50)]), ["v:x"]).column("x").to_pylist() == [5.0]
    rest = reader.read_all()
    assert first.num_rows + rest.num_rows == 100


def test_nanosecond_timestamps_never_leak_the_future(store: DuckDBFeatureStore) -> None:
    ns = pa.timestamp("ns")
    base = 1_704_067_200_000_000_000  # 2024-01-01 in ns
    store.load(
        "src",
        pa.table(
            {
                "id": pa.array([1, 1], pa.int64()),
                "ts": pa.array([base, base + 900], ns),
                "x": [1.0, 2.0],
            }
        ),
    )
    _view(store, "v", "src")
    labels = pa.table(
        {
            "id": pa.array([1, 1, 1], pa.int64()),
            "ts": pa.array([base + 400, base + 899, base + 900], ns),
        }
    )
    out = store.historical(labels, ["v:x"])
    assert out.column("x").to_pylist() == [1.0, 1.0, 2.0]
    assert out.column("ts").type == ns  # the labels' column comes back untouched


def test_date_label_timestamps(store: DuckDBFeatureStore) -> None:
    store.load("src", feature_rows([(1, 0, 1.0), (1, 24 * 60, 2.0)]))
    _view(store, "v", "src")
    labels = pa.table(
        {
            "id": pa.array([1, 1], pa.int64()),
            "ts": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2)], pa.date32()),
        }
    )
    assert store.historical(labels, ["v:x"]).column("x").to_pylist() == [1.0, 2.0]


def test_append_type_rules(store: DuckDBFeatureStore) -> None:
    store.load(
        "t",
        pa.table(
            {
                "n": pa.array([1], pa.int64()),
                "f": pa.array([1.5]),
                "empty": pa.array([None], pa.null()),
            }
        ),
    )
    # narrower ints widen silently, ints go into doubles, a NULL-typed column takes a real type
    store.load(
        "t",
        pa.table(
            {
                "n": pa.array([2], pa.int32()),
                "f": pa.array([3], pa.int64()),
                "empty": pa.array(["now text"]),
            }
        ),
    )
    out = store.sql("SELECT n, f, empty FROM t ORDER BY n")
    assert out.to_pylist() == [
        {"n": 1, "f": 1.5, "empty": None},
        {"n": 2, "f": 3.0, "empty": "now text"},
    ]
    with pytest.raises(SchemaError, match="'f'"):
        store.load("t", pa.table({"f": pa.array(["x"])}))
    with pytest.raises(SchemaError):
        store.load("t", pa.table({"n": pa.array([1.5])}))  # a double does not fit a BIGINT
    assert store.sql("SELECT count(*) AS c FROM t").column("c")[0].as_py() == 2


def test_load_list_of_batches_and_reserved_names(store: DuckDBFeatureStore) -> None:
    batches = feature_rows([(1, 0, 1.0), (2, 0, 2.0)]).to_batches(max_chunksize=1)
    assert store.load("t", batches) == 2
    with pytest.raises(InvalidInput):
        store.load("_strataml_views", batches)
    with pytest.raises(InvalidInput):
        store.load("t", pa.table({"a": [1], "A": [2]}))  # DuckDB names are case-insensitive


def test_driver_errors_are_translated(store: DuckDBFeatureStore) -> None:
    store.load("src", feature_rows([(1, 0, 1.0)]))
    _view(store, "v", "src")
    with pytest.raises(NotFound) as info:
        store.sql("SELECT * FROM missing_table")
    assert isinstance(info.value.__cause__, duckdb.Error)
    with pytest.raises(SchemaError):
        store.sql("SELECT no_such_col FROM src")
    with pytest.raises(InvalidInput):  # string entity key against a BIGINT one
        store.historical(pa.table({"id": ["1"], "ts": pa.array([at(1)])}), ["v:x"])
    with pytest.raises(InvalidInput):  # the timestamp column is text
        store.historical(pa.table({"id": [1], "ts": ["2024-01-01"]}), ["v:x"])
    store.load("src", pa.table({"ts": pa.array([at(5)])}), mode="replace")  # the view breaks
    with pytest.raises(SchemaError):
        store.compute("v")
    with pytest.raises(StrataError):
        store.historical(label_rows([(1, 1)]), ["v:x"])


def test_register_rejects_unreferenceable_features_and_scripts(store: DuckDBFeatureStore) -> None:
    store.load("src", feature_rows([(1, 0, 1.0)]))
    with pytest.raises(SchemaError, match="alias"):
        store.register(FeatureView(name="v", sql="SELECT id, ts, x + 1 FROM src", entities=("id",)))
    with pytest.raises(SchemaError):
        store.register(
            FeatureView(name="v", sql="SELECT id, ts, x FROM src; DROP TABLE src", entities=("id",))
        )
    assert store.tables() == ["src"]
    assert store.views() == []


def test_select_star_view_keeps_its_features_when_the_table_grows(
    store: DuckDBFeatureStore,
) -> None:
    store.load("src", feature_rows([(1, 0, 1.0)]))
    v = FeatureView(name="v", sql="SELECT * FROM src", entities=("id",))
    assert store.register(v).features == ("x",)
    store.load("src", feature_rows([(1, 5, 2.0)]).append_column("y", pa.array([7])))
    assert store.register(v).features == ("x",)  # same definition: a no-op, features pinned
    assert store.compute("v").schema.names == ["id", "ts", "x"]
    assert store.historical(label_rows([(1, 6)]), ["v:*"]).column_names == ["id", "ts", "x"]


def test_closed_store_is_unavailable(engine: DuckDBEngine) -> None:
    s = DuckDBFeatureStore(engine)
    s.close()
    s.close()
    with pytest.raises(StrataError):
        s.tables()
