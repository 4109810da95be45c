"""The :class:`~strataml.protocols.AsyncVectorStore` on pymilvus's ``AsyncMilvusClient``.

Data calls (``upsert``, ``delete``, ``get``, ``count``, ``search``) are native asyncio gRPC
calls; a hybrid search runs its two legs concurrently with :func:`asyncio.gather`. Validation,
expression compiling and result decoding are the synchronous store's
(:class:`~strataml_milvus.vectors.MilvusVectorStore`), so both behave identically. Catalog work
-- reading a collection's info on a cache miss, registering new field types -- is blocking
and rare; it runs in a worker thread.

The ``AsyncMilvusClient`` belongs to the event loop it was made in: the store makes one per
running loop, lazily.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from strataml.capabilities import Capabilities
from strataml.errors import BackendError, NotFound, Unavailable
from strataml.models import Hit, SearchMode, VectorRecord
from strataml.protocols.vectors import Records, VectorLike
from strataml_milvus.catalog import CollectionMeta
from strataml_milvus.config import MilvusConfig
from strataml_milvus.errors import driver_errors, translate
from strataml_milvus.vectors import Leg, MilvusVectorStore, materialize, no_text_indexed

__all__ = ["AsyncMilvusVectorStore"]

T = TypeVar("T")


class AsyncMilvusVectorStore:
    """Async Milvus vector store over ``store`` (which it closes only if it made it).

    Build it with :meth:`from_config` (it then owns a synchronous store for its catalog) or
    around an existing :class:`~strataml_milvus.vectors.MilvusVectorStore` (sharing its caches).
    """

    def __init__(self, store: MilvusVectorStore, *, owns_store: bool = False) -> None:
        self._store = store
        self._owns = owns_store
        self._uri = store.uri
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, Any]] = {}
        self._closed = False

    @classmethod
    def from_config(cls, config: MilvusConfig) -> AsyncMilvusVectorStore:
        return cls(MilvusVectorStore(config), owns_store=True)

    @property
    def capabilities(self) -> Capabilities:
        return self._store.capabilities

    def __repr__(self) -> str:
        return f"<AsyncMilvusVectorStore over {self._store!r}>"

    # -------------------------------------------------------------------------- plumbing
    def _client(self) -> Any:
        if self._closed:
            raise Unavailable("this vector store is closed; open a new one")
        loop = asyncio.get_running_loop()
        entry = self._clients.get(id(loop))
        if entry is not None and entry[0] is loop:
            return entry[1]
        from pymilvus import AsyncMilvusClient  # type: ignore[import-untyped, unused-ignore]

        cfg = self._store.config
        try:
            client = AsyncMilvusClient(
                uri=self._uri,
                token=cfg.token.get_secret_value() if cfg.token is not None else "",
                db_name=cfg.db_name,
                timeout=cfg.timeout_s,
                alias=f"strataml-async-{uuid.uuid4().hex}",
            )
        except driver_errors() as exc:
            raise translate(exc, "connecting to Milvus") from exc
        # clients of finished loops cannot be closed any more: forget them
        self._clients = {k: v for k, v in self._clients.items() if not v[0].is_closed()}
        self._clients[id(loop)] = (loop, client)
        return client

    async def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``await client.<method>(*args, **kwargs)`` with errors translated."""
        kwargs.setdefault("timeout", self._store.config.timeout_s)
        try:
            return await getattr(self._client(), method)(*args, **kwargs)
        except driver_errors() as exc:
            raise translate(exc, what) from exc

    async def _meta(self, name: str) -> CollectionMeta:
        store = self._store
        meta = store._directory.cached(name)
        if meta is not None and not store._closed:
            return meta
        return await asyncio.to_thread(store._meta, name)

    async def _fresh(self, name: str, fn: Callable[[CollectionMeta], Awaitable[T]]) -> T:
        """As the synchronous store: reload a vanished collection and retry once."""
        meta = await self._meta(name)
        try:
            return await fn(meta)
        except NotFound:
            directory = self._store._directory
            directory.forget(collection=meta.name, alias=name)
            return await fn(await asyncio.to_thread(directory.load, name))

    async def _refresh_for(self, meta: CollectionMeta, spec: Any) -> None:
        directory = self._store._directory
        if directory.needs_refresh(meta, spec):
            await asyncio.to_thread(directory.refresh_fields, meta)

    # ----------------------------------------------------------------------------- data
    async def upsert(self, name: str, records: Records) -> int:
        """Insert or replace records by id; validated completely before anything is sent."""
        items = materialize(records)

        async def run(meta: CollectionMeta) -> int:
            chunks = await asyncio.to_thread(self._store._plan_upsert, meta, items)
            for chunk in chunks:
                await self._call(f"upserting into {meta.name!r}", "upsert", meta.milvus_name, chunk)
            return sum(len(c) for c in chunks)

        return await self._fresh(name, run)

    async def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id within ``tenant`` (ids that do not exist are ignored)."""

        async def run(meta: CollectionMeta) -> None:
            for expr in self._store._delete_exprs(meta, ids, tenant):
                await self._call(
                    f"deleting from {meta.name!r}", "delete", meta.milvus_name, filter=expr
                )

        await self._fresh(name, run)

    async def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]:
        """The records that exist among ``ids`` (within ``tenant``), in the order of ``ids``."""

        async def run(meta: CollectionMeta) -> list[VectorRecord]:
            wanted, queries, fields = self._store._get_plan(meta, ids, tenant, include_vectors)
            rows: list[Any] = []
            for expr, limit in queries:
                rows += await self._call(
                    f"reading from {meta.name!r}",
                    "query",
                    meta.milvus_name,
                    filter=expr,
                    output_fields=fields,
                    limit=limit,
                )
            return self._store._in_order(meta, wanted, rows, include_vectors)

        return await self._fresh(name, run)

    async def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int:
        """How many records (within ``tenant``) match ``filter``."""
        from strataml.vectors.batch import check_tenant
        from strataml_milvus.filters import conjoin

        async def run(meta: CollectionMeta) -> int:
            t = check_tenant(meta.multi_tenant, tenant, meta.name)
            await self._refresh_for(meta, filter)
            compiled = self._store._compile(meta, filter, refresh=False)
            if compiled.never:
                return 0
            expr = conjoin(self._store._tenant_expr(t), compiled.expr)
            extra = {"filter_params": compiled.params} if compiled.params else {}
            rows = await self._call(
                f"counting {meta.name!r}",
                "query",
                meta.milvus_name,
                filter=expr,
                output_fields=["count(*)"],
                **extra,
            )
            return int(rows[0]["count(*)"]) if rows else 0

        return await self._fresh(name, run)

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
        """Dense, keyword or hybrid search; a hybrid search's legs run concurrently."""
        store = self._store

        async def run(meta: CollectionMeta) -> list[Hit]:
            await self._refresh_for(meta, filter)
            plan = store._plan_search(
                meta, vector, k, text, mode, filter, tenant, alpha, include_vectors, refresh=False
            )
            if not plan.legs:
                return []
            results = await asyncio.gather(*(self._leg(meta, leg) for leg in plan.legs))
            return store._finish_search(meta, plan, results)

        return await self._fresh(name, run)

    async def _leg(self, meta: CollectionMeta, leg: Leg) -> list[Any]:
        try:
            result = await self._call(
                f"searching {meta.name!r}", "search", meta.milvus_name, **leg.kwargs
            )
        except BackendError as exc:
            if leg.kind == "keyword" and no_text_indexed(exc):
                return []
            raise
        return list(result[0]) if result else []

    async def aclose(self) -> None:
        """Close this loop's client (clients of other, finished loops are dropped) and the
        synchronous store if this store made it."""
        if self._closed:
            return
        self._closed = True
        try:
            loop = asyncio.get_running_loop()
            entry = self._clients.get(id(loop))
            if entry is not None and entry[0] is loop:
                await entry[1].close()
        except Exception:  # noqa: BLE001 - closing must not mask anything
            pass
        self._clients.clear()
        if self._owns:
            await asyncio.to_thread(self._store.close)
