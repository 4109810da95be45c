"""Stage 4 -- embedding retrieval: nearest neighbours with filters, keywords and tenants."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from strataml.capabilities import Capabilities
from strataml.models import (
    CollectionInfo,
    CollectionStats,
    Hit,
    Metric,
    SearchMode,
    VectorRecord,
)

if TYPE_CHECKING:
    import pyarrow as pa

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
    * **Aliases** (capability ``aliases``): an alias is a second name for a collection, usable
      wherever a collection name is read or written (``describe``, ``upsert``, ``delete``,
      ``get``, ``count``, ``search``, ``scan``, ``stats``, ``optimize``). :meth:`set_alias`
      creates an alias or repoints it *atomically*: a concurrent reader sees the old target or
      the new one, never an error. Aliases and collections share one namespace: an alias may not
      take a collection's name nor a collection an alias's (:class:`~strataml.errors.Conflict`);
      the target must be an existing collection, not an alias
      (:class:`~strataml.errors.NotFound`). A collection that an alias points at cannot be
      dropped (:class:`~strataml.errors.Conflict`: repoint or drop the alias first), so the live
      index never disappears under its readers; ``drop_collection(alias)`` is a
      :class:`~strataml.errors.Conflict` too (use :meth:`drop_alias`). :meth:`collections`
      lists collections only. ``describe(alias)`` returns the target's info (its real
      ``name``). Backends without the capability raise :class:`~strataml.errors.Unsupported`
      from the alias methods.
    * **Scans**: :meth:`scan` yields every record (of ``tenant`` in a multi-tenant collection)
      exactly once, in batches of at most ``batch_size``, in no particular order -- for
      refreshes, migrations and exact-search probes. Writes during a scan may or may not be seen.
      :meth:`scan_metadata` is the same pass, column-wise: only the ids and the named scalar
      metadata fields, as Arrow record batches, for bookkeeping passes over large collections
      (incremental refresh compares 100k stored content hashes with it in a fraction of a second).
    * **Health**: :meth:`stats` reports count, tombstones and the index
      (:class:`~strataml.models.CollectionStats`); :meth:`optimize` compacts deleted rows and
      (re)builds the index where the backend needs it, while searches keep being served, and
      returns the stats afterwards. Neither changes what any read returns.

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

    def scan(
        self,
        name: str,
        *,
        tenant: str | None = None,
        include_vectors: bool = False,
        batch_size: int = 1000,
    ) -> Iterator[list[VectorRecord]]:
        """Every record of the collection (or tenant), once, in batches of ``<= batch_size``."""
        ...

    def scan_metadata(
        self,
        name: str,
        fields: Sequence[str],
        *,
        tenant: str | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Every record's id and the metadata ``fields`` asked for, column-wise: the records
        :meth:`scan` yields (same tenant rules, each exactly once, no particular order), as
        :class:`pyarrow.RecordBatch` objects of at most ``batch_size`` rows (none empty).

        Each batch has two columns: ``id`` (``string``, never null) and ``metadata``, a
        ``struct`` with one child per name in ``fields`` (in that order, repeats dropped) typed
        by the field's type -- ``string``, ``int64``, ``float64``, ``bool``,
        ``timestamp[us, UTC]``, ``date32`` -- and null where a record lacks the field; a name
        the collection has no field of is a child of type ``null``. Raises (at the call, before
        iterating) :class:`~strataml.errors.NotFound`, :class:`~strataml.errors.InvalidInput`
        (``fields`` not a sequence of strings, a ``list`` field -- lists are not columnar: use
        :meth:`scan` --, a bad ``batch_size``, a missing or unexpected tenant).
        """
        ...

    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` (create it, or repoint it atomically)."""
        ...

    def drop_alias(self, alias: str) -> None:
        """Remove an alias (no error if it does not exist); the collection is untouched."""
        ...

    def aliases(self) -> dict[str, str]:
        """Every alias and the collection it points at."""
        ...

    def stats(self, name: str) -> CollectionStats:
        """Count, tombstones and index of a collection (or of an alias's target)."""
        ...

    def optimize(self, name: str) -> CollectionStats:
        """Compact deleted rows and (re)build the index without downtime; return the stats."""
        ...

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
