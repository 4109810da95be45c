"""BigQuery adapter vs the raw google-cloud-bigquery client, on the same emulator and data.

    python bench/bench_bigquery.py [--quick]

Starts bqemulator (its own virtualenv: see ``strataml_bigquery.devserver``) on 127.0.0.1, then
measures, alternating adapter and raw runs on identical data:

* **load rows/s** -- ``BigQueryFeatureStore.load`` (Arrow -> Parquet -> one load job) vs the
  raw client loading the same Arrow table as Parquet with ``load_table_from_file``;
* **scan rows/s** -- ``BigQueryTrainingSource.scan`` of a dataset (``ORDER BY _row``, REST pages,
  batches cut to size and cast back to the written Arrow schema) vs the raw client running the
  same ``SELECT ... ORDER BY _row`` and reading ``to_arrow_iterable`` with the same page size;
* **point-in-time join** -- ``BigQueryFeatureStore.historical`` vs the raw client staging the
  same labels and running the same window join written by hand (p50/p99 over the
  repetitions); the adapter also resolves the view (a catalog query) and dry-runs its SQL.

Ratios are adapter / raw: >= 1 is as fast as the raw client for throughput, <= 1 for latency.
The emulator (DuckDB + sqlglot in Python) bounds everything; real BigQuery latencies differ.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from strataml.dev.servers import stop
from strataml.models import FeatureView
from strataml_bigquery import BigQueryConfig
from strataml_bigquery.devserver import start
from strataml_bigquery.engine import BigQueryEngine
from strataml_bigquery.features import BigQueryFeatureStore
from strataml_bigquery.training import BigQueryTrainingSource

PROJECT = "bench-proj"
T0 = dt.datetime(2024, 1, 1)
T0_NP = np.datetime64("2024-01-01T00:00:00", "us")


def table(rows: int, entities: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": pa.array(rng.integers(0, entities, rows), pa.int64()),
            "ts": pa.array(
                T0_NP + rng.integers(0, 86_400 * 30, rows).astype("timedelta64[s]"),
                pa.timestamp("us"),
            ),
            "x": pa.array(rng.normal(size=rows)),
            "s": pa.array([f"s{i % 97}" for i in range(rows)]),
        }
    )


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def raw_load(client: Any, table_id: str, data: pa.Table) -> None:
    from google.cloud import bigquery

    buf = io.BytesIO()
    pq.write_table(data, buf)
    buf.seek(0)
    schema = [
        bigquery.SchemaField("id", "INT64"),
        bigquery.SchemaField("ts", "DATETIME"),
        bigquery.SchemaField("x", "FLOAT64"),
        bigquery.SchemaField("s", "STRING"),
    ]
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        schema=schema,
        write_disposition="WRITE_APPEND",
    )
    client.load_table_from_file(buf, table_id, job_config=config).result()


def raw_scan(client: Any, sql: str, page: int) -> int:
    rows = client.query(sql).result(page_size=page)
    return sum(b.num_rows for b in rows.to_arrow_iterable())


RAW_PIT = """
SELECT l.r, g.f.x AS x FROM `{labels}` AS l LEFT JOIN (
  SELECT r, f FROM (
    SELECT r, k, LAST_VALUE(f IGNORE NULLS) OVER (PARTITION BY id ORDER BY t, k
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS f
    FROM (
      SELECT s.id, TIMESTAMP(s.ts) AS t, 0 AS k, CAST(NULL AS INT64) AS r,
             STRUCT(TIMESTAMP(s.ts) AS vts, s.x AS x) AS f
      FROM `{source}` AS s INNER JOIN (SELECT DISTINCT id FROM `{labels}`) AS k ON s.id = k.id
      WHERE s.ts IS NOT NULL
      UNION ALL
      SELECT id, lts, 1, r, NULL FROM `{labels}`
    )
  ) WHERE k = 1
) AS g ON g.r = l.r ORDER BY l.r
"""


def raw_pit(client: Any, dataset: str, source: str, labels: pa.Table) -> pa.Table:
    from google.cloud import bigquery

    name = f"{dataset}.lab_{uuid.uuid4().hex[:8]}"
    staged = pa.table(
        {
            "r": pa.array(np.arange(labels.num_rows), pa.int64()),
            "id": labels.column("id"),
            "lts": labels.column("ts").cast(pa.timestamp("us", tz="UTC")),
        }
    )
    buf = io.BytesIO()
    pq.write_table(staged, buf)
    buf.seek(0)
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        schema=[
            bigquery.SchemaField("r", "INT64"),
            bigquery.SchemaField("id", "INT64"),
            bigquery.SchemaField("lts", "TIMESTAMP"),
        ],
    )
    client.load_table_from_file(buf, name, job_config=config).result()
    try:
        sql = RAW_PIT.format(labels=name, source=f"{dataset}.{source}")
        result: pa.Table = client.query(sql).result().to_arrow(create_bqstorage_client=False)
        return result
    finally:
        client.delete_table(name, not_found_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repetitions")
    args = parser.parse_args()
    rows = 20_000 if args.quick else 50_000
    reps = 3 if args.quick else 4
    labels_n = 500 if args.quick else 2_000
    entities = 1_000

    with tempfile.TemporaryDirectory() as tmp:
        handle = start(Path(tmp), project=PROJECT, persistent=False, time_travel=False)
        try:
            config = BigQueryConfig(
                type="bigquery",
                project=PROJECT,
                dataset="bench",
                api_endpoint=handle.url,
                read_api="rest",
            )
            engine = BigQueryEngine(config)
            client = engine.client
            store = BigQueryFeatureStore(engine)
            source = BigQueryTrainingSource(engine)
            data = table(rows, entities)
            dataset = f"{PROJECT}.bench"
            gc.collect()

            store.load("warm_a", data.slice(0, 10))  # creates the dataset and catalog tables
            raw_load(client, f"{dataset}.warm_r", data.slice(0, 10))

            # ---- load: alternate adapter and raw, fresh tables each time
            load_a: list[float] = []
            load_r: list[float] = []
            for i in range(3 * reps):  # loads are short: more repetitions against the noise
                load_a.append(timed(lambda i=i: store.load(f"load_a{i}", data)))
                load_r.append(timed(lambda i=i: raw_load(client, f"{dataset}.load_r{i}", data)))

            # ---- scan
            sid = source.write("scan_ds", data)
            physical = next(
                t for t in engine.list_tables() if t.startswith("_strataml_ds__scan_ds__")
            )
            raw_sql = f"SELECT id, ts, x, s FROM `{dataset}.{physical}` ORDER BY _row"
            page = config.scan_page_rows  # both sides fetch pages of this many rows
            scan_a: list[float] = []
            scan_r: list[float] = []
            for _ in range(reps):
                scan_a.append(
                    timed(
                        lambda: sum(
                            b.num_rows
                            for b in source.scan("scan_ds", snapshot=sid, batch_size=page)
                        )
                    )
                )
                scan_r.append(timed(lambda: raw_scan(client, raw_sql, page)))

            # ---- point-in-time join
            store.load("feat", data)
            store.register(
                FeatureView(name="feat", sql="SELECT id, ts, x FROM feat", entities=("id",))
            )
            rng = np.random.default_rng(1)
            labels = pa.table(
                {
                    "id": pa.array(rng.integers(0, entities, labels_n), pa.int64()),
                    "ts": pa.array(
                        T0_NP + rng.integers(0, 86_400 * 30, labels_n).astype("timedelta64[s]"),
                        pa.timestamp("us"),
                    ),
                }
            )
            check_a = store.historical(labels, ["feat:x"]).column("x")
            check_r = raw_pit(client, dataset, "feat", labels).column("x")
            if not check_a.equals(check_r):
                sys.exit("adapter and raw point-in-time joins disagree")
            pit_a: list[float] = []
            pit_r: list[float] = []
            for _ in range(reps):
                pit_a.append(timed(lambda: store.historical(labels, ["feat:x"])))
                pit_r.append(timed(lambda: raw_pit(client, dataset, "feat", labels)))
            engine.close()
        finally:
            stop(handle)

    def rate(n: int, seconds: list[float]) -> float:
        return n / statistics.median(seconds)

    la, lr = rate(rows, load_a), rate(rows, load_r)
    sa, sr = rate(rows, scan_a), rate(rows, scan_r)
    print(
        f"bqemulator, {rows} rows x 4 columns, alternating repetitions (medians): "
        f"load x{3 * reps}, scan and PIT x{reps}"
    )
    print(f"load   adapter {la:>10,.0f} rows/s   raw {lr:>10,.0f} rows/s   ratio {la / lr:.2f}x")
    print(f"scan   adapter {sa:>10,.0f} rows/s   raw {sr:>10,.0f} rows/s   ratio {sa / sr:.2f}x")
    pa50, pr50 = statistics.median(pit_a), statistics.median(pit_r)
    print(
        f"PIT    {labels_n} labels: adapter p50 {pa50 * 1000:.0f} ms p99 "
        f"{pct(pit_a, 0.99) * 1000:.0f} ms   raw p50 {pr50 * 1000:.0f} ms p99 "
        f"{pct(pit_r, 0.99) * 1000:.0f} ms   latency ratio {pa50 / pr50:.2f}x"
    )


if __name__ == "__main__":
    main()
