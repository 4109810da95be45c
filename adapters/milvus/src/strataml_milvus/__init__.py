"""Milvus vector-store adapter for strataml (pymilvus; Milvus servers and Milvus Lite).

======  =======  ==================================================================
type    roles    how
======  =======  ==================================================================
milvus  vectors  one Milvus collection per collection: dense index (AUTOINDEX, HNSW,
                 ...), BM25 function over the text for keyword search, hybrid by
                 fusing both legs, metadata in a JSON field filtered by compiled
                 boolean expressions, tenants in a partition-key field, native
                 aliases (a registry on Milvus Lite), compaction in ``optimize``
======  =======  ==================================================================

``import strataml_milvus`` does not import pymilvus; the store module does.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.filters import ALL_OPS
from strataml.registry import Adapter, StackContext
from strataml_milvus.config import MilvusConfig

__all__ = [
    "MILVUS",
    "VECTORS_CAPS",
    "AsyncMilvusVectorStore",
    "MilvusConfig",
    "MilvusVectorStore",
]

#: Milvus accepts 64 MiB per request: larger upserts are split, a larger record is refused.
VECTORS_CAPS = Capabilities(
    filter_ops=ALL_OPS,
    nested_fields=False,
    dense=True,
    keyword=True,
    hybrid=True,
    metrics=frozenset({"cosine", "l2", "dot"}),
    tenants=True,
    aliases=True,
    async_api=True,
    transactions=False,
    max_batch_rows=1_000_000,
    max_record_bytes=64 * 1024 * 1024,
    max_dim=32_768,
)


def _vectors(config: MilvusConfig, ctx: StackContext) -> Any:
    from strataml_milvus.vectors import MilvusVectorStore

    return MilvusVectorStore(config)


def _async_vectors(config: MilvusConfig, ctx: StackContext) -> Any:
    from strataml_milvus.aio import AsyncMilvusVectorStore

    return AsyncMilvusVectorStore.from_config(config)


MILVUS = Adapter(
    name="milvus",
    package="strataml-milvus",
    config=MilvusConfig,
    factories={"vectors": _vectors},
    async_factories={"vectors": _async_vectors},
    capabilities={"vectors": VECTORS_CAPS},
)


def __getattr__(name: str) -> Any:
    # the store imports pymilvus: load it only when asked for
    if name == "MilvusVectorStore":
        from strataml_milvus.vectors import MilvusVectorStore

        return MilvusVectorStore
    if name == "AsyncMilvusVectorStore":
        from strataml_milvus.aio import AsyncMilvusVectorStore

        return AsyncMilvusVectorStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
