"""LMDBOnlineStore: the online contract suite plus LMDB-specific behaviour."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import pyarrow as pa
import pytest

from strataml import codec
from strataml.aio import AsyncOnlineAdapter
from strataml.errors import (
    BackendError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    Unavailable,
)
from strataml.local import LMDB, LMDB_CAPS, LMDBConfig, lmdb_online
from strataml.local.lmdb_online import LMDBOnlineStore
from strataml.registry import StackContext
from strataml.testing.online import AsyncOnlineStoreTests, OnlineStoreTests

UTC = dt.UTC


@pytest.fixture
def online_store(tmp_path: Path) -> Iterator[LMDBOnlineStore]:
    store = LMDBOnlineStore(tmp_path / "online.lmdb", sync=False)
    yield store
    store.close()


class TestLMDBOnlineContract(OnlineStoreTests):
    pass


class TestLMDBAsyncOnlineContract(AsyncOnlineStoreTests):
    pass


def _raw_entries(path: Path | str) -> int:
    """Rows physically present in the data sub-db (the store must be closed)."""
    env = lmdb.open(str(path), max_dbs=8, readonly=True)
    try:
        db = env.open_db(b"strataml.data", create=False)
        with env.begin() as txn:
            return int(txn.stat(db)["entries"])
    finally:
        env.close()


# --------------------------------------------------------------------------------- lifecycle
def test_factory_builds_store(tmp_path: Path) -> None:
    ctx = StackContext()
    store = LMDB.factories["online"](LMDBConfig(path=tmp_path / "o.lmdb", sync=False), ctx)
    try:
        assert isinstance(store, LMDBOnlineStore)
        assert store.capabilities is LMDB_CAPS
        assert store.blocking_io is False
        store.write("v", [{"id": 1, "x": 1}], entities=["id"])
        assert store.get("v", {"id": 1}) == {"x": 1}
    finally:
        store.close()


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with LMDBOnlineStore(path) as store:
        store.write("pairs", [{"t": "a", "u": 1, "v": [1.5, None]}], entities=["t", "u"])
        store.write("ttl", [{"id": 1, "v": 1}], entities=["id"], ttl=dt.timedelta(hours=1))
        store.write("gone", [{"id": 1}], entities=["id"])
        store.drop("gone")
    with LMDBOnlineStore(path) as store:
        assert store.views() == ["pairs", "ttl"]
        assert store.get("pairs", {"u": 1, "t": "a"}) == {"v": [1.5, None]}
        assert store.get("ttl", {"id": 1}) == {"v": 1}
        with pytest.raises(SchemaError):
            store.write("pairs", [{"t": "a", "v": 2}], entities=["t"])  # entity key persisted
        with pytest.raises(NotFound):
            store.get("gone", {"id": 1})


def test_close_is_idempotent_and_final(tmp_path: Path) -> None:
    store = LMDBOnlineStore(tmp_path / "db")
    store.write("v", [{"id": 1}], entities=["id"])
    store.close()
    store.close()
    for call in (
        lambda: store.get("v", {"id": 1}),
        lambda: store.get_many("v", [{"id": 1}]),
        lambda: store.write("v", [{"id": 2}], entities=["id"]),
        lambda: store.delete("v", [{"id": 1}]),
        lambda: store.drop("v"),
        store.views,
        store.purge_expired,
    ):
        with pytest.raises(Unavailable):
            call()


def test_async_adapter_closes_once(tmp_path: Path) -> None:
    import asyncio

    store = LMDBOnlineStore(tmp_path / "db")
    adapter = AsyncOnlineAdapter(store)
    asyncio.run(adapter.aclose())
    asyncio.run(adapter.aclose())
    with pytest.raises(Unavailable):
        asyncio.run(adapter.get("v", {"id": 1}))


def test_same_path_twice_in_one_process_shares_environment(tmp_path: Path) -> None:
    a = LMDBOnlineStore(tmp_path / "db")
    b = LMDBOnlineStore(tmp_path / "db")
    a.write("v", [{"id": 1, "x": "a"}], entities=["id"])
    assert b.get("v", {"id": 1}) == {"x": "a"}
    a.close()
    b.write("v", [{"id": 2, "x": "b"}], entities=["id"])  # b still works after a closed
    assert b.get_many("v", [{"id": 1}, {"id": 2}]) == [{"x": "a"}, {"x": "b"}]
    with pytest.raises(Unavailable):
        a.get("v", {"id": 1})
    b.close()


def test_view_recreated_elsewhere_is_noticed(tmp_path: Path) -> None:
    """Another handle drops and re-creates a view with new entity columns: cached metadata
    must not be used to read the new view."""
    a = LMDBOnlineStore(tmp_path / "db")
    b = LMDBOnlineStore(tmp_path / "db")
    try:
        a.write("v", [{"id": 1, "x": 1}], entities=["id"])
        assert b.get("v", {"id": 1}) == {"x": 1}  # b caches the view's layout
        a.drop("v")
        with pytest.raises(NotFound):
            b.get("v", {"id": 1})
        a.write("v", [{"id": 1, "x": 2}], entities=["id"])
        assert b.get("v", {"id": 1}) == {"x": 2}
        a.drop("v")
        a.write("v", [{"t": "x", "u": 1, "x": 3}], entities=["u", "t"])
        assert b.get("v", {"t": "x", "u": 1}) == {"x": 3}
        with pytest.raises(InvalidInput):
            b.get("v", {"id": 1})
        with pytest.raises(SchemaError):
            b.write("v", [{"id": 5}], entities=["id"])
    finally:
        a.close()
        b.close()


def test_unusable_path_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(Unavailable):
        LMDBOnlineStore(tmp_path / "file")
    with pytest.raises(Unavailable):
        LMDBOnlineStore(tmp_path / "file" / "below")


def test_not_an_lmdb_environment(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "data.mdb").write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(BackendError):
        LMDBOnlineStore(tmp_path / "db")


def test_format_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "db"
    LMDBOnlineStore(path).close()
    env = lmdb.open(str(path), max_dbs=8)
    sys_db = env.open_db(b"strataml.sys")
    with env.begin(write=True) as txn:
        txn.put(b"format", b"99", db=sys_db)
    env.close()
    with pytest.raises(SchemaError, match="format"):
        LMDBOnlineStore(path)


# ------------------------------------------------------------------------------------- limits
def test_map_full_is_limit_exceeded_and_changes_nothing(tmp_path: Path) -> None:
    with LMDBOnlineStore(tmp_path / "db", map_size_mb=1) as store:
        store.write("v", [{"id": 0, "x": "kept"}], entities=["id"])
        rows = [{"id": i, "blob": b"\x01" * 50_000} for i in range(1, 60)]  # ~3 MB
        with pytest.raises(LimitExceeded, match="map_size_mb"):
            store.write("v", rows, entities=["id"])
        assert store.get("v", {"id": 0}) == {"x": "kept"}
        assert store.get_many("v", [{"id": 1}, {"id": 59}]) == [None, None]
        store.write("v", [{"id": 1, "x": "small"}], entities=["id"])  # still usable
        assert store.get("v", {"id": 1}) == {"x": "small"}


def test_entity_key_over_lmdb_key_limit(online_store: LMDBOnlineStore) -> None:
    online_store.write("v", [{"id": "short", "x": 1}], entities=["id"])
    with pytest.raises(LimitExceeded):
        online_store.write("v", [{"id": "k" * 600, "x": 1}], entities=["id"])
    assert online_store.get("v", {"id": "k" * 600}) is None
    assert online_store.get("v", {"id": "short"}) == {"x": 1}


def test_key_ints_beyond_64_bits_are_invalid(online_store: LMDBOnlineStore) -> None:
    online_store.write("v", [{"id": 2**64 - 1, "x": 1}], entities=["id"])
    assert online_store.get("v", {"id": 2**64 - 1}) == {"x": 1}
    with pytest.raises(InvalidInput):
        online_store.write("v", [{"id": 2**64, "x": 1}], entities=["id"])
    with pytest.raises(InvalidInput):
        online_store.get("v", {"id": -(2**63) - 1})


# ------------------------------------------------------------------------------- input checks
@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": dt.timedelta(0)},
        {"ttl": dt.timedelta(seconds=-1)},
        {"ttl": 60},
        {"event_time": "id"},
        {"event_time": "missing", "ttl": dt.timedelta(hours=1)},
    ],
    ids=["ttl_zero", "ttl_negative", "ttl_int", "event_time_is_entity", "event_time_missing"],
)
def test_bad_write_options(online_store: LMDBOnlineStore, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        online_store.write("v", [{"id": 1, "x": 1}], entities=["id"], **kwargs)
    assert online_store.views() == []


@pytest.mark.parametrize(
    "rows",
    [{"id": 1}, "abc", 42, [{"id": 1}, ("id", 2)]],
    ids=["single_mapping", "string", "int", "tuple_row"],
)
def test_bad_rows(online_store: LMDBOnlineStore, rows: Any) -> None:
    with pytest.raises(InvalidInput):
        online_store.write("v", rows, entities=["id"])
    assert online_store.views() == []


def test_bad_arguments(online_store: LMDBOnlineStore) -> None:
    online_store.write("v", [{"id": 1, "x": 1}], entities=["id"])
    with pytest.raises(InvalidInput):
        online_store.write("", [{"id": 1}], entities=["id"])
    with pytest.raises(InvalidInput):
        online_store.write("w", [{"id": 1}], entities="id")
    with pytest.raises(InvalidInput):
        online_store.write("w", [{"id": 1}], entities=["id", "id"])
    with pytest.raises(InvalidInput):
        online_store.get(["v"], {"id": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        online_store.get("v", {"id": 1}, "x")
    with pytest.raises(InvalidInput):
        online_store.get("v", [1])  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        online_store.get_many("v", {"id": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        online_store.delete("v", {"id": 1})  # type: ignore[arg-type]
    assert online_store.get("v", {"id": 1}) == {"x": 1}


def test_nested_values(online_store: LMDBOnlineStore) -> None:
    online_store.write("v", [{"id": 1, "m": {"a": [1, {"b": None}]}}], entities=["id"])
    assert online_store.get("v", {"id": 1}) == {"m": {"a": [1, {"b": None}]}}
    for bad in ({1: "x"}, [{"a": {2: "x"}}], {"a": [{(1, 2): 3}]}):
        with pytest.raises(InvalidInput):
            online_store.write("v", [{"id": 2, "ok": 1}, {"id": 1, "m": bad}], entities=["id"])
    with pytest.raises(InvalidInput):
        online_store.write("v", [{"id": 1, 5: "int feature name"}], entities=["id"])
    assert online_store.get_many("v", [{"id": 1}, {"id": 2}]) == [
        {"m": {"a": [1, {"b": None}]}},
        None,
    ]


def test_event_time_forms(online_store: LMDBOnlineStore) -> None:
    now = dt.datetime.now(UTC)
    old, recent = now - dt.timedelta(days=2), now - dt.timedelta(minutes=1)
    rows = [
        {"id": 1, "ts": old.isoformat(), "x": 1},
        {"id": 2, "ts": recent.isoformat(), "x": 2},
        {"id": 3, "ts": old.timestamp(), "x": 3},
        {"id": 4, "ts": recent.timestamp(), "x": 4},
        {"id": 5, "ts": recent.replace(tzinfo=None), "x": 5},
    ]
    online_store.write("v", rows, entities=["id"], ttl=dt.timedelta(days=1), event_time="ts")
    got = online_store.get_many("v", [{"id": i} for i in range(1, 6)], ["x"])
    assert got == [None, {"x": 2}, None, {"x": 4}, {"x": 5}]
    table = pa.table(
        {
            "id": pa.array([6, 7], pa.int64()),
            "ts": pa.array(
                [old.replace(tzinfo=None), recent.replace(tzinfo=None)], pa.timestamp("ns")
            ),
        }
    )
    online_store.write("v", table, entities=["id"], ttl=dt.timedelta(days=1), event_time="ts")
    assert online_store.get_many("v", [{"id": 6}, {"id": 7}], ["ts"]) == [
        None,
        {"ts": recent},
    ]
    for bad in (None, "not a time", float("nan")):
        with pytest.raises(InvalidInput):
            online_store.write(
                "v", [{"id": 1, "ts": bad}], entities=["id"], ttl=dt.timedelta(1), event_time="ts"
            )
    null_ts = pa.table({"id": [8], "ts": pa.array([None], pa.timestamp("us"))})
    with pytest.raises(InvalidInput):
        online_store.write("v", null_ts, entities=["id"], ttl=dt.timedelta(1), event_time="ts")


def test_expired_then_fresh_duplicate_in_one_batch(online_store: LMDBOnlineStore) -> None:
    now = dt.datetime.now(UTC)
    rows = [
        {"id": 1, "ts": now, "x": "fresh-then-stale"},
        {"id": 1, "ts": now - dt.timedelta(hours=3), "x": "stale"},
        {"id": 2, "ts": now - dt.timedelta(hours=3), "x": "stale"},
        {"id": 2, "ts": now, "x": "stale-then-fresh"},
    ]
    online_store.write("v", rows, entities=["id"], ttl=dt.timedelta(hours=1), event_time="ts")
    assert online_store.get_many("v", [{"id": 1}, {"id": 2}], ["x"]) == [
        None,
        {"x": "stale-then-fresh"},
    ]


# ------------------------------------------------------------------------------------- expiry
class _Clock:
    """The store's clock (``time.time_ns``), moved by the test: no sleeping, no race."""

    def __init__(self, now: dt.datetime) -> None:
        self.ns = int(now.timestamp() * 1_000_000) * 1000

    def time_ns(self) -> int:
        return self.ns


def test_purge_expired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "db"
    now = dt.datetime.now(UTC)
    clock = _Clock(now)
    monkeypatch.setattr(lmdb_online, "time", clock)
    with LMDBOnlineStore(path) as store:
        soon = now - dt.timedelta(seconds=59.2)  # expires 0.8 s from now with a 1 min ttl
        rows = [{"id": i, "ts": soon if i % 3 else now, "x": i} for i in range(30)]
        store.write("a", rows, entities=["id"], ttl=dt.timedelta(minutes=1), event_time="ts")
        assert store.get("a", {"id": 1}) == {"ts": soon, "x": 1}  # stored, not yet expired
        store.write("b", [{"id": i, "x": i} for i in range(5)], entities=["id"])
        stale = now - dt.timedelta(hours=5)
        store.write(
            "c",
            [{"id": 1, "ts": stale}],
            entities=["id"],
            ttl=dt.timedelta(hours=1),
            event_time="ts",
        )
        assert store.get("c", {"id": 1}) is None
        clock.ns += 1_000_000_000  # one second later
        assert store.get("a", {"id": 1}) is None
        assert store.get_many("a", [{"id": 2}, {"id": 3}, {"id": 4}], ["x"]) == [
            None,
            {"x": 3},
            None,
        ]
        assert store.delete("a", [{"id": 1}, {"id": 0}]) == 1  # expired rows did not "exist"
        assert store.purge_expired(chunk=4) == 19  # 20 expired in "a", one already deleted
        assert store.purge_expired() == 0
        got = store.get_many("a", [{"id": i} for i in range(30)], ["x"])
        assert [r["x"] if r else None for r in got] == [
            i if i % 3 == 0 and i != 0 else None for i in range(30)
        ]
        assert store.get("b", {"id": 4}) == {"x": 4}
    assert _raw_entries(path) == 9 + 5  # live rows of "a" and "b"; "c" was never stored


def test_purge_expired_rejects_bad_chunk(online_store: LMDBOnlineStore) -> None:
    for chunk in (0, "5", 2.5, None, True):
        with pytest.raises(InvalidInput):
            online_store.purge_expired(chunk=chunk)  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- threads
def test_encoding_is_thread_safe() -> None:
    """Packing datetimes runs Python code (the packer's default hook) mid-pack: a packer shared
    between threads would mix their bytes (strataml.codec keeps one packer per thread)."""

    naive = dt.datetime(2020, 1, 1)  # naive datetimes and dates go through the hook
    failures: list[str] = []

    def work(tag: int) -> None:
        for i in range(4000):
            row = {"a": naive + dt.timedelta(seconds=i), "b": [naive] * 3, "s": "x" * tag}
            try:
                back = codec.decode_row(codec.encode_row(row))
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(repr(exc))
                return
            if back != {
                **row,
                "a": row["a"].replace(tzinfo=UTC),
                "b": [naive.replace(tzinfo=UTC)] * 3,
            }:
                failures.append(f"{row!r} -> {back!r}")
                return

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(tag,)) for tag in range(1, 5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert failures == []


def test_threads_read_and_write_concurrently(online_store: LMDBOnlineStore) -> None:
    base = dt.datetime(2024, 1, 1)  # naive: encoded through the packer's Python hook
    online_store.write("v", [{"id": i, "ts": base, "n": i} for i in range(20)], entities=["id"])
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        try:
            for r in range(30):
                rows = [
                    {"id": i, "ts": base + dt.timedelta(seconds=r), "n": i, "w": [base] * 3}
                    for i in range(20)
                ]
                online_store.write("v", rows, entities=["id"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                for i, row in enumerate(online_store.get_many("v", [{"id": i} for i in range(20)])):
                    assert row is not None and row["n"] == i
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        readers = [threading.Thread(target=reader) for _ in range(2)]
        writers = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        for t in readers:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
    assert online_store.get("v", {"id": 3}, ["n", "w"]) == {
        "n": 3,
        "w": [base.replace(tzinfo=UTC)] * 3,
    }


# ------------------------------------------------------------------------------ multi-process
_READER = r"""
import json, sys, time
from strataml.errors import NotFound
from strataml.local import lmdb_online
from strataml.local.lmdb_online import LMDBOnlineStore

path, final = sys.argv[1], int(sys.argv[2])
store = LMDBOnlineStore(path)
entities = [{"id": i} for i in range(50)]
print("ready", flush=True)
seen, torn, reads, late = set(), 0, 0, None
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    versions = {row["version"] for row in store.get_many("versions", entities)}
    reads += 1
    torn += len(versions) != 1
    seen |= versions
    try:
        late = store.get("late", {"k": "x"})
    except NotFound:
        pass
    if final in seen and late is not None:
        break
store.close()
print(json.dumps({"seen": sorted(seen), "torn": torn, "reads": reads, "late": late}))
"""


def test_second_process_reads_while_this_one_writes(tmp_path: Path) -> None:
    path = tmp_path / "db"
    final = 25
    with LMDBOnlineStore(path) as store:
        store.write("versions", [{"id": i, "version": 0} for i in range(50)], entities=["id"])
        child = subprocess.Popen(
            [sys.executable, "-c", _READER, str(path), str(final)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            for version in range(1, final + 1):
                rows = [{"id": i, "version": version} for i in range(50)]
                store.write("versions", rows, entities=["id"])
                time.sleep(0.005)
            store.write("late", [{"k": "x", "v": 1}], entities=["k"])  # a view made after start
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["torn"] == 0  # every read saw one whole committed write
    assert result["seen"][-1] == final
    assert set(result["seen"]) <= set(range(final + 1))
    assert result["late"] == {"v": 1}
