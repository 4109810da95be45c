"""Benchmark: the Milvus VectorStore vs raw pymilvus on the same Milvus Lite, same data, same run.

Starts Milvus Lite (``strataml_milvus.devserver``), makes N x DIM synthetic clustered embeddings
with short texts and a little metadata, and measures both sides doing the same work:

* **write**: ``store.upsert`` in batches of ``--batch`` records vs ``MilvusClient.upsert`` of
  pre-built rows (same schema: base64 keys, BM25 function over the text, JSON metadata) in
  batches of the same size; records/s and the ratio (target >= 0.9x);
* **search**: dense k=10 and a filtered dense k=10 (``{"g": 3}``, 10 % selectivity), the two
  sides interleaved query by query (alternating who goes first) so machine load hits both
  alike; p50/p99 latency and the ratio (target <= 1.1x); recall@10 against exact NumPy
  neighbours for both;
* **scan**: ``store.scan`` vs ``query_iterator`` over the whole collection; rows/s and ratio.

gc stays enabled on both sides. Usage:
``python bench/bench_milvus.py [--quick] [--n N] [--queries Q] [--batch B]`` (``--quick``:
4000 records, 200 queries; finishes in well under a minute).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from strataml.dev.servers import stop
from strataml.vectors.batch import prepare_batch
from strataml_milvus import MilvusConfig
from strataml_milvus.batching import build_rows
from strataml_milvus.catalog import build_index_params, build_schema, describe_info
from strataml_milvus.devserver import start
from strataml_milvus.names import decode_key
from strataml_milvus.vectors import MilvusVectorStore

DIM = 128
K = 10
WORDS = [
    *("river", "stone", "market", "garden", "window", "paper"),
    *("cloud", "engine", "orange", "silver", "quokka"),
]


def clustered(n: int, n_queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Data and queries from one mixture of 50 Gaussian clusters in a 16-d subspace."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(50, 16)) * 2.0
    proj = rng.normal(size=(16, DIM)) / 4.0

    def draw(m: int) -> np.ndarray:
        z = centers[rng.integers(0, 50, m)] + rng.normal(size=(m, 16)) * 0.8
        x = z @ proj + 0.1 * rng.normal(size=(m, DIM))
        out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
        return out

    return draw(n), draw(n_queries)


def records(vectors: np.ndarray, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "id": f"doc-{i}",
            "vector": v,
            "text": " ".join(rng.choice(WORDS, size=8)),
            "metadata": {"g": int(i % 10), "score": float(rng.random()), "lang": "en"},
        }
        for i, v in enumerate(vectors)
    ]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def exact_top(data: np.ndarray, queries: np.ndarray, mask: np.ndarray | None) -> list[set[int]]:
    sims = queries @ data.T
    if mask is not None:
        sims[:, ~mask] = -np.inf
    return [set(np.argsort(-row)[:K].tolist()) for row in sims]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    n = args.n or (4_000 if args.quick else 20_000)
    n_queries = args.queries or (200 if args.quick else 500)
    data, queries = clustered(n, n_queries)
    recs = records(data)
    ids = [r["id"] for r in recs]

    tmp = Path(tempfile.mkdtemp(prefix="bench-milvus-"))
    handle = start(tmp)
    store = MilvusVectorStore(MilvusConfig(uri=handle.url, collection_prefix="bench_"))
    try:
        print(f"Milvus Lite, {n} x {DIM} cosine, batches of {args.batch}, {n_queries} queries")
        # the raw side: the same schema, rows built beforehand (as an application would)
        raw = store._client
        raw_name = f"raw_{uuid.uuid4().hex[:8]}"
        cfg = store.config
        schema = build_schema(
            raw,
            dim=DIM,
            description=describe_info(DIM, "cosine", False, {}, False),
            partition_key=False,
            text_max_bytes=cfg.text_max_bytes,
            analyzer=cfg.analyzer,
        )
        raw.create_collection(raw_name, schema=schema, consistency_level="Strong")
        index = build_index_params(
            raw,
            metric="cosine",
            index_type=cfg.index_type,
            index_params={},
            bm25_k1=cfg.bm25_k1,
            bm25_b=cfg.bm25_b,
        )
        raw.create_index(raw_name, index, sync=False)
        raw.load_collection(raw_name)
        batch = prepare_batch(recs, dim=DIM, multi_tenant=False)
        raw_rows = build_rows(batch, text_max_bytes=65_535, max_bytes=64 << 20).rows
        store.create_collection("docs", DIM, "cosine")

        # ---------------------------------------------------------------- write
        t_raw = t_ad = 0.0
        for start_i in range(0, n, args.batch):
            chunk = slice(start_i, start_i + args.batch)
            first_raw = (start_i // args.batch) % 2 == 0
            for side in ("raw", "ad") if first_raw else ("ad", "raw"):
                t0 = time.perf_counter()
                if side == "raw":
                    raw.upsert(raw_name, raw_rows[chunk])
                    t_raw += time.perf_counter() - t0
                else:
                    store.upsert("docs", recs[chunk])
                    t_ad += time.perf_counter() - t0
        assert store.count("docs") == n
        w_raw, w_ad = n / t_raw, n / t_ad
        print(
            f"write   raw {w_raw:9.0f} rec/s   adapter {w_ad:9.0f} rec/s   "
            f"ratio {w_ad / w_raw:.2f}x"
        )

        # ---------------------------------------------------------------- search
        mask = np.array([i % 10 == 3 for i in range(n)])
        truth = exact_top(data, queries, None)
        truth_f = exact_top(data, queries, mask)
        pos = {rid: i for i, rid in enumerate(ids)}
        fields = ["pk", "tkey", "text", "meta", "has"]
        params = {"metric_type": "COSINE", "params": {}}

        def raw_search(q: np.ndarray, flt: str) -> list[int]:
            res = raw.search(
                raw_name,
                data=[q],
                anns_field="vector",
                filter=flt,
                limit=K,
                output_fields=fields,
                search_params=params,
            )
            out = []
            for h in res[0]:  # read what an application reads: key, text, metadata
                entity = h["entity"]
                _ = (entity["text"], entity["meta"], entity["has"])
                out.append(pos[decode_key(h["id"])[1]])
            return out

        for label, flt_spec, flt_raw, want in (
            ("dense", None, "", truth),
            ("filter", {"g": 3}, 'meta["g"] == 3', truth_f),
        ):
            lat_raw: list[float] = []
            lat_ad: list[float] = []
            rec_raw: list[float] = []
            rec_ad: list[float] = []
            for qi, q in enumerate(queries):
                order: list[str] = ["raw", "ad"] if qi % 2 == 0 else ["ad", "raw"]
                for side in order:
                    t0 = time.perf_counter()
                    if side == "raw":
                        got = raw_search(q, flt_raw)
                        lat_raw.append(time.perf_counter() - t0)
                        rec_raw.append(len(set(got) & want[qi]) / K)
                    else:
                        hits = store.search("docs", q, k=K, filter=flt_spec)
                        lat_ad.append(time.perf_counter() - t0)
                        rec_ad.append(len({pos[h.id] for h in hits} & want[qi]) / K)
            p50r, p99r = pct(lat_raw, 50) * 1e3, pct(lat_raw, 99) * 1e3
            p50a, p99a = pct(lat_ad, 50) * 1e3, pct(lat_ad, 99) * 1e3
            print(
                f"{label:7s} raw p50 {p50r:6.2f} ms p99 {p99r:6.2f} ms recall@10 "
                f"{statistics.fmean(rec_raw):.3f} | adapter p50 {p50a:6.2f} ms p99 {p99a:6.2f} ms "
                f"recall@10 {statistics.fmean(rec_ad):.3f} | p50 ratio {p50a / p50r:.2f}x "
                f"p99 ratio {p99a / p99r:.2f}x"
            )

        # ---------------------------------------------------------------- keyword
        texts = [" ".join(np.random.default_rng(i).choice(WORDS, size=2)) for i in range(50)]
        kw_raw: list[float] = []
        kw_ad: list[float] = []
        for i, text in enumerate(texts):
            runs: list[tuple[str, Callable[[], Any]]] = [
                (
                    "raw",
                    lambda t=text: raw.search(
                        raw_name,
                        data=[t],
                        anns_field="sparse",
                        limit=K,
                        output_fields=fields,
                        search_params={"metric_type": "BM25", "params": {}},
                    ),
                ),
                ("ad", lambda t=text: store.search("docs", text=t, k=K)),
            ]
            for side, fn in runs if i % 2 == 0 else runs[::-1]:
                t0 = time.perf_counter()
                fn()
                (kw_raw if side == "raw" else kw_ad).append(time.perf_counter() - t0)
        print(
            f"keyword raw p50 {pct(kw_raw, 50) * 1e3:6.2f} ms | adapter p50 "
            f"{pct(kw_ad, 50) * 1e3:6.2f} ms | ratio {pct(kw_ad, 50) / pct(kw_raw, 50):.2f}x"
        )

        # ---------------------------------------------------------------- scan
        def scan_raw() -> int:
            it = raw.query_iterator(raw_name, batch_size=1000, filter="", output_fields=fields)
            count = 0
            while True:
                page = it.next()
                if not page:
                    it.close()
                    return count
                for row in page:  # read every field, as the adapter does
                    _ = (decode_key(row["pk"]), row["text"], row["meta"], row["has"])
                count += len(page)

        def scan_adapter() -> int:
            return sum(len(b) for b in store.scan("docs", batch_size=1000))

        raw_rates: list[float] = []
        ad_rates: list[float] = []
        for rep in range(3):  # alternating sides, so machine noise lands on both
            sides = [(scan_raw, raw_rates), (scan_adapter, ad_rates)]
            for fn, rates in sides if rep % 2 == 0 else sides[::-1]:
                t0 = time.perf_counter()
                got = fn()
                rates.append(got / (time.perf_counter() - t0))
                assert got == n
        s_raw, s_ad = statistics.median(raw_rates), statistics.median(ad_rates)
        print(
            f"scan    raw {s_raw:9.0f} rows/s  adapter {s_ad:9.0f} rows/s  "
            f"ratio {s_ad / s_raw:.2f}x  (median of 3 alternating)"
        )
        raw.drop_collection(raw_name)
        store.drop_collection("docs")
        if store._registry.exists():
            raw.drop_collection(store._registry.name)
    finally:
        store.close()
        stop(handle)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
