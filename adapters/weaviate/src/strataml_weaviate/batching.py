"""Splitting an upsert into Weaviate batch requests, checked before anything is sent.

An upsert is validated completely first (:func:`strataml.vectors.batch.prepare_batch`), then its
objects are grouped by tenant and cut into requests of at most ``batch_size`` objects and
``max_request_bytes`` (estimated from the vector and the properties, with a margin for the
protobuf framing). A single object over ``max_request_bytes`` raises :class:`LimitExceeded`
before the first request is sent. Weaviate has no multi-request transactions: if the server
fails part-way through a multi-request upsert the earlier requests stay written (upserts are
idempotent: retrying the whole call converges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from strataml.errors import InvalidInput, LimitExceeded
from strataml.vectors.batch import VectorBatch

__all__ = ["check_text", "estimate_bytes", "plan_requests"]

#: Protobuf framing and the object's UUID, per object (generous).
OBJECT_OVERHEAD: Final = 128


def estimate_bytes(dim: int, properties: Mapping[str, Any]) -> int:
    """An upper estimate of one object's size in a gRPC batch request."""
    size = OBJECT_OVERHEAD + 4 * dim
    for key, value in properties.items():
        size += len(key) + 8
        if isinstance(value, str):
            size += len(value.encode("utf-8"))
        else:
            size += 16
    return size


def plan_requests(
    groups: Sequence[tuple[str | None, Sequence[int]]],
    sizes: Sequence[int],
    *,
    batch_size: int,
    max_bytes: int,
) -> list[tuple[str | None, list[int]]]:
    """Cut each ``(tenant, object indexes)`` group into requests: ``[(tenant, indexes)]``.

    Raises :class:`LimitExceeded` (before anything is sent) for an object over ``max_bytes``.
    """
    out: list[tuple[str | None, list[int]]] = []
    for tenant, indexes in groups:
        current: list[int] = []
        current_bytes = 0
        for i in indexes:
            size = sizes[i]
            if size > max_bytes:
                raise LimitExceeded(
                    f"a record of about {size} bytes is over the request limit of {max_bytes} "
                    "bytes (max_request_bytes; the server's GRPC_MAX_MESSAGE_SIZE): shrink its "
                    "text or metadata"
                )
            if current and (len(current) >= batch_size or current_bytes + size > max_bytes):
                out.append((tenant, current))
                current, current_bytes = [], 0
            current.append(i)
            current_bytes += size
        if current:
            out.append((tenant, current))
    return out


def _utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what}: not valid Unicode text ({exc.reason})") from exc


def check_text(batch: VectorBatch) -> None:
    """Every string of the batch can be sent (valid UTF-8: no lone surrogates)."""
    for i, rid in enumerate(batch.ids):
        where = f"record id {rid!r}"
        _utf8(rid, where)
        tenant, text = batch.tenants[i], batch.texts[i]
        if tenant is not None:
            _utf8(tenant, f"{where}: tenant")
        if text is not None:
            _utf8(text, f"{where}: text")
        for key, value in batch.metadata[i].items():
            for item in value if isinstance(value, list) else (value,):
                if isinstance(item, str):
                    _utf8(item, f"{where}: metadata.{key}")
