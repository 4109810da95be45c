"""Training scans: ``DuckDBTrainingSource.scan`` vs raw DuckDB on the same table, same run.

5M rows x 10 float64 columns (``--quick``: 500k), batch size 65,536. Each measurement is the
median of 3 runs; raw and strataml runs alternate so machine noise hits both alike. Both sides
consume the stream the same way (count the rows of every ``pyarrow.RecordBatch``), gc enabled.

    /work/venv/bin/python bench/bench_training.py [--quick]

Raw baselines read the version's physical table directly:

* ``raw sql``: ``con.sql("SELECT c0..c9 FROM t").to_arrow_reader(batch_size)`` -- DuckDB's
  zero-copy Arrow stream (the fastest path; ratios are against it);
* ``raw execute``: ``con.execute("SELECT ...").to_arrow_reader(batch_size)`` -- the DB-API path
  (``fetch_record_batch`` in DuckDB < 2), shown for reference.

Also: writing a 1M-row in-memory table (``CREATE TABLE AS`` vs ``write``), a 4-shard scan
(all shards, total rows/s) against raw ``WHERE _row % 4 = i``, a filtered scan against the
equivalent raw ``WHERE``, and a hash-sharded SQL source.
Target: strataml >= 0.9x raw.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from strataml.local.duckdb_engine import DuckDBEngine
from strataml.local.duckdb_training import DuckDBTrainingSource

N_COLS = 10
BATCH = 65_536
RUNS = 9


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_batches(rows: int, chunk: int = 500_000, seed: int = 11) -> Iterator[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        cols = [pa.array(rng.standard_normal(n)) for _ in range(N_COLS)]
        yield pa.RecordBatch.from_arrays(cols, names=[f"c{i}" for i in range(N_COLS)])


def consume(batches: Iterable[pa.RecordBatch]) -> int:
    return sum(b.num_rows for b in batches)


def timed(fn: Callable[[], int]) -> tuple[float, float, int]:
    """Wall seconds, process CPU seconds (all threads) and the rows ``fn`` returned."""
    wall, cpu = time.perf_counter(), time.process_time()
    rows = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, rows


def compare(label: str, sides: dict[str, Callable[[], int]]) -> dict[str, float]:
    """Alternate the sides RUNS times; print and return each side's median rows/s (wall).

    CPU seconds are printed too: on a shared machine they are steadier than wall time.
    """
    walls: dict[str, list[float]] = {k: [] for k in sides}
    cpus: dict[str, list[float]] = {k: [] for k in sides}
    rows: dict[str, int] = {}
    for _ in range(RUNS):
        for key, fn in sides.items():
            wall, cpu, n = timed(fn)
            walls[key].append(wall)
            cpus[key].append(cpu)
            rows[key] = n
    counts = set(rows.values())
    assert len(counts) == 1, f"{label}: sides returned different row counts {rows}"
    rates = {k: rows[k] / statistics.median(v) for k, v in walls.items()}
    print(f"\n{label} ({counts.pop():,} rows, median of {RUNS})")
    for key, rate in rates.items():
        print(
            f"  {key:<28} {rate / 1e6:8.2f} M rows/s   wall {statistics.median(walls[key]):.3f} s"
            f"   cpu {statistics.median(cpus[key]):.3f} s"
        )
    return rates


def ratio(label: str, ours: float, raw: float) -> None:
    print(f"  ratio {label:<22} {ours / raw:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500k rows instead of 5M")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args()
    rows = args.rows or (500_000 if args.quick else 5_000_000)
    cols = ", ".join(f'"c{i}"' for i in range(N_COLS))

    with tempfile.TemporaryDirectory() as tmp:
        engine = DuckDBEngine(Path(tmp) / "bench.duckdb")
        source = DuckDBTrainingSource(engine)
        raw_con = engine.cursor().cursor()
        print(f"rows={rows:,} cols={N_COLS} float64 batch_size={BATCH:,} duckdb threads=default")
        sid = source.write("bench", make_batches(rows))  # streamed: bounded memory

        write_rows = min(rows, 1_000_000)
        data = pa.Table.from_batches(list(make_batches(write_rows, seed=5)))

        def raw_write() -> int:
            raw_con.register("input_data", data)
            raw_con.execute("CREATE OR REPLACE TABLE raw_copy AS SELECT * FROM input_data")
            raw_con.unregister("input_data")
            return write_rows

        def strataml_write() -> int:
            source.write("written", data)
            return write_rows

        writes = compare(
            f"write an in-memory table ({sid} was streamed in batches of 500k)",
            {"raw CREATE TABLE AS": raw_write, "strataml write": strataml_write},
        )
        ratio("write / raw", writes["strataml write"], writes["raw CREATE TABLE AS"])
        raw_con.execute("DROP TABLE raw_copy")
        source.drop("written")
        table = '"_strataml_training"."_strataml_bench__v1"'

        def raw_sql(where: str = "TRUE", params: list[object] | None = None) -> int:
            rel = raw_con.sql(f"SELECT {cols} FROM {table} WHERE {where}", params=params)
            return consume(rel.to_arrow_reader(BATCH))

        def raw_execute() -> int:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # DuckDB warns this path copies
                result = raw_con.execute(f"SELECT {cols} FROM {table}")
                return consume(result.to_arrow_reader(BATCH))

        rss_before = peak_rss_mb()
        full = compare(
            "full scan",
            {
                "raw sql": raw_sql,
                "raw execute": raw_execute,
                "strataml scan": lambda: consume(source.scan("bench", batch_size=BATCH)),
            },
        )
        ratio("scan / raw sql", full["strataml scan"], full["raw sql"])
        ratio("scan / raw execute", full["strataml scan"], full["raw execute"])

        sharded = compare(
            "4 shards (all shards, sequential)",
            {
                "raw _row % 4": lambda: sum(raw_sql('"_row" % 4 = ?', [i]) for i in range(4)),
                "strataml shard=(i, 4)": lambda: sum(
                    consume(source.scan("bench", shard=(i, 4), batch_size=BATCH)) for i in range(4)
                ),
                "strataml SQL source": lambda: sum(
                    consume(
                        source.scan("SELECT * FROM datasets.bench", shard=(i, 4), batch_size=BATCH)
                    )
                    for i in range(4)
                ),
            },
        )
        ratio("shards / raw", sharded["strataml shard=(i, 4)"], sharded["raw _row % 4"])
        ratio("SQL shards / raw", sharded["strataml SQL source"], sharded["raw _row % 4"])

        filtered = compare(
            "filter c0 > 0.5 (~31% of rows)",
            {
                "raw WHERE c0 > 0.5": lambda: raw_sql('"c0" > ?', [0.5]),
                "strataml filter": lambda: consume(
                    source.scan("bench", filter={"c0": {"$gt": 0.5}}, batch_size=BATCH)
                ),
            },
        )
        ratio("filter / raw", filtered["strataml filter"], filtered["raw WHERE c0 > 0.5"])
        print(
            f"\npeak RSS: {peak_rss_mb():.0f} MB (after write {rss_before:.0f} MB; "
            f"table ~{rows * N_COLS * 8 / 2**20:.0f} MB)"
        )
        raw_con.close()
        source.close()
        engine.close()


if __name__ == "__main__":
    main()
