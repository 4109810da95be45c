"""The :class:`~strataml.protocols.VectorStore` on Weaviate (weaviate-client v4).

* **Layout**: one Weaviate collection per strataml collection (names, properties and shape: see
  :mod:`strataml_weaviate.names` and :mod:`strataml_weaviate.schema`); object UUIDs are
  ``uuid5`` of the strataml id, which is stored in ``sm_id``.
* **Writes**: an upsert is validated completely first; new metadata fields become typed
  properties; objects go out in gRPC batch requests (``data.insert_many``) of bounded size
  (:mod:`strataml_weaviate.batching`). Weaviate replaces an object written again with the same
  UUID, which is the upsert.
* **Filters** compile to ``Filter`` expressions (:mod:`strataml_weaviate.filters`), pre-filtered
  by Weaviate, so a filtered search returns ``k`` hits when ``k`` records match.
* **Search**: ``near_vector`` (dense), ``bm25`` over ``sm_text`` (keyword) and Weaviate's native
  ``hybrid`` with ``alpha`` and relative-score fusion; scores follow the strataml contract
  (:mod:`strataml_weaviate.codec`). At ``alpha`` 1.0 / 0.0 a hybrid search runs one leg only
  (Weaviate would still fetch the other and rank its hits last with score 0).
* **Tenants**: native multi-tenancy (one shard per tenant, created on first write;
  ``collection.with_tenant``), so a tenant's calls never reach another's data. Reads of a tenant
  that was never written return nothing.
* **Aliases**: native collection aliases (Weaviate >= 1.32): data calls through an alias are
  routed by the server, so a repoint is atomic for readers.
* **Health**: ``stats`` reports the object count (aggregate), the HNSW settings and the vector
  indexing queue (cluster nodes API). Weaviate does not expose tombstones (``deleted`` is
  ``None``) and compacts by itself -- LSM segments in the background, HNSW tombstones every
  ``cleanupIntervalSeconds`` -- with no API to force it, so ``optimize`` returns the stats and
  changes nothing.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import pyarrow as pa

from strataml.capabilities import Capabilities
from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
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
)
from strataml.vectors.batch import (
    check_alpha,
    check_k,
    check_tenant,
    normalize_ids,
    prepare_batch,
    query_vector,
    resolve_mode,
)
from strataml.vectors.columns import (
    batches_from_records,
    check_batch_size,
    check_fields,
    metadata_schema,
)
from strataml_weaviate.batching import check_text, estimate_bytes, plan_requests
from strataml_weaviate.codec import (
    RETURN_PROPERTIES,
    dense_hit,
    hybrid_hit,
    keyword_hit,
    minmax,
    object_properties,
    to_record,
)
from strataml_weaviate.config import WeaviateConfig
from strataml_weaviate.errors import translate
from strataml_weaviate.filters import FALSE, TRUE, Compiled, compile_filter
from strataml_weaviate.names import (
    TEXT_PROPERTY,
    class_name,
    decode_class,
    object_uuid,
    tenant_name,
)
from strataml_weaviate.schema import (
    VECTOR,
    CollectionMeta,
    IndexSettings,
    create_arguments,
    describe_meta,
    field_property,
    merged_fields,
    parse_meta,
    property_rows,
)

__all__ = ["WeaviateVectorStore", "make_client"]

T = TypeVar("T")
Records = Iterable[VectorRecord | Mapping[str, Any]]

_METRICS: Final = ("cosine", "l2", "dot")
_ID_CHUNK: Final = 1000  # ids per fetch/delete request (below QUERY_MAXIMUM_RESULTS)


def make_client(config: WeaviateConfig) -> Any:
    """A connected ``weaviate.WeaviateClient`` for ``config``."""
    import weaviate
    from weaviate.classes.init import AdditionalConfig, Auth, Timeout

    host, port, secure, grpc_host, grpc_port, grpc_secure = config.endpoints()
    key = config.api_key.get_secret_value() if config.api_key else None
    try:
        return weaviate.connect_to_custom(
            http_host=host,
            http_port=port,
            http_secure=secure,
            grpc_host=grpc_host,
            grpc_port=grpc_port,
            grpc_secure=grpc_secure,
            auth_credentials=Auth.api_key(key) if key else None,
            additional_config=AdditionalConfig(
                timeout=Timeout(
                    init=config.timeout_init_s,
                    query=config.timeout_query_s,
                    insert=config.timeout_insert_s,
                )
            ),
            skip_init_checks=config.skip_init_checks,
        )
    except Exception as exc:  # every client failure becomes a strataml error
        raise translate(exc, "connecting to Weaviate", _secrets(config)) from exc


def _secrets(config: WeaviateConfig) -> tuple[str, ...]:
    out = [config.url.get_secret_value()]
    if config.api_key is not None:
        out.append(config.api_key.get_secret_value())
    return tuple(out)


class WeaviateVectorStore:
    """Collections of embeddings in Weaviate (see the module docstring).

    ``client`` is a connected ``weaviate.WeaviateClient``; :meth:`close` closes it only if
    ``owns_client``. ``prefix`` namespaces every collection and alias; ``settings`` fixes the
    HNSW and BM25 parameters of new collections; ``batch_size`` / ``max_request_bytes`` bound
    each batch request; ``metadata_cache_s`` bounds how long a collection's shape is cached.

    Errors are strataml's (weaviate-client errors translated and chained, secrets removed).
    """

    #: Calls do network I/O: async wrappers run them in a worker thread.
    blocking_io = True

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "Strataml",
        settings: IndexSettings | None = None,
        batch_size: int = 500,
        max_request_bytes: int = 64 * 1024 * 1024,
        metadata_cache_s: float = 1.0,
        owns_client: bool = False,
        secrets: Sequence[str] = (),
    ) -> None:
        from strataml_weaviate import VECTORS_CAPS

        self._client = client
        self._prefix = prefix
        self._settings = settings or IndexSettings()
        self._batch_size = batch_size
        self._max_bytes = max_request_bytes
        self._cache_s = metadata_cache_s
        self._owns_client = owns_client
        self._secrets = tuple(secrets)
        self._caps = VECTORS_CAPS
        self._cache: dict[str, tuple[float, CollectionMeta]] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, config: WeaviateConfig) -> WeaviateVectorStore:
        """A store owning a new client for ``config``."""
        return cls(
            make_client(config),
            prefix=config.collection_prefix,
            settings=IndexSettings(
                ef=config.hnsw_ef,
                ef_construction=config.hnsw_ef_construction,
                max_connections=config.hnsw_max_connections,
                bm25_k1=config.bm25_k1,
                bm25_b=config.bm25_b,
            ),
            batch_size=config.batch_size,
            max_request_bytes=config.max_request_bytes,
            metadata_cache_s=config.metadata_cache_s,
            owns_client=True,
            secrets=_secrets(config),
        )

    # ---------------------------------------------------------------------------- plumbing
    @property
    def capabilities(self) -> Capabilities:
        """The declared capabilities (``strataml_weaviate.VECTORS_CAPS``)."""
        return self._caps

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        if self._closed:
            raise Unavailable("the Weaviate vector store is closed")
        try:
            return fn()
        except StrataError:
            raise
        except Exception as exc:  # every client failure becomes a strataml error
            raise translate(exc, what, self._secrets) from exc

    def _cls(self, kind: str, name: str) -> str:
        return class_name(self._prefix, check_name(kind, name))

    def _alias_map(self) -> dict[str, str]:
        """Every alias of this prefix: alias class -> target class ({} on servers without)."""
        from weaviate.exceptions import WeaviateUnsupportedFeatureError

        try:
            found = self._call("listing aliases", lambda: self._client.alias.list_all())
        except Unsupported:
            return {}
        except StrataError as exc:
            if isinstance(exc.__cause__, WeaviateUnsupportedFeatureError):
                return {}
            raise
        head = f"{self._prefix}_"
        return {str(a): str(r.collection) for a, r in found.items() if str(a).startswith(head)}

    def _load(self, cls: str) -> CollectionMeta | None:
        """The strataml shape of Weaviate collection (or alias) ``cls``, from the server
        (aliases are resolved here: schema calls, unlike data calls, are not routed)."""
        aliases = self._alias_map()

        def fetch() -> CollectionMeta | None:
            target = aliases.get(cls, cls)
            if not self._client.collections.exists(target):
                return None
            config = self._client.collections.use(target).config.get()
            return parse_meta(config.name, config.description, property_rows(config.properties))

        return self._call(f"reading collection {cls!r}", fetch)

    def _meta(self, name: str, *, fresh: bool = False) -> tuple[str, CollectionMeta]:
        """``(class to query, shape of the target collection)`` of a collection or alias."""
        cls = self._cls("collection", name)
        now = time.monotonic()
        if not fresh:
            cached = self._cache.get(cls)
            if cached is not None and cached[0] > now:
                return cls, cached[1]
        meta = self._load(cls)
        if meta is None:
            self._cache.pop(cls, None)
            raise NotFound(f"collection {name!r} does not exist")
        self._cache[cls] = (now + self._cache_s, meta)
        return cls, meta

    def _forget(self, target: str | None = None) -> None:
        with self._lock:
            if target is None:
                self._cache.clear()
            else:
                for key in [
                    k for k, (_, m) in self._cache.items() if m.cls == target or k == target
                ]:
                    self._cache.pop(key, None)

    def _collection(self, cls: str, meta: CollectionMeta, tenant: str | None) -> Any:
        coll = self._client.collections.use(cls)
        if meta.multi_tenant:
            assert tenant is not None
            coll = coll.with_tenant(tenant_name(tenant))
        return coll

    def _tenant_read(
        self,
        what: str,
        meta: CollectionMeta,
        cls: str,
        tenant: str | None,
        fn: Callable[[], T],
        empty: T,
    ) -> T:
        """Run a read; on a multi-tenant collection, a tenant never written reads as empty."""
        try:
            return self._call(what, fn)
        except StrataError as exc:
            if (
                meta.multi_tenant
                and tenant is not None
                and exc.__cause__ is not None
                and not self._tenant_exists(cls, tenant)
            ):
                return empty
            raise

    def _tenant_exists(self, cls: str, tenant: str) -> bool:
        return bool(
            self._call(
                "reading tenants",
                lambda: self._client.collections.use(cls).tenants.exists(tenant_name(tenant)),
            )
        )

    def _filter(self, cls: str, meta: CollectionMeta, spec: Any) -> tuple[CollectionMeta, Compiled]:
        """Compile ``spec`` against the field types, re-reading them once if it names a field
        this store has not seen (another writer may have added it)."""
        expr = parse_filter(spec)
        if expr is not None and fields_used(expr) - set(meta.fields):
            meta = self._meta_of_class(cls, meta)
        return meta, compile_filter(expr, meta.fields)

    def _meta_of_class(self, cls: str, meta: CollectionMeta) -> CollectionMeta:
        fresh = self._load(cls)
        if fresh is None:
            raise NotFound(f"collection {meta.name!r} does not exist")
        self._cache[cls] = (time.monotonic() + self._cache_s, fresh)
        return fresh

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
        """Create a collection (see the protocol). Errors: :class:`Conflict` (it exists with
        another shape, or without ``exist_ok``; or an alias has the name),
        :class:`InvalidInput` (bad name, dimension, metric or metadata)."""
        cls = self._cls("collection", name)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise InvalidInput(f"dim must be a positive integer, got {dim!r}")
        if self._caps.max_dim is not None and dim > self._caps.max_dim:
            raise InvalidInput(f"dim {dim} is over the limit of {self._caps.max_dim}")
        if metric not in _METRICS:
            raise InvalidInput(f"unknown metric {metric!r}; use 'cosine', 'l2' or 'dot'")
        if not isinstance(multi_tenant, bool):
            raise InvalidInput(f"multi_tenant must be a bool, got {multi_tenant!r}")
        extra = dict(metadata or {})
        try:
            json.dumps(extra, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"collection metadata must be JSON: {exc}") from exc
        if cls in self._alias_map():
            raise Conflict(f"{name!r} is an alias; a collection cannot take its name")
        meta = CollectionMeta(
            name=name, cls=cls, dim=dim, metric=metric, multi_tenant=multi_tenant, metadata=extra
        )
        existing = self._load(cls)
        if existing is None:
            try:
                self._call(
                    f"creating collection {name!r}",
                    lambda: self._client.collections.create(
                        **create_arguments(meta, self._settings)
                    ),
                )
                self._forget(cls)
                return self._info(meta, 0)
            except Conflict:
                existing = self._load(cls)  # created concurrently
                if existing is None:
                    raise
        if not exist_ok:
            raise Conflict(f"collection {name!r} already exists")
        if (existing.dim, existing.metric, existing.multi_tenant) != (dim, metric, multi_tenant):
            raise Conflict(
                f"collection {name!r} exists with dim={existing.dim}, metric={existing.metric!r}, "
                f"multi_tenant={existing.multi_tenant}"
            )
        return self._info(existing, self._total(cls, existing))

    def drop_collection(self, name: str) -> None:
        """Delete a collection (no error if it does not exist). :class:`Conflict` if ``name``
        is an alias or an alias points at it."""
        cls = self._cls("collection", name)
        aliases = self._alias_map()
        if cls in aliases:
            raise Conflict(f"{name!r} is an alias, not a collection: drop it with drop_alias")
        pointing = sorted(
            decode_class(self._prefix, a) or a for a, t in aliases.items() if t == cls
        )
        if pointing:
            raise Conflict(
                f"collection {name!r} is the target of alias(es) {', '.join(pointing)}: "
                "repoint or drop them first"
            )
        try:
            self._call(
                f"dropping collection {name!r}", lambda: self._client.collections.delete(cls)
            )
        except NotFound:
            pass  # already gone
        self._forget(cls)

    def collections(self) -> list[str]:
        """The strataml collections under this store's prefix (not the aliases), sorted."""
        found = self._call(
            "listing collections", lambda: self._client.collections.list_all(simple=True)
        )
        names = []
        for cls, config in found.items():
            if decode_class(self._prefix, str(cls)) is None:
                continue
            meta = parse_meta(str(cls), config.description, [])
            if meta is not None:
                names.append(meta.name)
        return sorted(names)

    def _total(self, cls: str, meta: CollectionMeta) -> int:
        """Live objects of a collection, all tenants."""
        if not meta.multi_tenant:
            return self._count(self._collection(cls, meta, None), TRUE)
        tenants = self._call(
            f"listing tenants of {meta.name!r}",
            lambda: self._client.collections.use(cls).tenants.get(),
        )
        coll = self._client.collections.use(cls)
        return sum(self._count(coll.with_tenant(t), TRUE) for t in tenants)

    def _count(self, coll: Any, flt: Compiled) -> int:
        if flt is FALSE:
            return 0
        result = self._call(
            "counting",
            lambda: coll.aggregate.over_all(total_count=True, filters=None if flt is TRUE else flt),
        )
        return int(result.total_count or 0)

    @staticmethod
    def _info(meta: CollectionMeta, count: int) -> CollectionInfo:
        return CollectionInfo(
            name=meta.name,
            dim=meta.dim,
            metric=meta.metric,
            count=count,
            multi_tenant=meta.multi_tenant,
            fields=dict(meta.fields),
            metadata=dict(meta.metadata),
        )

    def describe(self, name: str) -> CollectionInfo:
        """Shape, count (all tenants) and field types of a collection or an alias's target."""
        cls, meta = self._meta(name, fresh=True)
        return self._info(meta, self._total(cls, meta))

    # ---------------------------------------------------------------------------- writing
    def upsert(self, name: str, records: Records) -> int:
        """Insert or replace records by id; the whole batch is validated before anything is
        written. Errors: see the protocol; :class:`LimitExceeded` for more than
        ``max_batch_rows`` records or one record over ``max_request_bytes``."""
        cls, meta = self._meta(name)
        batch = prepare_batch(
            records,
            dim=meta.dim,
            multi_tenant=meta.multi_tenant,
            known_fields=meta.fields,
            max_rows=self._caps.max_batch_rows,
        )
        if not batch.ids:
            return 0
        check_text(batch)
        if batch.new_fields or batch.widened:
            meta = self._add_fields(cls, meta, batch.new_fields, batch.widened)
        properties = [
            object_properties(batch.ids[i], batch.texts[i], batch.metadata[i], meta.fields)
            for i in range(len(batch.ids))
        ]
        sizes = [estimate_bytes(meta.dim, p) for p in properties]
        groups: dict[str | None, list[int]] = {}
        for i, tenant in enumerate(batch.tenants):
            groups.setdefault(tenant, []).append(i)
        plan = plan_requests(
            list(groups.items()), sizes, batch_size=self._batch_size, max_bytes=self._max_bytes
        )
        from weaviate.classes.data import DataObject

        for tenant, indexes in plan:
            objects = [
                DataObject(
                    properties=properties[i],
                    uuid=object_uuid(batch.ids[i]),
                    vector={VECTOR: batch.vectors[i].tolist()},
                )
                for i in indexes
            ]
            coll = self._collection(cls, meta, tenant)
            result = self._call(
                f"writing to collection {meta.name!r}",
                functools.partial(coll.data.insert_many, objects),
            )
            errors = getattr(result, "errors", None) or {}
            if errors:
                first = errors[min(errors)]
                raise BackendError(
                    f"writing to collection {meta.name!r}: Weaviate refused {len(errors)} of "
                    f"{len(objects)} objects: {getattr(first, 'message', first)}"
                )
        return len(batch.ids)

    def _add_fields(
        self,
        cls: str,
        meta: CollectionMeta,
        new: Mapping[str, FieldType],
        widened: Mapping[str, FieldType],
    ) -> CollectionMeta:
        """Add a property per new field and record the types in the description."""
        target = self._client.collections.use(meta.cls)
        for field_name, ftype in sorted(new.items()):
            try:
                self._call(
                    f"adding field {field_name!r} to {meta.name!r}",
                    functools.partial(
                        target.config.add_property, field_property(field_name, ftype)
                    ),
                )
            except (Conflict, InvalidInput, BackendError):
                fresh = self._meta_of_class(cls, meta)  # added concurrently?
                if fresh.fields.get(field_name) is None:
                    raise
                if {fresh.fields[field_name], ftype} - {
                    FieldType.INT,
                    FieldType.FLOAT,
                } and fresh.fields[field_name] != ftype:
                    raise InvalidInput(
                        f"metadata field {field_name!r} holds {fresh.fields[field_name]} values "
                        f"(written concurrently), got {ftype}"
                    ) from None
        merged = merged_fields(meta, {**new, **widened})
        self._call(
            f"recording the fields of {meta.name!r}",
            lambda: target.config.update(description=describe_meta(merged)),
        )
        self._cache[cls] = (time.monotonic() + self._cache_s, merged)
        return merged

    def delete(self, name: str, ids: Sequence[str], *, tenant: str | None = None) -> None:
        """Delete records by id (missing ids, and tenants never written, are ignored)."""
        from weaviate.classes.query import Filter

        cls, meta = self._meta(name)
        wanted = normalize_ids(ids)
        tenant = check_tenant(meta.multi_tenant, tenant, meta.name)
        if not wanted:
            return
        coll = self._collection(cls, meta, tenant)
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = [object_uuid(i) for i in wanted[start : start + _ID_CHUNK]]
            self._tenant_read(
                f"deleting from {meta.name!r}",
                meta,
                cls,
                tenant,
                functools.partial(coll.data.delete_many, where=Filter.by_id().contains_any(chunk)),
                None,
            )

    # ---------------------------------------------------------------------------- reading
    def get(
        self,
        name: str,
        ids: Sequence[str],
        *,
        tenant: str | None = None,
        include_vectors: bool = True,
    ) -> list[VectorRecord]:
        """The records that exist among ``ids``, in the order of ``ids``."""
        from weaviate.classes.query import Filter

        cls, meta = self._meta(name)
        wanted = normalize_ids(ids)
        tenant = check_tenant(meta.multi_tenant, tenant, meta.name)
        if not wanted:
            return []
        coll = self._collection(cls, meta, tenant)
        found: dict[str, VectorRecord] = {}
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            uuids = [object_uuid(i) for i in chunk]
            result = self._tenant_read(
                f"reading from {meta.name!r}",
                meta,
                cls,
                tenant,
                functools.partial(
                    coll.query.fetch_objects,
                    filters=Filter.by_id().contains_any(uuids),
                    limit=len(uuids),
                    include_vector=include_vectors,
                    return_properties=RETURN_PROPERTIES,
                ),
                None,
            )
            for obj in getattr(result, "objects", None) or ():
                rec = to_record(obj, tenant, include_vectors)
                found[rec.id] = rec
        return [found[i] for i in wanted if i in found]

    def count(
        self, name: str, *, filter: Mapping[str, Any] | None = None, tenant: str | None = None
    ) -> int:
        """Number of records (of ``tenant``) matching ``filter``."""
        cls, meta = self._meta(name)
        tenant = check_tenant(meta.multi_tenant, tenant, meta.name)
        meta, flt = self._filter(cls, meta, filter)
        coll = self._collection(cls, meta, tenant)
        return self._tenant_read(
            f"counting {meta.name!r}", meta, cls, tenant, lambda: self._count(coll, flt), 0
        )

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
        """Dense, keyword (BM25) or native hybrid search (see the module docstring)."""
        resolved = resolve_mode(vector, text, mode, self._caps)
        k = check_k(k)
        weight = check_alpha(alpha) if resolved == "hybrid" else 1.0
        cls, meta = self._meta(name)
        tenant = check_tenant(meta.multi_tenant, tenant, meta.name)
        qv = query_vector(vector, meta.dim).tolist() if resolved != "keyword" else None
        meta, flt = self._filter(cls, meta, filter)
        if flt is FALSE:
            return []
        coll = self._collection(cls, meta, tenant)
        common: dict[str, Any] = {
            "limit": k,
            "filters": None if flt is TRUE else flt,
            "include_vector": include_vectors,
            "return_properties": RETURN_PROPERTIES,
        }
        if resolved == "hybrid" and weight in (0.0, 1.0):
            leg = "dense" if weight == 1.0 else "keyword"
            hits = self._run(leg, coll, meta, cls, tenant, qv, text, common, 0.0, include_vectors)
            scores = minmax([h.score for h in hits])
            return [h.model_copy(update={"score": s}) for h, s in zip(hits, scores, strict=True)]
        return self._run(
            resolved, coll, meta, cls, tenant, qv, text, common, weight, include_vectors
        )

    def _run(
        self,
        mode: str,
        coll: Any,
        meta: CollectionMeta,
        cls: str,
        tenant: str | None,
        qv: list[float] | None,
        text: str | None,
        common: dict[str, Any],
        alpha: float,
        include_vectors: bool,
    ) -> list[Hit]:
        from weaviate.classes.query import HybridFusion, MetadataQuery

        def query() -> Any:
            if mode == "dense":
                return coll.query.near_vector(
                    near_vector=qv,
                    target_vector=VECTOR,
                    return_metadata=MetadataQuery(distance=True),
                    **common,
                )
            if mode == "keyword":
                return coll.query.bm25(
                    query=text,
                    query_properties=[TEXT_PROPERTY],
                    return_metadata=MetadataQuery(score=True),
                    **common,
                )
            return coll.query.hybrid(
                query=text,
                vector=qv,
                alpha=alpha,
                fusion_type=HybridFusion.RELATIVE_SCORE,
                query_properties=[TEXT_PROPERTY],
                target_vector=VECTOR,
                return_metadata=MetadataQuery(score=True),
                **common,
            )

        result = self._tenant_read(f"searching {meta.name!r}", meta, cls, tenant, query, None)
        objects = getattr(result, "objects", None) or []
        if mode == "dense":
            hits = [dense_hit(o, meta.metric, tenant, include_vectors) for o in objects]
        elif mode == "keyword":
            hits = [keyword_hit(o, tenant, include_vectors) for o in objects]
        else:
            hits = [hybrid_hit(o, tenant, include_vectors) for o in objects]
        hits.sort(key=lambda h: -h.score)
        return hits

    def scan(
        self,
        name: str,
        *,
        tenant: str | None = None,
        include_vectors: bool = False,
        batch_size: int = 1000,
    ) -> Iterator[list[VectorRecord]]:
        """Every record (of ``tenant``), once, in batches of at most ``batch_size``, with
        Weaviate's cursor API. Arguments and the collection are checked at once."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
        cls, meta = self._meta(name)
        tenant = check_tenant(meta.multi_tenant, tenant, meta.name)
        coll = self._collection(cls, meta, tenant)
        if meta.multi_tenant and tenant is not None and not self._tenant_exists(cls, tenant):
            return iter(())
        return self._scan(coll, meta, tenant, include_vectors, batch_size)

    def _scan(
        self, coll: Any, meta: CollectionMeta, tenant: str | None, include_vectors: bool, size: int
    ) -> Iterator[list[VectorRecord]]:
        if self._closed:
            raise Unavailable("the Weaviate vector store is closed")
        batch: list[VectorRecord] = []
        try:
            for obj in coll.iterator(
                include_vector=include_vectors,
                return_properties=RETURN_PROPERTIES,
                cache_size=min(size, 10_000),
            ):
                batch.append(to_record(obj, tenant, include_vectors))
                if len(batch) >= size:
                    yield batch
                    batch = []
        except StrataError:
            raise
        except Exception as exc:  # every client failure becomes a strataml error
            raise translate(exc, f"scanning {meta.name!r}", self._secrets) from exc
        if batch:
            yield batch

    def scan_metadata(
        self,
        name: str,
        fields: Sequence[str],
        *,
        tenant: str | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[pa.RecordBatch]:
        """Every record's id and the metadata ``fields``, column-wise (see
        :meth:`~strataml.protocols.VectorStore.scan_metadata`): the cursor of :meth:`scan`
        (no vectors), each page converted to one Arrow batch. Arguments, the collection and
        the fields' types are checked at once."""
        names = check_fields(fields)
        batch_size = check_batch_size(batch_size)
        _, meta = self._meta(name)
        schema = metadata_schema(names, meta.fields)
        records = self.scan(name, tenant=tenant, batch_size=batch_size)
        return batches_from_records(records, schema)

    # ----------------------------------------------------------------------------- aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` (created, or repointed atomically by Weaviate).

        Errors: :class:`NotFound` (no such collection, or it is an alias), :class:`Conflict`
        (a collection has the alias's name), :class:`InvalidInput` (bad names),
        :class:`Unsupported` (Weaviate before 1.32)."""
        a_cls = self._cls("alias", alias)
        t_cls = self._cls("collection", collection)
        aliases = self._alias_map()
        if t_cls in aliases:
            raise NotFound(f"{collection!r} is an alias; point {alias!r} at a collection")
        if self._load(t_cls) is None:
            raise NotFound(f"collection {collection!r} does not exist")
        if a_cls not in aliases and self._call(
            "checking names", lambda: self._client.collections.exists(a_cls)
        ):
            raise Conflict(f"{alias!r} is a collection; an alias cannot take its name")
        if a_cls in aliases:
            self._call(
                f"repointing alias {alias!r}",
                lambda: self._client.alias.update(alias_name=a_cls, new_target_collection=t_cls),
            )
        else:
            self._call(
                f"creating alias {alias!r}",
                lambda: self._client.alias.create(alias_name=a_cls, target_collection=t_cls),
            )
        self._forget(a_cls)

    def drop_alias(self, alias: str) -> None:
        """Remove an alias (no error if it does not exist); its collection is untouched."""
        a_cls = self._cls("alias", alias)
        if a_cls in self._alias_map():
            self._call(
                f"dropping alias {alias!r}", lambda: self._client.alias.delete(alias_name=a_cls)
            )
        self._forget(a_cls)

    def aliases(self) -> dict[str, str]:
        """Every alias under this store's prefix and the collection it points at."""
        out: dict[str, str] = {}
        for a_cls, t_cls in self._alias_map().items():
            alias, target = decode_class(self._prefix, a_cls), decode_class(self._prefix, t_cls)
            if alias is not None and target is not None:
                out[alias] = target
        return dict(sorted(out.items()))

    # ------------------------------------------------------------------------------ health
    def stats(self, name: str) -> CollectionStats:
        """Count, index settings and indexing queue (``deleted`` is ``None``: Weaviate does
        not report tombstones)."""
        cls, meta = self._meta(name)
        count = self._total(cls, meta)
        config = self._call(
            f"reading {meta.name!r}", lambda: self._client.collections.use(meta.cls).config.get()
        )
        params = _index_params(config)
        nodes = self._call(
            f"reading the shards of {meta.name!r}",
            lambda: self._client.cluster.nodes(collection=meta.cls, output="verbose"),
        )
        shards = [s for node in nodes for s in (getattr(node, "shards", None) or ())]
        queued = sum(int(getattr(s, "vector_queue_length", 0) or 0) for s in shards)
        details = {
            "shards": len(shards),
            "vector_queue_length": queued,
            "indexing_status": sorted(
                {str(getattr(s, "vector_indexing_status", "")) for s in shards} - {""}
            ),
            "objects_in_shards": sum(int(getattr(s, "object_count", 0) or 0) for s in shards),
        }
        return CollectionStats.of(
            meta.name,
            count,
            None,
            index_type="hnsw",
            index_params=params,
            indexed=max(0, count - queued),
            details=details,
        )

    def optimize(self, name: str) -> CollectionStats:
        """Nothing to do: Weaviate compacts its LSM segments and cleans HNSW tombstones in the
        background (every ``cleanupIntervalSeconds``) and has no API to force it; searches are
        served throughout. Returns :meth:`stats`."""
        return self.stats(name)

    def close(self) -> None:
        """Stop serving calls (later ones raise :class:`Unavailable`); the client is closed
        only if this store owns it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - closing anyway
                pass

    def __repr__(self) -> str:
        return f"<WeaviateVectorStore prefix={self._prefix!r}>"


def _index_params(config: Any) -> dict[str, Any]:
    vectors = getattr(config, "vector_config", None) or {}
    named = vectors.get(VECTOR) if isinstance(vectors, Mapping) else None
    index = getattr(named, "vector_index_config", None) or getattr(
        config, "vector_index_config", None
    )
    out: dict[str, Any] = {}
    for attr, key in (
        ("ef", "ef"),
        ("ef_construction", "ef_construction"),
        ("max_connections", "m"),
        ("distance_metric", "distance"),
        ("cleanup_interval_seconds", "cleanup_interval_seconds"),
        ("flat_search_cutoff", "flat_search_cutoff"),
    ):
        value = getattr(index, attr, None)
        if value is not None:
            out[key] = getattr(value, "value", value)
    return out
