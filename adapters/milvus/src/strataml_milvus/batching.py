"""Upsert batches as Milvus rows, split into requests that respect Milvus's limits.

Milvus accepts at most 64 MiB per insert/upsert request. :func:`build_rows` turns a validated
:class:`~strataml.vectors.batch.VectorBatch` into rows (see :mod:`strataml_milvus.codec`) and
estimates each row's wire size; :func:`split_requests` groups them into requests of at most
``max_rows`` rows and ``max_bytes`` bytes. Everything that can be rejected is rejected here,
before the first request is sent: text longer than the text field's capacity, ids and tenants
longer than the key limits, a row that alone exceeds ``max_bytes``
(:class:`~strataml.errors.LimitExceeded`), text that is not valid Unicode
(:class:`~strataml.errors.InvalidInput`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from strataml.errors import InvalidInput, LimitExceeded
from strataml.vectors.batch import VectorBatch
from strataml_milvus.codec import encode_metadata, presence
from strataml_milvus.names import encode_key, encode_tenant

__all__ = ["Rows", "build_rows", "split_requests"]

#: Bytes of protocol framing counted per row on top of its fields.
ROW_OVERHEAD: Final = 64


@dataclass(frozen=True)
class Rows:
    """Milvus rows of one batch and their estimated wire sizes (same order)."""

    rows: list[dict[str, Any]]
    sizes: list[int]


def _utf8(value: str, what: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what}: not valid Unicode text ({exc.reason})") from exc


def build_rows(batch: VectorBatch, *, text_max_bytes: int, max_bytes: int) -> Rows:
    """Rows for ``batch``; raises before anything is written (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    sizes: list[int] = []
    vec_bytes = int(batch.vectors.shape[1]) * 4 if batch.vectors.ndim == 2 else 0
    vectors = batch.vectors
    for i, rid in enumerate(batch.ids):
        where = f"record id {rid[:60]!r}"
        tenant = batch.tenants[i]
        pk = encode_key(tenant, rid)
        text = batch.texts[i]
        text_len = 0
        if text is not None:
            text_len = len(_utf8(text, f"{where}: text"))
            if text_len > text_max_bytes:
                raise LimitExceeded(
                    f"{where}: text is {text_len} bytes; the text field holds at most "
                    f"{text_max_bytes} (Milvus VARCHAR)"
                )
        values = encode_metadata(batch.metadata[i])
        try:
            meta_len = len(orjson.dumps(values))
        except TypeError as exc:  # lone surrogates and the like
            raise InvalidInput(f"{where}: metadata is not valid JSON text: {exc}") from exc
        has = presence(values, text is not None)
        size = ROW_OVERHEAD + len(pk) * 2 + text_len + vec_bytes + meta_len + 8 * len(has) + 16
        if size > max_bytes:
            raise LimitExceeded(
                f"{where}: the record is about {size} bytes; a Milvus request holds at most "
                f"{max_bytes} (max_request_bytes), and one record cannot be split"
            )
        rows.append(
            {
                "pk": pk,
                "tkey": encode_tenant(tenant),
                "text": text if text is not None else "",
                "vector": vectors[i],
                "meta": values,
                "has": has,
            }
        )
        sizes.append(size)
    return Rows(rows, sizes)


def split_requests(
    rows: Sequence[dict[str, Any]], sizes: Sequence[int], *, max_rows: int, max_bytes: int
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive groups of ``rows`` of at most ``max_rows`` rows and ``max_bytes`` bytes
    (every single row is assumed to fit, as :func:`build_rows` guarantees)."""
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (i - start >= max_rows or total + size > max_bytes):
            yield list(rows[start:i])
            start, total = i, 0
        total += size
    if start < len(rows):
        yield list(rows[start:])
