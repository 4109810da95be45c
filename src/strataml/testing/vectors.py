"""Contract tests for :class:`~strataml.protocols.VectorStore` and
:class:`~strataml.protocols.AsyncVectorStore`, written from the protocols' docstrings.

Subclass :class:`VectorStoreTests` (and :class:`AsyncVectorStoreTests` for the async API) and
provide a ``vector_store`` fixture yielding an empty, isolated store. The async suite wraps
``vector_store`` with :class:`~strataml.aio.AsyncVectorAdapter` unless the subclass overrides the
``async_vector_store`` fixture (which must then reach the same data as ``vector_store``: the
async protocol has no ``create_collection``). Tests skip, naming the capability, when the store
does not declare ``keyword``, ``hybrid``, ``tenants`` or a metric.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.aio import AsyncVectorAdapter
from strataml.errors import (
    Conflict,
    DimensionMismatch,
    FilterError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    Unsupported,
)
from strataml.filters import ALL_OPS, Op, matches, ops_used, parse_filter
from strataml.models import CollectionStats, Hit, VectorRecord
from strataml.protocols.vectors import AsyncVectorStore, VectorStore
from strataml.testing._base import ContractBase
from strataml.testing.lifecycle import VectorLifecycleTests

__all__ = [
    "AsyncVectorStoreTests",
    "VectorAliasTests",
    "VectorBadInputTests",
    "VectorCollectionTests",
    "VectorDenseSearchTests",
    "VectorFilterTests",
    "VectorHealthTests",
    "VectorHybridTests",
    "VectorKeywordTests",
    "VectorScanMetadataTests",
    "VectorScanTests",
    "VectorStoreTests",
    "VectorTenantTests",
    "VectorWriteTests",
]

DIM = 8
METRICS = ("cosine", "l2", "dot")
_PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Vec = npt.NDArray[np.float64]


# ----------------------------------------------------------------------------------- helpers
def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _unit(v: Vec) -> Vec:
    out: Vec = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return out


def _vectors(n: int, seed: int = 0, *, unit: bool = False) -> Vec:
    v: Vec = _rng(seed).normal(size=(n, DIM))
    return _unit(v) if unit else v


def _records(vectors: Vec, prefix: str = "r", **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{i}", "vector": v.tolist(), **extra} for i, v in enumerate(vectors)]


def _ids(hits: Sequence[Hit | VectorRecord]) -> list[str]:
    return [h.id for h in hits]


def _utc(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
    return v


def _assert_sorted_scores(hits: Sequence[Hit]) -> None:
    scores = [h.score for h in hits]
    assert all(0.0 <= s <= 1.0 for s in scores), scores
    assert scores == sorted(scores, reverse=True), scores


# --------------------------------------------------------------------------------------- base
class _VectorBase(ContractBase):
    """Fixtures shared by the vector mixins."""

    @pytest.fixture
    def new_collection(self, vector_store: Any, uid: Callable[[str], str]) -> Iterator[Any]:
        """``new_collection(suffix, dim=8, metric="cosine", multi_tenant=False)`` -> a new name;
        everything made is dropped after the test."""
        made: list[str] = []

        def make(
            suffix: str = "c",
            dim: int = DIM,
            metric: str = "cosine",
            *,
            multi_tenant: bool = False,
            metadata: Mapping[str, Any] | None = None,
        ) -> str:
            name = uid(f"v{suffix}")
            vector_store.create_collection(
                name, dim, metric, multi_tenant=multi_tenant, metadata=metadata
            )
            made.append(name)
            return name

        yield make
        try:
            if vector_store.capabilities.aliases:
                for alias, target in vector_store.aliases().items():
                    if target in made:
                        vector_store.drop_alias(alias)
        except Exception:  # noqa: BLE001 - cleanup must not mask the test's outcome
            pass
        for name in made:
            try:
                vector_store.drop_collection(name)
            except Exception:  # noqa: BLE001 - cleanup must not mask the test's outcome
                pass


# -------------------------------------------------------------------------------- collections
class VectorCollectionTests(_VectorBase):
    """create_collection / describe / collections / drop_collection."""

    def test_conforms_to_protocol(self, vector_store: Any) -> None:
        assert isinstance(vector_store, VectorStore)

    def test_create_and_describe(self, vector_store: Any, uid: Callable[[str], str]) -> None:
        name = uid("vdesc")
        info = vector_store.create_collection(name, 16, "cosine", metadata={"model": "m-1"})
        try:
            assert (info.name, info.dim, info.metric, info.count) == (name, 16, "cosine", 0)
            assert info.multi_tenant is False
            d = vector_store.describe(name)
            assert (d.dim, d.metric, d.count, d.fields) == (16, "cosine", 0, {})
            assert d.metadata == {"model": "m-1"}
        finally:
            vector_store.drop_collection(name)

    def test_create_existing_raises_conflict(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        with pytest.raises(Conflict):
            vector_store.create_collection(name, DIM, "cosine")

    def test_exist_ok_returns_existing(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(3)))
        info = vector_store.create_collection(name, DIM, "cosine", exist_ok=True)
        assert (info.dim, info.metric, info.count) == (DIM, "cosine", 3)
        assert vector_store.count(name) == 3

    def test_exist_ok_with_other_dim_conflicts(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name = new_collection()
        with pytest.raises(Conflict):
            vector_store.create_collection(name, DIM + 1, "cosine", exist_ok=True)
        assert vector_store.describe(name).dim == DIM

    def test_exist_ok_with_other_metric_conflicts(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        caps = vector_store.capabilities
        others = [m for m in METRICS if m != "cosine" and caps.supports(f"metric:{m}")]
        if not others:
            pytest.skip("backend declares no metric besides cosine")
        name = new_collection()
        other = others[0]
        with pytest.raises(Conflict):
            vector_store.create_collection(name, DIM, other, exist_ok=True)
        assert vector_store.describe(name).metric == "cosine"

    def test_collections_and_drop(self, vector_store: Any, new_collection: Any) -> None:
        a, b = new_collection("a"), new_collection("b")
        names = vector_store.collections()
        assert a in names
        assert b in names
        vector_store.drop_collection(a)
        assert a not in vector_store.collections()
        assert b in vector_store.collections()
        vector_store.drop_collection(a)  # dropping a missing collection is not an error
        with pytest.raises(NotFound):
            vector_store.describe(a)

    def test_invalid_create_arguments(self, vector_store: Any, uid: Callable[[str], str]) -> None:
        name = uid("vbad")
        for dim in (0, -3, "8", True):
            with pytest.raises(InvalidInput):
                vector_store.create_collection(name, dim)
        with pytest.raises(InvalidInput):
            vector_store.create_collection(name, DIM, "manhattan")
        with pytest.raises(InvalidInput):
            vector_store.create_collection("bad name!", DIM)
        assert name not in vector_store.collections()

    def test_undeclared_metric_is_unsupported(
        self, vector_store: Any, uid: Callable[[str], str]
    ) -> None:
        missing = [m for m in METRICS if not vector_store.capabilities.supports(f"metric:{m}")]
        if not missing:
            pytest.skip("backend declares every metric")
        for m in missing:
            with pytest.raises(Unsupported):
                vector_store.create_collection(uid("vmetric"), DIM, m)

    def test_unknown_collection_is_not_found(
        self, vector_store: Any, uid: Callable[[str], str]
    ) -> None:
        name = uid("vmissing")
        v = [0.1] * DIM
        calls: list[Callable[[], Any]] = [
            lambda: vector_store.describe(name),
            lambda: vector_store.upsert(name, [{"id": "a", "vector": v}]),
            lambda: vector_store.get(name, ["a"]),
            lambda: vector_store.delete(name, ["a"]),
            lambda: vector_store.count(name),
            lambda: vector_store.search(name, v),
        ]
        for call in calls:
            with pytest.raises(NotFound):
                call()

    def test_describe_reports_field_types(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(3)
        vector_store.upsert(
            name,
            [
                {
                    "id": "a",
                    "vector": vecs[0].tolist(),
                    "metadata": {
                        "lang": "en",
                        "year": 2020,
                        "price": 1.5,
                        "draft": False,
                        "at": dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC),
                        "day": dt.date(2024, 5, 1),
                        "tags": ["x", "y"],
                        "mixed": 1,
                    },
                },
                {"id": "b", "vector": vecs[1].tolist(), "metadata": {"mixed": 2.5}},
            ],
        )
        fields = {k: str(v) for k, v in vector_store.describe(name).fields.items()}
        assert fields == {
            "lang": "string",
            "year": "int",
            "price": "float",
            "draft": "bool",
            "at": "timestamp",
            "day": "date",
            "tags": "list",
            "mixed": "float",
        }
        assert vector_store.describe(name).count == 2


# ------------------------------------------------------------------------------------ writes
class VectorWriteTests(_VectorBase):
    """upsert / get / delete / count."""

    def test_upsert_and_get_roundtrip(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(2)
        meta = {
            "lang": "en",
            "year": 2021,
            "score": 0.25,
            "ok": True,
            "at": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            "day": dt.date(2023, 12, 31),
            "tags": ["a", "b"],
        }
        written = vector_store.upsert(
            name,
            [
                VectorRecord(id="rec", vector=vecs[0], text="hello world", metadata=meta),
                {"id": "map", "vector": vecs[1].tolist()},
            ],
        )
        assert written == 2
        got = vector_store.get(name, ["rec", "map"])
        assert _ids(got) == ["rec", "map"]
        rec, mapped = got
        assert np.allclose(np.asarray(rec.vector, dtype=np.float64), vecs[0], rtol=1e-6, atol=1e-6)
        assert rec.text == "hello world"
        assert rec.tenant is None
        got_meta = {k: _utc(v) for k, v in rec.metadata.items()}
        got_meta["tags"] = list(got_meta["tags"])
        assert got_meta == meta
        assert mapped.text is None
        assert mapped.metadata == {}
        no_vec = vector_store.get(name, ["rec"], include_vectors=False)
        assert no_vec[0].vector is None
        assert no_vec[0].text == "hello world"

    def test_upsert_replaces_by_id(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(6, seed=1)
        vector_store.upsert(
            name,
            [
                {
                    "id": f"r{i}",
                    "vector": vecs[i].tolist(),
                    "text": f"old {i}",
                    "metadata": {"v": 1, "gone": "x"},
                }
                for i in range(5)
            ],
        )
        new_vec = vecs[5].tolist()
        assert (
            vector_store.upsert(
                name, [{"id": "r2", "vector": new_vec, "text": "new", "metadata": {"v": 2}}]
            )
            == 1
        )
        assert vector_store.count(name) == 5
        (rec,) = vector_store.get(name, ["r2"])
        assert np.allclose(rec.vector, new_vec, atol=1e-6)
        assert rec.text == "new"
        assert rec.metadata == {"v": 2}
        top = vector_store.search(name, new_vec, k=1)
        assert top[0].id == "r2"
        assert vector_store.count(name, filter={"v": 2}) == 1
        assert vector_store.count(name, filter={"gone": {"$exists": True}}) == 4

    def test_upsert_is_idempotent(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        recs = _records(_vectors(4), metadata={"k": "v"})
        vector_store.upsert(name, recs)
        before = vector_store.get(name, [r["id"] for r in recs])
        vector_store.upsert(name, recs)
        assert vector_store.count(name) == 4
        after = vector_store.get(name, [r["id"] for r in recs])
        assert [(r.id, r.text, r.metadata) for r in before] == [
            (r.id, r.text, r.metadata) for r in after
        ]

    def test_duplicate_ids_in_one_batch_last_wins(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name = new_collection()
        vecs = _vectors(2, seed=2)
        vector_store.upsert(
            name,
            [
                {"id": "d", "vector": vecs[0].tolist(), "text": "first"},
                {"id": "d", "vector": vecs[1].tolist(), "text": "last"},
            ],
        )
        assert vector_store.count(name) == 1
        (rec,) = vector_store.get(name, ["d"])
        assert rec.text == "last"
        assert np.allclose(rec.vector, vecs[1], atol=1e-6)

    def test_get_keeps_order_and_skips_missing(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(5)))
        got = vector_store.get(name, ["r3", "nope", "r0", "r4"], include_vectors=False)
        assert _ids(got) == ["r3", "r0", "r4"]
        assert vector_store.get(name, []) == []
        assert vector_store.get(name, ["nope"]) == []

    def test_delete_ignores_missing_ids(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(4)))
        vector_store.delete(name, ["r1", "nope"])
        assert vector_store.count(name) == 3
        assert vector_store.get(name, ["r1"]) == []
        vector_store.delete(name, ["nope"])
        vector_store.delete(name, [])
        assert vector_store.count(name) == 3
        assert "r1" not in _ids(vector_store.search(name, _vectors(4)[1], k=10))

    def test_count_with_filter(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(10)
        vector_store.upsert(
            name,
            [
                {"id": f"r{i}", "vector": v.tolist(), "metadata": {"g": i % 3, "even": i % 2 == 0}}
                for i, v in enumerate(vecs)
            ],
        )
        assert vector_store.count(name) == 10
        assert vector_store.count(name, filter={"g": 0}) == 4
        assert vector_store.count(name, filter={"g": {"$gte": 1}, "even": True}) == 3
        assert vector_store.count(name, filter={}) == 10

    def test_empty_batch_writes_nothing(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        assert vector_store.upsert(name, []) == 0
        assert vector_store.count(name) == 0

    def test_ints_and_floats_mix(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(3)
        vector_store.upsert(name, [{"id": "i", "vector": vecs[0].tolist(), "metadata": {"x": 2}}])
        vector_store.upsert(name, [{"id": "f", "vector": vecs[1].tolist(), "metadata": {"x": 2.5}}])
        assert str(vector_store.describe(name).fields["x"]) == "float"
        assert vector_store.count(name, filter={"x": {"$gt": 2.2}}) == 1
        assert vector_store.count(name, filter={"x": 2}) == 1
        assert vector_store.count(name, filter={"x": {"$in": [2, 2.5]}}) == 2
        assert {r.id: r.metadata["x"] for r in vector_store.get(name, ["i", "f"])} == {
            "i": 2,
            "f": 2.5,
        }


# --------------------------------------------------------------------------------- bad input
class VectorBadInputTests(_VectorBase):
    """Bad input raises typed errors before anything is written."""

    def _seeded_for_bad_input(self, vector_store: Any, new_collection: Any) -> str:
        name: str = new_collection()
        vector_store.upsert(name, _records(_vectors(3), metadata={"year": 2020}))
        return name

    def _assert_unchanged(self, vector_store: Any, name: str) -> None:
        assert vector_store.count(name) == 3
        assert _ids(vector_store.get(name, ["r0", "r1", "r2", "new"])) == ["r0", "r1", "r2"]
        assert {k: str(v) for k, v in vector_store.describe(name).fields.items()} == {"year": "int"}

    def test_wrong_dimension_writes_nothing(self, vector_store: Any, new_collection: Any) -> None:
        name = self._seeded_for_bad_input(vector_store, new_collection)
        good = {"id": "new", "vector": [0.5] * DIM, "metadata": {"fresh": "x"}}
        for bad_vec in ([0.5] * (DIM - 1), [0.5] * (DIM + 1), [[0.5] * DIM]):
            with pytest.raises(DimensionMismatch):
                vector_store.upsert(name, [good, {"id": "bad", "vector": bad_vec}])
            self._assert_unchanged(vector_store, name)

    def test_non_finite_record_writes_nothing(self, vector_store: Any, new_collection: Any) -> None:
        name = self._seeded_for_bad_input(vector_store, new_collection)
        good = {"id": "new", "vector": [0.5] * DIM}
        for bad in (math.nan, math.inf, -math.inf):
            vec = [0.5] * DIM
            vec[3] = bad
            with pytest.raises(InvalidInput):
                vector_store.upsert(name, [good, {"id": "bad", "vector": vec}])
            self._assert_unchanged(vector_store, name)

    def test_bad_records_write_nothing(self, vector_store: Any, new_collection: Any) -> None:
        name = self._seeded_for_bad_input(vector_store, new_collection)
        good = {"id": "new", "vector": [0.5] * DIM}
        bad_records: list[Any] = [
            {"id": "", "vector": [0.5] * DIM},
            {"id": None, "vector": [0.5] * DIM},
            {"id": "novec"},
            {"id": "txt", "vector": [0.5] * DIM, "text": 42},
            {"id": "nested", "vector": [0.5] * DIM, "metadata": {"a": {"b": 1}}},
            {"id": "nan", "vector": [0.5] * DIM, "metadata": {"f": math.nan}},
            # NumPy would read these as numbers: a vector of them is a mistake
            {"id": "text", "vector": ["0.5"] * DIM},
            {"id": "bools", "vector": [True] * DIM},
            {"id": "none", "vector": [0.5, None] * (DIM // 2)},
        ]
        for bad in bad_records:
            with pytest.raises(InvalidInput):
                vector_store.upsert(name, [good, bad])
            self._assert_unchanged(vector_store, name)

    def test_metadata_type_conflict(self, vector_store: Any, new_collection: Any) -> None:
        name = self._seeded_for_bad_input(vector_store, new_collection)
        for value in ("2021", True, [2021]):
            rec = {"id": "new", "vector": [0.5] * DIM, "metadata": {"year": value}}
            with pytest.raises(InvalidInput):
                vector_store.upsert(name, [rec])
            self._assert_unchanged(vector_store, name)
        clash = [
            {"id": "new", "vector": [0.5] * DIM, "metadata": {"kind": "a"}},
            {"id": "new2", "vector": [0.5] * DIM, "metadata": {"kind": 3}},
        ]
        with pytest.raises(InvalidInput):
            vector_store.upsert(name, clash)
        self._assert_unchanged(vector_store, name)

    def test_bad_query_vectors(self, vector_store: Any, new_collection: Any) -> None:
        name = self._seeded_for_bad_input(vector_store, new_collection)
        with pytest.raises(DimensionMismatch):
            vector_store.search(name, [0.5] * (DIM + 2))
        for bad in (math.nan, math.inf):
            vec = [0.5] * DIM
            vec[0] = bad
            with pytest.raises(InvalidInput):
                vector_store.search(name, vec)
        for query in (["a"] * DIM, ["0.5"] * DIM, [True] * DIM):
            with pytest.raises(InvalidInput):
                vector_store.search(name, query)

    def test_k_must_be_positive(self, vector_store: Any, new_collection: Any) -> None:
        name = self._seeded_for_bad_input(vector_store, new_collection)
        for k in (0, -1):
            with pytest.raises(InvalidInput):
                vector_store.search(name, [0.5] * DIM, k=k)

    def test_search_needs_a_query(self, vector_store: Any, new_collection: Any) -> None:
        name = self._seeded_for_bad_input(vector_store, new_collection)
        with pytest.raises(InvalidInput):
            vector_store.search(name)
        with pytest.raises(InvalidInput):
            vector_store.search(name, None, mode="dense")


# ------------------------------------------------------------------------------ dense search
class VectorDenseSearchTests(_VectorBase):
    """Dense search and the score contract, for every declared metric."""

    @pytest.mark.parametrize("metric", METRICS)
    def test_nearest_neighbour_is_itself(
        self, vector_store: Any, new_collection: Any, metric: str
    ) -> None:
        self.require(vector_store, f"metric:{metric}")
        name = new_collection(metric, metric=metric)
        vecs = _vectors(40, seed=3, unit=metric == "dot") * (1.0 if metric == "dot" else 3.0)
        vector_store.upsert(name, _records(vecs))
        for i in (0, 7, 21, 39):
            hits = vector_store.search(name, vecs[i], k=5)
            assert hits[0].id == f"r{i}"
            assert hits[0].score == max(h.score for h in hits)
            assert hits[0].metric == metric
            if metric != "dot":
                assert hits[0].distance == pytest.approx(0.0, abs=1e-3)
                assert hits[0].score == pytest.approx(1.0, abs=1e-3)

    @pytest.mark.parametrize("metric", METRICS)
    def test_scores_follow_the_contract(
        self, vector_store: Any, new_collection: Any, metric: str
    ) -> None:
        self.require(vector_store, f"metric:{metric}")
        name = new_collection(metric, metric=metric)
        vecs = _vectors(30, seed=4) * 0.7
        vector_store.upsert(name, _records(vecs))
        q = _vectors(1, seed=5)[0] * 0.8
        hits = vector_store.search(name, q, k=30)
        assert len(hits) == 30
        _assert_sorted_scores(hits)
        for h in hits:
            v = vecs[int(h.id[1:])]
            assert h.metric == metric
            assert h.distance is not None
            if metric == "cosine":
                cos = float(q @ v / (np.linalg.norm(q) * np.linalg.norm(v)))
                assert h.distance == pytest.approx(1.0 - cos, abs=1e-4)
                assert h.score == pytest.approx(1.0 - h.distance / 2.0, abs=1e-6)
            elif metric == "l2":
                assert h.distance == pytest.approx(float(np.linalg.norm(q - v)), rel=1e-4)
                assert h.score == pytest.approx(1.0 / (1.0 + h.distance), abs=1e-6)
            else:
                ip = float(q @ v)
                assert h.distance == pytest.approx(-ip, abs=1e-4)
                assert h.score == pytest.approx(1.0 / (1.0 + math.exp(-ip)), abs=1e-5)

    def test_search_returns_text_metadata_and_vectors(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name = new_collection()
        vecs = _vectors(5)
        vector_store.upsert(
            name,
            [
                {"id": f"r{i}", "vector": v.tolist(), "text": f"t{i}", "metadata": {"i": i}}
                for i, v in enumerate(vecs)
            ],
        )
        (hit,) = vector_store.search(name, vecs[2], k=1)
        assert (hit.id, hit.text, hit.metadata) == ("r2", "t2", {"i": 2})
        assert hit.vector is None
        (hit,) = vector_store.search(name, vecs[2], k=1, include_vectors=True)
        assert hit.vector is not None
        assert np.allclose(hit.vector, vecs[2], atol=1e-6)

    def test_search_empty_collection(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        assert vector_store.search(name, [0.1] * DIM, k=3) == []

    def test_k_larger_than_collection(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(4)))
        hits = vector_store.search(name, [0.1] * DIM, k=50)
        assert sorted(_ids(hits)) == ["r0", "r1", "r2", "r3"]
        _assert_sorted_scores(hits)

    @pytest.mark.parametrize("k", [2**32, 2**80])
    def test_a_huge_k_returns_every_match_or_is_over_a_limit(
        self, vector_store: Any, new_collection: Any, k: int
    ) -> None:
        """Any positive k is valid: all matches come back, unless the backend caps k (a
        typed :class:`LimitExceeded`, never a driver's integer overflow)."""
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(4)))
        try:
            hits = vector_store.search(name, [0.1] * DIM, k=k)
        except LimitExceeded:
            return
        assert sorted(_ids(hits)) == ["r0", "r1", "r2", "r3"]


# ----------------------------------------------------------------------------------- filters
_STRINGS = ["a", "b", "ab", "B", "a'b", "z"]


def _filter_data() -> list[dict[str, Any]]:
    """A small collection covering present, null and missing values of every kind."""
    rng = _rng(11)
    out: list[dict[str, Any]] = []
    for i in range(36):
        meta: dict[str, Any] = {}
        pick = rng.random(5)
        if pick[0] < 0.7:
            meta["n"] = int(rng.integers(-3, 4))
        elif pick[0] < 0.85:
            meta["n"] = None
        if pick[1] < 0.7:
            meta["x"] = float(rng.choice([-1.5, 0.0, 0.5, 1.0, 2.25]))
        if pick[2] < 0.75:
            meta["s"] = str(rng.choice(_STRINGS[:5]))
        if pick[3] < 0.6:
            meta["b"] = bool(rng.random() < 0.5)
        elif pick[3] < 0.7:
            meta["b"] = None
        out.append({"id": f"f{i}", "metadata": meta})
    return out


def _values(field: str) -> st.SearchStrategy[Any]:
    if field == "n":
        return st.one_of(st.integers(-4, 4), st.sampled_from([0.5, -2.5, 3.0]))
    if field == "x":
        return st.one_of(st.sampled_from([-1.5, 0.0, 0.5, 1.0, 2.25, 9.0]), st.integers(-2, 3))
    if field == "s":
        return st.sampled_from(_STRINGS)
    return st.booleans()


@st.composite
def _leaf(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(["n", "x", "s", "b", "missing"]))
    kind = "b" if field == "missing" else field
    ops = ["$eq", "$ne", "$in", "$nin", "$exists", "implicit", "not"]
    if kind != "b":
        ops += ["$gt", "$gte", "$lt", "$lte"]
    op = draw(st.sampled_from(ops))
    vals = _values(kind)
    if op == "implicit":
        return {field: draw(st.one_of(vals, st.none()))}
    if op in ("$eq", "$ne"):
        return {field: {op: draw(st.one_of(vals, st.none()))}}
    if op in ("$in", "$nin"):
        items = draw(st.lists(st.one_of(vals, st.none()), max_size=3))
        return {field: {op: items}}
    if op == "$exists":
        return {field: {op: draw(st.booleans())}}
    if op == "not":
        inner_op = draw(st.sampled_from(["$eq", "$in"] if kind == "b" else ["$eq", "$gt", "$lte"]))
        inner: Any = [draw(vals)] if inner_op == "$in" else draw(vals)
        return {field: {"$not": {inner_op: inner}}}
    return {field: {op: draw(vals)}}


_FILTERS: st.SearchStrategy[dict[str, Any]] = st.recursive(
    _leaf(),
    lambda children: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, children),
        st.builds(lambda a, b: {**a, **b}, children, children),
    ),
    max_leaves=6,
)


_DAYS = [dt.date(1, 1, 1), dt.date(1999, 12, 31), dt.date(2024, 2, 29), dt.date(9999, 12, 31)]
_UTC = dt.UTC


def _temporal_data() -> list[dict[str, Any]]:
    """Records with a DATE field ``d`` and a TIMESTAMP field ``t`` at the ends of the range."""
    times = [dt.datetime.combine(d, dt.time(h), _UTC) for d in _DAYS for h in (0, 12)]
    out: list[dict[str, Any]] = []
    for i in range(12):
        meta: dict[str, Any] = {}
        if i % 5 != 4:
            meta["d"] = _DAYS[i % len(_DAYS)]
        if i % 6 != 5:
            meta["t"] = times[(i * 3) % len(times)]
        out.append({"id": f"t{i}", "metadata": meta})
    return out


_DATETIMES: st.SearchStrategy[dt.datetime] = st.one_of(
    st.builds(
        lambda d, h: dt.datetime.combine(d, dt.time(h), _UTC),
        st.sampled_from(_DAYS[1:3]),
        st.sampled_from([0, 6, 12]),
    ),
    st.sampled_from(
        [dt.datetime(1, 1, 1, tzinfo=_UTC), dt.datetime(9999, 12, 31, 23, 59, tzinfo=_UTC)]
    ),
)
_INSTANTS: st.SearchStrategy[Any] = st.one_of(st.sampled_from(_DAYS), _DATETIMES)


@st.composite
def _temporal_filter(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(["d", "t"]))
    op = draw(st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"]))
    if op in ("$in", "$nin"):
        kind = draw(st.sampled_from([st.sampled_from(_DAYS), _DATETIMES]))  # $in: one kind
        return {field: {op: draw(st.lists(kind, max_size=3))}}
    return {field: {op: draw(_INSTANTS)}}


class VectorFilterTests(_VectorBase):
    """The filter language, null/missing semantics, type checks and pre-filtering."""

    def test_dates_and_times_at_the_ends_of_the_range_match_the_reference(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        """Dates and datetimes from year 1 to 9999, each compared with DATE and TIMESTAMP
        fields (a date means its midnight, UTC), agree with :func:`strataml.filters.matches`."""
        name = new_collection("tmp")
        data = _temporal_data()
        vecs = _vectors(len(data), seed=13)
        vector_store.upsert(
            name, [{**r, "vector": v.tolist()} for r, v in zip(data, vecs, strict=True)]
        )
        supported = set(vector_store.capabilities.filter_ops)
        q = [0.1] * DIM

        @_PROPERTY
        @given(spec=_temporal_filter())
        def check(spec: dict[str, Any]) -> None:
            expr = parse_filter(spec)
            if not ops_used(expr) <= supported:
                return
            expected = {r["id"] for r in data if matches(expr, r["metadata"])}
            hits = vector_store.search(name, q, k=len(data) + 4, filter=spec)
            assert set(_ids(hits)) == expected, spec

        check()

    def _load_filter_docs(
        self, vector_store: Any, new_collection: Any
    ) -> tuple[str, list[dict[str, Any]]]:
        name = new_collection("flt")
        data = _filter_data()
        vecs = _vectors(len(data), seed=12)
        vector_store.upsert(
            name, [{**r, "vector": v.tolist()} for r, v in zip(data, vecs, strict=True)]
        )
        return name, data

    def _expected_filter_ids(self, data: list[dict[str, Any]], spec: Mapping[str, Any]) -> set[str]:
        expr = parse_filter(spec)
        return {r["id"] for r in data if matches(expr, r["metadata"])}

    def test_filters_match_the_reference(self, vector_store: Any, new_collection: Any) -> None:
        name, data = self._load_filter_docs(vector_store, new_collection)
        supported = vector_store.capabilities.filter_ops
        q = [0.1] * DIM

        @_PROPERTY
        @given(spec=_FILTERS)
        def check(spec: dict[str, Any]) -> None:
            if not ops_used(parse_filter(spec)) <= set(supported):
                with pytest.raises(Unsupported):
                    vector_store.search(name, q, k=len(data) + 4, filter=spec)
                return
            expected = self._expected_filter_ids(data, spec)
            hits = vector_store.search(name, q, k=len(data) + 4, filter=spec)
            assert set(_ids(hits)) == expected, spec
            assert len(hits) == len(expected)
            assert vector_store.count(name, filter=spec) == len(expected), spec

        check()

    def test_null_and_missing_semantics(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "$ne", "$in", "$nin", "$exists", "$not", "$gt")
        name = new_collection()
        v = _vectors(4)
        vector_store.upsert(
            name,
            [
                {"id": "present", "vector": v[0].tolist(), "metadata": {"f": 1}},
                {"id": "other", "vector": v[1].tolist(), "metadata": {"f": 2}},
                {"id": "null", "vector": v[2].tolist(), "metadata": {"f": None}},
                {"id": "missing", "vector": v[3].tolist(), "metadata": {}},
            ],
        )
        cases: list[tuple[dict[str, Any], set[str]]] = [
            ({"f": None}, {"null", "missing"}),
            ({"f": {"$ne": None}}, {"present", "other"}),
            ({"f": 1}, {"present"}),
            ({"f": {"$ne": 1}}, {"other", "null", "missing"}),
            ({"f": {"$gt": 0}}, {"present", "other"}),
            ({"$not": {"f": {"$gt": 1}}}, {"present", "null", "missing"}),
            ({"f": {"$in": [1, None]}}, {"present", "null", "missing"}),
            ({"f": {"$nin": [1]}}, {"other", "null", "missing"}),
            ({"f": {"$nin": [1, None]}}, {"other"}),
            ({"f": {"$exists": False}}, {"null", "missing"}),
            ({"f": {"$exists": True}}, {"present", "other"}),
            ({"nothere": 1}, set()),
            ({"nothere": {"$ne": 1}}, {"present", "other", "null", "missing"}),
        ]
        for spec, expected in cases:
            got = set(_ids(vector_store.search(name, [0.1] * DIM, k=10, filter=spec)))
            assert got == expected, spec
            assert vector_store.count(name, filter=spec) == len(expected), spec

    def test_type_mismatch_is_a_filter_error(self, vector_store: Any, new_collection: Any) -> None:
        name, _ = self._load_filter_docs(vector_store, new_collection)
        for spec in (
            {"n": {"$gt": "2"}},
            {"n": "x"},
            {"s": {"$lt": 3}},
            {"b": 1},
            {"s": {"$in": [1, 2]}},
        ):
            with pytest.raises(FilterError):
                vector_store.search(name, [0.1] * DIM, filter=spec)
            with pytest.raises(FilterError):
                vector_store.count(name, filter=spec)

    def test_malformed_filter_is_a_filter_error(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name, _ = self._load_filter_docs(vector_store, new_collection)
        malformed: list[Any] = [
            {"n": {"$regex": "a"}},
            {"$or": []},
            {"$and": {"n": 1}},
            {"n": {"$in": 3}},
            {"n": {"$exists": "yes"}},
            {"bad field": 1},
            {"n": {"$gt": None}},
            {"n": {"a": 1}},
            ["n", 1],
        ]
        for spec in malformed:
            with pytest.raises(FilterError):
                vector_store.search(name, [0.1] * DIM, filter=spec)

    def test_undeclared_operator_is_unsupported(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        missing = ALL_OPS - vector_store.capabilities.filter_ops
        if not missing:
            pytest.skip("backend declares every filter operator")
        name, _ = self._load_filter_docs(vector_store, new_collection)
        samples: dict[Op, dict[str, Any]] = {
            Op.EQ: {"n": {"$eq": 1}},
            Op.NE: {"n": {"$ne": 1}},
            Op.GT: {"n": {"$gt": 1}},
            Op.GTE: {"n": {"$gte": 1}},
            Op.LT: {"n": {"$lt": 1}},
            Op.LTE: {"n": {"$lte": 1}},
            Op.IN: {"n": {"$in": [1]}},
            Op.NIN: {"n": {"$nin": [1]}},
            Op.EXISTS: {"n": {"$exists": True}},
            Op.AND: {"$and": [{"n": 1}, {"s": "a"}]},
            Op.OR: {"$or": [{"n": 1}, {"s": "a"}]},
            Op.NOT: {"$not": {"n": 1}},
        }
        for op in missing:
            with pytest.raises(Unsupported):
                vector_store.search(name, [0.1] * DIM, filter=samples[op])

    def test_filtered_search_returns_k_hits(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        rng = _rng(21)
        q = _unit(rng.normal(size=DIM))
        near = q + 0.05 * rng.normal(size=(90, DIM))
        far = -q + 0.05 * rng.normal(size=(10, DIM))
        recs = [
            {"id": f"n{i}", "vector": v.tolist(), "metadata": {"g": 0}} for i, v in enumerate(near)
        ]
        recs += [
            {"id": f"f{i}", "vector": v.tolist(), "metadata": {"g": 1}} for i, v in enumerate(far)
        ]
        vector_store.upsert(name, recs)
        for k in (3, 10):
            hits = vector_store.search(name, q, k=k, filter={"g": 1})
            assert len(hits) == k
            assert all(h.id.startswith("f") and h.metadata["g"] == 1 for h in hits)
        assert len(vector_store.search(name, q, k=25, filter={"g": 1})) == 10


# ----------------------------------------------------------------------------------- keyword
_FILLER = [
    "river",
    "stone",
    "market",
    "garden",
    "window",
    "paper",
    "cloud",
    "engine",
    "orange",
    "silver",
]


def _text_docs(n: int, seed: int = 0) -> list[str]:
    rng = _rng(seed)
    return [" ".join(rng.choice(_FILLER, size=6)) for _ in range(n)]


class VectorKeywordTests(_VectorBase):
    """BM25 keyword search over ``text``."""

    def _load_keyword_docs(self, vector_store: Any, new_collection: Any) -> str:
        name: str = new_collection("kw")
        texts = _text_docs(30)
        texts[17] = texts[17] + " zygomorphic"
        vecs = _vectors(30, seed=31)
        vector_store.upsert(
            name,
            [
                {"id": f"r{i}", "vector": v.tolist(), "text": t, "metadata": {"g": i % 2}}
                for i, (v, t) in enumerate(zip(vecs, texts, strict=True))
            ],
        )
        return name

    def test_rare_word_ranks_first(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "keyword")
        name = self._load_keyword_docs(vector_store, new_collection)
        hits = vector_store.search(name, text="zygomorphic", k=5)
        assert hits
        assert hits[0].id == "r17"
        assert all(h.score < hits[0].score for h in hits[1:])
        assert "zygomorphic" in (hits[0].text or "")

    def test_keyword_scores_follow_the_contract(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        self.require(vector_store, "keyword")
        name = self._load_keyword_docs(vector_store, new_collection)
        hits = vector_store.search(name, text="garden engine", k=10, mode="keyword")
        assert hits
        _assert_sorted_scores(hits)
        for h in hits:
            assert h.keyword_score is not None
            assert h.keyword_score >= 0
            assert h.score == pytest.approx(h.keyword_score / (1.0 + h.keyword_score), abs=1e-6)

    def test_keyword_sees_upserts_and_deletes(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "keyword")
        name = self._load_keyword_docs(vector_store, new_collection)
        vector_store.upsert(name, [{"id": "r17", "vector": [0.2] * DIM, "text": "axolotl"}])
        assert "r17" not in _ids(vector_store.search(name, text="zygomorphic", k=5))
        assert _ids(vector_store.search(name, text="axolotl", k=5))[:1] == ["r17"]
        vector_store.upsert(name, [{"id": "new", "vector": [0.3] * DIM, "text": "quetzal"}])
        assert _ids(vector_store.search(name, text="quetzal", k=5))[:1] == ["new"]
        vector_store.delete(name, ["new"])
        assert "new" not in _ids(vector_store.search(name, text="quetzal", k=5))

    def test_keyword_respects_filter(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "keyword")
        name = self._load_keyword_docs(vector_store, new_collection)
        assert vector_store.search(name, text="zygomorphic", filter={"g": 0}) == []
        hits = vector_store.search(name, text="river", k=30, filter={"g": 1})
        assert hits
        assert all(h.metadata["g"] == 1 for h in hits)

    def test_keyword_needs_text(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "keyword")
        name = self._load_keyword_docs(vector_store, new_collection)
        with pytest.raises(InvalidInput):
            vector_store.search(name, [0.1] * DIM, mode="keyword")
        with pytest.raises(InvalidInput):
            vector_store.search(name, text="", mode="keyword")

    def test_undeclared_keyword_is_unsupported(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        if vector_store.capabilities.supports("keyword"):
            pytest.skip("backend declares keyword search")
        name = new_collection()
        vector_store.upsert(name, [{"id": "a", "vector": [0.1] * DIM, "text": "hello"}])
        with pytest.raises(Unsupported):
            vector_store.search(name, text="hello")


# ------------------------------------------------------------------------------------ hybrid
class VectorHybridTests(_VectorBase):
    """Hybrid search: both signals, alpha, and mode inference."""

    def _load_hybrid_docs(self, vector_store: Any, new_collection: Any) -> tuple[str, Vec]:
        name = new_collection("hy")
        rng = _rng(41)
        q = _unit(rng.normal(size=DIM))
        vecs = rng.normal(size=(40, DIM))
        texts = _text_docs(40, seed=42)
        # keyword docs, each with "quokka" and a different length (distinct BM25): r5 (the
        # keyword winner) orthogonal to q (a middling dense rank), the others far from q
        for j, i in enumerate((5, 12, 26, 33)):
            vecs[i] = -q * 3 + 0.1 * rng.normal(size=DIM)
            texts[i] = "quokka " + " ".join(_FILLER[: 2 * j + 1])
        vecs[5] = vecs[0] - (vecs[0] @ q) * q
        vecs[8] = q * 2 + 0.01 * rng.normal(size=DIM)  # the dense winner, no keyword
        vector_store.upsert(
            name,
            [
                {"id": f"r{i}", "vector": v.tolist(), "text": t}
                for i, (v, t) in enumerate(zip(vecs, texts, strict=True))
            ],
        )
        return name, q

    def test_keyword_only_doc_surfaces(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "hybrid")
        name, q = self._load_hybrid_docs(vector_store, new_collection)
        dense = _ids(vector_store.search(name, q, k=5))
        assert dense[0] == "r8"
        assert "r5" not in dense
        hybrid = vector_store.search(name, q, text="quokka", k=5, mode="hybrid")
        got = _ids(hybrid)
        assert "r8" in got  # the dense signal matters
        assert "r5" in got  # ... and so does the keyword signal
        _assert_sorted_scores(hybrid)

    def test_alpha_extremes(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "hybrid")
        name, q = self._load_hybrid_docs(vector_store, new_collection)
        dense = _ids(vector_store.search(name, q, k=5, mode="dense"))
        keyword = _ids(vector_store.search(name, text="quokka", k=5, mode="keyword"))
        assert keyword[0] == "r5"
        assert len(keyword) == 4
        only_dense = _ids(vector_store.search(name, q, text="quokka", k=5, alpha=1.0))
        only_keyword = _ids(vector_store.search(name, q, text="quokka", k=5, alpha=0.0))
        assert only_dense == dense
        assert only_keyword == keyword

    def test_alpha_weights_the_dense_side(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "hybrid")
        name, q = self._load_hybrid_docs(vector_store, new_collection)
        # r8 is the dense winner without the keyword; r5 the keyword winner far from q
        mostly_dense = _ids(vector_store.search(name, q, text="quokka", k=10, alpha=0.9))
        mostly_keyword = _ids(vector_store.search(name, q, text="quokka", k=10, alpha=0.1))
        assert mostly_dense[0] == "r8"
        assert mostly_keyword[0] == "r5"
        assert "r8" in mostly_keyword

    def test_mode_inference(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "hybrid")
        name, q = self._load_hybrid_docs(vector_store, new_collection)

        def same(a: list[Hit], b: list[Hit]) -> None:
            assert _ids(a) == _ids(b)
            assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-6)

        same(vector_store.search(name, q, k=4), vector_store.search(name, q, k=4, mode="dense"))
        same(
            vector_store.search(name, text="quokka", k=4),
            vector_store.search(name, text="quokka", k=4, mode="keyword"),
        )
        same(
            vector_store.search(name, q, text="quokka", k=4),
            vector_store.search(name, q, text="quokka", k=4, mode="hybrid"),
        )
        assert all(h.distance is not None for h in vector_store.search(name, q, k=4))
        assert all(
            h.keyword_score is not None for h in vector_store.search(name, text="quokka", k=4)
        )

    def test_invalid_combinations(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "hybrid")
        name, q = self._load_hybrid_docs(vector_store, new_collection)
        with pytest.raises(InvalidInput):
            vector_store.search(name, q, mode="hybrid")
        with pytest.raises(InvalidInput):
            vector_store.search(name, text="quokka", mode="hybrid")
        with pytest.raises(InvalidInput):
            vector_store.search(name, mode="hybrid")
        for alpha in (-0.1, 1.5, math.nan):
            with pytest.raises(InvalidInput):
                vector_store.search(name, q, text="quokka", alpha=alpha)
        with pytest.raises(InvalidInput):
            vector_store.search(name, q, mode="sparse")

    def test_hybrid_respects_filter(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "hybrid")
        name = new_collection()
        vecs = _vectors(20, seed=43)
        vector_store.upsert(
            name,
            [
                {
                    "id": f"r{i}",
                    "vector": v.tolist(),
                    "text": "quokka" if i % 4 == 0 else "cloud",
                    "metadata": {"g": i % 2},
                }
                for i, v in enumerate(vecs)
            ],
        )
        hits = vector_store.search(name, vecs[1], text="quokka", k=20, filter={"g": 1})
        assert hits
        assert all(h.metadata["g"] == 1 for h in hits)

    def test_undeclared_hybrid_is_unsupported(self, vector_store: Any, new_collection: Any) -> None:
        if vector_store.capabilities.supports("hybrid"):
            pytest.skip("backend declares hybrid search")
        name = new_collection()
        vector_store.upsert(name, [{"id": "a", "vector": [0.1] * DIM, "text": "hello"}])
        with pytest.raises(Unsupported):
            vector_store.search(name, [0.1] * DIM, text="hello", mode="hybrid")


# ----------------------------------------------------------------------------------- tenants
_TENANTS = ["acme", "ACME", "o'reilly", "back\\slash", "t-1"]


class VectorTenantTests(_VectorBase):
    """Multi-tenant collections: tenant required everywhere, never crossed."""

    def test_tenant_required_everywhere(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "tenants")
        name = new_collection(multi_tenant=True)
        assert vector_store.describe(name).multi_tenant is True
        v = [0.1] * DIM
        with pytest.raises(InvalidInput):
            vector_store.upsert(name, [{"id": "a", "vector": v}])
        with pytest.raises(InvalidInput):
            vector_store.upsert(
                name, [{"id": "b", "vector": v, "tenant": "x"}, {"id": "a", "vector": v}]
            )
        assert vector_store.count(name, tenant="x") == 0
        vector_store.upsert(name, [{"id": "a", "vector": v, "tenant": "x"}])
        calls: list[Callable[[], Any]] = [
            lambda: vector_store.get(name, ["a"]),
            lambda: vector_store.count(name),
            lambda: vector_store.delete(name, ["a"]),
            lambda: vector_store.search(name, v),
        ]
        for call in calls:
            with pytest.raises(InvalidInput):
                call()
        assert vector_store.count(name, tenant="x") == 1

    def test_tenant_forbidden_on_single_tenant(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name = new_collection()
        v = [0.1] * DIM
        with pytest.raises(InvalidInput):
            vector_store.upsert(name, [{"id": "a", "vector": v, "tenant": "x"}])
        vector_store.upsert(name, [{"id": "a", "vector": v}])
        calls: list[Callable[[], Any]] = [
            lambda: vector_store.get(name, ["a"], tenant="x"),
            lambda: vector_store.count(name, tenant="x"),
            lambda: vector_store.delete(name, ["a"], tenant="x"),
            lambda: vector_store.search(name, v, tenant="x"),
        ]
        for call in calls:
            with pytest.raises(InvalidInput):
                call()
        assert vector_store.count(name) == 1

    def test_same_id_in_two_tenants(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "tenants")
        name = new_collection(multi_tenant=True)
        vecs = _vectors(2)
        vector_store.upsert(
            name,
            [
                {"id": "a", "vector": vecs[0].tolist(), "tenant": "t1", "text": "one"},
                {"id": "a", "vector": vecs[1].tolist(), "tenant": "t2", "text": "two"},
            ],
        )
        assert vector_store.describe(name).count == 2
        assert vector_store.get(name, ["a"], tenant="t1")[0].text == "one"
        assert vector_store.get(name, ["a"], tenant="t2")[0].text == "two"
        assert vector_store.get(name, ["a"], tenant="t1")[0].tenant == "t1"
        vector_store.delete(name, ["a"], tenant="t1")
        assert vector_store.get(name, ["a"], tenant="t1") == []
        assert _ids(vector_store.get(name, ["a"], tenant="t2")) == ["a"]

    def test_tenants_never_cross(self, vector_store: Any, uid: Callable[[str], str]) -> None:
        self.require(vector_store, "tenants")
        keyword = vector_store.capabilities.supports("keyword")
        counter = iter(range(10_000))
        rows = st.lists(
            st.tuples(
                st.sampled_from(_TENANTS[:3]),
                st.sampled_from(["a", "b", "c", "x'y", "d"]),
                st.integers(0, 2),
            ),
            min_size=1,
            max_size=12,
        )

        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(
            rows=rows,
            victim=st.sampled_from(_TENANTS[:3]),
            doomed=st.sets(st.sampled_from(["a", "b", "c", "x'y", "d"]), max_size=3),
        )
        def check(rows: list[tuple[str, str, int]], victim: str, doomed: set[str]) -> None:
            name = uid(f"vten{next(counter)}")
            vector_store.create_collection(name, DIM, "cosine", multi_tenant=True)
            try:
                expected: dict[str, dict[str, int]] = {}
                for tenant, rid, g in rows:
                    expected.setdefault(tenant, {})[rid] = g
                vecs = _vectors(len(rows), seed=len(rows))
                vector_store.upsert(
                    name,
                    [
                        {
                            "id": rid,
                            "vector": v.tolist(),
                            "tenant": t,
                            "text": f"common {rid}",
                            "metadata": {"g": g},
                        }
                        for (t, rid, g), v in zip(rows, vecs, strict=True)
                    ],
                )
                all_ids = ["a", "b", "c", "x'y", "d"]
                for t in _TENANTS:
                    own = expected.get(t, {})
                    got = vector_store.get(name, all_ids, tenant=t, include_vectors=False)
                    assert {(r.id, r.tenant, r.metadata["g"]) for r in got} == {
                        (i, t, g) for i, g in own.items()
                    }
                    hits = vector_store.search(name, [0.2] * DIM, k=50, tenant=t)
                    assert sorted(_ids(hits)) == sorted(own)
                    assert all(h.tenant == t for h in hits)
                    assert vector_store.count(name, tenant=t) == len(own)
                    g1 = {i for i, g in own.items() if g == 1}
                    assert vector_store.count(name, tenant=t, filter={"g": 1}) == len(g1)
                    if keyword:
                        kw = vector_store.search(name, text="common", k=50, tenant=t)
                        assert sorted(_ids(kw)) == sorted(own)
                vector_store.delete(name, sorted(doomed), tenant=victim)
                for t in _TENANTS:
                    left = set(expected.get(t, {}))
                    if t == victim:
                        left -= doomed
                    assert vector_store.count(name, tenant=t) == len(left)
                    got = vector_store.get(name, all_ids, tenant=t, include_vectors=False)
                    assert set(_ids(got)) == left
            finally:
                vector_store.drop_collection(name)

        check()

    def test_undeclared_tenants_are_unsupported(
        self, vector_store: Any, uid: Callable[[str], str]
    ) -> None:
        if vector_store.capabilities.supports("tenants"):
            pytest.skip("backend declares tenants")
        with pytest.raises(Unsupported):
            vector_store.create_collection(uid("vmt"), DIM, multi_tenant=True)


# -------------------------------------------------------------------------------------- scans
def _scan_all(vector_store: Any, name: str, **kwargs: Any) -> list[VectorRecord]:
    out: list[VectorRecord] = []
    for batch in vector_store.scan(name, **kwargs):
        assert isinstance(batch, list)
        out.extend(batch)
    return out


class VectorScanTests(_VectorBase):
    """scan: every record once, in bounded batches."""

    def test_scan_returns_every_record_once(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(57, seed=11)
        records = [
            {"id": f"s{i}", "vector": v, "text": f"doc {i}", "metadata": {"n": i}}
            for i, v in enumerate(vecs)
        ]
        vector_store.upsert(name, records)
        vector_store.delete(name, ["s3", "s4"])
        sizes: list[int] = []
        seen: list[VectorRecord] = []
        for batch in vector_store.scan(name, batch_size=10, include_vectors=True):
            sizes.append(len(batch))
            seen.extend(batch)
        assert all(0 < n <= 10 for n in sizes), sizes
        ids = [r.id for r in seen]
        assert len(ids) == len(set(ids)) == 55
        assert set(ids) == {f"s{i}" for i in range(57)} - {"s3", "s4"}
        by_id = {r.id: r for r in seen}
        assert by_id["s7"].metadata == {"n": 7}
        assert by_id["s7"].text == "doc 7"
        assert np.allclose(np.asarray(by_id["s7"].vector, dtype=np.float64), vecs[7], atol=1e-5)

    @pytest.mark.parametrize("batch_size", [2**32, 2**80])
    def test_a_huge_batch_size_is_one_batch(
        self, vector_store: Any, new_collection: Any, batch_size: int
    ) -> None:
        """Any positive batch size is valid: a huge one reads everything in one batch (or in
        the backend's own largest batches), never a driver's integer overflow."""
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(5, seed=12)))
        got = _scan_all(vector_store, name, batch_size=batch_size)
        assert sorted(r.id for r in got) == [f"r{i}" for i in range(5)]
        if hasattr(vector_store, "scan_metadata"):
            rows = sum(
                b.num_rows for b in vector_store.scan_metadata(name, [], batch_size=batch_size)
            )
            assert rows == 5

    def test_scan_without_vectors(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(5, seed=12)))
        got = _scan_all(vector_store, name)
        assert sorted(r.id for r in got) == [f"r{i}" for i in range(5)]
        assert all(r.vector is None for r in got)

    def test_scan_empty_and_unknown(
        self, vector_store: Any, new_collection: Any, uid: Callable[[str], str]
    ) -> None:
        name = new_collection()
        assert _scan_all(vector_store, name) == []
        with pytest.raises(NotFound):
            _scan_all(vector_store, uid("missing"))
        with pytest.raises(InvalidInput):
            _scan_all(vector_store, name, batch_size=0)

    def test_scan_is_per_tenant(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "tenants")
        name = new_collection("mt", multi_tenant=True)
        vecs = _vectors(6, seed=13)
        vector_store.upsert(
            name,
            [
                {"id": f"x{i}", "vector": v, "tenant": "acme" if i % 2 else "umbrella"}
                for i, v in enumerate(vecs)
            ],
        )
        acme = _scan_all(vector_store, name, tenant="acme")
        assert sorted(r.id for r in acme) == ["x1", "x3", "x5"]
        assert {r.tenant for r in acme} == {"acme"}
        with pytest.raises(InvalidInput):
            _scan_all(vector_store, name)


def _metadata_rows(vector_store: Any, name: str, fields: Sequence[str], **kwargs: Any) -> Any:
    """(batches, {id: metadata dict}) of a ``scan_metadata`` pass."""
    batches = list(vector_store.scan_metadata(name, fields, **kwargs))
    rows: dict[str, dict[str, Any]] = {}
    for b in batches:
        assert isinstance(b, pa.RecordBatch)
        assert b.schema.names == ["id", "metadata"]
        for row in b.to_pylist():
            assert row["id"] not in rows
            rows[row["id"]] = row["metadata"]
    return batches, rows


class VectorScanMetadataTests(_VectorBase):
    """scan_metadata: ids and named scalar fields of every record, column-wise."""

    def test_scan_metadata_reads_ids_and_fields(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name = new_collection()
        vecs = _vectors(23, seed=14)
        when = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
        records = []
        for i, v in enumerate(vecs):
            meta: dict[str, Any] = {"n": i, "x": i / 4, "s": f"s{i}", "b": i % 2 == 0}
            if i % 3:
                meta.update(ts=when + dt.timedelta(hours=i), d=dt.date(2024, 1, 1 + i))
            records.append({"id": f"m{i}", "vector": v, "text": f"t{i}", "metadata": meta})
        vector_store.upsert(name, records)
        vector_store.delete(name, ["m5"])
        fields = ["s", "n", "x", "b", "ts", "d", "n"]
        batches, rows = _metadata_rows(vector_store, name, fields, batch_size=4)
        assert all(0 < b.num_rows <= 4 for b in batches)
        assert set(rows) == {f"m{i}" for i in range(23)} - {"m5"}
        struct = batches[0].schema.field("metadata").type
        assert [struct.field(i).name for i in range(struct.num_fields)] == [
            "s",
            "n",
            "x",
            "b",
            "ts",
            "d",
        ]
        types = {struct.field(i).name: struct.field(i).type for i in range(struct.num_fields)}
        assert types["s"] == pa.string()
        assert types["n"] == pa.int64()
        assert types["x"] == pa.float64()
        assert types["b"] == pa.bool_()
        assert types["ts"] == pa.timestamp("us", tz="UTC")
        assert types["d"] == pa.date32()
        assert batches[0].schema.field("id").type == pa.string()
        for i in (0, 7, 22):
            got = rows[f"m{i}"]
            assert (got["s"], got["n"], got["x"], got["b"]) == (f"s{i}", i, i / 4, i % 2 == 0)
            if i % 3:
                assert _utc(got["ts"]) == when + dt.timedelta(hours=i)
                assert got["d"] == dt.date(2024, 1, 1 + i)
            else:
                assert got["ts"] is None
                assert got["d"] is None

    def test_scan_metadata_agrees_with_scan(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(30, seed=15)
        vector_store.upsert(
            name,
            [
                {"id": f"a{i}", "vector": v, "metadata": {"k": f"g{i % 4}"} if i % 5 else {}}
                for i, v in enumerate(vecs)
            ],
        )
        expected = {r.id: r.metadata.get("k") for r in _scan_all(vector_store, name)}
        _, rows = _metadata_rows(vector_store, name, ["k"])
        assert {i: m["k"] for i, m in rows.items()} == expected

    def test_scan_metadata_edge_cases(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        assert list(vector_store.scan_metadata(name, ["k"])) == []
        vector_store.upsert(name, _records(_vectors(3, seed=16), metadata={"k": 1}))
        batches, rows = _metadata_rows(vector_store, name, [])
        assert rows == {"r0": {}, "r1": {}, "r2": {}}
        batches, rows = _metadata_rows(vector_store, name, ["nope", "k"])
        assert rows["r1"] == {"nope": None, "k": 1}
        assert batches[0].schema.field("metadata").type.field(0).type == pa.null()

    def test_scan_metadata_bad_calls_raise_at_the_call(
        self, vector_store: Any, new_collection: Any, uid: Callable[[str], str]
    ) -> None:
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(2, seed=17), metadata={"tags": ["a", "b"]}))
        with pytest.raises(NotFound):
            vector_store.scan_metadata(uid("missing"), ["k"])
        for bad in ("k", [1], [""], None):
            with pytest.raises(InvalidInput):
                vector_store.scan_metadata(name, bad)
        with pytest.raises(InvalidInput):
            vector_store.scan_metadata(name, ["k"], batch_size=0)
        with pytest.raises(InvalidInput):  # lists are not columnar
            vector_store.scan_metadata(name, ["tags"])
        with pytest.raises(InvalidInput):
            vector_store.scan_metadata(name, ["k"], tenant="acme")

    def test_scan_metadata_is_per_tenant(self, vector_store: Any, new_collection: Any) -> None:
        self.require(vector_store, "tenants")
        name = new_collection("mt", multi_tenant=True)
        vecs = _vectors(6, seed=18)
        vector_store.upsert(
            name,
            [
                {
                    "id": "same" if i < 2 else f"x{i}",
                    "vector": v,
                    "tenant": "acme" if i % 2 else "umbrella",
                    "metadata": {"t": "acme" if i % 2 else "umbrella"},
                }
                for i, v in enumerate(vecs)
            ],
        )
        _, rows = _metadata_rows(vector_store, name, ["t"], tenant="acme")
        assert rows == {"same": {"t": "acme"}, "x3": {"t": "acme"}, "x5": {"t": "acme"}}
        with pytest.raises(InvalidInput):
            vector_store.scan_metadata(name, ["t"])


# ------------------------------------------------------------------------------------ aliases
class VectorAliasTests(_VectorBase):
    """set_alias / drop_alias / aliases, and reading and writing through an alias."""

    def test_alias_reads_and_writes_the_target(
        self, vector_store: Any, new_collection: Any, uid: Callable[[str], str]
    ) -> None:
        self.require(vector_store, "aliases")
        blue = new_collection("blue")
        vecs = _vectors(4, seed=21)
        vector_store.upsert(blue, _records(vecs[:3]))
        alias = uid("live")
        vector_store.set_alias(alias, blue)
        assert vector_store.aliases()[alias] == blue
        assert alias not in vector_store.collections()
        assert vector_store.describe(alias).name == blue
        assert vector_store.count(alias) == 3
        hits = vector_store.search(alias, vecs[0], k=1)
        assert _ids(hits) == ["r0"]
        vector_store.upsert(alias, [{"id": "via-alias", "vector": vecs[3]}])
        assert _ids(vector_store.get(blue, ["via-alias"])) == ["via-alias"]
        assert sorted(r.id for r in _scan_all(vector_store, alias)) == [
            "r0",
            "r1",
            "r2",
            "via-alias",
        ]
        assert vector_store.stats(alias).count == 4
        vector_store.delete(alias, ["via-alias"])
        assert vector_store.count(blue) == 3

    def test_repoint_switches_readers(
        self, vector_store: Any, new_collection: Any, uid: Callable[[str], str]
    ) -> None:
        self.require(vector_store, "aliases")
        blue, green = new_collection("blue"), new_collection("green")
        vecs = _vectors(2, seed=22)
        vector_store.upsert(blue, [{"id": "old", "vector": vecs[0]}])
        vector_store.upsert(green, [{"id": "new", "vector": vecs[1]}])
        alias = uid("live")
        vector_store.set_alias(alias, blue)
        assert _ids(vector_store.search(alias, vecs[1], k=5)) == ["old"]
        vector_store.set_alias(alias, green)
        assert vector_store.aliases()[alias] == green
        assert _ids(vector_store.search(alias, vecs[1], k=5)) == ["new"]
        vector_store.set_alias(alias, blue)  # roll back
        assert _ids(vector_store.search(alias, vecs[1], k=5)) == ["old"]
        vector_store.drop_alias(alias)
        assert alias not in vector_store.aliases()
        vector_store.drop_alias(alias)  # absent: no error
        assert vector_store.count(blue) == 1
        with pytest.raises(NotFound):
            vector_store.count(alias)

    def test_alias_namespace_and_target_rules(
        self, vector_store: Any, new_collection: Any, uid: Callable[[str], str]
    ) -> None:
        self.require(vector_store, "aliases")
        blue, green = new_collection("blue"), new_collection("green")
        alias = uid("live")
        with pytest.raises(NotFound):
            vector_store.set_alias(alias, uid("missing"))
        assert alias not in vector_store.aliases()
        with pytest.raises(Conflict):
            vector_store.set_alias(green, blue)  # a collection's name
        vector_store.set_alias(alias, blue)
        with pytest.raises(NotFound):
            vector_store.set_alias(uid("second"), alias)  # an alias is not a collection
        with pytest.raises(Conflict):
            vector_store.create_collection(alias, DIM)
        with pytest.raises(InvalidInput):
            vector_store.set_alias("bad name!", blue)
        assert vector_store.aliases()[alias] == blue

    def test_aliased_collection_cannot_be_dropped(
        self, vector_store: Any, new_collection: Any, uid: Callable[[str], str]
    ) -> None:
        self.require(vector_store, "aliases")
        blue = new_collection("blue")
        vector_store.upsert(blue, _records(_vectors(2, seed=23)))
        alias = uid("live")
        vector_store.set_alias(alias, blue)
        with pytest.raises(Conflict):
            vector_store.drop_collection(blue)
        with pytest.raises(Conflict):
            vector_store.drop_collection(alias)
        assert vector_store.count(alias) == 2
        assert vector_store.aliases()[alias] == blue
        vector_store.drop_alias(alias)
        vector_store.drop_collection(blue)
        assert blue not in vector_store.collections()

    def test_undeclared_aliases_are_unsupported(
        self, vector_store: Any, new_collection: Any, uid: Callable[[str], str]
    ) -> None:
        if vector_store.capabilities.aliases:
            pytest.skip("backend declares aliases")
        blue = new_collection("blue")
        with pytest.raises(Unsupported):
            vector_store.set_alias(uid("live"), blue)


# ------------------------------------------------------------------------------------- health
class VectorHealthTests(_VectorBase):
    """stats / optimize."""

    def test_stats_reports_count_and_tombstones(
        self, vector_store: Any, new_collection: Any
    ) -> None:
        name = new_collection()
        vector_store.upsert(name, _records(_vectors(20, seed=31)))
        vector_store.delete(name, [f"r{i}" for i in range(5)])
        stats = vector_store.stats(name)
        assert isinstance(stats, CollectionStats)
        assert stats.name == name
        assert stats.count == 15
        assert stats.deleted is None or stats.deleted >= 0
        if stats.deleted is not None:
            assert stats.tombstone_ratio is not None
            assert 0.0 <= stats.tombstone_ratio <= 1.0
        assert stats.index_type

    def test_optimize_keeps_every_answer(self, vector_store: Any, new_collection: Any) -> None:
        name = new_collection()
        vecs = _vectors(40, seed=32)
        vector_store.upsert(name, _records(vecs, text="alpha beta"))
        vector_store.delete(name, [f"r{i}" for i in range(0, 40, 3)])
        before = _ids(vector_store.search(name, vecs[1], k=5))
        stats = vector_store.optimize(name)
        assert isinstance(stats, CollectionStats)
        assert stats.count == vector_store.count(name) == 26
        if stats.deleted is not None:
            assert stats.deleted == 0, "optimize compacts deleted rows"
        assert _ids(vector_store.search(name, vecs[1], k=5)) == before
        assert _ids(vector_store.get(name, ["r0", "r1"])) == ["r1"]

    def test_stats_of_unknown_collection(
        self, vector_store: Any, uid: Callable[[str], str]
    ) -> None:
        with pytest.raises(NotFound):
            vector_store.stats(uid("missing"))
        with pytest.raises(NotFound):
            vector_store.optimize(uid("missing"))


class VectorStoreTests(
    VectorCollectionTests,
    VectorWriteTests,
    VectorBadInputTests,
    VectorDenseSearchTests,
    VectorFilterTests,
    VectorKeywordTests,
    VectorHybridTests,
    VectorTenantTests,
    VectorScanTests,
    VectorScanMetadataTests,
    VectorAliasTests,
    VectorHealthTests,
    VectorLifecycleTests,
):
    """The whole :class:`~strataml.protocols.VectorStore` contract (fixture: ``vector_store``)."""


# ------------------------------------------------------------------------------------- async
class AsyncVectorStoreTests(_VectorBase):
    """The :class:`~strataml.protocols.AsyncVectorStore` contract, driven with ``asyncio.run``.

    Collections are created through the synchronous ``vector_store`` fixture.
    """

    @pytest.fixture
    def async_vector_store(self, vector_store: Any) -> Any:
        return AsyncVectorAdapter(vector_store)

    def test_async_conforms_to_protocol(self, async_vector_store: Any) -> None:
        assert isinstance(async_vector_store, AsyncVectorStore)
        assert async_vector_store.capabilities.dense is not None

    def test_async_roundtrip(self, async_vector_store: Any, new_collection: Any) -> None:
        name = new_collection("async")
        vecs = _vectors(6, seed=51)

        async def run() -> None:
            recs = [
                {"id": f"r{i}", "vector": v.tolist(), "text": f"doc {i}", "metadata": {"g": i % 2}}
                for i, v in enumerate(vecs)
            ]
            assert await async_vector_store.upsert(name, recs) == 6
            got = await async_vector_store.get(name, ["r4", "nope", "r1"], include_vectors=False)
            assert _ids(got) == ["r4", "r1"]
            assert await async_vector_store.count(name) == 6
            assert await async_vector_store.count(name, filter={"g": 1}) == 3
            hits = await async_vector_store.search(name, vecs[3], k=2)
            assert hits[0].id == "r3"
            _assert_sorted_scores(hits)
            filtered = await async_vector_store.search(name, vecs[3], k=6, filter={"g": 0})
            assert sorted(_ids(filtered)) == ["r0", "r2", "r4"]
            await async_vector_store.delete(name, ["r3", "nope"])
            assert await async_vector_store.count(name) == 5

        asyncio.run(run())

    def test_async_keyword_and_hybrid(self, async_vector_store: Any, new_collection: Any) -> None:
        self.require(async_vector_store, "hybrid")
        name = new_collection("akw")
        vecs = _vectors(10, seed=52)

        async def run() -> None:
            texts = _text_docs(10, seed=53)
            texts[6] += " zygomorphic"
            await async_vector_store.upsert(
                name,
                [
                    {"id": f"r{i}", "vector": v.tolist(), "text": t}
                    for i, (v, t) in enumerate(zip(vecs, texts, strict=True))
                ],
            )
            kw = await async_vector_store.search(name, text="zygomorphic", k=3)
            assert kw[0].id == "r6"
            hy = await async_vector_store.search(name, vecs[2], text="zygomorphic", k=3)
            assert {"r2", "r6"} <= set(_ids(hy))

        asyncio.run(run())

    def test_async_errors(self, async_vector_store: Any, new_collection: Any) -> None:
        name = new_collection("aerr")

        async def run() -> None:
            with pytest.raises(NotFound):
                await async_vector_store.count(name + "_missing")
            with pytest.raises(DimensionMismatch):
                await async_vector_store.upsert(name, [{"id": "a", "vector": [0.1] * (DIM + 1)}])
            with pytest.raises(InvalidInput):
                await async_vector_store.search(name, [0.1] * DIM, k=0)
            with pytest.raises(FilterError):
                await async_vector_store.count(name, filter={"$bad": 1})
            assert await async_vector_store.count(name) == 0

        asyncio.run(run())

    def test_async_concurrent_calls(self, async_vector_store: Any, new_collection: Any) -> None:
        name = new_collection("aconc")
        vecs = _vectors(20, seed=54)

        async def run() -> None:
            await async_vector_store.upsert(name, _records(vecs))
            results = await asyncio.gather(
                *(async_vector_store.search(name, vecs[i], k=1) for i in range(8)),
                async_vector_store.get(name, ["r0", "r19"]),
                async_vector_store.count(name),
            )
            for i in range(8):
                assert results[i][0].id == f"r{i}"
            assert _ids(results[8]) == ["r0", "r19"]
            assert results[9] == 20

        asyncio.run(run())
