"""Contract tests for :class:`~strataml.protocols.TrainingSource`, written from its docstring.

An adapter's test class subclasses :class:`TrainingSourceTests` and provides a
``training_source`` fixture yielding an empty, isolated source::

    class TestMyTraining(TrainingSourceTests):
        @pytest.fixture
        def training_source(self, tmp_path):
            source = MyTrainingSource(tmp_path)
            yield source
            source.close()

SQL sources read datasets as ``datasets.<name>`` by convention; an adapter that names them
otherwise overrides :meth:`TrainingContractBase.dataset_sql`. Every dataset a test writes is named
with the ``uid`` fixture, so the suite also runs against shared servers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.errors import FilterError, InvalidInput, NotFound, SchemaError, Unsupported
from strataml.filters import matches, ops_used, parse_filter
from strataml.models import Scan
from strataml.testing._base import ContractBase

__all__ = [
    "TrainingContractBase",
    "TrainingFilterTests",
    "TrainingQueryTests",
    "TrainingScanTests",
    "TrainingShardTests",
    "TrainingSourceTests",
    "TrainingVersionTests",
    "TrainingWriteTests",
]

Uid = Callable[[str], str]
_T0 = dt.datetime(2024, 1, 1)


# ------------------------------------------------------------------------------------ helpers
def sample_table(rows: int, start: int = 0) -> pa.Table:
    """``rows`` rows: a unique ``id`` (write order) and nullable string/float/bool/time columns."""
    ids = list(range(start, start + rows))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "grp": pa.array([None if i % 7 == 3 else "abc"[i % 3] for i in ids], pa.string()),
            "val": pa.array([None if i % 5 == 4 else i * 0.5 for i in ids], pa.float64()),
            "flag": pa.array([None if i % 11 == 5 else i % 2 == 0 for i in ids], pa.bool_()),
            "ts": pa.array(
                [None if i % 13 == 6 else _T0 + dt.timedelta(hours=i) for i in ids],
                pa.timestamp("us"),
            ),
        }
    )


def duplicate_table(rows: int = 240) -> pa.Table:
    """A table where most rows occur several times (identical in every column)."""
    return pa.table(
        {
            "k": pa.array([i % 17 for i in range(rows)], pa.int64()),
            "tag": pa.array(["xy"[i % 2] if i % 9 else None for i in range(rows)], pa.string()),
        }
    )


def batches_of(scan: Scan) -> list[pa.RecordBatch]:
    """Every batch of a scan, checking each is a ``pyarrow.RecordBatch`` of the scan's schema."""
    out = []
    for batch in scan:
        assert isinstance(batch, pa.RecordBatch), type(batch)
        assert batch.schema.names == scan.schema.names
        out.append(batch)
    return out


def rows_of(scan: Scan) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pa.Table.from_batches(
        batches_of(scan), schema=scan.schema
    ).to_pylist()
    return rows


def ids_of(scan: Scan, column: str = "id") -> list[Any]:
    return [r[column] for r in rows_of(scan)]


def multiset(rows: Sequence[Mapping[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(sorted(r.items())) for r in rows)


class TrainingContractBase(ContractBase):
    """Shared helpers of the training mixins."""

    def dataset_sql(self, name: str) -> str:
        """How a SQL source refers to dataset ``name`` (override if the backend differs)."""
        return f'datasets."{name}"'

    @staticmethod
    def write_sample(store: Any, name: str, rows: int = 100) -> tuple[str, pa.Table]:
        table = sample_table(rows)
        return store.write(name, table), table


# -------------------------------------------------------------------------------------- write
class TrainingWriteTests(TrainingContractBase):
    """``write`` from every input kind; bad input raises before anything is stored."""

    def test_write_returns_snapshot_id(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        sid, _ = self.write_sample(training_source, name)
        assert isinstance(sid, str)
        assert sid
        assert training_source.snapshot(name) == sid
        assert training_source.versions(name) == [sid]
        assert name in training_source.datasets()

    def test_write_table_round_trips_in_order(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, rows=300)
        scan = training_source.scan(name)
        assert scan.schema.names == table.schema.names
        assert rows_of(scan) == table.to_pylist()

    def test_write_record_batch_reader(self, training_source: Any, uid: Uid) -> None:
        table = sample_table(250)
        reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=60))
        name = uid("ds")
        sid = training_source.write(name, reader)
        assert training_source.snapshot(name) == sid
        assert rows_of(training_source.scan(name)) == table.to_pylist()

    def test_write_iterable_of_batches(self, training_source: Any, uid: Uid) -> None:
        table = sample_table(250)
        empty = table.slice(0, 0).to_batches() or [pa.RecordBatch.from_pylist([], table.schema)]

        def gen() -> Iterator[pa.RecordBatch]:
            yield from table.slice(0, 100).to_batches()
            yield from empty  # an empty batch in the middle is fine
            yield from table.slice(100).to_batches(max_chunksize=33)

        name = uid("ds")
        training_source.write(name, gen())
        assert rows_of(training_source.scan(name)) == table.to_pylist()
        name2 = uid("ds2")
        training_source.write(name2, table.to_batches(max_chunksize=70))  # a list
        assert rows_of(training_source.scan(name2)) == table.to_pylist()

    def test_write_many_batches_keeps_order(self, training_source: Any, uid: Uid) -> None:
        size, count = 10_000, 30

        def gen() -> Iterator[pa.RecordBatch]:
            for b in range(count):
                ids = pa.array(range(b * size, (b + 1) * size), pa.int64())
                yield pa.RecordBatch.from_arrays([ids], names=["id"])

        name = uid("ds")
        training_source.write(name, gen())
        assert training_source.count(name) == size * count
        got = pa.concat_arrays(
            [b.column(0) for b in batches_of(training_source.scan(name, batch_size=50_000))]
        )
        assert got.to_pylist() == list(range(size * count))

    def test_write_empty_table_is_invalid(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        with pytest.raises(InvalidInput):
            training_source.write(name, sample_table(0))
        assert name not in training_source.datasets()
        with pytest.raises(NotFound):
            training_source.versions(name)
        sid, table = self.write_sample(training_source, name, rows=10)
        with pytest.raises(InvalidInput):
            training_source.write(name, iter([]))
        with pytest.raises(InvalidInput):
            training_source.write(name, sample_table(0).to_reader())
        assert training_source.versions(name) == [sid]
        assert rows_of(training_source.scan(name)) == table.to_pylist()

    def test_write_mismatched_batches_is_invalid(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        sid, table = self.write_sample(training_source, name, rows=20)
        good = sample_table(5).to_batches()[0]
        other = pa.RecordBatch.from_pydict({"id": pa.array(["x"]), "grp": pa.array(["a"])})
        renamed = pa.RecordBatch.from_arrays(good.columns, names=[*good.schema.names[:-1], "ts2"])
        for bad in (other, renamed):
            with pytest.raises(InvalidInput):
                training_source.write(name, iter([good, bad]))
            assert training_source.versions(name) == [sid]
            assert rows_of(training_source.scan(name)) == table.to_pylist()

    @pytest.mark.parametrize("data", [42, "not data", [1, 2, 3], [object()]])
    def test_write_non_arrow_data_is_invalid(
        self, training_source: Any, uid: Uid, data: Any
    ) -> None:
        name = uid("ds")
        with pytest.raises(InvalidInput):
            training_source.write(name, data)
        assert name not in training_source.datasets()

    def test_write_iterable_of_non_batches_is_invalid(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        good = sample_table(5).to_batches()[0]
        with pytest.raises(InvalidInput):
            training_source.write(name, iter([good, {"id": 1}]))
        assert name not in training_source.datasets()

    @pytest.mark.parametrize("bad", ["", "has space", "semi;colon", 'quo"te', "a" * 300])
    def test_write_invalid_name_is_invalid(self, training_source: Any, bad: str) -> None:
        with pytest.raises(InvalidInput):
            training_source.write(bad, sample_table(3))


# ----------------------------------------------------------------------------------- versions
class TrainingVersionTests(TrainingContractBase):
    """Versions are immutable and stay readable by snapshot id until ``drop``."""

    def test_second_write_makes_new_version(self, training_source: Any, uid: Uid) -> None:
        self.require(training_source, "snapshots")
        name = uid("ds")
        t1, t2 = sample_table(40), sample_table(25, start=1000)
        v1 = training_source.write(name, t1)
        v2 = training_source.write(name, t2)
        assert v1 != v2
        assert training_source.versions(name) == [v1, v2]
        assert training_source.snapshot(name) == v2
        latest = training_source.scan(name)
        assert latest.snapshot == v2
        assert rows_of(latest) == t2.to_pylist()
        old = training_source.scan(name, snapshot=v1, batch_size=7)
        assert old.snapshot == v1
        assert rows_of(old) == t1.to_pylist()
        assert training_source.count(name, snapshot=v1) == 40
        assert training_source.count(name) == 25

    def test_old_versions_keep_their_schema_and_rows(self, training_source: Any, uid: Uid) -> None:
        self.require(training_source, "snapshots")
        name = uid("ds")
        tables = [
            sample_table(30),
            sample_table(12, start=500).select(["id", "grp"]),
            pa.table({"other": pa.array([1.5, 2.5, None])}),
        ]
        sids = [training_source.write(name, t) for t in tables]
        assert training_source.versions(name) == sids
        for sid, table in zip(sids, tables, strict=True):
            scan = training_source.scan(name, snapshot=sid)
            assert scan.schema.names == table.schema.names
            assert rows_of(scan) == table.to_pylist()
            assert rows_of(training_source.scan(name, snapshot=sid)) == table.to_pylist()

    def test_datasets_lists_written_names(self, training_source: Any, uid: Uid) -> None:
        a, b = uid("a"), uid("b")
        self.write_sample(training_source, a, 5)
        self.write_sample(training_source, b, 5)
        self.write_sample(training_source, b, 6)
        names = training_source.datasets()
        assert {a, b} <= set(names)
        assert len(names) == len(set(names))
        training_source.drop(a)
        names = training_source.datasets()
        assert a not in names
        assert b in names

    def test_drop_removes_every_version(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        v1, _ = self.write_sample(training_source, name, 5)
        self.write_sample(training_source, name, 6)
        training_source.drop(name)
        assert name not in training_source.datasets()
        with pytest.raises(NotFound):
            training_source.scan(name)
        with pytest.raises(NotFound):
            training_source.scan(name, snapshot=v1)
        with pytest.raises(NotFound):
            training_source.count(name)
        with pytest.raises(NotFound):
            training_source.versions(name)
        with pytest.raises(NotFound):
            training_source.snapshot(name)

    def test_drop_unknown_is_a_no_op(self, training_source: Any, uid: Uid) -> None:
        keep = uid("keep")
        _, table = self.write_sample(training_source, keep, 5)
        training_source.drop(uid("missing"))
        assert rows_of(training_source.scan(keep)) == table.to_pylist()

    def test_write_after_drop_starts_fresh(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        self.write_sample(training_source, name, 5)
        training_source.drop(name)
        table = sample_table(3, start=77)
        sid = training_source.write(name, table)
        assert training_source.versions(name) == [sid]
        assert rows_of(training_source.scan(name)) == table.to_pylist()

    def test_unknown_dataset_is_not_found(self, training_source: Any, uid: Uid) -> None:
        name = uid("missing")
        with pytest.raises(NotFound):
            training_source.scan(name)
        with pytest.raises(NotFound):
            training_source.count(name)
        with pytest.raises(NotFound):
            training_source.versions(name)
        with pytest.raises(NotFound):
            training_source.snapshot(name)

    def test_unknown_snapshot_is_not_found(self, training_source: Any, uid: Uid) -> None:
        a, b = uid("a"), uid("b")
        self.write_sample(training_source, a, 5)
        sid_b, _ = self.write_sample(training_source, b, 6)
        with pytest.raises(NotFound):
            training_source.scan(a, snapshot="no-such-snapshot")
        with pytest.raises(NotFound):
            training_source.count(a, snapshot="no-such-snapshot")
        with pytest.raises((NotFound, InvalidInput)):  # b's snapshot is not a version of a
            training_source.scan(a, snapshot=sid_b)
        training_source.drop(b)
        with pytest.raises(NotFound):
            training_source.scan(b, snapshot=sid_b)


# --------------------------------------------------------------------------------------- scan
class TrainingScanTests(TrainingContractBase):
    """Batches, projection, batch sizes, counts."""

    @pytest.mark.parametrize("batch_size", [1, 7, 64, 300, 65_536])
    def test_batches_hold_at_most_batch_size_rows(
        self, training_source: Any, uid: Uid, batch_size: int
    ) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, rows=300)
        batches = batches_of(training_source.scan(name, batch_size=batch_size))
        assert all(b.num_rows <= batch_size for b in batches)
        assert sum(b.num_rows for b in batches) == 300
        ids = [i for b in batches for i in b.column(0).to_pylist()]
        assert ids == table.column("id").to_pylist()

    def test_scan_snapshot_is_the_latest_version(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        sid, _ = self.write_sample(training_source, name, 5)
        assert training_source.scan(name).snapshot == sid

    def test_projection_keeps_the_requested_order(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, 50)
        scan = training_source.scan(name, columns=["val", "id"], batch_size=16)
        assert scan.schema.names == ["val", "id"]
        assert rows_of(scan) == table.select(["val", "id"]).to_pylist()
        assert (
            rows_of(training_source.scan(name, columns=["grp"]))
            == table.select(["grp"]).to_pylist()
        )

    def test_projection_of_unknown_column_is_not_found(
        self, training_source: Any, uid: Uid
    ) -> None:
        name = uid("ds")
        self.write_sample(training_source, name, 5)
        with pytest.raises(NotFound):
            training_source.scan(name, columns=["id", "no_such_column"])

    @pytest.mark.parametrize("batch_size", [0, -1])
    def test_bad_batch_size_is_invalid(
        self, training_source: Any, uid: Uid, batch_size: int
    ) -> None:
        name = uid("ds")
        self.write_sample(training_source, name, 5)
        with pytest.raises(InvalidInput):
            training_source.scan(name, batch_size=batch_size)

    def test_scan_matching_nothing_is_empty(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        self.write_sample(training_source, name, 20)
        scan = training_source.scan(name, filter={"id": {"$gt": 10**9}})
        assert "id" in scan.schema.names
        assert sum(b.num_rows for b in batches_of(scan)) == 0
        assert training_source.count(name, filter={"id": {"$gt": 10**9}}) == 0

    def test_count_agrees_with_scan(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        v1, _ = self.write_sample(training_source, name, 123)
        self.write_sample(training_source, name, 77)
        cases: list[dict[str, Any]] = [
            {},
            {"filter": {"grp": "a"}},
            {"filter": {"val": None}},
            {"shard": (1, 3)},
            {"filter": {"flag": True}, "shard": (0, 2)},
        ]
        if training_source.capabilities.snapshots:
            cases += [{"snapshot": v1}, {"snapshot": v1, "filter": {"id": {"$lt": 100}}}]
        for kwargs in cases:
            expected = len(rows_of(training_source.scan(name, **kwargs)))
            assert training_source.count(name, **kwargs) == expected, kwargs
        assert training_source.count(name) == 77

    def test_scans_can_interleave(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, 200)
        first = iter(training_source.scan(name, batch_size=10))
        second = iter(training_source.scan(name, batch_size=10))
        got: list[int] = []
        for a, b in zip(first, second, strict=True):
            assert a.column(0).to_pylist() == b.column(0).to_pylist()
            got += a.column(0).to_pylist()
        assert got == table.column("id").to_pylist()


# ------------------------------------------------------------------------------------ filters
def filter_table() -> pa.Table:
    """Six rows covering nulls, NaN, empty strings and missing timestamps."""
    t = [_T0, _T0 + dt.timedelta(days=1), None, _T0 + dt.timedelta(days=2), _T0 + dt.timedelta(1)]
    return pa.table(
        {
            "id": pa.array(range(6), pa.int64()),
            "n": pa.array([1, 2, None, 3, 2, -1], pa.int64()),
            "x": pa.array([1.5, math.nan, None, 2.5, -1.0, 0.0], pa.float64()),
            "s": pa.array(["a", "b", None, "c", "b", ""], pa.string()),
            "b": pa.array([True, False, None, True, None, False], pa.bool_()),
            "t": pa.array([*t, None], pa.timestamp("us")),
        }
    )


#: 2024-01-02 00:00 UTC, written with a +02:00 offset
_JAN2_PLUS2 = dt.datetime(2024, 1, 2, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))

#: (filter, ids of filter_table() it matches), one or more per operator and null rule.
FILTER_CASES: list[tuple[dict[str, Any], list[int]]] = [
    ({}, [0, 1, 2, 3, 4, 5]),
    ({"n": 2}, [1, 4]),
    ({"n": {"$eq": 2}}, [1, 4]),
    ({"n": {"$ne": 2}}, [0, 2, 3, 5]),
    ({"n": None}, [2]),
    ({"n": {"$eq": None}}, [2]),
    ({"n": {"$ne": None}}, [0, 1, 3, 4, 5]),
    ({"n": {"$gt": 1}}, [1, 3, 4]),
    ({"n": {"$gt": 1.5}}, [1, 3, 4]),
    ({"n": {"$gte": 2}}, [1, 3, 4]),
    ({"n": {"$lt": 2}}, [0, 5]),
    ({"n": {"$lte": 1}}, [0, 5]),
    ({"n": {"$in": [1, 3]}}, [0, 3]),
    ({"n": {"$in": [1, None]}}, [0, 2]),
    ({"n": {"$in": []}}, []),
    ({"n": {"$nin": [1, 3]}}, [1, 2, 4, 5]),
    ({"n": {"$nin": [1, None]}}, [1, 3, 4, 5]),
    ({"n": {"$exists": True}}, [0, 1, 3, 4, 5]),
    ({"n": {"$exists": False}}, [2]),
    ({"x": None}, [1, 2]),  # NaN counts as absent
    ({"x": {"$exists": True}}, [0, 3, 4, 5]),
    ({"x": {"$gt": 0}}, [0, 3]),
    ({"x": {"$gt": 1}}, [0, 3]),
    ({"x": {"$ne": 1.5}}, [1, 2, 3, 4, 5]),
    ({"x": {"$lte": 0}}, [4, 5]),
    ({"x": {"$nin": [2.5]}}, [0, 1, 2, 4, 5]),
    ({"s": "b"}, [1, 4]),
    ({"s": ""}, [5]),
    ({"s": {"$gt": "a"}}, [1, 3, 4]),
    ({"s": {"$lt": "b"}}, [0, 5]),
    ({"s": {"$in": ["a", "c"]}}, [0, 3]),
    ({"s": {"$ne": "b"}}, [0, 2, 3, 5]),
    ({"b": True}, [0, 3]),
    ({"b": False}, [1, 5]),
    ({"b": {"$ne": True}}, [1, 2, 4, 5]),
    ({"b": {"$in": [False, None]}}, [1, 2, 4, 5]),
    ({"t": {"$gte": _T0 + dt.timedelta(days=1)}}, [1, 3, 4]),
    ({"t": {"$lt": dt.date(2024, 1, 2)}}, [0]),
    ({"t": _JAN2_PLUS2}, [1, 4]),  # aware datetimes compare in UTC
    ({"t": None}, [2, 5]),
    ({"$or": [{"n": 1}, {"s": "c"}]}, [0, 3]),
    ({"$and": [{"n": {"$gte": 2}}, {"b": True}]}, [3]),
    ({"n": 2, "s": "b"}, [1, 4]),
    ({"n": {"$gt": 0, "$lt": 3}}, [0, 1, 4]),
    ({"$not": {"n": {"$gt": 1}}}, [0, 2, 5]),
    ({"n": {"$not": {"$gt": 1}}}, [0, 2, 5]),
    ({"$not": {"x": None}}, [0, 3, 4, 5]),
    ({"$or": [{"b": None}, {"$not": {"s": {"$in": ["a", "b"]}}}]}, [2, 3, 4, 5]),
]

TYPE_MISMATCHES: list[dict[str, Any]] = [
    {"n": "1"},
    {"n": {"$gt": "1"}},
    {"n": True},
    {"x": "1.5"},
    {"s": 1},
    {"s": {"$in": [1, 2]}},
    {"b": 1},
    {"b": "true"},
    {"t": 5},
    {"t": True},
]

MALFORMED: list[Any] = [
    {"n": {"$regex": "x"}},
    {"$or": []},
    {"n": {"$gt": None}},
    {"n": {"$in": 3}},
    {"n": {"$exists": "yes"}},
    {"$nor": [{"n": 1}]},
    ["n", 1],
]


def _reference_ids(spec: Mapping[str, Any], table: pa.Table) -> list[int]:
    expr = parse_filter(spec)
    return [r["id"] for r in table.to_pylist() if matches(expr, r)]


class TrainingFilterTests(TrainingContractBase):
    """Filters run in the engine with the reference semantics (null/missing/NaN included)."""

    @pytest.mark.parametrize(("spec", "expected"), FILTER_CASES, ids=lambda v: repr(v)[:60])
    def test_filter_operator(
        self, training_source: Any, uid: Uid, spec: dict[str, Any], expected: list[int]
    ) -> None:
        table = filter_table()
        assert _reference_ids(spec, table) == expected  # the case itself is right
        name = uid("ds")
        training_source.write(name, table)
        if ops_used(parse_filter(spec)) - training_source.capabilities.filter_ops:
            with pytest.raises(Unsupported):
                training_source.scan(name, filter=spec)
            return
        assert ids_of(training_source.scan(name, filter=spec)) == expected
        assert training_source.count(name, filter=spec) == len(expected)

    @pytest.mark.parametrize("spec", TYPE_MISMATCHES, ids=repr)
    def test_type_mismatch_is_a_filter_error(
        self, training_source: Any, uid: Uid, spec: dict[str, Any]
    ) -> None:
        name = uid("ds")
        training_source.write(name, filter_table())
        with pytest.raises(FilterError):
            training_source.scan(name, filter=spec)
        with pytest.raises(FilterError):
            training_source.count(name, filter=spec)

    @pytest.mark.parametrize("spec", MALFORMED, ids=repr)
    def test_malformed_filter_is_a_filter_error(
        self, training_source: Any, uid: Uid, spec: Any
    ) -> None:
        name = uid("ds")
        training_source.write(name, filter_table())
        with pytest.raises(FilterError):
            training_source.scan(name, filter=spec)

    def test_filter_on_unknown_column_is_not_found(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        training_source.write(name, filter_table())
        with pytest.raises(NotFound):
            training_source.scan(name, filter={"no_such_column": 1})
        with pytest.raises(NotFound):
            training_source.count(name, filter={"$or": [{"n": 1}, {"no_such_column": 1}]})

    def test_filter_with_projection_and_snapshot(self, training_source: Any, uid: Uid) -> None:
        self.require(training_source, "snapshots")
        name = uid("ds")
        v1 = training_source.write(name, filter_table())
        training_source.write(name, sample_table(10))
        scan = training_source.scan(name, snapshot=v1, columns=["s"], filter={"n": 2})
        assert rows_of(scan) == [{"s": "b"}, {"s": "b"}]

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(data=st.data())
    def test_filters_match_the_reference(
        self, training_source: Any, uid: Uid, data: st.DataObject
    ) -> None:
        rows = data.draw(_rows_strategy, label="rows")
        specs = data.draw(st.lists(_filter_strategy, min_size=1, max_size=4), label="filters")
        table = pa.Table.from_pylist(rows, schema=_PROPERTY_SCHEMA)
        name = uid("prop")
        training_source.write(name, table)
        try:
            for spec in specs:
                expected = _reference_ids(spec, table)
                if ops_used(parse_filter(spec)) - training_source.capabilities.filter_ops:
                    with pytest.raises(Unsupported):
                        training_source.scan(name, filter=spec)
                    continue
                assert ids_of(training_source.scan(name, filter=spec)) == expected, spec
                assert training_source.count(name, filter=spec) == len(expected), spec
        finally:
            training_source.drop(name)


_PROPERTY_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("n", pa.int64()),
        ("x", pa.float64()),
        ("s", pa.string()),
        ("b", pa.bool_()),
        ("t", pa.timestamp("us")),
    ]
)
_INTS = st.integers(min_value=-3, max_value=3)
_FLOATS = st.sampled_from([-2.5, -1.0, 0.0, 0.5, 1.0, 3.0])
_STRS = st.sampled_from(["", "a", "ab", "b", "B", "é", "O'Q"])
_TIMES = st.sampled_from([_T0 + dt.timedelta(hours=h) for h in (0, 5, 24, 49)])
_CELLS: dict[str, st.SearchStrategy[Any]] = {
    "n": _INTS,
    "x": st.one_of(_FLOATS, st.just(math.nan)),
    "s": _STRS,
    "b": st.booleans(),
    "t": _TIMES,
}
#: Filter values per column: the same domains (so they collide) plus compatible kinds.
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "n": st.one_of(_INTS, st.sampled_from([-0.5, 1.5])),
    "x": st.one_of(_FLOATS, _INTS),
    "s": _STRS,
    "b": st.booleans(),
    "t": st.one_of(
        _TIMES,
        st.sampled_from([dt.date(2024, 1, 1), dt.date(2024, 1, 2)]),
        _TIMES.map(
            lambda t: t.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=-5)))
        ),
    ),
}


@st.composite
def _row(draw: st.DrawFn) -> dict[str, Any]:
    return {f: draw(st.one_of(st.none(), s)) for f, s in _CELLS.items()}


_rows_strategy = st.lists(_row(), min_size=1, max_size=25).map(
    lambda rows: [{"id": i, **r} for i, r in enumerate(rows)]
)


@st.composite
def _compare(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(sorted(_VALUES)))
    values = _VALUES[field]
    ops = ["$eq", "$ne", "$in", "$nin", "$exists", "implicit"]
    if field != "b":
        ops += ["$gt", "$gte", "$lt", "$lte"]
    op = draw(st.sampled_from(ops))
    operand: Any
    if op == "$exists":
        operand = draw(st.booleans())
    elif op in ("$in", "$nin"):
        operand = draw(st.lists(st.one_of(values, st.none()), max_size=3))
        present = [v for v in operand if v is not None]
        if field == "t" and present:  # a list holds one kind: dates or datetimes, not both
            operand = [v for v in operand if v is None or type(v) is type(present[0])]
    elif op in ("$gt", "$gte", "$lt", "$lte"):
        operand = draw(values)
    else:
        operand = draw(st.one_of(values, st.none()))
    if op == "implicit":
        return {field: operand}
    if draw(st.booleans()) and op != "$exists":
        return {field: {"$not": {op: operand}}}
    return {field: {op: operand}}


_filter_strategy = st.recursive(
    _compare(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
        children.map(lambda x: {"$not": x}),
    ),
    max_leaves=6,
)


# ------------------------------------------------------------------------------------ sharding
class TrainingShardTests(TrainingContractBase):
    """Shards partition the rows: every row exactly once, the same split on every run."""

    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
    def test_shards_partition_the_rows(self, training_source: Any, uid: Uid, n: int) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, rows=101)
        parts = [rows_of(training_source.scan(name, shard=(i, n), batch_size=8)) for i in range(n)]
        union = [r for p in parts for r in p]
        assert sorted(r["id"] for r in union) == list(range(101))  # each id exactly once
        assert multiset(union) == multiset(table.to_pylist())
        for i, part in enumerate(parts):
            assert training_source.count(name, shard=(i, n)) == len(part)

    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
    def test_shards_partition_duplicate_rows(self, training_source: Any, uid: Uid, n: int) -> None:
        name = uid("ds")
        table = duplicate_table()
        training_source.write(name, table)
        parts = [rows_of(training_source.scan(name, shard=(i, n))) for i in range(n)]
        assert multiset([r for p in parts for r in p]) == multiset(table.to_pylist())
        assert sum(training_source.count(name, shard=(i, n)) for i in range(n)) == table.num_rows

    def test_shards_are_stable(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        training_source.write(name, duplicate_table())
        for i in range(3):
            first = rows_of(training_source.scan(name, shard=(i, 3), batch_size=5))
            again = rows_of(training_source.scan(name, shard=(i, 3), batch_size=64))
            assert first == again

    def test_shards_of_a_filtered_scan(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, rows=90)
        spec = {"grp": {"$in": ["a", "b"]}}
        expected = _reference_ids(spec, table)
        got = [
            i
            for s in range(4)
            for i in ids_of(training_source.scan(name, filter=spec, shard=(s, 4)))
        ]
        assert sorted(got) == expected

    def test_shards_of_an_old_snapshot(self, training_source: Any, uid: Uid) -> None:
        self.require(training_source, "snapshots")
        name = uid("ds")
        v1, t1 = self.write_sample(training_source, name, rows=50)
        self.write_sample(training_source, name, rows=20)
        parts = [ids_of(training_source.scan(name, snapshot=v1, shard=(i, 3))) for i in range(3)]
        assert sorted(i for p in parts for i in p) == t1.column("id").to_pylist()
        again = [ids_of(training_source.scan(name, snapshot=v1, shard=(i, 3))) for i in range(3)]
        assert parts == again

    @pytest.mark.parametrize("shard", [(3, 3), (-1, 2), (0, 0), (0, -1), (1,), "0/2", (0.0, 2)])
    def test_bad_shard_is_invalid(self, training_source: Any, uid: Uid, shard: Any) -> None:
        name = uid("ds")
        self.write_sample(training_source, name, 5)
        with pytest.raises(InvalidInput):
            training_source.scan(name, shard=shard)
        with pytest.raises(InvalidInput):
            training_source.count(name, shard=shard)
        with pytest.raises(InvalidInput):
            training_source.scan(f"SELECT * FROM {self.dataset_sql(name)}", shard=shard)


# ------------------------------------------------------------------------------------- queries
class TrainingQueryTests(TrainingContractBase):
    """SQL sources (``SELECT``/``WITH``): projection, filters, sharding and counts."""

    def test_select_query(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, 60)
        scan = training_source.scan(
            f"SELECT id, grp FROM {self.dataset_sql(name)} WHERE id < 20 ORDER BY id"
        )
        assert scan.snapshot is None or isinstance(scan.snapshot, str)
        assert rows_of(scan) == table.select(["id", "grp"]).slice(0, 20).to_pylist()

    def test_with_query(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, 30)
        sql = (
            f"WITH g AS (SELECT grp, count(*) AS c FROM {self.dataset_sql(name)} GROUP BY grp) "
            "SELECT grp, c FROM g"
        )
        got = {r["grp"]: r["c"] for r in rows_of(training_source.scan(sql))}
        assert got == dict(Counter(table.column("grp").to_pylist()))

    def test_query_projection_and_filter(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, 80)
        sql = f"SELECT id, val, flag FROM {self.dataset_sql(name)}"
        spec = {"$or": [{"val": None}, {"flag": False}]}
        expected = _reference_ids(spec, table)
        scan = training_source.scan(sql, columns=["id"], filter=spec)
        assert scan.schema.names == ["id"]
        assert sorted(ids_of(scan)) == expected
        assert training_source.count(sql, filter=spec) == len(expected)
        with pytest.raises(NotFound):
            training_source.scan(sql, columns=["grp"])  # not selected by the query
        with pytest.raises(FilterError):
            training_source.scan(sql, filter={"val": "high"})

    @pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
    def test_query_shards_partition_duplicates(
        self, training_source: Any, uid: Uid, n: int
    ) -> None:
        name = uid("ds")
        table = duplicate_table()
        training_source.write(name, table)
        sql = f"SELECT k, tag FROM {self.dataset_sql(name)}"
        parts = [rows_of(training_source.scan(sql, shard=(i, n), batch_size=16)) for i in range(n)]
        assert multiset([r for p in parts for r in p]) == multiset(table.to_pylist())
        counts = [training_source.count(sql, shard=(i, n)) for i in range(n)]
        assert counts == [len(p) for p in parts]
        again = [rows_of(training_source.scan(sql, shard=(i, n))) for i in range(n)]
        assert [multiset(p) for p in again] == [multiset(p) for p in parts]

    def test_query_shards_with_filter(self, training_source: Any, uid: Uid) -> None:
        name = uid("ds")
        _, table = self.write_sample(training_source, name, 70)
        sql = f"SELECT * FROM {self.dataset_sql(name)}"
        spec = {"val": {"$gte": 10}}
        got = [
            i
            for s in range(3)
            for i in ids_of(training_source.scan(sql, filter=spec, shard=(s, 3)))
        ]
        assert sorted(got) == _reference_ids(spec, table)

    @pytest.mark.parametrize(
        "sql", ["SELECT FROM WHERE ((", "SELECT no_such_column FROM (SELECT 1 AS a) AS t"]
    )
    def test_query_that_does_not_run_is_a_schema_error(
        self, training_source: Any, sql: str
    ) -> None:
        with pytest.raises(SchemaError):
            training_source.scan(sql)
        with pytest.raises(SchemaError):
            training_source.count(sql)


class TrainingSourceTests(
    TrainingWriteTests,
    TrainingVersionTests,
    TrainingScanTests,
    TrainingFilterTests,
    TrainingShardTests,
    TrainingQueryTests,
):
    """The whole :class:`~strataml.protocols.TrainingSource` contract; needs ``training_source``."""
