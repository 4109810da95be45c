"""Materialization offline -> online: rows/s and peak RSS at 100k and 1M feature rows.

The offline side is DuckDB (the local feature store) holding ``rows`` feature rows over
``rows / 10`` entities x 20 float features; the online side is a real Redis server (started
here, 127.0.0.1, free port) and the embedded LMDB store. Each (size, target) runs in a fresh
subprocess, so its peak RSS (``ru_maxrss``) is that job's alone; memory must stay roughly flat
as the rows grow 10x (the engine reduces to the latest row per entity and the result streams
in batches). ``seconds`` is a full materialization in a process that has run one before (the
job's throughput); ``1st call`` is the first one, with the process's one-time costs (lazy
imports, DuckDB warm-up). Also prints the online ``get`` overhead of the skew guard
(FeatureServer with the guard on vs off, same rows, interleaved blocks; target <= 5 %).

Peer (../shared/TARGETS.md): Feast 0.67 materializing 1M rows into Redis took 13.7 s and
2.1 GiB here; target >= 5x faster, <= 300 MiB, flat.

    python bench/bench_materialize.py [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

N_FEATURES = 20


def _profile(target: str, data_dir: str, redis_url: str) -> str:
    if target != "redis":
        return "local"
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    profile = str(Path(data_dir) / "bench.toml")  # local DuckDB offline, Redis online
    Path(profile).write_text(
        f'[features]\ntype = "duckdb"\npath = "{data_dir}/features.duckdb"\n'
        f'[online]\ntype = "redis"\nurl = "{redis_url}"\n'
    )
    return profile


def _build(size: int, target: str, data_dir: str, redis_url: str) -> None:
    """Write the offline data (its own process: its memory is not the job's)."""
    import strataml
    from strataml.models import FeatureView

    with strataml.open(_profile(target, data_dir, redis_url), data_dir=data_dir) as stack:
        n_entities = size // 10
        rng = np.random.default_rng(1)
        now = np.datetime64(dt.datetime.now(dt.UTC).replace(tzinfo=None), "us")
        chunk = 100_000
        for start in range(0, size, chunk):
            n = min(chunk, size - start)
            idx = np.arange(start, start + n)
            cols: dict[str, pa.Array] = {
                "entity_id": pa.array(idx % n_entities, pa.int64()),
                "ts": pa.array(now - (size - idx).astype("timedelta64[s]")),
            }
            for f in range(N_FEATURES):
                cols[f"f{f}"] = pa.array(rng.random(n))
            stack.features.load("feats", pa.table(cols))
        stack.features.register(
            FeatureView(name="fv", sql="SELECT * FROM feats", entities=("entity_id",))
        )


def _child(size: int, target: str, data_dir: str, redis_url: str) -> None:
    """Time materialize() alone in a fresh process; print one JSON line."""
    import strataml
    from strataml.features import materialize

    with strataml.open(_profile(target, data_dir, redis_url), data_dir=data_dir) as stack:
        view = stack.features.get_view("fv")
        stack.online
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t0 = time.perf_counter()
        report = materialize(stack.features, stack.online, view)
        cold = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # of one job
        # again, in the same process: the same full job without the one-time costs of the
        # first call (lazy imports such as sqlglot and pandas via pyarrow, DuckDB warm-up)
        t0 = time.perf_counter()
        report = materialize(stack.features, stack.online, view)
        secs = time.perf_counter() - t0
        guard = _guard_overhead(stack, view, size // 10) if size <= 200_000 else None
    print(
        json.dumps(
            {
                "size": size,
                "target": target,
                "seconds": secs,
                "cold_seconds": cold,
                "entities": report.entities_written,
                "rss_mb": rss,
                "rss_before_mb": rss_before,
                "guard": guard,
            }
        )
    )


def _guard_overhead(stack: object, view: object, n_entities: int) -> dict[str, float]:
    from strataml.features import FeatureServer

    online = stack.online  # type: ignore[attr-defined]
    on = FeatureServer(online, [view], skew_guard=True)  # type: ignore[list-item]
    off = FeatureServer(online, [view], skew_guard=False)  # type: ignore[list-item]
    keys = [{"entity_id": int(k)} for k in np.random.default_rng(2).integers(0, n_entities, 4000)]
    t_on: list[int] = []
    t_off: list[int] = []
    clock = time.perf_counter_ns
    for block in range(0, len(keys), 100):
        pairs = (
            ((on, t_on), (off, t_off)) if (block // 100) % 2 == 0 else ((off, t_off), (on, t_on))
        )
        for server, out in pairs:
            for k in keys[block : block + 100]:
                t = clock()
                server.get(k)
                out.append(clock() - t)
    p50_on, p50_off = statistics.median(t_on) / 1e3, statistics.median(t_off) / 1e3
    return {"p50_on_us": p50_on, "p50_off_us": p50_off, "overhead": p50_on / p50_off - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--build", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        size, target, data_dir, url = args.build
        _build(int(size), target, data_dir, url)
        return
    if args.child:
        size, target, data_dir, url = args.child
        _child(int(size), target, data_dir, url)
        return

    from strataml.dev.servers import start_redis, stop

    sizes = [10_000, 100_000] if args.quick else [100_000, 1_000_000]
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp) / "redis")
        try:
            print(
                f"{'target':7} {'rows':>10} {'entities':>9} {'seconds':>8} {'rows/s':>11} "
                f"{'1st call':>8} {'peak RSS':>9} {'RSS before':>10}"
            )
            for target in ("redis", "lmdb"):
                for size in sizes:
                    data_dir = Path(tmp) / f"{target}-{size}"
                    subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--build",
                            str(size),
                            target,
                            str(data_dir),
                            redis.url,
                        ],
                        check=True,
                    )
                    out = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            str(size),
                            target,
                            str(data_dir),
                            redis.url,
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    print(
                        f"{target:7} {size:>10,} {r['entities']:>9,} {r['seconds']:>8.2f} "
                        f"{size / r['seconds']:>11,.0f} {r['cold_seconds']:>7.2f}s "
                        f"{r['rss_mb']:>7.0f}MB "
                        f"{r['rss_before_mb']:>8.0f}MB"
                    )
                    if r["guard"]:
                        g = r["guard"]
                        print(
                            f"        skew guard on {target}: get p50 {g['p50_on_us']:.1f} µs on "
                            f"vs {g['p50_off_us']:.1f} µs off: overhead {g['overhead']:+.1%} "
                            "(target <= 5 %)"
                        )
        finally:
            stop(redis)


if __name__ == "__main__":
    main()
