"""The synchronous :class:`~strataml.protocols.VectorStore` on Qdrant (server or local mode).

The logic lives in :class:`~strataml_qdrant.engine.QdrantEngine`; this class runs its calls on
a ``QdrantClient`` and translates the client's errors (:func:`strataml_qdrant.errors.translate`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import pyarrow as pa

from strataml.capabilities import Capabilities
from strataml.errors import StrataError, Unavailable
from strataml.models import (
    CollectionInfo,
    CollectionStats,
    Hit,
    Metric,
    SearchMode,
    VectorRecord,
)
from strataml.protocols.vectors import Records, VectorLike
from strataml_qdrant.config import QdrantConfig
from strataml_qdrant.engine import SLEEP, CollectionState, EngineSettings, Ops, QdrantEngine
from strataml_qdrant.errors import translate

__all__ = ["QdrantVectorStore", "capabilities_for"]

T = TypeVar("T")


def capabilities_for(settings: EngineSettings) -> Capabilities:
    """The declared capabilities with this store's batch limit."""
    from strataml_qdrant import VECTORS_CAPS

    return VECTORS_CAPS.model_copy(
        update={
            "max_batch_bytes": settings.max_batch_bytes,
            "max_record_bytes": settings.max_batch_bytes,
        }
    )


class QdrantVectorStore:
    """Collections of embeddings in Qdrant: dense HNSW search, BM25 keyword search over
    sparse vectors with Qdrant's IDF modifier, hybrid search (both legs in one request, fused
    client-side), tenants on an ``is_tenant`` keyword index, native aliases.

    Semantics are those of :class:`~strataml.protocols.VectorStore`; the storage layout is in
    :mod:`strataml_qdrant.payload`, filters in :mod:`strataml_qdrant.filters`, the shared logic
    in :mod:`strataml_qdrant.engine`.

    Build one with :meth:`from_config` (or pass a ``QdrantClient``). ``owns_client``: close the
    client with the store. A closed store raises :class:`~strataml.errors.Unavailable`.
    """

    #: Calls do network I/O (or run the embedded engine): async wrappers use a worker thread.
    blocking_io = True

    def __init__(
        self, client: Any, *, settings: EngineSettings | None = None, owns_client: bool = True
    ) -> None:
        self._settings = settings or EngineSettings()
        self._engine = QdrantEngine(self._settings, capabilities_for(self._settings))
        self._client = client
        self._owns = owns_client
        self._closed = False

    @classmethod
    def from_config(cls, config: QdrantConfig) -> QdrantVectorStore:
        """A store owning a new client for ``config`` (server, or local mode on ``path``)."""
        from strataml_qdrant.clients import engine_settings, make_client

        return cls(make_client(config), settings=engine_settings(config), owns_client=True)

    @property
    def capabilities(self) -> Capabilities:
        """Everything the protocol has: all filter operators, the three metrics, keyword,
        hybrid, tenants, aliases; ``max_batch_bytes`` per request (larger upserts are split)."""
        return self._engine.capabilities

    def _run(self, ops: Ops[T]) -> T:
        if self._closed:
            raise Unavailable("this Qdrant vector store is closed; open a new one")
        client = self._client
        try:
            call = next(ops)
            while True:
                try:
                    if call.method == SLEEP:
                        time.sleep(call.kwargs["seconds"])
                        result: Any = None
                    else:
                        result = getattr(client, call.method)(**call.kwargs)
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

    # ------------------------------------------------------------------------ collections
    def create_collection(
        self,
        name: str,
        dim: int,
        metric: Metric = "cosine",
        *,
        multi_tenant: bool = False,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> CollectionInfo:
        """Create a collection (dense vector ``dim``/``metric``, a BM25 sparse vector, and for
        ``multi_tenant`` a tenant index). :class:`~strataml.errors.Conflict` if it exists
        (unless ``exist_ok`` and dim, metric and tenancy match) or if an alias has the name;
        :class:`~strataml.errors.InvalidInput` for bad arguments."""
        return self._run(
            self._engine.create_collection(name, dim, metric, multi_tenant, metadata, exist_ok)
        )

    def drop_collection(self, name: str) -> None:
        """Delete a collection (no error if it does not exist); :class:`~strataml.errors.
        Conflict` while an alias points at it."""
        self._run(self._engine.drop_collection(name))

    def collections(self) -> list[str]:
        """The collections under this store's prefix (aliases excluded), sorted."""
        return self._run(self._engine.collections())

    def describe(self, name: str) -> CollectionInfo:
        """Shape, exact count, metadata fields and their types (an alias gives its target)."""
        return self._run(self._engine.describe(name))

    # ----------------------------------------------------------------------------- writes
    def upsert(self, name: str, records: Records) -> int:
        """Insert or replace records by id (per tenant); return how many were written.

        The batch is validated completely first; nothing is written on any error, and a
        record larger than the request limit raises :class:`~strataml.errors.LimitExceeded`.
        Large batches are split into several requests (rows and bytes); each waits for the
        server to apply it. If a later request fails (network), earlier ones stay written:
        upserts are idempotent, retry the call."""
        return self._run(self._engine.upsert(name, records))

    def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id within ``tenant`` (ids that do not exist are ignored)."""
        self._run(self._engine.delete(name, ids, tenant))

    # ------------------------------------------------------------------------------ reads
    def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]:
        """The records that exist among ``ids`` (within ``tenant``), in the order of ``ids``."""
        return self._run(self._engine.get(name, ids, tenant, include_vectors))

    def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int:
        """How many records (within ``tenant``) match ``filter`` (exact)."""
        return self._run(self._engine.count(name, filter, tenant))

    def search(
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
        """Dense, keyword (BM25) or hybrid search; the filter and tenant are applied by Qdrant
        before ranking. Hybrid runs both legs in one ``query_batch_points`` request and fuses
        them with :data:`strataml.vectors.fusion.DEFAULT_FUSION` (Qdrant's own weighted RRF
        does not honour ``alpha``: see :mod:`strataml_qdrant.engine`)."""
        return self._run(
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

    def scan(
        self,
        name: str,
        *,
        tenant: str | None = None,
        include_vectors: bool = False,
        batch_size: int = 1000,
    ) -> Iterator[list[VectorRecord]]:
        """Every record (of ``tenant``) once, in batches of at most ``batch_size`` (Qdrant's
        ``scroll`` in point-id order). Arguments and the collection are checked at once."""
        st, flt = self._run(self._engine.scan_start(name, tenant, batch_size))
        return self._pages(st, flt, batch_size, include_vectors)

    def _pages(
        self, st: CollectionState, flt: Any, batch_size: int, include_vectors: bool
    ) -> Iterator[list[VectorRecord]]:
        offset: Any = None
        while True:
            recs, offset = self._run(
                self._engine.scan_page(st, flt, offset, batch_size, include_vectors)
            )
            if recs:
                yield recs
            if offset is None:
                return

    def scan_metadata(
        self,
        name: str,
        fields: Sequence[str],
        *,
        tenant: str | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Every record's id and the metadata ``fields``, column-wise (see
        :meth:`~strataml.protocols.VectorStore.scan_metadata`): ``scroll`` pages reading only
        the id and metadata of each payload. Arguments and the collection are checked at
        once."""
        st, flt, schema = self._run(
            self._engine.scan_metadata_start(name, fields, tenant, batch_size)
        )
        return self._metadata_pages(st, flt, batch_size, schema)

    def _metadata_pages(
        self, st: CollectionState, flt: Any, batch_size: int, schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        offset: Any = None
        while True:
            batch, offset = self._run(
                self._engine.scan_metadata_page(st, flt, offset, batch_size, schema)
            )
            if batch is not None:
                yield batch
            if offset is None:
                return

    # ---------------------------------------------------------------------------- aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection``: created, or repointed atomically (Qdrant applies
        the delete and the create of one ``update_collection_aliases`` call together)."""
        self._run(self._engine.set_alias(alias, collection))

    def drop_alias(self, alias: str) -> None:
        """Remove an alias (no error if it does not exist); the collection is untouched."""
        self._run(self._engine.drop_alias(alias))

    def aliases(self) -> dict[str, str]:
        """Every alias under this store's prefix and the collection it points at."""
        return self._run(self._engine.aliases())

    # ----------------------------------------------------------------------------- health
    def stats(self, name: str) -> CollectionStats:
        """Exact count, the index (``hnsw`` and its parameters on a server, ``flat`` in local
        mode), indexed vectors, optimizer status; ``deleted`` is ``None`` (Qdrant does not
        report it)."""
        return self._run(self._engine.stats(name))

    def optimize(self, name: str) -> CollectionStats:
        """Vacuum deleted points and finish indexing now (server; searches keep being
        served); nothing to do in local mode. Returns :meth:`stats`."""
        return self._run(self._engine.optimize(name))

    # ---------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Close the client if this store owns it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._engine.evict()
        if self._owns:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass

    def __enter__(self) -> QdrantVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "local" if self._settings.local else "server"
        return f"QdrantVectorStore({where}, prefix={self._settings.prefix!r})"
