"""Building qdrant-client clients from :class:`~strataml_qdrant.config.QdrantConfig`.

Local mode allows one ``QdrantClient(path=...)`` per directory per process (it holds a file
lock) and its embedded engine is not thread-safe, so a stack shares one client per directory
(:class:`SerializedClient`, every call under one lock); the asyncio store reaches the same
client through :class:`ThreadedAsyncClient` (calls in a worker thread). A server is reached
with ``QdrantClient`` / ``AsyncQdrantClient`` (REST, or gRPC with ``prefer_grpc``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strataml.errors import StrataError
from strataml_qdrant.bm25 import Bm25Params
from strataml_qdrant.config import QdrantConfig
from strataml_qdrant.engine import EngineSettings
from strataml_qdrant.errors import translate

__all__ = [
    "MEMORY",
    "SerializedClient",
    "ThreadedAsyncClient",
    "engine_settings",
    "make_async_client",
    "make_client",
]


#: ``path = ":memory:"``: local mode without persistence (tests, benchmarks, demos).
MEMORY = ":memory:"


class SerializedClient:
    """A local-mode ``QdrantClient`` whose calls run one at a time (the embedded engine keeps
    its data in plain Python structures and one SQLite connection)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._client, name)
        if not callable(fn):
            return fn
        lock = self._lock

        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return fn(*args, **kwargs)

        return call

    def close(self) -> None:
        with self._lock:
            self._client.close()

    def __repr__(self) -> str:
        return f"SerializedClient({self._client.__class__.__name__})"


class ThreadedAsyncClient:
    """An awaitable view of a synchronous client: each call runs in a worker thread."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = getattr(self._client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(fn, *args, **kwargs)

        return call

    async def close(self) -> None:
        """The synchronous client belongs to its owner (the stack): nothing to close here."""


def _server_kwargs(config: QdrantConfig) -> dict[str, Any]:
    assert config.url is not None
    return {
        "url": config.url.get_secret_value(),
        "api_key": config.api_key.get_secret_value() if config.api_key else None,
        "prefer_grpc": config.prefer_grpc,
        "grpc_port": config.grpc_port,
        "timeout": config.timeout_s,
        "check_compatibility": False,
    }


def make_client(config: QdrantConfig) -> Any:
    """A ``QdrantClient`` for a server, or a :class:`SerializedClient` in local mode.

    Raises :class:`~strataml.errors.Unavailable` when the local directory is locked by another
    client (process), :class:`~strataml.errors.ConfigError`-free otherwise: a server is only
    contacted by the first call.
    """
    from qdrant_client import QdrantClient

    try:
        if config.local:
            assert config.path is not None
            if str(config.path) == MEMORY:
                return SerializedClient(QdrantClient(location=MEMORY))
            path = Path(config.path).expanduser()
            path.mkdir(parents=True, exist_ok=True)
            return SerializedClient(
                QdrantClient(path=str(path), force_disable_check_same_thread=True)
            )
        return QdrantClient(**_server_kwargs(config))
    except StrataError:
        raise
    except Exception as exc:
        raise translate(exc, "opening the Qdrant client") from exc


def make_async_client(config: QdrantConfig) -> Any:
    """An ``AsyncQdrantClient`` for a server (local mode uses :class:`ThreadedAsyncClient`)."""
    from qdrant_client import AsyncQdrantClient

    try:
        return AsyncQdrantClient(**_server_kwargs(config))
    except Exception as exc:
        raise translate(exc, "opening the Qdrant client") from exc


def engine_settings(config: QdrantConfig) -> EngineSettings:
    """The engine's view of the config."""
    return EngineSettings(
        local=config.local,
        prefix=config.collection_prefix,
        hnsw_m=config.hnsw_m,
        hnsw_ef_construct=config.hnsw_ef_construct,
        hnsw_payload_m=config.hnsw_payload_m,
        hnsw_ef=config.hnsw_ef,
        exact=config.exact,
        bm25=Bm25Params(k1=config.bm25_k1, b=config.bm25_b, avg_len=config.bm25_avg_len),
        max_batch_rows=config.max_batch_rows,
        max_batch_bytes=config.max_batch_bytes,
        index_fields=config.index_fields,
        metadata_cache_s=config.metadata_cache_s,
        optimize_timeout_s=config.optimize_timeout_s,
    )
