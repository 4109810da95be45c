"""Vector search benchmark: strataml's LanceDBVectorStore against raw LanceDB on the same table.

Data: 100k x 384 float32 vectors (``--quick``: 20k), a mixture of 1000 Gaussian clusters in a
64-dimensional latent space projected to 384 dimensions, plus a little isotropic noise, unit
normalised (cosine). Each record has a text (filler words; its cluster's topic word with
probability 0.6 and another cluster's with probability 0.3: a noisy keyword signal) and metadata
``g`` (uniform 0..9, so ``g == 3`` selects 10%) and ``cluster``. Queries are 500 fresh draws
from the same mixture (not stored points).

* ingest: strataml ``upsert`` of record dicts vs raw LanceDB given Arrow batches built from the
  same arrays, 10k rows per batch: ``table.add`` (append only, no id check) and
  ``merge_insert`` on ``id`` (an upsert, what strataml does). The strataml batch that crosses
  ``index_threshold`` starts the ANN index (IVF_FLAT) build in the background; ``optimize()``
  waits for it (timed separately) before the searches.
* dense search k=10: recall@10 against exact numpy brute force, queries/s and p50/p99, strataml
  ``search`` vs raw ``tbl.search(q).limit(10)`` on the *same* table and index with the same
  parameters (distance type, nprobes) and projection, calls interleaved.
* filtered search at 10% selectivity (``g == 3``, pre-filtered): every query must return k rows;
  recall against exact search over the matching rows; strataml vs raw ``where(prefilter=True)``.
* alias: the same dense search through an alias vs the collection's name, interleaved;
  ``scan`` throughput (batches of 1000 records, no vectors).
* hybrid: a synthetic relevance task (relevant = the query's cluster; query text = its topic
  word; query vectors drawn with more spread, so dense alone confuses neighbouring clusters):
  precision@10 of dense, keyword, and hybrid with each fusion method (rrf, relative) at
  alpha=0.5, to choose ``DEFAULT_FUSION``; latency of strataml hybrid vs raw LanceDB hybrid
  (``query_type="hybrid"``, its default RRF reranker).

Targets: recall@10 >= 0.95; strataml/raw queries/s >= 0.9.

    python bench/bench_vectors.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lancedb
import numpy as np
import pyarrow as pa

from strataml.local.lancedb_vectors import LanceDBVectorStore
from strataml.vectors.fusion import DEFAULT_FUSION, candidate_pool, fuse_hits

DIM = 384
LATENT = 64
CLUSTERS = 1000
K = 10
BATCH = 10_000
NPROBES = 20
NAME = "bench"
FILLER = ["data", "model", "vector", "search", "index", "query", "table", "record", "field"]


def make_space(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(CLUSTERS, LATENT))
    proj = rng.normal(size=(LATENT, DIM)) / np.sqrt(LATENT)
    return centers, proj


def draw(
    n: int, centers: np.ndarray, proj: np.ndarray, rng: np.random.Generator, spread: float
) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, CLUSTERS, n)
    z = centers[labels] + spread * rng.normal(size=(n, LATENT))
    x = z @ proj + 0.05 * rng.normal(size=(n, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def make_texts(labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    out: list[str] = []
    for c in labels:
        words = rng.choice(FILLER, size=5).tolist()
        if rng.random() < 0.6:
            words.append(f"topic{c}")
        if rng.random() < 0.3:
            words.append(f"topic{int(rng.integers(0, CLUSTERS))}")
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def exact_topk(q: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), 100):
        sims = q[start : start + 100] @ x.T
        part = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
        out[start : start + 100] = np.take_along_axis(part, order, axis=1)
    return out


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] * 1e3


def interleaved(
    n: int, a: Callable[[int], Any], b: Callable[[int], Any]
) -> tuple[list[float], list[float], list[Any], list[Any]]:
    """Latencies (s) and results of ``a(i)`` and ``b(i)``, alternating call by call."""
    ta: list[float] = []
    tb: list[float] = []
    ra: list[Any] = []
    rb: list[Any] = []
    clock = time.perf_counter
    for i in range(n):
        if i % 2:  # alternate who goes first
            t0 = clock()
            rb.append(b(i))
            t1 = clock()
            ra.append(a(i))
            t2 = clock()
            tb.append(t1 - t0)
            ta.append(t2 - t1)
        else:
            t0 = clock()
            ra.append(a(i))
            t1 = clock()
            rb.append(b(i))
            t2 = clock()
            ta.append(t1 - t0)
            tb.append(t2 - t1)
    return ta, tb, ra, rb


def report(label: str, ta: list[float], tb: list[float]) -> None:
    qa, qb = len(ta) / sum(ta), len(tb) / sum(tb)
    mine = f"{qa:8.1f} q/s  p50 {pct(ta, 0.5):6.2f} ms  p99 {pct(ta, 0.99):6.2f} ms"
    raw = f"{qb:8.1f} q/s  p50 {pct(tb, 0.5):6.2f} ms  p99 {pct(tb, 0.99):6.2f} ms"
    print(f"  {label:<10} strataml {mine} | raw {raw} | ratio {qa / qb:.2f}x")


def recall(found: list[list[int]], exact: np.ndarray) -> float:
    hits = sum(len(set(f) & set(e.tolist())) for f, e in zip(found, exact, strict=True))
    return hits / exact.size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="20k vectors instead of 100k")
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    n = 20_000 if args.quick else 100_000
    nq = args.queries
    gc.enable()

    t0 = time.perf_counter()
    centers, proj = make_space(args.seed)
    rng = np.random.default_rng(args.seed + 1)
    x, labels = draw(n, centers, proj, rng, spread=0.35)
    texts = make_texts(labels, rng)
    groups = rng.integers(0, 10, n)
    queries, _ = draw(nq, centers, proj, rng, spread=0.35)
    print(f"data: {n} x {DIM} float32, {nq} queries ({time.perf_counter() - t0:.1f} s)")

    with tempfile.TemporaryDirectory(prefix="bench_vectors_") as tmp:
        path = Path(tmp) / "lance"
        store = LanceDBVectorStore(path, index_threshold=n, nprobes=NPROBES)
        store.create_collection(NAME, DIM, "cosine")
        raw_db = lancedb.connect(str(Path(tmp) / "raw"))

        # ---------------------------------------------------------------------- ingest
        print("ingest (10k rows per batch):")
        s_times: list[float] = []
        r_times: list[float] = []
        m_times: list[float] = []
        raw_ingest = None
        raw_merge = None
        for start in range(0, n, BATCH):
            sl = slice(start, min(n, start + BATCH))
            recs = [
                {
                    "id": str(i),
                    "vector": x[i],
                    "text": texts[i],
                    "metadata": {"g": int(groups[i]), "cluster": int(labels[i])},
                }
                for i in range(sl.start, sl.stop)
            ]
            t0 = time.perf_counter()
            store.upsert(NAME, recs)
            s_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            batch = pa.table(
                {
                    "id": pa.array([str(i) for i in range(sl.start, sl.stop)]),
                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(x[sl].reshape(-1)), DIM),
                    "text": pa.array(texts[sl]),
                    "g": pa.array(groups[sl]),
                    "cluster": pa.array(labels[sl]),
                }
            )
            build = time.perf_counter() - t0
            t0 = time.perf_counter()
            if raw_ingest is None:
                raw_ingest = raw_db.create_table("ingest", data=batch)
            else:
                raw_ingest.add(batch)
            r_times.append(build + time.perf_counter() - t0)
            t0 = time.perf_counter()
            if raw_merge is None:
                raw_merge = raw_db.create_table("merge", data=batch)
            else:
                (
                    raw_merge.merge_insert("id")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(batch)
                )
            m_times.append(build + time.perf_counter() - t0)
        plain = s_times[:-1] or s_times
        per_batch = float(np.median(plain))
        r_plain = r_times[:-1] or r_times
        m_plain = m_times[:-1] or m_times
        s_rate = BATCH * len(plain) / sum(plain)
        r_rate = BATCH * len(r_plain) / sum(r_plain)
        m_rate = BATCH * len(m_plain) / sum(m_plain)
        print(
            f"  strataml upsert {s_rate:8.0f} rows/s | raw add {r_rate:8.0f} rows/s "
            f"(ratio {s_rate / r_rate:.2f}x) | raw merge_insert {m_rate:8.0f} rows/s "
            f"(ratio {s_rate / m_rate:.2f}x)"
        )
        print(
            f"  upsert crossing index_threshold: {s_times[-1]:.2f} s (median batch "
            f"{per_batch:.2f} s; the IVF_FLAT build runs in the background)"
        )
        t0 = time.perf_counter()
        stats = store.optimize(NAME)
        print(
            f"  optimize (waits for the background build, folds new rows in): "
            f"{time.perf_counter() - t0:.1f} s -> {stats.index_type} "
            f"{stats.index_params}, indexed {stats.indexed}/{stats.count}"
        )
        tbl = lancedb.connect(str(path)).open_table(NAME)
        print(f"  indexes: {sorted(i.index_type for i in tbl.list_indices())}")
        cols = ["id", "tenant", "text", "m_cluster", "m_g", "_distance"]

        # ---------------------------------------------------------------------- dense
        exact = exact_topk(queries, x, K)
        for _ in range(5):  # warm both paths
            store.search(NAME, queries[0], k=K)

        def s_dense(i: int) -> list[int]:
            return [int(h.id) for h in store.search(NAME, queries[i], k=K)]

        def raw_query(q: np.ndarray, limit: int) -> Any:
            return (
                tbl.search(q)
                .distance_type("cosine")
                .minimum_nprobes(NPROBES)
                .maximum_nprobes(0)
                .select(cols)
                .limit(limit)
            )

        def r_dense(i: int) -> list[int]:
            return [int(v) for v in raw_query(queries[i], K).to_arrow()["id"].to_pylist()]

        print(f"dense search, k={K}, nprobes={NPROBES}:")
        ta, tb, ra, rb = interleaved(nq, s_dense, r_dense)
        report("dense", ta, tb)
        print(f"  recall@10 strataml {recall(ra, exact):.4f} | raw {recall(rb, exact):.4f}")

        # ---------------------------------------------------------------------- alias
        store.set_alias("live", NAME)

        def s_alias(i: int) -> list[int]:
            return [int(h.id) for h in store.search("live", queries[i], k=K)]

        print("dense search through an alias (one stat of the alias file per call):")
        ta, tb, _, _ = interleaved(min(nq, 200), s_alias, s_dense)
        qa, qb = len(ta) / sum(ta), len(tb) / sum(tb)
        print(
            f"  alias p50 {pct(ta, 0.5):6.2f} ms | direct p50 {pct(tb, 0.5):6.2f} ms | "
            f"alias/direct queries/s {qa / qb:.2f}x"
        )
        t0 = time.perf_counter()
        scanned = sum(len(b) for b in store.scan("live", batch_size=1000))
        rate = scanned / (time.perf_counter() - t0)
        print(f"scan (batches of 1000, no vectors): {rate:,.0f} rows/s")

        # ---------------------------------------------------------------------- filtered
        mask = groups == 3
        sub = np.flatnonzero(mask)
        exact_f = sub[exact_topk(queries, x[sub], K)]

        def s_filt(i: int) -> list[int]:
            return [int(h.id) for h in store.search(NAME, queries[i], k=K, filter={"g": 3})]

        def r_filt(i: int) -> list[int]:
            q = raw_query(queries[i], K).where("`m_g` = 3", prefilter=True)
            return [int(v) for v in q.to_arrow()["id"].to_pylist()]

        print(f"filtered search, g == 3 ({mask.mean():.1%} of rows), k={K}:")
        ta, tb, ra, rb = interleaved(nq, s_filt, r_filt)
        report("filtered", ta, tb)
        full = sum(len(r) == K for r in ra)
        bad = sum(int(groups[i] != 3) for r in ra for i in r)
        print(
            f"  queries returning k rows {full}/{nq}; rows violating the filter {bad}; "
            f"recall@10 strataml {recall(ra, exact_f):.4f} | raw {recall(rb, exact_f):.4f}"
        )

        # ---------------------------------------------------------------------- hybrid
        nh = min(nq, 200)
        hq, hl = draw(nh, centers, proj, rng, spread=2.0)  # noisier: dense alone confuses
        htext = [f"topic{c}" for c in hl]

        def precision(ids: list[int], c: int) -> float:
            return sum(int(labels[i] == c) for i in ids) / K

        quality: dict[str, list[float]] = {
            "dense": [],
            "keyword": [],
            "rrf": [],
            "relative": [],
        }
        pool = candidate_pool(K)
        for i in range(nh):
            dense = store.search(NAME, hq[i], k=pool, mode="dense")
            keyword = store.search(NAME, text=htext[i], k=pool, mode="keyword")
            c = int(hl[i])
            quality["dense"].append(precision([int(h.id) for h in dense[:K]], c))
            quality["keyword"].append(precision([int(h.id) for h in keyword[:K]], c))
            for method in ("rrf", "relative"):
                fused = fuse_hits(dense, keyword, 0.5, K, method=method)  # type: ignore[arg-type]
                quality[method].append(precision([int(h.id) for h in fused], c))
        print(
            f"hybrid quality ({nh} noisy queries, precision@10, alpha=0.5): "
            + ", ".join(f"{m} {np.mean(v):.3f}" for m, v in quality.items())
            + f" (default fusion: {DEFAULT_FUSION})"
        )

        def s_hyb(i: int) -> list[str]:
            return [h.id for h in store.search(NAME, hq[i], text=htext[i], k=K)]

        def r_hyb(i: int) -> list[str]:
            q = (
                tbl.search(query_type="hybrid")
                .vector(hq[i])
                .text(htext[i])
                .distance_type("cosine")
                .minimum_nprobes(NPROBES)
                .maximum_nprobes(0)
                .select(cols[:-1])
                .limit(K)
            )
            return [str(v) for v in q.to_arrow()["id"].to_pylist()]

        ta, tb, _, rb = interleaved(nh, s_hyb, r_hyb)
        report("hybrid", ta, tb)
        print(
            "  raw LanceDB hybrid (RRF reranker) precision@10 "
            f"{np.mean([precision([int(v) for v in r], int(hl[i])) for i, r in enumerate(rb)]):.3f}"
        )
        store.close()


if __name__ == "__main__":
    main()
