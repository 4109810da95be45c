"""Stage 1 -- ingestion: accept schema-flexible records fast, read them back incrementally."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from strataml.capabilities import Capabilities
from strataml.models import ReadPage, WriteResult


@runtime_checkable
class IngestStore(Protocol):
    """Append-only streams of JSON-like documents.

    Semantics
    ---------
    * **Schema-flexible**: a record is any mapping of JSON values (str, int, float, bool, None,
      lists and nested mappings; ``datetime``/``date`` are stored as ISO-8601 strings). A record
      with fields never seen before is accepted as is: no migration, ever.
    * **Streams** are created by their first write. Names: ASCII letters, digits, ``_``, ``-``,
      starting with a letter or ``_``, at most 128 characters.
    * **Idempotency**: a record written with an idempotency key (``key=`` / ``key_field=``) is
      stored once per stream; writing the same key again is a no-op counted in
      :attr:`WriteResult.duplicates` -- the first write wins. Retrying a failed batch never
      duplicates.
    * **Event time**: ``time_field`` names the field holding the event time (``datetime``, ISO-8601
      string or epoch seconds); without it, the ingestion time is used. Naive datetimes are UTC.
      With ``time_field`` given, a record lacking it (or holding null) is invalid.
    * **Atomic batches**: a batch is validated completely before anything is written; it is then
      written entirely or (on failure) not at all.
    * **Incremental reads**: :meth:`read` returns records in commit order after an opaque cursor;
      a reader that passes back each page's ``cursor`` sees every record exactly once, across
      process restarts. ``has_more`` is true when more matching records exist now.
      A cursor the store did not issue and ``limit < 1`` are invalid.

    Errors
    ------
    :class:`~strataml.errors.InvalidInput` for a record that is not a mapping, not
    JSON-serialisable, contains NaN/inf, or has a bad event time;
    :class:`~strataml.errors.LimitExceeded` for a record or batch over the declared limits
    (``capabilities.max_record_bytes`` / ``max_batch_rows``); :class:`~strataml.errors.NotFound`
    for reads of a stream that does not exist; :class:`~strataml.errors.Unavailable` when the
    backend is unreachable or locked.
    """

    @property
    def capabilities(self) -> Capabilities: ...

    def write(
        self,
        stream: str,
        record: Mapping[str, Any],
        *,
        key: str | None = None,
        time_field: str | None = None,
    ) -> WriteResult:
        """Append one record (``key``: its idempotency key)."""
        ...

    def write_batch(
        self,
        stream: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str | None = None,
        time_field: str | None = None,
    ) -> WriteResult:
        """Append many records atomically; ``key_field`` names the field holding each record's
        idempotency key (records without it get none). Duplicate keys inside the batch: the first
        wins."""
        ...

    def read(
        self,
        stream: str,
        *,
        after: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int = 1000,
    ) -> ReadPage:
        """Records after cursor ``after`` (``None``: from the beginning) whose event time is in
        ``[start, end)``, oldest commit first, at most ``limit``."""
        ...

    def count(
        self, stream: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> int:
        """Number of records, optionally within an event-time window ``[start, end)``."""
        ...

    def delete_before(self, stream: str, before: dt.datetime) -> int:
        """Retention: delete records whose event time is before ``before``; return how many."""
        ...

    def streams(self) -> list[str]:
        """Names of the existing streams, sorted."""
        ...

    def drop(self, stream: str) -> None:
        """Delete a stream and all its records (no error if it does not exist)."""
        ...

    def close(self) -> None: ...
