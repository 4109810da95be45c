"""Feature statistics: strataml's one-pass ``compute_stats`` vs full materialization.

Data: 20 features (12 float64 with 2 % nulls and a few NaNs, 4 int64, 3 strings of 5 / 1,000 /
50,000 distinct values, 1 boolean), 100k and 1M rows (``--quick``: 100k and 300k), streamed
as record batches of 65,536 rows cycled from a pool of 4 pre-generated batches (generation
is not timed; the pool is the same for both sides).

* ``stream``: ``compute_stats`` over the batches: counts, moments, min/max, 7 quantiles
  (KLL), 10-bin histogram, top-20 + distinct estimate; one pass, nothing concatenated.
* ``materialize``: the batches concatenated into one table (copied, as a fetch to Arrow
  would), then pyarrow.compute / numpy on whole columns: ``min_max``, ``mean``, ``stddev``,
  exact ``quantile``, a 10-bin histogram (``np.searchsorted`` on edges from the first 10k
  values), ``value_counts`` (exact top-20 and distinct count).

Each side runs in its own process (so peak RSS is its own): rows/s by wall clock and by CPU
time (the fairer figure on a shared machine; both sides may use several threads), peak RSS and
peak RSS above the process's RSS before the run (imports + data pool). Streaming memory
should stay flat from 100k to 1M rows; materialization grows with the data.

    /work/venv/bin/python bench/bench_stats.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BATCH = 65_536
POOL = 4
QS = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_pool(seed: int = 7) -> list[pa.RecordBatch]:
    rng = np.random.default_rng(seed)
    pool = []
    ids = np.array([f"user-{i:06d}" for i in range(50_000)])
    for _ in range(POOL):
        cols: dict[str, pa.Array] = {}
        for i in range(12):
            x = rng.normal(i, 1 + i, BATCH)
            x[rng.random(BATCH) < 0.001] = np.nan
            cols[f"f{i}"] = pa.array(x, mask=rng.random(BATCH) < 0.02)
        for i in range(4):
            cols[f"i{i}"] = pa.array(rng.integers(0, 10 ** (i + 1), BATCH))
        cols["country"] = pa.array(rng.choice(["us", "de", "fr", "jp", "br"], BATCH))
        cols["sku"] = pa.array(rng.choice(ids[:1000], BATCH))
        cols["user"] = pa.array(rng.choice(ids, BATCH))
        cols["flag"] = pa.array(rng.random(BATCH) < 0.3)
        pool.append(pa.RecordBatch.from_pydict(cols))
    return pool


def stream(pool: list[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    done = 0
    i = 0
    while done < rows:
        batch = pool[i % POOL]
        take = min(batch.num_rows, rows - done)
        yield batch.slice(0, take)
        done += take
        i += 1


def run_stream(pool: list[pa.RecordBatch], rows: int) -> None:
    from strataml.features.stats import compute_stats

    stats = compute_stats(
        pa.RecordBatchReader.from_batches(pool[0].schema, stream(pool, rows)), top_k=20
    )
    assert stats.row_count == rows


def run_materialize(pool: list[pa.RecordBatch], rows: int) -> None:
    table = pa.Table.from_batches(list(stream(pool, rows))).combine_chunks()
    for name in table.column_names:
        col = table[name]
        t = col.type
        if pa.types.is_floating(t) or pa.types.is_integer(t):
            values = pc.drop_null(col).to_numpy()
            values = values[np.isfinite(values)] if pa.types.is_floating(t) else values
            arr = pa.array(values)
            pc.min_max(arr)
            pc.mean(arr)
            pc.stddev(arr)
            pc.quantile(arr, q=QS)
            edges = np.unique(np.quantile(values[:10_000], np.arange(1, 10) / 10))
            np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
        else:
            vc = pc.value_counts(col)
            freq = pa.table({"values": vc.field("values"), "counts": vc.field("counts")})
            pc.select_k_unstable(freq, k=min(20, len(freq)), sort_keys=[("counts", "descending")])
            assert len(freq) > 0  # the exact distinct count


def child(mode: str, rows: int) -> None:
    pool = make_pool()
    # warm up imports and code paths on a small input, outside the measurement
    (run_stream if mode == "stream" else run_materialize)(pool, 1000)
    before = rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    (run_stream if mode == "stream" else run_materialize)(pool, rows)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {
                "mode": mode,
                "rows": rows,
                "seconds": seconds,
                "rows_per_s": rows / seconds,
                "cpu_s": cpu,
                "rows_per_cpu_s": rows / cpu,
                "peak_mb": peak_rss_mb(),
                "above_mb": peak_rss_mb() - before,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k and 300k rows")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    sizes = [100_000, 300_000] if args.quick else [100_000, 1_000_000]
    results: dict[tuple[str, int], dict[str, float]] = {}
    for rows in sizes:
        for mode in ("stream", "materialize"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(rows)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[(mode, rows)] = json.loads(out.strip().splitlines()[-1])
    print(f"feature stats, 20 features, batches of {BATCH} rows (gc on, same data both sides)")
    print(
        f"{'side':<12} {'rows':>9} {'wall s':>7} {'rows/s':>10} {'cpu s':>6} {'rows/cpu-s':>11} "
        f"{'peak MB':>8} {'+MB run':>8}"
    )
    for (mode, rows), r in results.items():
        print(
            f"{mode:<12} {rows:>9} {r['seconds']:>7.2f} {r['rows_per_s']:>10,.0f} "
            f"{r['cpu_s']:>6.2f} {r['rows_per_cpu_s']:>11,.0f} {r['peak_mb']:>8.0f} "
            f"{r['above_mb']:>8.0f}"
        )
    small, big = sizes
    for rows in sizes:
        s, m = results[("stream", rows)], results[("materialize", rows)]
        wall = s["rows_per_s"] / m["rows_per_s"]
        cpu = s["rows_per_cpu_s"] / m["rows_per_cpu_s"]
        print(
            f"{rows:>9} rows: stream/materialize throughput {wall:.2f}x (wall), {cpu:.2f}x (cpu); "
            f"run memory {s['above_mb']:.0f} MB vs {m['above_mb']:.0f} MB"
        )
    for mode in ("stream", "materialize"):
        grow = results[(mode, big)]["above_mb"] - results[(mode, small)]["above_mb"]
        print(f"{mode}: run memory growth {small} -> {big} rows: {grow:+.0f} MB")


if __name__ == "__main__":
    main()
