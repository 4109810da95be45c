"""Benchmark: the Qdrant VectorStore vs qdrant-client used directly, on the same engine and data.

Both sides run qdrant-client's embedded local mode (no Qdrant server binary installs here), each
its own instance, in memory by default (``--disk``: each on a directory; local mode then commits
every point to SQLite on its own, which measures the disk), and do the same work: N x 384
synthetic clustered embeddings (unit vectors), a short text each (BM25 sparse vector with
Qdrant's IDF modifier, computed by the same tokenizer on both sides) and a metadata field
``g`` (10 groups); requests of 256 points.

* **upsert** records/s: ``store.upsert(name, records)`` (validation, payload layout, request
  splitting) vs building ``PointStruct`` objects from the same arrays and calling
  ``client.upsert`` per 256 points;
* **search** p50/p99 latency, interleaved query by query (alternating who goes first, gc
  enabled): dense ``k=10``; dense filtered on ``g`` (10 % selectivity); keyword (one rare-ish
  term); and the adapter's hybrid (no raw equivalent: both legs + client-side fusion);
* **recall@10** of dense search against exact neighbours (NumPy), both sides;
* **scan** rows/s: ``store.scan`` vs a ``client.scroll`` loop, 1000 per page.

Local mode searches exhaustively (recall is 1.0 by construction); on a server the same adapter
code runs, with HNSW. Usage: ``python bench/bench_qdrant.py [--quick] [--n N] [--queries Q]``
(``--quick``: 2k points, 40 queries, under a minute; default 20k x 384, 50 queries). Local
mode evaluates filters in Python point by point, so filtered searches are few
(``--filtered``, default 8).
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient
from qdrant_client.http import models as m

from strataml_qdrant.bm25 import Bm25Params, query_terms
from strataml_qdrant.config import QdrantConfig
from strataml_qdrant.payload import NAMESPACE
from strataml_qdrant.store import QdrantVectorStore

DIM = 384
K = 10
BATCH = 256
WORDS = [f"w{i}" for i in range(400)]


def clustered(n: int, n_queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Data and queries from one mixture: 100 Gaussian clusters in a 32-d subspace."""
    rng = np.random.default_rng(seed)
    latent, clusters = 32, 100
    centers = rng.normal(size=(clusters, latent)) * 2.0
    proj = rng.normal(size=(latent, DIM)) / np.sqrt(latent)

    def draw(count: int) -> np.ndarray:
        lab = rng.integers(0, clusters, count)
        x = (centers[lab] + rng.normal(size=(count, latent))) @ proj
        x += 0.15 * rng.normal(size=(count, DIM))
        out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        return out

    return draw(n), draw(n_queries)


def texts(n: int, seed: int = 11) -> list[str]:
    rng = np.random.default_rng(seed)
    # Zipf-like word frequencies: a few common words, many rare ones
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    return [" ".join(rng.choice(WORDS, size=12, p=p)) for _ in range(n)]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, q))


def exact_top(data: np.ndarray, queries: np.ndarray) -> np.ndarray:
    sims = queries @ data.T
    return np.argsort(-sims, axis=1)[:, :K]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return (
        sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True)) / truth.size
    )


def raw_points(ids: list[str], data: np.ndarray, docs: list[str], start: int) -> list[Any]:
    """What a qdrant-client user writes for the same records."""
    bm25 = Bm25Params()
    rows = data.tolist()
    points = []
    for j, rid in enumerate(ids):
        i = start + j
        vector: dict[str, Any] = {"dense": rows[j]}
        terms = bm25.document(docs[i])
        if terms is not None:
            vector["bm25"] = m.SparseVector(indices=terms[0], values=terms[1])
        points.append(
            m.PointStruct(
                id=str(uuid.uuid5(NAMESPACE, rid)),
                vector=vector,
                payload={"id": rid, "text": docs[i], "metadata": {"g": i % 10}},
            )
        )
    return points


def interleave(
    n: int, adapter: Callable[[int], Any], raw: Callable[[int], Any]
) -> tuple[list[float], list[float], list[Any], list[Any]]:
    ta: list[float] = []
    tr: list[float] = []
    ra: list[Any] = []
    rr: list[Any] = []
    for i in range(n):
        order = ((adapter, ta, ra), (raw, tr, rr))
        for fn, times, results in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            results.append(fn(i))
            times.append(time.perf_counter() - t0)
    return ta, tr, ra, rr


def row(label: str, ta: list[float], tr: list[float]) -> None:
    a50, a99, r50, r99 = pct(ta, 50), pct(ta, 99), pct(tr, 50), pct(tr, 99)
    print(
        f"  {label:<22} adapter p50 {a50:7.2f} ms p99 {a99:7.2f} ms | raw p50 {r50:7.2f} ms "
        f"p99 {r99:7.2f} ms | latency ratio p50 {a50 / r50:.2f}x p99 {a99 / r99:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k points, 40 queries")
    parser.add_argument("--filtered", type=int, default=8, help="filtered searches per side")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument(
        "--disk",
        dest="memory",
        action="store_false",
        help="persist to a directory (local mode commits each point to SQLite: slow)",
    )
    args = parser.parse_args()
    n = args.n or (2_000 if args.quick else 20_000)
    nq = args.queries or (40 if args.quick else 50)
    data, queries = clustered(n, nq)
    docs = texts(n)
    ids = [f"doc-{i}" for i in range(n)]
    gc.collect()
    warnings.simplefilter("ignore")  # local mode warns about collections over 20k points
    tmp = Path(tempfile.mkdtemp(prefix="bench-qdrant-"))
    location = Path(":memory:") if args.memory else tmp / "adapter"
    mode = "in memory" if args.memory else "on disk"
    print(
        f"Qdrant local mode ({mode}): {n} x {DIM} cosine, {nq} queries, k={K}, requests of {BATCH}"
    )
    try:
        store = QdrantVectorStore.from_config(
            QdrantConfig(type="qdrant", path=location, max_batch_rows=BATCH)
        )
        client = (
            QdrantClient(location=":memory:")
            if args.memory
            else QdrantClient(path=str(tmp / "raw"))
        )
        store.create_collection("bench", DIM, "cosine")
        client.create_collection(
            "bench",
            vectors_config={"dense": m.VectorParams(size=DIM, distance=m.Distance.COSINE)},
            sparse_vectors_config={"bm25": m.SparseVectorParams(modifier=m.Modifier.IDF)},
        )

        # ---------------------------------------------------------------- upsert
        records = [
            {"id": ids[i], "vector": data[i], "text": docs[i], "metadata": {"g": i % 10}}
            for i in range(n)
        ]
        t0 = time.perf_counter()
        store.upsert("bench", records)
        t_adapter = time.perf_counter() - t0
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            end = min(n, start + BATCH)
            client.upsert(
                "bench", raw_points(ids[start:end], data[start:end], docs, start), wait=True
            )
        t_raw = time.perf_counter() - t0
        a_rate, r_rate = n / t_adapter, n / t_raw
        print(
            f"upsert: adapter {a_rate:,.0f} records/s | raw {r_rate:,.0f} records/s | "
            f"throughput ratio {a_rate / r_rate:.2f}x"
        )

        # ---------------------------------------------------------------- search
        truth = exact_top(data, queries)
        index_of = {rid: i for i, rid in enumerate(ids)}
        print("search (interleaved, gc enabled):")
        ta, tr, ra, rr = interleave(
            nq,
            lambda i: store.search("bench", queries[i], k=K),
            lambda i: (
                client.query_points(
                    "bench", query=queries[i].tolist(), using="dense", limit=K, with_payload=True
                ).points
            ),
        )
        row("dense k=10", ta, tr)
        rec_a = recall([[index_of[h.id] for h in hits] for hits in ra], truth)
        rec_r = recall([[index_of[p.payload["id"]] for p in pts] for pts in rr], truth)
        print(f"  recall@10 vs exact: adapter {rec_a:.3f} | raw {rec_r:.3f}")

        g_filter = m.Filter(must=[m.FieldCondition(key="metadata.g", match=m.MatchValue(value=3))])
        ta, tr, ra, _ = interleave(
            min(nq, args.filtered),
            lambda i: store.search("bench", queries[i], k=K, filter={"g": 3}),
            lambda i: (
                client.query_points(
                    "bench",
                    query=queries[i].tolist(),
                    using="dense",
                    query_filter=g_filter,
                    limit=K,
                    with_payload=True,
                ).points
            ),
        )
        row("dense, filter 10 %", ta, tr)
        assert all(len(h) == K and all(x.metadata["g"] == 3 for x in h) for h in ra)

        words = [WORDS[40 + (i % 200)] for i in range(nq)]
        ta, tr, _, _ = interleave(
            nq,
            lambda i: store.search("bench", text=words[i], k=K),
            lambda i: (
                client.query_points(
                    "bench",
                    query=m.SparseVector(
                        indices=query_terms(words[i])[0], values=query_terms(words[i])[1]
                    ),
                    using="bm25",
                    limit=K,
                    with_payload=True,
                ).points
            ),
        )
        row("keyword (BM25)", ta, tr)
        hybrid: list[float] = []
        for i in range(nq):
            t0 = time.perf_counter()
            store.search("bench", queries[i], text=words[i], k=K)
            hybrid.append(time.perf_counter() - t0)
        print(
            f"  {'hybrid (adapter only)':<22} adapter p50 {pct(hybrid, 50):7.2f} ms "
            f"p99 {pct(hybrid, 99):7.2f} ms (both legs in one batched request + fusion)"
        )

        # ------------------------------------------------------------------ scan
        t0 = time.perf_counter()
        scanned = sum(len(b) for b in store.scan("bench", batch_size=1000))
        t_adapter = time.perf_counter() - t0
        t0 = time.perf_counter()
        offset: Any = None
        raw_rows = 0
        while True:
            pts, offset = client.scroll("bench", limit=1000, offset=offset, with_payload=True)
            raw_rows += len(pts)
            if offset is None:
                break
        t_raw = time.perf_counter() - t0
        assert scanned == raw_rows == n
        a_rate, r_rate = n / t_adapter, n / t_raw
        print(
            f"scan: adapter {a_rate:,.0f} rows/s | raw {r_rate:,.0f} rows/s | "
            f"throughput ratio {a_rate / r_rate:.2f}x"
        )
        store.close()
        client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
