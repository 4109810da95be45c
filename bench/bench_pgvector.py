"""Benchmark: the pgvector VectorStore vs the same SQL through a bare psycopg connection.

Starts its own PostgreSQL 18 + pgvector (``strataml.dev.servers.start_postgres``, not durable),
loads N x 384 synthetic *clustered* embeddings (a mixture of Gaussian clusters in a
32-dimensional subspace, projected to 384 dimensions, plus isotropic noise, normalised) with
``PgVectorStore.upsert`` (one bulk upsert: COPY + HNSW bulk build), then runs the query set:

* recall@10 against exact nearest neighbours (NumPy brute force) for both sides;
* queries/s and p50/p99 latency of ``store.search(name, q, k=10)`` and of the same SELECT
  through psycopg (one autocommit connection, pgvector's ``register_vector``, the same
  ``hnsw.ef_search`` and iterative-scan settings), interleaved query by query (alternating who
  goes first) so that load on the machine affects both sides alike; gc stays enabled;
* a filtered query with 10 % selectivity (``{"g": 3}``): every search must return k hits, all
  matching, and its recall against the exact filtered neighbours is reported;
* the same search through an alias (``set_alias("live", "docs")``: the alias check runs in the
  search statement) vs the collection's own name, interleaved: the cost of alias resolution;
* ``scan`` (keyset pages of 1000 rows, no vectors): rows/s;
* health: delete 30 % of the rows, ``stats()`` (dead tuples), ``optimize()`` (REINDEX
  CONCURRENTLY past ``reindex_ratio`` + VACUUM ANALYZE) timed, then recall@10 against the exact
  neighbours among the remaining rows, queries/s and p50/p99 again.

Usage: ``python bench/bench_pgvector.py [--quick] [--n N] [--queries Q]`` (``--quick``: 20k).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from strataml.dev.servers import start_postgres, stop
from strataml.registry import StackContext
from strataml_postgres import PostgresConfig, database
from strataml_postgres.vector_schema import REGISTRY
from strataml_postgres.vectors import PgVectorStore

DIM = 384
K = 10
EF_SEARCH = 100


def clustered(n: int, n_queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Data and queries from the same mixture: 100 Gaussian clusters in a 32-d subspace."""
    rng = np.random.default_rng(seed)
    latent, clusters = 32, 100
    centers = rng.normal(size=(clusters, latent)) * 2.0
    spread = rng.uniform(0.4, 1.2, size=clusters)
    proj = rng.normal(size=(latent, DIM)) / np.sqrt(latent)

    def draw(m: int) -> np.ndarray:
        lab = rng.integers(0, clusters, m)
        z = centers[lab] + spread[lab, None] * rng.normal(size=(m, latent))
        x = z @ proj + 0.15 * rng.normal(size=(m, DIM))
        out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        return out

    return draw(n), draw(n_queries)


def exact_topk(
    data: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None
) -> np.ndarray:
    sims = queries @ data.T  # unit vectors: cosine similarity
    if mask is not None:
        sims[:, ~mask] = -np.inf
    part = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.take_along_axis(sims, part, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(part, order, axis=1)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, p))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="20k vectors instead of 100k")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    n = args.n or (20_000 if args.quick else 100_000)
    data, queries = clustered(n, args.queries)
    groups = np.random.default_rng(3).integers(0, 10, n)
    print(
        f"pgvector bench: {n} x {DIM} clustered unit vectors, {len(queries)} queries, k={K}, "
        f"ef_search={EF_SEARCH}"
    )

    tmp = tempfile.mkdtemp(prefix="bench_pgvector_")
    try:
        handle = start_postgres(Path(tmp), durable=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ctx = StackContext()
    raw: psycopg.Connection[Any] | None = None
    try:
        config = PostgresConfig(type="pgvector", url=handle.url, schema="bench")
        store = PgVectorStore(database(config, ctx), ef_search=EF_SEARCH)
        store.create_collection("docs", DIM, "cosine")
        records = [
            {"id": str(i), "vector": data[i], "metadata": {"g": int(groups[i])}} for i in range(n)
        ]
        t0 = time.perf_counter()
        store.upsert("docs", records)
        load_s = time.perf_counter() - t0
        del records
        print(f"load (validate + COPY + HNSW bulk build): {load_s:.1f} s, {n / load_s:,.0f} rows/s")

        # the raw side: one autocommit psycopg connection, same settings, same SELECT
        raw = psycopg.connect(handle.url, autocommit=True)
        raw.execute("SET search_path = bench, public")
        register_vector(raw)
        raw.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
        raw.execute("SET hnsw.iterative_scan = relaxed_order")
        row = raw.execute(
            psycopg.sql.SQL("SELECT table_name FROM {} WHERE name = 'docs'").format(
                psycopg.sql.Identifier(REGISTRY)
            )
        ).fetchone()
        assert row is not None
        table = psycopg.sql.Identifier(row[0]).as_string(raw)
        raw_sql = (
            f"SELECT id, tenant, text, metadata, embedding <=> %s AS distance FROM {table} "
            "WHERE tenant = %s ORDER BY distance LIMIT %s"
        )

        def ours(q: np.ndarray) -> list[int]:
            return [int(h.id) for h in store.search("docs", q, k=K)]

        def theirs(q: np.ndarray) -> list[int]:
            return [
                int(r[0]) for r in raw.cursor(binary=True).execute(raw_sql, (q, "", K)).fetchall()
            ]

        for q in queries[:30]:  # warm up caches and prepared statements on both sides
            ours(q)
            theirs(q)
        lat_ours: list[float] = []
        lat_raw: list[float] = []
        res_ours: list[list[int]] = []
        res_raw: list[list[int]] = []
        for i, q in enumerate(queries):
            for side in (0, 1) if i % 2 else (1, 0):
                t = time.perf_counter()
                if side == 0:
                    res_ours.append(ours(q))
                    lat_ours.append(time.perf_counter() - t)
                else:
                    res_raw.append(theirs(q))
                    lat_raw.append(time.perf_counter() - t)
        truth = exact_topk(data, queries, K)
        qps_ours = len(lat_ours) / sum(lat_ours)
        qps_raw = len(lat_raw) / sum(lat_raw)
        print(
            f"recall@{K} vs exact: strataml {recall(res_ours, truth):.4f}  "
            f"raw psycopg {recall(res_raw, truth):.4f}"
        )
        print(
            f"strataml   : {qps_ours:8.1f} q/s  p50 {pct(lat_ours, 50):.3f} ms  "
            f"p99 {pct(lat_ours, 99):.3f} ms"
        )
        print(
            f"raw psycopg: {qps_raw:8.1f} q/s  p50 {pct(lat_raw, 50):.3f} ms  "
            f"p99 {pct(lat_raw, 99):.3f} ms"
        )
        print(
            f"ratio strataml/raw queries/s: {qps_ours / qps_raw:.3f}  "
            f"(median of per-query latency ratios: "
            f"{statistics.median(r / o for o, r in zip(lat_ours, lat_raw, strict=True)):.3f})"
        )

        # filtered search, 10 % selectivity
        mask = groups == 3
        f_truth = exact_topk(data, queries, K, mask)
        f_lat: list[float] = []
        f_res: list[list[int]] = []
        short = 0
        for q in queries:
            t = time.perf_counter()
            hits = store.search("docs", q, k=K, filter={"g": 3})
            f_lat.append(time.perf_counter() - t)
            short += len(hits) < K
            assert all(h.metadata["g"] == 3 for h in hits)
            f_res.append([int(h.id) for h in hits])
        print(
            f"filtered ({mask.mean():.1%} selectivity): {len(queries) - short}/{len(queries)} "
            f"queries returned k={K} hits, recall@{K} {recall(f_res, f_truth):.4f}, "
            f"{len(f_lat) / sum(f_lat):.1f} q/s, p50 {pct(f_lat, 50):.3f} ms, "
            f"p99 {pct(f_lat, 99):.3f} ms"
        )
        # alias vs direct name
        store.set_alias("live", "docs")
        lat_alias: list[float] = []
        lat_direct: list[float] = []
        for i, q in enumerate(queries):
            for name in ("live", "docs") if i % 2 else ("docs", "live"):
                t = time.perf_counter()
                store.search(name, q, k=K)
                (lat_alias if name == "live" else lat_direct).append(time.perf_counter() - t)
        alias_ratio = (len(lat_alias) / sum(lat_alias)) / (len(lat_direct) / sum(lat_direct))
        print(
            f"through an alias: p50 {pct(lat_alias, 50):.3f} ms vs direct "
            f"{pct(lat_direct, 50):.3f} ms; alias/direct queries/s {alias_ratio:.3f}"
        )

        # scan
        t0 = time.perf_counter()
        scanned = sum(len(b) for b in store.scan("live", batch_size=1000))
        scan_s = time.perf_counter() - t0
        print(f"scan (keyset pages of 1000, no vectors): {scanned / scan_s:,.0f} rows/s")
        assert scanned == n

        # health: 30 % deletes, stats, optimize, search again
        doomed = np.random.default_rng(11).permutation(n)[: int(0.3 * n)]
        t0 = time.perf_counter()
        for start in range(0, len(doomed), 10_000):
            store.delete("live", [str(i) for i in doomed[start : start + 10_000]])
        delete_s = time.perf_counter() - t0
        before = store.stats("live")
        print(
            f"deleted {len(doomed)} rows in {delete_s:.1f} s; stats: count {before.count}, "
            f"deleted {before.deleted} (ratio {before.tombstone_ratio:.2f}), "
            f"{before.index_type} {before.index_params}"
        )
        keep = np.ones(n, dtype=bool)
        keep[doomed] = False
        k_truth = exact_topk(data, queries, K, keep)

        def measure() -> tuple[float, list[float]]:
            lat: list[float] = []
            res: list[list[int]] = []
            for q in queries:
                t = time.perf_counter()
                res.append(ours_live(q))
                lat.append(time.perf_counter() - t)
            return recall(res, k_truth), lat

        def ours_live(q: np.ndarray) -> list[int]:
            return [int(h.id) for h in store.search("live", q, k=K)]

        r_before, l_before = measure()
        t0 = time.perf_counter()
        after = store.optimize("live")
        optimize_s = time.perf_counter() - t0
        r_after, l_after = measure()
        print(
            f"optimize: {optimize_s:.1f} s -> count {after.count}, deleted {after.deleted}, "
            f"indexed {after.indexed}"
        )
        for label, r, lat in (("before", r_before, l_before), ("after ", r_after, l_after)):
            print(
                f"  {label} optimize: recall@{K} {r:.4f}  {len(lat) / sum(lat):8.1f} q/s  "
                f"p50 {pct(lat, 50):.3f} ms  p99 {pct(lat, 99):.3f} ms"
            )
        summary = {
            "n": n,
            "load_s": round(load_s, 2),
            "recall_strataml": recall(res_ours, truth),
            "recall_raw": recall(res_raw, truth),
            "qps_strataml": round(qps_ours, 1),
            "qps_raw": round(qps_raw, 1),
            "ratio": round(qps_ours / qps_raw, 3),
            "filtered_full_k": len(queries) - short,
            "filtered_recall": recall(f_res, f_truth),
            "alias_over_direct": round(alias_ratio, 3),
            "scan_rows_s": round(scanned / scan_s),
            "optimize_s": round(optimize_s, 1),
            "recall_after_deletes": r_before,
            "recall_after_optimize": r_after,
        }
        print("summary:", json.dumps(summary))
        store.close()
    finally:
        if raw is not None:
            raw.close()
        ctx.close()
        stop(handle)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
