"""Weaviate vector-store adapter for strataml (weaviate-client v4).

=========  =======  ==========================================================================
type       roles    how
=========  =======  ==========================================================================
weaviate   vectors  one Weaviate collection per strataml collection: HNSW dense search (cosine,
                    l2, dot), BM25 keyword search, native hybrid (``alpha``, relative-score
                    fusion), filters as ``Filter`` expressions, native multi-tenancy, native
                    collection aliases (Weaviate >= 1.32); async through a worker thread
=========  =======  ==========================================================================

``import strataml_weaviate`` does not import weaviate-client: the store loads it when built.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.filters import ALL_OPS
from strataml.registry import Adapter, StackContext
from strataml_weaviate.config import WeaviateConfig

__all__ = ["ADAPTER", "VECTORS_CAPS", "WEAVIATE", "WeaviateConfig", "shared_client"]

#: Every filter operator (``$not`` is pushed to the leaves, see strataml_weaviate.filters);
#: up to 65,535 dimensions; upserts of at most 100k records, sent in bounded requests.
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
    max_batch_rows=100_000,
    max_dim=65_535,
)


def shared_client(config: WeaviateConfig, ctx: StackContext) -> Any:
    """The stack's connected client for this server."""
    from strataml_weaviate.vectors import make_client

    api_key = config.api_key.get_secret_value() if config.api_key else None
    key = ("weaviate", config.url.get_secret_value(), config.grpc_port, api_key)
    return ctx.shared(key, lambda: make_client(config), lambda client: client.close())


def _store(config: WeaviateConfig, ctx: StackContext) -> Any:
    from strataml_weaviate.schema import IndexSettings
    from strataml_weaviate.vectors import WeaviateVectorStore, _secrets

    return WeaviateVectorStore(
        shared_client(config, ctx),
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
        owns_client=False,
        secrets=_secrets(config),
    )


def _async_store(config: WeaviateConfig, ctx: StackContext) -> Any:
    from strataml.aio import AsyncVectorAdapter

    return AsyncVectorAdapter(_store(config, ctx))


WEAVIATE = Adapter(
    name="weaviate",
    package="strataml-weaviate",
    config=WeaviateConfig,
    factories={"vectors": _store},
    async_factories={"vectors": _async_store},
    capabilities={"vectors": VECTORS_CAPS},
)
ADAPTER = WEAVIATE


def __getattr__(name: str) -> Any:
    if name == "WeaviateVectorStore":  # imports weaviate-client: only on demand
        from strataml_weaviate.vectors import WeaviateVectorStore

        return WeaviateVectorStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
