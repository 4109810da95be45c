"""Redis online serving: strataml's RedisOnlineStore against raw redis-py on the same data.

Starts its own ``redis-server`` (``strataml.dev.servers``, 127.0.0.1, a free port), writes
10k entities x 20 float features, then measures, in the same run:

* ``get`` of 1 entity x 20 named features: strataml ``store.get(view, entity, features)``
  against raw ``r.hmget(key, fields)`` of the same (precomputed) keys. Raw returns the bytes
  undecoded; strataml builds and validates the key, decodes the 20 values and returns a dict.
* ``get`` of all features: strataml ``get(view, entity)`` against raw ``r.hgetall(key)``.
* ``get_many`` of 100 entities: strataml against a raw pipeline of 100 ``HMGET``.
* write throughput: strataml ``write`` (a Lua replace per row, pipelined) against a raw
  pipeline of ``HSET`` per row (no replace, no TTL), both in pipelines of 1000 rows.

Both sides use the very same ``redis.Redis`` client (the store's: same pool, same socket
settings), gc enabled for both, and alternate in short blocks (50 gets, 5 get_many calls,
the order flipping every block) so both see the same machine noise.
Targets: get p50 ratio <= 1.10, get_many p50 ratio <= 1.20, get p99 < 0.5 ms on loopback.

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


def interleaved(
    calls: int, block: int, a: Callable[[int], object], b: Callable[[int], object]
) -> tuple[list[int], list[int]]:
    """Per-call latencies (ns) of ``a(i)`` and ``b(i)``, alternating blocks of ``block`` calls
    (and which side goes first), so both see the same machine noise."""
    ta: list[int] = []
    tb: list[int] = []
    clock = time.perf_counter_ns
    for start in range(0, calls, block):
        stop_ = min(calls, start + block)
        order = ((a, ta), (b, tb)) if (start // block) % 2 == 0 else ((b, tb), (a, ta))
        for fn, out in order:
            for i in range(start, stop_):
                t0 = clock()
                fn(i)
                out.append(clock() - t0)
    return ta, tb


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


def raw_write(client: Any, table: pa.Table, head: bytes, batch: int) -> float:
    """Seconds for a raw pipelined ``HSET`` of every row (same encoding, no replace/TTL)."""
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
        raw_t: list[float] = []
        raw_head = b"raw:bench:{"
        for _ in range(2):
            t0 = time.perf_counter()
            assert store.write(VIEW, table, entities=["id"]) == N_ENTITIES
            ours_t.append(time.perf_counter() - t0)
            raw_t.append(raw_write(client, table, raw_head, 1000))
        o, r = min(ours_t), min(raw_t)
        print(
            f"{'write (pa.Table)':<24} strataml {N_ENTITIES / o:,.0f} rows/s | raw HSET pipeline "
            f"{N_ENTITIES / r:,.0f} rows/s | ratio {o / r:.2f}x time (best of 2)"
        )
        for key in client.scan_iter(match="raw:*", count=1000):
            client.unlink(key)

        # -------------------------------------------------------------------------- gets
        meta = store._view(VIEW)  # the raw side reads the exact stored keys (internals)
        rnd = random.Random(11)
        entities = [{"id": rnd.randrange(N_ENTITIES)} for _ in range(get_calls)]
        keys = [meta.key(e) for e in entities]
        get, hmget, hgetall = store.get, client.hmget, client.hgetall

        def ours_get(i: int) -> object:
            return get(VIEW, entities[i], FIELDS)

        def raw_get(i: int) -> object:
            return hmget(keys[i], FIELDS)

        row = table.slice(entities[0]["id"], 1).to_pylist()[0]
        assert ours_get(0) == {f: row[f] for f in FIELDS}
        assert [codec.decode_value(v) for v in raw_get(0)] == [row[f] for f in FIELDS]
        for i in range(2000):  # warm up both paths
            ours_get(i)
            raw_get(i)
        ours, raw = interleaved(get_calls, 50, ours_get, raw_get)
        get_ratio, get_p50, get_p99 = report("get (1 x 20 floats)", ours, raw)

        def ours_all(i: int) -> object:
            return get(VIEW, entities[i])

        def raw_all(i: int) -> object:
            return hgetall(keys[i])

        n_all = get_calls // 4
        ours, raw = interleaved(n_all, 50, ours_all, raw_all)
        report("get (all: HGETALL)", ours, raw)

        # --------------------------------------------------------------------- get_many
        batches = [[{"id": rnd.randrange(N_ENTITIES)} for _ in range(100)] for _ in range(200)]
        batch_keys = [[meta.key(e) for e in b] for b in batches]
        get_many = store.get_many

        def ours_many(i: int) -> object:
            return get_many(VIEW, batches[i % 200], FIELDS)

        def raw_many(i: int) -> object:
            pipe = client.pipeline(transaction=False)
            for key in batch_keys[i % 200]:
                pipe.hmget(key, FIELDS)
            return pipe.execute()

        assert len(ours_many(0)) == len(raw_many(0)) == 100
        for i in range(50):
            ours_many(i)
            raw_many(i)
        ours, raw = interleaved(many_calls, 5, ours_many, raw_many)
        many_ratio, _, _ = report("get_many (100 x 20)", ours, raw)

        store.drop(VIEW)
        store.close()
    finally:
        stop(server)
        shutil.rmtree(tmp, ignore_errors=True)

    checks = [
        (f"get p50 ratio {get_ratio:.3f} <= 1.10", get_ratio <= 1.10),
        (f"get_many p50 ratio {many_ratio:.3f} <= 1.20", many_ratio <= 1.20),
        (f"get p99 {get_p99:.4f} ms < 0.5 ms", get_p99 < 0.5),
    ]
    print("targets: " + "; ".join(f"{text}: {'PASS' if ok else 'FAIL'}" for text, ok in checks))
    print(f"(get p50 {get_p50:.4f} ms)")


if __name__ == "__main__":
    main()
