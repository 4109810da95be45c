"""The embedded LanceDB vector store: the contract suite plus backend-specific behaviour."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strataml.errors import (
    ConfigError,
    Conflict,
    DimensionMismatch,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    Unavailable,
)
from strataml.filters import FieldType
from strataml.local import LANCEDB, LanceDBConfig, lancedb_vectors
from strataml.local.lancedb_vectors import LanceDBVectorStore
from strataml.models import Hit
from strataml.registry import StackContext
from strataml.testing.vectors import AsyncVectorStoreTests, VectorStoreTests
from strataml.vectors.batch import (
    check_k,
    normalize_ids,
    prepare_batch,
    query_vector,
    resolve_mode,
)
from strataml.vectors.fusion import fuse, fuse_hits


class TestLanceDBVectorStore(VectorStoreTests):
    @pytest.fixture
    def vector_store(self, tmp_path: Path) -> Iterator[LanceDBVectorStore]:
        store = LanceDBVectorStore(tmp_path / "vectors")
        yield store
        store.close()


class TestLanceDBAsyncVectorStore(AsyncVectorStoreTests):
    @pytest.fixture
    def vector_store(self, tmp_path: Path) -> Iterator[LanceDBVectorStore]:
        store = LanceDBVectorStore(tmp_path / "vectors")
        yield store
        store.close()


def _wait_for_index(store: LanceDBVectorStore, name: str, timeout: float = 60.0) -> None:
    """Poll until the background index build has committed (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = store.stats(name)
        if stats.index_type != "flat" and not stats.details["index_building"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no vector index on {name!r} after {timeout} s")


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, dim))
    x = centers[rng.integers(0, 12, n)] + 0.3 * rng.normal(size=(n, dim))
    out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "v"
    store = LanceDBVectorStore(path)
    store.create_collection("docs", 4, "l2", multi_tenant=True, metadata={"model": "e5"})
    at = dt.datetime(2024, 3, 1, 8, 30, tzinfo=dt.UTC)
    store.upsert(
        "docs",
        [
            {
                "id": "a",
                "vector": [1, 0, 0, 0],
                "text": "the quick fox",
                "tenant": "acme",
                "metadata": {
                    "n": 1,
                    "x": 0.5,
                    "at": at,
                    "day": dt.date(2024, 3, 1),
                    "tags": ["p", 2],
                    "ok": True,
                    "s": "v",
                },
            },
            {"id": "b", "vector": [0, 1, 0, 0], "tenant": "acme", "metadata": {"x": 2}},
        ],
    )
    before = store.describe("docs")
    store.close()
    store.close()  # idempotent
    with pytest.raises(Unavailable):
        store.count("docs", tenant="acme")

    again = LanceDBVectorStore(path)
    info = again.describe("docs")
    assert info == before
    assert (info.dim, info.metric, info.multi_tenant, info.count) == (4, "l2", True, 2)
    assert info.metadata == {"model": "e5"}
    assert {k: str(v) for k, v in info.fields.items()} == {
        "n": "int",
        "x": "float",
        "at": "timestamp",
        "day": "date",
        "tags": "list",
        "ok": "bool",
        "s": "string",
    }
    (rec,) = again.get("docs", ["a"], tenant="acme")
    assert rec.metadata == {
        "n": 1,
        "x": 0.5,
        "at": at,
        "day": dt.date(2024, 3, 1),
        "tags": ["p", 2],
        "ok": True,
        "s": "v",
    }
    assert again.search("docs", [1, 0, 0, 0], k=1, tenant="acme")[0].id == "a"
    assert again.search("docs", text="fox", tenant="acme")[0].id == "a"
    with pytest.raises(InvalidInput):  # field types survive: n is still an int field
        again.upsert(
            "docs",
            [{"id": "c", "vector": [0, 0, 1, 0], "tenant": "acme", "metadata": {"n": "one"}}],
        )
    assert again.count("docs", tenant="acme", filter={"at": {"$gte": "2024-03-01T08:00:00"}}) == 1
    again.close()


def test_index_built_at_threshold_keeps_results_correct(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v", index_threshold=256, nprobes=4, refine_factor=5)
    store.create_collection("big", 16, "cosine")
    x = _clustered(600, 16, seed=1)
    recs = [
        {
            "id": f"r{i}",
            "vector": v.tolist(),
            "text": f"doc {i}" + (" unicorn" if i == 77 else ""),
            "metadata": {"g": i % 10},
        }
        for i, v in enumerate(x)
    ]
    store.upsert("big", recs[:200])
    table = lancedb.connect(str(tmp_path / "v")).open_table("big")
    assert not any(i.columns == ["vector"] for i in table.list_indices())
    store.upsert("big", recs[200:])  # crosses the threshold: the index is built
    _wait_for_index(store, "big")
    table = lancedb.connect(str(tmp_path / "v")).open_table("big")
    assert any(i.columns == ["vector"] for i in table.list_indices())

    found = sum(store.search("big", x[i], k=1)[0].id == f"r{i}" for i in range(0, 600, 7))
    assert found >= 0.95 * len(range(0, 600, 7))
    hits = store.search("big", x[3], k=10, filter={"g": 4})
    assert len(hits) == 10 and all(h.metadata["g"] == 4 for h in hits)
    exact = np.argsort(-(x @ x[3]))[:10]
    got = {int(h.id[1:]) for h in store.search("big", x[3], k=10)}
    assert len(got & set(exact.tolist())) >= 9
    assert store.search("big", text="unicorn")[0].id == "r77"

    # rows written after the index are found at once; deleted ones disappear
    fresh = -x[5]
    store.upsert("big", [{"id": "fresh", "vector": fresh.tolist(), "metadata": {"g": 99}}])
    assert store.search("big", fresh, k=1)[0].id == "fresh"
    assert store.count("big", filter={"g": 99}) == 1
    store.delete("big", ["r5"])
    assert "r5" not in [h.id for h in store.search("big", x[5], k=5)]
    assert store.describe("big").count == 600
    store.close()


def test_upsert_widens_int_field_and_keeps_filters(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 2, "l2")
    store.upsert("c", [{"id": "a", "vector": [0, 1], "metadata": {"n": 3}}])
    assert store.count("c", filter={"n": {"$gt": 2.5}}) == 1
    assert store.count("c", filter={"n": {"$in": [1.5, 3]}}) == 1
    assert store.count("c", filter={"n": 3.0}) == 1
    store.upsert("c", [{"id": "b", "vector": [1, 0], "metadata": {"n": 3.5}}])
    assert str(store.describe("c").fields["n"]) == "float"
    assert store.count("c", filter={"n": {"$gte": 3}}) == 2
    assert [r.metadata["n"] for r in store.get("c", ["a", "b"])] == [3.0, 3.5]
    store.close()


def test_literals_are_escaped(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 2, "l2", multi_tenant=True)
    nasty = ["a'b", "x' OR '1'='1", "back\\slash", "ü\n%_", "`tick`"]
    store.upsert(
        "c",
        [
            {"id": s, "vector": [1, i], "tenant": s, "metadata": {"s": s}}
            for i, s in enumerate(nasty)
        ],
    )
    for s in nasty:
        assert [r.id for r in store.get("c", [s], tenant=s)] == [s]
        assert store.count("c", tenant=s) == 1
        assert store.count("c", tenant=s, filter={"s": s}) == 1
        assert store.count("c", tenant=nasty[0], filter={"s": {"$in": [s]}}) == int(s == nasty[0])
    store.delete("c", ["x' OR '1'='1"], tenant="x' OR '1'='1")
    assert sum(store.count("c", tenant=s) for s in nasty) == 4
    store.close()


def test_invalid_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        LanceDBVectorStore(tmp_path, index_threshold=10)
    with pytest.raises(ConfigError):
        LanceDBVectorStore(tmp_path, nprobes=0)
    with pytest.raises(ConfigError):
        LanceDBVectorStore(tmp_path, refine_factor=0)


def test_adapter_factory_builds_the_store(tmp_path: Path) -> None:
    config = LanceDBConfig(path=tmp_path / "v", index_threshold=1000, nprobes=8)
    store = LANCEDB.factories["vectors"](config, StackContext())
    try:
        assert isinstance(store, LanceDBVectorStore)
        assert (store.index_threshold, store.nprobes, store.refine_factor) == (1000, 8, 5)
        assert store.capabilities is LANCEDB.capabilities["vectors"]
    finally:
        store.close()


# ------------------------------------------------------- shared helpers this adapter relies on
keys = st.lists(st.integers(0, 30), unique=True, max_size=15)


@settings(max_examples=200, deadline=None)
@given(
    dense=keys, keyword=keys, alpha=st.floats(0.0, 1.0), method=st.sampled_from(["rrf", "relative"])
)
def test_fusion_properties(dense: list[int], keyword: list[int], alpha: float, method: str) -> None:
    d = [(k, 1.0 - i / 20) for i, k in enumerate(dense)]
    w = [(k, 10.0 - i) for i, k in enumerate(keyword)]
    fused = fuse(d, w, alpha, method=method)  # type: ignore[arg-type]
    scores = [f.score for f in fused]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert len({f.key for f in fused}) == len(fused)
    if alpha == 1.0:
        assert [f.key for f in fused] == dense
    elif alpha == 0.0:
        assert [f.key for f in fused] == keyword
    else:
        assert {f.key for f in fused} == set(dense) | set(keyword)
    if dense and keyword and dense[0] == keyword[0]:
        assert fused[0].key == dense[0] and fused[0].score == pytest.approx(1.0)


def test_fuse_hits_keeps_both_signals() -> None:
    dense = [
        Hit(id="a", score=0.9, distance=0.2, metric="cosine"),
        Hit(id="b", score=0.8, distance=0.4, metric="cosine"),
    ]
    keyword = [Hit(id="c", score=0.7, keyword_score=2.3), Hit(id="a", score=0.5, keyword_score=1.0)]
    fused = fuse_hits(dense, keyword, 0.5, 3)
    assert [h.id for h in fused] == ["a", "c", "b"]
    a = fused[0]
    assert (a.distance, a.metric, a.keyword_score) == (0.2, "cosine", 1.0)
    assert fused[1].distance is None and fused[1].keyword_score == 2.3
    with pytest.raises(InvalidInput):
        fuse_hits(dense, keyword, 1.5, 3)


def test_prepare_batch_rules() -> None:
    naive = dt.datetime(2024, 1, 1, 12)
    batch = prepare_batch(
        [
            {"id": "a", "vector": [1, 2], "metadata": {"n": np.int64(3), "at": naive}},
            {"id": 7, "vector": np.array([3, 4], dtype=np.float64), "text": "t"},
            {"id": "a", "vector": [5, 6], "metadata": {"n": 2.5}},
        ],
        dim=2,
        multi_tenant=False,
        known_fields={"n": FieldType.INT},
    )
    assert batch.ids == ["a", "7"]  # last wins, first position kept
    assert batch.vectors.dtype == np.float32 and batch.vectors.tolist() == [[5, 6], [3, 4]]
    assert batch.metadata[0] == {"n": 2.5}
    assert batch.widened == {"n": FieldType.FLOAT} and batch.new_fields == {}
    single = prepare_batch(
        [{"id": "a", "vector": [1, 2], "metadata": {"at": naive}}], dim=2, multi_tenant=False
    )
    assert single.metadata[0]["at"] == naive.replace(tzinfo=dt.UTC)
    assert single.new_fields == {"at": FieldType.TIMESTAMP}
    bad: list[tuple[list[dict[str, object]], type[Exception]]] = [
        ([{"id": "a", "vector": [1, 2], "metadata": {"n": 2**70}}], InvalidInput),
        ([{"id": "a", "vector": [1, 2], "metadata": {"l": [{"x": 1}]}}], InvalidInput),
        ([{"id": "a", "vector": [1, 2], "metadata": {"bad.key": 1}}], InvalidInput),
        ([{"id": "a", "vector": [1e39, 2]}], InvalidInput),
        ([{"id": "a", "vector": [1, 2], "extra": 1}], InvalidInput),
        ([{"id": "a", "vector": [[1, 2]]}], DimensionMismatch),
        ([{"id": "a", "vector": [1, 2]}] * 3, LimitExceeded),
    ]
    for records, error in bad:
        with pytest.raises(error):
            prepare_batch(records, dim=2, multi_tenant=False, max_rows=2)
    with pytest.raises(InvalidInput):
        prepare_batch({"id": "a", "vector": [1, 2]}, dim=2, multi_tenant=False)  # type: ignore[dict-item]


def test_query_checks() -> None:
    assert query_vector(np.array([1, 2]), 2).dtype == np.float32
    assert check_k(np.int64(3)) == 3
    with pytest.raises(InvalidInput):
        check_k(True)
    assert resolve_mode(None, "  hi ", None) == "keyword"
    with pytest.raises(InvalidInput):
        resolve_mode(None, "   ", None)
    assert resolve_mode([1.0], "text", "dense") == "dense"
    assert normalize_ids(["a", 3, "a"]) == ["a", "3"]
    with pytest.raises(InvalidInput):
        normalize_ids("abc")


def test_index_is_retrained_as_the_collection_grows(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v", index_threshold=256)
    store.create_collection("g", 8, "l2")
    x = _clustered(1100, 8, seed=2)

    def vector_index() -> str:
        table = lancedb.connect(str(tmp_path / "v")).open_table("g")
        (index,) = [i for i in table.list_indices() if i.columns == ["vector"]]
        return str(index.index_uuid)

    store.upsert("g", [{"id": f"r{i}", "vector": x[i].tolist()} for i in range(260)])
    _wait_for_index(store, "g")
    first = vector_index()
    store.upsert("g", [{"id": f"r{i}", "vector": x[i].tolist()} for i in range(260, 400)])
    store.optimize("g")
    assert vector_index() == first  # grew less than 4x: new rows are appended, not retrained
    store.upsert("g", [{"id": f"r{i}", "vector": x[i].tolist()} for i in range(400, 1100)])
    _wait_for_index(store, "g")
    assert vector_index() != first  # 1100 >= 4 x 260: retrained
    assert all(store.search("g", x[i], k=1)[0].id == f"r{i}" for i in range(0, 1100, 50))
    store.close()


def test_sees_collections_dropped_and_recreated_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lancedb_vectors, "_SCHEMA_TTL_S", 0.0)  # check on every call
    a, b = LanceDBVectorStore(tmp_path / "v"), LanceDBVectorStore(tmp_path / "v")
    a.create_collection("x", 2, "l2")
    a.upsert("x", [{"id": "1", "vector": [1, 2], "metadata": {"n": 1}}])
    assert b.count("x", filter={"n": 1}) == 1
    a.upsert("x", [{"id": "2", "vector": [2, 1], "metadata": {"m": "new field"}}])
    assert b.count("x", filter={"m": "new field"}) == 1  # a field added by another store
    a.drop_collection("x")
    with pytest.raises(NotFound):
        b.count("x")
    a.create_collection("x", 3, "cosine")
    assert (b.describe("x").dim, b.describe("x").metric) == (3, "cosine")
    b.upsert("x", [{"id": "1", "vector": [1, 2, 3]}])
    assert a.count("x") == 1
    a.close()
    b.close()


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 4, "cosine", multi_tenant=True)
    x = _clustered(200, 4, seed=3)

    def work(t: int) -> None:
        for j in range(5):
            ids = range(t * 50 + j * 10, t * 50 + j * 10 + 10)
            store.upsert(
                "c", [{"id": f"r{i}", "vector": x[i].tolist(), "tenant": f"t{t}"} for i in ids]
            )
            hits = store.search("c", x[t * 50], k=5, tenant=f"t{t}")
            assert all(h.tenant == f"t{t}" for h in hits)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    assert [store.count("c", tenant=f"t{t}") for t in range(4)] == [50] * 4
    assert store.describe("c").count == 200
    store.close()


# --------------------------------------------------------------- aliases, scans and health
def _recs(x: np.ndarray, prefix: str = "r", **extra: object) -> list[dict[str, object]]:
    return [{"id": f"{prefix}{i}", "vector": v.tolist(), **extra} for i, v in enumerate(x)]


def test_upsert_does_not_wait_for_the_index_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LanceDBVectorStore(tmp_path / "v", index_threshold=256)
    store.create_collection("c", 16, "cosine")
    real = LanceDBVectorStore._build_index
    started, release = threading.Event(), threading.Event()
    builds: list[int] = []

    def held(self: LanceDBVectorStore, c: Any, rows: int) -> None:
        """The background build, held open until the test has written during it."""
        builds.append(rows)
        if len(builds) == 1:
            started.set()
            assert release.wait(60)
        real(self, c, rows)

    monkeypatch.setattr(LanceDBVectorStore, "_build_index", held)
    x = _clustered(3000, 16, seed=4)
    store.upsert("c", _recs(x[:2000]))  # crosses the threshold: the build starts
    assert started.wait(60) and builds == [2000]
    # searches are served (exactly) while the index builds, and writes go on
    assert store.search("c", x[11], k=1)[0].id == "r11"
    store.upsert("c", _recs(x[2000:], prefix="late"))
    release.set()
    stats = store.optimize("c")  # waits for the build, folds the late rows in
    assert builds == [2000]  # optimize did not rebuild: 3000 rows is not 4x growth
    assert (stats.index_type, stats.count, stats.indexed) == ("ivf_flat", 3000, 3000)
    assert stats.index_params == {"metric": "cosine", "num_partitions": 44}
    assert stats.details["index_building"] is False and stats.details["unindexed"] == 0
    assert store.search("c", x[2500], k=1)[0].id == "late500"
    store.close()


def test_failed_background_build_is_reported_and_retried_by_optimize(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LanceDBVectorStore(tmp_path / "v", index_threshold=256)
    store.create_collection("c", 8, "l2")
    real = LanceDBVectorStore._build_index

    def broken(self: LanceDBVectorStore, c: object, rows: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(LanceDBVectorStore, "_build_index", broken)
    x = _clustered(300, 8, seed=5)
    store.upsert("c", _recs(x))
    deadline = time.monotonic() + 30
    while store.stats("c").details["index_building"] and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = store.stats("c")
    assert stats.index_type == "flat" and "disk full" in stats.details["index_error"]
    assert store.search("c", x[7], k=1)[0].id == "r7"  # still served, exactly
    with pytest.raises(Unavailable):
        store.optimize("c")  # optimize builds synchronously and reports the failure
    monkeypatch.setattr(LanceDBVectorStore, "_build_index", real)
    stats = store.optimize("c")
    assert stats.index_type == "ivf_flat" and "index_error" not in stats.details
    store.close()


def test_stats_count_deleted_and_overwritten_rows(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 4, "l2")
    x = _clustered(1000, 4, seed=6)
    store.upsert("c", _recs(x))  # one fragment
    stats = store.stats("c")
    assert (stats.count, stats.deleted, stats.tombstone_ratio) == (1000, 0, 0.0)
    assert (stats.index_type, stats.indexed) == ("flat", 0)
    store.delete("c", ["r1", "r2", "r3"])
    store.upsert("c", _recs(x[:2], prefix="r"))  # r0, r1 rewritten: r0's old row is held
    stats = store.stats("c")
    assert stats.count == 998
    assert stats.deleted == 4
    assert stats.tombstone_ratio == pytest.approx(4 / 1002)
    before = [h.id for h in store.search("c", x[500], k=10)]
    # under Lance's own 10 % rewrite threshold: optimize still leaves no tombstones
    after = store.optimize("c")
    assert (after.count, after.deleted, after.details["fragments"]) == (998, 0, 1)
    assert [h.id for h in store.search("c", x[500], k=10)] == before
    assert sorted(r.id for b in store.scan("c") for r in b) == sorted(
        [f"r{i}" for i in range(1000) if i not in (2, 3)]
    )
    store.close()


def test_searches_are_served_while_optimize_runs(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v", index_threshold=256)
    store.create_collection("c", 8, "cosine")
    x = _clustered(1500, 8, seed=7)
    for start in range(0, 1500, 100):  # many fragments
        store.upsert("c", _recs(x[start : start + 100], prefix=f"b{start}_"))
    store.delete("c", [f"b0_{i}" for i in range(50)])
    expected = {i: store.search("c", x[i], k=1)[0].id for i in range(100, 1500, 97)}
    failures: list[BaseException] = []
    done = False

    def reader() -> None:
        while not done:
            try:
                for i, want in expected.items():
                    assert store.search("c", x[i], k=1)[0].id == want
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(reader) for _ in range(2)]
        stats = store.optimize("c")
        done = True
        for f in futures:
            f.result()
    assert failures == []
    assert (stats.count, stats.deleted, stats.index_type) == (1450, 0, "ivf_flat")
    store.close()


def test_scan_streams_bounded_batches_of_one_tenant(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 4, "l2", multi_tenant=True)
    x = _clustered(2500, 4, seed=8)
    for start in range(0, 2500, 500):
        store.upsert(
            "c",
            [
                {
                    "id": f"r{i}",
                    "vector": x[i].tolist(),
                    "tenant": "a" if i % 5 else "b",
                    "metadata": {"i": i},
                }
                for i in range(start, start + 500)
            ],
        )
    batches = list(store.scan("c", tenant="b", batch_size=64, include_vectors=True))
    assert all(0 < len(b) <= 64 for b in batches)
    got = [r for b in batches for r in b]
    assert sorted(r.metadata["i"] for r in got) == list(range(0, 2500, 5))
    assert {r.tenant for r in got} == {"b"}
    assert np.allclose(got[0].vector, x[got[0].metadata["i"]], atol=1e-6)
    with pytest.raises(InvalidInput):
        store.scan("c", tenant="b", batch_size=True)
    with pytest.raises(InvalidInput):
        store.scan("c", batch_size=10)  # the tenant is required: raised at the call
    store.close()


def test_aliases_are_shared_with_other_stores_at_once(tmp_path: Path) -> None:
    a, b = LanceDBVectorStore(tmp_path / "v"), LanceDBVectorStore(tmp_path / "v")
    a.create_collection("blue", 2, "l2")
    a.create_collection("teal", 3, "cosine")  # same name length: same alias file size
    a.upsert("blue", [{"id": "old", "vector": [1, 0]}])
    a.upsert("teal", [{"id": "new", "vector": [0, 1, 0]}])
    a.set_alias("live", "blue")
    assert b.aliases() == {"live": "blue"}
    assert [h.id for h in b.search("live", [1, 0])] == ["old"]
    for _ in range(3):  # repoints within one file-timestamp tick are all seen
        a.set_alias("live", "teal")
        assert (b.describe("live").name, b.describe("live").dim) == ("teal", 3)
        a.set_alias("live", "blue")
        assert b.describe("live").name == "blue"
    with pytest.raises(Conflict):
        b.drop_collection("blue")  # the other store's alias protects it
    with pytest.raises(Conflict):
        b.drop_collection("live")  # an alias is not dropped as a collection
    with pytest.raises(Conflict):
        b.create_collection("live", 2)
    assert b.stats("live").name == "blue"
    assert [r.id for batch in b.scan("live") for r in batch] == ["old"]
    b.drop_alias("live")
    assert a.aliases() == {}
    a.drop_collection("blue")
    assert a.collections() == ["teal"]
    a.close()
    b.close()


def test_readers_never_fail_while_an_alias_is_repointed(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    other = LanceDBVectorStore(tmp_path / "v")
    for name in ("blue", "green"):
        store.create_collection(name, 2, "l2")
        store.upsert(name, [{"id": name, "vector": [1, 0]}])
    store.set_alias("live", "blue")
    seen: set[str] = set()
    failures: list[BaseException] = []
    done = False

    def reader() -> None:
        while not done:
            try:
                seen.add(other.search("live", [1, 0], k=1)[0].id)
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
                return

    def wait_until_seen(target: str) -> None:
        deadline = time.monotonic() + 30  # on a loaded machine the readers lag the repoints
        while target not in seen and not failures and time.monotonic() < deadline:
            time.sleep(0.001)

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(reader) for _ in range(2)]
        wait_until_seen("blue")  # the readers are up
        for i in range(30):
            store.set_alias("live", "green" if i % 2 == 0 else "blue")
        store.set_alias("live", "green")
        wait_until_seen("green")
        done = True
        for f in futures:
            f.result()
    assert failures == []
    assert seen == {"blue", "green"}
    store.close()
    other.close()


def test_a_damaged_alias_file_is_a_schema_error(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 2, "l2")
    store.set_alias("live", "c")
    (tmp_path / "v" / "_strataml_aliases.json").write_text("{not json")
    with pytest.raises(SchemaError):
        store.count("live")
    with pytest.raises(SchemaError):
        store.set_alias("other", "c")
    store.close()


def test_an_alias_whose_collection_vanished_is_not_found(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 2, "l2")
    store.set_alias("live", "c")
    store.close()
    lancedb.connect(str(tmp_path / "v")).drop_table("c")  # behind strataml's back
    again = LanceDBVectorStore(tmp_path / "v")
    with pytest.raises(NotFound, match="alias 'live' points at collection 'c'"):
        again.count("live")
    again.close()
