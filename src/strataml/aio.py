"""Async views of synchronous stores, for backends without a native asyncio client.

Blocking stores run in a worker thread (``asyncio.to_thread``); embedded stores whose calls
take microseconds (``blocking_io = False``) run inline, which is faster than a thread hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from strataml.capabilities import Capabilities
from strataml.errors import ConfigError

T = TypeVar("T")

__all__ = ["AsyncOnlineAdapter", "AsyncVectorAdapter", "to_async"]


class _AsyncBase:
    def __init__(self, store: Any) -> None:
        self._store = store
        self._inline = getattr(store, "blocking_io", True) is False

    @property
    def capabilities(self) -> Capabilities:
        return self._store.capabilities  # type: ignore[no-any-return]

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._inline:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def aclose(self) -> None:
        await self._call(self._store.close)


class AsyncOnlineAdapter(_AsyncBase):
    """An :class:`~strataml.protocols.AsyncOnlineStore` over a synchronous online store."""

    async def write(self, view: str, rows: Any, **kwargs: Any) -> int:
        return await self._call(self._store.write, view, rows, **kwargs)  # type: ignore[no-any-return]

    async def get(
        self, view: str, entity: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        return await self._call(self._store.get, view, entity, features)  # type: ignore[no-any-return]

    async def get_many(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]],
        features: Sequence[str] | None = None,
    ) -> list[dict[str, Any] | None]:
        return await self._call(self._store.get_many, view, entities, features)  # type: ignore[no-any-return]

    async def delete(self, view: str, entities: Sequence[Mapping[str, Any]]) -> int:
        return await self._call(self._store.delete, view, entities)  # type: ignore[no-any-return]


class AsyncVectorAdapter(_AsyncBase):
    """An :class:`~strataml.protocols.AsyncVectorStore` over a synchronous vector store."""

    async def upsert(self, name: str, records: Any) -> int:
        return await self._call(self._store.upsert, name, records)  # type: ignore[no-any-return]

    async def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        await self._call(self._store.delete, name, ids, tenant=tenant)

    async def get(self, name: str, ids: Sequence[str], **kwargs: Any) -> list[Any]:
        return await self._call(self._store.get, name, ids, **kwargs)  # type: ignore[no-any-return]

    async def count(self, name: str, **kwargs: Any) -> int:
        return await self._call(self._store.count, name, **kwargs)  # type: ignore[no-any-return]

    async def search(self, name: str, vector: Any = None, **kwargs: Any) -> list[Any]:
        return await self._call(self._store.search, name, vector, **kwargs)  # type: ignore[no-any-return]


def to_async(role: str, store: Any) -> Any:
    """Wrap a synchronous ``online`` or ``vectors`` store."""
    if role == "online":
        return AsyncOnlineAdapter(store)
    if role == "vectors":
        return AsyncVectorAdapter(store)
    raise ConfigError(f"there is no async API for [{role}]")
