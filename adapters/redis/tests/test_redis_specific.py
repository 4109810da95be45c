"""Redis-specific behaviour: key layout and hash tags, encoding, TTLs on keys, prefixes,
reconnection after a restart, secrets, error translation, registration."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from strataml import codec
from strataml.dev.servers import ServerHandle, free_port, start_redis, stop
from strataml.errors import BackendError, InvalidInput, NotFound, StrataError, Unavailable
from strataml.local.lmdb_online import LMDBOnlineStore
from strataml.registry import StackContext, get_adapter
from strataml.stack import open_stack
from strataml.testing.online import VALUE_SAMPLES, same_value
from strataml_redis import ONLINE_CAPS, REDIS, REDIS_CLUSTER, RedisConfig
from strataml_redis._encode import expire_at_ms
from strataml_redis.aio import AsyncRedisOnlineStore
from strataml_redis.keys import KeyLayout
from strataml_redis.stores import RedisOnlineStore

UTC = dt.UTC
SECRET = "s3cr3t-Pa55word"


def _row_key(store: RedisOnlineStore, view: str, *values: Any) -> bytes:
    return KeyLayout.row_key(store._layout.row_head(view), codec.encode_key(list(values)))


def _keys(store: RedisOnlineStore) -> list[bytes]:
    return sorted(store.client.scan_iter(match=f"{store._layout.prefix}:*", count=1000))


@pytest.fixture(params=["single", "cluster"])
def store(request: pytest.FixtureRequest) -> RedisOnlineStore:
    name = "single_store" if request.param == "single" else "cluster_store"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerHandle]:
    """A server of this test alone (it gets stopped, restarted or given a password)."""
    handle = start_redis(tmp_path)
    yield handle
    stop(handle)


# ---------------------------------------------------------------------------------- layout
@settings(max_examples=300, deadline=None)
@given(value=st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.text(max_size=30))
def test_fast_key_path_matches_codec(value: Any) -> None:
    from strataml_redis._core import ViewMeta

    layout = KeyLayout("p")
    meta = ViewMeta("v", _core_meta(["id"]), layout, 0.0)
    assert meta.key({"id": value}) == KeyLayout.row_key(
        layout.row_head("v"), codec.encode_key([value])
    )


def _core_meta(cols: list[str]) -> bytes:
    from strataml_redis._core import encode_meta

    return encode_meta(cols, 0)


def test_key_layout_and_hash_tags(store: RedisOnlineStore) -> None:
    prefix = store._layout.prefix
    store.write("users", [{"t": "acme", "u": 7, "x": 1.5}], entities=["t", "u"])
    key = _row_key(store, "users", "acme", 7)
    expected_tag = codec.encode_key(["acme", 7]).hex()
    assert key == f"{prefix}:users:{{{expected_tag}}}".encode()
    assert _keys(store) == sorted([f"{prefix}:_views".encode(), key])
    # exactly one hash tag, and it is the entity
    assert key.count(b"{") == 1
    assert key[key.index(b"{") + 1 : key.index(b"}")] == expected_tag.encode()
    # one string per entity: the row as a msgpack map, exactly codec.encode_row's bytes
    assert store.client.type(key) == b"string"
    assert store.client.get(key) == codec.encode_row({"x": 1.5})
    meta = codec.decode_value(store.client.hget(f"{prefix}:_views", "users"))
    assert meta[0] == ["t", "u"]


def test_view_names_are_escaped_in_keys(store: RedisOnlineStore) -> None:
    odd, plain = "a{b}:*c?[x] ü", "a"
    store.write(odd, [{"id": 1, "v": "odd"}], entities=["id"])
    store.write(plain, [{"id": 1, "v": "plain"}], entities=["id"])
    key = _row_key(store, odd, 1)
    assert key.count(b"{") == 1
    assert key.count(b"}") == 1
    assert store.client.exists(key) == 1
    assert store.views() == sorted([odd, plain])
    store.drop(odd)
    assert store.get(plain, {"id": 1}) == {"v": "plain"}
    assert store.views() == [plain]
    assert _keys(store) == sorted(
        [f"{store._layout.prefix}:_views".encode(), _row_key(store, "a", 1)]
    )


def test_cluster_rows_spread_and_entities_share_a_slot(cluster_store: RedisOnlineStore) -> None:
    store, client = cluster_store, cluster_store.client
    rows = [{"id": i, "v": i} for i in range(60)]
    store.write("a", rows, entities=["id"])
    store.write("b", rows, entities=["id"])
    keys_a = [_row_key(store, "a", i) for i in range(60)]
    nodes = {client.get_node_from_key(k).name for k in keys_a}
    assert len(nodes) == 3  # the rows spread over every node
    for i in range(60):
        assert client.keyslot(_row_key(store, "a", i)) == client.keyslot(_row_key(store, "b", i))
    # get_many spanning every node is still one call, in order
    got = store.get_many("a", [{"id": i} for i in reversed(range(60))], ["v"])
    assert got == [{"v": i} for i in reversed(range(60))]


# -------------------------------------------------------------------------------- encoding
def test_binary_safe_values_and_keys(store: RedisOnlineStore) -> None:
    blob = b"\x00\xff\x00{}\r\n" + bytes(range(256))
    keys = ["\x00", "}{", "a}b{c", "\r\n*1\r\n", "ü\x00ü", b"\xff".decode("latin-1")]
    store.write(
        "bin",
        [{"k": k, "b": blob, "s": f"\x00{k}\xff", "nul": b"\x00"} for k in keys],
        entities=["k"],
    )
    got = store.get_many("bin", [{"k": k} for k in keys])
    assert got == [{"b": blob, "s": f"\x00{k}\xff", "nul": b"\x00"} for k in keys]
    assert store.get("bin", {"k": "}{"}, ["nul", "b"]) == {"nul": b"\x00", "b": blob}


def test_rows_decode_like_the_embedded_store(store: RedisOnlineStore, tmp_path: Path) -> None:
    row = {name: value for name, (value, _) in VALUE_SAMPLES.items()}
    store.write("v", [{"id": 1, **row}], entities=["id"])
    with LMDBOnlineStore(tmp_path / "lmdb", sync=False) as lmdb_store:
        lmdb_store.write("v", [{"id": 1, **row}], entities=["id"])
        want = lmdb_store.get("v", {"id": 1})
    got = store.get("v", {"id": 1})
    assert same_value(got, want)
    # the stored value decodes with strataml.codec like the embedded store's rows
    raw = store.client.get(_row_key(store, "v", 1))
    assert same_value(codec.decode_row(raw), want)


def test_wide_row(store: RedisOnlineStore) -> None:
    row = {f"f{i:04d}": i for i in range(2500)}
    store.write("wide", [{"id": 1, **row}], entities=["id"])
    assert store.get("wide", {"id": 1}) == row
    assert store.get("wide", {"id": 1}, ["f2499", "f0000", "zz"]) == {
        "f2499": 2499,
        "f0000": 0,
        "zz": None,
    }


def test_many_pipelines_per_write(redis_server: ServerHandle, make_config: Any) -> None:
    config = make_config(redis_server, write_batch_size=3)
    with RedisOnlineStore.from_config(config) as store:
        rows = [{"id": i % 7, "v": i} for i in range(20)]  # duplicates: the last one wins
        assert store.write("p", rows, entities=["id"]) == 20
        assert store.get_many("p", [{"id": i} for i in range(7)]) == [
            {"v": max(j for j in range(20) if j % 7 == i)} for i in range(7)
        ]
        store.drop("p")


# --------------------------------------------------------------------------------------- TTL
def test_ttl_set_on_keys(store: RedisOnlineStore) -> None:
    t0 = time.monotonic()
    store.write("t", [{"id": 1, "v": 1}], entities=["id"], ttl=dt.timedelta(seconds=30))
    store.write("t", [{"id": 2, "v": 2}], entities=["id"])
    event = dt.datetime.now(UTC) - dt.timedelta(minutes=10)
    store.write(
        "t", [{"id": 3, "ts": event, "v": 3}], entities=["id"], ttl=dt.timedelta(hours=1),
        event_time="ts",
    )  # fmt: skip
    k1, k2, k3 = (_row_key(store, "t", i) for i in (1, 2, 3))
    left = store.client.pttl(k1)  # counted from the write, which began at t0
    assert 30_000 - math.ceil((time.monotonic() - t0) * 1000) - 5 <= left <= 30_000
    assert store.client.pttl(k2) == -1  # no ttl: no expiry
    remaining = store.client.pttl(k3)
    assert 49 * 60_000 < remaining < 50 * 60_000  # counted from the event time
    assert store.client.exists(k1) == 1
    # rewriting without ttl removes the expiry
    store.write("t", [{"id": 1, "v": 9}], entities=["id"])
    assert store.client.pttl(k1) == -1


@settings(max_examples=150, deadline=None)
@given(
    expiry=st.integers(min_value=10**9, max_value=10**17),
    delta=st.integers(min_value=-5_000, max_value=5_000),
)
def test_expiry_is_never_late(expiry: int, delta: int) -> None:
    # Redis shows a key while its clock in ms is not past the PEXPIREAT value
    now_us = expiry + delta
    visible = now_us // 1000 <= expire_at_ms(expiry)
    if now_us >= expiry:
        assert not visible  # never visible at or after the expiry
    elif now_us < expiry - 1000:
        assert visible  # hidden at most 1 ms early


def test_expired_rows_are_gone_for_every_call(store: RedisOnlineStore) -> None:
    store.write("t", [{"id": i, "v": i} for i in range(3)], entities=["id"])
    store.write("t", [{"id": 1, "v": 1}], entities=["id"], ttl=dt.timedelta(milliseconds=30))
    time.sleep(0.05)
    assert store.get("t", {"id": 1}) is None
    assert store.get("t", {"id": 1}, []) is None
    assert store.get("t", {"id": 1}, ["nope"]) is None
    assert store.get("t", {"id": 0}, ["nope"]) == {"nope": None}
    assert store.get("t", {"id": 0}, []) == {}
    assert store.get_many("t", [{"id": 1}, {"id": 2}], ["v"]) == [None, {"v": 2}]
    assert store.delete("t", [{"id": 1}, {"id": 2}]) == 1  # expired rows do not count


# ---------------------------------------------------------------------------------- prefixes
def test_key_prefix_isolation(redis_server: ServerHandle, make_config: Any) -> None:
    with (
        RedisOnlineStore.from_config(make_config(redis_server, key_prefix="iso:a")) as a,
        RedisOnlineStore.from_config(make_config(redis_server, key_prefix="iso:a:b")) as b,
    ):
        a.write("v", [{"id": 1, "x": "a"}], entities=["id"])
        b.write("v", [{"id": 1, "x": "b"}], entities=["id"])
        b.write("w", [{"k": "z", "x": "b"}], entities=["k"])
        assert a.get("v", {"id": 1}) == {"x": "a"}
        assert b.get("v", {"id": 1}) == {"x": "b"}
        assert a.views() == ["v"]
        assert b.views() == ["v", "w"]
        with pytest.raises(NotFound):
            a.get("w", {"k": "z"})
        a.drop("v")
        assert b.get("v", {"id": 1}) == {"x": "b"}
        assert b.get("w", {"k": "z"}) == {"x": "b"}
        for view in b.views():
            b.drop(view)
        assert list(a.client.scan_iter(match="iso:*")) == []


# ---------------------------------------------------------------------- several processes
def test_other_store_sees_drop_and_recreate(redis_server: ServerHandle, make_config: Any) -> None:
    config = make_config(redis_server, view_cache_s=0.2)
    with RedisOnlineStore.from_config(config) as a, RedisOnlineStore.from_config(config) as b:
        a.write("v", [{"id": 1, "x": 1}], entities=["id"])
        assert b.get("v", {"id": 1}) == {"x": 1}  # b caches the view
        a.drop("v")
        a.write("v", [{"t": "k", "u": 2, "x": 2}], entities=["t", "u"])
        # a mapping that fits the new columns is re-checked at once
        assert b.get("v", {"t": "k", "u": 2}) == {"x": 2}
        a.drop("v")
        time.sleep(0.25)
        with pytest.raises(NotFound):
            b.get("v", {"t": "k", "u": 2})
        with pytest.raises(NotFound):
            b.get_many("v", [{"t": "k", "u": 2}])


def test_drop_removes_orphaned_rows(store: RedisOnlineStore) -> None:
    store.write("v", [{"id": i, "x": i} for i in range(30)], entities=["id"])
    store.client.hdel(store._layout.registry, "v")  # as if an earlier drop was interrupted
    assert "v" not in store.views()
    store.drop("v")
    assert _keys(store) == []


# ---------------------------------------------------------------------------- reconnection
def test_reconnects_after_server_restart(
    own_server: ServerHandle, make_config: Any, tmp_path: Path
) -> None:
    config = make_config(own_server)
    handle = own_server
    with RedisOnlineStore.from_config(config) as store:
        store.write("v", [{"id": 1, "x": 1}], entities=["id"])
        assert store.get("v", {"id": 1}) == {"x": 1}
        stop(handle)
        with pytest.raises(Unavailable) as info:
            store.get("v", {"id": 1})
        assert isinstance(info.value.__cause__, redis.ConnectionError)
        handle = start_redis(tmp_path / "again", port=own_server.port)
        try:
            # the new server is empty (no persistence); the pooled connection was dropped
            store.write("v", [{"id": 2, "x": 2}], entities=["id"])
            assert store.get_many("v", [{"id": 1}, {"id": 2}]) == [None, {"x": 2}]
            assert store.views() == ["v"]
        finally:
            stop(handle)


def test_async_reconnects_after_server_restart(
    own_server: ServerHandle, make_config: Any, tmp_path: Path
) -> None:
    config = make_config(own_server)

    async def body() -> None:
        store = AsyncRedisOnlineStore.from_config(config)
        try:
            await store.write("v", [{"id": 1, "x": 1}], entities=["id"])
            stop(own_server)
            with pytest.raises(Unavailable):
                await store.get("v", {"id": 1})
            handle = start_redis(tmp_path / "again", port=own_server.port)
            try:
                await store.write("v", [{"id": 2, "x": 2}], entities=["id"])
                assert await store.get_many("v", [{"id": 1}, {"id": 2}]) == [None, {"x": 2}]
            finally:
                stop(handle)
        finally:
            await store.aclose()

    asyncio.run(body())


# --------------------------------------------------------------------------------- secrets
def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_password_never_in_errors_or_reprs(own_server: ServerHandle) -> None:
    nobody = free_port()
    config = RedisConfig(url=f"redis://:{SECRET}@127.0.0.1:{nobody}/0", connect_timeout_s=1)
    store = RedisOnlineStore.from_config(config)
    assert SECRET not in repr(store)
    assert SECRET not in repr(config)
    with pytest.raises(Unavailable) as info:
        store.get("v", {"id": 1})
    assert SECRET not in _all_text(info.value)
    store.close()
    with pytest.raises(Unavailable) as info:
        store.get("v", {"id": 1})  # closed
    assert SECRET not in _all_text(info.value)

    admin = redis.Redis(port=own_server.port)
    admin.config_set("requirepass", SECRET)
    admin.close()
    wrong = RedisConfig(url=f"redis://:{SECRET}x@127.0.0.1:{own_server.port}/0")
    with RedisOnlineStore.from_config(wrong) as bad:
        with pytest.raises(Unavailable) as info:
            bad.write("v", [{"id": 1}], entities=["id"])
        assert SECRET not in _all_text(info.value)
        assert "password" in str(info.value)
    right = RedisConfig(url=f"redis://:{SECRET}@127.0.0.1:{own_server.port}/0")
    with RedisOnlineStore.from_config(right) as good:
        good.write("v", [{"id": 1, "x": 1}], entities=["id"])
        assert good.get("v", {"id": 1}) == {"x": 1}
        assert SECRET not in repr(good)


def test_cluster_unreachable_is_unavailable() -> None:
    config = RedisConfig(
        type="redis-cluster", url=f"redis://:{SECRET}@127.0.0.1:{free_port()}/0",
        connect_timeout_s=0.5,
    )  # fmt: skip
    with pytest.raises(Unavailable) as info:
        RedisOnlineStore.from_config(config, cluster=True)
    assert SECRET not in _all_text(info.value)


# ---------------------------------------------------------------------------------- errors
def test_foreign_key_under_prefix_is_backend_error(store: RedisOnlineStore) -> None:
    store.write("v", [{"id": 1, "x": 1}], entities=["id"])
    key = _row_key(store, "v", 2)
    store.client.set(key, b"not a row")
    with pytest.raises(BackendError, match="did not encode"):
        store.get("v", {"id": 2})
    with pytest.raises(BackendError, match="did not encode"):
        store.get_many("v", [{"id": 1}, {"id": 2}])
    store.client.set(key, codec.encode_value([1, 2]))  # valid msgpack, not a map
    with pytest.raises(BackendError, match="not a msgpack map"):
        store.get("v", {"id": 2})
    with pytest.raises(BackendError, match="not a msgpack map"):
        store.get_many("v", [{"id": 2}, {"id": 1}])
    store.client.delete(key)
    store.client.hset(key, "x", b"1")  # another type altogether
    with pytest.raises(BackendError) as info:
        store.get("v", {"id": 2})
    assert isinstance(info.value.__cause__, redis.ResponseError)
    assert "key_prefix" in str(info.value)
    if store._settings.cluster:  # a pipeline of GET: the same error
        with pytest.raises(BackendError):
            store.get_many("v", [{"id": 1}, {"id": 2}])
    else:  # MGET reads a key of another type as missing (Redis's semantics)
        assert store.get_many("v", [{"id": 1}, {"id": 2}]) == [{"x": 1}, None]
    # a write replaces whatever the key held
    store.write("v", [{"id": 2, "x": 2}], entities=["id"])
    assert store.get("v", {"id": 2}) == {"x": 2}


def test_bad_read_arguments(store: RedisOnlineStore) -> None:
    store.write("v", [{"id": 1, "x": 1}], entities=["id"])
    with pytest.raises(InvalidInput):
        store.get("v", {"id": 1}, "x")  # a bare string
    with pytest.raises(InvalidInput):
        store.get("v", {"id": 1}, [1])
    with pytest.raises(InvalidInput):
        store.get_many("v", {"id": 1})
    with pytest.raises(InvalidInput):
        store.get(["v"], {"id": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        store.write("", [{"id": 1}], entities=["id"])
    with pytest.raises(InvalidInput):
        store.write("v" * 300, [{"id": 1}], entities=["id"])
    with pytest.raises(InvalidInput):
        store.write("v", [{"id": 1, "\ud800": 1}], entities=["id"])  # not encodable as UTF-8
    assert store.get("v", {"id": 1}) == {"x": 1}


def test_closed_store_is_unavailable(redis_server: ServerHandle, make_config: Any) -> None:
    store = RedisOnlineStore.from_config(make_config(redis_server))
    store.close()
    store.close()
    for call in (
        lambda: store.get("v", {"id": 1}),
        lambda: store.write("v", [{"id": 1}], entities=["id"]),
        store.views,
    ):
        with pytest.raises(Unavailable):
            call()


# ---------------------------------------------------------------------------- registration
def test_adapters_are_registered() -> None:
    assert get_adapter("redis") is REDIS
    assert get_adapter("redis-cluster") is REDIS_CLUSTER
    for adapter in (REDIS, REDIS_CLUSTER):
        assert adapter.capabilities["online"] is ONLINE_CAPS
        assert "online" in adapter.async_factories
    assert ONLINE_CAPS.ttl
    assert ONLINE_CAPS.async_api
    assert ONLINE_CAPS.filter_ops == frozenset()


@pytest.mark.parametrize("kind", ["single", "cluster"])
def test_factories_build_working_stores(
    kind: str, request: pytest.FixtureRequest, make_config: Callable[..., RedisConfig]
) -> None:
    handle = request.getfixturevalue("redis_server" if kind == "single" else "redis_cluster")
    config = make_config(handle)
    adapter = REDIS if kind == "single" else REDIS_CLUSTER
    store = adapter.factories["online"](config, StackContext())
    astore = adapter.async_factories["online"](config, StackContext())
    try:
        assert isinstance(store, RedisOnlineStore)
        assert isinstance(astore, AsyncRedisOnlineStore)
        store.write("f", [{"id": 1, "x": [1, 2]}], entities=["id"])

        async def read() -> Any:
            return await astore.get("f", {"id": 1})

        assert asyncio.run(read()) == {"x": [1, 2]}
        store.drop("f")
    finally:
        asyncio.run(astore.aclose())
        store.close()


def test_stack_profile(redis_server: ServerHandle, tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'[online]\ntype = "redis"\nurl = "{redis_server.url}"\nkey_prefix = "stack1"\n'
        'require = ["ttl"]\n'
    )
    with open_stack(str(profile), data_dir=tmp_path) as stack:
        stack.online.write("s", [{"id": 1, "x": 1}], entities=["id"])
        assert stack.online.get("s", {"id": 1}) == {"x": 1}
        assert isinstance(stack.online_async, AsyncRedisOnlineStore)
        stack.online.drop("s")


def test_errors_are_strataml_errors() -> None:
    # every error the translation can produce is part of the strataml hierarchy
    from strataml_redis.errors import translate

    samples = [
        redis.ConnectionError("x"),
        redis.TimeoutError("x"),
        redis.AuthenticationError("x"),
        redis.ResponseError("WRONGTYPE x"),
        redis.ResponseError("OOM x"),
        redis.exceptions.ClusterDownError("x"),
        redis.exceptions.RedisClusterException("x"),
        redis.DataError("x"),
    ]
    kinds = [type(translate(e, "op")) for e in samples]
    assert all(issubclass(k, StrataError) for k in kinds)
    assert kinds[:3] == [Unavailable, Unavailable, Unavailable]
    assert kinds[-1] is InvalidInput
    assert "****" in str(translate(redis.ConnectionError(f"redis://:{SECRET}@h:1"), "op"))


# ------------------------------------------------------------------------------- async extras
@pytest.mark.parametrize("kind", ["single", "cluster"])
def test_async_views_drop_and_full_rows(
    kind: str, request: pytest.FixtureRequest, make_config: Callable[..., RedisConfig]
) -> None:
    handle = request.getfixturevalue("redis_server" if kind == "single" else "redis_cluster")
    config = make_config(handle)

    async def body() -> None:
        store = AsyncRedisOnlineStore.from_config(config, cluster=kind == "cluster")
        try:
            rows = [{"id": i, "x": float(i), "tags": ["a", str(i)]} for i in range(40)]
            await store.write("a", rows, entities=["id"])
            await store.write("b", [{"k": "z"}], entities=["k"])
            assert await store.views() == ["a", "b"]
            assert await store.get("a", {"id": 3}) == {"x": 3.0, "tags": ["a", "3"]}
            assert await store.get("b", {"k": "z"}) == {}
            got = await store.get_many("a", [{"id": 39}, {"id": 99}, {"id": 0}])
            assert got == [{"x": 39.0, "tags": ["a", "39"]}, None, {"x": 0.0, "tags": ["a", "0"]}]
            await store.drop("a")
            assert await store.views() == ["b"]
            with pytest.raises(NotFound):
                await store.get("a", {"id": 3})
            await store.drop("b")
            keys = [k async for k in store.client.scan_iter(match=f"{config.key_prefix}:*")]
            assert keys == []
        finally:
            await store.aclose()
        with pytest.raises(Unavailable):
            await store.get("b", {"k": "z"})
        await store.aclose()  # idempotent

    asyncio.run(body())


def test_async_store_sync_close_inside_a_loop(
    redis_server: ServerHandle, make_config: Callable[..., RedisConfig]
) -> None:
    async def body() -> None:
        store = AsyncRedisOnlineStore.from_config(make_config(redis_server))
        await store.write("v", [{"id": 1}], entities=["id"])
        await store.drop("v")
        store.close()  # e.g. Stack.close() from a sync callback while the loop runs
        await asyncio.sleep(0.01)
        with pytest.raises(Unavailable):
            await store.views()

    asyncio.run(body())


def test_threads_share_one_store(single_store: RedisOnlineStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = single_store
    store.write("v", [{"id": i, "x": i} for i in range(100)], entities=["id"])

    def work(t: int) -> bool:
        for i in range(100):
            j = (i * 7 + t) % 120
            want = {"x": j} if j < 100 else None
            if store.get("v", {"id": j}, ["x"]) != want:
                return False
        return store.get_many("v", [{"id": t}, {"id": 200}]) == [{"x": t}, None]

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(16)))


def test_write_accepts_readers_generators_and_dataframes(store: RedisOnlineStore) -> None:
    import pyarrow as pa

    table = pa.table({"id": [1, 2], "x": [0.5, 1.5]})
    assert store.write("r", table.to_reader(), entities=["id"]) == 2
    assert store.write("g", ({"id": i, "x": i} for i in range(3)), entities=["id"]) == 3
    assert store.get_many("r", [{"id": 1}, {"id": 2}]) == [{"x": 0.5}, {"x": 1.5}]
    assert store.get("g", {"id": 2}) == {"x": 2}
    pd = pytest.importorskip("pandas")
    assert store.write("d", pd.DataFrame({"id": ["a"], "x": [3]}), entities=["id"]) == 1
    assert store.get("d", {"id": "a"}) == {"x": 3}
