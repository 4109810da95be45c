"""The :class:`~strataml.protocols.VectorStore` on PostgreSQL + pgvector (>= 0.8).

* **Storage**: one table per collection and a registry table (see
  :mod:`strataml_postgres.vector_schema`): HNSW index with the metric's operator class, GIN
  index on a generated ``tsvector``, primary key ``(tenant, id)``.
* **Writes** (upsert, delete, DDL) run in transactions on the stack's shared pool. An upsert is
  validated completely first (:func:`strataml.vectors.batch.prepare_batch`), then COPYed in
  pgvector's binary format into a temporary table and merged with ``INSERT ... ON CONFLICT
  (tenant, id) DO UPDATE``. New metadata fields are registered in the same transaction, under a
  row lock on the registry, so concurrent writers cannot give a field two types.
* **Reads** (search, get, count, describe, scan pages) are single statements on the database's
  check-free autocommit read pool (:meth:`strataml_postgres.pool.PgDatabase.read`, with the
  pgvector session settings of :mod:`strataml_postgres.vector_pool`): one round trip per search.
* **Aliases** live in ``_strataml_vector_aliases``; a read through an alias verifies the cached
  resolution inside its own statement (see :mod:`strataml_postgres.vector_schema`), a write
  resolves it afresh and locks the alias row until it commits.
* **Health**: :meth:`PgVectorStore.stats` (dead tuples, HNSW parameters) and
  :meth:`PgVectorStore.optimize` (``REINDEX INDEX CONCURRENTLY`` past ``reindex_ratio``, then
  ``VACUUM (ANALYZE)``).
* **Filters** compile to parameterised JSONB expressions typed by the tracked field types
  (:mod:`strataml_postgres.vector_filters`); the tenant predicate ``tenant = %s`` is part of
  every statement (``''`` in single-tenant collections), never optional.
* **Filtered search returns k hits**: HNSW iterative index scans (``hnsw.iterative_scan =
  relaxed_order``, results re-sorted by distance); if the index scan still yields fewer than
  ``k`` rows (e.g. ``hnsw.max_scan_tuples`` reached on a very selective filter), the query is
  re-run as an exact scan, so fewer than ``k`` hits means fewer than ``k`` records match.
* **Scores** follow :class:`~strataml.models.Hit`: pgvector's ``<=>`` (cosine distance),
  ``<->`` (Euclidean) and ``<#>`` (negative inner product) are the raw ``distance``.
* **Keyword search** is PostgreSQL full text, *not* BM25: ``ts_rank(tsv, query, 1)`` (term
  frequency, divided by ``1 + log(document length)``) over the OR of the query's lexemes
  (English stemming and stop words, ``plainto_tsquery``). The raw rank is ``keyword_score`` and
  ``score = rank / (1 + rank)`` as the contract asks of BM25; its scale differs from BM25's.
* **Hybrid** fetches ``candidate_pool(k)`` dense and keyword candidates in one ``UNION ALL``
  statement and fuses them with :func:`strataml.vectors.fusion.fuse_hits` (the default method,
  relative-score fusion).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.types.json import Jsonb

from strataml.capabilities import Capabilities
from strataml.errors import (
    ConfigError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
    Unsupported,
)
from strataml.filters import FieldType, fields_used, parse_filter
from strataml.models import (
    CollectionInfo,
    CollectionStats,
    Hit,
    Metric,
    SearchMode,
    VectorRecord,
    check_name,
    score_from_bm25,
    score_from_distance,
)
from strataml.vectors.batch import (
    VectorBatch,
    check_alpha,
    check_k,
    check_tenant,
    merge_field_type,
    normalize_ids,
    prepare_batch,
    query_vector,
    resolve_mode,
    stored_records,
)
from strataml.vectors.columns import (
    check_batch_size,
    check_fields,
    columns_batch,
    metadata_schema,
)
from strataml.vectors.fusion import DEFAULT_FUSION, candidate_pool, fuse_hits
from strataml_postgres import VECTORS_CAPS
from strataml_postgres.pool import PgDatabase
from strataml_postgres.vector_filters import compile_filter, decode_metadata, encode_metadata
from strataml_postgres.vector_pool import (
    VectorSession,
    load_vector,
    register_vector_dumper,
)
from strataml_postgres.vector_schema import (
    ALIAS_CHECK,
    ALIAS_MOVED,
    ALIASES,
    EXTENSION_LOCK,
    REGISTRY,
    VECTOR_MAX_DIM,
    CollectionMeta,
    IndexKind,
    Ops,
    alias_function_sql,
    alias_guard,
    create_table_sql,
    hnsw_index_name,
    hnsw_index_sql,
    index_kind_for,
    new_table_name,
    registry_sql,
    temporal_fields,
)

__all__ = ["PgVectorStore"]

T = TypeVar("T")
Records = Iterable[VectorRecord | Mapping[str, Any]]

_METRICS: Final = ("cosine", "l2", "dot")
_ITERATIVE: Final = ("relaxed_order", "strict_order", "off")
_STAGE: Final = "strataml_vec_stage"
#: OR of the query's lexemes (plainto_tsquery ANDs them; its output quotes every lexeme).
_TSQUERY: Final = "replace(plainto_tsquery('english'::regconfig, %s)::text, ' & ', ' | ')::tsquery"
_COLS: Final = "id, tenant, text, metadata"
_META_COLS: Final = (
    "name, table_name, dim, metric, multi_tenant, index_kind, hnsw_m, hnsw_ef_construction, "
    "fields, metadata"
)
#: how stale the cached field list may be when a filter names a field it does not know
_UNKNOWN_FIELD_RECHECK_S: Final = 1.0
_HIT_VALIDATOR: Final = Hit.__pydantic_validator__
#: how many times a call retries after finding its cached collection or alias stale
_STALE_RETRIES: Final = 50
_MEMORY_RE: Final = re.compile(r"^[1-9][0-9]{0,6}(kB|MB|GB)$")
# row layout of every search statement
_LEG, _ID, _TENANT, _TEXT, _META, _DIST, _RANK, _EMB = range(8)
#: scan_metadata: each scalar field type's SQL type, to cast ``metadata ->> 'field'`` to
_SCAN_CASTS: Final = {
    FieldType.STRING: "text",
    FieldType.INT: "bigint",
    FieldType.FLOAT: "double precision",
    FieldType.BOOL: "boolean",
    FieldType.TIMESTAMP: "timestamptz",
    FieldType.DATE: "date",
}


def _pg_text(value: str, what: str) -> str:
    """Strings PostgreSQL can store: no NUL characters, valid UTF-8 (no lone surrogates)."""
    if "\x00" in value:
        raise InvalidInput(f"{what}: PostgreSQL text cannot contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what}: not valid Unicode text ({exc.reason})") from exc
    return value


def _check_batch_text(batch: VectorBatch) -> None:
    for i, rid in enumerate(batch.ids):
        where = f"record id {rid!r}"
        _pg_text(rid, where)
        tenant, text = batch.tenants[i], batch.texts[i]
        if tenant is not None:
            _pg_text(tenant, f"{where}: tenant")
        if text is not None:
            _pg_text(text, f"{where}: text")
        for key, value in batch.metadata[i].items():
            items = value if isinstance(value, list) else (value,)
            for item in items:
                if isinstance(item, str):
                    _pg_text(item, f"{where}: metadata.{key}")


class PgVectorStore:
    """Collections of embeddings in PostgreSQL tables with pgvector HNSW indexes.

    See the module docstring for the design and :class:`~strataml.protocols.VectorStore` for
    the semantics. Tuning: ``ef_search`` (HNSW candidate list per query; raised to the number
    of rows a query asks for), ``hnsw_m`` and ``hnsw_ef_construction`` (index build, fixed when
    a collection is created), ``iterative_scan`` (``relaxed_order``, ``strict_order`` or
    ``off``) and ``max_scan_tuples`` (how far an iterative scan may go before the exact
    fallback takes over). Bulk loads: an upsert of at least ``bulk_rebuild_rows`` records that
    is at least as large as the collection drops the HNSW index, loads, and rebuilds it in the
    same transaction (a bulk build is an order of magnitude faster than inserting into the
    graph row by row, and parallel), with ``maintenance_work_mem = build_memory`` (``None``:
    the server's setting); searches of that collection wait for the commit. ``reindex_ratio``:
    :meth:`optimize` rebuilds the HNSW index when dead tuples are at least this fraction of the
    rows. Bad settings raise :class:`ConfigError`.

    Errors are strataml's (driver errors translated and chained). A closed store raises
    :class:`Unavailable`; closing it does not close the shared database pool.
    """

    #: Calls do network I/O: async wrappers run them in a worker thread.
    blocking_io = True
    #: How many ``VACUUM`` passes :meth:`optimize` runs at most while dead tuples remain.
    VACUUM_PASSES = 3

    def __init__(
        self,
        db: PgDatabase,
        *,
        ef_search: int = 100,
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        iterative_scan: str = "relaxed_order",
        max_scan_tuples: int = 20_000,
        bulk_rebuild_rows: int = 10_000,
        build_memory: str | None = "512MB",
        reindex_ratio: float = 0.2,
    ) -> None:
        for label, value, low, high in (
            ("ef_search", ef_search, 1, 1000),
            ("hnsw_m", hnsw_m, 2, 100),
            ("hnsw_ef_construction", hnsw_ef_construction, 4, 1000),
            ("max_scan_tuples", max_scan_tuples, 1, 2**31 - 1),
            ("bulk_rebuild_rows", bulk_rebuild_rows, 1, 2**31 - 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{label} must be an integer in [{low}, {high}], got {value!r}")
        if hnsw_ef_construction < 2 * hnsw_m:
            raise ConfigError("hnsw_ef_construction must be at least 2 * hnsw_m")
        if build_memory is not None and not _MEMORY_RE.match(build_memory):
            raise ConfigError(f"build_memory must look like '512MB' or '2GB', got {build_memory!r}")
        if iterative_scan not in _ITERATIVE:
            raise ConfigError(f"iterative_scan must be one of {_ITERATIVE}, got {iterative_scan!r}")
        if (
            isinstance(reindex_ratio, bool)
            or not isinstance(reindex_ratio, int | float)
            or not 0.0 <= reindex_ratio <= 1.0
        ):
            raise ConfigError(f"reindex_ratio must be a number in [0, 1], got {reindex_ratio!r}")
        self._db = db
        self._schema = db.schema
        self.ef_search = ef_search
        self.hnsw_m = hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction
        self.iterative_scan = iterative_scan
        self.max_scan_tuples = max_scan_tuples
        self.bulk_rebuild_rows = bulk_rebuild_rows
        self.build_memory = build_memory
        self.reindex_ratio = float(reindex_ratio)
        self._registry = sql.Identifier(self._schema, REGISTRY).as_string(None)
        self._aliases = sql.Identifier(self._schema, ALIASES).as_string(None)
        #: writes flush their statistics synchronously (PostgreSQL >= 15), set up by _setup
        self._flush_stats = False
        self._metas: dict[str, CollectionMeta] = {}
        self._lock = threading.RLock()
        self._ext: str | None = None
        self._session: VectorSession | None = None
        self._closed = False

    # ------------------------------------------------------------------------ housekeeping
    @property
    def capabilities(self) -> Capabilities:
        return VECTORS_CAPS

    def close(self) -> None:
        """Make the store unusable (its connections belong to the shared database pools, which
        the stack closes). Safe to call twice."""
        with self._lock:
            self._closed = True
            self._metas.clear()

    def __repr__(self) -> str:
        return f"<PgVectorStore schema={self._schema!r}>"

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("this vector store is closed; open a new one")

    def _read(self, what: str, fn: Callable[[psycopg.Connection[Any]], T], *, ef: int = 0) -> T:
        """Run one read statement on the database's autocommit read pool, with this store's
        pgvector settings (``hnsw.ef_search`` at least ``ef``) on the connection."""
        self._setup()
        session = self._session
        assert session is not None
        if not ef:
            return self._db.read(what, fn, prepare=session.apply)
        return self._db.read(what, fn, prepare=lambda conn, st: session.apply(conn, st, ef))

    def _setup(self) -> str:
        """Make sure pgvector and the registry exist (once per store); the extension's schema."""
        self._check_open()
        if self._ext is not None:
            return self._ext
        with self._lock:
            if self._ext is not None:
                return self._ext
            with self._db.connection("setting up the pgvector store") as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (EXTENSION_LOCK,))
                found = self._extension_schema(conn)
                if found is None:
                    try:
                        with conn.transaction():
                            conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
                    except psycopg.Error as exc:
                        raise Unavailable(
                            "the pgvector extension is not installed in this database and "
                            f"cannot be created ({type(exc).__name__}): ask an administrator to "
                            "run CREATE EXTENSION vector"
                        ) from exc
                    found = self._extension_schema(conn)
                    assert found is not None
                ext, version = found
                self._flush_stats = conn.info.server_version >= 150000
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"strataml:{self._schema}",)
                )
                for stmt in registry_sql(self._schema):
                    conn.execute(stmt)
                check = sql.Identifier(self._schema, ALIAS_CHECK).as_string(None)
                found_fn = conn.execute(
                    "SELECT to_regprocedure(%s)", (f"{check}(text,text)",)
                ).fetchone()
                if found_fn is None or found_fn[0] is None:
                    conn.execute(alias_function_sql(self._schema))
            self._session = VectorSession(
                ef_search=self.ef_search,
                # iterative index scans arrived in pgvector 0.8; older versions rely on the
                # exact fallback alone for filtered searches
                iterative_scan=self.iterative_scan if version >= (0, 8) else None,
                max_scan_tuples=self.max_scan_tuples,
                load_library=f"SELECT '[1]'::{sql.Identifier(ext).as_string(None)}.vector",
            )
            self._ext = ext
            return ext

    @staticmethod
    def _extension_schema(conn: psycopg.Connection[Any]) -> tuple[str, tuple[int, ...]] | None:
        """The schema pgvector lives in and its version, or ``None`` if not installed."""
        row = conn.execute(
            "SELECT n.nspname, e.extversion FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'"
        ).fetchone()
        if row is None:
            return None
        version = tuple(int(p) for p in re.findall(r"\d+", str(row[1]))[:3])
        return str(row[0]), version

    # ---------------------------------------------------------------------- collection meta
    def _meta_from_row(self, row: Sequence[Any], alias: str | None = None) -> CollectionMeta:
        """A registry row (``_META_COLS``), resolved through ``alias`` if given."""
        name, table, dim, metric, multi_tenant, kind, m, efc, fields, metadata = row
        types = {k: FieldType(v) for k, v in (fields or {}).items()}
        ext = self._ext
        assert ext is not None
        return CollectionMeta(
            name=str(name),
            table=str(table),
            dim=int(dim),
            metric=metric,
            multi_tenant=bool(multi_tenant),
            index=kind,
            hnsw_m=int(m),
            hnsw_ef_construction=int(efc),
            fields=types,
            temporal=temporal_fields(types),
            metadata=dict(metadata or {}),
            qualified=sql.Identifier(self._schema, str(table)).as_string(None),
            ops=Ops.build(ext, metric, int(dim), kind),
            loaded_at=time.monotonic(),
            alias=alias,
            guard="" if alias is None else alias_guard(self._schema, alias, str(name)),
        )

    def _select_meta(self) -> str:
        """The registry row of a collection (by its own name, not an alias)."""
        return f"SELECT {_META_COLS} FROM {self._registry} WHERE name = %s"

    def _load(self, name: str) -> CollectionMeta:
        """Read the collection ``name`` names, directly or through an alias (one statement)."""
        query = (
            f"SELECT {_META_COLS} FROM {self._registry} WHERE name = "
            f"coalesce((SELECT collection FROM {self._aliases} WHERE alias = %s), %s)"
        )
        row = self._read(
            f"reading collection {name!r}",
            lambda conn: conn.execute(query, (name, name)).fetchone(),
        )
        if row is None:
            self._metas.pop(name, None)
            raise NotFound(f"collection {name!r} does not exist; create it first")
        meta = self._meta_from_row(row, alias=None if row[0] == name else name)
        self._metas[name] = meta
        return meta

    def _coll(self, name: str, *, refresh: bool = False) -> CollectionMeta:
        """The cached metadata of the collection ``name`` names (directly or through an alias);
        read from the registry if not cached or ``refresh``."""
        self._check_open()
        if not refresh and isinstance(name, str):
            meta = self._metas.get(name)  # cached names were validated when loaded
            if meta is not None:
                return meta
        self._setup()
        check_name("collection", name)
        return self._load(name)

    def _fresh(self, name: str, fn: Callable[[CollectionMeta], T]) -> T:
        """Run ``fn`` with the cached metadata; if it turns out stale, reload the registry and
        retry (up to ``_STALE_RETRIES`` times: an alias may be repointed again and again, and
        a reader must still end on a consistent target).
        Stale means: the table is gone (the collection was dropped or recreated elsewhere), the
        alias moved (the alias check failed, or a write found the alias row changed), or --
        through an alias only -- a validation error that the alias's new target may not raise
        (another dimension, tenancy or field types)."""
        meta = self._coll(name)
        for attempt in range(_STALE_RETRIES + 1):
            try:
                return fn(meta)
            except StrataError as exc:
                why = _staleness(meta, exc)
                if why is None or attempt == _STALE_RETRIES:
                    raise
                self._metas.pop(name, None)
                fresh = self._coll(name)  # NotFound if the collection (or alias) is gone
                if why == "maybe" and (fresh.table, fresh.alias) == (meta.table, meta.alias):
                    raise
                meta = fresh
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, meta: CollectionMeta, stored: dict[str, Any]) -> dict[str, Any]:
        """Stored metadata (a fresh dict from the driver) as Python values."""
        if not stored.keys() <= meta.fields.keys():  # a field written by another process
            meta = self._load(meta.name)
        if meta.temporal.isdisjoint(stored):
            return stored
        return decode_metadata(stored, meta.fields)

    def _compile(
        self, meta: CollectionMeta, spec: Mapping[str, Any] | None
    ) -> tuple[CollectionMeta, str, list[Any]]:
        expr = parse_filter(spec)
        if expr is None:
            return meta, "TRUE", []
        if (
            not fields_used(expr) <= meta.fields.keys()
            and time.monotonic() - meta.loaded_at > _UNKNOWN_FIELD_RECHECK_S
        ):  # a field we have not seen may have been written since we read the registry
            fresh = self._load(meta.alias or meta.name)
            if fresh.table != meta.table:  # the call was checked against another collection
                raise _Moved(f"collection {meta.name!r} changed meanwhile")
            meta = fresh
        where, params = compile_filter(expr, meta.fields)
        return meta, where, params

    # ------------------------------------------------------------------------- collections
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
        """Create a collection (table, HNSW and GIN indexes, registry row) in one transaction.

        An existing collection raises :class:`Conflict` unless ``exist_ok`` and its dimension,
        metric and tenancy match (it is then described, unchanged). Raises
        :class:`InvalidInput` (bad name, dimension, metric, metadata), :class:`LimitExceeded`
        (``dim`` above 16000, pgvector's limit) and :class:`Unsupported` (undeclared metric).
        Dimensions above 2000 are indexed as ``halfvec`` (up to 4000) or searched exactly.
        """
        self._check_open()
        check_name("collection", name)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidInput(f"dim must be a positive integer, got {dim!r}")
        if dim > VECTOR_MAX_DIM:
            raise LimitExceeded(f"pgvector stores at most {VECTOR_MAX_DIM} dimensions, got {dim}")
        if metric not in _METRICS:
            raise InvalidInput(f"unknown metric {metric!r}; use 'cosine', 'l2' or 'dot'")
        if metric not in self.capabilities.metrics:
            raise Unsupported(f"pgvector store cannot use metric {metric!r}")
        if not isinstance(multi_tenant, bool):
            raise InvalidInput(f"multi_tenant must be a bool, got {multi_tenant!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInput("collection metadata must be a mapping")
        try:
            # as JSON stores it (what describe() returns): keys become strings, tuples lists
            user_meta = json.loads(json.dumps(dict(metadata or {}), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"collection metadata must be JSON-serialisable: {exc}") from exc
        ext = self._setup()
        kind: IndexKind = index_kind_for(dim)
        with self._db.connection(f"creating collection {name!r}") as conn:
            self._namespace_lock(conn)
            target = conn.execute(
                f"SELECT collection FROM {self._aliases} WHERE alias = %s", (name,)
            ).fetchone()
            if target is not None:
                raise Conflict(
                    f"{name!r} is an alias (of collection {target[0]!r}); aliases and "
                    "collections share one namespace"
                )
            row = conn.execute(self._select_meta(), (name,)).fetchone()
            if row is None:
                table = new_table_name(name)
                for stmt in create_table_sql(
                    self._schema,
                    table,
                    ext,
                    dim,
                    metric,
                    hnsw_m=self.hnsw_m,
                    hnsw_ef_construction=self.hnsw_ef_construction,
                ):
                    conn.execute(stmt)
                conn.execute(
                    f"INSERT INTO {self._registry} (name, table_name, dim, metric, multi_tenant, "
                    "index_kind, hnsw_m, hnsw_ef_construction, metadata) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        name,
                        table,
                        dim,
                        metric,
                        multi_tenant,
                        kind,
                        self.hnsw_m,
                        self.hnsw_ef_construction,
                        Jsonb(user_meta),
                    ),
                )
        if row is None:
            self._metas.pop(name, None)
            return CollectionInfo(
                name=name,
                dim=dim,
                metric=metric,
                count=0,
                multi_tenant=multi_tenant,
                metadata=user_meta,
            )
        existing = self._meta_from_row(row)
        if not exist_ok:
            raise Conflict(f"collection {name!r} already exists (pass exist_ok=True to reuse it)")
        mismatch = [
            f"{what} {have!r} (asked for {want!r})"
            for what, have, want in (
                ("dim", existing.dim, dim),
                ("metric", existing.metric, metric),
                ("multi_tenant", existing.multi_tenant, multi_tenant),
            )
            if have != want
        ]
        if mismatch:
            raise Conflict(f"collection {name!r} exists with {', '.join(mismatch)}")
        return self.describe(name)

    def _namespace_lock(self, conn: psycopg.Connection[Any]) -> None:
        """Serialise creating/dropping collections and aliases of this schema (transaction)."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"strataml:{self._schema}",))

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its data (no error if it does not exist).

        Raises :class:`Conflict` when an alias points at it (repoint or drop the alias first)
        or when ``name`` is an alias (use :meth:`drop_alias`).
        """
        self._setup()
        check_name("collection", name)
        with self._db.connection(f"dropping collection {name!r}") as conn:
            self._namespace_lock(conn)
            rows = conn.execute(
                f"SELECT alias, collection FROM {self._aliases} "
                "WHERE alias = %s OR collection = %s ORDER BY alias",
                (name, name),
            ).fetchall()
            if any(r[0] == name for r in rows):
                raise Conflict(f"{name!r} is an alias, not a collection: drop it with drop_alias")
            if rows:
                raise Conflict(
                    f"collection {name!r} is the target of alias(es) "
                    f"{', '.join(str(r[0]) for r in rows)}: repoint or drop them first"
                )
            row = conn.execute(
                f"DELETE FROM {self._registry} WHERE name = %s RETURNING table_name", (name,)
            ).fetchone()
            if row is not None:
                conn.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(
                        sql.Identifier(self._schema, str(row[0]))
                    )
                )
        self._metas.pop(name, None)

    def collections(self) -> list[str]:
        """The names of every collection (not the aliases), sorted (code-point order)."""
        self._setup()
        rows = self._read(
            "listing collections",
            lambda conn: conn.execute(
                f"SELECT name FROM {self._registry} ORDER BY name"
            ).fetchall(),
        )
        return [str(r[0]) for r in rows]

    def describe(self, name: str) -> CollectionInfo:
        """Dimension, metric, tenancy, record count (all tenants), the metadata fields with
        their types, and the collection's metadata; for an alias, its target's (with the
        target's ``name``). :class:`NotFound` if it does not exist."""

        def run(meta: CollectionMeta) -> CollectionInfo:
            query = f"SELECT count(*) FROM {meta.qualified} WHERE {meta.guard}TRUE"
            count = self._read(f"counting {name!r}", lambda conn: conn.execute(query).fetchone())
            assert count is not None
            return CollectionInfo(
                name=meta.name,
                dim=meta.dim,
                metric=meta.metric,
                count=int(count[0]),
                multi_tenant=meta.multi_tenant,
                fields=dict(sorted(meta.fields.items())),
                metadata=meta.metadata,
            )

        self._coll(name, refresh=True)
        return self._fresh(name, run)

    # ------------------------------------------------------------------------------ aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection``: create the alias or repoint it, in one
        transaction (readers see the old target or the new one; a read already running
        finishes on the old one).

        Raises :class:`InvalidInput` (bad names), :class:`Conflict` (``alias`` is a
        collection's name) and :class:`NotFound` (``collection`` does not exist or is an alias).
        """
        self._setup()
        check_name("alias", alias)
        check_name("collection", collection)
        with self._db.connection(f"setting alias {alias!r}") as conn:
            self._namespace_lock(conn)
            if conn.execute(f"SELECT 1 FROM {self._registry} WHERE name = %s", (alias,)).fetchone():
                raise Conflict(
                    f"{alias!r} is a collection's name; aliases and collections share one namespace"
                )
            other = conn.execute(
                f"SELECT collection FROM {self._aliases} WHERE alias = %s", (collection,)
            ).fetchone()
            if other is not None:
                raise NotFound(
                    f"{collection!r} is an alias, not a collection: point {alias!r} at "
                    f"collection {other[0]!r} instead"
                )
            if not conn.execute(
                f"SELECT 1 FROM {self._registry} WHERE name = %s", (collection,)
            ).fetchone():
                raise NotFound(f"collection {collection!r} does not exist; create it first")
            conn.execute(
                f"INSERT INTO {self._aliases} (alias, collection) VALUES (%s, %s) "
                "ON CONFLICT (alias) DO UPDATE SET collection = EXCLUDED.collection, "
                "updated_at = now() WHERE "
                f"{self._aliases}.collection IS DISTINCT FROM EXCLUDED.collection",
                (alias, collection),
            )
        self._metas.pop(alias, None)

    def drop_alias(self, alias: str) -> None:
        """Remove ``alias`` (no error if it does not exist); its collection is untouched."""
        self._setup()
        check_name("alias", alias)
        with self._db.connection(f"dropping alias {alias!r}") as conn:
            self._namespace_lock(conn)
            conn.execute(f"DELETE FROM {self._aliases} WHERE alias = %s", (alias,))
        self._metas.pop(alias, None)

    def aliases(self) -> dict[str, str]:
        """Every alias and the collection it points at, sorted by alias."""
        self._setup()
        rows = self._read(
            "listing aliases",
            lambda conn: conn.execute(
                f"SELECT alias, collection FROM {self._aliases} ORDER BY alias"
            ).fetchall(),
        )
        return {str(r[0]): str(r[1]) for r in rows}

    # ------------------------------------------------------------------------------- writes
    def upsert(self, name: str, records: Records) -> int:
        """Insert or replace records by id (per tenant); return how many were written.

        The batch is validated completely first (dimensions, finite values, ids, tenants,
        metadata types, text PostgreSQL can store); on any error nothing is written. Duplicate
        ids in one batch: the last record wins. Raises :class:`NotFound`,
        :class:`DimensionMismatch`, :class:`InvalidInput`, :class:`LimitExceeded`.

        Through an alias, the alias is resolved afresh first (one more round trip) and its row
        is locked (``FOR SHARE``) in the write's transaction: a concurrent repoint waits for
        the write, so the write lands in the collection the alias pointed at when it committed.
        """
        cached = self._metas.get(name) if isinstance(name, str) else None
        meta = self._coll(name, refresh=cached is not None and cached.alias is not None)
        batch = prepare_batch(
            records,
            dim=meta.dim,
            multi_tenant=meta.multi_tenant,
            known_fields=meta.fields,
            max_rows=self.capabilities.max_batch_rows,
        )
        _check_batch_text(batch)
        if not batch:
            return 0

        def write(current: CollectionMeta) -> int:
            b = batch
            if current is not meta:  # recreated elsewhere: validate against the new shape
                b = prepare_batch(
                    _records_of(batch),
                    dim=current.dim,
                    multi_tenant=current.multi_tenant,
                    known_fields=current.fields,
                )
            fields = self._write(current, b)
            if fields is not None:
                self._metas[name] = _with_fields(current, fields)
            return len(b)

        return self._fresh(name, write)

    def _write(self, meta: CollectionMeta, batch: VectorBatch) -> dict[str, FieldType] | None:
        """COPY + merge one validated batch; the collection's new field types, if they changed."""
        fields: dict[str, FieldType] | None = None
        with self._db.connection(f"upserting into {meta.name!r}") as conn:
            cur = conn.cursor()
            register_vector_dumper(cur)
            self._hold_alias(conn, meta)
            if batch.new_fields or batch.widened:
                fields = self._register_fields(cur, meta, batch)
            rebuild = self._bulk(cur, meta, len(batch))
            cur.execute(
                f'CREATE TEMP TABLE {_STAGE} (tenant text COLLATE "C", id text COLLATE "C", '
                f"embedding {meta.ops.vector_type}, text text, metadata jsonb) ON COMMIT DROP"
            )
            copy_sql = (
                f"COPY {_STAGE} (tenant, id, embedding, text, metadata) FROM STDIN (FORMAT BINARY)"
            )
            with cur.copy(copy_sql) as copy:
                for i, rid in enumerate(batch.ids):
                    copy.write_row(
                        (
                            batch.tenants[i] or "",
                            rid,
                            batch.vectors[i],
                            batch.texts[i],
                            Jsonb(encode_metadata(batch.metadata[i])),
                        )
                    )
            cur.execute(
                self._flushing(
                    f"INSERT INTO {meta.qualified} (tenant, id, embedding, text, metadata) "
                    f"SELECT tenant, id, embedding, text, metadata FROM {_STAGE} "
                    "ON CONFLICT (tenant, id) DO UPDATE SET embedding = EXCLUDED.embedding, "
                    "text = EXCLUDED.text, metadata = EXCLUDED.metadata"
                )
            )
            if rebuild is not None:
                cur.execute(rebuild)
                cur.execute(f"ANALYZE {meta.qualified}")
        return fields

    def _bulk(
        self, cur: psycopg.Cursor[Any], meta: CollectionMeta, rows: int
    ) -> sql.Composed | None:
        """For a bulk load, drop the HNSW index and return the statement rebuilding it."""
        if meta.index == "exact" or rows < self.bulk_rebuild_rows:
            return None
        existing = cur.execute(f"SELECT count(*) FROM {meta.qualified}").fetchone()
        if existing is None or int(existing[0]) > rows:
            return None
        assert self._ext is not None
        cur.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(
                sql.Identifier(self._schema, hnsw_index_name(meta.table))
            )
        )
        if self.build_memory is not None:
            cur.execute("SELECT set_config('maintenance_work_mem', %s, true)", (self.build_memory,))
        return hnsw_index_sql(
            self._schema,
            meta.table,
            self._ext,
            meta.dim,
            meta.metric,
            hnsw_m=meta.hnsw_m,
            hnsw_ef_construction=meta.hnsw_ef_construction,
        )

    def _register_fields(
        self, cur: psycopg.Cursor[Any], meta: CollectionMeta, batch: VectorBatch
    ) -> dict[str, FieldType]:
        """Merge the batch's field types into the registry row, locked (raises InvalidInput on
        a clash with a type another writer registered meanwhile)."""
        row = cur.execute(
            f"SELECT table_name, fields FROM {self._registry} WHERE name = %s FOR UPDATE",
            (meta.name,),
        ).fetchone()
        if row is None or row[0] != meta.table:
            raise NotFound(f"collection {meta.name!r} was dropped or recreated meanwhile")
        fields = {k: FieldType(v) for k, v in (row[1] or {}).items()}
        for fname, ftype in batch.field_types.items():
            prior = fields.get(fname)
            merged = ftype if prior is None else merge_field_type(prior, ftype)
            if merged is None:
                raise InvalidInput(
                    f"metadata field {fname!r} holds {prior} values, got {ftype}; a field keeps "
                    "the type it was first written with"
                )
            fields[fname] = merged
        cur.execute(
            f"UPDATE {self._registry} SET fields = %s WHERE name = %s",
            (Jsonb({k: str(v) for k, v in fields.items()}), meta.name),
        )
        return fields

    def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id within ``tenant`` (ids that do not exist are ignored)."""

        def run(meta: CollectionMeta) -> None:
            t = self._tenant(meta, tenant)
            keys = [_pg_text(i, "id") for i in normalize_ids(ids)]
            if not keys:
                return
            with self._db.connection(f"deleting from {name!r}") as conn:
                self._hold_alias(conn, meta)
                conn.execute(
                    self._flushing(
                        f"DELETE FROM {meta.qualified} WHERE tenant = %s AND id = ANY(%s::text[])"
                    ),
                    (t, keys),
                )

        self._fresh(name, run)

    def _flushing(self, statement: str) -> str:
        """``statement`` (an INSERT/DELETE) wrapped so that its backend publishes its table
        statistics (dead tuples) when the transaction ends, before the client hears of the
        commit, instead of up to ~10 s later (PostgreSQL >= 15; see :meth:`stats`)."""
        if not self._flush_stats:
            return statement
        return f"WITH w AS ({statement}) SELECT pg_stat_force_next_flush()"

    def _hold_alias(self, conn: psycopg.Connection[Any], meta: CollectionMeta) -> None:
        """In a write transaction through an alias: lock the alias row until the commit and
        check that it still points at ``meta``'s collection (else :class:`_Moved`)."""
        if meta.alias is None:
            return
        row = conn.execute(
            f"SELECT collection FROM {self._aliases} WHERE alias = %s FOR SHARE", (meta.alias,)
        ).fetchone()
        if row is None or row[0] != meta.name:
            raise _Moved(f"alias {meta.alias!r} was repointed or dropped meanwhile")

    @staticmethod
    def _tenant(meta: CollectionMeta, tenant: str | None) -> str:
        """The tenant predicate's value: required/forbidden per collection, '' if single."""
        t = check_tenant(meta.multi_tenant, tenant, meta.name)
        return "" if t is None else _pg_text(t, "tenant")

    # -------------------------------------------------------------------------------- reads
    def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]:
        """The records that exist among ``ids`` (within ``tenant``), in the order of ``ids``."""

        def run(meta: CollectionMeta) -> list[VectorRecord]:
            t = self._tenant(meta, tenant)
            keys = [_pg_text(i, "id") for i in normalize_ids(ids)]
            if not keys:
                return []
            cols = _COLS + (", embedding" if include_vectors else "")
            query = (
                f"SELECT {cols} FROM {meta.qualified} "
                f"WHERE {meta.guard}tenant = %s AND id = ANY(%s::text[])"
            )
            rows = self._read(
                f"reading from {name!r}",
                lambda conn: conn.cursor(binary=True).execute(query, (t, keys)).fetchall(),
            )
            by_id = {row[0]: row for row in rows}
            return [
                VectorRecord(
                    id=row[0],
                    vector=load_vector(row[4]) if include_vectors else None,
                    text=row[2],
                    metadata=self._decode(meta, row[3]),
                    tenant=row[1] if meta.multi_tenant else None,
                )
                for row in (by_id.get(key) for key in keys)
                if row is not None
            ]

        return self._fresh(name, run)

    def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int:
        """How many records (within ``tenant``) match ``filter``."""

        def run(meta: CollectionMeta) -> int:
            t = self._tenant(meta, tenant)
            meta, where, params = self._compile(meta, filter)
            query = (
                f"SELECT count(*) FROM {meta.qualified} WHERE {meta.guard}tenant = %s AND {where}"
            )
            row = self._read(
                f"counting {name!r}",
                lambda conn: conn.execute(query, (t, *params)).fetchone(),
            )
            assert row is not None
            return int(row[0])

        return self._fresh(name, run)

    def search(
        self,
        name: str,
        vector: Any = None,
        *,
        k: int = 10,
        text: str | None = None,
        mode: SearchMode | None = None,
        filter: Mapping[str, Any] | None = None,
        tenant: str | None = None,
        alpha: float = 0.5,
        include_vectors: bool = False,
    ) -> list[Hit]:
        """Dense, keyword or hybrid search (see :class:`~strataml.protocols.VectorStore`).

        The mode defaults to what was passed (vector -> dense, text -> keyword, both ->
        hybrid). The filter and the tenant are applied inside the statement, before ranking;
        ``k`` hits come back whenever ``k`` records match. Raises :class:`NotFound`,
        :class:`DimensionMismatch`, :class:`InvalidInput`, :class:`FilterError`,
        :class:`Unsupported`.
        """

        def run(meta: CollectionMeta) -> list[Hit]:
            t = self._tenant(meta, tenant)
            resolved = resolve_mode(vector, text, mode, self.capabilities)
            kk = check_k(k)
            a = check_alpha(alpha)
            qv = _query_vector(vector, meta.dim) if resolved != "keyword" else None
            if resolved != "dense":
                assert text is not None
                _pg_text(text, "search text")
            meta, where, params = self._compile(meta, filter)
            return self._search(meta, resolved, qv, text, kk, where, params, t, a, include_vectors)

        return self._fresh(name, run)

    # -------------------------------------------------------------------------------- scans
    def scan(
        self,
        name: str,
        *,
        tenant: str | None = None,
        include_vectors: bool = False,
        batch_size: int = 1000,
    ) -> Iterator[list[VectorRecord]]:
        """Every record of the collection (of ``tenant`` when multi-tenant), once, in batches of
        at most ``batch_size``, in id order.

        Keyset pagination on the primary key: each batch is one statement (``WHERE tenant = $1
        AND id > $last ORDER BY id LIMIT $n``, an index range scan) on an autocommit read
        connection, so a long scan holds no transaction, snapshot or connection between
        batches. A record that exists for the whole scan is returned exactly once; one written
        or deleted meanwhile may or may not be. Through an alias, the scan reads the collection
        the alias pointed at when it started. Raises :class:`NotFound`, :class:`InvalidInput`
        (bad ``batch_size``, missing or unexpected tenant) at the call, before iterating.
        """
        batch_size = check_batch_size(batch_size)
        meta = self._coll(name, refresh=True)
        t = self._tenant(meta, tenant)
        return self._scan_pages(meta, t, include_vectors, batch_size)

    def _scan_pages(
        self, meta: CollectionMeta, tenant: str, include_vectors: bool, batch_size: int
    ) -> Iterator[list[VectorRecord]]:
        cols = _COLS + (", embedding" if include_vectors else "")
        for rows in self._keyset_pages(meta, cols, [], tenant, batch_size):
            # stored rows were validated when written: no second validation per row
            yield stored_records(
                [row[0] for row in rows],
                [row[2] for row in rows],
                [self._decode(meta, row[3]) for row in rows],
                [row[1] for row in rows] if meta.multi_tenant else None,
                [load_vector(row[4]) for row in rows] if include_vectors else None,
            )

    def _keyset_pages(
        self,
        meta: CollectionMeta,
        select: str,
        select_params: list[Any],
        tenant: str,
        batch_size: int,
    ) -> Iterator[list[Any]]:
        """The rows of ``tenant`` in id order, ``batch_size`` at a time (keyset pagination on
        ``id``); ``select`` is the column list, its first column the id, with its own bound
        ``select_params``."""
        query = (
            f"SELECT {select} FROM {meta.qualified} WHERE tenant = %s AND id > %s "
            "ORDER BY id LIMIT %s"
        )
        params: list[Any] = [*select_params, tenant, "", batch_size]  # ids are non-empty: > ''
        after = len(select_params) + 1
        while True:
            rows = self._read(
                f"scanning {meta.name!r}",
                lambda conn: conn.cursor(binary=True).execute(query, params).fetchall(),
            )
            if not rows:
                return
            yield rows
            if len(rows) < batch_size:
                return
            params[after] = rows[-1][0]

    def scan_metadata(
        self,
        name: str,
        fields: Sequence[str],
        *,
        tenant: str | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Every record's id and the metadata ``fields``, column-wise (see
        :meth:`~strataml.protocols.VectorStore.scan_metadata`), in id order.

        The same keyset pagination as :meth:`scan`, selecting only ``id`` and one typed
        expression per field (``metadata->>'f'`` cast to the field's SQL type), so PostgreSQL
        does the JSON work and no record object is built. Raises :class:`NotFound`,
        :class:`InvalidInput` (bad ``fields`` or ``batch_size``, a list field, missing or
        unexpected tenant) at the call, before iterating.
        """
        names = check_fields(fields)
        batch_size = check_batch_size(batch_size)
        meta = self._coll(name, refresh=True)
        t = self._tenant(meta, tenant)
        schema = metadata_schema(names, meta.fields)
        return self._metadata_pages(meta, t, schema, batch_size)

    def _metadata_pages(
        self, meta: CollectionMeta, tenant: str, schema: pa.Schema, batch_size: int
    ) -> Iterator[pa.RecordBatch]:
        struct = schema.field("metadata").type
        exprs, names = ["id"], []
        for i in range(struct.num_fields):
            name = struct.field(i).name
            ftype = meta.fields.get(name)
            cast = None if ftype is None else _SCAN_CASTS.get(ftype)
            exprs.append("NULL" if cast is None else f"(metadata ->> %s)::{cast}")
            if cast is not None:
                names.append(name)  # the field names are parameters, never SQL text
        for rows in self._keyset_pages(meta, ", ".join(exprs), names, tenant, batch_size):
            columns = list(zip(*rows, strict=True))
            yield columns_batch(columns[0], columns[1:], schema)

    # ------------------------------------------------------------------------------- health
    def stats(self, name: str) -> CollectionStats:
        """Count, dead tuples and the index of a collection (or of an alias's target).

        * ``deleted``: the table's dead tuples (``pg_stat_user_tables.n_dead_tup``): rows
          deleted or overwritten and not vacuumed yet, including those already pruned to dead
          line pointers, which the HNSW graph still holds (searches visit and skip them, which
          costs time and recall). The store's own writes publish their counts when they commit
          (PostgreSQL >= 15), so the figure is current after them; other clients' writes show
          up within about 10 s (the statistics system's flush interval). ``pgstattuple`` is not
          used: it does not count pruned line pointers.
        * ``index_type``: ``"hnsw"`` (``index_params``: ``m``, ``ef_construction``, and
          ``storage: "halfvec"`` above 2000 dimensions) or ``"flat"`` (above 4000 dimensions,
          or while a bulk load rebuilds the index); ``indexed``: the live rows when the HNSW
          index is valid (pgvector indexes every row as it is written), else 0.
        * ``details``: table and index bytes, the index's ``reltuples``, ``ef_search``, last
          (auto)vacuum and (auto)analyze times.
        """
        meta = self._coll(name, refresh=True)
        return self._stats(meta)

    def _stats(self, meta: CollectionMeta) -> CollectionStats:
        query = (
            f"SELECT (SELECT count(*) FROM {meta.qualified}), s.n_dead_tup, "
            "pg_table_size(s.relid), s.last_vacuum, s.last_autovacuum, s.last_analyze, "
            "s.last_autoanalyze FROM pg_stat_user_tables s WHERE s.relid = %s::regclass"
        )
        index_query = (
            "SELECT c.relname, am.amname, c.reloptions, i.indisvalid, c.reltuples, "
            "pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = %s::regclass "
            "AND am.amname IN ('hnsw', 'ivfflat') ORDER BY i.indisvalid DESC, c.relname"
        )

        def read(conn: psycopg.Connection[Any]) -> tuple[Any, list[Any]]:
            return (
                conn.execute(query, (meta.qualified,)).fetchone(),
                conn.execute(index_query, (meta.qualified,)).fetchall(),
            )

        row, indexes = self._read(f"reading the stats of {meta.name!r}", read)
        if row is None:
            raise NotFound(f"collection {meta.name!r} does not exist")
        count, n_dead, table_bytes, vacuum, autovacuum, analyze, autoanalyze = row
        details: dict[str, Any] = {
            "table_bytes": int(table_bytes),
            "ef_search": self.ef_search,
            "last_vacuum": _latest(vacuum, autovacuum),
            "last_analyze": _latest(analyze, autoanalyze),
        }
        index_type, params, indexed = "flat", {}, 0
        hnsw = hnsw_index_name(meta.table)
        mine = [ix for ix in indexes if ix[0] == hnsw]
        if mine:
            _, amname, options, valid, reltuples, index_bytes = mine[0]
            index_type = str(amname)
            params = _reloptions(options)
            if meta.index == "hnsw_halfvec":
                params["storage"] = "halfvec"
            indexed = int(count) if valid else 0
            details.update(
                index_valid=bool(valid),
                index_reltuples=max(0, int(reltuples)),
                index_bytes=int(index_bytes),
            )
        leftovers = [str(ix[0]) for ix in indexes if ix[0] != hnsw]
        if leftovers:
            details["other_indexes"] = leftovers
        return CollectionStats.of(
            meta.name,
            int(count),
            max(0, int(n_dead)),
            index_type=index_type,
            index_params=params,
            indexed=indexed,
            details=details,
        )

    def optimize(self, name: str) -> CollectionStats:
        """Clean dead tuples out of the table and its indexes, refresh the planner statistics,
        and rebuild the HNSW index when it is worth it; return the stats afterwards.

        On a dedicated autocommit connection, without the statement timeout: first, an HNSW
        index left invalid by an interrupted build is dropped (``DROP INDEX CONCURRENTLY``);
        then, when dead tuples are at least ``reindex_ratio`` of the rows (or the index is
        invalid or missing), the index is rebuilt with ``REINDEX INDEX CONCURRENTLY`` (or
        ``CREATE INDEX CONCURRENTLY``): a fresh graph without the deleted entries, which also
        makes the vacuum of the index fast (pgvector's advice); finally ``VACUUM (ANALYZE,
        INDEX_CLEANUP ON)``. Searches and writes keep being served throughout (they wait only
        for the index swap's brief locks).

        A plain ``VACUUM`` skips a heap page whose cleanup lock it cannot get at once (a
        concurrent search holding a pin on it), leaving that page's dead tuples counted; so
        while dead tuples remain and a pass removed some, ``VACUUM`` runs again, up to
        :attr:`VACUUM_PASSES` passes in all (a repeat pass visits only the pages the visibility
        map does not mark all-visible). Dead tuples still visible to an open transaction
        elsewhere, or on a page pinned for the whole run (an open cursor), cannot be removed
        yet and stay counted; and ``REINDEX CONCURRENTLY`` waits for transactions older than
        it to end.
        """
        meta = self._coll(name, refresh=True)
        before = self._stats(meta)
        with self._db.direct_connection(
            f"optimizing {meta.name!r}", statement_timeout=False
        ) as conn:
            if self.build_memory is not None:
                conn.execute(
                    "SELECT set_config('maintenance_work_mem', %s, false)", (self.build_memory,)
                )
            if meta.index != "exact":
                self._rebuild_index(conn, meta, before)
            self._vacuum(conn, meta, analyze=True)
            after, passes = self._stats(meta), 1
            while after.deleted and passes < self.VACUUM_PASSES:
                self._vacuum(conn, meta, analyze=False)
                passes += 1
                left = after.deleted
                after = self._stats(meta)
                if (after.deleted or 0) >= left:  # this pass gained nothing: stop here
                    break
        return after

    def _vacuum(
        self, conn: psycopg.Connection[Any], meta: CollectionMeta, *, analyze: bool
    ) -> None:
        options = "ANALYZE, INDEX_CLEANUP ON" if analyze else "INDEX_CLEANUP ON"
        conn.execute(
            sql.SQL("VACUUM ({}) {}").format(
                sql.SQL(options), sql.Identifier(self._schema, meta.table)
            )
        )

    def _rebuild_index(
        self, conn: psycopg.Connection[Any], meta: CollectionMeta, before: CollectionStats
    ) -> None:
        index = sql.Identifier(self._schema, hnsw_index_name(meta.table))
        for leftover in before.details.get("other_indexes", []):
            if str(leftover).startswith(hnsw_index_name(meta.table)):  # e.g. <name>_ccnew
                conn.execute(
                    sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                        sql.Identifier(self._schema, str(leftover))
                    )
                )
        if before.index_type == "flat":  # missing: a bulk load's rebuild never committed
            assert self._ext is not None
            create = hnsw_index_sql(
                self._schema,
                meta.table,
                self._ext,
                meta.dim,
                meta.metric,
                hnsw_m=meta.hnsw_m,
                hnsw_ef_construction=meta.hnsw_ef_construction,
                concurrently=True,
            )
            if create is not None:
                conn.execute(create)
            return
        ratio = before.tombstone_ratio or 0.0
        if not before.details.get("index_valid", True) or (
            before.deleted and ratio >= self.reindex_ratio
        ):
            conn.execute(sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(index))

    # ----------------------------------------------------------------------- search engine
    def _dense_sql(
        self, meta: CollectionMeta, where: str, include_vectors: bool, *, exact: bool
    ) -> tuple[str, int]:
        """A dense leg (leg 0) and how many times the query vector is bound in it."""
        op = meta.ops.distance
        emb = ", embedding" if include_vectors else ""
        head = (
            f"SELECT 0 AS leg, {_COLS}, embedding {op} %s AS distance, NULL::real AS rank{emb} "
            f"FROM {meta.qualified} WHERE {meta.guard}tenant = %s AND {where}"
        )
        if exact or meta.index == "exact":
            return f"{head} ORDER BY (embedding {op} %s) + 0 LIMIT %s", 2
        if meta.index == "hnsw_halfvec":
            cast = meta.ops.halfvec_cast
            vec = meta.ops.vector_type  # the parameter is a vector (binary), cast explicitly
            return f"{head} ORDER BY embedding{cast} {op} %s::{vec}{cast} LIMIT %s", 2
        return f"{head} ORDER BY distance LIMIT %s", 1

    @staticmethod
    def _keyword_sql(meta: CollectionMeta, where: str, include_vectors: bool) -> str:
        emb = ", embedding" if include_vectors else ""
        return (
            f"SELECT 1 AS leg, {_COLS}, NULL::float8 AS distance, ts_rank(tsv, {_TSQUERY}, 1) "
            f"AS rank{emb} FROM {meta.qualified} WHERE {meta.guard}tenant = %s "
            f"AND tsv @@ {_TSQUERY} AND {where} ORDER BY rank DESC, id LIMIT %s"
        )

    def _search(
        self,
        meta: CollectionMeta,
        mode: SearchMode,
        qv: npt.NDArray[np.float32] | None,
        text: str | None,
        k: int,
        where: str,
        fparams: list[Any],
        tenant: str,
        alpha: float,
        include_vectors: bool,
    ) -> list[Hit]:
        limit = k if mode != "hybrid" else candidate_pool(k)
        parts: list[str] = []
        params: list[Any] = []
        if mode != "keyword":
            dense_sql, nq = self._dense_sql(meta, where, include_vectors, exact=False)
            parts.append(dense_sql)
            params += [qv, tenant, *fparams, *([qv] * (nq - 1)), limit]
        if mode != "dense":
            parts.append(self._keyword_sql(meta, where, include_vectors))
            params += [text, tenant, text, *fparams, limit]
        query = parts[0] if len(parts) == 1 else f"({parts[0]}) UNION ALL ({parts[1]})"
        rows = self._fetch(meta, query, params, ef=limit if mode != "keyword" else 0)
        dense_rows = [r for r in rows if r[_LEG] == 0]
        keyword_rows = [r for r in rows if r[_LEG] == 1]
        if mode != "keyword" and len(dense_rows) < limit and meta.index != "exact":
            # the index scan stopped early (very selective filter or tenant): scan exactly
            exact_sql, _ = self._dense_sql(meta, where, include_vectors, exact=True)
            dense_rows = self._fetch(meta, exact_sql, [qv, tenant, *fparams, qv, limit], ef=0)
        dense = self._dense_hits(meta, dense_rows, include_vectors)
        keyword = [self._keyword_hit(meta, r, include_vectors) for r in keyword_rows]
        if mode == "dense":
            return dense
        if mode == "keyword":
            return keyword
        return fuse_hits(dense, keyword, alpha, k, method=DEFAULT_FUSION)

    def _fetch(
        self, meta: CollectionMeta, query: str, params: list[Any], *, ef: int
    ) -> list[tuple[Any, ...]]:
        def run(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
            cur = conn.cursor(binary=True)
            register_vector_dumper(cur)  # on the cursor: the connection is shared
            return cur.execute(query, params).fetchall()

        return self._read(f"searching {meta.name!r}", run, ef=ef)

    def _dense_hits(
        self, meta: CollectionMeta, rows: list[tuple[Any, ...]], include_vectors: bool
    ) -> list[Hit]:
        metric = meta.metric
        multi = meta.multi_tenant
        scored = []
        for r in rows:
            distance = float(r[_DIST])
            if distance != distance:  # NaN: cosine with a zero vector, undefined: ranked last
                distance = 2.0
            scored.append((distance, r[_ID], r))
        scored.sort(key=_by_distance_then_id)  # relaxed-order scans may be slightly unsorted
        validate = _HIT_VALIDATOR.validate_python  # a validated Hit, minus __init__ overhead
        decode = self._decode
        return [
            validate(
                {
                    "id": r[_ID],
                    "score": score_from_distance(metric, distance),
                    "distance": distance,
                    "metric": metric,
                    "text": r[_TEXT],
                    "metadata": decode(meta, r[_META]),
                    "tenant": r[_TENANT] if multi else None,
                    "vector": load_vector(r[_EMB]) if include_vectors else None,
                }
            )
            for distance, _, r in scored
        ]

    def _keyword_hit(self, meta: CollectionMeta, r: tuple[Any, ...], include_vectors: bool) -> Hit:
        rank = max(0.0, float(r[_RANK]))
        return Hit(
            id=r[_ID],
            score=score_from_bm25(rank),
            distance=None,
            metric=None,
            keyword_score=rank,
            text=r[_TEXT],
            metadata=self._decode(meta, r[_META]),
            tenant=r[_TENANT] if meta.multi_tenant else None,
            vector=load_vector(r[_EMB]) if include_vectors else None,
        )


# ------------------------------------------------------------------------------ helpers
class _Moved(Conflict):
    """The collection a call resolved changed under it (a write found its alias repointed, a
    reload found another table): resolve the name again and retry."""


def _staleness(meta: CollectionMeta, exc: StrataError) -> Literal["moved", "maybe"] | None:
    """Whether ``exc`` may come from stale cached metadata: ``"moved"`` (the alias moved:
    always retry), ``"maybe"`` (retry if the registry now says something else), ``None``."""
    cause = exc.__cause__
    if isinstance(exc, _Moved) or getattr(cause, "sqlstate", None) == ALIAS_MOVED:
        return "moved"
    if isinstance(exc, NotFound) and isinstance(cause, psycopg.errors.UndefinedTable):
        return "maybe"
    if meta.alias is not None and isinstance(exc, InvalidInput):
        return "maybe"  # the alias's new target may have another shape
    return None


def _latest(*times: Any) -> str | None:
    """The latest of some optional timestamps, ISO-formatted."""
    present = [t for t in times if t is not None]
    return max(present).isoformat() if present else None


def _reloptions(options: Sequence[str] | None) -> dict[str, Any]:
    """An index's ``reloptions`` (``['m=16', 'ef_construction=64']``) as a dict of numbers
    (pgvector's defaults for HNSW options not set explicitly)."""
    out: dict[str, Any] = {"m": 16, "ef_construction": 64}
    for item in options or ():
        key, _, value = item.partition("=")
        out[key] = int(value) if value.isdigit() else value
    return out


def _with_fields(meta: CollectionMeta, fields: dict[str, FieldType]) -> CollectionMeta:
    return replace(meta, fields=dict(fields), temporal=temporal_fields(fields))


def _query_vector(vector: Any, dim: int) -> npt.NDArray[np.float32]:
    """:func:`strataml.vectors.batch.query_vector`, skipping the conversions for a finite
    float32 array of the right shape (what embedding models return)."""
    if (
        type(vector) is np.ndarray
        and vector.dtype == np.float32
        and vector.shape == (dim,)
        and bool(np.isfinite(vector).all())
    ):
        return vector
    return query_vector(vector, dim)


def _by_distance_then_id(item: tuple[float, str, Any]) -> tuple[float, str]:
    return item[0], item[1]


def _records_of(batch: VectorBatch) -> list[dict[str, Any]]:
    return [
        {
            "id": rid,
            "vector": batch.vectors[i],
            "text": batch.texts[i],
            "metadata": batch.metadata[i],
            "tenant": batch.tenants[i],
        }
        for i, rid in enumerate(batch.ids)
    ]
