"""Index health: how well a collection's ANN search agrees with exact search.

:func:`recall_probe` samples stored vectors, asks the store for their nearest neighbours (its
ANN index, exactly as applications query it) and compares them with the exact nearest
neighbours computed client-side by streaming ``scan`` -- in bounded memory (the sample plus a
running top-k per query), so it works on collections of any size and on every backend. Use it
after bulk loads, deletes and :meth:`~strataml.protocols.VectorStore.optimize`, and next to
:meth:`~strataml.protocols.VectorStore.stats`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from strataml.errors import InvalidInput
from strataml.vectors.batch import check_k, check_tenant

if TYPE_CHECKING:
    from strataml.protocols.vectors import VectorStore

__all__ = ["ProbeReport", "exact_distances", "recall_probe"]

#: Two distances this close count as a tie (an ANN hit tied with the k-th exact neighbour is
#: as good as it): float32 storage makes equal distances differ in the last bits.
TIE_EPS = 1e-4


@dataclass(frozen=True)
class ProbeReport:
    """The result of :func:`recall_probe`.

    ``recall`` is the mean over sampled queries of the share of the exact top ``k`` that the
    store's search returned (a returned hit tied in distance with the k-th exact neighbour
    counts as found -- its distance recomputed from the stored vector, not taken from the
    store); ``min_recall`` the worst query's. Each query is a stored vector and the
    record itself is excluded from both lists. ``p50_ms``/``p99_ms`` are the store's search
    latencies for these queries.
    """

    collection: str
    tenant: str | None
    k: int
    sample: int
    count: int
    recall: float
    min_recall: float
    p50_ms: float
    p99_ms: float
    exact_seconds: float
    seconds: float


def exact_distances(
    metric: str, queries: npt.NDArray[np.float64], rows: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``(len(queries), len(rows))`` distances as in the score contract of
    :class:`~strataml.models.Hit`: cosine ``1 - cos``, l2 Euclidean, dot ``-inner product``."""
    if metric == "dot":
        out: npt.NDArray[np.float64] = -(queries @ rows.T)
        return out
    if metric == "cosine":
        qn = np.linalg.norm(queries, axis=1, keepdims=True)
        rn = np.linalg.norm(rows, axis=1, keepdims=True)
        qn[qn == 0] = 1.0
        rn[rn == 0] = 1.0
        cos = (queries / qn) @ (rows / rn).T
        result: npt.NDArray[np.float64] = 1.0 - cos
        return result
    if metric == "l2":
        sq = (
            np.sum(queries**2, axis=1)[:, None]
            + np.sum(rows**2, axis=1)[None, :]
            - 2.0 * (queries @ rows.T)
        )
        dist: npt.NDArray[np.float64] = np.sqrt(np.maximum(sq, 0.0))
        return dist
    raise InvalidInput(f"unknown metric {metric!r}")


def _sample(
    store: VectorStore, name: str, tenant: str | None, n: int, seed: int, batch_size: int
) -> tuple[list[str], npt.NDArray[np.float64], int]:
    """Reservoir-sample ``n`` records (ids, vectors) in one scan; also count the records."""
    rng = np.random.default_rng(seed)
    ids: list[str] = []
    vecs: list[npt.NDArray[np.float64]] = []
    seen = 0
    for batch in store.scan(name, tenant=tenant, include_vectors=True, batch_size=batch_size):
        for rec in batch:
            seen += 1
            if len(ids) < n:
                ids.append(rec.id)
                vecs.append(np.asarray(rec.vector, dtype=np.float64))
            else:
                j = int(rng.integers(0, seen))
                if j < n:
                    ids[j] = rec.id
                    vecs[j] = np.asarray(rec.vector, dtype=np.float64)
    matrix = np.vstack(vecs) if vecs else np.zeros((0, 0))
    return ids, matrix, seen


def _exact_topk(
    store: VectorStore,
    name: str,
    tenant: str | None,
    metric: str,
    qids: list[str],
    queries: npt.NDArray[np.float64],
    k: int,
    batch_size: int,
    wanted: list[list[str]],
) -> tuple[npt.NDArray[Any], npt.NDArray[np.float64], list[dict[str, float]]]:
    """Exact top-``k`` (ids, distances) per query, excluding the query's own record, by
    streaming the collection (memory O(queries x (k + batch_size))); also the exact distance
    of each query's ``wanted`` records (the store's answers)."""
    nq = len(qids)
    best_d = np.full((nq, k), np.inf)
    best_i = np.full((nq, k), None, dtype=object)
    qid_arr = np.array(qids, dtype=object)
    wanted_by: dict[str, list[int]] = {}
    for qi, answer in enumerate(wanted):
        for rid in answer:
            wanted_by.setdefault(rid, []).append(qi)
    true_d: list[dict[str, float]] = [{} for _ in range(nq)]
    for batch in store.scan(name, tenant=tenant, include_vectors=True, batch_size=batch_size):
        if not batch:
            continue
        rows = np.asarray([r.vector for r in batch], dtype=np.float64)
        ids = np.array([r.id for r in batch], dtype=object)
        d = exact_distances(metric, queries, rows)
        for col, rid in enumerate(ids):
            for qi in wanted_by.get(rid, ()):
                true_d[qi][rid] = float(d[qi, col])
        d[qid_arr[:, None] == ids[None, :]] = np.inf  # a query is not its own neighbour
        all_d = np.concatenate([best_d, d], axis=1)
        all_i = np.concatenate([best_i, np.broadcast_to(ids, d.shape)], axis=1)
        part = np.argpartition(all_d, k - 1, axis=1)[:, :k]
        best_d = np.take_along_axis(all_d, part, axis=1)
        best_i = np.take_along_axis(all_i, part, axis=1)
    order = np.argsort(best_d, axis=1, kind="stable")
    return (
        np.take_along_axis(best_i, order, axis=1),
        np.take_along_axis(best_d, order, axis=1),
        true_d,
    )


def _percentile(ms: list[float], q: float) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def recall_probe(
    store: VectorStore,
    collection: str,
    sample: int = 100,
    k: int = 10,
    tenant: str | None = None,
    *,
    seed: int = 0,
    batch_size: int = 2000,
) -> ProbeReport:
    """Compare the store's dense search with exact search on ``sample`` stored vectors.

    ``sample`` searches with ``k + 1`` results (the query's own record is dropped from both
    sides) and two scans: sampling, then the exact top-``k`` of every sampled query (and the
    exact distances of the records the store returned). A
    multi-tenant collection is probed per ``tenant``. Raises
    :class:`~strataml.errors.InvalidInput` for bad arguments (or a collection with fewer than
    two records) and :class:`~strataml.errors.NotFound` for a missing collection.
    """
    t0 = time.perf_counter()
    k = check_k(k)
    sample = check_k(sample)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}")
    info = store.describe(collection)
    tenant = check_tenant(info.multi_tenant, tenant, collection)
    qids, queries, count = _sample(store, collection, tenant, sample, seed, batch_size)
    if count < 2:
        raise InvalidInput(f"collection {collection!r} has {count} records: nothing to probe")
    kk = min(k, count - 1)
    latencies: list[float] = []
    answers: list[list[str]] = []
    for i, qid in enumerate(qids):
        ts = time.perf_counter()
        hits = store.search(collection, queries[i], k=kk + 1, mode="dense", tenant=tenant)
        latencies.append((time.perf_counter() - ts) * 1000.0)
        answers.append([h.id for h in hits if h.id != qid][:kk])
    t1 = time.perf_counter()
    exact_ids, exact_d, true_d = _exact_topk(
        store, collection, tenant, info.metric, qids, queries, kk, batch_size, answers
    )
    exact_s = time.perf_counter() - t1
    recalls: list[float] = []
    for i, got in enumerate(answers):
        truth = set(exact_ids[i].tolist())
        worst = float(exact_d[i, -1])
        limit = worst + TIE_EPS * max(1.0, abs(worst))
        found = sum(1 for rid in got if rid in truth or true_d[i].get(rid, np.inf) <= limit)
        recalls.append(found / kk)
    return ProbeReport(
        collection=collection,
        tenant=tenant,
        k=kk,
        sample=len(qids),
        count=count,
        recall=float(statistics.fmean(recalls)),
        min_recall=float(min(recalls)),
        p50_ms=float(statistics.median(latencies)),
        p99_ms=_percentile(latencies, 0.99),
        exact_seconds=exact_s,
        seconds=time.perf_counter() - t0,
    )
