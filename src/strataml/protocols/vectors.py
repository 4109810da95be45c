"""Stage 4 -- embedding retrieval: nearest neighbours with filters, keywords and tenants."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from strataml.capabilities import Capabilities
from strataml.models import CollectionInfo, Hit, Metric, SearchMode, VectorRecord

Records = Iterable[VectorRecord | Mapping[str, Any]]
VectorLike = Sequence[float] | Any  # a sequence of floats or a 1-D NumPy array


@runtime_checkable
class VectorStore(Protocol):
    """Collections of embeddings with text and metadata.

    Semantics
    ---------
    * A **collection** has a fixed dimension and metric (``cosine``, ``l2`` or ``dot``). Creating
      one that exists raises :class:`~strataml.errors.Conflict` unless ``exist_ok=True`` and the
      dimension and metric match.
    * **Upsert** is idempotent by id: writing an id again replaces its vector, text, metadata.
      A batch is validated completely (dimension, finite values, metadata types) before anything
      is written. Metadata values are scalars or lists of scalars; each field keeps the type it
      was first written with (ints and floats mix), and :meth:`describe` reports them.
    * **Tenants**: a collection created with ``multi_tenant=True`` requires ``tenant=`` on every
      record and every read, search, count and delete; the tenant predicate is always applied
      by the backend, so no call can see another tenant's records. Ids are unique per tenant.
      Passing a tenant to a collection that is not multi-tenant is an error.
    * **Search** modes: ``dense`` (a vector), ``keyword`` (BM25 over ``text``) and ``hybrid``
      (both, fused; ``alpha`` is the weight of the dense side: 1.0 = dense only, 0.0 = keyword
      only). The mode defaults to what was passed: vector only -> dense, text only -> keyword,
      both -> hybrid. The filter (see :mod:`strataml.filters`) is applied *before* ranking, so a
      filtered search returns ``k`` hits whenever ``k`` records match. Hits are sorted by
      ``score`` descending and follow the score contract of :class:`~strataml.models.Hit`.

    Errors
    ------
    :class:`~strataml.errors.NotFound` (unknown collection),
    :class:`~strataml.errors.DimensionMismatch` (wrong vector length),
    :class:`~strataml.errors.InvalidInput` (NaN/inf, bad ids, missing or unexpected tenant,
    metadata of the wrong type), :class:`~strataml.errors.FilterError` (malformed filter or a
    type mismatch with a field's type), :class:`~strataml.errors.Unsupported` (a filter operator,
    metric or search mode the backend lacks), :class:`~strataml.errors.LimitExceeded`.
    """

    @property
    def capabilities(self) -> Capabilities: ...

    def create_collection(
        self,
        name: str,
        dim: int,
        metric: Metric = "cosine",
        *,
        multi_tenant: bool = False,
        metadata: Mapping[str, Any] | None = None,
        exist_ok: bool = False,
    ) -> CollectionInfo: ...

    def drop_collection(self, name: str) -> None:
        """Delete a collection (no error if it does not exist)."""
        ...

    def collections(self) -> list[str]: ...

    def describe(self, name: str) -> CollectionInfo: ...

    def upsert(self, name: str, records: Records) -> int:
        """Insert or replace records by id; return how many were written."""
        ...

    def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id (ids that do not exist are ignored)."""
        ...

    def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]:
        """The records that exist among ``ids``, in the order of ``ids``."""
        ...

    def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int: ...

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
    ) -> list[Hit]: ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncVectorStore(Protocol):
    """:class:`VectorStore` for asyncio services: same semantics, awaitable data methods."""

    @property
    def capabilities(self) -> Capabilities: ...

    async def upsert(self, name: str, records: Records) -> int: ...

    async def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None: ...

    async def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]: ...

    async def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int: ...

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
    ) -> list[Hit]: ...

    async def aclose(self) -> None: ...
