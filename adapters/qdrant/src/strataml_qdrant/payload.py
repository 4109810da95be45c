"""How a strataml record is stored as a Qdrant point, and read back.

=================  ==========================================================================
point part         content
=================  ==========================================================================
id                 ``uuid5(NAMESPACE, id)``; in multi-tenant collections
                   ``uuid5(NAMESPACE, f"{len(tenant)}:{tenant}:{id}")`` (ids are unique per
                   tenant, and a point of one tenant cannot be addressed with another's)
vector ``dense``   the embedding (Qdrant normalises it for ``cosine``: the original norm is
                   kept in the payload and restored on read)
vector ``bm25``    the BM25 term weights of ``text`` (:mod:`strataml_qdrant.bm25`), absent
                   when the record has no text
payload ``id``     the strataml id (a string)
payload ``tenant`` the tenant (multi-tenant collections; keyword index with ``is_tenant``)
payload ``text``   the text
payload ``norm``   the vector's Euclidean norm (``cosine`` collections)
payload
``metadata``       the metadata fields, typed as below
=================  ==========================================================================

==================  ========================================================================
field type          stored as
==================  ========================================================================
string, bool        JSON string, boolean
int, float          JSON number (a float field keeps the ints written into it as ints)
timestamp           RFC 3339 string in UTC, microseconds: ``2024-05-01T12:00:00.000000Z``
date                RFC 3339 midnight UTC: ``2024-05-01T00:00:00Z`` (Qdrant's datetime
                    ranges then compare dates and timestamps as instants)
list                JSON text (lists are stored and returned, never filtered)
==================  ========================================================================

Upserts are split into requests by rows and by an upper bound of their encoded size
(:func:`split_by_size`); a single point over the request limit raises
:class:`~strataml.errors.LimitExceeded` before anything is written.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import orjson

from strataml.errors import InvalidInput, LimitExceeded
from strataml.filters import FieldType
from strataml.models import VectorRecord
from strataml.vectors.batch import VectorBatch
from strataml_qdrant.bm25 import Bm25Params

__all__ = [
    "DENSE",
    "ID_KEY",
    "META_KEY",
    "NAMESPACE",
    "NORM_KEY",
    "SPARSE",
    "TENANT_KEY",
    "TEXT_KEY",
    "decode_metadata",
    "encode_value",
    "meta_key",
    "point_id",
    "split_by_size",
]

DENSE: Final = "dense"
SPARSE: Final = "bm25"
ID_KEY: Final = "id"
TENANT_KEY: Final = "tenant"
TEXT_KEY: Final = "text"
META_KEY: Final = "metadata"
NORM_KEY: Final = "norm"
#: The UUID namespace of strataml point ids (``uuid5(NAMESPACE_URL, "strataml:qdrant")``).
NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "strataml:qdrant")
#: Upper bounds of the JSON size of one float and one sparse term (``-1.2345678901234567e-05,``)
_FLOAT_BYTES: Final = 26
_TERM_BYTES: Final = 40
_POINT_OVERHEAD: Final = 160


def meta_key(field: str) -> str:
    """The payload key of a metadata field (``metadata.<field>``)."""
    return f"{META_KEY}.{field}"


def point_id(rid: str, tenant: str | None) -> str:
    """The point id (a UUID string) of a record id, within its tenant."""
    name = rid if tenant is None else f"{len(tenant)}:{tenant}:{rid}"
    try:
        return str(uuid.uuid5(NAMESPACE, name))
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"id {rid!r} (tenant {tenant!r}) is not valid Unicode text") from exc


# ------------------------------------------------------------------------------------ values
def _rfc3339(value: dt.datetime) -> str:
    # isoformat, not strftime: glibc's %Y does not pad years before 1000 ("1-01-01T..."),
    # which Qdrant (and fromisoformat) cannot parse
    utc = value.astimezone(dt.UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def encode_value(value: Any) -> Any:
    """A normalised metadata value (from :func:`~strataml.vectors.batch.prepare_batch`) as JSON."""
    if isinstance(value, dt.datetime):
        return _rfc3339(value)
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return value


def _decode_value(value: Any, ftype: FieldType | None) -> Any:
    if isinstance(value, str):
        if ftype is FieldType.TIMESTAMP:
            parsed = dt.datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        if ftype is FieldType.DATE:
            return dt.date.fromisoformat(value[:10])
        if ftype is FieldType.LIST:
            return orjson.loads(value)
    return value


def decode_metadata(stored: Any, fields: Mapping[str, FieldType]) -> dict[str, Any]:
    """A point's ``metadata`` payload back to Python values (timestamps aware UTC)."""
    if not isinstance(stored, Mapping):
        return {}
    return {k: _decode_value(v, fields.get(k)) for k, v in stored.items() if v is not None}


# ------------------------------------------------------------------------------------ points
def build_points(
    batch: VectorBatch, *, metric: str, multi_tenant: bool, bm25: Bm25Params
) -> tuple[list[Any], list[int]]:
    """The batch as ``PointStruct`` objects, with an upper bound of each one's request bytes.

    Raises :class:`InvalidInput` for text the JSON encoder refuses (lone surrogates).
    """
    from qdrant_client.http import models

    rows: list[list[float]] = batch.vectors.tolist()
    norms = (
        np.linalg.norm(batch.vectors.astype(np.float64), axis=1).tolist()
        if metric == "cosine"
        else None
    )
    dim = batch.vectors.shape[1]
    points: list[Any] = []
    sizes: list[int] = []
    for i, rid in enumerate(batch.ids):
        tenant = batch.tenants[i]
        text = batch.texts[i]
        payload: dict[str, Any] = {ID_KEY: rid}
        if multi_tenant:
            payload[TENANT_KEY] = tenant
        if text is not None:
            payload[TEXT_KEY] = text
        if norms is not None:
            payload[NORM_KEY] = norms[i]
        meta = batch.metadata[i]
        if meta:
            payload[META_KEY] = {k: encode_value(v) for k, v in meta.items()}
        try:
            payload_bytes = len(orjson.dumps(payload))
        except orjson.JSONEncodeError as exc:
            raise InvalidInput(f"record id {rid!r}: {exc}") from exc
        vector: dict[str, Any] = {DENSE: rows[i]}
        terms = bm25.document(text)
        nnz = 0
        if terms is not None:
            vector[SPARSE] = models.SparseVector(indices=terms[0], values=terms[1])
            nnz = len(terms[0])
        points.append(models.PointStruct(id=point_id(rid, tenant), vector=vector, payload=payload))
        sizes.append(_POINT_OVERHEAD + payload_bytes + dim * _FLOAT_BYTES + nnz * _TERM_BYTES)
    return points, sizes


def _exact_size(point: Any) -> int:
    """The JSON size of one point as the REST client sends it (used only near the limit)."""
    return len(orjson.dumps(point.model_dump(mode="json", exclude_none=True)))


def split_by_size(
    points: Sequence[Any], sizes: Sequence[int], *, max_rows: int, max_bytes: int
) -> list[list[Any]]:
    """Group points into requests of at most ``max_rows`` points and ``max_bytes`` bytes.

    Raises :class:`LimitExceeded` if one point alone exceeds ``max_bytes`` -- checked for
    every point before any request is sent.
    """
    budget = max_bytes - 1024  # the request's own envelope
    exact = list(sizes)
    for i, size in enumerate(sizes):
        if size > budget:
            exact[i] = _exact_size(points[i])
            if exact[i] > budget:
                rid = (points[i].payload or {}).get(ID_KEY)
                raise LimitExceeded(
                    f"record id {rid!r} is about {exact[i]:,} bytes encoded; a Qdrant request "
                    f"is limited to {max_bytes:,} bytes (max_batch_bytes / the server's "
                    "max_request_size_mb): shorten its text or metadata"
                )
    out: list[list[Any]] = []
    current: list[Any] = []
    used = 0
    for point, size in zip(points, exact, strict=True):
        if current and (len(current) >= max_rows or used + size > budget):
            out.append(current)
            current, used = [], 0
        current.append(point)
        used += size
    if current:
        out.append(current)
    return out


def record_from(
    point: Any,
    *,
    fields: Mapping[str, FieldType],
    include_vectors: bool,
) -> VectorRecord:
    """A stored point (``Record`` or ``ScoredPoint``) as a :class:`VectorRecord` (built without
    re-validation: every part comes from a payload this store wrote)."""
    payload = point.payload or {}
    vector = None
    if include_vectors:
        vector = dense_of(point)
    return VectorRecord.model_construct(
        id=str(payload.get(ID_KEY, point.id)),
        vector=vector,
        text=payload.get(TEXT_KEY),
        metadata=decode_metadata(payload.get(META_KEY), fields),
        tenant=payload.get(TENANT_KEY),
    )


def dense_of(point: Any) -> list[float] | None:
    """The point's dense vector as written (the cosine norm restored), or ``None``."""
    raw = point.vector
    if isinstance(raw, Mapping):
        raw = raw.get(DENSE)
    if raw is None:
        return None
    norm = (point.payload or {}).get(NORM_KEY)
    if isinstance(norm, int | float) and not isinstance(norm, bool):
        restored: list[float] = (np.asarray(raw, dtype=np.float64) * float(norm)).tolist()
        return restored
    return [float(x) for x in raw]
