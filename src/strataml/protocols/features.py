"""Stage 2 -- feature engineering: SQL over ingested data, versioned views, point-in-time joins."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

from strataml.capabilities import Capabilities
from strataml.models import FeatureView

#: What :meth:`FeatureStore.historical` accepts as labels: Arrow, pandas or polars frames.
LabelFrame = Any


@runtime_checkable
class FeatureStore(Protocol):
    """An analytical SQL engine holding source tables and versioned feature views.

    Semantics
    ---------
    * **Tables** are loaded from Arrow (:meth:`load`); appending data with new columns adds them
      (schema-flexible sources). ``checkpoint=(key, value)`` is stored *in the same transaction*
      as the rows, so an incremental loader that resumes from :meth:`checkpoint` never duplicates
      or skips rows.
    * **Views** (:class:`~strataml.models.FeatureView`) are SQL in the canonical dialect
      (:data:`~strataml.models.CANONICAL_DIALECT`), transpiled for the engine. :meth:`register`
      checks the SQL runs and yields the entity and timestamp columns, fills in ``features`` if
      omitted, and persists the view. Registering the same ``name``/``version`` again is a no-op
      when the definition's fingerprint is unchanged and raises
      :class:`~strataml.errors.SchemaError` when the logic changed (bump ``version`` instead).
      Versions coexist; ``get_view(name)`` returns the latest.
    * **Point-in-time join** (:meth:`historical`): for every label row, each requested feature
      is the value from the view row with the same entity key and the *latest* event time
      *at or before* the label's timestamp -- never a later one. A value older than the view's
      ``ttl`` (``label_ts - feature_ts > ttl``) comes back as null. Every label row is returned,
      once, in the input order, with all its columns; rows with no match get nulls.
      Timestamps are compared in UTC (naive timestamps are UTC).
    * Feature references: ``"view:feature"`` (latest version), ``"view@2:feature"``,
      ``"view:*"`` (all features of the view). Output columns are named after the feature, or
      ``view__feature`` when ``full_names=True`` (required when two views share a feature name).

    Errors
    ------
    :class:`~strataml.errors.NotFound` (unknown table/view/version),
    :class:`~strataml.errors.SchemaError` (SQL that does not parse or run, a view that lacks its
    entity/timestamp columns, a changed definition without a new version, incompatible column
    types on append), :class:`~strataml.errors.InvalidInput` (labels without the timestamp or
    entity columns, bad references).
    """

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def dialect(self) -> str:
        """The engine's SQL dialect (a sqlglot dialect name)."""
        ...

    def load(
        self,
        table: str,
        data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
        *,
        mode: Literal["append", "replace"] = "append",
        checkpoint: tuple[str, str] | None = None,
    ) -> int:
        """Load rows into ``table`` (created if missing); return how many were loaded."""
        ...

    def checkpoint(self, key: str) -> str | None:
        """The value last stored with ``checkpoint=(key, value)``, or ``None``."""
        ...

    def tables(self) -> list[str]:
        """Source tables (not views), sorted."""
        ...

    def register(self, view: FeatureView) -> FeatureView:
        """Validate and persist a view definition; return it with ``features`` resolved."""
        ...

    def get_view(self, name: str, version: int | None = None) -> FeatureView:
        """A registered view (latest version when ``version`` is ``None``)."""
        ...

    def views(self) -> list[FeatureView]:
        """Every registered view and version, sorted by name then version."""
        ...

    def compute(
        self,
        view: str | FeatureView,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        batch_size: int = 65_536,
        latest: bool = False,
    ) -> pa.RecordBatchReader:
        """Stream the view's rows (event time in ``[start, end)`` when given) as Arrow batches.

        With ``latest=True`` only each entity's newest row in the window is returned (one row per
        entity key; among rows sharing the newest event time, any one), ordered by the entity
        columns ascending -- the engine does the reduction, so materialization streams
        ``O(entities)`` rows in bounded memory and can resume after the last key it wrote.
        """
        ...

    def historical(
        self,
        labels: LabelFrame,
        features: Sequence[str],
        *,
        timestamp: str = "ts",
        full_names: bool = False,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> pa.Table:
        """Point-in-time correct training data: ``labels`` plus the requested features.

        ``labels=None`` builds the label rows from a time range instead of an entity frame:
        the entity keys and event times of every row of the first referenced view with event
        time in ``[start, end)`` (both required then; passing them with labels is an error).
        """
        ...

    def sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pa.Table:
        """The escape hatch: run SQL in the engine's dialect (parameters bound), return Arrow."""
        ...

    def close(self) -> None: ...
