"""Building redis-py clients (sync and asyncio, single node and cluster) from a config.

Clients connect lazily (single node) or discover the cluster's slots at construction
(cluster); either way a failure surfaces as :class:`~strataml.errors.Unavailable`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from strataml.errors import ConfigError, StrataError
from strataml_redis.config import RedisConfig
from strataml_redis.errors import DRIVER_ERRORS, translate

__all__ = ["async_client", "describe", "sync_client"]


def describe(url: str) -> str:
    """``scheme://host:port/db`` of a URL: what may appear in reprs and errors (no secrets)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "redis://<unparsable url>"
    return f"{parts.scheme}://{host}{port}{parts.path or ''}"


def _common(config: RedisConfig) -> dict[str, Any]:
    return {
        "socket_timeout": config.socket_timeout_s,
        "socket_connect_timeout": config.connect_timeout_s,
        "max_connections": config.max_connections,
    }


def _fail(exc: BaseException, url: str, cluster: bool) -> StrataError:
    kind = "Redis Cluster" if cluster else "Redis"
    if isinstance(exc, ValueError | TypeError):
        return ConfigError(f"invalid {kind} url {describe(url)}: {type(exc).__name__}")
    return translate(exc, f"connecting to {kind} at {describe(url)}")


def sync_client(config: RedisConfig, *, cluster: bool) -> Any:
    """A ``redis.Redis`` over a ``BlockingConnectionPool``, or a ``redis.cluster.RedisCluster``."""
    url = config.url.get_secret_value()
    try:
        if cluster:
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(url, **_common(config))
        import redis

        pool = redis.BlockingConnectionPool.from_url(
            url, timeout=config.pool_timeout_s, **_common(config)
        )
        return redis.Redis(connection_pool=pool)
    except DRIVER_ERRORS as exc:
        raise _fail(exc, url, cluster) from exc
    except (ValueError, TypeError) as exc:  # URL parsing: the message may echo the URL
        raise _fail(exc, url, cluster) from None


def async_client(config: RedisConfig, *, cluster: bool) -> Any:
    """A ``redis.asyncio.Redis`` over a ``BlockingConnectionPool``, or a
    ``redis.asyncio.cluster.RedisCluster`` (it discovers the slots on first use)."""
    url = config.url.get_secret_value()
    try:
        if cluster:
            from redis.asyncio.cluster import RedisCluster

            return RedisCluster.from_url(url, **_common(config))
        import redis.asyncio as aioredis

        pool = aioredis.BlockingConnectionPool.from_url(
            url, timeout=config.pool_timeout_s, **_common(config)
        )
        return aioredis.Redis(connection_pool=pool)
    except DRIVER_ERRORS as exc:
        raise _fail(exc, url, cluster) from exc
    except (ValueError, TypeError) as exc:  # URL parsing: the message may echo the URL
        raise _fail(exc, url, cluster) from None
