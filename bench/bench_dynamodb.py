"""DynamoDB adapter vs raw boto3 on the same emulator (moto's server), same data, same run.

Starts its own emulator (``strataml_dynamodb.devserver``, 127.0.0.1, a free port) and measures:

* ingest write throughput: ``write_batch`` of 1000 records (one transaction of a few record
  pages) against raw ``BatchWriteItem`` of the same records, one item each (25 per request,
  unprocessed items retried, JSON by orjson), records/s;
* keyed ingest: ``write_batch(key_field=...)`` of 5000 records (the demo's batches: the keys
  checked, then the lease path: ``BatchWriteItem`` of pages and key items, one conditional
  commit) against raw boto3 doing the same idempotent work by hand (``BatchGetItem`` of the
  keys, then ``BatchWriteItem`` of one item per record and one per key), records/s;
* ingest single-record ``write`` (one ``TransactWriteItems`` after a cached head) against a raw
  ``PutItem`` of the same item (the price of ordered, atomic, exactly-once appends) and
  against a raw ``TransactWriteItems`` of the same two actions (the adapter's own overhead);
* ingest ``read`` of pages of 1000 against a raw ``Query`` of the same 1000 items, rows/s;
* online ``get`` (1 entity, all 20 features, decoded) against a raw ``GetItem`` of the same key
  (bytes left undecoded), p50/p99;
* online ``get_many`` of 100 entities against one raw ``BatchGetItem`` of the same 100 keys.

Both sides use the store's own boto3 client, gc enabled, and alternate in blocks (the order
flipping every block) so both see the same machine noise. moto is slow in absolute terms
(a Flask app in one process): the ratios are what carries over to DynamoDB.

    python bench/bench_dynamodb.py [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from strataml import codec
from strataml.dev.servers import stop
from strataml_dynamodb import DynamoDBConfig
from strataml_dynamodb.devserver import start
from strataml_dynamodb.ingest import DynamoDBIngestStore
from strataml_dynamodb.layout import pad_seq, row_pk
from strataml_dynamodb.online import DynamoDBOnlineStore

N_FEATURES = 20
FIELDS = [f"f{i}" for i in range(N_FEATURES)]


def pct(samples: list[int], q: float) -> float:
    """Percentile of nanosecond samples, in milliseconds."""
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


def interleaved(
    calls: int, block: int, a: Callable[[int], object], b: Callable[[int], object]
) -> tuple[list[int], list[int]]:
    """Per-call latencies (ns) of ``a(i)`` and ``b(i)`` in alternating blocks."""
    ta: list[int] = []
    tb: list[int] = []
    clock = time.perf_counter_ns
    for start_ in range(0, calls, block):
        stop_ = min(calls, start_ + block)
        order = ((a, ta), (b, tb)) if (start_ // block) % 2 == 0 else ((b, tb), (a, ta))
        for fn, out in order:
            for i in range(start_, stop_):
                t0 = clock()
                fn(i)
                out.append(clock() - t0)
    return ta, tb


def record(i: int) -> dict[str, Any]:
    return {
        "user": i % 997,
        "action": "click" if i % 3 else "view",
        "item": f"sku-{i % 5003}",
        "price": round(1.5 + (i % 100) / 7, 4),
        "tags": ["a", "b", str(i % 11)],
        "ctx": {"page": i % 40, "ab": "variant-b"},
    }


def raw_batch_write(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    for start_ in range(0, len(items), 25):
        pending = [{"PutRequest": {"Item": it}} for it in items[start_ : start_ + 25]]
        while pending:
            out = client.batch_write_item(RequestItems={table: pending})
            pending = out.get("UnprocessedItems", {}).get(table, [])


def raw_table(client: Any, name: str) -> str:
    """Create table ``name`` (``pk`` S, ``sk`` S, on demand) for the raw side."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def bench_ingest(url: str, quick: bool) -> list[tuple[str, float, float, str]]:
    store = DynamoDBIngestStore.from_config(
        DynamoDBConfig(endpoint_url=url, table_prefix="bench_ingest_")
    )
    # the raw side gets a table of its own: moto's queries and transactions cost time in
    # proportion to the whole table, so neither side pays for the other's items
    client, table = store.client, raw_table(store.client, "bench_raw_ingest")
    batches, size = (3, 1000) if quick else (6, 1000)
    raw_seq = [0]

    def adapter_batch(b: int) -> None:
        store.write_batch("events", [record(b * size + i) for i in range(size)])

    def raw_batch(b: int) -> None:
        now = str(time.time_ns() // 1000)
        items = []
        for i in range(size):
            raw_seq[0] += 1
            items.append(
                {
                    "pk": {"S": "raw#events"},
                    "sk": {"S": pad_seq(raw_seq[0])},
                    "t": {"N": now},
                    "i": {"N": now},
                    "d": {"S": orjson.dumps(record(b * size + i)).decode()},
                }
            )
        raw_batch_write(client, table, items)

    adapter_batch(batches)  # warm up both paths (creates the stream), untimed
    raw_batch(batches)
    ta, tb = interleaved(batches, 1, adapter_batch, raw_batch)
    a_rate = batches * size / (sum(ta) / 1e9)
    r_rate = batches * size / (sum(tb) / 1e9)
    rows = [("ingest write_batch(1000) records/s", a_rate, r_rate, "throughput")]

    keyed, ksize = (2, 5000) if quick else (4, 5000)

    def adapter_keyed(b: int) -> None:
        recs = [{"id": f"e{b}-{i}", **record(b * ksize + i)} for i in range(ksize)]
        store.write_batch("keyed", recs, key_field="id")

    def raw_keyed(b: int) -> None:
        now = str(time.time_ns() // 1000)
        recs = [{"id": f"e{b}-{i}", **record(b * ksize + i)} for i in range(ksize)]
        keys = [{"pk": {"S": "rawk#keyed"}, "sk": {"S": "=" + r["id"]}} for r in recs]
        for start_ in range(0, len(keys), 100):
            request: dict[str, Any] = {"Keys": keys[start_ : start_ + 100], "ConsistentRead": True}
            while request:
                out = client.batch_get_item(RequestItems={table: request})
                request = out.get("UnprocessedKeys", {}).get(table) or {}
        items: list[dict[str, Any]] = []
        for i, r in enumerate(recs):
            raw_seq[0] += 1
            items.append(
                {
                    "pk": {"S": "raw#keyed"},
                    "sk": {"S": pad_seq(raw_seq[0])},
                    "t": {"N": now},
                    "i": {"N": now},
                    "d": {"S": orjson.dumps(r).decode()},
                    "k": {"S": r["id"]},
                }
            )
            items.append({**keys[i], "s": {"N": str(raw_seq[0])}})
        raw_batch_write(client, table, items)

    adapter_keyed(keyed)  # warm up (creates the stream), untimed
    raw_keyed(keyed)
    ta, tb = interleaved(keyed, 1, adapter_keyed, raw_keyed)
    a_rate = keyed * ksize / (sum(ta) / 1e9)
    r_rate = keyed * ksize / (sum(tb) / 1e9)
    rows.append(("ingest keyed write_batch(5000) records/s", a_rate, r_rate, "throughput"))

    # reads: pages of 1000 (adapter: head, the page holding the cursor, a query of pages;
    # raw: a query of the same records, one item each)
    pages = batches

    def adapter_read(p: int) -> None:
        store.read("events", after=str(p * size), limit=size)

    def raw_read(p: int) -> None:
        client.query(
            TableName=table,
            KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues={
                ":p": {"S": "raw#events"},
                ":a": {"S": pad_seq(p * size + 1)},
                ":b": {"S": pad_seq(p * size + size)},
            },
            ConsistentRead=True,
        )

    ta, tb = interleaved(pages, 1, adapter_read, raw_read)
    a_rate, r_rate = pages * size / (sum(ta) / 1e9), pages * size / (sum(tb) / 1e9)
    rows.append(("ingest read(1000) rows/s", a_rate, r_rate, "throughput"))
    store.drop("events")
    store.drop("keyed")
    store.close()

    # single appends, on a table of their own kept small (moto copies the whole table for
    # every action of a transaction: an emulator cost DynamoDB does not have)
    small = DynamoDBIngestStore.from_config(
        DynamoDBConfig(endpoint_url=url, table_prefix="bench_single_")
    )
    n = 40 if quick else 80
    small.write("one", record(0))  # creates the stream, untimed
    single_raw = raw_table(small.client, "bench_raw_single")

    def adapter_one(i: int) -> None:
        small.write("one", record(i))

    def raw_item(i: int) -> dict[str, Any]:
        now = str(time.time_ns() // 1000)
        return {
            "pk": {"S": "raw#one"},
            "sk": {"S": pad_seq(i + 1)},
            "t": {"N": now},
            "i": {"N": now},
            "d": {"S": orjson.dumps(record(i)).decode()},
        }

    def raw_put(i: int) -> None:
        small.client.put_item(TableName=single_raw, Item=raw_item(i))

    def raw_transaction(i: int) -> None:
        # what the adapter sends: the record and a conditional update of a head, atomically
        small.client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": single_raw,
                        "Key": {"pk": {"S": "raw#head"}, "sk": {"S": "#"}},
                        "UpdateExpression": "SET n = :n",
                        "ConditionExpression": "attribute_not_exists(n) OR n = :o",
                        "ExpressionAttributeValues": {":n": {"N": str(i + 1)}, ":o": {"N": str(i)}},
                    }
                },
                {"Put": {"TableName": single_raw, "Item": raw_item(n + i)}},
            ]
        )

    ta, tb = interleaved(n, 10, adapter_one, raw_put)
    rows.append(("ingest write(1) p50 ms vs PutItem", pct(ta, 0.5), pct(tb, 0.5), "latency"))
    rows.append(("ingest write(1) p99 ms vs PutItem", pct(ta, 0.99), pct(tb, 0.99), "latency"))
    ta, tb = interleaved(n, 10, adapter_one, raw_transaction)
    rows.append(("ingest write(1) p50 ms vs TransactWrite", pct(ta, 0.5), pct(tb, 0.5), "latency"))
    rows.append(
        ("ingest write(1) p99 ms vs TransactWrite", pct(ta, 0.99), pct(tb, 0.99), "latency")
    )
    small.close()
    return rows


def bench_online(url: str, quick: bool) -> list[tuple[str, float, float, str]]:
    store = DynamoDBOnlineStore.from_config(
        DynamoDBConfig(endpoint_url=url, table_prefix="bench_online_")
    )
    client, table = store.client, store.table
    n = 1500 if quick else 3000
    rng = np.random.default_rng(7)
    cols: dict[str, Any] = {"id": pa.array(np.arange(n, dtype=np.int64))}
    for name in FIELDS:
        cols[name] = pa.array(rng.random(n))
    data = pa.table(cols)
    t0 = time.perf_counter()
    store.write("bench", data, entities=["id"])
    write_s = time.perf_counter() - t0
    # raw: the same rows, encoded the same way (timed too), BatchWriteItem of 25 (a second copy)
    view_id = b"\xfe" * 8
    t0 = time.perf_counter()
    items = [
        {
            "pk": {"B": row_pk(view_id, codec.encode_key([r["id"]]))},
            "f": {"B": codec.encode_row({k: r[k] for k in FIELDS})},
        }
        for r in data.to_pylist()
    ]
    raw_batch_write(client, table, items)
    raw_write_s = time.perf_counter() - t0
    out = [("online write rows/s", n / write_s, n / raw_write_s, "throughput")]

    meta = store._view("bench")
    keys = [row_pk(meta.view_id, codec.encode_key([i])) for i in range(n)]
    calls = 120 if quick else 300

    def adapter_get(i: int) -> None:
        store.get("bench", {"id": (i * 7919) % n})

    def raw_get(i: int) -> None:
        client.get_item(
            TableName=table,
            Key={"pk": {"B": keys[(i * 7919) % n]}},
            ConsistentRead=True,
            ProjectionExpression="f, e",
        )

    ta, tb = interleaved(calls, 25, adapter_get, raw_get)
    out.append(("online get p50 ms", pct(ta, 0.5), pct(tb, 0.5), "latency"))
    out.append(("online get p99 ms", pct(ta, 0.99), pct(tb, 0.99), "latency"))

    many = 16 if quick else 40
    batches = [[(j * 131 + i * 17) % n for j in range(100)] for i in range(many)]

    def adapter_many(i: int) -> None:
        store.get_many("bench", [{"id": e} for e in batches[i]])

    def raw_many(i: int) -> None:
        request: dict[str, Any] = {
            "Keys": [{"pk": {"B": keys[e]}} for e in batches[i]],
            "ConsistentRead": True,
            "ProjectionExpression": "pk, f, e",
        }
        while request:
            res = client.batch_get_item(RequestItems={table: request})
            request = res.get("UnprocessedKeys", {}).get(table) or {}

    ta, tb = interleaved(many, 5, adapter_many, raw_many)
    out.append(("online get_many(100) p50 ms", pct(ta, 0.5), pct(tb, 0.5), "latency"))
    out.append(("online get_many(100) p99 ms", pct(ta, 0.99), pct(tb, 0.99), "latency"))
    store.drop("bench")
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (< 1 minute)")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench-dynamodb-")
    handle = start(workdir)
    try:
        t0 = time.perf_counter()
        rows = bench_ingest(handle.url, args.quick) + bench_online(handle.url, args.quick)
        elapsed = time.perf_counter() - t0
    finally:
        stop(handle)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"DynamoDB adapter vs raw boto3 on moto ({'quick' if args.quick else 'full'} run)")
    print(f"{'metric':42} {'strataml':>12} {'raw boto3':>12} {'ratio':>8}")
    for name, ours, raw, kind in rows:
        # throughput: ours/raw (>= 0.9 is the target); latency: ours/raw (<= 1.1)
        ratio = ours / raw if raw else float("nan")
        print(f"{name:42} {ours:12.2f} {raw:12.2f} {ratio:7.2f}x  ({kind})")
    print(f"elapsed {elapsed:.1f} s")


if __name__ == "__main__":
    main()
