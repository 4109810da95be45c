"""pgvector aliases, scans, stats and optimize beyond the contract suite: repoints seen by other
processes in the same round trip, writes racing repoints, the namespace rules enforced in the
database, keyset scans, exact and approximate tombstone counts, REINDEX CONCURRENTLY and VACUUM
while searches run.

Everything runs against the real PostgreSQL + pgvector started by ``conftest.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import psycopg
import pytest

from strataml.dev.servers import ServerHandle
from strataml.errors import Conflict, DimensionMismatch, InvalidInput, NotFound
from strataml.registry import StackContext
from strataml_postgres import PostgresConfig, database
from strataml_postgres.vectors import PgVectorStore


@pytest.fixture
def store(pg_db: Any) -> Iterator[PgVectorStore]:
    s = PgVectorStore(pg_db)
    yield s
    s.close()


@pytest.fixture
def raw(pg_server: ServerHandle, pg_config: PostgresConfig) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"SET search_path = {pg_config.schema_name}, public")
        yield conn


@pytest.fixture
def other_store(pg_config: PostgresConfig) -> Iterator[Callable[[], PgVectorStore]]:
    """Independent stores (own pools and caches) on the same schema: other processes."""
    ctxs: list[StackContext] = []
    stores: list[PgVectorStore] = []

    def make() -> PgVectorStore:
        ctx = StackContext()
        ctxs.append(ctx)
        s = PgVectorStore(database(pg_config, ctx))
        stores.append(s)
        return s

    yield make
    for s in stores:
        s.close()
    for c in ctxs:
        c.close()


def _vecs(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def _table(raw: psycopg.Connection[Any], name: str) -> str:
    row = raw.execute(
        "SELECT table_name FROM _strataml_vector_collections WHERE name = %s", (name,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def _index_oid(raw: psycopg.Connection[Any], name: str) -> int:
    row = raw.execute("SELECT %s::regclass::oid", (f"{_table(raw, name)}_hnsw",)).fetchone()
    assert row is not None
    return int(row[0])


# ------------------------------------------------------------------------------- aliases
def test_a_repoint_elsewhere_is_seen_by_the_next_read(
    other_store: Callable[[], PgVectorStore],
) -> None:
    a, b = other_store(), other_store()
    a.create_collection("blue", 4, "cosine")
    a.create_collection("green", 6, "l2", multi_tenant=True)
    a.upsert("blue", [{"id": "old", "vector": [1, 0, 0, 0], "text": "old words"}])
    a.upsert("green", [{"id": "new", "vector": [1, 0, 0, 0, 0, 0], "tenant": "t"}])
    a.set_alias("live", "blue")
    assert [h.id for h in b.search("live", [1, 0, 0, 0])] == ["old"]  # b caches the alias
    a.set_alias("live", "green")
    # b's cached resolution fails its check in the same statement, is reloaded, and the
    # call is validated against the new target (another dimension, tenancy and metric)
    (hit,) = b.search("live", [1, 0, 0, 0, 0, 0], tenant="t")
    assert (hit.id, hit.metric) == ("new", "l2")
    with pytest.raises(DimensionMismatch):
        b.search("live", [1, 0, 0, 0], tenant="t")
    assert b.describe("live").name == "green"
    a.set_alias("live", "blue")
    assert b.count("live") == 1
    assert [r.id for r in b.get("live", ["old", "new"])] == ["old"]
    assert b.search("live", text="words")[0].id == "old"
    a.drop_alias("live")
    with pytest.raises(NotFound):
        b.count("live")


def test_writes_follow_a_repoint_made_elsewhere(
    other_store: Callable[[], PgVectorStore],
) -> None:
    a, b = other_store(), other_store()
    for name in ("blue", "green"):
        a.create_collection(name, 4)
    a.set_alias("live", "blue")
    b.upsert("live", [{"id": "1", "vector": [1, 0, 0, 0]}])
    a.set_alias("live", "green")
    b.upsert("live", [{"id": "2", "vector": [0, 1, 0, 0]}])  # b resolves afresh for writes
    b.delete("live", ["1"])  # b's cached resolution is checked under the alias row lock
    assert (a.count("blue"), a.count("green")) == (1, 1)
    assert [r.id for r in a.get("green", ["1", "2"])] == ["2"]


def test_a_repoint_waits_for_a_write_through_the_alias(
    store: PgVectorStore, other_store: Callable[[], PgVectorStore], raw: psycopg.Connection[Any]
) -> None:
    for name in ("blue", "green"):
        store.create_collection(name, 4)
    store.set_alias("live", "blue")
    other = other_store()
    with psycopg.connect(raw.info.dsn) as writer:  # a write through the alias, not committed
        writer.execute(f"SET search_path = {store._schema}, public")
        writer.execute("SELECT 1 FROM _strataml_vector_aliases WHERE alias = 'live' FOR SHARE")
        done = threading.Event()

        def repoint() -> None:
            other.set_alias("live", "green")
            done.set()

        t = threading.Thread(target=repoint)
        t.start()
        assert not done.wait(0.5)  # the repoint waits for the write's commit
        writer.commit()
        t.join(10)
    assert done.is_set()
    assert store.aliases() == {"live": "green"}


def test_readers_never_fail_while_an_alias_is_repointed(
    other_store: Callable[[], PgVectorStore],
) -> None:
    a, b = other_store(), other_store()
    for name in ("blue", "green"):
        a.create_collection(name, 4)
        a.upsert(name, [{"id": name, "vector": [1, 0, 0, 0]}])
    a.set_alias("live", "blue")
    seen: set[str] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.add(b.search("live", [1, 0, 0, 0], k=1)[0].id)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    def wait_until_seen(target: str) -> None:
        deadline = time.monotonic() + 30  # on a loaded machine the readers lag the repoints
        while target not in seen and not failures and time.monotonic() < deadline:
            time.sleep(0.001)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    wait_until_seen("blue")  # the readers are up (their first search opens b's pool)
    for i in range(40):
        a.set_alias("live", "green" if i % 2 == 0 else "blue")
    a.set_alias("live", "green")
    wait_until_seen("green")
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
    assert seen == {"blue", "green"}


def test_the_namespace_rules_hold_across_stores_and_in_the_database(
    store: PgVectorStore, other_store: Callable[[], PgVectorStore], raw: psycopg.Connection[Any]
) -> None:
    other = other_store()
    store.create_collection("blue", 4)
    store.set_alias("live", "blue")
    with pytest.raises(Conflict):
        other.drop_collection("blue")
    with pytest.raises(Conflict):
        other.drop_collection("live")  # an alias is not dropped as a collection
    with pytest.raises(Conflict):
        other.create_collection("live", 4, exist_ok=True)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):  # even behind strataml's back
        raw.execute("DELETE FROM _strataml_vector_collections WHERE name = 'blue'")
    with pytest.raises(InvalidInput):
        store.set_alias("live", "bad name!")
    assert "live" not in store.collections()
    assert other.aliases() == {"live": "blue"}


def test_alias_names_are_inert_in_sql(store: PgVectorStore) -> None:
    store.create_collection("blue", 4)
    for bad in ("x'); DROP TABLE t; --", "a b", "O'Brien"):
        with pytest.raises(InvalidInput):
            store.set_alias(bad, "blue")
    store.set_alias("with-dash_1", "blue")
    store.upsert("with-dash_1", [{"id": "a", "vector": [1, 0, 0, 0]}])
    assert store.count("with-dash_1") == 1


# --------------------------------------------------------------------------------- scans
def test_scan_pages_by_id_and_sees_every_record_once(store: PgVectorStore) -> None:
    store.create_collection("s", 4, multi_tenant=True)
    ids = ["a", "B", "ä", "a b", "a'b", "z" * 200, "0", "éé", "a\\b", "%_"]
    vecs = _vecs(len(ids), 4, seed=3)
    for tenant in ("t1", "t2"):
        store.upsert(
            "s",
            [
                {"id": i, "vector": v, "tenant": tenant, "metadata": {"n": k}}
                for k, (i, v) in enumerate(zip(ids, vecs, strict=True))
            ],
        )
    batches = list(store.scan("s", tenant="t2", batch_size=3, include_vectors=True))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    got = [r for b in batches for r in b]
    assert sorted(r.id for r in got) == sorted(ids)
    assert {r.tenant for r in got} == {"t2"}
    by_id = {r.id: r for r in got}
    assert by_id["ä"].metadata == {"n": 2}
    assert np.allclose(by_id["ä"].vector, vecs[2], atol=1e-6)
    exact = list(store.scan("s", tenant="t1", batch_size=10))
    assert [len(b) for b in exact] == [10]
    with pytest.raises(InvalidInput):
        store.scan("s", tenant="t1", batch_size=0)


def test_scan_sees_records_written_behind_the_cursor_at_most_once(store: PgVectorStore) -> None:
    store.create_collection("s", 2)
    store.upsert("s", [{"id": f"{i:03d}", "vector": [1, i]} for i in range(20)])
    pages = store.scan("s", batch_size=5)
    first = next(pages)
    store.upsert("s", [{"id": "000", "vector": [0, 1]}, {"id": "999", "vector": [1, 1]}])
    store.delete("s", ["010"])
    rest = [r.id for b in pages for r in b]
    ids = [r.id for r in first] + rest
    assert len(ids) == len(set(ids))
    assert set(ids) >= {f"{i:03d}" for i in range(20) if i != 10}
    assert "999" in ids  # ahead of the cursor: seen


# -------------------------------------------------------------------------------- health
def test_stats_describe_the_hnsw_index(pg_db: Any) -> None:
    store = PgVectorStore(pg_db, hnsw_m=8, hnsw_ef_construction=40, ef_search=50)
    try:
        store.create_collection("h", 8)
        store.create_collection("half", 2500)
        store.create_collection("exact", 4500)
        store.upsert("h", [{"id": str(i), "vector": v} for i, v in enumerate(_vecs(30))])
        stats = store.stats("h")
        assert (stats.index_type, stats.index_params) == ("hnsw", {"m": 8, "ef_construction": 40})
        assert (stats.count, stats.indexed, stats.deleted) == (30, 30, 0)
        assert stats.details["ef_search"] == 50
        assert stats.details["index_valid"] is True
        half = store.stats("half")
        assert (half.index_type, half.index_params["storage"]) == ("hnsw", "halfvec")
        assert (store.stats("exact").index_type, store.stats("exact").indexed) == ("flat", 0)
    finally:
        store.close()


def test_deleted_counts_are_current_after_the_stores_writes(
    store: PgVectorStore, other_store: Callable[[], PgVectorStore]
) -> None:
    store.create_collection("c", 4)
    x = _vecs(40, 4)
    store.upsert("c", [{"id": str(i), "vector": v} for i, v in enumerate(x)])
    store.search("c", x[0])  # reads prune pages: pruned tuples still count until VACUUM
    other = other_store()
    other.delete("c", [str(i) for i in range(5)])  # another process, just now
    other.upsert("c", [{"id": "5", "vector": x[6]}])  # an overwrite leaves a dead tuple too
    assert store.search("c", x[9], k=1)[0].id == "9"
    stats = store.stats("c")
    assert (stats.count, stats.deleted) == (35, 6)
    assert stats.tombstone_ratio == pytest.approx(6 / 41)
    assert store.optimize("c").deleted == 0
    assert store.stats("c").deleted == 0  # and no late report brings them back


def test_optimize_reindexes_concurrently_past_the_ratio_and_vacuums(
    store: PgVectorStore, raw: psycopg.Connection[Any]
) -> None:
    store.create_collection("o", 8)
    x = _vecs(600, seed=5)
    store.upsert("o", [{"id": str(i), "vector": v, "text": f"doc {i}"} for i, v in enumerate(x)])
    before_oid = _index_oid(raw, "o")
    store.delete("o", [str(i) for i in range(0, 600, 10)])  # 10 %: under reindex_ratio
    stats = store.stats("o")
    assert stats.deleted == 60
    assert stats.tombstone_ratio == pytest.approx(0.1)
    after = store.optimize("o")
    assert (after.count, after.deleted) == (540, 0)
    assert _index_oid(raw, "o") == before_oid  # vacuumed, not rebuilt
    expected = [h.id for h in store.search("o", x[1], k=10)]

    store.delete("o", [str(i) for i in range(1, 600, 3)])  # ~37 %: past reindex_ratio
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                assert store.search("o", x[1], k=1)[0].id == "1" or True
                store.count("o")
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        after = store.optimize("o")
    finally:
        stop.set()
        t.join()
    assert failures == []
    rebuilt_oid = _index_oid(raw, "o")
    assert rebuilt_oid != before_oid  # REINDEX CONCURRENTLY built a new index
    assert (after.indexed, after.details["index_valid"]) == (after.count, True)
    assert after.count == 540 - len([i for i in range(1, 600, 3) if i % 10])
    live = {h for h in expected if int(h) % 3 != 1}
    assert live <= {h.id for h in store.search("o", x[1], k=10)}
    # The readers may have held pins on a few pages through every VACUUM pass (their dead
    # tuples stay counted, see the pinned-page tests below); with the readers gone, the next
    # optimize removes them, under reindex_ratio, so without another rebuild.
    final = store.optimize("o")
    assert (final.count, final.deleted) == (after.count, 0)
    assert _index_oid(raw, "o") == rebuilt_oid


@pytest.fixture
def pinned_dead_rows(
    store: PgVectorStore,
    raw: psycopg.Connection[Any],
    pg_server: ServerHandle,
    pg_config: PostgresConfig,
) -> Iterator[tuple[psycopg.Connection[Any], int]]:
    """A collection "p" whose first heap page holds 4 dead rows, pinned by an open cursor.

    The page is left far from full, so no read prunes it on access: its dead tuples wait for a
    VACUUM, which cannot clean the page while the cursor's scan holds a pin on it. The cursor's
    snapshot is taken after the delete, so the rows are dead to every transaction.
    """
    store.create_collection("p", 4)
    store.upsert("p", [{"id": str(i), "vector": v} for i, v in enumerate(_vecs(40, 4))])
    # 10 %, under reindex_ratio: a REINDEX CONCURRENTLY would wait for the cursor's transaction
    store.delete("p", [str(i) for i in range(0, 40, 10)])
    table = f'"{pg_config.schema_name}"."{_table(raw, "p")}"'
    with psycopg.connect(pg_server.url) as reader:
        reader.execute("SET enable_indexscan = off")
        reader.execute("SET enable_bitmapscan = off")
        reader.execute(f"DECLARE pin NO SCROLL CURSOR FOR SELECT id FROM {table}")
        assert reader.execute("FETCH 1 FROM pin").fetchone() is not None
        yield reader, 4


def _count_vacuums(
    store: PgVectorStore, monkeypatch: pytest.MonkeyPatch, after_first: Callable[[], None]
) -> list[bool]:
    """Record the ``analyze`` flag of each VACUUM pass; call ``after_first`` after pass 1."""
    passes: list[bool] = []
    vacuum = store._vacuum

    def spy(conn: psycopg.Connection[Any], meta: Any, *, analyze: bool) -> None:
        vacuum(conn, meta, analyze=analyze)
        passes.append(analyze)
        if len(passes) == 1:
            after_first()

    monkeypatch.setattr(store, "_vacuum", spy)
    return passes


def test_optimize_vacuums_again_when_a_pass_missed_a_pinned_page(
    store: PgVectorStore,
    pinned_dead_rows: tuple[psycopg.Connection[Any], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader, dead = pinned_dead_rows
    assert store.stats("p").deleted == dead
    passes = _count_vacuums(store, monkeypatch, after_first=reader.rollback)  # unpins
    after = store.optimize("p")
    assert passes == [True, False]  # ANALYZE once; the second pass cleaned the page
    assert (after.count, after.deleted) == (36, 0)


def test_optimize_stops_when_a_pass_gains_nothing_and_reports_what_is_left(
    store: PgVectorStore,
    pinned_dead_rows: tuple[psycopg.Connection[Any], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader, dead = pinned_dead_rows
    passes = _count_vacuums(store, monkeypatch, after_first=lambda: None)
    after = store.optimize("p")
    assert passes == [True, False]  # not VACUUM_PASSES: the pin held through the second one
    assert (after.count, after.deleted) == (36, dead)
    reader.rollback()
    monkeypatch.undo()
    assert store.optimize("p").deleted == 0


def test_optimize_repairs_a_missing_or_invalid_index(
    store: PgVectorStore, raw: psycopg.Connection[Any]
) -> None:
    store.create_collection("r", 4)
    store.upsert("r", [{"id": str(i), "vector": v} for i, v in enumerate(_vecs(50, 4))])
    table = _table(raw, "r")
    raw.execute(f'DROP INDEX "{table}_hnsw"')
    assert store.stats("r").index_type == "flat"
    stats = store.optimize("r")
    assert (stats.index_type, stats.indexed) == ("hnsw", 50)
    # an interrupted REINDEX CONCURRENTLY leaves an invalid "<index>_ccnew": dropped
    raw.execute(
        f'CREATE INDEX "{table}_hnsw_ccnew" ON "{table}" USING hnsw (embedding vector_l2_ops)'
    )
    raw.execute(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass",
        (f"{table}_hnsw_ccnew",),
    )
    assert store.stats("r").details["other_indexes"] == [f"{table}_hnsw_ccnew"]
    stats = store.optimize("r")
    assert "other_indexes" not in stats.details


def test_stats_and_optimize_through_an_alias(store: PgVectorStore) -> None:
    store.create_collection("blue", 4)
    store.upsert("blue", [{"id": str(i), "vector": v} for i, v in enumerate(_vecs(10, 4))])
    store.set_alias("live", "blue")
    store.delete("live", ["1", "2"])
    assert (store.stats("live").name, store.stats("live").deleted) == ("blue", 2)
    assert (store.optimize("live").name, store.stats("blue").deleted) == ("blue", 0)


def test_readers_survive_a_storm_of_repoints(
    other_store: Callable[[], PgVectorStore],
) -> None:
    """200 back-to-back repoints while three readers search through the alias: a reader whose
    resolution went stale re-resolves and retries until it reads a consistent target."""
    a, b = other_store(), other_store()
    for name in ("blue", "green"):
        a.create_collection(name, 4)
        a.upsert(name, [{"id": name, "vector": [1, 0, 0, 0]}])
    a.set_alias("live", "blue")
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                b.search("live", [1, 0, 0, 0], k=1)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(200):
        a.set_alias("live", "green" if i % 2 == 0 else "blue")
    stop.set()
    for t in threads:
        t.join()
    assert failures == []
