"""Ingest throughput: strataml's SQLite store against raw ``sqlite3`` doing the same work.

Both sides write the same clickstream events (same JSON bytes, produced by orjson), with the
event time parsed from an ISO-8601 field and an idempotency key, into the same tables and
indexes (strataml's schema), with the same pragmas and the same transaction sizes, in the same
run, with the garbage collector on for both. Raw sqlite3 does the minimum a hand-written
loader must: serialise, parse the event time, ``executemany`` in ``BEGIN IMMEDIATE``/``COMMIT``;
its reads return ``(seq, key, ts, ingested_at, data)`` tuples with datetimes and decoded JSON.
strataml adds validation (mapping, NaN/inf, size limit, names, keys), the stream lookup, and
builds ``IngestedRecord`` models for its reads.

    python bench/bench_ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from strataml.local.sqlite_ingest import PRAGMAS, SCHEMA, SQLiteIngestStore

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NAIVE_EPOCH = dt.datetime(1970, 1, 1)
US = dt.timedelta(microseconds=1)
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


# ---------------------------------------------------------------------------------- raw side
class Raw:
    """What a hand-written sqlite3 loader does, on strataml's schema and pragmas."""

    INSERT = (
        "INSERT INTO ingest_records (stream_id, idem_key, ts, ingested_us, data) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
    )

    def __init__(self, path: Path) -> None:
        self.con = sqlite3.connect(path, timeout=10, isolation_level=None)
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute("PRAGMA busy_timeout = 10000")
        self.con.execute("PRAGMA synchronous = NORMAL")
        for pragma in PRAGMAS:
            self.con.execute(pragma)
        for statement in SCHEMA.split(";"):
            if statement.strip():
                self.con.execute(statement)
        self.con.execute("INSERT INTO ingest_streams (id, name, created_us) VALUES (1, 'ev', 0)")

    @staticmethod
    def _row(rec: dict[str, Any], now: int) -> tuple[Any, ...]:
        at = dt.datetime.fromisoformat(rec["ts"].replace("Z", "+00:00"))
        ts = (at - EPOCH) // dt.timedelta(microseconds=1)
        return (1, rec["event_id"], ts, now, orjson.dumps(rec).decode())

    def write_batch(self, records: list[dict[str, Any]]) -> None:
        now = time.time_ns() // 1000
        rows = [self._row(r, now) for r in records]
        self.con.execute("BEGIN IMMEDIATE")
        self.con.executemany(self.INSERT, rows)
        self.con.execute("COMMIT")

    def write(self, rec: dict[str, Any]) -> None:
        row = self._row(rec, time.time_ns() // 1000)
        self.con.execute("BEGIN IMMEDIATE")
        self.con.execute(self.INSERT, row)
        self.con.execute("COMMIT")

    def read_all(self, limit: int) -> int:
        n, after = 0, 0
        while True:
            rows = self.con.execute(
                "SELECT seq, idem_key, ts, ingested_us, data FROM ingest_records "
                "WHERE stream_id = 1 AND seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
            if not rows:
                return n
            docs = [
                (seq, key, NAIVE_EPOCH + US * ts, NAIVE_EPOCH + US * ing, orjson.loads(data))
                for seq, key, ts, ing, data in rows
            ]
            n += len(docs)
            after = rows[-1][0]

    def close(self) -> None:
        self.con.close()


def read_strataml(store: SQLiteIngestStore, limit: int) -> int:
    n, cursor = 0, None
    while True:
        page = store.read("ev", after=cursor, limit=limit)
        if not page.records:
            return n
        n += len(page.records)
        cursor = page.cursor


# ------------------------------------------------------------------------------------ timing
def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def latencies(fn: Callable[[dict[str, Any]], Any], records: list[dict[str, Any]]) -> list[float]:
    out = []
    for rec in records:
        t = time.perf_counter()
        fn(rec)
        out.append(time.perf_counter() - t)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (~10 s)")
    args = parser.parse_args()
    n_batch = 20_000 if args.quick else 200_000
    batch = 1000
    n_single = 1_000 if args.quick else 5_000
    reps = 1 if args.quick else 3

    data = events(n_batch)
    singles = events(n_single, seed=2)
    size = statistics.mean(len(orjson.dumps(r)) for r in data[:1000])
    print(f"sqlite {sqlite3.sqlite_version}; {n_batch:,} events of ~{size:.0f} B JSON")

    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    ours: list[float] = []
    raw: list[float] = []
    for rep in range(reps):  # interleaved, a fresh database each time
        store = SQLiteIngestStore(tmp / f"s{rep}.sqlite")
        ours.append(
            timed(
                lambda: [
                    store.write_batch(
                        "ev", data[i : i + batch], key_field="event_id", time_field="ts"
                    )
                    for i in range(0, n_batch, batch)
                ]
            )
        )
        assert store.count("ev") == n_batch
        if rep < reps - 1:
            store.close()
        baseline = Raw(tmp / f"r{rep}.sqlite")
        raw.append(
            timed(
                lambda: [
                    baseline.write_batch(data[i : i + batch]) for i in range(0, n_batch, batch)
                ]
            )
        )
        if rep < reps - 1:
            baseline.close()

    t_ours, t_raw = statistics.median(ours), statistics.median(raw)
    print(f"\nbatched writes ({batch:,} records per transaction, median of {reps})")
    print(f"  strataml   {n_batch / t_ours:>10,.0f} records/s")
    print(f"  raw sqlite3{n_batch / t_raw:>10,.0f} records/s")
    print(f"  ratio strataml/raw = {t_raw / t_ours:.2f}")

    # retrying every batch: all duplicates
    t_dup = timed(
        lambda: [
            store.write_batch("ev", data[i : i + batch], key_field="event_id", time_field="ts")
            for i in range(0, n_batch, batch)
        ]
    )
    t_dup_raw = timed(
        lambda: [baseline.write_batch(data[i : i + batch]) for i in range(0, n_batch, batch)]
    )
    print("\nretried batches (every record a duplicate)")
    print(f"  strataml   {n_batch / t_dup:>10,.0f} records/s")
    print(f"  raw sqlite3{n_batch / t_dup_raw:>10,.0f} records/s")
    print(f"  ratio strataml/raw = {t_dup_raw / t_dup:.2f}")

    # reads: page through everything
    limit = 5000
    t_read = timed(lambda: read_strataml(store, limit))
    t_read_raw = timed(lambda: baseline.read_all(limit))
    print(f"\nincremental reads (pages of {limit:,}; raw: SELECT, datetimes, orjson.loads)")
    print(f"  strataml   {n_batch / t_read:>10,.0f} records/s")
    print(f"  raw sqlite3{n_batch / t_read_raw:>10,.0f} records/s")
    print(f"  ratio strataml/raw = {t_read_raw / t_read:.2f}")

    # single-record writes, one transaction each
    lat = latencies(lambda r: store.write("single", r, key=r["event_id"], time_field="ts"), singles)
    lat_raw = latencies(baseline.write, singles)
    print(f"\nsingle writes ({n_single:,}, one transaction each)")
    for name, values in (("strataml   ", lat), ("raw sqlite3", lat_raw)):
        print(
            f"  {name}{len(values) / sum(values):>10,.0f} records/s   "
            f"p50 {pct(values, 0.5) * 1e6:6.1f} us   p99 {pct(values, 0.99) * 1e6:6.1f} us"
        )
    print(f"  ratio strataml/raw = {sum(lat_raw) / sum(lat):.2f}")
    store.close()
    baseline.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
