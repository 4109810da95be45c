"""The column-wise row encoder and the packed write path of the Redis store.

Property: for any Arrow table, the rows encoded column-wise (numpy byte matrices for
fixed-width columns) decode exactly like :func:`strataml.codec.encode_row` of the same rows
converted value by value -- the path every other online store uses.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from strataml import codec
from strataml.dev.servers import ServerHandle
from strataml.errors import BackendError, InvalidInput, LimitExceeded
from strataml.online_rows import to_batch
from strataml_redis._encode import EXPIRED, encode_write, fixed_values
from strataml_redis.config import RedisConfig
from strataml_redis.stores import RedisOnlineStore

UTC = dt.UTC

_INT_TYPES = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(),
              pa.uint32(), pa.uint64()]  # fmt: skip


def _ints(t: pa.DataType) -> st.SearchStrategy[int]:
    bits = t.bit_width
    if pa.types.is_unsigned_integer(t):
        return st.integers(0, 2**bits - 1)
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


_instants = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@st.composite
def columns(draw: st.DrawFn, n: int) -> pa.Array:
    kind = draw(st.sampled_from(["float", "float32", "int", "bool", "ts", "tsz", "date", "str",
                                 "bin", "list"]))  # fmt: skip
    nulls = draw(st.booleans())

    def values(strategy: st.SearchStrategy[Any]) -> list[Any]:
        elem = st.one_of(st.none(), strategy) if nulls else strategy
        return draw(st.lists(elem, min_size=n, max_size=n))

    if kind == "float":
        return pa.array(values(st.floats(allow_nan=True, allow_infinity=True)), pa.float64())
    if kind == "float32":
        return pa.array(values(st.floats(width=32)), pa.float32())
    if kind == "int":
        t = draw(st.sampled_from(_INT_TYPES))
        return pa.array(values(_ints(t)), t)
    if kind == "bool":
        return pa.array(values(st.booleans()), pa.bool_())
    if kind == "ts":
        return pa.array([None if v is None else v.replace(tzinfo=None) for v in values(_instants)],
                        pa.timestamp("us"))  # fmt: skip
    if kind == "tsz":
        return pa.array(values(_instants), pa.timestamp("ms", tz="Europe/Paris"))
    if kind == "date":
        return pa.array(values(st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1))), pa.date32())
    if kind == "str":
        return pa.array(values(st.sampled_from(["", "a", "ü\x00", "long" * 20])), pa.string())
    if kind == "bin":
        return pa.array(values(st.binary(max_size=20)), pa.binary())
    return pa.array(values(st.lists(st.integers(-5, 5), max_size=3)), pa.list_(pa.int64()))


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(0, 12))
    width = draw(st.integers(0, 20))
    cols = {f"f{i}": draw(columns(n)) for i in range(width)}
    return pa.table({"id": pa.array(range(n), pa.int64()), **cols})


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@settings(max_examples=200, deadline=None)
@given(table=tables())
def test_column_wise_rows_decode_like_encode_row(table: pa.Table) -> None:
    enc = encode_write(to_batch(table, ("id",), None, "w"), b"h:{", None, 0, None, "w")
    rows = list(to_batch(table, ("id",), None, "w").features)  # the value-by-value path
    assert enc.n == len(rows) == table.num_rows
    for blob, row in zip(enc.values, rows, strict=True):
        got = codec.decode_row(blob)
        want = codec.decode_row(codec.encode_row(row))
        assert _same(got, want), (got, want)
        assert list(got) == list(table.column_names[1:])  # column order kept


def test_fixed_width_columns_are_the_vectorised_ones() -> None:
    assert fixed_values(pa.chunked_array([pa.array([1.5, 2.0])])) is not None
    assert fixed_values(pa.chunked_array([pa.array([1, None])])) is None  # nulls: per value
    assert fixed_values(pa.chunked_array([pa.array(["a"])])) is None


def test_expiries_and_limits() -> None:
    now = 1_700_000_000_000_000
    table = pa.table({"id": [1, 2], "ts": pa.array([now - 10**9, now], pa.timestamp("us")),
                      "x": [1.0, 2.0]})  # fmt: skip
    enc = encode_write(to_batch(table, ("id",), "ts", "w"), b"h:{", 5 * 10**8, now, None, "w")
    assert enc.expire_ms == [EXPIRED, (now + 5 * 10**8) // 1000 - 1]
    with pytest.raises(LimitExceeded, match="row 0"):
        encode_write(to_batch(table, ("id",), None, "w"), b"h:{", None, now, 10, "w")


def test_bad_values_name_row_and_feature() -> None:
    rows = [{"id": 1, "a": 1}, {"id": 2, "a": 2, "b": object()}]
    with pytest.raises(InvalidInput, match=r"row 1: feature 'b'"):
        encode_write(to_batch(rows, ("id",), None, "w"), b"h:{", None, 0, None, "w")
    with pytest.raises(InvalidInput, match="row 1"):
        encode_write(to_batch([{"id": 1}, {"id": 1.5}], ("id",), None, "w"), b"h:{", None, 0,
                     None, "w")  # fmt: skip


def test_packed_write_error_reply_is_translated_and_the_store_recovers(
    redis_server: ServerHandle, make_config: Callable[..., RedisConfig]
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    with RedisOnlineStore.from_config(make_config(redis_server)) as store:
        store.write("v", [{"id": 0, "x": 0}], entities=["id"])
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", str(used + 256 * 1024))
        try:
            rows = pa.table({"id": list(range(2000)), "blob": [b"x" * 1024] * 2000})
            with pytest.raises(BackendError, match="maxmemory"):
                store.write("v", rows, entities=["id"])
        finally:
            admin.config_set("maxmemory", "0")
        # rows are replaced whole, each on its own: a row is the old one, a new one, or none
        blob = {"blob": b"x" * 1024}
        for i, row in enumerate(store.get_many("v", [{"id": i} for i in range(2000)])):
            assert row in (None, blob, {"x": 0} if i == 0 else None), i
        store.write("v", [{"id": 1, "x": 1}], entities=["id"])  # a fresh connection works
        assert store.get("v", {"id": 1}) == {"x": 1}
        store.drop("v")
    admin.close()
