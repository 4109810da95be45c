"""A real Redis server and a real 3-node Redis Cluster, started by the test setup itself
(127.0.0.1, free ports, through :mod:`strataml.dev.servers`); no mocks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strataml.dev.servers import ServerHandle, start_redis, start_redis_cluster, stop
from strataml_redis import RedisConfig
from strataml_redis.aio import AsyncRedisOnlineStore
from strataml_redis.stores import RedisOnlineStore


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_redis(tmp_path_factory.mktemp("redis"))
    yield handle
    stop(handle)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield handle
    stop(handle)


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_config() -> Callable[..., RedisConfig]:
    def make(handle: ServerHandle, **kwargs: Any) -> RedisConfig:
        cluster = handle.kind == "redis-cluster"
        kwargs.setdefault("key_prefix", unique_prefix())
        kwargs.setdefault("socket_timeout_s", 2.0)
        kwargs.setdefault("connect_timeout_s", 2.0)
        return RedisConfig(type="redis-cluster" if cluster else "redis", url=handle.url, **kwargs)

    return make


def _cleanup(store: RedisOnlineStore) -> None:
    """Drop what a test left behind (its key_prefix is its own)."""
    for view in store.views():
        store.drop(view)


def _sync_store(handle: ServerHandle, config: RedisConfig) -> Iterator[RedisOnlineStore]:
    store = RedisOnlineStore.from_config(config, cluster=handle.kind == "redis-cluster")
    yield store
    _cleanup(store)
    store.close()


def _async_store(handle: ServerHandle, config: RedisConfig) -> Iterator[AsyncRedisOnlineStore]:
    """A native asyncio store (the contract suite drives each test with ``asyncio.run``)."""
    store = AsyncRedisOnlineStore.from_config(config, cluster=handle.kind == "redis-cluster")
    yield store
    asyncio.run(store.aclose())
    with RedisOnlineStore.from_config(config, cluster=handle.kind == "redis-cluster") as sync:
        _cleanup(sync)


@pytest.fixture
def single_store(
    redis_server: ServerHandle, make_config: Callable[..., RedisConfig]
) -> Iterator[RedisOnlineStore]:
    """An empty, isolated sync store on the single server (a key_prefix of its own)."""
    yield from _sync_store(redis_server, make_config(redis_server))


@pytest.fixture
def single_async_store(
    redis_server: ServerHandle, make_config: Callable[..., RedisConfig]
) -> Iterator[AsyncRedisOnlineStore]:
    yield from _async_store(redis_server, make_config(redis_server))


@pytest.fixture
def cluster_store(
    redis_cluster: ServerHandle, make_config: Callable[..., RedisConfig]
) -> Iterator[RedisOnlineStore]:
    """An empty, isolated sync store on the 3-node cluster."""
    yield from _sync_store(redis_cluster, make_config(redis_cluster))


@pytest.fixture
def cluster_async_store(
    redis_cluster: ServerHandle, make_config: Callable[..., RedisConfig]
) -> Iterator[AsyncRedisOnlineStore]:
    yield from _async_store(redis_cluster, make_config(redis_cluster))
