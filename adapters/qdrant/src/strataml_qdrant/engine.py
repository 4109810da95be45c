"""The Qdrant store's logic, written once for the synchronous and the asyncio store.

Every operation is a generator that *yields* :class:`Call` objects (a qdrant-client method and
its arguments) and receives each call's result; it never touches the network itself. The sync
store (:mod:`strataml_qdrant.store`) runs the calls on a ``QdrantClient``, the async store
(:mod:`strataml_qdrant.aio`) awaits them on an ``AsyncQdrantClient``: validation, filter
compiling, batching, scoring and fusion are the same code on both. A failed call is
translated (:func:`strataml_qdrant.errors.translate`, driver error chained) and thrown back
into the generator at the ``yield``.

Collection shape
----------------
A collection's dimension, metric, tenancy, BM25 constants, user metadata and strataml name
are kept in Qdrant's collection metadata under ``"strataml"``; each metadata field's
:class:`~strataml.filters.FieldType` under ``"strataml_field__<field>"`` (top-level keys, so two
writers registering different fields merge rather than overwrite). A new field is registered
(and, on a server, given a payload index) *after* the whole batch is validated and *before* any
point carrying it is written. The shape is cached per store for ``metadata_cache_s``; a filter
naming a field the cache does not know re-reads it first.

Hybrid search
-------------
Both legs (dense, and BM25 on the sparse vector) run in one ``query_batch_points`` request,
each retrieving :func:`~strataml.vectors.fusion.candidate_pool` candidates under the same
filter, and are fused client-side with :data:`~strataml.vectors.fusion.DEFAULT_FUSION`, like
every strataml backend. Qdrant's native fusion was measured against the contract and not
used: its weighted RRF scores a rank ``r`` (from 0) as ``1 / ((r + 1) / w + k - 1)`` -- a
weight rescales ranks, so even at ``alpha = 0.9`` a point found by both legs outranks the dense
winner, which the contract's ``alpha`` (the weight of the dense side) forbids; DBSF takes no
weights at all.

Aliases: reads (``search``, ``get``, ``count``, ``scan``) address the name given, so Qdrant
resolves an alias atomically on every request; writes address the collection the alias pointed
at when its shape was read (at most ``metadata_cache_s`` ago).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from strataml._json import dumps_record
from strataml.capabilities import Capabilities
from strataml.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    SchemaError,
    Unavailable,
    Unsupported,
)
from strataml.filters import FieldType, fields_used
from strataml.models import (
    CollectionInfo,
    CollectionStats,
    Hit,
    Metric,
    SearchMode,
    VectorRecord,
    check_name,
    is_name,
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
)
from strataml.vectors.columns import check_batch_size, check_fields, metadata_schema, rows_batch
from strataml.vectors.fusion import DEFAULT_FUSION, candidate_pool, fuse_hits
from strataml_qdrant.bm25 import TOKENIZER_VERSION, Bm25Params, query_terms
from strataml_qdrant.filters import (
    Compiled,
    compile_expr,
    prepare_filter,
    string_range_fields,
    with_tenant,
)
from strataml_qdrant.payload import (
    DENSE,
    ID_KEY,
    META_KEY,
    SPARSE,
    TENANT_KEY,
    build_points,
    decode_metadata,
    meta_key,
    point_id,
    record_from,
    split_by_size,
)

__all__ = ["SLEEP", "Call", "CollectionState", "EngineSettings", "Ops", "QdrantEngine"]

T = TypeVar("T")
#: An operation: yields calls, receives their results, returns ``T``.
Ops = Generator["Call", Any, T]

#: A pseudo-method: the driver sleeps ``kwargs["seconds"]`` (used while waiting for optimizers).
SLEEP: Final = "__sleep__"
INFO_KEY: Final = "strataml"
FIELD_PREFIX: Final = "strataml_field__"
FORMAT: Final = 1
MAX_DIM: Final = 65_536
_METRICS: Final = ("cosine", "l2", "dot")
_ID_CHUNK: Final = 1024
_SCROLL_PAGE: Final = 2048


@dataclass(frozen=True, slots=True)
class Call:
    """One qdrant-client call: ``getattr(client, method)(**kwargs)``; ``what`` names it in
    error messages."""

    method: str
    kwargs: dict[str, Any]
    what: str


@dataclass(frozen=True)
class EngineSettings:
    """What the engine needs from :class:`~strataml_qdrant.config.QdrantConfig`."""

    local: bool = True
    prefix: str = ""
    hnsw_m: int = 16
    hnsw_ef_construct: int = 100
    hnsw_payload_m: int = 16
    hnsw_ef: int | None = None
    exact: bool = False
    bm25: Bm25Params = field(default_factory=Bm25Params)
    max_batch_rows: int = 256
    max_batch_bytes: int = 32 * 1024 * 1024
    index_fields: bool = True
    metadata_cache_s: float = 1.0
    optimize_timeout_s: float = 300.0


@dataclass
class CollectionState:
    """A collection's shape as last read. ``name`` is the collection's own strataml name (an
    alias resolved), ``qname`` the Qdrant name of that collection, ``addressed`` the Qdrant name
    the caller used (the collection or an alias of it)."""

    name: str
    qname: str
    addressed: str
    dim: int
    metric: Metric
    multi_tenant: bool
    metadata: dict[str, Any]
    fields: dict[str, FieldType]
    bm25: Bm25Params
    fetched_at: float


def _m() -> Any:
    from qdrant_client.http import models

    return models


_DISTANCE: Final = {"cosine": "Cosine", "l2": "Euclid", "dot": "Dot"}
_INDEX_SCHEMA: Final = {
    FieldType.STRING: "keyword",
    FieldType.INT: "integer",
    FieldType.FLOAT: "float",
    FieldType.BOOL: "bool",
    FieldType.TIMESTAMP: "datetime",
    FieldType.DATE: "datetime",
}


def _distance(metric: str, score: float) -> float:
    """Qdrant's score -> the contract's raw distance (see :class:`~strataml.models.Hit`)."""
    if metric == "cosine":
        return min(2.0, max(0.0, 1.0 - score))
    if metric == "l2":
        return max(0.0, score)
    return -score


class QdrantEngine:
    """The shared logic of :class:`~strataml_qdrant.store.QdrantVectorStore` and
    :class:`~strataml_qdrant.aio.AsyncQdrantVectorStore` (see the module docstring)."""

    def __init__(self, settings: EngineSettings, capabilities: Capabilities) -> None:
        self.settings = settings
        self.capabilities = capabilities
        self._states: dict[str, CollectionState] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------- names
    def qname(self, name: str, kind: str = "collection") -> str:
        """The Qdrant name of a strataml collection or alias name (validated)."""
        check_name(kind, name)
        return self.settings.prefix + name

    def _strip(self, qname: str) -> str | None:
        prefix = self.settings.prefix
        if not qname.startswith(prefix):
            return None
        name = qname[len(prefix) :]
        return name if is_name(name) else None

    def evict(self, *names: str) -> None:
        """Forget the cached shape of ``names`` (or of everything when none is given)."""
        with self._lock:
            if not names:
                self._states.clear()
            for n in names:
                self._states.pop(n, None)

    # ---------------------------------------------------------------------------- state
    def _parse_state(self, name: str, addressed: str, info: Any) -> CollectionState:
        meta = info.config.metadata or {}
        raw = meta.get(INFO_KEY)
        if not isinstance(raw, Mapping) or raw.get("format") != FORMAT:
            raise SchemaError(
                f"Qdrant collection {addressed!r} was not created by strataml (no "
                f"{INFO_KEY!r} collection metadata of format {FORMAT}); use another name or "
                "collection_prefix"
            )
        fields: dict[str, FieldType] = {}
        for key, value in meta.items():
            if key.startswith(FIELD_PREFIX) and isinstance(value, str):
                try:
                    fields[key[len(FIELD_PREFIX) :]] = FieldType(value)
                except ValueError:
                    fields[key[len(FIELD_PREFIX) :]] = FieldType.ANY
        bm = raw.get("bm25") or {}
        own = str(raw.get("name") or name)
        return CollectionState(
            name=own,
            qname=self.settings.prefix + own,
            addressed=addressed,
            dim=int(raw["dim"]),
            metric=raw["metric"],
            multi_tenant=bool(raw["multi_tenant"]),
            metadata=dict(raw.get("metadata") or {}),
            fields=dict(sorted(fields.items())),
            bm25=Bm25Params(
                k1=float(bm.get("k1", 1.2)),
                b=float(bm.get("b", 0.75)),
                avg_len=float(bm.get("avg_len", 256.0)),
            ),
            fetched_at=time.monotonic(),
        )

    def state(self, name: str, *, fresh: bool = False) -> Ops[CollectionState]:
        """The collection's shape, from the cache unless ``fresh`` or older than
        ``metadata_cache_s``. :class:`NotFound` for an unknown collection or alias."""
        q = self.qname(name)
        if not fresh:
            cached = self._states.get(name)
            if cached is not None and (
                time.monotonic() - cached.fetched_at <= self.settings.metadata_cache_s
            ):
                return cached
        try:
            info = yield Call("get_collection", {"collection_name": q}, f"reading {name!r}")
        except NotFound as exc:
            self.evict(name)
            raise NotFound(f"collection {name!r} does not exist; create it first") from exc
        st = self._parse_state(name, q, info)
        with self._lock:
            self._states[name] = st
        return st

    def _filter(
        self, st: CollectionState, name: str, spec: Mapping[str, Any] | None, tenant: str | None
    ) -> Ops[tuple[CollectionState, Compiled]]:
        """Compile ``spec`` AND the tenant predicate for ``st`` (re-reading the shape when the
        filter names a field the cache does not know)."""
        expr = prepare_filter(spec, st.fields)
        if expr is not None and not fields_used(expr) <= set(st.fields):
            st = yield from self.state(name, fresh=True)
            expr = prepare_filter(spec, st.fields)
        strings: dict[str, list[str]] = {}
        for f in sorted(string_range_fields(expr, st.fields)):
            strings[f] = yield from self._distinct(st, f, tenant)
        return st, with_tenant(compile_expr(expr, st.fields, strings), tenant)

    def _distinct(self, st: CollectionState, f: str, tenant: str | None) -> Ops[list[str]]:
        """The distinct string values of field ``f`` (within ``tenant``)."""
        m = _m()
        present = m.Filter(must_not=[m.IsEmptyCondition(is_empty=m.PayloadField(key=meta_key(f)))])
        flt = with_tenant(present, tenant)
        values: set[str] = set()
        offset: Any = None
        while True:
            points, offset = yield Call(
                "scroll",
                {
                    "collection_name": st.addressed,
                    "scroll_filter": flt,
                    "limit": _SCROLL_PAGE,
                    "offset": offset,
                    "with_payload": m.PayloadSelectorInclude(include=[meta_key(f)]),
                    "with_vectors": False,
                },
                f"reading the values of {f!r} in {st.name!r}",
            )
            for p in points:
                v = ((p.payload or {}).get(META_KEY) or {}).get(f)
                if isinstance(v, str):
                    values.add(v)
            if offset is None:
                return sorted(values)

    # ---------------------------------------------------------------------- collections
    def create_collection(
        self,
        name: str,
        dim: int,
        metric: Metric,
        multi_tenant: bool,
        metadata: Mapping[str, Any] | None,
        exist_ok: bool,
    ) -> Ops[CollectionInfo]:
        """See :meth:`~strataml_qdrant.store.QdrantVectorStore.create_collection`."""
        q = self.qname(name)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidInput(f"dim must be a positive integer, got {dim!r}")
        if dim > MAX_DIM:
            raise InvalidInput(f"dim {dim} is larger than Qdrant's maximum of {MAX_DIM}")
        if metric not in _METRICS:
            raise InvalidInput(f"unknown metric {metric!r}; use 'cosine', 'l2' or 'dot'")
        if metric not in self.capabilities.metrics:
            raise Unsupported(f"Qdrant store cannot use metric {metric!r}")
        if not isinstance(multi_tenant, bool):
            raise InvalidInput(f"multi_tenant must be a bool, got {multi_tenant!r}")
        if multi_tenant and not self.capabilities.tenants:
            raise Unsupported("this Qdrant store does not declare tenants")
        user_meta = dict(metadata or {})
        dumps_record(user_meta, "collection metadata")
        aliases = yield Call("get_aliases", {}, "listing aliases")
        if any(a.alias_name == q for a in aliases.aliases):
            raise Conflict(f"{name!r} is an alias; a collection cannot take an alias's name")
        exists = yield Call("collection_exists", {"collection_name": q}, f"checking {name!r}")
        if not exists:
            m = _m()
            s = self.settings
            info = {
                "format": FORMAT,
                "name": name,
                "dim": dim,
                "metric": metric,
                "multi_tenant": multi_tenant,
                "metadata": user_meta,
                "bm25": {
                    "k1": s.bm25.k1,
                    "b": s.bm25.b,
                    "avg_len": s.bm25.avg_len,
                    "tokenizer": TOKENIZER_VERSION,
                },
            }
            hnsw = (
                m.HnswConfigDiff(m=0, payload_m=s.hnsw_payload_m, ef_construct=s.hnsw_ef_construct)
                if multi_tenant
                else m.HnswConfigDiff(m=s.hnsw_m, ef_construct=s.hnsw_ef_construct)
            )
            try:
                yield Call(
                    "create_collection",
                    {
                        "collection_name": q,
                        "vectors_config": {
                            DENSE: m.VectorParams(size=dim, distance=m.Distance(_DISTANCE[metric]))
                        },
                        "sparse_vectors_config": {
                            SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)
                        },
                        "hnsw_config": hnsw,
                        "metadata": {INFO_KEY: info},
                    },
                    f"creating collection {name!r}",
                )
            except Conflict:
                exists = True  # created concurrently: compare below
            else:
                if multi_tenant and not s.local:
                    yield Call(
                        "create_payload_index",
                        {
                            "collection_name": q,
                            "field_name": TENANT_KEY,
                            "field_schema": m.KeywordIndexParams(
                                type=m.KeywordIndexType.KEYWORD, is_tenant=True
                            ),
                            "wait": True,
                        },
                        f"indexing the tenants of {name!r}",
                    )
                self.evict(name)
                return CollectionInfo(
                    name=name,
                    dim=dim,
                    metric=metric,
                    count=0,
                    multi_tenant=multi_tenant,
                    fields={},
                    metadata=user_meta,
                )
        if not exist_ok:
            raise Conflict(f"collection {name!r} already exists (pass exist_ok=True to reuse it)")
        st = yield from self.state(name, fresh=True)
        mismatch = [
            f"{what} {have!r} (asked for {want!r})"
            for what, have, want in (
                ("dim", st.dim, dim),
                ("metric", st.metric, metric),
                ("multi_tenant", st.multi_tenant, multi_tenant),
            )
            if have != want
        ]
        if mismatch:
            raise Conflict(f"collection {name!r} exists with {', '.join(mismatch)}")
        return (yield from self.describe(name))

    def drop_collection(self, name: str) -> Ops[None]:
        """Delete a collection; :class:`Conflict` while an alias points at it (or if ``name``
        is an alias); no error if it does not exist."""
        q = self.qname(name)
        aliases = yield Call("get_aliases", {}, "listing aliases")
        pointing = sorted(
            self._strip(a.alias_name) or a.alias_name
            for a in aliases.aliases
            if a.collection_name == q
        )
        if pointing:
            raise Conflict(
                f"collection {name!r} is the target of alias(es) {pointing}: repoint or drop "
                "them first, so the live index never disappears under its readers"
            )
        if any(a.alias_name == q for a in aliases.aliases):
            raise Conflict(f"{name!r} is an alias, not a collection: use drop_alias")
        self.evict()
        yield Call("delete_collection", {"collection_name": q}, f"dropping {name!r}")

    def collections(self) -> Ops[list[str]]:
        """Every collection under the prefix (aliases excluded), sorted."""
        resp = yield Call("get_collections", {}, "listing collections")
        names = (self._strip(c.name) for c in resp.collections)
        return sorted(n for n in names if n is not None)

    def describe(self, name: str) -> Ops[CollectionInfo]:
        """The collection's shape and exact count (an alias describes its target)."""
        st = yield from self.state(name, fresh=True)
        res = yield Call(
            "count", {"collection_name": st.addressed, "exact": True}, f"counting {name!r}"
        )
        return CollectionInfo(
            name=st.name,
            dim=st.dim,
            metric=st.metric,
            count=int(res.count),
            multi_tenant=st.multi_tenant,
            fields=dict(st.fields),
            metadata=st.metadata,
        )

    # ---------------------------------------------------------------------------- writes
    def upsert(self, name: str, records: Iterable[Any]) -> Ops[int]:
        """Validate the whole batch, register new fields, then write it in size-bounded
        requests (see :mod:`strataml_qdrant.payload`)."""
        st = yield from self.state(name)
        batch = prepare_batch(
            records,
            dim=st.dim,
            multi_tenant=st.multi_tenant,
            known_fields=st.fields,
            max_rows=self.capabilities.max_batch_rows,
        )
        if not batch:
            return 0
        new, widened = dict(batch.new_fields), dict(batch.widened)
        if new or widened:
            st = yield from self.state(name, fresh=True)
            new, widened = self._schema_changes(batch, st.fields)
        points, sizes = build_points(
            batch, metric=st.metric, multi_tenant=st.multi_tenant, bm25=st.bm25
        )
        requests = split_by_size(
            points,
            sizes,
            max_rows=self.settings.max_batch_rows,
            max_bytes=self.settings.max_batch_bytes,
        )
        if new or widened:
            yield from self._register_fields(st, new, widened)
        for chunk in requests:
            yield Call(
                "upsert",
                {"collection_name": st.qname, "points": chunk, "wait": True},
                f"upserting into {name!r}",
            )
        return len(batch)

    @staticmethod
    def _schema_changes(
        batch: VectorBatch, known: Mapping[str, FieldType]
    ) -> tuple[dict[str, FieldType], dict[str, FieldType]]:
        new: dict[str, FieldType] = {}
        widened: dict[str, FieldType] = {}
        for fname, ftype in batch.field_types.items():
            old = known.get(fname)
            if old is None:
                new[fname] = ftype
                continue
            merged = merge_field_type(old, ftype)
            if merged is None:
                raise InvalidInput(
                    f"metadata field {fname!r} holds {old} values, got a {ftype}; a field "
                    "keeps the type it was first written with"
                )
            if merged != old:
                widened[fname] = merged
        return new, widened

    def _register_fields(
        self, st: CollectionState, new: Mapping[str, FieldType], widened: Mapping[str, FieldType]
    ) -> Ops[None]:
        changes = {**new, **widened}
        yield Call(
            "update_collection",
            {
                "collection_name": st.qname,
                "metadata": {FIELD_PREFIX + f: t.value for f, t in sorted(changes.items())},
            },
            f"registering metadata fields of {st.name!r}",
        )
        st.fields = dict(sorted({**st.fields, **changes}.items()))
        if self.settings.local or not self.settings.index_fields:
            return
        for fname, ftype in sorted(changes.items()):
            schema = _INDEX_SCHEMA.get(ftype)
            if schema is None:
                continue
            if fname in widened:
                yield Call(
                    "delete_payload_index",
                    {"collection_name": st.qname, "field_name": meta_key(fname), "wait": True},
                    f"re-indexing field {fname!r} of {st.name!r}",
                )
            yield Call(
                "create_payload_index",
                {
                    "collection_name": st.qname,
                    "field_name": meta_key(fname),
                    "field_schema": _m().PayloadSchemaType(schema),
                    "wait": True,
                },
                f"indexing field {fname!r} of {st.name!r}",
            )

    def delete(self, name: str, ids: Sequence[str], tenant: str | None) -> Ops[None]:
        """Delete by id within ``tenant`` (missing ids ignored)."""
        st = yield from self.state(name)
        tenant = check_tenant(st.multi_tenant, tenant, name)
        keys = normalize_ids(ids)
        m = _m()
        for start in range(0, len(keys), _ID_CHUNK):
            pids = [point_id(k, tenant) for k in keys[start : start + _ID_CHUNK]]
            selector = (
                m.FilterSelector(filter=with_tenant(m.HasIdCondition(has_id=pids), tenant))
                if tenant is not None
                else m.PointIdsList(points=pids)
            )
            yield Call(
                "delete",
                {"collection_name": st.qname, "points_selector": selector, "wait": True},
                f"deleting from {name!r}",
            )

    # ----------------------------------------------------------------------------- reads
    def get(
        self, name: str, ids: Sequence[str], tenant: str | None, include_vectors: bool
    ) -> Ops[list[VectorRecord]]:
        """The records among ``ids`` (within ``tenant``), in the order of ``ids``."""
        st = yield from self.state(name)
        tenant = check_tenant(st.multi_tenant, tenant, name)
        keys = normalize_ids(ids)
        found: dict[str, VectorRecord] = {}
        for start in range(0, len(keys), _ID_CHUNK):
            chunk = keys[start : start + _ID_CHUNK]
            points = yield Call(
                "retrieve",
                {
                    "collection_name": st.addressed,
                    "ids": [point_id(k, tenant) for k in chunk],
                    "with_payload": True,
                    "with_vectors": [DENSE] if include_vectors else False,
                },
                f"reading from {name!r}",
            )
            for p in points:
                payload = p.payload or {}
                if payload.get(TENANT_KEY) != tenant:  # the id embeds the tenant; belt and braces
                    continue
                rec = record_from(p, fields=st.fields, include_vectors=include_vectors)
                found[rec.id] = rec
        return [found[k] for k in keys if k in found]

    def count(self, name: str, spec: Mapping[str, Any] | None, tenant: str | None) -> Ops[int]:
        """Records (within ``tenant``) matching ``spec``."""
        st = yield from self.state(name)
        tenant = check_tenant(st.multi_tenant, tenant, name)
        st, flt = yield from self._filter(st, name, spec, tenant)
        if flt is False:
            return 0
        res = yield Call(
            "count",
            {
                "collection_name": st.addressed,
                "count_filter": None if flt is True else flt,
                "exact": True,
            },
            f"counting {name!r}",
        )
        return int(res.count)

    def scan_start(
        self, name: str, tenant: str | None, batch_size: int
    ) -> Ops[tuple[CollectionState, Compiled]]:
        """Validate a scan: the shape and the tenant filter of its pages."""
        check_batch_size(batch_size)
        st = yield from self.state(name)
        tenant = check_tenant(st.multi_tenant, tenant, name)
        return st, with_tenant(True, tenant)

    def scan_page(
        self,
        st: CollectionState,
        flt: Compiled,
        offset: Any,
        batch_size: int,
        include_vectors: bool,
    ) -> Ops[tuple[list[VectorRecord], Any]]:
        """One page of a scan (``scroll`` in point-id order) and the next offset."""
        points, nxt = yield from self._scan_scroll(
            st,
            flt,
            offset,
            batch_size,
            with_payload=True,
            with_vectors=[DENSE] if include_vectors else False,
        )
        recs = [record_from(p, fields=st.fields, include_vectors=include_vectors) for p in points]
        return recs, nxt

    def scan_metadata_start(
        self, name: str, fields: Any, tenant: str | None, batch_size: Any
    ) -> Ops[tuple[CollectionState, Compiled, pa.Schema]]:
        """Validate a column-wise scan: the shape, the tenant filter and the batch schema."""
        names = check_fields(fields)
        check_batch_size(batch_size)
        st = yield from self.state(name)
        tenant = check_tenant(st.multi_tenant, tenant, name)
        return st, with_tenant(True, tenant), metadata_schema(names, st.fields)

    def scan_metadata_page(
        self,
        st: CollectionState,
        flt: Compiled,
        offset: Any,
        batch_size: int,
        schema: pa.Schema,
    ) -> Ops[tuple[pa.RecordBatch | None, Any]]:
        """One page of a column-wise scan (``scroll`` reading only the id and metadata of the
        payload, no vectors or text) and the next offset."""
        points, nxt = yield from self._scan_scroll(
            st, flt, offset, batch_size, with_payload=[ID_KEY, META_KEY], with_vectors=False
        )
        if not points:
            return None, nxt
        payloads = [p.payload or {} for p in points]
        ids = [str(pl.get(ID_KEY, p.id)) for pl, p in zip(payloads, points, strict=True)]
        metas = [decode_metadata(pl.get(META_KEY), st.fields) for pl in payloads]
        return rows_batch(ids, metas, schema), nxt

    def _scan_scroll(
        self,
        st: CollectionState,
        flt: Compiled,
        offset: Any,
        limit: int,
        *,
        with_payload: bool | list[str],
        with_vectors: bool | list[str],
    ) -> Ops[tuple[list[Any], Any]]:
        """One ``scroll`` page of a scan of ``st`` under ``flt`` (``True``: no filter): the
        points read with ``with_payload`` and ``with_vectors``, and the next offset (``None``
        after the last page). A failed call is thrown back here as a strataml error (chained
        to the driver's) by the store that runs the operation."""
        points, nxt = yield Call(
            "scroll",
            {
                "collection_name": st.addressed,
                "scroll_filter": None if flt is True else flt,
                "limit": limit,
                "offset": offset,
                "with_payload": with_payload,
                "with_vectors": with_vectors,
            },
            f"scanning {st.name!r}",
        )
        return points, nxt

    # ---------------------------------------------------------------------------- search
    def search(
        self,
        name: str,
        vector: Any,
        *,
        k: int,
        text: str | None,
        mode: SearchMode | None,
        spec: Mapping[str, Any] | None,
        tenant: str | None,
        alpha: float,
        include_vectors: bool,
    ) -> Ops[list[Hit]]:
        """Dense, keyword or hybrid search (see the store's docstring)."""
        st = yield from self.state(name)
        tenant = check_tenant(st.multi_tenant, tenant, name)
        resolved = resolve_mode(vector, text, mode, self.capabilities)
        k = check_k(k)
        alpha = check_alpha(alpha)
        qv = query_vector(vector, st.dim) if resolved != "keyword" else None
        st, flt = yield from self._filter(st, name, spec, tenant)
        if flt is False:
            return []
        qfilter = None if flt is True else flt
        terms = query_terms(text) if resolved != "dense" and text is not None else ([], [])
        if resolved == "dense":
            assert qv is not None
            return (yield from self._dense(st, qv, k, qfilter, include_vectors))
        if resolved == "keyword":
            return (yield from self._keyword(st, terms, k, qfilter, include_vectors))
        assert qv is not None
        pool = candidate_pool(k)
        if not terms[0]:
            dense = yield from self._dense(st, qv, pool, qfilter, include_vectors)
            return fuse_hits(dense, [], alpha, k, method=DEFAULT_FUSION)
        m = _m()
        dense_req = m.QueryRequest(
            query=qv.tolist(),
            using=DENSE,
            filter=qfilter,
            params=self._params(),
            limit=pool,
            with_payload=True,
            with_vector=[DENSE] if include_vectors else False,
        )
        sparse_req = m.QueryRequest(
            query=m.SparseVector(indices=terms[0], values=terms[1]),
            using=SPARSE,
            filter=qfilter,
            limit=pool,
            with_payload=True,
            with_vector=[DENSE] if include_vectors else False,
        )
        responses = yield Call(
            "query_batch_points",
            {"collection_name": st.addressed, "requests": [dense_req, sparse_req]},
            f"searching {name!r}",
        )
        dense_hits = self._dense_hits(st, responses[0].points, include_vectors)
        keyword_hits = self._keyword_hits(st, responses[1].points, include_vectors)
        return fuse_hits(dense_hits, keyword_hits, alpha, k, method=DEFAULT_FUSION)

    def _params(self) -> Any:
        s = self.settings
        if s.hnsw_ef is None and not s.exact:
            return None
        return _m().SearchParams(hnsw_ef=s.hnsw_ef, exact=s.exact or None)

    def _dense(
        self,
        st: CollectionState,
        qv: npt.NDArray[np.float32],
        limit: int,
        qfilter: Any,
        include_vectors: bool,
    ) -> Ops[list[Hit]]:
        res = yield Call(
            "query_points",
            {
                "collection_name": st.addressed,
                "query": qv.tolist(),
                "using": DENSE,
                "query_filter": qfilter,
                "search_params": self._params(),
                "limit": limit,
                "with_payload": True,
                "with_vectors": [DENSE] if include_vectors else False,
            },
            f"searching {st.name!r}",
        )
        return self._dense_hits(st, res.points, include_vectors)

    def _keyword(
        self,
        st: CollectionState,
        terms: tuple[list[int], list[float]],
        limit: int,
        qfilter: Any,
        include_vectors: bool,
    ) -> Ops[list[Hit]]:
        if not terms[0]:  # only stop words / punctuation: nothing can match
            return []
        m = _m()
        res = yield Call(
            "query_points",
            {
                "collection_name": st.addressed,
                "query": m.SparseVector(indices=terms[0], values=terms[1]),
                "using": SPARSE,
                "query_filter": qfilter,
                "limit": limit,
                "with_payload": True,
                "with_vectors": [DENSE] if include_vectors else False,
            },
            f"searching {st.name!r}",
        )
        return self._keyword_hits(st, res.points, include_vectors)

    def _hit(self, st: CollectionState, p: Any, include_vectors: bool, **scores: Any) -> Hit:
        """A hit built without re-validation (scores are computed here, in ``[0, 1]``)."""
        rec = record_from(p, fields=st.fields, include_vectors=include_vectors)
        return Hit.model_construct(
            id=rec.id,
            text=rec.text,
            metadata=rec.metadata,
            tenant=rec.tenant,
            vector=rec.vector,
            **scores,
        )

    def _dense_hits(self, st: CollectionState, points: Any, include_vectors: bool) -> list[Hit]:
        hits = []
        for p in points:
            d = _distance(st.metric, float(p.score))
            hits.append(
                self._hit(
                    st,
                    p,
                    include_vectors,
                    score=score_from_distance(st.metric, d),
                    distance=d,
                    metric=st.metric,
                )
            )
        hits.sort(key=lambda h: -h.score)
        return hits

    def _keyword_hits(self, st: CollectionState, points: Any, include_vectors: bool) -> list[Hit]:
        hits = []
        for p in points:
            bm25 = max(0.0, float(p.score))
            if bm25 <= 0.0:
                continue
            hits.append(
                self._hit(st, p, include_vectors, score=score_from_bm25(bm25), keyword_score=bm25)
            )
        hits.sort(key=lambda h: -h.score)
        return hits

    # --------------------------------------------------------------------------- aliases
    def set_alias(self, alias: str, collection: str) -> Ops[None]:
        """Create ``alias`` or repoint it atomically (one ``update_collection_aliases`` call
        deleting and creating it)."""
        qa = self.qname(alias, "alias")
        qc = self.qname(collection)
        existing = yield Call("get_aliases", {}, "listing aliases")
        amap = {a.alias_name: a.collection_name for a in existing.aliases}
        resp = yield Call("get_collections", {}, "listing collections")
        names = {c.name for c in resp.collections}
        if qa in names:
            raise Conflict(f"{alias!r} is a collection; an alias cannot take a collection's name")
        if qc not in names:
            what = "an alias" if qc in amap else "not an existing collection"
            raise NotFound(f"cannot point alias {alias!r} at {collection!r}: it is {what}")
        m = _m()
        ops: list[Any] = []
        if qa in amap:
            ops.append(m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=qa)))
        ops.append(
            m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=qc, alias_name=qa))
        )
        yield Call(
            "update_collection_aliases",
            {"change_aliases_operations": ops},
            f"pointing alias {alias!r} at {collection!r}",
        )
        self.evict(alias)

    def drop_alias(self, alias: str) -> Ops[None]:
        """Remove ``alias`` if it exists."""
        qa = self.qname(alias, "alias")
        existing = yield Call("get_aliases", {}, "listing aliases")
        if any(a.alias_name == qa for a in existing.aliases):
            m = _m()
            yield Call(
                "update_collection_aliases",
                {
                    "change_aliases_operations": [
                        m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=qa))
                    ]
                },
                f"dropping alias {alias!r}",
            )
        self.evict(alias)

    def aliases(self) -> Ops[dict[str, str]]:
        """Alias -> collection, under the prefix."""
        existing = yield Call("get_aliases", {}, "listing aliases")
        out: dict[str, str] = {}
        for a in existing.aliases:
            alias, target = self._strip(a.alias_name), self._strip(a.collection_name)
            if alias is not None and target is not None:
                out[alias] = target
        return dict(sorted(out.items()))

    # ---------------------------------------------------------------------------- health
    def stats(self, name: str) -> Ops[CollectionStats]:
        """Exact count, index kind and parameters, optimizer state (``deleted`` is ``None``:
        Qdrant does not report deleted points)."""
        st = yield from self.state(name, fresh=True)
        info = yield Call("get_collection", {"collection_name": st.addressed}, f"reading {name!r}")
        res = yield Call(
            "count", {"collection_name": st.addressed, "exact": True}, f"counting {name!r}"
        )
        details: dict[str, Any] = {
            "status": str(getattr(info.status, "value", info.status)),
            "optimizer_status": _optimizer_status(info.optimizer_status),
            "segments_count": info.segments_count,
            "points_count": info.points_count,
            "indexed_vectors_count": info.indexed_vectors_count,
            "local_mode": self.settings.local,
        }
        if self.settings.local:
            return CollectionStats.of(
                st.name, int(res.count), None, index_type="flat", indexed=0, details=details
            )
        hnsw = info.config.hnsw_config
        params: dict[str, Any] = {
            "m": hnsw.m,
            "ef_construct": hnsw.ef_construct,
            "full_scan_threshold_kb": hnsw.full_scan_threshold,
        }
        if hnsw.payload_m is not None:
            params["payload_m"] = hnsw.payload_m
        if self.settings.hnsw_ef is not None:
            params["ef"] = self.settings.hnsw_ef
        return CollectionStats.of(
            st.name,
            int(res.count),
            None,
            index_type="hnsw",
            index_params=params,
            indexed=info.indexed_vectors_count,
            details=details,
        )

    def optimize(self, name: str) -> Ops[CollectionStats]:
        """On a server: vacuum deleted points and finish indexing now -- lower the vacuum
        thresholds (``deleted_threshold = 0``, ``vacuum_min_vector_number = 100``), which makes
        the optimizers run, wait (searches keep being served) until the collection is green,
        then restore the thresholds. Local mode has no index and frees deleted points at
        once: nothing to do. Returns :meth:`stats`."""
        st = yield from self.state(name, fresh=True)
        if not self.settings.local:
            m = _m()
            info = yield Call("get_collection", {"collection_name": st.qname}, f"reading {name!r}")
            cfg = info.config.optimizer_config
            try:
                yield Call(
                    "update_collection",
                    {
                        "collection_name": st.qname,
                        "optimizers_config": m.OptimizersConfigDiff(
                            deleted_threshold=0.0, vacuum_min_vector_number=100
                        ),
                    },
                    f"starting the optimizers of {name!r}",
                )
                yield from self._wait_green(st)
            finally:
                yield Call(
                    "update_collection",
                    {
                        "collection_name": st.qname,
                        "optimizers_config": m.OptimizersConfigDiff(
                            deleted_threshold=cfg.deleted_threshold,
                            vacuum_min_vector_number=cfg.vacuum_min_vector_number,
                        ),
                    },
                    f"restoring the optimizer settings of {name!r}",
                )
        return (yield from self.stats(name))

    def _wait_green(self, st: CollectionState) -> Ops[None]:
        deadline = time.monotonic() + self.settings.optimize_timeout_s
        delay = 0.05
        while True:
            info = yield Call("get_collection", {"collection_name": st.qname}, "optimizing")
            status = str(getattr(info.status, "value", info.status))
            if status == "green" and _optimizer_status(info.optimizer_status) == "ok":
                return
            if status == "red":
                raise Unavailable(
                    f"optimizing {st.name!r}: the collection is red "
                    f"({_optimizer_status(info.optimizer_status)})"
                )
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"optimizing {st.name!r}: still {status} after "
                    f"{self.settings.optimize_timeout_s:g} s (raise optimize_timeout_s); the "
                    "optimizers keep running on the server"
                )
            yield Call(SLEEP, {"seconds": delay}, "waiting for the optimizers")
            delay = min(1.0, delay * 2)


def _optimizer_status(value: Any) -> str:
    raw = getattr(value, "value", value)
    if isinstance(raw, str):
        return raw
    error = getattr(raw, "error", None) or getattr(value, "error", None)
    return f"error: {error}" if error else str(raw)
