"""Stage 3 -- feature serving: one key lookup, p99 well under 10 ms."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

import pyarrow as pa

from strataml.capabilities import Capabilities

Rows: TypeAlias = Iterable[Mapping[str, Any]] | pa.Table | pa.RecordBatch


@runtime_checkable
class OnlineStore(Protocol):
    """Precomputed feature rows, one per entity key, per view.

    Semantics
    ---------
    * A view's **entity key** is the set of columns named in the first :meth:`write`
      (``entities=``); later writes must name the same columns
      (:class:`~strataml.errors.SchemaError` otherwise). Key values are ``str`` or ``int``
      (``42`` and ``"42"`` are different keys).
    * :meth:`write` **replaces** each entity's whole row with the written features (last write
      wins). Values round-trip with their types: ``None``, ``bool``, ``int``, ``float``
      (NaN included), ``str``, ``bytes``, ``datetime`` (UTC) and lists of these; decimals (SQL
      ``NUMERIC``/``SUM``) come back as ``int`` when integral, else ``float``.
    * **TTL**: with ``ttl``, a row expires ``ttl`` after its event time (the ``event_time``
      column, when given) or after the write. An expired row reads exactly like a missing one,
      whether or not the backend has physically removed it yet.
    * :meth:`get` returns ``{feature: value}`` for the requested features (all when
      ``features`` is ``None``); a requested feature the row lacks is ``None``; an unknown or
      expired entity gives ``None``. :meth:`get_many` returns one such result per entity, in
      order, in one round trip where the backend allows.

    Errors
    ------
    :class:`~strataml.errors.NotFound` for a view never written;
    :class:`~strataml.errors.InvalidInput` for an entity mapping whose keys differ from the
    view's, key values of the wrong type, values that cannot be encoded;
    :class:`~strataml.errors.LimitExceeded` for a row over ``capabilities.max_record_bytes``.
    """

    @property
    def capabilities(self) -> Capabilities: ...

    def write(
        self,
        view: str,
        rows: Rows,
        *,
        entities: Sequence[str],
        ttl: dt.timedelta | None = None,
        event_time: str | None = None,
    ) -> int:
        """Upsert rows (entity columns + features); return how many were written."""
        ...

    def get(
        self, view: str, entity: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """The features of one entity, or ``None`` if unknown or expired."""
        ...

    def get_many(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]],
        features: Sequence[str] | None = None,
    ) -> list[dict[str, Any] | None]:
        """Batch :meth:`get`, results aligned with ``entities``."""
        ...

    def delete(self, view: str, entities: Sequence[Mapping[str, Any]]) -> int:
        """Delete entities' rows; return how many existed."""
        ...

    def views(self) -> list[str]:
        """Views that have been written, sorted."""
        ...

    def drop(self, view: str) -> None:
        """Delete a view and all its rows (no error if it does not exist)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AsyncOnlineStore(Protocol):
    """:class:`OnlineStore` for asyncio services: same semantics, awaitable methods."""

    @property
    def capabilities(self) -> Capabilities: ...

    async def write(
        self,
        view: str,
        rows: Rows,
        *,
        entities: Sequence[str],
        ttl: dt.timedelta | None = None,
        event_time: str | None = None,
    ) -> int: ...

    async def get(
        self, view: str, entity: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> dict[str, Any] | None: ...

    async def get_many(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]],
        features: Sequence[str] | None = None,
    ) -> list[dict[str, Any] | None]: ...

    async def delete(self, view: str, entities: Sequence[Mapping[str, Any]]) -> int: ...

    async def aclose(self) -> None: ...
