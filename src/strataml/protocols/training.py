"""Stage 5 -- batch training: fast, sharded, reproducible columnar scans."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from strataml.capabilities import Capabilities
from strataml.models import Scan


@runtime_checkable
class TrainingSource(Protocol):
    """Versioned training datasets scanned as Arrow record batches.

    Semantics
    ---------
    * :meth:`write` stores a **new immutable version** of a dataset and returns its snapshot id.
      Old versions stay readable: ``scan(name, snapshot=id)`` reads exactly the rows of that
      version, in the same order, forever (until :meth:`drop`).
    * :meth:`scan` reads a dataset (its latest version unless ``snapshot`` is given) or a SQL
      query (one ``SELECT``/``WITH`` statement in the engine's dialect, which names datasets as
      ``datasets.<name>``; ``Scan.snapshot`` is then ``None`` unless the backend can pin it, and
      passing ``snapshot`` with a query is an error). ``columns`` projects, ``filter`` (see
      :mod:`strataml.filters`) is pushed down to the engine, ``batch_size`` bounds each batch's
      rows (and so memory). ``Scan.snapshot`` of a dataset scan is the id of the version read.
    * **Sharding**: ``shard=(i, n)`` returns the i-th of n disjoint parts; across ``i = 0..n-1``
      every row is returned exactly once, and the split is the same on every run for the same
      snapshot. Without sharding, rows come in write order.

    Errors
    ------
    :class:`~strataml.errors.NotFound` (unknown dataset, snapshot, or a column -- projected or
    filtered on -- that the source lacks),
    :class:`~strataml.errors.InvalidInput` (bad shard, batch size, empty write, a snapshot
    with a query source),
    :class:`~strataml.errors.FilterError` (malformed filter or a type mismatch with a column),
    :class:`~strataml.errors.SchemaError` (a query that does not run).
    """

    @property
    def capabilities(self) -> Capabilities: ...

    def write(
        self, name: str, data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch]
    ) -> str:
        """Store a new version of dataset ``name``; return its snapshot id."""
        ...

    def scan(
        self,
        source: str,
        *,
        columns: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
        batch_size: int = 65_536,
        shard: tuple[int, int] | None = None,
        snapshot: str | None = None,
    ) -> Scan: ...

    def count(
        self,
        source: str,
        *,
        filter: Mapping[str, Any] | None = None,
        shard: tuple[int, int] | None = None,
        snapshot: str | None = None,
    ) -> int: ...

    def snapshot(self, name: str) -> str:
        """The snapshot id of the dataset's latest version."""
        ...

    def versions(self, name: str) -> list[str]:
        """Snapshot ids of every version, oldest first."""
        ...

    def datasets(self) -> list[str]: ...

    def drop(self, name: str) -> None:
        """Delete a dataset and all its versions (no error if it does not exist)."""
        ...

    def close(self) -> None: ...
