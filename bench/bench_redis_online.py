"""Redis online serving: strataml's RedisOnlineStore against raw redis-py on the same data.

Starts its own ``redis-server`` (``strataml.dev.servers``, 127.0.0.1, a free port), writes
10k entities x 20 float features, then measures, in the same run:

* ``get`` of 1 entity x 20 named features: strataml ``store.get(view, entity, features)``
  against raw ``r.get(key)`` of the same (precomputed) keys plus ``msgpack`` decoding of the
  row -- the same layout and work, minus building and validating the key and picking the
  features -- and against the floor of ../shared/TARGETS.md, raw ``r.hmget(key, fields)`` on
  a hash per entity (the layout Feast uses), values left undecoded.
* ``get`` of all features: strataml ``get(view, entity)`` against raw ``r.get(key)``.
* ``get_many`` of 100 entities: strataml (one ``MGET``) against raw ``r.mget(keys)`` with
  each row decoded, and against the TARGETS floor, a raw pipeline of 100 ``HMGET``.
* write throughput: strataml ``write`` (column-wise encoding, one ``SET`` per row streamed as
  ready RESP) against a raw redis-py pipeline of ``SET`` per row (rows encoded one by one
  with msgpack) and a raw pipeline of ``HSET`` per row, both in pipelines of 1000 rows.

Both sides use the very same ``redis.Redis`` client (the store's: same pool, same socket
settings), gc enabled for both, and alternate in short blocks (50 gets, 5 get_many calls,
the order flipping every block) so both see the same machine noise.
Targets: get p50 <= 1.2x one raw HMGET (TARGETS.md), <= 1.10x a raw GET; get_many p50
<= 1.5 ms and p99 <= 3 ms (TARGETS.md); get p99 < 0.5 ms on loopback.

    python bench/bench_redis_online.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from redis.utils import HIREDIS_AVAILABLE

from strataml import codec
from strataml.dev.servers import start_redis, stop
from strataml_redis import RedisConfig
from strataml_redis.stores import RedisOnlineStore

N_ENTITIES = 10_000
N_FEATURES = 20
VIEW = "bench"
FIELDS = [f"f{i}" for i in range(N_FEATURES)]


def make_table(n: int) -> pa.Table:
    rng = np.random.default_rng(7)
    cols: dict[str, Any] = {"id": pa.array(np.arange(n, dtype=np.int64))}
    for name in FIELDS:
        cols[name] = pa.array(rng.random(n))
    return pa.table(cols)


def pct(samples: list[int], q: float) -> float:
    """Percentile of nanosecond samples, in milliseconds."""
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


def interleaved(calls: int, block: int, *fns: Callable[[int], object]) -> list[list[int]]:
    """Per-call latencies (ns) of each ``fn(i)``, in blocks of ``block`` calls whose order
    rotates from block to block, so every side sees the same machine noise."""
    out: list[list[int]] = [[] for _ in fns]
    clock = time.perf_counter_ns
    for start in range(0, calls, block):
        stop_ = min(calls, start + block)
        shift = (start // block) % len(fns)
        for j in [*range(shift, len(fns)), *range(shift)]:
            fn, samples = fns[j], out[j]
            for i in range(start, stop_):
                t0 = clock()
                fn(i)
                samples.append(clock() - t0)
    return out


def report(name: str, ours: list[int], raw: list[int]) -> tuple[float, float, float]:
    p50, p99 = pct(ours, 0.50), pct(ours, 0.99)
    r50, r99 = pct(raw, 0.50), pct(raw, 0.99)
    print(
        f"{name:<24} strataml p50 {p50:.4f} ms  p99 {p99:.4f} ms | raw p50 {r50:.4f} ms  "
        f"p99 {r99:.4f} ms | ratio p50 {p50 / r50:.3f}x  p99 {p99 / r99:.2f}x  "
        f"(n={len(ours)} each, mean {statistics.fmean(ours) / 1e3:.1f} vs "
        f"{statistics.fmean(raw) / 1e3:.1f} us)"
    )
    return p50 / r50, p50, p99


def raw_set(client: Any, table: pa.Table, head: bytes, batch: int) -> float:
    """Seconds for a raw pipelined ``SET`` of every row (one msgpack map per row)."""
    t0 = time.perf_counter()
    ids = table.column("id").to_pylist()
    cols = [table.column(c).to_pylist() for c in FIELDS]
    encode = codec.encode_row
    for start in range(0, len(ids), batch):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(len(ids), start + batch)):
            key = head + codec.encode_key([ids[i]]).hex().encode() + b"}"
            pipe.execute_command("SET", key, encode(dict(zip(FIELDS, (c[i] for c in cols)))))
        pipe.execute()
    return time.perf_counter() - t0


def raw_write(client: Any, table: pa.Table, head: bytes, batch: int) -> float:
    """Seconds for a raw pipelined ``HSET`` of every row (a hash per entity, no replace)."""
    t0 = time.perf_counter()
    ids = table.column("id").to_pylist()
    cols = [table.column(c).to_pylist() for c in FIELDS]
    names = [f.encode() for f in FIELDS]
    encode = codec.encode_value
    for start in range(0, len(ids), batch):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(len(ids), start + batch)):
            key = head + codec.encode_key([ids[i]]).hex().encode() + b"}"
            args: list[bytes] = []
            for name, col in zip(names, cols, strict=True):
                args += (name, encode(col[i]))
            pipe.execute_command("HSET", key, *args)
        pipe.execute()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer get_many calls")
    args = ap.parse_args()
    get_calls = 20_000 if args.quick else 30_000
    many_calls = 600 if args.quick else 1_200

    tmp = Path(tempfile.mkdtemp(prefix="bench_redis_"))
    server = start_redis(tmp)
    try:
        store = RedisOnlineStore.from_config(RedisConfig(url=server.url, key_prefix="bench"))
        client = store.client
        print(
            f"redis {client.info('server')['redis_version']} at 127.0.0.1:{server.port}, "
            f"redis-py parser: {'hiredis' if HIREDIS_AVAILABLE else 'python'}; "
            f"entities={N_ENTITIES} features={N_FEATURES} get_calls={get_calls} each, "
            f"get_many_calls={many_calls} each"
        )
        table = make_table(N_ENTITIES)

        # ------------------------------------------------------------------------ writes
        ours_t: list[float] = []
        set_t: list[float] = []
        hset_t: list[float] = []
        raw_head, hash_head = b"raw:bench:{", b"rawh:bench:{"
        for _ in range(2):
            t0 = time.perf_counter()
            assert store.write(VIEW, table, entities=["id"]) == N_ENTITIES
            ours_t.append(time.perf_counter() - t0)
            set_t.append(raw_set(client, table, raw_head, 1000))
            hset_t.append(raw_write(client, table, hash_head, 1000))
        o, r, h = min(ours_t), min(set_t), min(hset_t)
        print(
            f"{'write (pa.Table)':<24} strataml {N_ENTITIES / o:,.0f} rows/s | raw SET pipeline "
            f"{N_ENTITIES / r:,.0f} rows/s ({r / o:.2f}x ours) | raw HSET pipeline "
            f"{N_ENTITIES / h:,.0f} rows/s ({h / o:.2f}x ours)   (best of 2)"
        )
        for key in client.scan_iter(match="raw:*", count=1000):
            client.unlink(key)

        # -------------------------------------------------------------------------- gets
        meta = store._view(VIEW)  # the raw side reads the exact stored keys (internals)
        rnd = random.Random(11)
        entities = [{"id": rnd.randrange(N_ENTITIES)} for _ in range(get_calls)]
        keys = [meta.key(e) for e in entities]
        hkeys = [hash_head + k[k.index(b"{") + 1 :] for k in keys]
        get, rget, hmget, decode_row = store.get, client.get, client.hmget, codec.decode_row

        def ours_get(i: int) -> object:
            return get(VIEW, entities[i], FIELDS)

        def raw_get(i: int) -> object:
            return decode_row(rget(keys[i]))

        def raw_hmget(i: int) -> object:
            return hmget(hkeys[i], FIELDS)

        row = table.slice(entities[0]["id"], 1).to_pylist()[0]
        assert ours_get(0) == {f: row[f] for f in FIELDS}
        assert raw_get(0) == {f: row[f] for f in FIELDS}
        assert [codec.decode_value(v) for v in raw_hmget(0)] == [row[f] for f in FIELDS]
        for i in range(2000):  # warm up every path
            ours_get(i)
            raw_get(i)
            raw_hmget(i)
        ours, raw, floor = interleaved(get_calls, 50, ours_get, raw_get, raw_hmget)
        get_ratio, get_p50, get_p99 = report("get (1 x 20 floats)", ours, raw)
        floor_ratio, _, _ = report("  vs raw HMGET (floor)", ours, floor)

        def ours_all(i: int) -> object:
            return get(VIEW, entities[i])

        n_all = get_calls // 4
        ours, raw = interleaved(n_all, 50, ours_all, raw_get)
        report("get (all features)", ours, raw)

        # --------------------------------------------------------------------- get_many
        batches = [[{"id": rnd.randrange(N_ENTITIES)} for _ in range(100)] for _ in range(200)]
        batch_keys = [[meta.key(e) for e in b] for b in batches]
        get_many = store.get_many

        def ours_many(i: int) -> object:
            return get_many(VIEW, batches[i % 200], FIELDS)

        batch_hkeys = [[hash_head + k[k.index(b"{") + 1 :] for k in b] for b in batch_keys]
        mget = client.mget

        def raw_many(i: int) -> object:
            return [decode_row(b) for b in mget(batch_keys[i % 200])]

        def raw_many_hmget(i: int) -> object:
            pipe = client.pipeline(transaction=False)
            for key in batch_hkeys[i % 200]:
                pipe.hmget(key, FIELDS)
            return pipe.execute()

        assert len(ours_many(0)) == len(raw_many(0)) == len(raw_many_hmget(0)) == 100
        for i in range(50):
            ours_many(i)
            raw_many(i)
            raw_many_hmget(i)
        ours, raw, floor = interleaved(many_calls, 5, ours_many, raw_many, raw_many_hmget)
        _, many_p50, many_p99 = report("get_many (100 x 20)", ours, raw)
        report("  vs 100 HMGET (floor)", ours, floor)

        for key in client.scan_iter(match="rawh:*", count=1000):
            client.unlink(key)
        store.drop(VIEW)
        store.close()
    finally:
        stop(server)
        shutil.rmtree(tmp, ignore_errors=True)

    checks = [
        (f"get p50 vs raw HMGET {floor_ratio:.3f} <= 1.2", floor_ratio <= 1.2),
        (f"get p50 vs raw GET {get_ratio:.3f} <= 1.10", get_ratio <= 1.10),
        (f"get_many p50 {many_p50:.3f} ms <= 1.5 ms", many_p50 <= 1.5),
        (f"get_many p99 {many_p99:.3f} ms <= 3 ms", many_p99 <= 3.0),
        (f"get p99 {get_p99:.4f} ms < 0.5 ms", get_p99 < 0.5),
    ]
    print("targets: " + "; ".join(f"{text}: {'PASS' if ok else 'FAIL'}" for text, ok in checks))
    print(f"(get p50 {get_p50:.4f} ms)")


if __name__ == "__main__":
    main()
