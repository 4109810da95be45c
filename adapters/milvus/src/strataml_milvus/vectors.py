"""The :class:`~strataml.protocols.VectorStore` on Milvus (a server, or Milvus Lite).

* **Layout**: one Milvus collection per strataml collection (:mod:`strataml_milvus.names` maps
  the names), records as in :mod:`strataml_milvus.codec`: base64 primary key of tenant + id,
  text with a BM25 function into a sparse vector, the dense vector, metadata in a JSON field.
  Collection info in the collection description, field types and (on Milvus Lite) aliases in
  a registry collection (:mod:`strataml_milvus.catalog`).
* **Writes**: ``upsert`` validates the whole batch (:func:`strataml.vectors.batch.prepare_batch`
  plus Milvus's limits, :mod:`strataml_milvus.batching`), registers new field types, then sends
  Milvus upserts of at most ``max_request_rows`` rows / ``max_request_bytes`` bytes. Milvus's
  upsert is a delete plus an insert; at consistency level ``Strong`` every later read sees it.
  A batch split over several requests is not atomic (a failure midway leaves the earlier
  requests written); upserts are idempotent, so retrying the call is safe.
* **Filters** compile to Milvus boolean expressions (:mod:`strataml_milvus.filters`); the
  tenant predicate ``tkey == "<base64>"`` is part of every expression (and the partition key
  on servers). Filters apply before ranking (Milvus pre-filters), so ``k`` hits come back
  whenever ``k`` records match.
* **Scores** follow :class:`~strataml.models.Hit`: Milvus's COSINE similarity ``s`` becomes the
  distance ``1 - s``, its L2 (squared) distance its square root, its IP ``p`` the distance
  ``-p``. Keyword search is Milvus's BM25 (``keyword_score``; ``score = bm25 / (1 + bm25)``).
  Hybrid runs both legs concurrently and fuses them with
  :func:`strataml.vectors.fusion.fuse_hits` (relative-score fusion): alpha 1.0 / 0.0 give
  exactly the dense / keyword ranking, which Milvus's own ``WeightedRanker`` does not (it
  keeps the zero-weight leg's candidates and normalises scores with arctan).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np
import pyarrow as pa

from strataml.capabilities import Capabilities
from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from strataml.filters import FieldType, parse_filter
from strataml.models import (
    CollectionInfo,
    CollectionStats,
    Hit,
    Metric,
    SearchMode,
    VectorRecord,
    check_name,
)
from strataml.protocols.vectors import Records, VectorLike
from strataml.vectors.batch import (
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
from strataml_milvus import VECTORS_CAPS
from strataml_milvus.batching import build_rows, split_requests
from strataml_milvus.catalog import (
    MILVUS_METRICS,
    CollectionMeta,
    Registry,
    build_index_params,
    build_schema,
    check_dim,
    describe_info,
)
from strataml_milvus.codec import hit_from_result, record_from_row, records_from_rows
from strataml_milvus.config import MilvusConfig
from strataml_milvus.directory import Directory
from strataml_milvus.errors import is_unimplemented, milvus_call, translate
from strataml_milvus.filters import Compiled, compile_filter, conjoin
from strataml_milvus.names import (
    encode_key,
    encode_tenant,
    from_milvus_name,
)

__all__ = ["MilvusVectorStore"]

T = TypeVar("T")
_METRICS: Final = ("cosine", "l2", "dot")
#: Milvus's largest topk / query window.
MAX_TOPK: Final = 16_384
_ID_CHUNK: Final = 1_000
_OUTPUT: Final = ["pk", "tkey", "text", "meta", "has"]
_SCAN_OUTPUT: Final = ["pk", "text", "meta", "has"]
_COMPACTION_POLL_S: Final = 0.2


def _text_ok(text: str, what: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what}: not valid Unicode text ({exc.reason})") from exc
    return text


class MilvusVectorStore:
    """Collections of embeddings in Milvus (see the module docstring for the design and
    :class:`~strataml.protocols.VectorStore` for the semantics).

    Build it from a :class:`~strataml_milvus.config.MilvusConfig`. A ``uri`` naming a database
    file starts Milvus Lite in a subprocess owned by this store (stopped by :meth:`close`).
    Errors are strataml's (pymilvus/gRPC errors translated and chained); a closed store raises
    :class:`~strataml.errors.Unavailable`.
    """

    #: Calls do network I/O: async wrappers run them in a worker thread.
    blocking_io = True

    def __init__(self, config: MilvusConfig) -> None:
        from pymilvus import MilvusClient  # type: ignore[import-untyped, unused-ignore]

        self.config = config
        self._server: Any = None
        uri = config.uri
        if config.is_local:
            from strataml_milvus import devserver

            path = Path(config.uri).expanduser()
            self._server = devserver.start(path.parent, db_file=path.name)
            uri = self._server.url
        token = config.token.get_secret_value() if config.token is not None else ""
        self._timeout = config.timeout_s
        try:
            with milvus_call("connecting to Milvus"):
                # a connection of its own: pymilvus shares (and closes) connections by URI
                self._client: Any = MilvusClient(
                    uri=uri,
                    token=token,
                    db_name=config.db_name,
                    timeout=config.timeout_s,
                    alias=f"strataml-{uuid.uuid4().hex}",
                )
            self.lite, version = self._probe()
        except BaseException:
            self._stop_server()
            raise
        self.server_version = version
        self.uri = uri  # the endpoint (an owned Milvus Lite's URL for a database-file uri)
        self.bind_values = config.filter_values == "bind" or (
            config.filter_values == "auto" and not self.lite and version >= (2, 5)
        )
        self.partition_key = (
            (not self.lite)
            if config.tenant_partition_key == "auto"
            else bool(config.tenant_partition_key)
        )
        self._prefix = config.collection_prefix
        self._registry = Registry(self._client, self._prefix, timeout=self._timeout)
        self._directory = Directory(
            self._client,
            self._registry,
            prefix=self._prefix,
            lite=self.lite,
            timeout=self._timeout,
            cache_s=config.metadata_cache_s,
        )
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def _probe(self) -> tuple[bool, tuple[int, ...]]:
        """Milvus Lite (which does not implement GetVersion) or a server, and its version."""
        import re

        try:
            with _quiet_pymilvus():  # Milvus Lite's UNIMPLEMENTED is an answer, not an error
                version = str(self._client.get_server_version(timeout=self._timeout))
        except Exception as exc:
            if is_unimplemented(exc):
                return True, (2, 5)
            raise translate(exc, "connecting to Milvus") from exc
        parts = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
        return False, parts or (0,)

    # ------------------------------------------------------------------------ housekeeping
    @property
    def capabilities(self) -> Capabilities:
        return VECTORS_CAPS

    def close(self) -> None:
        """Close the client (and stop an owned Milvus Lite). Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._directory.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing must not mask anything
            pass
        self._stop_server()

    def _stop_server(self) -> None:
        if self._server is not None:
            from strataml.dev.servers import stop

            stop(self._server)
            self._server = None

    def __repr__(self) -> str:
        where = "Milvus Lite" if getattr(self, "lite", False) else "Milvus"
        return f"<MilvusVectorStore {where} prefix={self.config.collection_prefix!r}>"

    def __enter__(self) -> MilvusVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("this vector store is closed; open a new one")

    def _mname(self, name: str) -> str:
        return self._directory.milvus_name(name)

    # ------------------------------------------------------------------- collection lookup
    def _meta(self, name: Any) -> CollectionMeta:
        self._check_open()
        return self._directory.meta(name)

    def _fresh(self, name: str, fn: Callable[[CollectionMeta], T]) -> T:
        """Run ``fn`` on the cached collection; if the collection is gone (dropped or
        re-created elsewhere, or an alias repointed), reload it and retry once."""
        meta = self._meta(name)
        try:
            return fn(meta)
        except NotFound:
            self._directory.forget(collection=meta.name, alias=name)
            return fn(self._directory.load(name))

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
        """Create a collection (see :class:`~strataml.protocols.VectorStore`).

        Raises :class:`Conflict` if it exists (unless ``exist_ok`` and dimension, metric and
        tenancy match) or an alias has the name, :class:`InvalidInput` for a bad name,
        dimension (Milvus allows up to 32768) or metric, or metadata that is not JSON.
        """
        self._check_open()
        check_name("collection", name)
        dim = check_dim(dim)
        if metric not in _METRICS:
            raise InvalidInput(f"unknown metric {metric!r}; use 'cosine', 'l2' or 'dot'")
        if not isinstance(multi_tenant, bool):
            raise InvalidInput(f"multi_tenant must be a bool, got {multi_tenant!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InvalidInput(f"metadata must be a mapping, got {type(metadata).__name__}")
        mname = self._mname(name)
        description = describe_info(dim, metric, multi_tenant, metadata or {}, self.partition_key)
        existing = self._directory.existing(name)
        if existing is None:
            with milvus_call(f"creating collection {name!r}"):
                created = self._create(name, mname, dim, metric, description)
            if created:
                return self.describe(name)
            existing = self._directory.existing(name)
            if existing is None:
                raise Conflict(f"collection {name!r} was created and dropped concurrently; retry")
        if not exist_ok:
            raise Conflict(f"collection {name!r} already exists (pass exist_ok=True to reuse it)")
        if (existing.dim, existing.metric, existing.multi_tenant) != (dim, metric, multi_tenant):
            raise Conflict(
                f"collection {name!r} exists with dim={existing.dim}, metric={existing.metric!r}, "
                f"multi_tenant={existing.multi_tenant}; asked for dim={dim}, metric={metric!r}, "
                f"multi_tenant={multi_tenant}"
            )
        return self.describe(name)

    def _create(self, name: str, mname: str, dim: int, metric: str, description: str) -> bool:
        """Create the Milvus collection; ``False`` if it appeared meanwhile."""
        cfg = self.config
        schema = build_schema(
            self._client,
            dim=dim,
            description=description,
            partition_key=self.partition_key,
            text_max_bytes=cfg.text_max_bytes,
            analyzer=cfg.analyzer,
        )
        kwargs: dict[str, Any] = {}
        if self.partition_key:
            kwargs["num_partitions"] = cfg.num_partitions
        try:
            self._client.create_collection(
                mname,
                schema=schema,
                consistency_level=cfg.consistency_level,
                timeout=self._timeout,
                **kwargs,
            )
        except Exception as exc:
            if "already exist" in str(exc).lower():
                return False
            raise
        try:
            index = build_index_params(
                self._client,
                metric=metric,
                index_type=cfg.index_type,
                index_params=cfg.index_params,
                bm25_k1=cfg.bm25_k1,
                bm25_b=cfg.bm25_b,
            )
            # sync=False: no half-second polling of the build; loading waits for the index
            self._client.create_index(mname, index, timeout=self._timeout, sync=False)
            self._client.load_collection(mname, timeout=self._timeout)
        except BaseException:
            self._client.drop_collection(mname, timeout=self._timeout)
            raise
        return True

    def drop_collection(self, name: str) -> None:
        """Delete a collection (no error if it does not exist).

        Raises :class:`Conflict` if an alias points at it (repoint or drop the alias first) or
        if ``name`` is an alias.
        """
        self._check_open()
        check_name("collection", name)
        if self._directory.alias_target(name) is not None:
            raise Conflict(f"{name!r} is an alias; use drop_alias")
        pointing = sorted(a for a, t in self.aliases().items() if t == name)
        if pointing:
            raise Conflict(
                f"collection {name!r} is the target of alias(es) {pointing}; repoint or drop "
                "them first"
            )
        with milvus_call(f"dropping collection {name!r}"):
            self._client.drop_collection(self._mname(name), timeout=self._timeout)
        self._registry.drop_fields(name)
        self._directory.forget(collection=name)

    def collections(self) -> list[str]:
        """Names of the collections of this store's prefix (aliases not included)."""
        self._check_open()
        with milvus_call("listing collections"):
            names = self._client.list_collections(timeout=self._timeout)
        out = (from_milvus_name(self._prefix, str(n)) for n in names)
        return sorted(n for n in out if n is not None)

    def describe(self, name: str) -> CollectionInfo:
        """Shape, live count and field types of a collection (or of an alias's target)."""

        def run(meta: CollectionMeta) -> CollectionInfo:
            self._directory.refresh_fields(meta)
            return CollectionInfo(
                name=meta.name,
                dim=meta.dim,
                metric=meta.metric,
                count=self._count(meta, ""),
                multi_tenant=meta.multi_tenant,
                fields=dict(sorted(meta.fields.items())),
                metadata=meta.metadata,
            )

        return self._fresh(name, run)

    # ------------------------------------------------------------------------------ writes
    def upsert(self, name: str, records: Records) -> int:
        """Insert or replace records by id (per tenant); return how many were written.

        Validated completely before anything is written (see the module docstring); duplicate
        ids in one batch: the last one wins. Raises :class:`InvalidInput`,
        :class:`DimensionMismatch`, :class:`LimitExceeded`, :class:`NotFound`.
        """
        items = materialize(records)

        def run(meta: CollectionMeta) -> int:
            chunks = self._plan_upsert(meta, items)
            for chunk in chunks:
                with milvus_call(f"upserting into {meta.name!r}"):
                    self._client.upsert(meta.milvus_name, chunk, timeout=self._timeout)
            return sum(len(c) for c in chunks)

        return self._fresh(name, run)

    def _plan_upsert(self, meta: CollectionMeta, items: Any) -> list[list[dict[str, Any]]]:
        """Validate a batch completely, register its new field types and split it into
        Milvus requests (nothing is written to the collection here). Holds the collection's
        lock while it reads and merges field types, so this store's writers agree on them."""
        cfg = self.config
        with meta.lock:
            self._directory.refresh_fields(meta)
            batch = prepare_batch(
                items,
                dim=meta.dim,
                multi_tenant=meta.multi_tenant,
                known_fields=meta.fields,
                max_rows=self.capabilities.max_batch_rows,
            )
            if not batch:
                return []
            built = build_rows(
                batch, text_max_bytes=cfg.text_max_bytes, max_bytes=cfg.max_request_bytes
            )
            if batch.new_fields or batch.widened:
                self._register_fields(meta, batch.field_types)
        return list(
            split_requests(
                built.rows,
                built.sizes,
                max_rows=cfg.max_request_rows,
                max_bytes=cfg.max_request_bytes,
            )
        )

    def _register_fields(self, meta: CollectionMeta, types: Mapping[str, FieldType]) -> None:
        """Merge ``types`` into the registry's field types (re-read first, so a type another
        writer registered meanwhile is respected: a clash raises :class:`InvalidInput`)."""
        fields = self._registry.fields(meta.name, meta.token)
        for fname, ftype in types.items():
            prior = fields.get(fname)
            merged = ftype if prior is None else merge_field_type(prior, ftype)
            if merged is None:
                raise InvalidInput(
                    f"metadata field {fname!r} holds {prior} values, got {ftype}; a field keeps "
                    "the type it was first written with"
                )
            fields[fname] = merged
        if fields != meta.fields or set(fields) - set(meta.fields):
            self._registry.put_fields(meta.name, meta.token, fields)
        meta.set_fields(fields)

    def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id within ``tenant`` (ids that do not exist are ignored)."""

        def run(meta: CollectionMeta) -> None:
            for expr in self._delete_exprs(meta, ids, tenant):
                with milvus_call(f"deleting from {meta.name!r}"):
                    self._client.delete(meta.milvus_name, filter=expr, timeout=self._timeout)

        self._fresh(name, run)

    def _delete_exprs(
        self, meta: CollectionMeta, ids: Sequence[str], tenant: str | None
    ) -> list[str]:
        t = check_tenant(meta.multi_tenant, tenant, meta.name)
        keys = self._keys(t, normalize_ids(ids))
        return [
            self._key_expr(keys[start : start + _ID_CHUNK], t)
            for start in range(0, len(keys), _ID_CHUNK)
        ]

    @staticmethod
    def _keys(tenant: str | None, ids: Sequence[str]) -> list[str]:
        """Primary keys of ``ids`` (ids that cannot be keys cannot exist: skipped)."""
        out: list[str] = []
        for rid in ids:
            try:
                out.append(encode_key(tenant, rid))
            except InvalidInput:
                continue
        return out

    def _key_expr(self, keys: Sequence[str], tenant: str | None) -> str:
        pks = "pk in [" + ", ".join(f'"{k}"' for k in keys) + "]"
        return conjoin(pks, self._tenant_expr(tenant))

    @staticmethod
    def _tenant_expr(tenant: str | None) -> str | None:
        return None if tenant is None else f'tkey == "{encode_tenant(tenant)}"'

    # ------------------------------------------------------------------------------- reads
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
            wanted, queries, fields = self._get_plan(meta, ids, tenant, include_vectors)
            rows: list[Any] = []
            for expr, limit in queries:
                with milvus_call(f"reading from {meta.name!r}"):
                    rows += self._client.query(
                        meta.milvus_name,
                        filter=expr,
                        output_fields=fields,
                        limit=limit,
                        timeout=self._timeout,
                    )
            return self._in_order(meta, wanted, rows, include_vectors)

        return self._fresh(name, run)

    def _get_plan(
        self, meta: CollectionMeta, ids: Sequence[str], tenant: str | None, vectors: bool
    ) -> tuple[list[str], list[tuple[str, int]], list[str]]:
        """``(ids asked for, [(expression, limit)], output fields)`` of a ``get``."""
        t = check_tenant(meta.multi_tenant, tenant, meta.name)
        wanted = normalize_ids(ids)
        keys = self._keys(t, wanted)
        queries = [
            (
                self._key_expr(keys[start : start + _ID_CHUNK], t),
                len(keys[start : start + _ID_CHUNK]),
            )
            for start in range(0, len(keys), _ID_CHUNK)
        ]
        return wanted, queries, [*_OUTPUT, "vector"] if vectors else list(_OUTPUT)

    def _in_order(
        self, meta: CollectionMeta, wanted: list[str], rows: Sequence[Any], vectors: bool
    ) -> list[VectorRecord]:
        found = {}
        for row in rows:
            rec = self._record(meta, row, vectors)
            found[rec.id] = rec
        return [found[i] for i in wanted if i in found]

    @staticmethod
    def _record(meta: CollectionMeta, row: Mapping[str, Any], vectors: bool) -> VectorRecord:
        return record_from_row(row, meta.fields, meta.temporal, vectors)

    def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int:
        """How many records (within ``tenant``) match ``filter``."""

        def run(meta: CollectionMeta) -> int:
            t = check_tenant(meta.multi_tenant, tenant, meta.name)
            compiled = self._compile(meta, filter)
            if compiled.never:
                return 0
            return self._count(meta, conjoin(self._tenant_expr(t), compiled.expr), compiled)

        return self._fresh(name, run)

    def _count(self, meta: CollectionMeta, expr: str, compiled: Compiled | None = None) -> int:
        params = compiled.params if compiled is not None else {}
        with milvus_call(f"counting {meta.name!r}"):
            rows = self._client.query(
                meta.milvus_name,
                filter=expr,
                output_fields=["count(*)"],
                timeout=self._timeout,
                **({"filter_params": params} if params else {}),
            )
        return int(rows[0]["count(*)"]) if rows else 0

    def _compile(
        self, meta: CollectionMeta, spec: Mapping[str, Any] | None, *, refresh: bool = True
    ) -> Compiled:
        expr = parse_filter(spec)
        if refresh and self._directory.needs_refresh(meta, expr):
            self._directory.refresh_fields(meta)  # a field another writer may just have added
        return compile_filter(expr, meta.fields, bind=self.bind_values)

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
        """Dense, keyword or hybrid search (see :class:`~strataml.protocols.VectorStore`).

        ``k`` is at most 16384 (Milvus's topk limit; :class:`InvalidInput` beyond). The filter
        and tenant are applied before ranking. Hybrid fuses both legs (module docstring).
        """

        def run(meta: CollectionMeta) -> list[Hit]:
            plan = self._plan_search(
                meta, vector, k, text, mode, filter, tenant, alpha, include_vectors
            )
            if not plan.legs:
                return []
            if len(plan.legs) == 1:
                return self._finish_search(meta, plan, [self._run_leg(meta, plan.legs[0])])
            pending = self._executor().submit(self._run_leg, meta, plan.legs[1])
            dense = self._run_leg(meta, plan.legs[0])
            return self._finish_search(meta, plan, [dense, pending.result()])

        return self._fresh(name, run)

    def _plan_search(
        self,
        meta: CollectionMeta,
        vector: Any,
        k: Any,
        text: Any,
        mode: Any,
        filter: Mapping[str, Any] | None,
        tenant: str | None,
        alpha: Any,
        include_vectors: bool,
        *,
        refresh: bool = True,
    ) -> SearchPlan:
        """Check a search's arguments and build its Milvus requests (one per leg)."""
        t = check_tenant(meta.multi_tenant, tenant, meta.name)
        resolved = resolve_mode(vector, text, mode, self.capabilities)
        kk = check_k(k)
        if kk > MAX_TOPK:
            raise LimitExceeded(f"k must be at most {MAX_TOPK} (Milvus's topk limit), got {k}")
        a = check_alpha(alpha)
        qv = query_vector(vector, meta.dim) if resolved != "keyword" else None
        if resolved != "dense":
            _text_ok(text, "search text")
        compiled = self._compile(meta, filter, refresh=refresh)
        if compiled.never:
            return SearchPlan(resolved, kk, a, ())
        expr = conjoin(self._tenant_expr(t), compiled.expr)
        limit = min(candidate_pool(kk), MAX_TOPK) if resolved == "hybrid" else kk
        fields = [*_OUTPUT, "vector"] if include_vectors else list(_OUTPUT)
        legs: list[Leg] = []
        if resolved != "keyword":
            legs.append(self._leg(meta, "dense", qv, limit, expr, compiled.params, fields))
        if resolved != "dense":
            legs.append(self._leg(meta, "keyword", text, limit, expr, compiled.params, fields))
        return SearchPlan(resolved, kk, a, tuple(legs), include_vectors)

    def _leg(
        self,
        meta: CollectionMeta,
        kind: str,
        data: Any,
        limit: int,
        expr: str,
        params: dict[str, Any],
        fields: list[str],
    ) -> Leg:
        metric = MILVUS_METRICS[meta.metric] if kind == "dense" else "BM25"
        kwargs: dict[str, Any] = {
            "data": [data],
            "anns_field": "vector" if kind == "dense" else "sparse",
            "filter": expr,
            "limit": limit,
            "output_fields": fields,
            "search_params": self._search_params(metric, limit),
            "timeout": self._timeout,
        }
        if params:
            kwargs["filter_params"] = params
        return Leg(kind, kwargs)

    def _run_leg(self, meta: CollectionMeta, leg: Leg) -> list[Any]:
        try:
            with milvus_call(f"searching {meta.name!r}"):
                result = self._client.search(meta.milvus_name, **leg.kwargs)
        except BackendError as exc:
            if leg.kind == "keyword" and no_text_indexed(exc):
                return []
            raise
        return list(result[0]) if result else []

    def _finish_search(
        self, meta: CollectionMeta, plan: SearchPlan, results: Sequence[Sequence[Any]]
    ) -> list[Hit]:
        """Hits of each leg (the contract's scores), fused for a hybrid search."""
        legs: list[list[Hit]] = []
        for leg, raw in zip(plan.legs, results, strict=True):
            if leg.kind == "dense":
                hits = [
                    self._hit(
                        meta,
                        h,
                        plan.include_vectors,
                        distance=_distance(meta.metric, h["distance"]),
                    )
                    for h in raw
                ]
            else:
                hits = [
                    self._hit(meta, h, plan.include_vectors, bm25=max(0.0, float(h["distance"])))
                    for h in raw
                ]
            hits.sort(key=_by_score)
            legs.append(hits)
        if plan.mode != "hybrid":
            return legs[0]
        return fuse_hits(legs[0], legs[1], plan.alpha, plan.k, method=DEFAULT_FUSION)

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(4, thread_name_prefix="strataml-milvus")
        return self._pool

    def _search_params(self, metric: str, k: int) -> dict[str, Any]:
        params: dict[str, Any] = dict(self.config.search_params)
        if "ef" in params and isinstance(params["ef"], int):
            params["ef"] = max(params["ef"], k)  # HNSW needs ef >= k
        return {"metric_type": metric, "params": params}

    @staticmethod
    def _hit(
        meta: CollectionMeta,
        raw: Mapping[str, Any],
        include_vectors: bool,
        *,
        distance: float | None = None,
        bm25: float | None = None,
    ) -> Hit:
        return hit_from_result(
            raw,
            meta.fields,
            meta.temporal,
            include_vectors,
            metric=meta.metric,
            distance=distance,
            bm25=bm25,
        )

    # ------------------------------------------------------------------------------- scans
    def scan(
        self,
        name: str,
        *,
        tenant: str | None = None,
        include_vectors: bool = False,
        batch_size: int = 1000,
    ) -> Iterator[list[VectorRecord]]:
        """Every record (of ``tenant``) once, in batches of at most ``batch_size`` (Milvus's
        query iterator, which pages by primary key)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        meta = self._meta(name)
        t = check_tenant(meta.multi_tenant, tenant, meta.name)
        self._directory.refresh_fields(meta)
        return self._scan(meta, t, include_vectors, min(batch_size, MAX_TOPK))

    def _scan(
        self, meta: CollectionMeta, tenant: str | None, include_vectors: bool, batch_size: int
    ) -> Iterator[list[VectorRecord]]:
        # not ``tkey``: the record's tenant is decoded from ``pk`` (one field less per row)
        fields = [*_SCAN_OUTPUT, "vector"] if include_vectors else _SCAN_OUTPUT
        for rows in self._pages(meta, tenant, fields, batch_size):
            yield records_from_rows(rows, meta.fields, meta.temporal, include_vectors)

    def _pages(
        self, meta: CollectionMeta, tenant: str | None, fields: list[str], batch_size: int
    ) -> Iterator[list[Any]]:
        """The rows of ``meta`` (within ``tenant``), ``fields`` of each, a page at a time
        (Milvus's query iterator; closed however the caller stops)."""
        with milvus_call(f"scanning {meta.name!r}"):
            iterator = self._client.query_iterator(
                meta.milvus_name,
                batch_size=batch_size,
                filter=self._tenant_expr(tenant) or "",
                output_fields=fields,
                timeout=self._timeout,
            )
        try:
            while True:
                with milvus_call(f"scanning {meta.name!r}"):
                    rows = iterator.next()
                if not rows:
                    return
                yield rows
        finally:
            try:
                iterator.close()
            except Exception:  # noqa: BLE001 - closing must not mask the scan's outcome
                pass

    def scan_metadata(
        self,
        name: str,
        fields: Sequence[str],
        *,
        tenant: str | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Every record's id and the metadata ``fields``, column-wise (see
        :meth:`~strataml.protocols.VectorStore.scan_metadata`): the query iterator of
        :meth:`scan` reading only the key and the metadata (no vectors, no text)."""
        names = check_fields(fields)
        batch_size = check_batch_size(batch_size)
        meta = self._meta(name)
        t = check_tenant(meta.multi_tenant, tenant, meta.name)
        self._directory.refresh_fields(meta)
        schema = metadata_schema(names, meta.fields)
        return self._scan_metadata(meta, t, schema, min(batch_size, MAX_TOPK))

    def _scan_metadata(
        self, meta: CollectionMeta, tenant: str | None, schema: pa.Schema, batch_size: int
    ) -> Iterator[pa.RecordBatch]:
        for rows in self._pages(meta, tenant, ["pk", "meta", "has"], batch_size):
            records = records_from_rows(rows, meta.fields, meta.temporal, False)
            yield rows_batch([r.id for r in records], [r.metadata for r in records], schema)

    # ----------------------------------------------------------------------------- aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` (create it, or repoint it atomically).

        Raises :class:`InvalidInput` (bad name), :class:`NotFound` (``collection`` is not an
        existing collection; aliases of aliases are refused), :class:`Conflict` (``alias`` is a
        collection's name).
        """
        self._check_open()
        self._directory.set_alias(alias, collection)

    def drop_alias(self, alias: str) -> None:
        """Remove an alias (no error if it does not exist); the collection is untouched."""
        self._check_open()
        self._directory.drop_alias(alias)

    def aliases(self) -> dict[str, str]:
        """Every alias (of this store's prefix) and the collection it points at."""
        self._check_open()
        return self._directory.aliases()

    # ------------------------------------------------------------------------------ health
    def stats(self, name: str) -> CollectionStats:
        """Live count, tombstones (``None`` on Milvus Lite, which does not report them) and the
        dense index (type, parameters, rows indexed)."""
        return self._fresh(name, self._stats)

    def _stats(self, meta: CollectionMeta) -> CollectionStats:
        count = self._count(meta, "")
        with milvus_call(f"reading statistics of {meta.name!r}"):
            reported = int(
                self._client.get_collection_stats(meta.milvus_name, timeout=self._timeout).get(
                    "row_count", 0
                )
            )
            index = dict(
                self._client.describe_index(meta.milvus_name, "vector", timeout=self._timeout)
            )
        # Milvus Lite counts deletions at once and reports no tombstones; a server's segment
        # row count keeps deleted and overwritten rows until compaction
        deleted = None if self.lite else max(0, reported - count)
        requested = str(index.get("index_type", self.config.index_type))
        skip = {"index_type", "metric_type", "field_name", "index_name", "dim", "state"}
        skip |= {"total_rows", "indexed_rows", "pending_index_rows"}
        params = {k: _param(v) for k, v in index.items() if k not in skip}
        total = int(index.get("total_rows") or 0)
        details = {
            "milvus_collection": meta.milvus_name,
            "milvus_lite": self.lite,
            "row_count_reported": reported,
            "index_requested": requested,
            "index_requested_params": params,
            "index_state": str(index.get("state", "")),
            "pending_index_rows": int(index.get("pending_index_rows") or 0),
            "consistency_level": self.config.consistency_level,
        }
        return CollectionStats.of(
            meta.name,
            count,
            deleted,
            # Milvus Lite searches every segment exhaustively, whatever index was requested
            index_type="flat" if self.lite else requested.lower(),
            index_params={} if self.lite else params,
            indexed=int(index.get("indexed_rows") or 0) if total else None,
            details=details,
        )

    def optimize(self, name: str) -> CollectionStats:
        """Flush and compact (deleted and overwritten rows are dropped, segments merged and
        re-indexed by the server while searches keep being served); wait for the compaction,
        return the stats. Milvus Lite has no compaction: it flushes only."""

        def run(meta: CollectionMeta) -> CollectionStats:
            with milvus_call(f"optimizing {meta.name!r}"):
                self._client.flush(meta.milvus_name, timeout=self._timeout)
                if not self.lite:
                    job = self._client.compact(meta.milvus_name, timeout=self._timeout)
                    deadline = time.monotonic() + max(self._timeout, 60.0)
                    while time.monotonic() < deadline:
                        state = self._client.get_compaction_state(job, timeout=self._timeout)
                        if str(state) == "Completed":
                            break
                        time.sleep(_COMPACTION_POLL_S)
                    else:
                        raise Unavailable(f"compaction of {meta.name!r} did not finish in time")
            return self._stats(meta)

        return self._fresh(name, run)


# ---------------------------------------------------------------------------------- helpers
@dataclass(frozen=True)
class Leg:
    """One Milvus search request of a strataml search (``kind``: dense or keyword)."""

    kind: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class SearchPlan:
    """A checked search: its mode, ``k``, ``alpha`` and Milvus requests (none: the filter
    matches nothing)."""

    mode: SearchMode
    k: int
    alpha: float
    legs: tuple[Leg, ...]
    include_vectors: bool = False


def no_text_indexed(exc: BaseException) -> bool:
    """Milvus fails a BM25 search of a collection holding no text at all (average document
    length 0 makes its query weights NaN); such a search matches nothing."""
    text = str(exc)
    return "sparse row" in text and ("NaN" in text or "Inf" in text)


def _by_score(hit: Hit) -> float:
    return -hit.score


def materialize(records: Any) -> Any:
    """``records`` as a list (once: a retry after a stale collection reuses it); single
    records and strings are passed through for :func:`prepare_batch` to reject."""
    if isinstance(records, list | Mapping | VectorRecord | str | bytes):
        return records
    try:
        return list(records)
    except TypeError as exc:
        raise InvalidInput(f"records: expected an iterable of records: {exc}") from exc


@contextmanager
def _quiet_pymilvus() -> Iterator[None]:
    """Silence pymilvus's error log for one probing call."""
    log = logging.getLogger("pymilvus.decorators")
    was = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = was


def _distance(metric: str, raw: float) -> float:
    """Milvus's COSINE similarity / squared L2 / inner product as the contract's distance."""
    if metric == "cosine":
        return min(2.0, max(0.0, 1.0 - raw))
    if metric == "l2":
        return float(np.sqrt(max(raw, 0.0)))
    return -raw


def _param(value: Any) -> Any:
    if isinstance(value, str):
        for cast in (int, float):
            try:
                return cast(value)
            except ValueError:
                continue
    return value
