"""Point-in-time join: strataml ``historical`` vs a hand-written DuckDB ``ASOF JOIN``.

Same data, same database, same run: 100k entities x 10 event times (1M feature rows, 20 float
features) joined to 100k label rows (``--quick``: 10x smaller). Prints the median of 3 runs of
each side, the ratios (target <= 1.2) and the peak RSS of the process.

    /work/venv/bin/python bench/bench_pit.py [--quick] [--feast-python PYTHON]

With ``--feast-python`` (an interpreter that has ``feast[duckdb]``, kept out of strataml's own
environment), the same job also runs through Feast's ``get_historical_features`` with its DuckDB
offline store on the same data (``bench/feast_pit.py``, a subprocess), and the ratio is printed.

Baselines (both fetch the full result to Arrow, like ``historical``):

* ``raw``: ``labels ASOF LEFT JOIN feats`` as a user would write it (result order unspecified);
* ``raw ordered``: the same, plus what ``historical`` guarantees -- label order restored with a
  row-number column.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from strataml.local.duckdb_engine import DuckDBEngine
from strataml.local.duckdb_features import DuckDBFeatureStore
from strataml.models import FeatureView

N_FEATURES = 20
N_TIMES = 10


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_data(n_entities: int, n_labels: int, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    base = np.datetime64("2024-01-01T00:00:00", "us")
    day = np.timedelta64(86_400_000_000, "us")
    ids = np.repeat(np.arange(n_entities, dtype=np.int64), N_TIMES)
    # one row a day per entity, jittered by up to an hour
    offsets = np.tile(np.arange(N_TIMES), n_entities) * day + rng.integers(
        0, 3_600_000_000, ids.size
    ).astype("timedelta64[us]")
    cols: dict[str, object] = {"entity_id": ids, "ts": pa.array(base + offsets)}
    for i in range(N_FEATURES):
        cols[f"f{i}"] = rng.standard_normal(ids.size)
    feats = pa.table(cols)
    label_ts = (
        base
        + rng.integers(-1, N_TIMES + 1, n_labels) * day
        + rng.integers(0, 86_400_000_000, n_labels).astype("timedelta64[us]")
    )
    labels = pa.table(
        {
            "entity_id": rng.integers(0, n_entities, n_labels, dtype=np.int64),
            "ts": pa.array(label_ts),
            "label": rng.integers(0, 2, n_labels, dtype=np.int8),
        }
    )
    return feats, labels


def timed_rounds(
    fns: dict[str, Callable[[], pa.Table]], rounds: int = 3
) -> tuple[dict[str, float], dict[str, pa.Table]]:
    """Median seconds per function; rounds interleave the functions so that load from other
    processes on the machine hits every side alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    outs: dict[str, pa.Table] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}, outs


def _feast(python: str, feats: pa.Table, labels: pa.Table, tmp: Path) -> dict[str, float]:
    """Run bench/feast_pit.py on the same data with the given interpreter."""
    import json
    import subprocess

    import pyarrow.parquet as pq

    pq.write_table(feats, tmp / "feats.parquet")
    pq.write_table(labels, tmp / "labels.parquet")
    script = Path(__file__).with_name("feast_pit.py")
    out = subprocess.run(
        [
            python,
            str(script),
            str(tmp / "feats.parquet"),
            str(tmp / "labels.parquet"),
            str(N_FEATURES),
            "3",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller data")
    parser.add_argument("--feast-python", default=None, help="a python with feast[duckdb]")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    n_entities, n_labels = 100_000 // scale, 100_000 // scale

    feats, labels = make_data(n_entities, n_labels)
    print(
        f"features: {feats.num_rows:,} rows x {N_FEATURES} floats ({n_entities:,} entities x "
        f"{N_TIMES} times); labels: {labels.num_rows:,} rows"
    )
    with tempfile.TemporaryDirectory() as tmp:
        feast = _feast(args.feast_python, feats, labels, Path(tmp)) if args.feast_python else None
        engine = DuckDBEngine(Path(tmp) / "bench.duckdb")
        store = DuckDBFeatureStore(engine)
        t0 = time.perf_counter()
        store.load("feats", feats)
        print(f"load: {time.perf_counter() - t0:.2f} s")
        store.register(FeatureView(name="fv", sql="SELECT * FROM feats", entities=("entity_id",)))
        del feats
        cur = engine.cursor()
        numbered = labels.append_column("row_id", pa.array(np.arange(labels.num_rows)))
        feature_cols = ", ".join(f"f.f{i}" for i in range(N_FEATURES))
        raw_sql = (
            f"SELECT l.entity_id, l.ts, l.label, {feature_cols} FROM raw_labels l "
            "ASOF LEFT JOIN feats f ON l.entity_id = f.entity_id AND l.ts >= f.ts"
        )
        ordered_sql = raw_sql.replace("l.label,", "l.label, l.row_id,") + " ORDER BY l.row_id"

        def strataml() -> pa.Table:
            return store.historical(labels, ["fv:*"])

        def raw() -> pa.Table:
            cur.register("raw_labels", labels)
            try:
                out: pa.Table = cur.sql(raw_sql).to_arrow_table()
            finally:
                cur.unregister("raw_labels")
            return out

        def raw_ordered() -> pa.Table:
            cur.register("raw_labels", numbered)
            try:
                out: pa.Table = cur.sql(ordered_sql).to_arrow_table()
            finally:
                cur.unregister("raw_labels")
            return out

        strataml()  # warm up the file cache for both sides
        rss0 = peak_rss_mb()
        secs, outs = timed_rounds({"strataml": strataml, "raw": raw, "ordered": raw_ordered})
        s_sec, r_sec, o_sec = secs["strataml"], secs["raw"], secs["ordered"]
        s_out, r_out, o_out = outs["strataml"], outs["raw"], outs["ordered"]
        assert s_out.num_rows == r_out.num_rows == o_out.num_rows == labels.num_rows
        for i in (0, N_FEATURES - 1):
            assert s_out.column(f"f{i}").equals(o_out.column(f"f{i}")), "results differ"
        matched = s_out.column("f0").null_count
        print(f"label rows without a feature value: {matched:,}")
        print(f"strataml historical : {s_sec:8.3f} s (median of 3, interleaved)")
        print(f"raw ASOF JOIN       : {r_sec:8.3f} s (median of 3, interleaved)")
        print(f"raw ASOF, ordered   : {o_sec:8.3f} s (median of 3, interleaved)")
        print(f"ratio strataml/raw          : {s_sec / r_sec:.2f}  (target <= 1.2)")
        print(f"ratio strataml/raw ordered  : {s_sec / o_sec:.2f}")
        print(f"peak RSS: {peak_rss_mb():.0f} MiB (before timed runs: {rss0:.0f} MiB)")
        if feast is not None:
            assert feast["rows"] == labels.num_rows, feast
            print(
                f"Feast get_historical_features: {feast['seconds']:8.3f} s (median of 3), "
                f"peak RSS {feast['rss_mb']:.0f} MiB, {feast['nulls']:,} rows without a value"
            )
            print(f"ratio strataml/Feast        : {s_sec / feast['seconds']:.2f}")
        store.close()
        engine.close()


if __name__ == "__main__":
    main()
