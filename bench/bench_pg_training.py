"""Training scans: strataml's PostgreSQL training source against raw binary COPY through psycopg.

Same server (started by this script), same table, same columns, same batch size, same run,
garbage collector on for every side; the sides alternate within each repetition so they see the
same machine noise. Every side reads ``COPY (SELECT <columns> FROM <the version's table>) TO
STDOUT (FORMAT BINARY)``:

* **strataml** -- ``source.scan(name, batch_size=B)``: Arrow ``RecordBatch`` objects with the
  written types (the store drains libpq itself and decodes column-wise with NumPy).
* **raw -> Arrow** -- what a careful hand-written psycopg loader does to get the same batches:
  ``copy.set_types([...])`` and ``copy.rows()`` (psycopg's C binary loaders), ``B`` rows at a
  time turned into a ``RecordBatch`` with ``pa.array`` per column. This is the baseline of the
  ratio: same input, same output.
* **raw -> rows** -- the same without building Arrow (Python tuples only): a floor no Arrow
  consumer can go below through psycopg's row API; reported as a second ratio.
* **raw bytes** -- ``for block in copy`` without decoding: the transport ceiling (info only).

Target: strataml rows/s >= 0.9x raw.

    python bench/bench_pg_training.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
from psycopg import sql

from strataml.dev.servers import start_postgres, stop
from strataml_postgres import PostgresConfig
from strataml_postgres.pool import PgDatabase
from strataml_postgres.training import PostgresTrainingSource

COPY_TYPES = [
    "int8",
    "int4",
    *["float8"] * 8,
    "text",
    "timestamp",
    "bool",
]


def make_table(n: int) -> pa.Table:
    """``n`` training rows: id, label, 8 float features, a short category, a time, a flag."""
    rng = np.random.default_rng(7)
    cols: dict[str, Any] = {
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "label": pa.array(rng.integers(0, 2, n, dtype=np.int32)),
    }
    for i in range(8):
        cols[f"f{i}"] = pa.array(rng.random(n))
    cats = np.array(["home", "search", "product", "cart", "checkout", "account"])
    cols["category"] = pa.array(cats[rng.integers(0, len(cats), n)])
    t0 = np.datetime64(dt.datetime(2024, 1, 1), "us")
    cols["ts"] = pa.array(t0 + rng.integers(0, 86_400_000_000 * 90, n).astype("timedelta64[us]"))
    cols["flag"] = pa.array(rng.random(n) < 0.3)
    return pa.table(cols)


def scan_strataml(source: PostgresTrainingSource, name: str, batch: int) -> int:
    rows = 0
    for b in source.scan(name, batch_size=batch):
        rows += b.num_rows
    return rows


def _copy(conn: psycopg.Connection[Any], table: str, names: list[str]) -> sql.Composed:
    cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT BINARY)").format(
        cols, sql.Identifier(*table.split("."))
    )


def scan_raw_arrow(url: str, table: str, names: list[str], batch: int) -> int:
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor().copy(_copy(conn, table, names)) as copy:
        copy.set_types(COPY_TYPES)
        pending: list[tuple[Any, ...]] = []
        for row in copy.rows():
            pending.append(row)
            if len(pending) == batch:
                cols = list(zip(*pending, strict=True))
                rb = pa.RecordBatch.from_arrays([pa.array(c) for c in cols], names=names)
                rows += rb.num_rows
                pending = []
        if pending:
            cols = list(zip(*pending, strict=True))
            rows += pa.RecordBatch.from_arrays([pa.array(c) for c in cols], names=names).num_rows
    return rows


def scan_raw_rows(url: str, table: str, names: list[str], batch: int) -> int:
    rows = 0
    with psycopg.connect(url) as conn, conn.cursor().copy(_copy(conn, table, names)) as copy:
        copy.set_types(COPY_TYPES)
        pending: list[tuple[Any, ...]] = []
        for row in copy.rows():
            pending.append(row)
            if len(pending) == batch:
                rows += len(pending)
                pending = []
        rows += len(pending)
    return rows


def scan_raw_bytes(url: str, table: str, names: list[str], batch: int) -> int:
    blocks = 0
    with psycopg.connect(url) as conn, conn.cursor().copy(_copy(conn, table, names)) as copy:
        for _ in copy:
            blocks += 1
    return blocks - 1  # the trailer


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    t = time.perf_counter()
    rows = fn()
    return time.perf_counter() - t, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100k rows, 3 repetitions")
    args = parser.parse_args()
    n = 100_000 if args.quick else 300_000
    reps = 3 if args.quick else 5
    batch = 65_536
    with tempfile.TemporaryDirectory(prefix="strataml-bench-pg-") as tmp:
        handle = start_postgres(tmp)
        try:
            config = PostgresConfig(url=handle.url, schema="bench")
            db = PgDatabase(config)
            source = PostgresTrainingSource(db)
            table = make_table(n)
            t = time.perf_counter()
            sid = source.write("train", table)
            write_s = time.perf_counter() - t
            with psycopg.connect(handle.url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT id FROM bench._strataml_training_versions WHERE name = 'train'"
                ).fetchone()
                assert row is not None
                physical = f"bench._strataml_ds_{int(row[0])}"
                # set hint bits / visibility once, so neither side pays for it in its first scan
                conn.execute(
                    sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(*physical.split(".")))
                )
            names = table.column_names
            sides: dict[str, Callable[[], int]] = {
                "strataml": lambda: scan_strataml(source, "train", batch),
                "raw -> Arrow": lambda: scan_raw_arrow(handle.url, physical, names, batch),
                "raw -> rows": lambda: scan_raw_rows(handle.url, physical, names, batch),
                "raw bytes": lambda: scan_raw_bytes(handle.url, physical, names, batch),
            }
            for fn in sides.values():  # warm the cache and every code path once
                fn()
            times: dict[str, list[float]] = {k: [] for k in sides}
            for _ in range(reps):
                for key, fn in sides.items():
                    seconds, rows = timed(fn)
                    assert rows == n, (key, rows)
                    times[key].append(seconds)
            rate = {k: n / statistics.median(v) for k, v in times.items()}
            print(
                f"PostgreSQL training scan, {n:,} rows x {len(names)} columns, batch {batch:,}, "
                f"{reps} repetitions (median)  [{sid}]"
            )
            for key in sides:
                best = n / min(times[key])
                print(f"  {key:<14} {rate[key]:>12,.0f} rows/s   (best {best:,.0f})")
            print(
                f"  ratio strataml / raw -> Arrow : {rate['strataml'] / rate['raw -> Arrow']:.2f}x"
                "   (target >= 0.9x)"
            )
            print(
                f"  ratio strataml / raw -> rows  : {rate['strataml'] / rate['raw -> rows']:.2f}x"
            )
            print(f"  strataml / raw bytes (ceiling): {rate['strataml'] / rate['raw bytes']:.2f}x")
            print(f"  write (info): {n / write_s:,.0f} rows/s through binary COPY")
            db.close()
        finally:
            stop(handle)


if __name__ == "__main__":
    main()
