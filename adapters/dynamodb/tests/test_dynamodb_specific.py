"""DynamoDB-specific behaviour on the real emulator: the item layout, the commit protocol under
concurrent writers and abandoned leases, batch retries, the 400 KB item limit, TTL attributes,
table setup, error translation, secrets, registration."""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from hypothesis import given, settings
from hypothesis import strategies as st

from strataml import codec
from strataml.dev.servers import ServerHandle, free_port, stop
from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
)
from strataml.models import WriteResult
from strataml.registry import StackContext, get_adapter
from strataml.stack import open_stack
from strataml.testing.ingest import read_all
from strataml_dynamodb import DYNAMODB, INGEST_CAPS, ONLINE_CAPS, DynamoDBConfig
from strataml_dynamodb.client import Batcher, item_size, make_client
from strataml_dynamodb.commit import Head, Retry, num
from strataml_dynamodb.devserver import start
from strataml_dynamodb.errors import translate
from strataml_dynamodb.ingest import DynamoDBIngestStore
from strataml_dynamodb.layout import (
    head_key,
    key_slot,
    keys_pk,
    pad_seq,
    records_pk,
    row_pk,
    visible,
    visible_segments,
)
from strataml_dynamodb.online import DynamoDBOnlineStore
from strataml_dynamodb.pages import PAGE_ROWS, PageRow, build_page

SECRET = "wJalrXUtnFEMI-s3cr3t-K3y"
MakeConfig = Callable[..., DynamoDBConfig]


# ------------------------------------------------------------------------------------ layout
_holes = st.lists(
    st.tuples(st.integers(1, 60), st.integers(0, 12)).map(lambda p: (p[0], p[0] + p[1])),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(after=st.integers(0, 70), bound=st.integers(1, 70), holes=_holes)
def test_visible_segments_are_the_visible_positions(
    after: int, bound: int, holes: list[tuple[int, int]]
) -> None:
    segments = visible_segments(after, bound, holes)
    listed = [s for first, last in segments for s in range(first, last + 1)]
    assert listed == [s for s in range(after + 1, 80) if visible(s, bound, holes)]
    assert all(first <= last for first, last in segments)


def test_seq_sort_keys_sort_numerically() -> None:
    seqs = [1, 9, 10, 99, 100, 10**17, 10**18 - 1]
    assert sorted(pad_seq(s) for s in seqs) == [pad_seq(s) for s in seqs]
    assert len(pad_seq(10**18)) == 19


def test_key_slots_are_non_empty_and_short() -> None:
    assert key_slot("") == "="
    assert key_slot("k") == "=k"
    long_key = "é" * 400  # 800 UTF-8 bytes: hashed
    slot = key_slot(long_key)
    assert slot.startswith("#")
    assert len(slot.encode()) == 65
    assert key_slot(long_key + "x") != slot


def test_entity_keys_distinguish_types() -> None:
    view_id = b"\x01" * 8
    assert row_pk(view_id, codec.encode_key([42])) != row_pk(view_id, codec.encode_key(["42"]))
    assert row_pk(view_id, codec.encode_key([1, "a"])) != row_pk(
        view_id, codec.encode_key(["1", "a"])
    )


def test_item_size_follows_dynamodb_rules() -> None:
    item = {"pk": {"S": "ab"}, "n": {"N": "12345"}, "b": {"B": b"\x00" * 10}, "t": {"BOOL": True}}
    assert item_size(item) == (2 + 2) + (1 + 4) + (1 + 10) + (1 + 1)
    assert item_size({"s": {"S": "é"}}) == 1 + 2


# ------------------------------------------------------------------------- ingest: protocol
def _head(admin: Any, store: DynamoDBIngestStore, stream: str) -> dict[str, Any]:
    out = admin.get_item(TableName=store.table, Key=head_key(stream), ConsistentRead=True)
    item: dict[str, Any] = out["Item"]
    return item


def test_small_and_large_batches_commit_in_order(ingest: DynamoDBIngestStore) -> None:
    ingest.write_batch("s", [{"i": i} for i in range(30)])  # one transaction
    # over 97 keyed records (a key item each): lease + BatchWriteItem, in two pages
    ingest.write_batch("s", [{"i": i} for i in range(30, 330)], key_field="i")
    ingest.write("s", {"i": 330})
    records = read_all(ingest, "s", limit=97)
    assert [r.data["i"] for r in records] == list(range(331))
    assert [r.seq for r in records] == list(range(1, 332))
    assert ingest.count("s") == 331


def test_large_keyed_batch_is_deduplicated(ingest: DynamoDBIngestStore) -> None:
    # over 97 keyed records (a key item each, and their page) take the lease path
    first = ingest.write_batch("s", [{"id": f"k{i}"} for i in range(0, 120, 2)], key_field="id")
    assert first == WriteResult(written=60)
    again = ingest.write_batch("s", [{"id": f"k{i}"} for i in range(120)], key_field="id")
    assert again == WriteResult(written=60, duplicates=60)
    keys = [r.key for r in read_all(ingest, "s")]
    assert sorted(keys, key=lambda k: int(k[1:])) == [f"k{i}" for i in range(120)]  # type: ignore[index]


def test_concurrent_writers_and_a_reader_see_every_record_once(
    make_config: MakeConfig,
) -> None:
    config = make_config(lease_s=5.0, lease_wait_s=60.0)
    store = DynamoDBIngestStore.from_config(config)
    other = DynamoDBIngestStore.from_config(config)  # another process's store, own head cache
    store.write("s", {"w": -1, "j": 0})
    seen: list[tuple[int, int, int]] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        target = store if w % 2 else other
        try:
            for j in range(6):
                size = 130 if (w, j) in {(0, 2), (3, 4)} else 1 + (w + j) % 5
                target.write_batch("s", [{"w": w, "j": j, "n": n} for n in range(size)])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def reader() -> None:
        cursor = None
        try:
            while True:
                finished = done.is_set()  # read once more after the writers are done
                page = store.read("s", after=cursor, limit=7)
                seen.extend((r.seq, r.data["w"], r.data["j"]) for r in page.records)
                cursor = page.cursor
                if finished and not page.has_more:
                    return
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    read_thread = threading.Thread(target=reader)
    read_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    read_thread.join()
    assert errors == []
    everything = read_all(store, "s")
    assert [(r.seq, r.data["w"], r.data["j"]) for r in everything] == seen  # once, in order
    seqs = [s for s, _, _ in seen]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    expected = 1 + sum(
        130 if (w, j) in {(0, 2), (3, 4)} else 1 + (w + j) % 5 for w in range(4) for j in range(6)
    )
    assert len(seen) == expected
    # each batch is contiguous: a batch is committed whole, never interleaved with another
    by_batch: dict[tuple[int, int], list[int]] = {}
    for s, w, j in seen:
        by_batch.setdefault((w, j), []).append(s)
    assert all(b == list(range(b[0], b[0] + len(b))) for b in by_batch.values())
    store.close()
    other.close()


def test_concurrent_writers_of_the_same_keys_store_each_once(make_config: MakeConfig) -> None:
    config = make_config(lease_wait_s=60.0)
    stores = [DynamoDBIngestStore.from_config(config) for _ in range(3)]
    results: list[WriteResult] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        for j in range(4):
            batch = [{"id": f"k{(n * 7 + i + j) % 25}"} for n in range(12)]
            r = stores[i].write_batch("s", batch, key_field="id")
            with lock:
                results.append(r)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = [r.key for r in read_all(stores[0], "s")]
    assert len(keys) == len(set(keys))
    assert sum(r.written for r in results) == len(keys)
    assert sum(r.written + r.duplicates for r in results) == 3 * 4 * 12
    for s in stores:
        s.close()


def _zombie_page(gen: str, start: int, keys: list[str | None]) -> dict[str, Any]:
    """A page as a writer that lost its lease writes it (records ``{"zombie": true}``)."""
    rows = [
        PageRow(k, 0, b'{"zombie":true}', None if k is None else f'"{k}"'.encode()) for k in keys
    ]
    return build_page(records_pk("s", gen), start, rows, 0)


def _zombie_key(gen: str, key: str, seq: int) -> dict[str, Any]:
    return {
        "pk": {"S": keys_pk("s", gen)},
        "sk": {"S": key_slot(key)},
        "s": {"N": str(seq)},
    }


def _expire_with_zombie_lease(admin: Any, store: DynamoDBIngestStore, reserve: int) -> int:
    """Reserve ``reserve`` positions under a lease of a dead writer, already expired; return
    the first reserved position."""
    head = _head(admin, store, "s")
    n = int(head["n"]["N"])
    past = str(time.time_ns() // 1_000_000 - 1000)
    admin.update_item(
        TableName=store.table,
        Key=head_key("s"),
        UpdateExpression="SET n = :n, lo = :z, lu = :past",
        ExpressionAttributeValues={
            ":n": {"N": str(n + reserve)},
            ":z": {"S": "zombie"},
            ":past": {"N": past},
        },
    )
    return n


def test_abandoned_lease_becomes_a_hole(ingest: DynamoDBIngestStore, admin: Any) -> None:
    """A writer took the lease, reserved positions, wrote some records and key items, then
    died: the next writer breaks the expired lease; nothing of the dead writer is visible, its
    keys do not count, and its late writes stay invisible."""
    ingest.write_batch("s", [{"id": "a"}, {"id": "b"}], key_field="id")
    gen = _head(admin, ingest, "s")["g"]["S"]
    n = _expire_with_zombie_lease(admin, ingest, 3)
    # the dead writer's first page (two records) and key items
    admin.put_item(TableName=ingest.table, Item=_zombie_page(gen, n, ["x", "y"]))
    for seq, key in ((n, "x"), (n + 1, "y")):
        admin.put_item(TableName=ingest.keys_table, Item=_zombie_key(gen, key, seq))
    assert [r.data["id"] for r in read_all(ingest, "s")] == ["a", "b"]  # reserved: invisible
    other = DynamoDBIngestStore.from_config(ingest._config)
    assert other.write_batch("s", [{"id": "x"}, {"id": "y"}, {"id": "a"}], key_field="id") == (
        WriteResult(written=2, duplicates=1)
    )
    head = _head(admin, ingest, "s")
    assert "lo" not in head
    assert [int(v["N"]) for v in head["h"]["L"]] == [n, n + 3]
    # the zombie's late page lands in its hole: never visible
    admin.put_item(TableName=ingest.table, Item=_zombie_page(gen, n + 2, [None]))
    # the zombie wakes up and commits: its lease is gone and its range a hole
    zombie_head = Head(None)
    zombie_head.live = True
    with pytest.raises(Retry):
        other._commit_lease("s", zombie_head, "zombie", gen, n, n + 3)
    records = read_all(ingest, "s", limit=1)
    assert [r.data["id"] for r in records] == ["a", "b", "x", "y"]
    assert [r.seq for r in records] == [1, 2, n + 3, n + 4]
    assert ingest.count("s") == 4
    assert ingest.delete_before("s", dt.datetime(2999, 1, 1)) == 4
    other.close()


def test_late_key_write_of_a_lost_lease_admits_no_duplicate(
    ingest: DynamoDBIngestStore, admin: Any
) -> None:
    """Key items are not fenced by the lease: a writer that lost its lease can overwrite the
    key item of a record committed after its range became a hole. The key still counts."""
    ingest.write("s", {"id": "first"}, key="first")
    gen = _head(admin, ingest, "s")["g"]["S"]
    n = _expire_with_zombie_lease(admin, ingest, 2)
    other = DynamoDBIngestStore.from_config(ingest._config)
    batch = [{"id": f"k{i}"} for i in range(150)]  # a large batch: the lease path
    assert other.write_batch("s", batch, key_field="id") == WriteResult(written=150)
    # the zombie wakes up: its key items (into its hole) overwrite those of the new records
    for seq, key in ((n, "k0"), (n + 1, "k149")):
        admin.put_item(TableName=ingest.keys_table, Item=_zombie_key(gen, key, seq))
    again = [{"id": "k0"}, {"id": "k149"}, {"id": "k150"}]
    assert ingest.write_batch("s", again, key_field="id") == WriteResult(written=1, duplicates=2)
    assert ingest.write("s", {"id": "k0"}, key="k0") == WriteResult(duplicates=1)
    assert [r.key for r in read_all(ingest, "s")] == ["first", *(f"k{i}" for i in range(151))]
    other.close()


def test_key_of_an_abandoned_batch_is_free_for_its_retry(
    ingest: DynamoDBIngestStore, admin: Any
) -> None:
    ingest.write("s", {"id": "first"}, key="first")
    gen = _head(admin, ingest, "s")["g"]["S"]
    n = _expire_with_zombie_lease(admin, ingest, 1)
    admin.put_item(TableName=ingest.keys_table, Item=_zombie_key(gen, "lost", n))
    ingest._heads.clear()
    assert ingest.write("s", {"id": "lost"}, key="lost") == WriteResult(written=1)
    assert ingest.write("s", {"id": "lost"}, key="lost") == WriteResult(duplicates=1)
    assert [r.key for r in read_all(ingest, "s")] == ["first", "lost"]


def test_commit_whose_response_was_lost_is_recognized(
    ingest: DynamoDBIngestStore, admin: Any
) -> None:
    """botocore retries a commit whose response was lost; the retry's condition fails, and the
    writer must recognize its own commit instead of writing the batch again."""
    ingest.write("s", {"v": 0})
    head = ingest._read_head("s")
    me, start, end = "writer-1", head.n, head.n + 2
    admin.update_item(
        TableName=ingest.table,
        Key=head_key("s"),
        UpdateExpression="SET n = :e, lo = :me, lu = :f",
        ExpressionAttributeValues={
            ":e": {"N": str(end)},
            ":me": {"S": me},
            ":f": {"N": str(time.time_ns() // 1_000_000 + 60_000)},
        },
    )
    ingest._commit_lease("s", head, me, head.gen, start, end)  # the first attempt
    ingest._commit_lease("s", head, me, head.gen, start, end)  # its retry: recognized
    after = ingest._read_head("s")
    assert (after.c, after.n, after.owner, after.holes) == (end, end, None, [])


def test_writer_waits_for_a_live_lease(make_config: MakeConfig, admin: Any) -> None:
    store = DynamoDBIngestStore.from_config(make_config(lease_wait_s=0.3))
    store.write("s", {"v": 1})
    future = str(time.time_ns() // 1_000_000 + 60_000)
    admin.update_item(
        TableName=store.table,
        Key=head_key("s"),
        UpdateExpression="SET lo = :o, lu = :f",
        ExpressionAttributeValues={":o": {"S": "busy"}, ":f": {"N": future}},
    )
    with pytest.raises(Unavailable, match="lease"):
        store.write("s", {"v": 2})
    assert [r.data["v"] for r in read_all(store, "s")] == [1]
    store.close()


class _FailingBatcher(Batcher):
    """Forwards to the real emulator, then fails after ``after`` requests (a crash midway)."""

    def __init__(self, real: Batcher, after: int) -> None:
        super().__init__(real.client, real.table, real.max_retries)
        self.left = after

    def write(self, requests: Any, what: str) -> None:
        if self.left <= 0:
            raise Unavailable("injected: the network went away")
        self.left -= 1
        super().write(requests, what)


def test_failed_large_batch_leaves_nothing_and_retries_cleanly(
    ingest: DynamoDBIngestStore, admin: Any
) -> None:
    ingest.write("s", {"id": "first"}, key="first")
    real = ingest._batch
    ingest._batch = _FailingBatcher(real, after=0)
    batch = [{"id": f"k{i}"} for i in range(120)]
    with pytest.raises(Unavailable, match="injected"):
        ingest.write_batch("s", batch, key_field="id")
    assert [r.key for r in read_all(ingest, "s")] == ["first"]
    head = _head(admin, ingest, "s")
    assert "lo" not in head  # released: the next writer need not wait for it to expire
    assert head["c"] == head["n"]
    ingest._batch = real
    assert ingest.write_batch("s", batch, key_field="id") == WriteResult(written=120)
    assert ingest.count("s") == 121


def test_failed_first_batch_does_not_create_the_stream(ingest: DynamoDBIngestStore) -> None:
    real = ingest._batch
    ingest._batch = _FailingBatcher(real, after=0)
    with pytest.raises(Unavailable):
        ingest.write_batch("new", [{"i": i} for i in range(200)], key_field="i")
    ingest._batch = real
    assert "new" not in ingest.streams()
    with pytest.raises(NotFound):
        ingest.read("new")
    ingest.write_batch("new", [{"i": i} for i in range(200)], key_field="i")
    assert ingest.count("new") == 200


def test_positions_continue_after_drop(ingest: DynamoDBIngestStore) -> None:
    ingest.write_batch("s", [{"i": i} for i in range(5)])
    cursor = ingest.read("s", limit=2).cursor
    ingest.drop("s")
    ingest.write("s", {"i": "new"})
    [rec] = read_all(ingest, "s")
    assert rec.seq == 6
    assert [r.data["i"] for r in read_all(ingest, "s", after=cursor)] == ["new"]


def test_stale_head_cache_is_only_a_retry(make_config: MakeConfig) -> None:
    config = make_config()
    a = DynamoDBIngestStore.from_config(config)
    b = DynamoDBIngestStore.from_config(config)
    for i in range(6):
        (a if i % 2 else b).write("s", {"i": i}, key=f"k{i % 4}")
    assert [r.data["i"] for r in read_all(a, "s")] == [0, 1, 2, 3]
    b.drop("s")
    assert a.write("s", {"i": 9}, key="k0") == WriteResult(written=1)  # a's head is stale
    assert [r.data["i"] for r in read_all(b, "s")] == [9]
    a.close()
    b.close()


def test_pages_keep_per_record_positions(ingest: DynamoDBIngestStore, admin: Any) -> None:
    """A batch spanning several pages: cursors inside pages, limits and event-time windows
    cutting through pages, counts and retention all see records one by one."""
    n = PAGE_ROWS * 2 + 37
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    minute = dt.timedelta(minutes=1)
    recs = [{"i": i, "at": (base + ((i * 37) % n) * minute).isoformat()} for i in range(n)]
    assert ingest.write_batch("s", recs, key_field="i", time_field="at").written == n
    ingest.write_batch("s", recs[:5], time_field="at")  # no keys: a page of its own
    recs += recs[:5]
    gen = _head(admin, ingest, "s")["g"]["S"]
    pages = admin.query(
        TableName=ingest.table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": records_pk("s", gen)}},
    )["Items"]
    assert len(pages) == 4
    assert [r.seq for r in read_all(ingest, "s", limit=1000)] == list(range(1, n + 6))
    for k in (1, PAGE_ROWS - 1, PAGE_ROWS, PAGE_ROWS + 1, 2 * PAGE_ROWS + 36, n):
        cursor = ingest.read("s", limit=k).cursor
        assert [r.seq for r in read_all(ingest, "s", after=cursor, limit=61)] == list(
            range(k + 1, n + 6)
        )
    lo, hi = base + 100 * minute, base + 400 * minute
    inside = [i for i, r in enumerate(recs) if lo <= dt.datetime.fromisoformat(str(r["at"])) < hi]
    got = read_all(ingest, "s", start=lo, end=hi, limit=61)
    assert [r.seq - 1 for r in got] == inside
    assert ingest.count("s", start=lo, end=hi) == len(inside)
    assert ingest.count("s", start=lo) + ingest.count("s", end=lo) == n + 5
    cut = base + 200 * minute
    old = [i for i, r in enumerate(recs) if dt.datetime.fromisoformat(str(r["at"])) < cut]
    assert ingest.delete_before("s", cut) == len(old)
    kept = [i for i in range(n + 5) if i not in set(old)]
    assert [r.seq - 1 for r in read_all(ingest, "s", limit=77)] == kept
    assert ingest.count("s") == len(kept)
    assert ingest.delete_before("s", cut) == 0
    # the deleted records' keys are forgotten, the kept ones' still count
    again = ingest.write_batch("s", recs[:n], key_field="i", time_field="at")
    forgotten = sum(1 for i in old if i < n)
    assert again == WriteResult(written=forgotten, duplicates=n - forgotten)


def test_retention_forgets_keys(ingest: DynamoDBIngestStore, admin: Any) -> None:
    ingest.write_batch(
        "s", [{"id": "old", "at": "2020-01-01"}, {"id": "new", "at": "2030-01-01"}],
        key_field="id", time_field="at",
    )  # fmt: skip
    assert ingest.delete_before("s", dt.datetime(2025, 1, 1)) == 1
    gen = _head(admin, ingest, "s")["g"]["S"]
    keys = admin.query(
        TableName=ingest.keys_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": keys_pk("s", gen)}},
    )["Items"]
    assert [k["sk"]["S"] for k in keys] == ["=new"]
    assert ingest.write("s", {"id": "old"}, key="old").written == 1
    assert ingest.write("s", {"id": "new"}, key="new").duplicates == 1


#: Event times before and after the retention cutoff ``CUT`` of the two-store tests.
OLD, NEW = "2020-01-01T00:00:00Z", "2030-01-01T00:00:00Z"
CUT = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def two_stores(
    make_config: MakeConfig,
) -> Iterator[tuple[DynamoDBIngestStore, DynamoDBIngestStore]]:
    """Two ingest stores on the same tables: two processes."""
    config = make_config()
    a = DynamoDBIngestStore.from_config(config)
    b = DynamoDBIngestStore.from_config(config)
    yield a, b
    a.close()
    b.close()


def test_concurrent_retention_keeps_a_key_stored_again_meanwhile(
    two_stores: tuple[DynamoDBIngestStore, DynamoDBIngestStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retentions A and B collect the same old keyed records; B finishes, a writer stores key
    K again (retention forgot it), and only then do A's key deletions land: they must leave
    K's new key item alone, or a retry of K would be stored twice."""
    a, b = two_stores
    b.write_batch(
        "s",
        [{"id": "K", "at": OLD}, {"id": "L", "at": OLD}, {"id": "M", "at": NEW}],
        key_field="id",
        time_field="at",
    )
    forget = a._forget_keys

    def b_runs_in_between(stream: str, gen: str, keys: list[tuple[str, int]], what: str) -> None:
        # A has collected its key deletions: B's retention runs to the end, then K is
        # written again (a new record, a new key item pointing at it)
        assert sorted(k for k, _ in keys) == ["K", "L"]
        assert b.delete_before("s", CUT) == 2
        again = b.write("s", {"id": "K", "at": NEW}, key="K", time_field="at")
        assert again == WriteResult(written=1)
        forget(stream, gen, keys, what)

    monkeypatch.setattr(a, "_forget_keys", b_runs_in_between)
    a.delete_before("s", CUT)
    # K is stored (again): writing it a third time is a duplicate, through either store;
    # L's key was forgotten with its record
    assert a.write("s", {"id": "K"}, key="K") == WriteResult(duplicates=1)
    retry = b.write_batch("s", [{"id": "K"}, {"id": "L"}], key_field="id")
    assert retry == WriteResult(written=1, duplicates=1)
    assert sorted(str(r.key) for r in read_all(b, "s")) == ["K", "L", "M"]


def test_concurrent_retentions_count_each_record_once(
    two_stores: tuple[DynamoDBIngestStore, DynamoDBIngestStore],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retentions A and B collect the same pages; B deletes them all before A acts. A page
    wholly expired and a page partly expired: A must report 0, not B's records again."""
    a, b = two_stores
    b.write_batch("s", [{"i": 1, "at": OLD}, {"i": 2, "at": OLD}], time_field="at")
    b.write_batch("s", [{"i": 3, "at": OLD}, {"i": 4, "at": NEW}], time_field="at")
    forget = a._forget_keys
    counts: list[int] = []

    def b_runs_in_between(stream: str, gen: str, keys: list[tuple[str, int]], what: str) -> None:
        counts.append(b.delete_before("s", CUT))
        forget(stream, gen, keys, what)

    monkeypatch.setattr(a, "_forget_keys", b_runs_in_between)
    counts.append(a.delete_before("s", CUT))
    assert counts == [3, 0]
    assert [r.data["i"] for r in read_all(b, "s")] == [4]


def test_retention_leaves_a_late_key_item_that_blocks_nothing(
    ingest: DynamoDBIngestStore, admin: Any
) -> None:
    """A stalled writer's late key item (pointing into its hole) overwrote the key item of a
    committed record: retention of that record leaves the item (it does not point at the
    record), and the key is free all the same."""
    ingest.write("s", {"id": "first"}, key="first")
    gen = _head(admin, ingest, "s")["g"]["S"]
    n = _expire_with_zombie_lease(admin, ingest, 1)
    other = DynamoDBIngestStore.from_config(ingest._config)
    assert other.write("s", {"id": "k"}, key="k") == WriteResult(written=1)  # breaks the lease
    admin.put_item(TableName=ingest.keys_table, Item=_zombie_key(gen, "k", n))
    assert ingest.delete_before("s", dt.datetime(2999, 1, 1)) == 2
    keys = admin.query(
        TableName=ingest.keys_table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": keys_pk("s", gen)}},
    )["Items"]
    assert [(k["sk"]["S"], int(k["s"]["N"])) for k in keys] == [("=k", n)]
    assert ingest.write("s", {"id": "k"}, key="k") == WriteResult(written=1)
    assert ingest.write("s", {"id": "k"}, key="k") == WriteResult(duplicates=1)
    assert [r.key for r in read_all(ingest, "s")] == ["k"]
    other.close()


def test_drop_deletes_every_item(ingest: DynamoDBIngestStore, admin: Any) -> None:
    ingest.write_batch("s", [{"id": i} for i in range(80)], key_field="id")
    ingest.write_batch("s", [{"id": i} for i in range(200)], key_field="id")  # lease path
    ingest.write("keep", {"v": 1})
    gen = _head(admin, ingest, "s")["g"]["S"]
    # a key item no page names (as an interrupted purge would leave): found all the same
    admin.put_item(TableName=ingest.keys_table, Item=_zombie_key(gen, "orphan", 10**6))
    ingest.drop("s")
    items = admin.scan(TableName=ingest.table)["Items"]
    pks = sorted(
        {
            i["pk"]["S"].split("#")[0] + "#" + i["pk"]["S"].split("#")[1]
            for i in items
            if "#" in i["pk"]["S"]
        }
    )
    assert pks == ["r#keep", "s#keep", "s#s"]  # the tombstone head keeps the last position
    assert admin.scan(TableName=ingest.keys_table)["Items"] == []
    assert ingest.streams() == ["keep"]


# ----------------------------------------------------------------------------- ingest: limits
def test_record_limits_name_the_record(ingest: DynamoDBIngestStore) -> None:
    limit = INGEST_CAPS.max_record_bytes
    assert limit is not None
    fits = {"blob": "x" * (limit - 20)}
    ingest.write_batch("s", [{"small": 1}, fits])
    assert ingest.count("s") == 2
    with pytest.raises(LimitExceeded, match=r"records\[1\]"):
        ingest.write_batch("s", [{"ok": 1}, {"blob": "x" * limit}])
    long_key = "k" * 20_000  # the record fits, its item with the key does not
    with pytest.raises(LimitExceeded, match="item"):
        ingest.write("s", fits, key=long_key)
    with pytest.raises(InvalidInput):
        ingest.write("s", {"v": 1}, key="\ud800")
    assert ingest.count("s") == 2


def test_batch_over_max_rows_is_refused_before_writing(ingest: DynamoDBIngestStore) -> None:
    assert INGEST_CAPS.max_batch_rows == 10_000
    with pytest.raises(LimitExceeded):
        ingest.write_batch("s", ({"i": i} for i in range(10_001)))
    assert "s" not in ingest.streams()


# ----------------------------------------------------------------------- batches and retries
class _Stingy:
    """The real client, but ``BatchWriteItem`` / ``BatchGetItem`` process at most ``take`` items
    per call and return the rest as unprocessed, as DynamoDB does when throttled."""

    def __init__(self, client: Any, take: int) -> None:
        self._client = client
        self.take = take
        self.calls = 0
        self._lock = threading.Lock()

    def _count(self) -> None:
        with self._lock:  # requests may run on several threads
            self.calls += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self._count()
        ((table, items),) = RequestItems.items()
        done, rest = items[: self.take], items[self.take :]
        if done:
            self._client.batch_write_item(RequestItems={table: done})
        return {"UnprocessedItems": {table: rest} if rest else {}}

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self._count()
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        done, rest = keys[: self.take], keys[self.take :]
        out: dict[str, Any] = {"Responses": {table: []}, "UnprocessedKeys": {}}
        if done:
            real = self._client.batch_get_item(RequestItems={table: {**request, "Keys": done}})
            out["Responses"] = real["Responses"]
        if rest:
            out["UnprocessedKeys"] = {table: {**request, "Keys": rest}}
        return out


def test_unprocessed_items_and_keys_are_retried_with_backoff(
    online: DynamoDBOnlineStore,
) -> None:
    sleeps: list[float] = []
    stingy = _Stingy(online.client, take=10)
    batcher = Batcher(stingy, online.table, max_retries=8, sleep=sleeps.append)
    requests = [
        {"PutRequest": {"Item": {"pk": {"B": b"z%03d" % i}, "f": {"B": b"\x80"}}}}
        for i in range(60)
    ]
    batcher.write(requests, "test")
    assert stingy.calls == 3 + 3 + 1  # requests of 25, 25 and 10 items, 10 processed per call
    assert len(sleeps) == 2 + 2  # a backoff before each retry
    stingy.take, stingy.calls = 25, 0
    keys = [{"pk": {"B": b"z%03d" % i}} for i in range(130)]
    found = batcher.get(keys, "test", consistent=True)
    assert sorted(bytes(i["pk"]["B"]) for i in found) == [b"z%03d" % i for i in range(60)]
    assert stingy.calls == 4 + 2  # pages of 100 and 30 keys, 25 processed per call
    assert all(0 <= s <= 2.0 for s in sleeps)
    never = Batcher(
        _Stingy(online.client, take=0), online.table, max_retries=4, sleep=sleeps.append
    )
    sleeps.clear()
    with pytest.raises(Unavailable, match="unprocessed"):
        never.write(requests[:3], "test")
    assert len(sleeps) == 4  # bounded
    bounds = [0.05 * 2**i for i in range(4)]
    assert all(s <= b for s, b in zip(sleeps, bounds, strict=True))
    with pytest.raises(Unavailable, match="unprocessed"):
        never.get(keys[:3], "test", consistent=False)


def test_conditional_deletes_skip_changed_and_missing_items(ingest: DynamoDBIngestStore) -> None:
    table = ingest.keys_table
    client = ingest.client
    for i in range(60):
        item = {"pk": {"S": "p"}, "sk": {"S": f"k{i:02d}"}, "s": num(i)}
        client.put_item(TableName=table, Item=item)

    def delete(i: int, pos: int) -> dict[str, Any]:
        return {
            "Key": {"pk": {"S": "p"}, "sk": {"S": f"k{i:02d}"}},
            "ConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "s"},
            "ExpressionAttributeValues": {":s": num(pos)},
        }

    # every third item points elsewhere (kept); five items do not exist (skipped, no error)
    requests = [delete(i, i + 1 if i % 3 == 0 else i) for i in range(65)]
    batcher = Batcher(client, table, max_retries=2, workers=4)
    assert batcher.delete_where(requests, "test") == 40
    left = client.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        ConsistentRead=True,
    )["Items"]
    assert sorted(int(it["sk"]["S"][1:]) for it in left) == list(range(0, 60, 3))
    assert batcher.delete_where([], "test") == 0
    missing = Batcher(client, f"{table}_missing", max_retries=0, workers=4)
    with pytest.raises(NotFound, match="test") as err:
        missing.delete_where(requests, "test")
    assert isinstance(err.value.__cause__, ClientError)


def test_concurrent_batch_requests(online: DynamoDBOnlineStore) -> None:
    """With ``workers``, the requests of one call run at once: every item is written and
    read back, unprocessed ones still retried; a failing request fails the call."""
    stingy = _Stingy(online.client, take=20)
    batcher = Batcher(stingy, online.table, max_retries=8, sleep=lambda _: None, workers=4)
    requests = [
        {"PutRequest": {"Item": {"pk": {"B": b"c%03d" % i}, "f": {"B": b"\x80"}}}}
        for i in range(240)
    ]
    batcher.write(requests, "test")
    assert stingy.calls == 9 * 2 + 1  # nine requests of 25 (retried once for 5 items), one of 15
    keys = [{"pk": {"B": b"c%03d" % i}} for i in range(250)]
    stingy.take = 100
    found = batcher.get(keys, "test", consistent=True)
    assert sorted(bytes(i["pk"]["B"]) for i in found) == [b"c%03d" % i for i in range(240)]
    broken = Batcher(_Stingy(online.client, take=0), online.table, 0, workers=4)
    with pytest.raises(Unavailable, match="unprocessed"):
        broken.write(requests, "test")


def test_get_many_pages_of_100_keys(online: DynamoDBOnlineStore) -> None:
    online.write("v", [{"id": i, "x": i * 2} for i in range(250)], entities=["id"])
    wanted = [{"id": i} for i in range(260)] + [{"id": 5}, {"id": 249}]
    stingy = _Stingy(online.client, take=100)
    online._batch = Batcher(stingy, online.table, 3)
    got = online.get_many("v", wanted, ["x"])
    assert got == [{"x": i * 2} if i < 250 else None for i in range(260)] + [{"x": 10}, {"x": 498}]
    assert stingy.calls == 3  # 260 distinct keys: 100 + 100 + 60


# ------------------------------------------------------------------------------- online store
def _raw_row(admin: Any, store: DynamoDBOnlineStore, view: str, *values: Any) -> Any:
    meta = store._view(view)
    out = admin.get_item(
        TableName=store.table,
        Key={"pk": {"B": row_pk(meta.view_id, codec.encode_key(list(values)))}},
    )
    return out.get("Item")


def test_online_table_has_dynamodb_ttl(online: DynamoDBOnlineStore, admin: Any) -> None:
    desc = admin.describe_time_to_live(TableName=online.table)["TimeToLiveDescription"]
    assert desc["TimeToLiveStatus"] == "ENABLED"
    assert desc["AttributeName"] == "x"
    now = dt.datetime.now(dt.UTC)
    online.write(
        "v",
        [{"id": 1, "ts": now, "v": 1}],
        entities=["id"],
        ttl=dt.timedelta(hours=1),
        event_time="ts",
    )
    online.write("v", [{"id": 2, "v": 2}], entities=["id"])
    item = _raw_row(admin, online, "v", 1)
    expiry_us = int(item["e"]["N"])
    assert int(item["x"]["N"]) == math.ceil(expiry_us / 1e6)
    assert abs(expiry_us / 1e6 - (now.timestamp() + 3600)) < 1e-3
    assert "x" not in _raw_row(admin, online, "v", 2)


def test_expired_rows_not_yet_deleted_read_as_missing(
    online: DynamoDBOnlineStore, admin: Any
) -> None:
    """DynamoDB deletes expired items lazily (up to days later): reads check the expiry."""
    online.write(
        "v", [{"id": 1, "v": 1}, {"id": 2, "v": 2}], entities=["id"], ttl=dt.timedelta(hours=1)
    )
    item = _raw_row(admin, online, "v", 1)
    past = time.time_ns() // 1000 - 1
    item["e"] = {"N": str(past)}
    admin.put_item(TableName=online.table, Item=item)  # expired, still stored
    assert online.get("v", {"id": 1}) is None
    assert online.get_many("v", [{"id": 1}, {"id": 2}], ["v"]) == [None, {"v": 2}]
    assert online.delete("v", [{"id": 1}, {"id": 2}]) == 1


def test_online_limits(online: DynamoDBOnlineStore) -> None:
    online.write("v", [{"id": 1, "v": 1}], entities=["id"])
    limit = ONLINE_CAPS.max_record_bytes
    assert limit == 400_000
    with pytest.raises(LimitExceeded, match="row 1"):
        online.write("v", [{"id": 2}, {"id": 3, "b": b"x" * limit}], entities=["id"])
    with pytest.raises(LimitExceeded, match="partition keys"):
        online.write("v", [{"id": 2}, {"id": "k" * 3000}], entities=["id"])
    assert online.get("v", {"id": "k" * 3000}) is None
    assert online.get_many("v", [{"id": 2}, {"id": 1}]) == [None, {"v": 1}]
    fits = b"x" * 290_000  # moto counts binary values base64-encoded: stay under its 405 000
    online.write("v", [{"id": 4, "b": fits}], entities=["id"])
    assert online.get("v", {"id": 4}) == {"b": fits}


def test_interrupted_drop_is_finished_by_the_next_drop(
    online: DynamoDBOnlineStore, admin: Any
) -> None:
    online.write("a", [{"id": i} for i in range(30)], entities=["id"])
    online.write("b", [{"id": 1, "v": 1}], entities=["id"])
    meta = online._view("a")
    # as if a drop removed the registry entry and died before deleting the rows
    admin.update_item(
        TableName=online.table,
        Key={"pk": {"B": b"m"}},
        UpdateExpression="REMOVE #v SET #d = :n",
        ExpressionAttributeNames={"#v": "v:a", "#d": "d:" + meta.view_id.hex()},
        ExpressionAttributeValues={":n": {"S": "a"}},
    )
    assert online.views() == ["b"]
    online.drop("never-written")
    keys = [bytes(i["pk"]["B"]) for i in admin.scan(TableName=online.table)["Items"]]
    assert not any(k.startswith(b"r" + meta.view_id) for k in keys)
    registry = admin.get_item(TableName=online.table, Key={"pk": {"B": b"m"}})["Item"]
    assert sorted(registry) == ["pk", "v:b"]
    assert online.get("b", {"id": 1}) == {"v": 1}


def test_other_store_sees_drop_and_recreate(make_config: MakeConfig) -> None:
    config = make_config(view_cache_s=0.2)
    a = DynamoDBOnlineStore.from_config(config)
    b = DynamoDBOnlineStore.from_config(config)
    a.write("v", [{"id": 1, "x": 1}], entities=["id"])
    assert b.get("v", {"id": 1}) == {"x": 1}
    a.drop("v")
    a.write("v", [{"t": "k", "u": 2, "x": 2}], entities=["t", "u"])
    assert b.get("v", {"t": "k", "u": 2}) == {"x": 2}  # a mismatch re-reads the metadata
    a.drop("v")
    time.sleep(0.25)
    with pytest.raises(NotFound):
        b.get("v", {"t": "k", "u": 2})
    a.close()
    b.close()


def test_online_view_names(online: DynamoDBOnlineStore) -> None:
    for name in ("ünï cødé/view", "a.b:c", "x" * 255):
        online.write(name, [{"id": 1, "v": name}], entities=["id"])
        assert online.get(name, {"id": 1}) == {"v": name}
    assert online.views() == sorted(["ünï cødé/view", "a.b:c", "x" * 255])
    for bad in ("", "x" * 256, "\ud800", None, 5):
        with pytest.raises(InvalidInput):
            online.write(bad, [{"id": 1}], entities=["id"])  # type: ignore[arg-type]
    assert len(online.views()) == 3


def test_threads_share_one_online_store(online: DynamoDBOnlineStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    online.write("v", [{"id": i, "x": i} for i in range(40)], entities=["id"])

    def work(t: int) -> bool:
        for i in range(8):
            j = (i * 7 + t) % 50
            if online.get("v", {"id": j}, ["x"]) != ({"x": j} if j < 40 else None):
                return False
        return online.get_many("v", [{"id": t}, {"id": 99}]) == [{"x": t}, None]

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(8)))


# ----------------------------------------------------------------------------- tables, config
def test_missing_table_without_create_tables(make_config: MakeConfig) -> None:
    config = make_config(create_tables=False)
    with pytest.raises(ConfigError, match="create_tables"):
        DynamoDBIngestStore.from_config(config)
    with pytest.raises(ConfigError, match="create_tables"):
        DynamoDBOnlineStore.from_config(config)


def test_table_of_another_shape_is_refused(make_config: MakeConfig, admin: Any) -> None:
    config = make_config()
    admin.create_table(
        TableName=config.online_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ConfigError, match="key schema"):
        DynamoDBOnlineStore.from_config(config)


def test_provisioned_billing_mode(make_config: MakeConfig, admin: Any) -> None:
    config = make_config(billing_mode="PROVISIONED", read_capacity_units=3, write_capacity_units=2)
    store = DynamoDBIngestStore.from_config(config)
    table = admin.describe_table(TableName=store.table)["Table"]
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 3
    assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 2
    store.close()


def test_config_rules() -> None:
    assert DynamoDBConfig(endpoint_url="http://127.0.0.1:5000").uses_dummy_credentials()
    assert DynamoDBConfig(endpoint_url="http://localhost:5000").uses_dummy_credentials()
    assert not DynamoDBConfig().uses_dummy_credentials()
    assert not DynamoDBConfig(
        endpoint_url="https://dynamodb.eu-west-1.amazonaws.com"
    ).uses_dummy_credentials()
    assert not DynamoDBConfig(
        endpoint_url="http://127.0.0.1:1", dummy_credentials=False
    ).uses_dummy_credentials()
    config = DynamoDBConfig(table_prefix="", endpoint_url="")
    assert (config.ingest_table, config.ingest_keys_table, config.online_table) == (
        "ingest",
        "ingest_keys",
        "online",
    )
    assert config.endpoint_url is None  # "${STRATAML_DYNAMODB_ENDPOINT:-}" unset: AWS itself
    with pytest.raises(ValueError, match="endpoint_url"):
        DynamoDBConfig(endpoint_url="127.0.0.1:8000")
    with pytest.raises(ValueError, match="table_prefix"):
        DynamoDBConfig(table_prefix="bad prefix")
    with pytest.raises(ValueError, match="both"):
        DynamoDBConfig(aws_access_key_id="AKIA")
    with pytest.raises(ValueError, match="batch_concurrency"):
        DynamoDBConfig(batch_concurrency=8, max_pool_connections=4)


def test_secrets_never_in_reprs_or_errors() -> None:
    config = DynamoDBConfig(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        aws_access_key_id="AKIAEXAMPLE",
        aws_secret_access_key=SECRET,
        aws_session_token=SECRET + "tok",
        connect_timeout_s=0.5,
        max_retries=0,
    )
    assert SECRET not in repr(config)
    assert SECRET not in str(config.model_dump())
    with pytest.raises(Unavailable) as info:
        DynamoDBIngestStore.from_config(config)
    assert SECRET not in "".join(traceback.format_exception(info.value))


def test_error_translation() -> None:
    def client_error(code: str, message: str = "m", **extra: Any) -> ClientError:
        response: Any = {"Error": {"Code": code, "Message": message}, **extra}
        return ClientError(response, "Op")

    cases: list[tuple[BaseException, type[StrataError]]] = [
        (client_error("ProvisionedThroughputExceededException"), Unavailable),
        (client_error("ThrottlingException"), Unavailable),
        (client_error("AccessDeniedException"), Unavailable),
        (client_error("UnrecognizedClientException", "bad token"), Unavailable),
        (client_error("ResourceNotFoundException"), NotFound),
        (client_error("ResourceInUseException"), Conflict),
        (client_error("ConditionalCheckFailedException"), Conflict),
        (
            client_error("ValidationException", "Item size has exceeded the maximum allowed size"),
            LimitExceeded,
        ),
        (client_error("ValidationException", "Invalid KeyConditionExpression"), BackendError),
        (
            client_error(
                "TransactionCanceledException",
                CancellationReasons=[{"Code": "ConditionalCheckFailed"}],
            ),
            Conflict,
        ),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (NoCredentialsError(), ConfigError),
        (client_error("SomethingNew"), BackendError),
    ]
    for exc, kind in cases:
        assert type(translate(exc, "op")) is kind, exc


def test_closed_stores_are_unavailable(make_config: MakeConfig) -> None:
    config = make_config()
    ingest = DynamoDBIngestStore.from_config(config)
    online = DynamoDBOnlineStore.from_config(config)
    ingest.write("s", {"v": 1})
    online.write("v", [{"id": 1}], entities=["id"])
    ingest.close()
    online.close()
    ingest.close()
    online.close()
    calls: list[Callable[[], Any]] = [
        lambda: ingest.write("s", {"v": 1}),
        lambda: ingest.read("s"),
        ingest.streams,
        lambda: online.get("v", {"id": 1}),
        lambda: online.get_many("v", [{"id": 1}]),
        lambda: online.write("v", [{"id": 1}], entities=["id"]),
        online.views,
    ]
    for call in calls:
        with pytest.raises(Unavailable):
            call()


# ----------------------------------------------------------------------------- registration
def test_adapter_is_registered() -> None:
    import importlib
    import sys

    assert get_adapter("dynamodb") is DYNAMODB
    assert DYNAMODB.capabilities == {"ingest": INGEST_CAPS, "online": ONLINE_CAPS}
    assert INGEST_CAPS.transactions
    assert ONLINE_CAPS.ttl
    # importing the adapter declaration does not import boto3
    code = "import sys, strataml_dynamodb; print('boto3' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    importlib.import_module("strataml_dynamodb.devserver")


def test_factories_and_stack_profile(
    moto: ServerHandle, make_config: MakeConfig, tmp_path: Path
) -> None:
    config = make_config()
    ingest = DYNAMODB.factories["ingest"](config, StackContext())
    online = DYNAMODB.factories["online"](config, StackContext())
    assert isinstance(ingest, DynamoDBIngestStore)
    assert isinstance(online, DynamoDBOnlineStore)
    ingest.close()
    online.close()
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'[ingest]\ntype = "dynamodb"\nendpoint_url = "{moto.url}"\n'
        f'table_prefix = "{config.table_prefix}"\n'
        f'[online]\ntype = "dynamodb"\nendpoint_url = "{moto.url}"\n'
        f'table_prefix = "{config.table_prefix}"\nrequire = ["ttl"]\n'
    )
    with open_stack(str(profile), data_dir=tmp_path) as stack:
        stack.ingest.write("events", {"v": 1})
        assert stack.ingest.count("events") == 1
        stack.online.write("f", [{"id": 1, "x": 1}], entities=["id"])
        assert stack.online.get("f", {"id": 1}) == {"x": 1}


def test_devserver_starts_and_stops_by_pid(tmp_path: Path) -> None:
    handle = start(tmp_path, port=free_port())
    assert handle.kind == "dynamodb"
    assert handle.url == f"http://127.0.0.1:{handle.port}"
    client = make_client(DynamoDBConfig(endpoint_url=handle.url))
    assert client.list_tables()["TableNames"] == []
    stop(handle)
    with pytest.raises(ProcessLookupError):
        os.kill(handle.pid, 0)
    assert Path(handle.log).exists()
