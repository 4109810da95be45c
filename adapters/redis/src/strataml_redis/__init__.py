"""Redis and Redis Cluster online-store adapters for strataml (redis-py).

=============  ======  =================================================================
type           roles   how
=============  ======  =================================================================
redis          online  one Redis server (>= 6.2): one msgpack row per entity key, ``GET``
                       reads, ``MGET`` for ``get_many``, rows replaced atomically by one
                       ``SET ... PXAT`` each, streamed as ready RESP; native asyncio store
                       (``redis.asyncio``)
redis-cluster  online  the same key layout on Redis Cluster: every key carries a hash tag
                       (the entity), pipelines are split by slot by redis-py
=============  ======  =================================================================

See :mod:`strataml_redis.keys` for the key layout.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.registry import Adapter, StackContext
from strataml_redis.config import RedisConfig

__all__ = [
    "ONLINE_CAPS",
    "REDIS",
    "REDIS_CLUSTER",
    "AsyncRedisOnlineStore",
    "RedisConfig",
    "RedisOnlineStore",
]

#: Redis caps a single value at 512 MiB; rows are held to 64 MiB like the embedded LMDB store
#: (so a row that fits one online backend fits the other, and no row stalls the server).
ONLINE_CAPS = Capabilities(
    filter_ops=frozenset(),
    dense=False,
    ttl=True,
    async_api=True,
    transactions=False,
    max_record_bytes=64 * 1024 * 1024,
)


def _online(config: RedisConfig, ctx: StackContext) -> Any:
    from strataml_redis.stores import RedisOnlineStore

    return RedisOnlineStore.from_config(config, cluster=False)


def _online_cluster(config: RedisConfig, ctx: StackContext) -> Any:
    from strataml_redis.stores import RedisOnlineStore

    return RedisOnlineStore.from_config(config, cluster=True)


def _async_online(config: RedisConfig, ctx: StackContext) -> Any:
    from strataml_redis.aio import AsyncRedisOnlineStore

    return AsyncRedisOnlineStore.from_config(config, cluster=False)


def _async_online_cluster(config: RedisConfig, ctx: StackContext) -> Any:
    from strataml_redis.aio import AsyncRedisOnlineStore

    return AsyncRedisOnlineStore.from_config(config, cluster=True)


REDIS = Adapter(
    name="redis",
    package="strataml-redis",
    config=RedisConfig,
    factories={"online": _online},
    async_factories={"online": _async_online},
    capabilities={"online": ONLINE_CAPS},
)

REDIS_CLUSTER = Adapter(
    name="redis-cluster",
    package="strataml-redis",
    config=RedisConfig,
    factories={"online": _online_cluster},
    async_factories={"online": _async_online_cluster},
    capabilities={"online": ONLINE_CAPS},
)


def __getattr__(name: str) -> Any:
    # the store classes import redis-py: load them only when asked for
    if name == "RedisOnlineStore":
        from strataml_redis.stores import RedisOnlineStore

        return RedisOnlineStore
    if name == "AsyncRedisOnlineStore":
        from strataml_redis.aio import AsyncRedisOnlineStore

        return AsyncRedisOnlineStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
