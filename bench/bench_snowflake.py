"""Snowflake adapter vs the raw connector, on the same emulator (fakesnow, server mode) and data.

Measures, each side doing the same work the way a user of that API would:

* **load rows/s** -- ``SnowflakeFeatureStore.load(table, arrow)`` vs the raw connector doing
  what ``write_pandas`` does (Parquet -> ``PUT`` to a temporary stage -> ``COPY INTO``) into a
  table created by hand;
* **scan rows/s** -- ``SnowflakeTrainingSource.scan(dataset)`` (write order, exact Arrow types)
  vs ``cursor.execute(<the same ordered SELECT>)`` + ``fetch_arrow_batches`` on the same table;
* **point-in-time join** -- ``SnowflakeFeatureStore.historical`` vs the hand-written raw
  equivalent (labels staged the same way into a transient table, a ``LEFT JOIN ... QUALIFY
  ROW_NUMBER()`` query, ``fetch_arrow_all``), p50/p99 over repetitions.

Ratios are adapter / raw for throughput (>= 0.9 is the target) and raw / adapter for latency,
from medians of repetitions that alternate the two sides (the order flipping every repetition),
so both see the same machine noise.
The emulator answers every statement in ~10-40 ms on this machine, so these numbers describe
the adapter's overhead, not Snowflake's speed.

Run: ``python bench/bench_snowflake.py [--quick]`` (needs fakesnow: ``$STRATAML_FAKESNOW_PYTHON``
or fakesnow installed in this interpreter).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from strataml.dev.servers import stop
from strataml.models import FeatureView
from strataml_snowflake import SnowflakeConfig
from strataml_snowflake.db import SnowflakeDatabase
from strataml_snowflake.devserver import start
from strataml_snowflake.features import SnowflakeFeatureStore
from strataml_snowflake.training import SnowflakeTrainingSource

T0 = dt.datetime(2024, 1, 1)


def table_of(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "ts": pa.array(
                (np.datetime64(T0, "us") + rng.integers(0, 86_400_000_000, rows)).astype(
                    "datetime64[us]"
                )
            ),
            "x": pa.array(rng.random(rows)),
            "s": pa.array(rng.choice(["alpha", "beta", "gamma", "delta"], rows)),
            "b": pa.array(rng.random(rows) > 0.5),
        }
    )


def timed(
    raw: Callable[[], Any], adapter: Callable[[], Any], reps: int
) -> tuple[list[float], list[float]]:
    """Seconds per call of ``raw`` and ``adapter``, alternating (the order flipping every
    repetition), so both sides see the same machine noise."""
    t_raw: list[float] = []
    t_ad: list[float] = []
    for i in range(reps):
        pairs = ((raw, t_raw), (adapter, t_ad))
        for fn, out in pairs if i % 2 == 0 else pairs[::-1]:
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return t_raw, t_ad


def raw_copy(conn: Any, data: pa.Table, table: str, tmp: str) -> None:
    """What ``write_pandas`` does, by hand with the raw connector (its own ``write_pandas``
    needs ``INFER_SCHEMA`` and quoted stage URLs, which the emulator lacks): Parquet file ->
    ``PUT`` to a temporary stage -> ``COPY INTO ... MATCH_BY_COLUMN_NAME``."""
    path = f"{tmp}/{uuid.uuid4().hex}.parquet"
    pq.write_table(data.rename_columns([c.upper() for c in data.column_names]), path)
    cur = conn.cursor()
    cur.execute("CREATE TEMPORARY STAGE IF NOT EXISTS RAW_STAGE")
    prefix = uuid.uuid4().hex
    cur.execute(f"PUT 'file://{path}' @RAW_STAGE/{prefix} AUTO_COMPRESS = FALSE")
    cur.execute(
        f'COPY INTO "{table}" FROM @RAW_STAGE/{prefix}/ FILE_FORMAT = (TYPE = PARQUET'
        " USE_LOGICAL_TYPE = TRUE) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE PURGE = TRUE"
    )
    os.unlink(path)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, < 1 minute")
    args = parser.parse_args()
    load_rows, scan_rows, labels_n, feats_n, reps, pit_reps = (
        (50_000, 200_000, 2_000, 20_000, 5, 5)
        if args.quick
        else (200_000, 1_000_000, 10_000, 100_000, 5, 9)
    )
    with tempfile.TemporaryDirectory() as tmp:
        handle = start(tmp)
        try:
            config = SnowflakeConfig(
                account="fakesnow",
                user="bench",
                password="bench",
                host=handle.host,
                port=handle.port,
                protocol="http",
                database="bench",
                schema=f"b_{uuid.uuid4().hex[:8]}",
            )
            db = SnowflakeDatabase(config)
            store = SnowflakeFeatureStore(db)
            training = SnowflakeTrainingSource(db)
            print(f"fakesnow on {handle.url}; quick={args.quick}")

            # ------------------------------------------------------------------------- load
            data = table_of(load_rows)
            with db.session("bench") as s:
                raw = s.conn

                def raw_load() -> None:
                    name = f"RAW_{uuid.uuid4().hex[:8].upper()}"
                    raw.cursor().execute(
                        f'CREATE TABLE "{name}" ("ID" NUMBER(38,0), "TS" TIMESTAMP_NTZ(6),'
                        ' "X" FLOAT, "S" VARCHAR, "B" BOOLEAN)'
                    )
                    raw_copy(raw, data, name, tmp)

                def adapter_load() -> None:
                    store.load(f"ad_{uuid.uuid4().hex[:8]}", data)

                adapter_load()  # warm up both paths (stage creation, first PUT)
                raw_load()
                t_raw, t_ad = timed(raw_load, adapter_load, reps)
            raw_rps = load_rows / statistics.median(t_raw)
            ad_rps = load_rows / statistics.median(t_ad)
            print(
                f"load  {load_rows:>9,} rows: adapter {ad_rps:>12,.0f} rows/s | raw PUT+COPY"
                f" {raw_rps:>12,.0f} rows/s | ratio {ad_rps / raw_rps:.2f}x"
            )

            # ------------------------------------------------------------------------- scan
            big = table_of(scan_rows, seed=1)
            sid = training.write("scan_me", big)
            with db.session("bench") as s:
                rows = s.fetchall(
                    f"SELECT ID FROM {db.qualified('_STRATAML_TRAINING_VERSIONS')}"
                    " WHERE NAME = ? AND VERSION = ?",
                    ["scan_me", int(sid.split("@")[1])],
                )
                physical = db.qualified(f"_STRATAML_DS_{rows[0][0]}")
                raw_cur = s.conn.cursor()

                def raw_scan() -> None:
                    raw_cur.execute(
                        f'SELECT "ID", "TS", "X", "S", "B" FROM {physical} ORDER BY "_ROW"'
                    )
                    n = sum(b.num_rows for b in raw_cur.fetch_arrow_batches())
                    assert n == scan_rows

                def adapter_scan() -> None:
                    n = sum(b.num_rows for b in training.scan("scan_me"))
                    assert n == scan_rows

                adapter_scan()
                raw_scan()
                t_raw, t_ad = timed(raw_scan, adapter_scan, reps)
            raw_rps = scan_rows / statistics.median(t_raw)
            ad_rps = scan_rows / statistics.median(t_ad)
            print(
                f"scan  {scan_rows:>9,} rows: adapter {ad_rps:>12,.0f} rows/s | raw fetch_arrow"
                f"_batches {raw_rps:>12,.0f} rows/s | ratio {ad_rps / raw_rps:.2f}x"
            )

            # -------------------------------------------------------------------------- PIT
            rng = np.random.default_rng(2)
            entities = max(10, feats_n // 1000)  # long histories: ~1000 rows per entity
            feats = pa.table(
                {
                    "uid": pa.array(rng.integers(0, entities, feats_n)),
                    "ts": pa.array(
                        (np.datetime64(T0, "us") + rng.integers(0, 86_400_000_000, feats_n)).astype(
                            "datetime64[us]"
                        )
                    ),
                    "clicks": pa.array(rng.integers(0, 100, feats_n)),
                }
            )
            store.load("pit_src", feats)
            store.register(
                FeatureView(
                    name="pit_v", sql="SELECT uid, ts, clicks FROM pit_src", entities=("uid",)
                )
            )
            labels = pa.table(
                {
                    "uid": pa.array(rng.integers(0, entities, labels_n)),
                    "ts": pa.array(
                        (
                            np.datetime64(T0, "us") + rng.integers(0, 86_400_000_000, labels_n)
                        ).astype("datetime64[us]")
                    ),
                }
            )
            raw_labels = labels.append_column(
                "rownum", pa.array(np.arange(labels_n, dtype=np.int64))
            )
            with db.session("bench") as s:
                raw = s.conn

                def raw_pit() -> None:
                    name = f"RAW_LABELS_{uuid.uuid4().hex[:8].upper()}"
                    cur = raw.cursor()
                    cur.execute(
                        f"CREATE TRANSIENT TABLE {name} (UID NUMBER(38,0), TS TIMESTAMP_NTZ(6),"
                        " ROWNUM NUMBER(38,0))"
                    )
                    raw_copy(raw, raw_labels, name, tmp)
                    cur.execute(
                        f"SELECT l.ROWNUM, f.CLICKS FROM {name} AS l LEFT JOIN PIT_SRC AS f"
                        " ON f.UID = l.UID AND f.TS <= l.TS QUALIFY ROW_NUMBER() OVER"
                        " (PARTITION BY l.ROWNUM ORDER BY f.TS DESC) = 1 ORDER BY l.ROWNUM"
                    )
                    out = cur.fetch_arrow_all()
                    assert out is not None
                    assert out.num_rows == labels_n
                    cur.execute(f"DROP TABLE {name}")

                def adapter_pit() -> None:
                    out = store.historical(labels, ["pit_v:clicks"])
                    assert out.num_rows == labels_n

                adapter_pit()
                raw_pit()
                t_raw, t_ad = timed(raw_pit, adapter_pit, pit_reps)
            check = store.historical(labels, ["pit_v:clicks"]).column("clicks")
            assert check.null_count < labels_n
            print(
                f"pit   {labels_n:>6,} labels x {feats_n:,} rows: adapter p50 "
                f"{pct(t_ad, 0.5) * 1000:7.0f} ms p99 {pct(t_ad, 0.99) * 1000:7.0f} ms | raw "
                f"p50 {pct(t_raw, 0.5) * 1000:7.0f} ms p99 {pct(t_raw, 0.99) * 1000:7.0f} ms | "
                f"latency ratio (raw/adapter) {pct(t_raw, 0.5) / pct(t_ad, 0.5):.2f}x"
            )
            db.close()
        finally:
            stop(handle)


if __name__ == "__main__":
    main()
