"""Settings of the Redis online stores."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from strataml.config import AdapterConfig

__all__ = ["RedisConfig"]


class RedisConfig(AdapterConfig):
    """``url`` (``redis://[:password@]host:port/db``, ``rediss://`` for TLS) is a secret: it may
    carry a password. ``key_prefix`` namespaces every key, so several stacks can share a server.
    For ``redis-cluster`` the URL names any one node; the others are discovered (the database
    number must be 0).

    ``view_cache_s`` bounds how long a store trusts its in-process copy of a view's metadata
    (entity columns) before reading it again: a view dropped or re-created by *another*
    process is noticed within that time. ``0`` re-reads it on every call (one more round trip).
    ``pool_timeout_s`` is how long a call waits for a free connection when all
    ``max_connections`` are busy (then :class:`~strataml.errors.Unavailable`).
    """

    type: Literal["redis", "redis-cluster"] = "redis"
    url: SecretStr
    key_prefix: str = Field(default="sml", pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    socket_timeout_s: float = Field(default=5.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=50, ge=1)
    pool_timeout_s: float = Field(default=5.0, gt=0)
    write_batch_size: int = Field(default=1000, ge=1, description="rows per pipeline on write")
    view_cache_s: float = Field(default=1.0, ge=0, description="metadata staleness bound")
