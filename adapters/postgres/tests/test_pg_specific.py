"""PostgreSQL-specific behaviour of the ingest, feature and training stores.

Injection attempts through filter values, field names, identifiers and SQL text are inert; pool
exhaustion gives a clear timeout; statement timeouts and driver errors come back as strataml
errors (the driver's error chained); a server restarted mid-run is reconnected; concurrent
writers never make a tailing reader skip a record; concurrent first users create the schema
objects once.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.dev.servers import ServerHandle, start_postgres, stop
from strataml.errors import (
    FilterError,
    InvalidInput,
    NotFound,
    SchemaError,
    Unavailable,
)
from strataml.filters import matches, parse_filter
from strataml.models import FeatureView
from strataml_postgres import PostgresConfig
from strataml_postgres.features import PostgresFeatureStore
from strataml_postgres.ingest import PostgresIngestStore
from strataml_postgres.pool import PgDatabase
from strataml_postgres.training import PostgresTrainingSource

NASTY = [
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "\\'; SELECT pg_sleep(5); --",
    "%s",
    "%(name)s",
    "%%",
    '"quoted" identifier',
    "$1",
    "back\\slash",
    "semi;colon",
    "",
    "é ✓ 中文",
    "O'Q",
]


@pytest.fixture
def db(pg_config: PostgresConfig) -> Iterator[PgDatabase]:
    database = PgDatabase(pg_config)
    yield database
    database.close()


def _table(values: list[str]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(len(values)), pa.int64()),
            "s": pa.array(values, pa.string()),
        }
    )


# ------------------------------------------------------------------------------- injection
class TestInjectionIsInert:
    def test_filter_values_are_data(self, db: PgDatabase) -> None:
        source = PostgresTrainingSource(db)
        table = _table(NASTY)
        source.write("nasty", table)
        for i, value in enumerate(NASTY):
            for spec in ({"s": value}, {"s": {"$in": [value, "zzz"]}}, {"s": {"$gte": value}}):
                want = [r["id"] for r in table.to_pylist() if matches(parse_filter(spec), r)]
                got = source.scan("nasty", filter=spec).read_all().column("id").to_pylist()
                assert got == want, spec
                assert source.count("nasty", filter=spec) == len(want)
            assert source.scan("nasty", filter={"s": value}).read_all().column("id")[0].as_py() == i
        assert source.count("nasty") == len(NASTY)
        assert source.versions("nasty") == ["nasty@1"]

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        value=st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
    )
    def test_any_string_filter_value_matches_itself_only(self, db: PgDatabase, value: str) -> None:
        source = PostgresTrainingSource(db)
        name = "prop_strings"
        if name not in source.datasets():
            source.write(name, _table(NASTY))
        table = _table(NASTY)
        for spec in ({"s": value}, {"s": {"$lt": value}}, {"s": {"$nin": [value]}}):
            want = [r["id"] for r in table.to_pylist() if matches(parse_filter(spec), r)]
            assert source.scan(name, filter=spec).read_all().column("id").to_pylist() == want

    @pytest.mark.parametrize(
        "spec",
        [
            {"s; DROP TABLE x": 1},
            {'s"--': 1},
            {"s) OR (1=1": 1},
            {"$or": [{"id": 1}, {"id' OR 1=1 --": 2}]},
        ],
        ids=repr,
    )
    def test_field_names_with_sql_are_rejected(self, db: PgDatabase, spec: dict[str, Any]) -> None:
        source = PostgresTrainingSource(db)
        source.write("fields", _table(["a", "b"]))
        with pytest.raises(FilterError):
            source.scan("fields", filter=spec)
        with pytest.raises(FilterError):
            source.count("fields", filter=spec)
        assert source.count("fields") == 2

    def test_identifiers_with_sql_are_quoted(self, db: PgDatabase) -> None:
        weird = ['a"; DROP TABLE t; --', "Robert'); DROP TABLE students;--", "%s", "Mixed Case"]
        data = pa.table({w: pa.array([i, i + 1], pa.int64()) for i, w in enumerate(weird)})
        source = PostgresTrainingSource(db)
        source.write("weird", data)
        assert source.scan("weird").read_all().equals(data)
        assert source.scan("weird", columns=[weird[1]]).read_all().column(0).to_pylist() == [1, 2]
        features = PostgresFeatureStore(db)
        assert features.load("weird_src", data) == 2
        out = features.sql('SELECT * FROM "weird_src"')
        assert out.column_names == weird
        assert "weird_src" in features.tables()

    def test_query_sources_take_percent_signs_literally(self, db: PgDatabase) -> None:
        source = PostgresTrainingSource(db)
        query = "SELECT '%s' AS a, '%(x)s' AS b, 'O''Brien' AS c, '100%' AS d"
        rows = source.scan(query).read_all().to_pylist()
        assert rows == [{"a": "%s", "b": "%(x)s", "c": "O'Brien", "d": "100%"}]
        assert source.scan(query, filter={"c": "O'Brien"}).read_all().num_rows == 1
        assert source.count(query, filter={"d": "100%"}) == 1

    def test_view_sql_with_percent_signs(self, db: PgDatabase) -> None:
        store = PostgresFeatureStore(db)
        t0 = dt.datetime(2024, 1, 1)
        store.load(
            "names",
            pa.table(
                {
                    "id": pa.array([1, 2], pa.int64()),
                    "ts": pa.array([t0, t0], pa.timestamp("us")),
                    "name": ["alpha", "beta"],
                }
            ),
        )
        view = FeatureView(
            name="a_names",
            sql="SELECT id, ts, name, name LIKE 'a%' AS starts_with_a FROM names",
            entities=("id",),
        )
        store.register(view)
        got = store.compute("a_names").read_all().sort_by("id")
        assert got.column("starts_with_a").to_pylist() == [True, False]
        labels = pa.table({"id": pa.array([2, 1], pa.int64()), "ts": pa.array([t0, t0])})
        out = store.historical(labels, ["a_names:starts_with_a"])
        assert out.column("starts_with_a").to_pylist() == [False, True]

    def test_sql_parameters_are_bound(self, db: PgDatabase) -> None:
        store = PostgresFeatureStore(db)
        store.load("people", pa.table({"name": ["O'Brien", "x"], "n": [1, 2]}))
        for value in NASTY:
            out = store.sql(
                "SELECT %s AS v, count(*) AS c FROM people WHERE name = %s", [value, value]
            )
            assert out.column("v").to_pylist() == [value]
        assert store.sql("SELECT n FROM people WHERE name = %(who)s", {"who": "O'Brien"}).column(
            0
        ).to_pylist() == [1]
        assert store.sql("SELECT count(*) AS c FROM people").column(0).to_pylist() == [2]

    def test_ingest_keys_and_documents_are_data(self, db: PgDatabase) -> None:
        store = PostgresIngestStore(db)
        docs = [{"id": v, "v": v} for v in NASTY]
        assert store.write_batch("evil", docs, key_field="id").written == len(NASTY)
        assert store.write_batch("evil", docs, key_field="id").duplicates == len(NASTY)
        page = store.read("evil", limit=100)
        assert [(r.key, r.data) for r in page.records] == [(d["id"], d) for d in docs]
        for bad in ("x'; DROP TABLE y; --", 'a"b', "a b"):
            with pytest.raises(InvalidInput):
                store.write(bad, {"v": 1})


# ---------------------------------------------------------------------------------- the pool
class TestPool:
    def test_pool_exhaustion_is_a_clear_timeout(self, pg_config: PostgresConfig) -> None:
        config = pg_config.model_copy(
            update={"pool_min_size": 1, "pool_max_size": 1, "pool_timeout_s": 0.3}
        )
        db = PgDatabase(config)
        try:
            store = PostgresIngestStore(db)
            store.write("s", {"v": 1})
            with db.connection("holding the only connection"):
                started = time.monotonic()
                with pytest.raises(Unavailable, match="pool exhausted") as info:
                    store.count("s")
                waited = time.monotonic() - started
            assert 0.25 <= waited < 5
            assert "pool_max_size" in str(info.value)
            assert info.value.__cause__ is not None  # the pool's timeout, chained
            assert store.count("s") == 1  # released: works again
        finally:
            db.close()

    def test_an_open_scan_holds_its_connection_until_abandoned(
        self, pg_config: PostgresConfig
    ) -> None:
        config = pg_config.model_copy(
            update={"pool_min_size": 1, "pool_max_size": 1, "pool_timeout_s": 0.3}
        )
        db = PgDatabase(config)
        try:
            source = PostgresTrainingSource(db)
            source.write("big", pa.table({"id": pa.array(range(50_000), pa.int64())}))
            scan = source.scan("big", batch_size=100)
            batches = iter(scan)
            assert next(batches).num_rows == 100
            with pytest.raises(Unavailable, match="pool exhausted"):
                source.count("big", filter={"id": 5})
            del scan, batches
            gc.collect()
            assert source.count("big", filter={"id": {"$lt": 10}}) == 10  # the connection is back
        finally:
            db.close()

    def test_statement_timeout_is_unavailable(self, pg_config: PostgresConfig) -> None:
        db = PgDatabase(pg_config.model_copy(update={"statement_timeout_ms": 100}))
        try:
            store = PostgresFeatureStore(db)
            with pytest.raises(Unavailable, match="statement timeout") as info:
                store.sql("SELECT pg_sleep(2)")
            assert isinstance(info.value.__cause__, psycopg.errors.QueryCanceled)
            assert store.sql("SELECT 1 AS one").column(0).to_pylist() == [1]
        finally:
            db.close()

    def test_unreachable_server_is_unavailable_without_secrets(self) -> None:
        from strataml.dev.servers import free_port

        url = f"postgresql://strataml:s3cret-pw@127.0.0.1:{free_port()}/nope"
        config = PostgresConfig(url=url, connect_timeout_s=1, pool_timeout_s=0.5)
        db = PgDatabase(config)
        with pytest.raises(Unavailable) as info:
            PostgresIngestStore(db).streams()
        assert "s3cret-pw" not in str(info.value)
        assert "s3cret-pw" not in repr(db)
        assert "s3cret-pw" not in repr(config)
        db.close()


# ------------------------------------------------------------------------------------ errors
class TestDriverErrors:
    @pytest.mark.parametrize(
        ("query", "error", "cause"),
        [
            ("SELECT * FROM no_such_table", NotFound, psycopg.errors.UndefinedTable),
            ("SELEC 1", SchemaError, psycopg.errors.SyntaxError),
            (
                "SELECT no_such_column FROM (SELECT 1 AS a) AS t",
                SchemaError,
                psycopg.errors.UndefinedColumn,
            ),
            ("SELECT 1 / 0", InvalidInput, psycopg.errors.DivisionByZero),
            ("CREATE TABLE dup (a int); CREATE TABLE dup (a int)", Exception, psycopg.Error),
        ],
    )
    def test_translated_and_chained(
        self, db: PgDatabase, query: str, error: type[Exception], cause: type[Exception]
    ) -> None:
        store = PostgresFeatureStore(db)
        with pytest.raises(error) as info:
            store.sql(query)
        from strataml.errors import StrataError

        assert isinstance(info.value, StrataError)
        assert isinstance(info.value.__cause__, cause)

    def test_errors_while_streaming_are_translated(self, db: PgDatabase) -> None:
        source = PostgresTrainingSource(db)
        scan = source.scan(
            "SELECT g, 1 / (g - 50000) AS boom FROM generate_series(1, 100000) AS g",
            batch_size=1000,
        )
        with pytest.raises(InvalidInput) as info:
            for _ in scan:
                pass
        assert isinstance(info.value.__cause__, psycopg.errors.DivisionByZero)
        assert source.scan("SELECT 1 AS ok").read_all().num_rows == 1  # the pool is healthy


# ---------------------------------------------------------------------------------- restarts
def _restart(handle: ServerHandle) -> ServerHandle:
    stop(handle)
    return start_postgres(Path(handle.data_dir).parent, port=handle.port, durable=False)


T = TypeVar("T")


def _eventually(read: Callable[[], T], deadline_s: float = 30.0) -> T:
    """``read()``, retried while it raises :class:`Unavailable`, until ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            return read()
        except Unavailable:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def test_server_restarted_mid_run_is_reconnected(tmp_path: Path) -> None:
    handle = start_postgres(tmp_path, durable=False)
    try:
        config = PostgresConfig(url=handle.url, schema="restart", pool_max_size=3, pool_timeout_s=2)
        db = PgDatabase(config)
        ingest, source = PostgresIngestStore(db), PostgresTrainingSource(db)
        ingest.write_batch("events", [{"i": i} for i in range(10)])
        source.write("ds", pa.table({"id": pa.array(range(20_000), pa.int64())}))
        scan = iter(source.scan("ds", batch_size=500))
        assert next(scan).num_rows == 500

        handle = _restart(handle)  # every pooled connection and the open scan are now dead

        with pytest.raises(Unavailable):
            for _ in scan:
                pass
        assert ingest.count("events") == 10  # broken connections are replaced transparently
        ingest.write_batch("events", [{"i": i} for i in range(10, 15)])
        assert [r.data["i"] for r in ingest.read("events", limit=100)] == list(range(15))
        assert source.count("ds") == 20_000
        assert sum(b.num_rows for b in source.scan("ds", batch_size=4096)) == 20_000

        stop(handle)  # down: a clear error, quickly
        started = time.monotonic()
        with pytest.raises(Unavailable, match="is the server running"):
            ingest.count("events")
        assert time.monotonic() - started < 10
        handle = start_postgres(tmp_path, port=handle.port, durable=False)
        # the pool that lived through the outage recovers by itself; its reconnect attempts
        # back off (1 s, 2 s, 4 s ...), so the first read may still time out on a slow machine
        assert _eventually(lambda: ingest.count("events")) == 15
        db.close()
    finally:
        stop(handle)


# ------------------------------------------------------------------------------- concurrency
def test_concurrent_writers_never_make_a_tailing_reader_skip(db: PgDatabase) -> None:
    """Four writers append batches to one stream while a reader follows it by cursor: the reader
    must see every record exactly once, in increasing ``seq`` order (commit order)."""
    store = PostgresIngestStore(db)
    store.write("tail", {"w": -1, "i": -1})
    writers, batches, size = 4, 15, 40
    done = threading.Event()
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for b in range(batches):
                recs = [{"w": w, "i": b * size + i} for i in range(size)]
                if b % 3 == 0:
                    store.write_batch("tail", recs, key_field=None)
                else:
                    for j in range(0, size, 10):
                        store.write_batch("tail", recs[j : j + 10])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    seen: list[tuple[int, int]] = []
    seqs: list[int] = []

    def read() -> None:
        cursor = None
        try:
            while True:
                finished = done.is_set()
                page = store.read("tail", after=cursor, limit=37)
                for r in page.records:
                    seen.append((r.data["w"], r.data["i"]))
                    seqs.append(r.seq)
                cursor = page.cursor
                if finished and not page.records:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    reader = threading.Thread(target=read)
    reader.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    assert not errors, errors
    expected = {(-1, -1)} | {(w, i) for w in range(writers) for i in range(batches * size)}
    assert len(seen) == len(expected)
    assert set(seen) == expected
    assert seqs == sorted(seqs)


def test_concurrent_first_use_creates_everything_once(pg_config: PostgresConfig) -> None:
    """Several processes' worth of pools start on a fresh schema at once: no creator fails."""
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def first_use(k: int) -> None:
        db = PgDatabase(pg_config)
        try:
            start.wait()
            PostgresIngestStore(db).write("s", {"k": k}, key=str(k))
            PostgresFeatureStore(db).load(f"t{k}", pa.table({"k": [k]}))
            PostgresTrainingSource(db).write(f"d{k}", pa.table({"k": [k]}))
            PostgresFeatureStore(db).register(
                FeatureView(
                    name="same",
                    sql="SELECT 1 AS id, TIMESTAMP '2024-01-01' AS ts, 2 AS x",
                    entities=("id",),
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=first_use, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    db = PgDatabase(pg_config)
    try:
        assert PostgresIngestStore(db).count("s") == 4
        assert PostgresFeatureStore(db).tables() == ["t0", "t1", "t2", "t3"]
        assert [v.ref for v in PostgresFeatureStore(db).views()] == ["same@1"]
        assert PostgresTrainingSource(db).datasets() == ["d0", "d1", "d2", "d3"]
    finally:
        db.close()
