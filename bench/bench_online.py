"""Online serving benchmark: strataml's LMDBOnlineStore against raw py-lmdb on the same data.

* ``get`` of 1 entity x 20 float features: p50/p99 over >= 50k calls, strataml vs raw
  (``txn.get`` of a precomputed key + ``codec.decode_row`` of the same bytes), interleaved in
  blocks of 1000 calls so both sides see the same machine noise; gc enabled for both.
* ``get_many`` of 100 entities: p50/p99, strataml vs raw (one read txn, 100 gets + decodes).
* write throughput (rows/s) of 200k rows (``--rows-1m``: 1M) from a ``pa.Table``, strataml
  ``write`` vs a raw LMDB environment (same flags) given the same rows: column-wise
  ``to_pylist``, ``codec.encode_key`` / ``encode_row``, one ``putmulti`` transaction.

Targets: ``get`` p50 <= 0.05 ms, p99 <= 0.2 ms.

    python bench/bench_online.py [--quick] [--rows-1m]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lmdb
import numpy as np
import pyarrow as pa

from strataml import codec
from strataml.local.lmdb_online import LMDBOnlineStore, _key_of

N_FEATURES = 20
VIEW = "bench"


def make_table(n: int) -> pa.Table:
    rng = np.random.default_rng(7)
    cols: dict[str, Any] = {"id": pa.array(np.arange(n, dtype=np.int64))}
    for i in range(N_FEATURES):
        cols[f"f{i}"] = pa.array(rng.random(n))
    return pa.table(cols)


def pct(samples: list[int], q: float) -> float:
    """Percentile of nanosecond samples, in milliseconds."""
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


def interleaved(
    calls: int, block: int, a: Callable[[int], object], b: Callable[[int], object]
) -> tuple[list[int], list[int]]:
    """Per-call latencies (ns) of ``a(i)`` and ``b(i)``, alternating blocks of ``block`` calls."""
    ta: list[int] = []
    tb: list[int] = []
    clock = time.perf_counter_ns
    for start in range(0, calls, block):
        stop = min(calls, start + block)
        for fn, out in ((a, ta), (b, tb)) if (start // block) % 2 == 0 else ((b, tb), (a, ta)):
            for i in range(start, stop):
                t0 = clock()
                fn(i)
                out.append(clock() - t0)
    return ta, tb


def report(name: str, ours: list[int], raw: list[int]) -> tuple[float, float]:
    p50, p99 = pct(ours, 0.50), pct(ours, 0.99)
    r50, r99 = pct(raw, 0.50), pct(raw, 0.99)
    print(
        f"{name:<22} strataml p50 {p50:.4f} ms  p99 {p99:.4f} ms | raw p50 {r50:.4f} ms  "
        f"p99 {r99:.4f} ms | ratio p50 {p50 / r50:.2f}x  p99 {p99 / r99:.2f}x  "
        f"(n={len(ours)}, mean {statistics.fmean(ours) / 1e3:.1f} us)"
    )
    return p50, p99


def raw_write(path: Path, table: pa.Table) -> float:
    """Seconds for a minimal raw-LMDB write of ``table`` (same encoding, one transaction)."""
    env = lmdb.open(
        str(path), map_size=4096 * 1024 * 1024, max_dbs=8, readahead=False, meminit=False
    )
    db = env.open_db(b"data")
    header = struct.pack("<Q", 0)
    prefix = struct.pack(">Q", 1)
    t0 = time.perf_counter()
    ids = table.column("id").to_pylist()
    names = [c for c in table.column_names if c != "id"]
    cols = [table.column(c).to_pylist() for c in names]
    keys = [prefix + codec.encode_key((k,)) for k in ids]
    values = [header + codec.encode_row(dict(zip(names, vals))) for vals in zip(*cols)]
    with env.begin(write=True, db=db) as txn:
        txn.cursor().putmulti(list(zip(keys, values)))
    elapsed = time.perf_counter() - t0
    env.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rows and get_many calls")
    ap.add_argument("--rows-1m", action="store_true", help="write 1M rows instead of 200k")
    args = ap.parse_args()
    rows = 1_000_000 if args.rows_1m else (50_000 if args.quick else 200_000)
    get_calls = 50_000
    many_calls = 1_000 if args.quick else 5_000

    table = make_table(rows)
    tmp = Path(tempfile.mkdtemp(prefix="bench_online_"))
    print(f"rows={rows} features={N_FEATURES} get_calls={get_calls} get_many_calls={many_calls}")

    # ---------------------------------------------------------------------------- writes
    # best of two, alternating sides, each into a fresh environment
    raw_times: list[float] = []
    our_times: list[float] = []
    store: LMDBOnlineStore | None = None
    for trial in range(2):
        raw_times.append(raw_write(tmp / f"raw{trial}.lmdb", table))
        if store is not None:
            store.close()
        store = LMDBOnlineStore(tmp / f"online{trial}.lmdb")
        t0 = time.perf_counter()
        written = store.write(VIEW, table, entities=["id"])
        our_times.append(time.perf_counter() - t0)
        assert written == rows
    assert store is not None
    ours_s, raw_s = min(our_times), min(raw_times)
    print(
        f"{'write (pa.Table)':<22} strataml {rows / ours_s:,.0f} rows/s ({ours_s:.2f} s) | "
        f"raw {rows / raw_s:,.0f} rows/s ({raw_s:.2f} s) | ratio {ours_s / raw_s:.2f}x time "
        "(best of 2)"
    )

    # ------------------------------------------------------------------------------ gets
    # The raw side uses the store's own environment and the exact stored keys (internals).
    env, data_db = store._env, store._data
    with env.begin() as txn:
        meta = store._resolve(txn, VIEW)
    rnd = random.Random(11)
    ids = [rnd.randrange(rows) for _ in range(get_calls)]
    entities = [{"id": k} for k in ids]
    keys = [_key_of(meta, e) for e in entities]
    decode = codec.decode_row
    get = store.get

    def ours_get(i: int) -> object:
        return get(VIEW, entities[i])

    def raw_get(i: int) -> object:
        with env.begin(db=data_db) as txn:
            blob = txn.get(keys[i])
        return decode(blob[8:])

    assert ours_get(0) == raw_get(0)
    for i in range(2000):  # warm up both paths
        ours_get(i)
        raw_get(i)
    ours, raw = interleaved(get_calls, 1000, ours_get, raw_get)
    p50, p99 = report("get (1 x 20 floats)", ours, raw)

    # ------------------------------------------------------------------------- get_many
    batches = [
        [{"id": rnd.randrange(rows)} for _ in range(100)] for _ in range(min(many_calls, 1000))
    ]
    batch_keys = [[_key_of(meta, e) for e in b] for b in batches]
    get_many = store.get_many

    def ours_many(i: int) -> object:
        return get_many(VIEW, batches[i % len(batches)])

    def raw_many(i: int) -> object:
        with env.begin(db=data_db) as txn:
            blobs = [txn.get(k) for k in batch_keys[i % len(batches)]]
        return [decode(b[8:]) for b in blobs]

    assert ours_many(0) == raw_many(0)
    ours, raw = interleaved(many_calls, 100, ours_many, raw_many)
    report("get_many (100)", ours, raw)

    store.close()
    shutil.rmtree(tmp, ignore_errors=True)
    ok50, ok99 = p50 <= 0.05, p99 <= 0.2
    print(
        f"targets: get p50 {p50:.4f} ms <= 0.05 ms: {'PASS' if ok50 else 'FAIL'}; "
        f"p99 {p99:.4f} ms <= 0.2 ms: {'PASS' if ok99 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
