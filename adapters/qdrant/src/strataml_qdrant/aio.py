"""The asyncio :class:`~strataml.protocols.AsyncVectorStore` on Qdrant.

The same :class:`~strataml_qdrant.engine.QdrantEngine` as the synchronous store, its calls
awaited on an ``AsyncQdrantClient`` (server) or, in local mode, on the stack's shared local
client through :class:`~strataml_qdrant.clients.ThreadedAsyncClient`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from strataml.capabilities import Capabilities
from strataml.errors import StrataError, Unavailable
from strataml.models import Hit, SearchMode, VectorRecord
from strataml.protocols.vectors import Records, VectorLike
from strataml_qdrant.config import QdrantConfig
from strataml_qdrant.engine import SLEEP, EngineSettings, Ops, QdrantEngine
from strataml_qdrant.errors import translate
from strataml_qdrant.store import capabilities_for

__all__ = ["AsyncQdrantVectorStore"]

T = TypeVar("T")


class AsyncQdrantVectorStore:
    """Awaitable ``upsert``/``delete``/``get``/``count``/``search`` with the semantics of
    :class:`~strataml_qdrant.store.QdrantVectorStore` (collections are managed with the
    synchronous store). ``owns_client``: close the client in :meth:`aclose`."""

    def __init__(
        self,
        client: Any,
        *,
        settings: EngineSettings | None = None,
        owns_client: bool = True,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._settings = settings or EngineSettings()
        self._engine = QdrantEngine(self._settings, capabilities_for(self._settings))
        self._client = client
        self._owns = owns_client
        self._on_close = on_close
        self._closed = False

    @classmethod
    def from_config(cls, config: QdrantConfig) -> AsyncQdrantVectorStore:
        """A store owning a new ``AsyncQdrantClient`` for a server ``config``; in local mode it
        owns a new local client (one per directory: do not open a synchronous store on the
        same path in this process -- the stack shares one)."""
        from strataml_qdrant.clients import (
            ThreadedAsyncClient,
            engine_settings,
            make_async_client,
            make_client,
        )

        settings = engine_settings(config)
        if config.local:
            sync = make_client(config)
            return cls(ThreadedAsyncClient(sync), settings=settings, on_close=sync.close)
        return cls(make_async_client(config), settings=settings, owns_client=True)

    @property
    def capabilities(self) -> Capabilities:
        return self._engine.capabilities

    async def _run(self, ops: Ops[T]) -> T:
        if self._closed:
            raise Unavailable("this Qdrant vector store is closed; open a new one")
        client = self._client
        try:
            call = next(ops)
            while True:
                try:
                    if call.method == SLEEP:
                        await asyncio.sleep(call.kwargs["seconds"])
                        result: Any = None
                    else:
                        result = await getattr(client, call.method)(**call.kwargs)
                except StrataError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every client error is translated
                    err = translate(exc, call.what)
                    err.__cause__ = exc
                    call = ops.throw(err)
                    continue
                call = ops.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def upsert(self, name: str, records: Records) -> int:
        """See :meth:`QdrantVectorStore.upsert <strataml_qdrant.store.QdrantVectorStore.upsert>`."""
        return await self._run(self._engine.upsert(name, records))

    async def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id within ``tenant`` (missing ids ignored)."""
        await self._run(self._engine.delete(name, ids, tenant))

    async def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]:
        """The records among ``ids`` (within ``tenant``), in the order of ``ids``."""
        return await self._run(self._engine.get(name, ids, tenant, include_vectors))

    async def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int:
        """How many records (within ``tenant``) match ``filter``."""
        return await self._run(self._engine.count(name, filter, tenant))

    async def search(
        self,
        name: str,
        vector: VectorLike | None = None,
        *,
        k: int = 10,
        text: str | None = None,
        mode: SearchMode | None = None,
        filter: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        alpha: float = 0.5,
        include_vectors: bool = False,
    ) -> list[Hit]:
        """Dense, keyword or hybrid search (see the synchronous store)."""
        return await self._run(
            self._engine.search(
                name,
                vector,
                k=k,
                text=text,
                mode=mode,
                spec=filter,
                tenant=tenant,
                alpha=alpha,
                include_vectors=include_vectors,
            )
        )

    async def aclose(self) -> None:
        """Close the client if this store owns it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns:
            try:
                await self._client.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass
        if self._on_close is not None:
            self._on_close()

    def __repr__(self) -> str:
        where = "local" if self._settings.local else "server"
        return f"AsyncQdrantVectorStore({where}, prefix={self._settings.prefix!r})"
