"""Contract tests for the feature platform over a (FeatureStore, OnlineStore) pair:
materialization (full, incremental, resumed after a crash), the skew guard, online/offline
comparison and request-time transforms.

Subclass :class:`FeaturePlatformTests` and provide ``feature_store`` and ``online_store``
fixtures (empty, isolated stores of one stack).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from strataml.errors import InvalidInput, NotFound, SchemaError, SkewError, TransformError
from strataml.features import (
    FINGERPRINT_COLUMN,
    FeatureServer,
    apply_to_table,
    compare_online,
    materialize,
    materialize_state,
    materialized_types,
    online_view_name,
    transform,
)
from strataml.features.stats import NumericStats, StatsRepository
from strataml.models import FeatureView
from strataml.testing._base import ContractBase

__all__ = ["FeaturePlatformTests"]

Uid = Callable[[str], str]
#: recent, so online TTLs counted from event time have not run out
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
T0 = NOW - dt.timedelta(hours=10)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _source(rows: list[tuple[int, float, float]]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "ts": pa.array([at(r[1]) for r in rows], pa.timestamp("us")),
            "x": pa.array([r[2] for r in rows], pa.float64()),
        }
    )


def _view(name: str, table: str, *, version: int = 1, expr: str = "x") -> FeatureView:
    return FeatureView(
        name=name,
        version=version,
        sql=f"SELECT id, ts, {expr} AS x, {expr} * 2 AS y FROM {table}",
        entities=("id",),
    )


def _setup(store: Any, uid: Uid, rows: list[tuple[int, float, float]]) -> tuple[FeatureView, str]:
    name = uid("pv")
    table = f"{name}_src"
    store.load(table, _source(rows))
    return store.register(_view(name, table)), table


def _latest(rows: list[tuple[int, float, float]], before: float | None = None) -> dict[int, float]:
    best: dict[int, tuple[float, float]] = {}
    for i, m, x in rows:
        if before is not None and m >= before:
            continue
        if i not in best or m >= best[i][0]:
            best[i] = (m, x)
    return {i: x for i, (_, x) in best.items()}


def _online_values(online: Any, view: FeatureView, ids: list[int]) -> dict[int, float | None]:
    got = online.get_many(online_view_name(view), [{"id": i} for i in ids], ["x"])
    return {i: (None if r is None else r["x"]) for i, r in zip(ids, got, strict=True)}


def _checksum(online: Any, view: FeatureView, ids: list[int]) -> str:
    got = online.get_many(
        online_view_name(view), [{"id": i} for i in ids], ["x", "y", FINGERPRINT_COLUMN]
    )
    return hashlib.sha256(json.dumps(got, sort_keys=True, default=str).encode()).hexdigest()


class _Crashing:
    """An online store that dies (like a killed process) after ``after`` successful writes."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner = inner
        self.left = after

    def write(self, *args: Any, **kwargs: Any) -> int:
        if self.left == 0:
            raise RuntimeError("simulated crash")
        self.left -= 1
        return int(self.inner.write(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


#: 200 rows over 40 entities, and 100 rows over 25 entities
MANY = [(i % 40, float(i), float(i)) for i in range(200)]
FEW = [(i % 25, float(i), float(i)) for i in range(100)]


class FeatureMaterializeTests(ContractBase):
    """Offline -> online: full, incremental, resumable; rows carry the fingerprint."""

    def test_full_materialization_writes_each_latest_row(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, MANY)
        report = materialize(feature_store, online_store, view.name, batch_size=7)
        assert report.entities_written == report.rows_read == 40
        assert report.online_view == online_view_name(view)
        assert report.mode == "full"
        assert not report.resumed
        assert _online_values(online_store, view, list(range(40))) == _latest(MANY)
        row = online_store.get(online_view_name(view), {"id": 3})
        assert row[FINGERPRINT_COLUMN] == view.fingerprint[:16]
        assert row["y"] == row["x"] * 2
        state = materialize_state(feature_store, view)
        assert state is not None
        assert state.done
        assert state.written == 40

    def test_statistics_are_stored_on_materialization(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, MANY)
        materialize(feature_store, online_store, view)
        stats = StatsRepository(feature_store).latest(view.name, view.version)
        assert stats is not None
        assert stats.row_count == 40
        x = stats.features["x"]
        assert isinstance(x, NumericStats)
        assert x.count == 40
        assert x.max == max(_latest(MANY).values())
        materialize(feature_store, online_store, view, stats=False)
        assert len(StatsRepository(feature_store).history(view.name, view.version)) == 1

    def test_window_and_incremental_runs(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, table = _setup(feature_store, uid, MANY)
        first = materialize(feature_store, online_store, view, end=at(100))
        assert first.entities_written == 40
        assert _online_values(online_store, view, list(range(40))) == _latest(MANY, 100)
        again = materialize(feature_store, online_store, view, end=at(150), incremental=True)
        assert again.mode == "incremental"
        assert again.start is not None
        assert again.start.replace(tzinfo=None) == at(100)
        assert again.entities_written == 40  # rows 100..149 touch every entity
        late = [(5, 300.0, -1.0), (6, 301.0, -2.0)]
        feature_store.load(table, _source(late))
        third = materialize(feature_store, online_store, view, incremental=True)
        assert third.entities_written == 40  # rows 150..199 and the two late ones: 40 ids
        got = _online_values(online_store, view, [5, 6, 7])
        assert got == {5: -1.0, 6: -2.0, 7: _latest(MANY)[7]}
        with pytest.raises(InvalidInput):
            materialize(feature_store, online_store, view, start=at(0), incremental=True)

    def test_incremental_run_with_nothing_new_writes_nothing(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, MANY)
        materialize(feature_store, online_store, view)
        history = StatsRepository(feature_store).history(view.name, view.version)
        again = materialize(feature_store, online_store, view, incremental=True)
        assert again.mode == "incremental"
        assert again.rows_read == again.entities_written == 0
        # an empty window computes empty statistics and stores none
        assert StatsRepository(feature_store).history(view.name, view.version) == history
        assert _online_values(online_store, view, list(range(40))) == _latest(MANY)

    def test_resume_after_a_crash_has_no_gaps_or_duplicates(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        rows = [(i % 97, float(i), float(i) * 1.5) for i in range(500)]
        view, _ = _setup(feature_store, uid, rows)
        crashing = _Crashing(online_store, after=3)
        with pytest.raises(RuntimeError, match="simulated crash"):
            materialize(feature_store, crashing, view, batch_size=10)
        state = materialize_state(feature_store, view)
        assert state is not None
        assert not state.done
        assert state.written == 30
        partial = _online_values(online_store, view, list(range(97)))
        assert sum(v is not None for v in partial.values()) == 30
        resumed = materialize(feature_store, online_store, view, batch_size=10)
        assert resumed.resumed
        assert resumed.rows_read == 97 - 30  # only what the crashed run had not written
        assert resumed.entities_written == 97
        ids = list(range(97))
        assert _online_values(online_store, view, ids) == _latest(rows)
        # the same as a clean run of the same view into a fresh online view
        crashed_sum = _checksum(online_store, view, ids)
        for i in ids:
            online_store.delete(online_view_name(view), [{"id": i}])
        clean = materialize(feature_store, online_store, view, batch_size=10)
        assert not clean.resumed
        assert clean.entities_written == 97
        assert _checksum(online_store, view, ids) == crashed_sum

    def test_versions_are_served_side_by_side(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        v1, table = _setup(feature_store, uid, MANY)
        v2 = feature_store.register(_view(v1.name, table, version=2, expr="x + 1000"))
        materialize(feature_store, online_store, v1)
        materialize(feature_store, online_store, v2)
        one = FeatureServer(online_store, [v1]).get({"id": 1})
        two = FeatureServer(online_store, [v2]).get({"id": 1})
        assert two["x"] == one["x"] + 1000

    def test_bad_input(self, feature_store: Any, online_store: Any, uid: Uid) -> None:
        view, table = _setup(feature_store, uid, MANY)
        with pytest.raises(NotFound):
            materialize(feature_store, online_store, uid("missing"))
        with pytest.raises(InvalidInput):
            materialize(feature_store, online_store, view, batch_size=0)
        changed = _view(view.name, table, expr="x - 1")
        with pytest.raises(SchemaError):
            materialize(feature_store, online_store, changed)
        with pytest.raises(InvalidInput):
            materialize(feature_store, online_store, view, start=at(10), end=at(5))


class FeatureSkewTests(ContractBase):
    """The skew guard and online/offline comparison."""

    def test_guard_passes_the_materialized_definition(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, FEW)
        materialize(feature_store, online_store, view)
        server = FeatureServer(online_store, [view])
        got = server.get({"id": 4})
        assert got == {"x": _latest(FEW)[4], "y": _latest(FEW)[4] * 2}
        assert server.get({"id": 999}) == {"x": None, "y": None}
        many = server.get_many([{"id": 4}, {"id": 999}])
        assert many == [got, {"x": None, "y": None}]
        with pytest.raises(InvalidInput):
            server.get({"user": 4})

    def test_other_definition_raises_skew_error(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, table = _setup(feature_store, uid, FEW)
        materialize(feature_store, online_store, view)
        # the model was trained on another definition of the same name and version
        trained_on = _view(view.name, table, expr="x * 10").model_copy(
            update={"features": ("x", "y")}
        )
        server = FeatureServer(online_store, [trained_on])
        with pytest.raises(SkewError, match=view.name):
            server.get({"id": 4})
        with pytest.raises(SkewError):
            server.get_many([{"id": 4}])
        unguarded = FeatureServer(online_store, [trained_on], skew_guard=False)
        assert unguarded.get({"id": 4})["x"] == _latest(FEW)[4]

    def test_rows_not_written_by_materialize_are_skew(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, FEW)
        online_store.write(online_view_name(view), [{"id": 1, "x": 1.0, "y": 2.0}], entities=["id"])
        with pytest.raises(SkewError):
            FeatureServer(online_store, [view]).get({"id": 1})

    def test_compare_online_reports_mismatches_per_feature(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, FEW)
        materialize(feature_store, online_store, view)
        clean = compare_online(feature_store, online_store, view.name, sample=25)
        assert clean.sampled == 25
        assert clean.ok, clean
        online_store.write(
            online_view_name(view),
            [{"id": 7, "x": -5.0, "y": _latest(FEW)[7] * 2, FINGERPRINT_COLUMN: "0" * 16}],
            entities=["id"],
        )
        online_store.delete(online_view_name(view), [{"id": 8}])
        report = compare_online(feature_store, online_store, view.name, sample=25)
        assert not report.ok
        assert report.mismatches == {"x": 1, "y": 0}
        assert report.skewed == 1
        assert report.missing_online == 1
        assert report.examples[0]["entity"] == {"id": 7}


def _ratio() -> Any:
    """A transform of a feature (``x``) and a request-time input (``amount``)."""

    @transform(inputs=["x", "amount"], outputs=["ratio"])
    def ratio(cols: Any) -> dict[str, Any]:
        return {"ratio": cols["amount"] / np.maximum(cols["x"], 1.0)}

    return ratio


def _labels(n: int) -> pa.Table:
    """Label rows for ids ``0 .. n-1``, all at ``NOW``."""
    return pa.table(
        {"id": pa.array(list(range(n)), pa.int64()), "ts": pa.array([NOW] * n, pa.timestamp("us"))}
    )


def _materialized_ten(feature_store: Any, online_store: Any, uid: Uid) -> FeatureView:
    """A view over 60 rows of entities ``0 .. 9``, materialized."""
    rows = [(i % 10, float(i), float(i % 7)) for i in range(60)]
    view, _ = _setup(feature_store, uid, rows)
    materialize(feature_store, online_store, view)
    return view


class FeatureTransformTests(ContractBase):
    """Request-time transforms: the same code in training and serving."""

    def test_same_values_in_training_and_serving(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view = _materialized_ten(feature_store, online_store, uid)

        ratio = _ratio()
        labels = _labels(10).append_column("amount", pa.array([float(a) for a in range(10, 20)]))
        train = apply_to_table(
            feature_store.historical(labels, [f"{view.name}:x"]), [ratio]
        ).to_pylist()
        server = FeatureServer(online_store, [view], transforms=[ratio])
        for row in train:
            served = server.get({"id": row["id"]}, request={"amount": row["amount"]})
            assert served["ratio"] == pytest.approx(row["ratio"])

    def test_a_missing_request_input_is_invalid_input(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, [(1, 0.0, 1.0)])
        materialize(feature_store, online_store, view)

        ratio = _ratio()
        server = FeatureServer(online_store, [view], transforms=[ratio])
        with pytest.raises(InvalidInput, match="amount"):
            server.get({"id": 1})
        with pytest.raises(InvalidInput, match="amount"):
            server.get_many([{"id": 1}, {"id": 2}], requests=[{"amount": 1.0}, {}])

        @transform(inputs=["x"], outputs=["has_x"])
        def has_x(cols: Any) -> dict[str, Any]:
            return {"has_x": np.array([v is not None and v == v for v in cols["x"]])}

        # a feature without a live row is a null input (None), not a missing one
        served = FeatureServer(online_store, [view], transforms=[has_x]).get({"id": 99})
        assert served["x"] is None
        assert served["has_x"] is False

    def test_a_transform_may_read_the_entity_key(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view = _materialized_ten(feature_store, online_store, uid)

        @transform(inputs=["id", "x"], outputs=["x_per_id"])
        def x_per_id(cols: Any) -> dict[str, Any]:
            return {"x_per_id": cols["x"] / (cols["id"] + 1)}

        labels = _labels(10)
        train = apply_to_table(feature_store.historical(labels, [f"{view.name}:x"]), [x_per_id])
        server = FeatureServer(online_store, [view], transforms=[x_per_id])
        served = server.get_many([{"id": i} for i in range(10)])
        for row, got in zip(train.to_pylist(), served, strict=True):
            assert got["x_per_id"] == pytest.approx(row["x_per_id"])
        assert server.get({"id": 3})["x_per_id"] == pytest.approx(train.to_pylist()[3]["x_per_id"])

    def test_a_cold_start_entity_gets_the_training_types(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view = _materialized_ten(feature_store, online_store, uid)
        types = materialized_types(feature_store, view)
        assert set(types) == {"x", "y"}
        assert all(pa.types.is_floating(t) for t in types.values()), types

        ratio = _ratio()
        # ids 10 and 11 have no feature rows: training sees a null float x (NaN)
        labels = _labels(12).append_column("amount", pa.array([float(a) for a in range(12)]))
        train = apply_to_table(
            feature_store.historical(labels, [f"{view.name}:x"]), [ratio]
        ).to_pylist()
        assert math.isnan(train[11]["ratio"])
        server = FeatureServer(online_store, [view], transforms=[ratio], feature_types=types)
        served = [server.get({"id": r["id"]}, request={"amount": r["amount"]}) for r in train]
        cold = server.get_many(
            [{"id": 10}, {"id": 11}], requests=[{"amount": 10.0}, {"amount": 11.0}]
        )
        for row, got in zip(train, served, strict=True):
            assert got["ratio"] == pytest.approx(row["ratio"], nan_ok=True), (row, got)
        assert [math.isnan(c["ratio"]) for c in cold] == [True, True]  # all-null column

    def test_a_raising_transform_is_a_typed_error(
        self, feature_store: Any, online_store: Any, uid: Uid
    ) -> None:
        view, _ = _setup(feature_store, uid, [(1, 0.0, 1.0)])
        materialize(feature_store, online_store, view)

        @transform(inputs=["x"], outputs=["boom"])
        def boom(cols: Any) -> dict[str, Any]:
            raise ZeroDivisionError("no")

        with pytest.raises(TransformError, match="boom"):
            FeatureServer(online_store, [view], transforms=[boom]).get({"id": 1})
        assert online_store.get(online_view_name(view), {"id": 1})["x"] == 1.0


class FeaturePlatformTests(FeatureMaterializeTests, FeatureSkewTests, FeatureTransformTests):
    """The whole feature-platform contract (fixtures ``feature_store``, ``online_store``)."""
