"""Data models shared by every protocol and adapter (pydantic, validated at the edge)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Iterator
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from strataml.errors import InvalidInput, SchemaError
from strataml.filters import FieldType

__all__ = [
    "CANONICAL_DIALECT",
    "CollectionInfo",
    "CollectionStats",
    "FeatureRef",
    "FeatureView",
    "Hit",
    "IngestedRecord",
    "Metric",
    "ReadPage",
    "Scan",
    "SearchMode",
    "VectorRecord",
    "WriteResult",
    "check_name",
    "is_name",
]

Metric = Literal["cosine", "l2", "dot"]
SearchMode = Literal["dense", "keyword", "hybrid"]

#: Feature SQL is written once in this dialect and transpiled (sqlglot) for other engines.
CANONICAL_DIALECT = "duckdb"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,127}$")


def is_name(value: Any) -> bool:
    """Whether ``value`` is a valid stream, table, dataset or collection name."""
    return isinstance(value, str) and bool(_NAME_RE.match(value))


def check_name(kind: str, name: Any) -> str:
    """Validate a stream/table/view/collection name: letters, digits, ``_`` and ``-``, ≤128."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidInput(
            f"invalid {kind} name {name!r}: start with a letter or '_', then letters, digits, "
            "'_' or '-', at most 128 characters"
        )
    return name


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ------------------------------------------------------------------------------------ ingestion
class WriteResult(_Model):
    """Outcome of a write: how many records were stored, how many were already there (same
    idempotency key) and so skipped."""

    written: int = 0
    duplicates: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            written=self.written + other.written, duplicates=self.duplicates + other.duplicates
        )


class IngestedRecord(_Model):
    """A record as stored: its position in the stream (``seq``, increasing in commit order), the
    idempotency key if any, its event time, when it was ingested, and the document itself."""

    stream: str
    seq: int
    key: str | None
    ts: dt.datetime
    ingested_at: dt.datetime
    data: dict[str, Any]


class ReadPage(_Model):
    """One page of an incremental read. Pass ``cursor`` back as ``after=`` to continue; it is
    ``None`` only if the page is empty and the stream had no position to resume from."""

    records: list[IngestedRecord]
    cursor: str | None
    has_more: bool

    def __iter__(self) -> Iterator[IngestedRecord]:  # type: ignore[override]
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


# ------------------------------------------------------------------------------------- features
class FeatureView(_Model):
    """A versioned feature definition: SQL (canonical dialect) over ingested data.

    The SQL's result must contain the entity key columns, the event-timestamp column and the
    feature columns (``features``; when omitted, every other column). A new ``version`` is needed
    to change logic; see :attr:`fingerprint`.
    """

    name: str
    sql: str
    entities: tuple[str, ...] = Field(min_length=1)
    timestamp: str = "ts"
    version: int = Field(default=1, ge=1)
    features: tuple[str, ...] | None = None
    ttl: dt.timedelta | None = None
    owner: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$", v):
            raise ValueError("feature view names are identifiers: letters, digits, '_'")
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: dt.timedelta | None) -> dt.timedelta | None:
        if v is not None and v <= dt.timedelta(0):
            raise ValueError("ttl must be positive")
        return v

    @model_validator(mode="after")
    def _columns(self) -> FeatureView:
        reserved = set(self.entities) | {self.timestamp}
        if self.features is not None:
            clash = reserved & set(self.features)
            if clash:
                raise ValueError(f"features {sorted(clash)} are entity/timestamp columns")
            if len(set(self.features)) != len(self.features):
                raise ValueError("duplicate feature names")
        return self

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def normalized_sql(self) -> str:
        """The SQL parsed and re-rendered canonically (whitespace, case, quoting normalised)."""
        import sqlglot
        from sqlglot.errors import ParseError

        try:
            tree = sqlglot.parse_one(self.sql, read=CANONICAL_DIALECT)
        except ParseError as exc:
            raise SchemaError(f"feature view {self.ref}: SQL does not parse: {exc}") from exc
        return tree.sql(dialect=CANONICAL_DIALECT, normalize=True, comments=False)

    @property
    def sources(self) -> tuple[str, ...]:
        """Lineage: the tables the SQL reads (``schema.table`` when qualified), sorted; names of
        its own CTEs are not sources."""
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import ParseError

        try:
            tree = sqlglot.parse_one(self.sql, read=CANONICAL_DIALECT)
        except ParseError as exc:
            raise SchemaError(f"feature view {self.ref}: SQL does not parse: {exc}") from exc
        ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
        found = {
            ".".join(p for p in (t.db, t.name) if p)
            for t in tree.find_all(exp.Table)
            if t.name and not (not t.db and t.name in ctes)
        }
        return tuple(sorted(found))

    @property
    def fingerprint(self) -> str:
        """sha256 over the normalised SQL AST, entity keys, timestamp, features, TTL and version.

        Two definitions with the same fingerprint compute the same features; comments,
        whitespace and metadata (owner, description, tags) do not change it.
        """
        payload = {
            "sql": self.normalized_sql(),
            "entities": list(self.entities),
            "timestamp": self.timestamp,
            "features": list(self.features) if self.features is not None else None,
            "ttl": self.ttl.total_seconds() if self.ttl else None,
            "version": self.version,
        }
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


class FeatureRef(_Model):
    """A parsed feature reference: ``view:feature``, ``view@2:feature`` or ``view:*``."""

    view: str
    version: int | None = None
    feature: str

    @classmethod
    def parse(cls, ref: str) -> FeatureRef:
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(?:@([0-9]+))?:([A-Za-z_][A-Za-z0-9_]*|\*)$", ref)
        if not m:
            raise InvalidInput(
                f"bad feature reference {ref!r}; write 'view:feature', 'view@2:feature' or 'view:*'"
            )
        return cls(view=m[1], version=int(m[2]) if m[2] else None, feature=m[3])


# -------------------------------------------------------------------------------------- vectors
class VectorRecord(BaseModel):
    """One embedding with its id, optional text (for keyword search), metadata and tenant.

    ``vector`` may be any sequence of numbers or a NumPy array; it must be finite. Metadata values
    are scalars (or lists of scalars); nested objects are not filterable.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    id: str
    vector: Any = None
    text: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, str | int) or v == "":
            raise ValueError("ids are non-empty strings (or ints)")
        return str(v)


class Hit(_Model):
    """One search result.

    The score contract (same on every backend): ``score`` is in ``[0, 1]``, higher is better.

    * dense, ``cosine``: ``score = 1 - distance / 2`` with ``distance = 1 - cos_sim`` in ``[0, 2]``
    * dense, ``l2``: ``score = 1 / (1 + distance)`` with ``distance`` the Euclidean distance
    * dense, ``dot``: ``score = sigmoid(inner_product)``, ``distance = -inner_product``
    * keyword: ``score = bm25 / (1 + bm25)``; the raw BM25 is in ``keyword_score``
    * hybrid: the fused score (see :mod:`strataml.vectors.fusion`), normalised to ``[0, 1]``

    ``distance`` and ``metric`` give the raw dense distance where the hit had one.
    """

    id: str
    score: float
    distance: float | None = None
    metric: Metric | None = None
    keyword_score: float | None = None
    text: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str | None = None
    vector: list[float] | None = None


def score_from_distance(metric: str, distance: float) -> float:
    """Map a raw dense distance to the ``[0, 1]`` score of the contract (see :class:`Hit`)."""
    if metric == "cosine":
        return min(1.0, max(0.0, 1.0 - distance / 2.0))
    if metric == "l2":
        return 1.0 / (1.0 + max(0.0, distance))
    if metric == "dot":
        if distance > 700:
            return 0.0
        return 1.0 / (1.0 + math.exp(distance))
    raise InvalidInput(f"unknown metric {metric!r}")


def score_from_bm25(bm25: float) -> float:
    b = max(0.0, bm25)
    return b / (1.0 + b)


class CollectionInfo(_Model):
    """A collection's shape: dimension, metric, tenancy, the metadata fields seen so far (with the
    type filters check against), and free-form metadata (e.g. the embedding model)."""

    name: str
    dim: int
    metric: Metric
    count: int
    multi_tenant: bool = False
    fields: dict[str, FieldType] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class CollectionStats(_Model):
    """A collection's health, from :meth:`~strataml.protocols.VectorStore.stats`.

    * ``count``: live records (all tenants).
    * ``deleted``: records deleted or overwritten whose space the backend still holds
      (tombstones, soft-deleted rows, dead tuples, old fragment rows); ``0`` when the backend
      compacts eagerly, ``None`` when it cannot tell.
    * ``tombstone_ratio``: ``deleted / (count + deleted)`` (``None`` when ``deleted`` is).
    * ``index_type``: the ANN index kind (``"hnsw"``, ``"ivf_flat"``, ``"ivf_pq"``, ...) or
      ``"flat"`` when searches are exhaustive; ``index_params`` its parameters (``m``,
      ``ef_construction``, ``lists``, ...).
    * ``indexed``: records covered by the ANN index (the rest are searched exhaustively);
      ``None`` when the backend does not say.
    * ``details``: backend-specific figures (segments, fragments, bytes), informational.
    """

    name: str
    count: int
    deleted: int | None = 0
    tombstone_ratio: float | None = 0.0
    index_type: str = "flat"
    index_params: dict[str, Any] = Field(default_factory=dict)
    indexed: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, name: str, count: int, deleted: int | None, **kwargs: Any) -> CollectionStats:
        """Build stats, deriving ``tombstone_ratio`` from ``count`` and ``deleted``."""
        total = count + (deleted or 0)
        ratio = None if deleted is None else (deleted / total if total else 0.0)
        return cls(name=name, count=count, deleted=deleted, tombstone_ratio=ratio, **kwargs)


# ------------------------------------------------------------------------------------- training
class Scan:
    """A training scan: iterate it for ``pyarrow.RecordBatch`` objects.

    ``snapshot`` identifies the exact data version scanned (pass it back to reproduce the run);
    ``None`` when the source cannot be pinned (an ad-hoc query over mutable tables).
    """

    def __init__(self, batches: Iterator[pa.RecordBatch], schema: pa.Schema, snapshot: str | None):
        self._batches = batches
        self.schema = schema
        self.snapshot = snapshot

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self._batches

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self._batches), schema=self.schema)
