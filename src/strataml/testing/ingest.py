"""Contract tests for :class:`~strataml.protocols.IngestStore`.

Subclass :class:`IngestStoreTests` and provide an ``ingest_store`` fixture yielding an empty,
isolated store::

    class TestMyIngest(IngestStoreTests):
        @pytest.fixture
        def ingest_store(self, tmp_path):
            store = MyIngestStore(tmp_path / "ingest")
            yield store
            store.close()

Every test works on streams named with the ``uid`` fixture, so the suite can also run against a
shared server. Times are compared in UTC (naive datetimes are UTC).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml._time import EPOCH, to_utc_naive, utcnow
from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, LimitExceeded, NotFound
from strataml.models import IngestedRecord, ReadPage, WriteResult
from strataml.protocols.ingest import IngestStore
from strataml.testing._base import ContractBase, raises_strata

__all__ = [
    "IngestBadInputTests",
    "IngestIdempotencyTests",
    "IngestLifecycleTests",
    "IngestReadTests",
    "IngestRetentionTests",
    "IngestStoreTests",
    "IngestWindowTests",
    "IngestWriteTests",
    "read_all",
    "same_json",
    "state",
]

Uid = Callable[[str], str]

T0 = dt.datetime(2024, 1, 1)  # naive, i.e. UTC
PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def hours(n: float) -> dt.datetime:
    """``T0`` plus ``n`` hours."""
    return T0 + dt.timedelta(hours=n)


def utc(value: dt.datetime) -> dt.datetime:
    """A datetime as naive UTC (aware ones converted)."""
    return to_utc_naive(value)


# ----------------------------------------------------------------------------------- helpers
def read_all(
    store: IngestStore,
    stream: str,
    *,
    after: str | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: int = 1000,
) -> list[IngestedRecord]:
    """Every record after ``after`` (in the window), paging until an empty page."""
    out: list[IngestedRecord] = []
    cursor = after
    for _ in range(100_000):
        page = store.read(stream, after=cursor, start=start, end=end, limit=limit)
        assert isinstance(page, ReadPage)
        assert len(page.records) <= limit
        if not page.records:
            return out
        assert page.cursor is not None, "a non-empty page must return a cursor"
        out.extend(page.records)
        cursor = page.cursor
    raise AssertionError("read() never returned an empty page")


def datas(records: list[IngestedRecord]) -> list[dict[str, Any]]:
    return [r.data for r in records]


def state(store: IngestStore, *streams: str) -> dict[str, Any]:
    """What a test can observe of some streams: existence and every stored record."""
    names = store.streams()
    out: dict[str, Any] = {}
    for s in streams:
        if s in names:
            out[s] = [(r.seq, r.key, r.ts, r.data) for r in read_all(store, s)]
        else:
            out[s] = None
    return out


def same_json(a: Any, b: Any, path: str = "$") -> None:
    """Deep equality that also insists on the same JSON types (``1``, ``1.0``, ``True`` differ)."""
    if isinstance(a, Mapping):
        assert isinstance(b, Mapping), f"{path}: {b!r} is not an object"
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            same_json(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list), f"{path}: {b!r} is not a list"
        assert len(a) == len(b), f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_json(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b), f"{path}: {a!r} ({type(a).__name__}) != {b!r}"
        assert a == b, f"{path}: {a!r} != {b!r}"


_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=16,
)
_json_record = st.dictionaries(_text, _json_value, max_size=6)


# ------------------------------------------------------------------------------------ writes
class IngestWriteTests(ContractBase):
    """write / write_batch: streams created by their first write, schema-flexible records stored
    exactly as given, commit order."""

    def test_write_one_record(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        assert s not in ingest_store.streams()
        result = ingest_store.write(s, {"user": 1, "action": "click"})
        assert result == WriteResult(written=1, duplicates=0)
        assert s in ingest_store.streams()
        assert ingest_store.count(s) == 1
        [rec] = read_all(ingest_store, s)
        assert rec.stream == s
        assert rec.key is None
        same_json(rec.data, {"user": 1, "action": "click"})

    def test_write_batch_keeps_commit_order(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        result = ingest_store.write_batch(s, [{"i": i} for i in range(25)])
        assert result == WriteResult(written=25, duplicates=0)
        ingest_store.write(s, {"i": 25})
        ingest_store.write_batch(s, [{"i": 26}, {"i": 27}])
        records = read_all(ingest_store, s)
        assert [r.data["i"] for r in records] == list(range(28))
        seqs = [r.seq for r in records]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        assert ingest_store.count(s) == 28

    def test_write_batch_takes_any_iterable(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        assert ingest_store.write_batch(s, ({"i": i} for i in range(3))).written == 3
        assert ingest_store.write_batch(s, ({"i": 3}, {"i": 4})).written == 2
        assert [r.data["i"] for r in read_all(ingest_store, s)] == [0, 1, 2, 3, 4]

    def test_empty_batch_writes_nothing(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write(s, {"i": 0})
        assert ingest_store.write_batch(s, []) == WriteResult(written=0, duplicates=0)
        assert ingest_store.count(s) == 1

    def test_schema_flexible_records(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        docs: list[dict[str, Any]] = [
            {"user": 1, "action": "view"},
            {"user": "u-2", "cart": {"items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]}},
            {"brand_new_field": [1, "two", 3.5, None, True, [[]], {}], "deep": {"a": {"b": {}}}},
            {},
            {
                "text": 'ünïcødé ✓ \u4e2d\u6587 \U0001f600 "quoted" \\ \n\t',
                "empty": "",
                "big": 2**63 - 1,
                "small": -(2**63),
                "float": 0.1,
                "whole_float": 2.0,
                "tiny": 5e-324,
                "huge": 1.7976931348623157e308,
                "neg_zero": -0.0,
                "yes": True,
                "no": False,
                "nothing": None,
            },
            {"user": 3, "action": 7},  # a field changing type between records
        ]
        for doc in docs[:3]:
            assert ingest_store.write(s, doc).written == 1
        assert ingest_store.write_batch(s, docs[3:]).written == 3
        got = datas(read_all(ingest_store, s))
        assert len(got) == len(docs)
        for want, have in zip(docs, got, strict=True):
            same_json(want, have)

    def test_datetime_values_stored_as_iso_strings(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s = uid("ev")
        at = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
        aware = dt.datetime(2024, 5, 6, 9, 8, 9, tzinfo=PLUS_TWO)
        ingest_store.write(s, {"at": at, "aware": aware, "day": dt.date(2024, 5, 6)})
        [rec] = read_all(ingest_store, s)
        for field, want in (("at", at), ("aware", utc(aware))):
            value = rec.data[field]
            assert isinstance(value, str)
            assert utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00"))) == want
        assert rec.data["day"] == "2024-05-06"

    def test_tuples_and_sets_stored_as_lists(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write(s, {"pair": (1, "a"), "tags": {"x"}, "frozen": frozenset({2})})
        [rec] = read_all(ingest_store, s)
        same_json(rec.data, {"pair": [1, "a"], "tags": ["x"], "frozen": [2]})

    def test_streams_are_isolated(self, ingest_store: IngestStore, uid: Uid) -> None:
        a, b = uid("a"), uid("b")
        ingest_store.write_batch(a, [{"s": "a", "i": i} for i in range(3)])
        ingest_store.write(b, {"s": "b"})
        ingest_store.write(a, {"s": "a", "i": 3})
        assert datas(read_all(ingest_store, b)) == [{"s": "b"}]
        assert [d["i"] for d in datas(read_all(ingest_store, a))] == [0, 1, 2, 3]
        assert (ingest_store.count(a), ingest_store.count(b)) == (4, 1)

    def test_event_time_defaults_to_ingestion_time(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s = uid("ev")
        before = utcnow()
        ingest_store.write(s, {"i": 1})
        ingest_store.write_batch(s, [{"i": 2}])
        after = utcnow()
        slack = dt.timedelta(seconds=60)  # a server's clock may differ a little from ours
        for rec in read_all(ingest_store, s):
            assert before - slack <= utc(rec.ingested_at) <= after + slack
            assert abs(utc(rec.ts) - utc(rec.ingested_at)) < dt.timedelta(seconds=1)

    def test_event_time_from_time_field(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        at = dt.datetime(2020, 2, 29, 12, 30, 15, 250000)
        before = utcnow()
        ingest_store.write(s, {"at": at, "v": 1}, time_field="at")
        [rec] = read_all(ingest_store, s)
        assert utc(rec.ts) == at  # microseconds kept
        assert utc(rec.ingested_at) >= before - dt.timedelta(seconds=60)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(docs=st.lists(_json_record, min_size=1, max_size=4))
    def test_any_json_document_round_trips(
        self, ingest_store: IngestStore, uid: Uid, docs: list[dict[str, Any]]
    ) -> None:
        s = uid("rt")
        ingest_store.write(s, docs[0])
        ingest_store.write_batch(s, docs)
        stored = read_all(ingest_store, s)[-(len(docs) + 1) :]
        for want, rec in zip([docs[0], *docs], stored, strict=True):
            same_json(want, rec.data)


# ------------------------------------------------------------------------------- idempotency
class IngestIdempotencyTests(ContractBase):
    """Idempotency keys: stored once per stream, the first write wins, duplicates counted."""

    def test_retried_write_is_stored_once_first_wins(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s = uid("ev")
        assert ingest_store.write(s, {"v": 1}, key="k1") == WriteResult(written=1, duplicates=0)
        assert ingest_store.write(s, {"v": 1}, key="k1") == WriteResult(written=0, duplicates=1)
        assert ingest_store.write(s, {"v": 2}, key="k1") == WriteResult(written=0, duplicates=1)
        [rec] = read_all(ingest_store, s)
        assert rec.key == "k1"
        assert rec.data == {"v": 1}

    def test_retried_batch_never_duplicates(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        batch = [{"id": f"e{i}", "v": i} for i in range(10)]
        assert ingest_store.write_batch(s, batch, key_field="id") == WriteResult(written=10)
        again = ingest_store.write_batch(s, batch, key_field="id")
        assert again == WriteResult(written=0, duplicates=10)
        assert ingest_store.count(s) == 10
        records = read_all(ingest_store, s)
        assert [r.key for r in records] == [f"e{i}" for i in range(10)]

    def test_overlapping_batch_writes_only_new_keys(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s = uid("ev")
        ingest_store.write_batch(
            s, [{"id": f"e{i}", "v": "first"} for i in range(5)], key_field="id"
        )
        result = ingest_store.write_batch(
            s, [{"id": f"e{i}", "v": "second"} for i in range(3, 8)], key_field="id"
        )
        assert result == WriteResult(written=3, duplicates=2)
        by_key = {r.key: r.data["v"] for r in read_all(ingest_store, s)}
        assert by_key == {f"e{i}": "first" if i < 5 else "second" for i in range(8)}

    def test_duplicate_keys_inside_one_batch(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        batch = [{"id": "a", "v": 1}, {"id": "b", "v": 2}, {"id": "a", "v": 3}, {"id": "a", "v": 4}]
        assert ingest_store.write_batch(s, batch, key_field="id") == WriteResult(
            written=2, duplicates=2
        )
        assert [(r.key, r.data["v"]) for r in read_all(ingest_store, s)] == [("a", 1), ("b", 2)]

    def test_records_without_key_are_all_kept(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        assert ingest_store.write(s, {"v": 1}).written == 1
        assert ingest_store.write(s, {"v": 1}).written == 1
        batch: list[dict[str, Any]] = [{"v": 1}, {"id": "k", "v": 2}, {"v": 1}]
        assert ingest_store.write_batch(s, batch, key_field="id") == WriteResult(written=3)
        records = read_all(ingest_store, s)
        assert [r.key for r in records] == [None, None, None, "k", None]

    def test_write_and_write_batch_share_keys(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write(s, {"id": "k", "v": "single"}, key="k")
        result = ingest_store.write_batch(s, [{"id": "k", "v": "batch"}], key_field="id")
        assert result == WriteResult(written=0, duplicates=1)
        assert ingest_store.write(s, {"v": "again"}, key="k").duplicates == 1
        assert datas(read_all(ingest_store, s)) == [{"id": "k", "v": "single"}]

    def test_keys_are_per_stream(self, ingest_store: IngestStore, uid: Uid) -> None:
        a, b = uid("a"), uid("b")
        assert ingest_store.write(a, {"v": "a"}, key="k").written == 1
        assert ingest_store.write(b, {"v": "b"}, key="k").written == 1
        assert datas(read_all(ingest_store, b)) == [{"v": "b"}]

    def test_retry_with_new_records_reads_only_the_new_ones(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s = uid("ev")
        ingest_store.write_batch(s, [{"id": i} for i in range(3)], key_field="id")
        cursor = ingest_store.read(s, limit=10).cursor
        ingest_store.write_batch(s, [{"id": i} for i in range(5)], key_field="id")
        assert [r.data["id"] for r in read_all(ingest_store, s, after=cursor)] == [3, 4]


# -------------------------------------------------------------------------------------- reads
class IngestReadTests(ContractBase):
    """Incremental reads: commit order, every record exactly once, resumable cursors."""

    def test_unknown_stream_is_not_found(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("nope")
        with raises_strata(NotFound):
            ingest_store.read(s)
        with raises_strata(NotFound):
            ingest_store.count(s)
        with raises_strata(NotFound):
            ingest_store.count(s, start=T0, end=hours(1))
        with raises_strata(NotFound):
            ingest_store.delete_before(s, T0)
        assert s not in ingest_store.streams()

    def test_paging_sees_every_record_once_in_commit_order(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s, other = uid("ev"), uid("other")
        expected: list[int] = []
        n = 0
        for size in (10, 1, 17, 1, 1, 23):
            if size == 1:
                ingest_store.write(s, {"n": n})
            else:
                ingest_store.write_batch(s, [{"n": n + i} for i in range(size)])
            ingest_store.write(other, {"noise": n})
            expected.extend(range(n, n + size))
            n += size
        for limit in (1, 7, 53, 1000):
            records = read_all(ingest_store, s, limit=limit)
            assert [r.data["n"] for r in records] == expected, f"limit={limit}"
            assert all(r.stream == s for r in records)

    def test_has_more(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write_batch(s, [{"i": i} for i in range(12)])
        first = ingest_store.read(s, limit=5)
        assert [r.data["i"] for r in first] == [0, 1, 2, 3, 4]
        assert first.has_more is True
        second = ingest_store.read(s, after=first.cursor, limit=5)
        assert [r.data["i"] for r in second] == [5, 6, 7, 8, 9]
        assert second.has_more is True
        last = ingest_store.read(s, after=second.cursor, limit=5)
        assert [r.data["i"] for r in last] == [10, 11]
        assert last.has_more is False

    def test_cursor_of_an_empty_page_resumes(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write_batch(s, [{"i": i} for i in range(3)])
        page = ingest_store.read(s, limit=10)
        empty = ingest_store.read(s, after=page.cursor, limit=10)
        assert empty.records == []
        assert empty.has_more is False
        assert empty.cursor is not None, "the stream has a position: the cursor must keep it"
        ingest_store.write_batch(s, [{"i": 3}, {"i": 4}])
        ingest_store.write(s, {"i": 5})
        resumed = read_all(ingest_store, s, after=empty.cursor)
        assert [r.data["i"] for r in resumed] == [3, 4, 5]

    def test_resume_after_more_writes(self, ingest_store: IngestStore, uid: Uid) -> None:
        s, other = uid("ev"), uid("other")
        ingest_store.write_batch(s, [{"i": i} for i in range(4)])
        page = ingest_store.read(s, limit=3)
        assert [r.data["i"] for r in page] == [0, 1, 2]
        ingest_store.write(other, {"noise": True})
        ingest_store.write_batch(s, [{"i": 4}, {"i": 5}])
        assert [r.data["i"] for r in read_all(ingest_store, s, after=page.cursor)] == [3, 4, 5]
        seen = read_all(ingest_store, s)
        ingest_store.write(s, {"i": 6})
        tail = read_all(ingest_store, s, after=ingest_store.read(s, limit=len(seen)).cursor)
        assert [r.data["i"] for r in tail] == [6]

    def test_cursor_is_reusable(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write_batch(s, [{"i": i} for i in range(6)])
        cursor = ingest_store.read(s, limit=2).cursor
        first = [r.seq for r in read_all(ingest_store, s, after=cursor)]
        second = [r.seq for r in read_all(ingest_store, s, after=cursor, limit=1)]
        assert first == second
        assert len(first) == 4


# ------------------------------------------------------------------------------ event time
def _as_datetime(t: dt.datetime) -> Any:
    return t


def _as_iso(t: dt.datetime) -> Any:
    return t.isoformat()


def _as_iso_z(t: dt.datetime) -> Any:
    return t.isoformat() + "Z"


def _as_iso_offset(t: dt.datetime) -> Any:
    return t.replace(tzinfo=dt.UTC).astimezone(PLUS_TWO).isoformat()


def _as_epoch_int(t: dt.datetime) -> Any:
    return int((t - EPOCH).total_seconds())


def _as_epoch_float(t: dt.datetime) -> Any:
    return (t - EPOCH).total_seconds() + 0.25


def _as_aware(t: dt.datetime) -> Any:
    return t.replace(tzinfo=dt.UTC).astimezone(PLUS_TWO)


TIME_FORMATS: dict[str, Callable[[dt.datetime], Any]] = {
    "datetime": _as_datetime,
    "iso": _as_iso,
    "iso_z": _as_iso_z,
    "iso_offset": _as_iso_offset,
    "epoch_int": _as_epoch_int,
    "epoch_float": _as_epoch_float,
    "aware_datetime": _as_aware,
}


class IngestWindowTests(ContractBase):
    """Event time from ``time_field`` in every accepted form; windows ``[start, end)``; count."""

    @staticmethod
    def _hourly(store: IngestStore, stream: str, fmt: Callable[[dt.datetime], Any]) -> list[int]:
        """Ten records at ``T0 + i`` hours, committed in a shuffled order; returns that order."""
        order = list(range(10))
        random.Random(7).shuffle(order)
        half = len(order) // 2
        store.write_batch(
            stream, [{"i": i, "at": fmt(hours(i))} for i in order[:half]], time_field="at"
        )
        for i in order[half:]:
            store.write(stream, {"i": i, "at": fmt(hours(i))}, time_field="at")
        return order

    @pytest.mark.parametrize("fmt", sorted(TIME_FORMATS))
    def test_window_by_event_time(self, ingest_store: IngestStore, uid: Uid, fmt: str) -> None:
        s = uid("ev")
        convert = TIME_FORMATS[fmt]
        order = self._hourly(ingest_store, s, convert)
        offset = dt.timedelta(seconds=0.25) if fmt == "epoch_float" else dt.timedelta(0)
        by_i = {r.data["i"]: utc(r.ts) for r in read_all(ingest_store, s)}
        assert by_i == {i: hours(i) + offset for i in range(10)}
        window = read_all(ingest_store, s, start=hours(2), end=hours(5) + offset)
        assert [r.data["i"] for r in window] == [i for i in order if 2 <= i <= 4]
        assert ingest_store.count(s, start=hours(2), end=hours(5) + offset) == 3
        assert ingest_store.count(s) == 10

    def test_window_bounds(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        order = self._hourly(ingest_store, s, _as_datetime)

        def ids(start: dt.datetime | None, end: dt.datetime | None) -> list[int]:
            return [r.data["i"] for r in read_all(ingest_store, s, start=start, end=end)]

        assert ids(hours(3), hours(3)) == []
        assert ids(hours(3), hours(3) + dt.timedelta(microseconds=1)) == [3]
        assert ids(hours(3) + dt.timedelta(microseconds=1), hours(4)) == []
        assert ids(hours(7), None) == [i for i in order if i >= 7]
        assert ids(None, hours(2)) == [i for i in order if i < 2]
        assert ids(hours(5), hours(1)) == []
        assert ingest_store.count(s, start=hours(7)) == 3
        assert ingest_store.count(s, end=hours(2)) == 2
        assert ingest_store.count(s, start=hours(5), end=hours(1)) == 0

    def test_window_accepts_aware_datetimes(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        order = self._hourly(ingest_store, s, _as_iso)
        start, end = _as_aware(hours(4)), _as_aware(hours(6))
        got = [r.data["i"] for r in read_all(ingest_store, s, start=start, end=end)]
        assert got == [i for i in order if 4 <= i < 6]
        assert ingest_store.count(s, start=start, end=end) == 2

    def test_paging_inside_a_window(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        order = self._hourly(ingest_store, s, _as_epoch_int)
        want = [i for i in order if 1 <= i < 8]
        for limit in (1, 2, 3):
            got = read_all(ingest_store, s, start=hours(1), end=hours(8), limit=limit)
            assert [r.data["i"] for r in got] == want

    def test_window_resumes_from_cursor(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        self._hourly(ingest_store, s, _as_datetime)
        page = ingest_store.read(s, start=hours(0), end=hours(100), limit=100)
        ingest_store.write_batch(
            s, [{"i": 10, "at": hours(10)}, {"i": 11, "at": hours(200)}], time_field="at"
        )
        got = read_all(ingest_store, s, after=page.cursor, start=hours(0), end=hours(100))
        assert [r.data["i"] for r in got] == [10]


# ---------------------------------------------------------------------------------- retention
class IngestRetentionTests(ContractBase):
    """delete_before, drop and streams()."""

    def test_delete_before(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write_batch(s, [{"i": i, "at": hours(i)} for i in range(10)], time_field="at")
        assert ingest_store.delete_before(s, hours(4)) == 4  # the record at 4h itself stays
        assert ingest_store.count(s) == 6
        assert [r.data["i"] for r in read_all(ingest_store, s)] == [4, 5, 6, 7, 8, 9]
        assert ingest_store.delete_before(s, hours(4)) == 0
        assert ingest_store.delete_before(s, _as_aware(hours(6))) == 2
        assert ingest_store.count(s) == 4

    def test_cursor_stays_valid_after_retention(self, ingest_store: IngestStore, uid: Uid) -> None:
        s = uid("ev")
        ingest_store.write_batch(s, [{"i": i, "at": hours(i)} for i in range(5)], time_field="at")
        cursor = ingest_store.read(s, limit=3).cursor
        assert ingest_store.delete_before(s, hours(100)) == 5
        ingest_store.write_batch(
            s, [{"i": 5, "at": hours(1)}, {"i": 6, "at": hours(2)}], time_field="at"
        )
        assert [r.data["i"] for r in read_all(ingest_store, s, after=cursor)] == [5, 6]
        assert [r.data["i"] for r in read_all(ingest_store, s)] == [5, 6]

    def test_stream_survives_deleting_all_records(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s = uid("ev")
        ingest_store.write(s, {"at": hours(0)}, time_field="at")
        assert ingest_store.delete_before(s, hours(1)) == 1
        assert s in ingest_store.streams()
        assert ingest_store.count(s) == 0
        page = ingest_store.read(s)
        assert page.records == []
        assert page.has_more is False

    def test_drop(self, ingest_store: IngestStore, uid: Uid) -> None:
        s, keep = uid("ev"), uid("keep")
        ingest_store.write_batch(s, [{"id": i} for i in range(5)], key_field="id")
        ingest_store.write(keep, {"v": 1})
        ingest_store.drop(s)
        assert s not in ingest_store.streams()
        assert keep in ingest_store.streams()
        with raises_strata(NotFound):
            ingest_store.read(s)
        with raises_strata(NotFound):
            ingest_store.count(s)
        ingest_store.drop(s)  # again: no error
        ingest_store.drop(uid("never_written"))
        assert datas(read_all(ingest_store, keep)) == [{"v": 1}]

    def test_write_after_drop_starts_a_fresh_stream(
        self, ingest_store: IngestStore, uid: Uid
    ) -> None:
        s = uid("ev")
        ingest_store.write_batch(s, [{"id": i} for i in range(5)], key_field="id")
        ingest_store.drop(s)
        # the stream's keys went with it
        assert ingest_store.write(s, {"id": 1, "new": True}, key="1").written == 1
        assert ingest_store.count(s) == 1
        assert datas(read_all(ingest_store, s)) == [{"id": 1, "new": True}]

    def test_streams_sorted(self, ingest_store: IngestStore, uid: Uid) -> None:
        names = [uid("c"), uid("a"), uid("B"), uid("b_2"), uid("b-1")]
        for name in names:
            ingest_store.write(name, {"v": 1})
        listed = ingest_store.streams()
        assert listed == sorted(listed)
        assert [n for n in listed if n in names] == sorted(names)


# -------------------------------------------------------------------------------- bad input
NOT_MAPPINGS: list[Any] = [None, 5, "text", b"bytes", ["a", 1], ("k", "v")]
NOT_JSON: dict[str, Any] = {
    "object": {"v": object()},
    "bytes": {"v": b"\x00\x01"},
    "complex": {"v": 1 + 2j},
    "nested": {"a": {"b": [1, {"c": object()}]}},
    "int_over_64_bits": {"v": 2**70},
    "lone_surrogate": {"v": "\ud800"},
}
NON_FINITE: dict[str, Any] = {
    "nan": {"v": float("nan")},
    "inf": {"v": float("inf")},
    "minus_inf": {"v": float("-inf")},
    "nested_dict": {"a": {"b": {"c": float("nan")}}},
    "in_list": {"a": [1.0, 2.0, float("inf")]},
    "in_tuple": {"a": (1.0, float("nan"))},
    "in_set": {"a": {float("nan")}},
    "deep_list": {"a": [[{"b": [float("-inf")]}]]},
    "numpy_float32": {"v": np.float32("nan")},
    "numpy_array": {"v": np.array([1.0, np.inf])},
}
BAD_TIMES: dict[str, Any] = {
    "garbage": "not a time",
    "bad_date": "2024-13-45T00:00:00",
    "null": None,
    "bool": True,
    "list": [2024, 1, 1],
    "object": {"year": 2024},
    "out_of_range": 1e20,
    "numeric_string": "1700000000",
}
BAD_KEY: Any = ["k"]
#: Names the protocol's "letters, digits, ``_``, ``-``" rules out, whatever else a backend allows.
BAD_NAMES: list[Any] = ["", "has space", "a/b", "a.b", "x';--", "tab\t", None, 5]


class IngestBadInputTests(ContractBase):
    """Bad input: a typed strataml error, raised before anything is written."""

    @staticmethod
    def _seeded(store: IngestStore, uid: Uid) -> tuple[str, str, dict[str, Any]]:
        """An existing stream with records, a stream name not used yet, and their state."""
        s, fresh = uid("ev"), uid("fresh")
        store.write_batch(s, [{"id": f"k{i}", "i": i} for i in range(3)], key_field="id")
        return s, fresh, state(store, s, fresh)

    @pytest.mark.parametrize("record", NOT_MAPPINGS, ids=repr)
    def test_record_not_a_mapping(self, ingest_store: IngestStore, uid: Uid, record: Any) -> None:
        s, fresh, before = self._seeded(ingest_store, uid)
        for stream in (s, fresh):
            with raises_strata(InvalidInput):
                ingest_store.write(stream, record)
            with raises_strata(InvalidInput):
                ingest_store.write_batch(stream, [{"ok": 1}, record, {"ok": 2}])
        assert state(ingest_store, s, fresh) == before

    @pytest.mark.parametrize("case", sorted(NOT_JSON))
    def test_not_json_serialisable(self, ingest_store: IngestStore, uid: Uid, case: str) -> None:
        s, fresh, before = self._seeded(ingest_store, uid)
        for stream in (s, fresh):
            with raises_strata(InvalidInput):
                ingest_store.write(stream, NOT_JSON[case])
            with raises_strata(InvalidInput):
                ingest_store.write_batch(stream, [{"ok": 1}, NOT_JSON[case]])
        assert state(ingest_store, s, fresh) == before

    @pytest.mark.parametrize("case", sorted(NON_FINITE))
    def test_nan_and_infinity(self, ingest_store: IngestStore, uid: Uid, case: str) -> None:
        s, fresh, before = self._seeded(ingest_store, uid)
        for stream in (s, fresh):
            with raises_strata(InvalidInput):
                ingest_store.write(stream, NON_FINITE[case])
            with raises_strata(InvalidInput):
                ingest_store.write_batch(stream, [{"ok": 1.5}, NON_FINITE[case], {"ok": 2.5}])
        assert state(ingest_store, s, fresh) == before

    @pytest.mark.parametrize("case", sorted(BAD_TIMES))
    def test_bad_event_time(self, ingest_store: IngestStore, uid: Uid, case: str) -> None:
        s, fresh, before = self._seeded(ingest_store, uid)
        bad = {"at": BAD_TIMES[case], "v": 1}
        good = {"at": "2024-01-01T00:00:00", "v": 0}
        for stream in (s, fresh):
            with raises_strata(InvalidInput):
                ingest_store.write(stream, bad, time_field="at")
            with raises_strata(InvalidInput):
                ingest_store.write_batch(stream, [good, bad, good], time_field="at")
        assert state(ingest_store, s, fresh) == before

    def test_bad_record_in_the_middle_of_a_batch(self, ingest_store: IngestStore, uid: Uid) -> None:
        s, fresh, before = self._seeded(ingest_store, uid)
        for bad in ({"v": float("nan")}, 42, {"v": object()}):
            batch: Any = [{"id": f"n{i}", "i": i} for i in range(50)]
            batch[25] = bad
            for stream in (s, fresh):
                with raises_strata(InvalidInput):
                    ingest_store.write_batch(stream, batch, key_field="id")
                with raises_strata(InvalidInput):
                    ingest_store.write_batch(stream, iter(batch), key_field="id")
        assert state(ingest_store, s, fresh) == before
        # nothing of the failed batches was remembered: the same keys are new now
        good = [{"id": f"n{i}", "i": i} for i in range(50)]
        assert ingest_store.write_batch(s, good, key_field="id").written == 50

    @pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
    def test_invalid_stream_name(self, ingest_store: IngestStore, uid: Uid, name: Any) -> None:
        before = ingest_store.streams()
        with raises_strata(InvalidInput):
            ingest_store.write(name, {"v": 1})
        with raises_strata(InvalidInput):
            ingest_store.write_batch(name, [{"v": 1}])
        assert ingest_store.streams() == before

    def test_invalid_idempotency_key(self, ingest_store: IngestStore, uid: Uid) -> None:
        s, fresh, before = self._seeded(ingest_store, uid)
        for stream in (s, fresh):
            with raises_strata(InvalidInput):
                ingest_store.write(stream, {"v": 1}, key=BAD_KEY)
            with raises_strata(InvalidInput):
                ingest_store.write_batch(
                    stream, [{"id": "ok"}, {"id": {"nested": 1}}], key_field="id"
                )
        assert state(ingest_store, s, fresh) == before

    def test_records_not_iterable(self, ingest_store: IngestStore, uid: Uid) -> None:
        s, fresh, before = self._seeded(ingest_store, uid)
        for stream in (s, fresh):
            records: Any
            for records in (5, None, {"v": 1}):
                with raises_strata(InvalidInput):
                    ingest_store.write_batch(stream, records)
        assert state(ingest_store, s, fresh) == before

    def test_invalid_cursor(self, ingest_store: IngestStore, uid: Uid) -> None:
        s, _, before = self._seeded(ingest_store, uid)
        for cursor in ("not a cursor!", "-5", "1.5"):
            with raises_strata(InvalidInput):
                ingest_store.read(s, after=cursor)
        assert state(ingest_store, s) == {s: before[s]}

    @pytest.mark.parametrize("limit", [0, -1])
    def test_invalid_limit(self, ingest_store: IngestStore, uid: Uid, limit: int) -> None:
        s, _, _ = self._seeded(ingest_store, uid)
        with raises_strata(InvalidInput):
            ingest_store.read(s, limit=limit)

    def test_batch_over_max_batch_rows(self, ingest_store: IngestStore, uid: Uid) -> None:
        limit = ingest_store.capabilities.max_batch_rows
        if limit is None:
            pytest.skip("backend declares no max_batch_rows")
        s, fresh, before = self._seeded(ingest_store, uid)
        rec = {"v": 1}
        for stream in (s, fresh):
            with raises_strata(LimitExceeded):
                ingest_store.write_batch(stream, [rec] * (limit + 1))
        assert state(ingest_store, s, fresh) == before

    def test_record_over_max_record_bytes(self, ingest_store: IngestStore, uid: Uid) -> None:
        limit = ingest_store.capabilities.max_record_bytes
        if limit is None:
            pytest.skip("backend declares no max_record_bytes")
        s, fresh, before = self._seeded(ingest_store, uid)
        big = {"blob": "x" * limit}  # its JSON is a few bytes longer than the limit
        for stream in (s, fresh):
            with raises_strata(LimitExceeded):
                ingest_store.write(stream, big)
            with raises_strata(LimitExceeded):
                ingest_store.write_batch(stream, [{"ok": 1}, big])
        assert state(ingest_store, s, fresh) == before


# -------------------------------------------------------------------------------- lifecycle
class IngestLifecycleTests(ContractBase):
    """Declared capabilities; close() twice is safe."""

    def test_capabilities_declared(self, ingest_store: IngestStore) -> None:
        assert isinstance(ingest_store.capabilities, Capabilities)

    def test_close_twice(self, ingest_store: IngestStore, uid: Uid) -> None:
        ingest_store.write(uid("ev"), {"v": 1})
        ingest_store.close()
        ingest_store.close()


class IngestStoreTests(
    IngestWriteTests,
    IngestIdempotencyTests,
    IngestReadTests,
    IngestWindowTests,
    IngestRetentionTests,
    IngestBadInputTests,
    IngestLifecycleTests,
):
    """The whole :class:`~strataml.protocols.IngestStore` contract."""
