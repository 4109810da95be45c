"""Ingest throughput: strataml's PostgreSQL ingest store against raw COPY through psycopg.

Same server (started by this script), same records, same target table and indexes (the store's
own ``_strataml_ingest_records``: unique ``(stream, key)``, ``(stream, seq)``, ``(stream, ts)``),
same batch size, one transaction per batch on both sides, same run, garbage collector on for
both; the sides alternate within each repetition and write to fresh streams, so they see the
same table size and machine noise.

* **strataml** -- ``store.write_batch(stream, batch, key_field="event_id", time_field="ts")``:
  validates every record (mapping, NaN/infinity, size limit, key, ISO event time), serialises it
  with orjson, takes the stream's writer lock, writes the batch with one binary ``COPY``.
* **raw COPY** -- what a hand-written loader must do at least for the same rows: parse the ISO
  event time, serialise the record with orjson, ``copy.write_row((stream, key, ts, ingested_at,
  json))`` with psycopg's C row formatter. Both the text and the binary COPY formats are
  measured and the faster one is the baseline of the ratio.

Target: strataml records/s >= 0.8x raw COPY.

    python bench/bench_pg_ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from strataml.dev.servers import start_postgres, stop
from strataml_postgres import PostgresConfig
from strataml_postgres.ingest import RECORDS, PostgresIngestStore
from strataml_postgres.pool import PgDatabase

PAGES = ("/", "/search", "/product/{}", "/cart", "/checkout", "/account")
TYPES = ("view", "click", "add_to_cart", "purchase", "scroll")


def events(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` small clickstream events (~250 bytes of JSON each)."""
    rng = random.Random(seed)
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    out = []
    for i in range(n):
        at = t0 + dt.timedelta(milliseconds=i * 37 + rng.randrange(1000))
        out.append(
            {
                "event_id": f"evt-{seed}-{i:09d}",
                "ts": at.isoformat().replace("+00:00", "Z"),
                "user_id": rng.randrange(100_000),
                "session": f"s-{rng.randrange(1_000_000):06d}",
                "type": rng.choice(TYPES),
                "page": rng.choice(PAGES).format(rng.randrange(5000)),
                "referrer": None if rng.random() < 0.6 else "https://example.com/",
                "props": {"x": rng.randrange(1920), "y": rng.randrange(1080), "ab": "B"},
                "price": round(rng.random() * 100, 2),
            }
        )
    return out


def write_strataml(store: PostgresIngestStore, stream: str, batches: list[list[Any]]) -> int:
    written = 0
    for batch in batches:
        written += store.write_batch(stream, batch, key_field="event_id", time_field="ts").written
    return written


def write_raw(url: str, stream: str, batches: list[list[Any]], *, binary: bool) -> int:
    fmt = " (FORMAT BINARY)" if binary else ""
    statement = f"COPY bench.{RECORDS} (stream, key, ts, ingested_at, data) FROM STDIN{fmt}"
    written = 0
    with psycopg.connect(url) as conn:
        for batch in batches:
            now = dt.datetime.now(dt.UTC)
            with conn.transaction(), conn.cursor().copy(statement) as copy:
                if binary:
                    copy.set_types(["text", "text", "timestamptz", "timestamptz", "jsonb"])
                for rec in batch:
                    ts = dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00"))
                    data = orjson.dumps(rec)
                    copy.write_row(
                        (
                            stream,
                            rec["event_id"],
                            ts,
                            now,
                            Jsonb(rec, dumps=_raw(data)) if binary else data.decode(),
                        )
                    )
            written += len(batch)
    return written


def _raw(data: bytes) -> Callable[[Any], str]:
    """A Jsonb dumper returning already-serialised JSON (no second serialisation)."""
    text = data.decode()
    return lambda _: text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40k records, 3 repetitions")
    args = parser.parse_args()
    n = 40_000 if args.quick else 100_000
    reps = 3 if args.quick else 5
    size = 5_000
    records = events(n)
    batches = [records[i : i + size] for i in range(0, n, size)]
    with tempfile.TemporaryDirectory(prefix="strataml-bench-pg-") as tmp:
        handle = start_postgres(tmp)
        try:
            db = PgDatabase(PostgresConfig(url=handle.url, schema="bench"))
            store = PostgresIngestStore(db)
            store.write("warmup", {"v": 1})  # creates the tables
            sides: dict[str, Callable[[str], int]] = {
                "strataml": lambda s: write_strataml(store, s, batches),
                "raw COPY text": lambda s: write_raw(handle.url, s, batches, binary=False),
                "raw COPY binary": lambda s: write_raw(handle.url, s, batches, binary=True),
            }
            times: dict[str, list[float]] = {k: [] for k in sides}
            for rep in range(reps + 1):
                for k, (key, fn) in enumerate(sides.items()):
                    t = time.perf_counter()
                    written = fn(f"s{rep}_{k}")
                    seconds = time.perf_counter() - t
                    assert written == n, (key, written)
                    if rep:  # the first round warms the server and every code path
                        times[key].append(seconds)
            t = time.perf_counter()
            retried = write_strataml(store, f"s{reps}_0", batches[:2])
            retry_s = time.perf_counter() - t
            assert retried == 0
            rate = {k: n / statistics.median(v) for k, v in times.items()}
            raw_key = max(("raw COPY text", "raw COPY binary"), key=lambda k: rate[k])
            print(
                f"PostgreSQL ingest, {n:,} records (~250 B of JSON each) in batches of "
                f"{size:,}, {reps} repetitions (median)"
            )
            for key in sides:
                print(
                    f"  {key:<16} {rate[key]:>10,.0f} records/s   (best {n / min(times[key]):,.0f})"
                )
            print(
                f"  ratio strataml / {raw_key}: {rate['strataml'] / rate[raw_key]:.2f}x"
                "   (target >= 0.8x)"
            )
            print(f"  retried batches (all duplicates, info): {2 * size / retry_s:,.0f} records/s")
            db.close()
        finally:
            stop(handle)


if __name__ == "__main__":
    main()
