"""Weaviate vector adapter vs raw weaviate-client, on the same server and data, same run.

Needs a Weaviate server: ``STRATAML_TEST_WEAVIATE_URL=http://127.0.0.1:8080 python
bench/bench_weaviate.py [--quick]`` (``STRATAML_TEST_WEAVIATE_GRPC_PORT``, default 50051; no
server can run on the development machine, so without the variable the script says so and
exits). Prints, for the adapter and for weaviate-client doing the same work (same objects,
properties, batch sizes and queries):

* write throughput (records/s: ``upsert`` vs ``data.insert_many`` of the same objects),
* dense / filtered / hybrid search latency (p50/p99 ms, k=10, on the adapter's collection),
* scan throughput (rows/s: ``scan`` vs the client's cursor iterator),

each with the adapter/raw ratio (throughput: higher is better, latency: lower is better).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

ENV = "STRATAML_TEST_WEAVIATE_URL"
DIM = 128


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _latency(label: str, adapter: Callable[[], Any], raw: Callable[[], Any], runs: int) -> None:
    lat_a: list[float] = []
    lat_r: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        raw()
        lat_r.append(time.perf_counter() - start)
        start = time.perf_counter()
        adapter()
        lat_a.append(time.perf_counter() - start)
    for q, name in ((0.5, "p50"), (0.99, "p99")):
        a, r = _pct(lat_a, q) * 1e3, _pct(lat_r, q) * 1e3
        print(f"{label:<8} {name} ms  adapter {a:9.3f}  raw {r:9.3f}  ratio {a / r:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5k vectors instead of 50k")
    args = parser.parse_args()
    url = os.environ.get(ENV, "").strip()
    if not url:
        print(f"bench_weaviate: skipped -- set {ENV}=http://HOST:8080 to run it against a server")
        return 0

    from weaviate.classes.data import DataObject
    from weaviate.classes.query import Filter, HybridFusion, MetadataQuery

    from strataml.filters import FieldType
    from strataml_weaviate.codec import RETURN_PROPERTIES, object_properties
    from strataml_weaviate.config import WeaviateConfig
    from strataml_weaviate.names import object_uuid
    from strataml_weaviate.schema import VECTOR, CollectionMeta, IndexSettings, create_arguments
    from strataml_weaviate.vectors import WeaviateVectorStore, make_client

    n = 5_000 if args.quick else 50_000
    batch = 500
    runs = 200 if args.quick else 1000
    grpc_port = int(os.environ.get("STRATAML_TEST_WEAVIATE_GRPC_PORT", "50051"))
    prefix = f"B{uuid.uuid4().hex[:10]}"
    config = WeaviateConfig(type="weaviate", url=url, grpc_port=grpc_port, collection_prefix=prefix)
    store = WeaviateVectorStore.from_config(config)
    client = make_client(config)
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    words = ["river", "stone", "market", "garden", "window", "paper", "cloud", "engine"]
    records = [
        {
            "id": f"d{i}",
            "vector": vectors[i],
            "text": " ".join(rng.choice(words, size=8)),
            "metadata": {"g": int(i % 10), "lang": ["en", "de", "fr"][i % 3]},
        }
        for i in range(n)
    ]
    fields = {"g": FieldType.INT, "lang": FieldType.STRING}
    print(f"Weaviate vectors: {n} x {DIM}, batches of {batch}")
    try:
        info = store.create_collection("bench", DIM, "cosine")
        raw_meta = CollectionMeta(
            name="raw",
            cls=f"{prefix}_raw",
            dim=DIM,
            metric="cosine",
            multi_tenant=False,
            fields=fields,
        )
        client.collections.create(**create_arguments(raw_meta, IndexSettings()))
        raw = client.collections.use(raw_meta.cls)
        objects = [
            DataObject(
                properties=object_properties(r["id"], r["text"], r["metadata"], fields),
                uuid=object_uuid(r["id"]),
                vector={VECTOR: r["vector"].tolist()},
            )
            for r in records
        ]

        start = time.perf_counter()
        for i in range(0, n, batch):
            raw.data.insert_many(objects[i : i + batch])
        w_raw = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(0, n, batch):
            store.upsert(info.name, records[i : i + batch])
        w_adapter = n / (time.perf_counter() - start)
        print(
            f"write    records/s  adapter {w_adapter:9,.0f}  raw {w_raw:9,.0f}  "
            f"ratio {w_adapter / w_raw:.2f}x"
        )

        target = client.collections.use(f"{prefix}_bench")
        queries = rng.normal(size=(64, DIM)).astype(np.float32)
        qi = iter(range(10**9))

        def q() -> list[float]:
            return [float(x) for x in queries[next(qi) % len(queries)]]

        _latency(
            "dense",
            lambda: store.search("bench", q(), k=10),
            lambda: target.query.near_vector(
                near_vector=q(),
                target_vector=VECTOR,
                limit=10,
                return_metadata=MetadataQuery(distance=True),
                return_properties=RETURN_PROPERTIES,
            ),
            runs,
        )
        _latency(
            "filtered",
            lambda: store.search("bench", q(), k=10, filter={"g": 3, "lang": "de"}),
            lambda: target.query.near_vector(
                near_vector=q(),
                target_vector=VECTOR,
                limit=10,
                filters=Filter.all_of(
                    [Filter.by_property("m_g").equal(3.0), Filter.by_property("m_lang").equal("de")]
                ),
                return_metadata=MetadataQuery(distance=True),
                return_properties=RETURN_PROPERTIES,
            ),
            runs,
        )
        _latency(
            "hybrid",
            lambda: store.search("bench", q(), text="garden engine", k=10, alpha=0.5),
            lambda: target.query.hybrid(
                query="garden engine",
                vector=q(),
                alpha=0.5,
                target_vector=VECTOR,
                fusion_type=HybridFusion.RELATIVE_SCORE,
                query_properties=["sm_text"],
                limit=10,
                return_metadata=MetadataQuery(score=True),
                return_properties=RETURN_PROPERTIES,
            ),
            runs,
        )

        start = time.perf_counter()
        raw_rows = sum(
            1 for _ in target.iterator(return_properties=RETURN_PROPERTIES, cache_size=1000)
        )
        s_raw = raw_rows / (time.perf_counter() - start)
        start = time.perf_counter()
        rows = sum(len(b) for b in store.scan("bench", batch_size=1000))
        s_adapter = rows / (time.perf_counter() - start)
        print(
            f"scan     rows/s     adapter {s_adapter:9,.0f}  raw {s_raw:9,.0f}  "
            f"ratio {s_adapter / s_raw:.2f}x"
        )
    finally:
        for name in store.collections():
            store.drop_collection(name)
        client.collections.delete(f"{prefix}_raw")
        store.close()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
