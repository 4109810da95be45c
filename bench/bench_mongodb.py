"""MongoDB ingest adapter vs raw pymongo, on the same server and data, in the same run.

Needs a MongoDB server: ``STRATAML_TEST_MONGODB_URL=mongodb://127.0.0.1:27017 python
bench/bench_mongodb.py [--quick]`` (no server can run on the development machine; without the
variable the script says so and exits). Prints, for the adapter and for pymongo doing the same
work (same documents, same batch sizes, same indexes, a sequence counter document per stream):

* write throughput (records/s, ``write_batch`` of 1,000 vs ``find_one_and_update`` +
  ``insert_many(ordered=False)``),
* scan throughput (rows/s, paging a stream 1,000 records at a time by ``seq``),
* tail-read latency (p50/p99 of a 10-record page after a random cursor),

each with the adapter/raw ratio (throughput: higher is better, latency: lower is better).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

ENV = "STRATAML_TEST_MONGODB_URL"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _records(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    actions = ["view", "click", "cart", "buy"]
    return [
        {
            "id": f"e{i}",
            "user": rng.randrange(10_000),
            "action": rng.choice(actions),
            "at": 1_700_000_000 + i,
            "props": {"price": round(rng.random() * 100, 2), "tags": ["a", "b"][: i % 3]},
        }
        for i in range(n)
    ]


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k records instead of 200k")
    args = parser.parse_args()
    url = os.environ.get(ENV, "").strip()
    if not url:
        print(
            f"bench_mongodb: skipped -- set {ENV}=mongodb://HOST:27017 to run it against a server"
        )
        return 0

    from bson.int64 import Int64
    from pymongo import MongoClient, ReturnDocument

    from strataml_mongodb.config import MongoDBConfig
    from strataml_mongodb.ingest import MongoIngestStore
    from strataml_mongodb.queries import INDEXES

    n = 20_000 if args.quick else 200_000
    batch = 1000
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    config = MongoDBConfig(type="mongodb", url=url, collection_prefix=prefix)
    store = MongoIngestStore.from_config(config)
    client: MongoClient[dict[str, Any]] = MongoClient(url)
    db = client[config.database]
    raw = db[f"{prefix}_raw"]
    counters = db[f"{prefix}_raw_streams"]
    for name, keys, options in INDEXES:
        raw.create_index(keys, name=name, **options)
    records = _records(n)
    print(f"MongoDB ingest: {n} records, batches of {batch}, protocol={store.mode}")
    try:
        # ---------------------------------------------------------------- writes
        def adapter_write() -> None:
            for i in range(0, n, batch):
                store.write_batch("events", records[i : i + batch], key_field="id", time_field="at")

        def raw_write() -> None:
            now_us = time.time_ns() // 1000
            for i in range(0, n, batch):
                chunk = records[i : i + batch]
                state = counters.find_one_and_update(
                    {"_id": "events"},
                    {"$inc": {"next_seq": len(chunk)}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                assert state is not None
                lo = int(state["next_seq"]) - len(chunk) + 1
                raw.insert_many(
                    [
                        {
                            "seq": Int64(lo + j),
                            "stream": "events",
                            "ts_us": Int64(r["at"] * 1_000_000),
                            "ingested_us": Int64(now_us),
                            "key": r["id"],
                            "data": r,
                        }
                        for j, r in enumerate(chunk)
                    ],
                    ordered=False,
                )

        t_raw = _timed(raw_write)
        t_adapter = _timed(adapter_write)
        w_raw, w_adapter = n / t_raw, n / t_adapter
        print(
            f"write  records/s  adapter {w_adapter:10,.0f}  raw {w_raw:10,.0f}  "
            f"ratio {w_adapter / w_raw:.2f}x"
        )

        # ------------------------------------------------------------------ scans
        def adapter_scan() -> int:
            seen, cursor = 0, None
            while True:
                page = store.read("events", after=cursor, limit=batch)
                if not page.records:
                    return seen
                seen += len(page.records)
                cursor = page.cursor

        def raw_scan() -> int:
            seen, after = 0, 0
            while True:
                rows = list(
                    raw.find({"stream": "events", "seq": {"$gt": after}})
                    .sort("seq", 1)
                    .limit(batch)
                )
                if not rows:
                    return seen
                seen += len(rows)
                after = int(rows[-1]["seq"])

        t_raw = _timed(raw_scan)
        t_adapter = _timed(adapter_scan)
        s_raw, s_adapter = n / t_raw, n / t_adapter
        print(
            f"scan   rows/s     adapter {s_adapter:10,.0f}  raw {s_raw:10,.0f}  "
            f"ratio {s_adapter / s_raw:.2f}x"
        )

        # ------------------------------------------------------------ tail reads
        rng = random.Random(3)
        cursors = [rng.randrange(1, n) for _ in range(300 if args.quick else 2000)]
        lat_a: list[float] = []
        lat_r: list[float] = []
        for c in cursors:
            start = time.perf_counter()
            list(raw.find({"stream": "events", "seq": {"$gt": c}}).sort("seq", 1).limit(10))
            lat_r.append(time.perf_counter() - start)
            start = time.perf_counter()
            store.read("events", after=str(c), limit=10)
            lat_a.append(time.perf_counter() - start)
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            a, r = _pct(lat_a, q) * 1e3, _pct(lat_r, q) * 1e3
            print(f"read   {label} ms     adapter {a:10.3f}  raw {r:10.3f}  ratio {a / r:.2f}x")
        print(f"(mean tail read: adapter {statistics.mean(lat_a) * 1e3:.3f} ms)")
    finally:
        store.drop("events")
        store.close()
        for suffix in ("streams", "records", "raw", "raw_streams"):
            db.drop_collection(f"{prefix}_{suffix}")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
