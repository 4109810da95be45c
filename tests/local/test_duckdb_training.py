"""The TrainingSource contract on the embedded DuckDB source, plus DuckDB-specific behaviour."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from strataml.errors import (
    Conflict,
    FilterError,
    InvalidInput,
    NotFound,
    SchemaError,
    Unavailable,
    Unsupported,
)
from strataml.local import DUCKDB, DUCKDB_TRAINING_CAPS, DuckDBConfig
from strataml.local.duckdb_engine import DuckDBEngine
from strataml.local.duckdb_features import DuckDBFeatureStore
from strataml.local.duckdb_training import DuckDBTrainingSource
from strataml.protocols import TrainingSource
from strataml.registry import StackContext
from strataml.testing.training import TrainingSourceTests, rows_of, sample_table


@pytest.fixture
def engine(tmp_path: Path):
    eng = DuckDBEngine(tmp_path / "stack.duckdb")
    yield eng
    eng.close()


@pytest.fixture
def source(engine: DuckDBEngine):
    src = DuckDBTrainingSource(engine)
    yield src
    src.close()


class TestDuckDBTrainingContract(TrainingSourceTests):
    @pytest.fixture
    def training_source(self, source: DuckDBTrainingSource):
        return source


def _ids(scan) -> list[int]:
    return [r["id"] for r in rows_of(scan)]


def test_satisfies_the_protocol(source: DuckDBTrainingSource) -> None:
    assert isinstance(source, TrainingSource)
    assert source.capabilities == DUCKDB_TRAINING_CAPS


def test_registry_factory_builds_the_source(tmp_path: Path) -> None:
    ctx = StackContext()
    store = DUCKDB.factories["training"](DuckDBConfig(path=tmp_path / "db.duckdb"), ctx)
    try:
        assert isinstance(store, DuckDBTrainingSource)
        store.write("d", sample_table(3))
        assert store.count("d") == 3
    finally:
        store.close()
        ctx.close()


def test_versions_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db.duckdb"
    engine = DuckDBEngine(path)
    src = DuckDBTrainingSource(engine, owns_engine=True)
    t1, t2 = sample_table(40), sample_table(10, start=100)
    v1, v2 = src.write("clicks", t1), src.write("clicks", t2)
    src.close()
    with pytest.raises(Unavailable):
        src.scan("clicks")
    src = DuckDBTrainingSource(DuckDBEngine(path), owns_engine=True)
    try:
        assert src.datasets() == ["clicks"]
        assert src.versions("clicks") == [v1, v2]
        assert rows_of(src.scan("clicks", snapshot=v1)) == t1.to_pylist()
        assert rows_of(src.scan("clicks")) == t2.to_pylist()
        assert src.write("clicks", t1) == "clicks@3"
    finally:
        src.close()


def test_feature_store_tables_in_main_are_not_datasets(
    engine: DuckDBEngine, source: DuckDBTrainingSource
) -> None:
    features = DuckDBFeatureStore(engine)  # the stack shares one database between the two
    features.load("sales", pa.table({"feature": [1]}))
    features.load("only_in_main", pa.table({"feature": [2]}))
    table = sample_table(5)
    source.write("sales", table)
    assert source.datasets() == ["sales"]
    assert features.tables() == ["only_in_main", "sales"]
    assert rows_of(source.scan("sales")) == table.to_pylist()
    assert rows_of(source.scan("SELECT * FROM sales")) == [{"feature": 1}]  # main.sales
    assert rows_of(source.scan("SELECT * FROM datasets.sales")) == table.to_pylist()
    assert features.sql("SELECT count(*) AS n FROM datasets.sales").to_pylist() == [{"n": 5}]
    with pytest.raises(NotFound):
        source.scan("only_in_main")
    source.drop("sales")
    assert source.datasets() == []
    assert features.sql("SELECT * FROM sales").to_pylist() == [{"feature": 1}]
    features.close()


def test_layout_view_and_internal_tables(
    engine: DuckDBEngine, source: DuckDBTrainingSource
) -> None:
    source.write("a", sample_table(3))
    source.write("a", sample_table(4))
    cur = engine.cursor()
    objects = cur.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal"
    ).fetchall()
    internal = sorted(t for s, t in objects if s == "_strataml_training")
    assert internal == ["_strataml_a__v1", "_strataml_a__v2", "_strataml_versions"]
    assert sorted(t for s, t in objects if s == "datasets") == ["a"]
    cols = [c[0] for c in cur.execute("DESCRIBE datasets.a").fetchall()]
    assert cols == sample_table(1).schema.names  # no _row
    assert cur.execute("SELECT count(*) FROM datasets.a").fetchall() == [(4,)]  # latest


def test_snapshot_ids_are_never_reused(source: DuckDBTrainingSource) -> None:
    assert source.write("x", sample_table(3)) == "x@1"
    source.drop("x")
    assert source.write("x", sample_table(5)) == "x@2"
    assert source.versions("x") == ["x@2"]
    with pytest.raises(NotFound):
        source.scan("x", snapshot="x@1")
    with pytest.raises(NotFound):
        source.scan("x", snapshot="y@2")


def test_names_differing_only_by_case_conflict(source: DuckDBTrainingSource) -> None:
    table = sample_table(3)
    sid = source.write("Sales", table)
    with pytest.raises(Conflict):
        source.write("sales", sample_table(4))
    assert source.datasets() == ["Sales"]
    assert source.versions("Sales") == [sid]
    with pytest.raises(NotFound):
        source.scan("sales")
    source.drop("Sales")
    assert source.write("sales", table) == "sales@2"


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"_row": [1, 2]}),
        pa.table({"_ROW": [1, 2]}),
        pa.table({"a": [1], "A": [2]}),
        pa.table({"f16": pa.array(np.array([1.0], dtype=np.float16))}),
    ],
    ids=["reserved", "reserved-upper", "case-duplicate", "unsupported-type"],
)
def test_unstorable_tables_are_invalid(source: DuckDBTrainingSource, table: pa.Table) -> None:
    source.write("d", sample_table(2))
    with pytest.raises(InvalidInput):
        source.write("d", table)
    assert source.versions("d") == ["d@1"]


def test_batches_may_differ_in_nullability_and_metadata(source: DuckDBTrainingSource) -> None:
    strict = pa.schema([pa.field("id", pa.int64(), nullable=False)], metadata={b"k": b"v"})
    loose = pa.schema([pa.field("id", pa.int64())])
    batches = [
        pa.RecordBatch.from_pydict({"id": [0, 1]}, schema=strict),
        pa.RecordBatch.from_pydict({"id": [2, None]}, schema=loose),
    ]
    source.write("d", iter(batches))
    assert [r["id"] for r in rows_of(source.scan("d"))] == [0, 1, 2, None]


def test_order_without_preserve_insertion_order(
    engine: DuckDBEngine, source: DuckDBTrainingSource
) -> None:
    cur = engine.cursor()
    batches = [
        pa.RecordBatch.from_arrays([pa.array(np.arange(i, i + 50_000))], names=["id"])
        for i in range(0, 400_000, 50_000)
    ]
    cur.execute("SET preserve_insertion_order = false")
    try:
        source.write("unordered", iter(batches))
        got = [b.column(0) for b in source.scan("unordered", batch_size=100_000)]
    finally:
        cur.execute("RESET preserve_insertion_order")
    assert pa.chunked_array(got).to_pylist() == list(range(400_000))
    got = [b.column(0) for b in source.scan("unordered", batch_size=100_000)]
    assert pa.chunked_array(got).to_pylist() == list(range(400_000))


def test_dictionary_columns_compare_by_value(source: DuckDBTrainingSource) -> None:
    words = ["zeta", "alpha", "mu", "alpha"]
    table = pa.table({"id": range(4), "w": pa.array(words).dictionary_encode()})
    source.write("d", table)
    scan = source.scan("d", filter={"w": {"$gt": "beta"}})
    assert scan.schema.field("w").type == pa.string()
    assert _ids(scan) == [0, 2]


def test_iso_strings_filter_timestamps(source: DuckDBTrainingSource) -> None:
    _, table = TrainingSourceTests.write_sample(source, "d", 50)
    expected = [
        r["id"] for r in table.to_pylist() if r["ts"] and r["ts"] >= dt.datetime(2024, 1, 2)
    ]
    assert _ids(source.scan("d", filter={"ts": {"$gte": "2024-01-02"}})) == expected
    with pytest.raises(FilterError):
        source.scan("d", filter={"ts": {"$gt": "yesterday"}})


def test_nested_fields_are_unsupported(source: DuckDBTrainingSource) -> None:
    source.write("d", pa.table({"user": [{"country": "fr"}]}))
    with pytest.raises(Unsupported):
        source.scan("d", filter={"user.country": "fr"})
    with pytest.raises(FilterError):  # a struct is not comparable
        source.scan("d", filter={"user": "fr"})


def test_query_text_forms(engine: DuckDBEngine, source: DuckDBTrainingSource) -> None:
    source.write("d", sample_table(10))
    assert source.count("  select * from datasets.d;  ") == 10
    assert source.count("with q as (select id from datasets.d) select * from q -- done") == 10
    engine.cursor().execute("CREATE TABLE main.keep AS SELECT 1 AS a")
    with pytest.raises(SchemaError):
        source.scan("SELECT 1; DROP TABLE main.keep")
    assert engine.cursor().execute("SELECT * FROM main.keep").fetchall() == [(1,)]
    with pytest.raises(InvalidInput):
        source.scan("SELECT * FROM datasets.d", snapshot="d@1")
    source.write("select", sample_table(2))  # a bare keyword is a dataset name
    assert source.count("select") == 2
    with pytest.raises(SchemaError):  # fails while running, raised by scan() itself
        source.scan("SELECT CAST(grp AS INTEGER) AS g FROM datasets.d")


@pytest.mark.parametrize("columns", [[], ["id", "id"], "id", [1]])
def test_bad_columns_are_invalid(source: DuckDBTrainingSource, columns: object) -> None:
    source.write("d", sample_table(3))
    with pytest.raises(InvalidInput):
        source.scan("d", columns=columns)  # type: ignore[arg-type]


def test_bad_names_and_arguments(source: DuckDBTrainingSource) -> None:
    with pytest.raises(InvalidInput):
        source.scan("not a name")
    with pytest.raises(InvalidInput):
        source.drop("no spaces allowed")
    source.write("d", sample_table(3))
    with pytest.raises(InvalidInput):
        source.scan("d", batch_size=True)
    with pytest.raises(InvalidInput):
        source.scan("d", snapshot=1)  # type: ignore[arg-type]


def test_column_names_are_case_sensitive(source: DuckDBTrainingSource) -> None:
    source.write("d", pa.table({"Label": [1, 2]}))
    with pytest.raises(NotFound):
        source.scan("d", columns=["label"])
    with pytest.raises(NotFound):
        source.scan("d", filter={"label": 1})
    assert rows_of(source.scan("d", columns=["Label"], filter={"Label": 2})) == [{"Label": 2}]


def test_abandoned_scans_release_their_cursor(source: DuckDBTrainingSource) -> None:
    source.write("d", sample_table(1000))
    for _ in range(20):
        it = iter(source.scan("d", batch_size=10))
        next(it)
        del it
    assert source.count("d") == 1000
    source.drop("d")  # nothing holds the table any more
    assert source.datasets() == []


def test_concurrent_sharded_scans_from_threads(source: DuckDBTrainingSource) -> None:
    source.write("d", sample_table(5000))

    def shard(i: int) -> list[int]:
        return _ids(source.scan("d", shard=(i, 4), batch_size=256))

    with ThreadPoolExecutor(max_workers=4) as pool:
        parts = list(pool.map(shard, range(4)))
    assert sorted(i for p in parts for i in p) == list(range(5000))
    assert [len(p) for p in parts] == [1250] * 4  # _row % 4 splits evenly


def test_source_does_not_close_a_shared_engine(engine: DuckDBEngine) -> None:
    src = DuckDBTrainingSource(engine)
    src.write("d", sample_table(3))
    src.close()
    src.close()
    with pytest.raises(Unavailable):
        src.write("d", sample_table(3))
    assert engine.cursor().execute("SELECT count(*) FROM datasets.d").fetchall() == [(3,)]
