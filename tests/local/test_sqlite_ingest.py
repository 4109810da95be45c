"""The SQLite ingest store: the IngestStore contract plus what only a SQLite file can show
(persistence, threads and processes sharing one file in WAL mode, engine failures mid-batch)."""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strataml.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    StrataError,
    Unavailable,
)
from strataml.local import SQLITE_CAPS, SQLiteConfig
from strataml.local.sqlite_ingest import SQLiteIngestStore
from strataml.models import IngestedRecord, WriteResult
from strataml.testing.ingest import IngestStoreTests, read_all, state


class TestSQLiteIngestContract(IngestStoreTests):
    @pytest.fixture
    def ingest_store(self, tmp_path: Path) -> Iterator[SQLiteIngestStore]:
        store = SQLiteIngestStore(tmp_path / "ingest.sqlite")
        yield store
        store.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ingest.sqlite"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteIngestStore]:
    s = SQLiteIngestStore(db)
    yield s
    s.close()


# ------------------------------------------------------------------------------ persistence
def test_data_and_cursor_survive_reopen(db: Path) -> None:
    first = SQLiteIngestStore(db)
    first.write_batch("ev", [{"id": i, "v": i} for i in range(10)], key_field="id")
    page = first.read("ev", limit=4)
    first.close()

    second = SQLiteIngestStore(db)
    try:
        assert second.streams() == ["ev"]
        assert second.count("ev") == 10
        rest = read_all(second, "ev", after=page.cursor)
        assert [r.data["v"] for r in rest] == list(range(4, 10))
        # idempotency keys are persistent too
        again = second.write_batch("ev", [{"id": i, "v": -1} for i in range(12)], key_field="id")
        assert again == WriteResult(written=2, duplicates=10)
        assert [r.data["v"] for r in read_all(second, "ev")][-3:] == [9, -1, -1]
    finally:
        second.close()


def test_wal_mode_and_parent_directories(store: SQLiteIngestStore, db: Path) -> None:
    assert db.parent.is_dir()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_factory_builds_the_store(tmp_path: Path) -> None:
    from strataml.local import SQLITE
    from strataml.registry import StackContext

    config = SQLiteConfig(path=tmp_path / "f.sqlite", busy_timeout_ms=500, synchronous="FULL")
    store = SQLITE.factories["ingest"](config, StackContext())
    try:
        assert isinstance(store, SQLiteIngestStore)
        assert store.capabilities == SQLITE_CAPS
        assert store.write("ev", {"v": 1}).written == 1
    finally:
        store.close()


def test_sequence_never_reused_after_deleting_the_newest(store: SQLiteIngestStore) -> None:
    store.write_batch("ev", [{"at": 100}, {"at": 200}], time_field="at")
    cursor = store.read("ev").cursor
    assert store.delete_before("ev", dt.datetime(2000, 1, 1)) == 2
    store.write("ev", {"at": 300}, time_field="at")
    assert [r.data["at"] for r in read_all(store, "ev", after=cursor)] == [300]


def test_sequence_never_reused_after_drop(store: SQLiteIngestStore, db: Path) -> None:
    store.write("keep", {"v": 0})
    store.write_batch("ev", [{"v": 1}, {"v": 2}])
    old_cursor = store.read("ev").cursor
    store.drop("ev")
    store.write_batch("ev", [{"v": 3}, {"v": 4}])
    # a reader still holding a cursor of the dropped stream misses nothing of the new one
    assert [r.data["v"] for r in read_all(store, "ev", after=old_cursor)] == [3, 4]
    store.delete_before("ev", dt.datetime(2100, 1, 1))
    store.drop("ev")
    store.delete_before("keep", dt.datetime(2100, 1, 1))
    store.write("keep", {"v": 5})
    assert [r.data["v"] for r in read_all(store, "keep", after=old_cursor)] == [5]
    # the high-water mark is one row in no stream, invisible through the API
    assert store.streams() == ["keep"]
    assert store.count("keep") == 1
    with sqlite3.connect(db) as raw:
        assert raw.execute(
            "SELECT count(*) FROM ingest_records WHERE stream_id = 0"
        ).fetchone() == (1,)


# ------------------------------------------------------------------------------ concurrency
def _keyed(writer: str, batch: int, size: int) -> list[dict[str, Any]]:
    return [{"id": f"{writer}-{batch}-{i}", "w": writer} for i in range(size)]


def _check_exactly_once(records: list[IngestedRecord], expected_ids: set[str]) -> None:
    ids = [r.data["id"] for r in records]
    assert len(ids) == len(set(ids)), "a record was read twice"
    assert set(ids) == expected_ids, "a record was lost"
    seqs = [r.seq for r in records]
    assert seqs == sorted(seqs)


def test_threads_write_while_a_reader_pages(store: SQLiteIngestStore) -> None:
    batches, size = 40, 25
    errors: list[BaseException] = []
    seen: list[IngestedRecord] = []
    done = threading.Event()

    def writer(name: str) -> None:
        try:
            for b in range(batches):
                if b % 5 == 0:
                    for rec in _keyed(name, b, size):
                        store.write("ev", rec, key=rec["id"])
                else:
                    store.write_batch("ev", _keyed(name, b, size), key_field="id")
                # a retry of the previous batch must change nothing
                store.write_batch("ev", _keyed(name, b, size), key_field="id")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def reader() -> None:
        cursor = None
        try:
            while True:
                finished = done.is_set()
                page = store.read("ev", after=cursor, limit=37) if "ev" in store.streams() else None
                if page is not None and page.records:
                    seen.extend(page.records)
                    cursor = page.cursor
                elif finished:
                    return
                else:
                    time.sleep(0.001)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    read_thread = threading.Thread(target=reader)
    read_thread.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    done.set()
    read_thread.join(timeout=60)
    assert not errors, errors
    expected = {r["id"] for n in ("a", "b") for b in range(batches) for r in _keyed(n, b, size)}
    _check_exactly_once(seen, expected)
    assert store.count("ev") == len(expected)


# runs in a separate interpreter (not a fork): a second process on the same database file
_PROCESS_WRITER = """
import sys
from strataml.local.sqlite_ingest import SQLiteIngestStore

path, batches, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = SQLiteIngestStore(path, busy_timeout_ms=30_000)
try:
    for b in range(batches):
        rows = [{"id": f"proc-{b}-{i}", "w": "proc"} for i in range(size)]
        store.write_batch("ev", rows, key_field="id")
        store.write_batch("ev", rows, key_field="id")  # retry: no-op
finally:
    store.close()
"""


def test_second_process_writes_to_the_same_file(db: Path) -> None:
    batches, size = 60, 50
    store = SQLiteIngestStore(db, busy_timeout_ms=30_000)
    try:
        store.write("ev", {"id": "start", "w": "main"})
        proc = subprocess.Popen(
            [sys.executable, "-c", _PROCESS_WRITER, str(db), str(batches), str(size)]
        )
        seen: list[IngestedRecord] = []
        cursor = None
        b = 0
        while proc.poll() is None or b < batches:
            if b < batches:
                store.write_batch("ev", _keyed("main", b, size), key_field="id")
                b += 1
            page = store.read("ev", after=cursor, limit=100)
            seen.extend(page.records)
            cursor = page.cursor or cursor
            if b >= batches:
                time.sleep(0.05)
        assert proc.wait(timeout=60) == 0
        seen.extend(read_all(store, "ev", after=cursor))
        expected = {"start"} | {
            r["id"] for w in ("main", "proc") for b in range(batches) for r in _keyed(w, b, size)
        }
        _check_exactly_once(seen, expected)
        assert store.count("ev") == len(expected)
    finally:
        store.close()


_forked_store: SQLiteIngestStore | None = None


def _write_from_fork() -> None:
    assert _forked_store is not None
    _forked_store.write_batch("ev", [{"from": "child", "i": i} for i in range(3)])


def test_store_inherited_through_fork_opens_its_own_connection(
    store: SQLiteIngestStore,
) -> None:
    global _forked_store
    store.write("ev", {"from": "parent"})  # the parent's connection exists before the fork
    _forked_store = store
    try:
        proc = mp.get_context("fork").Process(target=_write_from_fork)
        proc.start()
        proc.join(timeout=60)
    finally:
        _forked_store = None
    assert proc.exitcode == 0
    store.write("ev", {"from": "parent"})  # the parent's connection still works
    assert [r.data["from"] for r in read_all(store, "ev")] == ["parent"] + ["child"] * 3 + [
        "parent"
    ]


def test_locked_database_is_unavailable(db: Path) -> None:
    store = SQLiteIngestStore(db, busy_timeout_ms=50)
    try:
        store.write("ev", {"v": 0})
        before = state(store, "ev")
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        try:
            with pytest.raises(Unavailable) as info:
                store.write_batch("ev", [{"v": 1}, {"v": 2}])
            assert isinstance(info.value.__cause__, sqlite3.OperationalError)
            with pytest.raises(Unavailable):
                store.delete_before("ev", dt.datetime(2100, 1, 1))
            assert state(store, "ev") == before  # readers are not blocked (WAL)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert store.write("ev", {"v": 3}).written == 1
    finally:
        store.close()


# ---------------------------------------------------------------------------- atomic batches
def test_engine_failure_midway_leaves_nothing_written(store: SQLiteIngestStore, db: Path) -> None:
    store.write_batch("ev", [{"id": f"old{i}"} for i in range(3)], key_field="id")
    before = state(store, "ev", "fresh")
    with sqlite3.connect(db) as raw:  # the engine itself rejects one record of the batch
        raw.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON ingest_records "
            "WHEN json_extract(NEW.data, '$.poison') IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'poisoned record'); END"
        )
    batch: list[dict[str, Any]] = [{"id": f"new{i}"} for i in range(100)]
    batch[60] = {"id": "bad", "poison": True}
    for stream in ("ev", "fresh"):
        with pytest.raises(Conflict) as info:
            store.write_batch(stream, batch, key_field="id")
        assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert state(store, "ev", "fresh") == before
    del batch[60]
    assert store.write_batch("ev", batch, key_field="id").written == 99


# ------------------------------------------------------------------------- semantics choices
def test_missing_or_null_time_field_is_invalid(store: SQLiteIngestStore) -> None:
    with pytest.raises(InvalidInput, match="no event-time field 'at'"):
        store.write_batch("ev", [{"at": 1}, {"other": 2}], time_field="at")
    with pytest.raises(InvalidInput, match=r"records\[1\]\.at"):
        store.write_batch("ev", [{"at": 1}, {"at": None}], time_field="at")
    assert store.streams() == []


def test_int_keys_are_their_decimal_string(store: SQLiteIngestStore) -> None:
    assert store.write_batch("ev", [{"id": 42}, {"id": "42"}], key_field="id").duplicates == 1
    assert store.write("ev", {"v": 1}, key=7).written == 1  # type: ignore[arg-type]
    assert [r.key for r in read_all(store, "ev")] == ["42", "7"]
    with pytest.raises(InvalidInput):
        store.write("ev", {"v": 1}, key=True)  # type: ignore[arg-type]


def test_null_key_field_means_no_key(store: SQLiteIngestStore) -> None:
    batch = [{"id": None, "v": 1}, {"id": None, "v": 1}]
    assert store.write_batch("ev", batch, key_field="id").written == 2


def test_error_messages_name_the_record(store: SQLiteIngestStore) -> None:
    with pytest.raises(InvalidInput, match=r"records\[2\]\.x\[1\]"):
        store.write_batch("ev", [{}, {}, {"x": [1.0, float("nan")]}])
    with pytest.raises(InvalidInput, match=r"records\[1\]"):
        store.write_batch("ev", [{}, object()])  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["ünï", "a" * 129, "1abc", "-x"])
def test_stream_names_follow_check_name(store: SQLiteIngestStore, name: str) -> None:
    with pytest.raises(InvalidInput, match="invalid stream name"):
        store.write(name, {"v": 1})
    for fn in (store.read, store.count, store.drop):
        with pytest.raises(InvalidInput):
            fn(name)
    assert store.write("a" * 128, {"v": 1}).written == 1
    assert store.write("_x-1", {"v": 1}).written == 1


def test_empty_batch_does_not_create_the_stream(store: SQLiteIngestStore) -> None:
    assert store.write_batch("ev", iter([])) == WriteResult()
    assert store.streams() == []


def test_windows_accept_iso_strings(store: SQLiteIngestStore) -> None:
    store.write_batch("ev", [{"at": f"2024-01-0{d}"} for d in range(1, 6)], time_field="at")
    start: Any = "2024-01-02"
    assert store.count("ev", start=start, end=dt.datetime(2024, 1, 4)) == 2
    with pytest.raises(InvalidInput):
        store.read("ev", start="yesterday")  # type: ignore[arg-type]


def test_use_after_close_is_unavailable(db: Path) -> None:
    store = SQLiteIngestStore(db)
    store.write("ev", {"v": 1})
    store.close()
    with pytest.raises(Unavailable):
        store.write("ev", {"v": 2})
    with pytest.raises(Unavailable):
        store.read("ev")
    store.close()


# ---------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "kwargs",
    [{"busy_timeout_ms": -1}, {"busy_timeout_ms": 1.5}, {"synchronous": "SOMETIMES"}],
    ids=repr,
)
def test_bad_settings(db: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SQLiteIngestStore(db, **kwargs)


def test_memory_path_is_rejected() -> None:
    with pytest.raises(ConfigError):
        SQLiteIngestStore(":memory:")


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"this is not a database, just some text that is long enough" * 100)
    with pytest.raises(ConfigError) as info:
        SQLiteIngestStore(path)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_newer_schema_is_refused(db: Path) -> None:
    SQLiteIngestStore(db).close()
    with sqlite3.connect(db) as raw:
        raw.execute("PRAGMA user_version = 99")
    with pytest.raises(StrataError, match="newer strataml"):
        SQLiteIngestStore(db)


# ------------------------------------------------------------------------- fast paths = spec
