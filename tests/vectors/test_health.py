"""Index health: the recall probe (strataml.vectors.health) on real stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from strataml.errors import InvalidInput, NotFound
from strataml.local.lancedb_vectors import LanceDBVectorStore
from strataml.vectors.health import exact_distances, recall_probe


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, dim))
    x = centers[rng.integers(0, 8, n)] + 0.4 * rng.normal(size=(n, dim))
    return x.astype(np.float32)


def load(store: Any, name: str, x: np.ndarray, metric: str = "cosine", **kw: Any) -> None:
    store.create_collection(name, x.shape[1], metric, **kw)  # type: ignore[arg-type]
    tenant = kw.get("multi_tenant") and "acme"
    store.upsert(
        name,
        [
            {"id": f"r{i}", "vector": v, **({"tenant": tenant} if tenant else {})}
            for i, v in enumerate(x)
        ],
    )


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
def test_exhaustive_search_has_full_recall(store: Any, metric: str):
    x = clustered(400, 12, seed=1)
    load(store, "h", x, metric)
    rep = recall_probe(store, "h", sample=25, k=10, batch_size=64)
    assert rep.sample == 25 and rep.k == 10 and rep.count == 400
    assert rep.recall == pytest.approx(1.0) and rep.min_recall == pytest.approx(1.0)
    assert 0 < rep.p50_ms <= rep.p99_ms


def test_multi_tenant_collections_are_probed_per_tenant(lance: Any):
    x = clustered(300, 8, seed=2)
    lance.create_collection("mt", 8, multi_tenant=True)
    lance.upsert(
        "mt",
        [{"id": f"r{i}", "vector": v, "tenant": "a" if i % 2 else "b"} for i, v in enumerate(x)],
    )
    rep = recall_probe(lance, "mt", sample=20, k=5, tenant="a")
    assert rep.count == 150 and rep.recall == pytest.approx(1.0)
    with pytest.raises(InvalidInput):
        recall_probe(lance, "mt")  # tenant required


class _DegradedIndex:
    """A real store whose searches are answered from a copy of the collection with perturbed
    vectors: an "index" returning approximate neighbours, as a badly tuned ANN index would."""

    def __init__(self, inner: Any, exact: str, approximate: str) -> None:
        self.inner, self.exact, self.approximate = inner, exact, approximate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def search(self, name: str, *args: Any, **kwargs: Any) -> Any:
        assert name == self.exact
        return self.inner.search(self.approximate, *args, **kwargs)


@pytest.mark.parametrize(("noise", "low", "high"), [(0.0, 0.999, 1.0), (0.5, 0.0, 0.9)])
def test_the_probe_measures_how_many_true_neighbours_search_misses(
    store: Any, noise: float, low: float, high: float
):
    x = np.random.default_rng(5).normal(size=(600, 16)).astype(np.float32)
    load(store, "truth", x)
    y = x + noise * np.random.default_rng(6).normal(size=x.shape).astype(np.float32)
    load(store, "approx", y)
    rep = recall_probe(_DegradedIndex(store, "truth", "approx"), "truth", sample=30, k=10)
    assert low <= rep.recall <= high
    assert rep.min_recall <= rep.recall


def test_probe_is_exact_about_ties_and_small_collections(lance: Any):
    x = np.ones((5, 4), dtype=np.float32)  # every record ties with every other
    load(lance, "ties", x)
    rep = recall_probe(lance, "ties", sample=5, k=10)
    assert rep.k == 4 and rep.recall == pytest.approx(1.0)
    lance.create_collection("one", 4)
    lance.upsert("one", [{"id": "a", "vector": [1, 0, 0, 0]}])
    with pytest.raises(InvalidInput):
        recall_probe(lance, "one")
    with pytest.raises(NotFound):
        recall_probe(lance, "missing")
    with pytest.raises(InvalidInput):
        recall_probe(lance, "ties", k=0)


def test_exact_distances_follow_the_score_contract():
    q = np.array([[1.0, 0.0], [0.0, 2.0]])
    r = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    assert exact_distances("cosine", q, r) == pytest.approx(
        np.array([[0.0, 1.0, 0.4], [1.0, 0.0, 0.2]])
    )
    assert exact_distances("l2", q, r) == pytest.approx(
        np.array([[0.0, np.sqrt(2), np.sqrt(20)], [np.sqrt(5), 1.0, np.sqrt(13)]])
    )
    assert exact_distances("dot", q, r) == pytest.approx(-(q @ r.T))
    with pytest.raises(InvalidInput):
        exact_distances("manhattan", q, r)


def test_recall_after_deletes_and_optimize(tmp_path: Path):
    """Above the index threshold the store searches an ANN index: the probe measures it, before
    and after deleting 30 % and optimize(); stats report the tombstones and the compaction."""
    store = LanceDBVectorStore(tmp_path / "v", index_threshold=256)
    try:
        x = clustered(1200, 16, seed=3)
        load(store, "ann", x)
        store.optimize("ann")
        before = recall_probe(store, "ann", sample=30, k=10)
        assert store.stats("ann").index_type != "flat"
        store.delete("ann", [f"r{i}" for i in range(0, 1200, 3)])
        stats = store.stats("ann")
        assert stats.count == 800 and (stats.deleted is None or stats.deleted >= 400)
        after_stats = store.optimize("ann")
        assert after_stats.count == 800 and after_stats.deleted in (0, None)
        after = recall_probe(store, "ann", sample=30, k=10)
        assert after.count == 800
        assert before.recall >= 0.9 and after.recall >= 0.9
    finally:
        store.close()
