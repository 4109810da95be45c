"""MongoDB ingest adapter for strataml (pymongo).

=========  ========  =========================================================================
type       roles     how
=========  ========  =========================================================================
mongodb    ingest    records as native BSON documents (JSON text when not BSON-safe) in one
                     collection; idempotency on a unique ``(stream, key)`` index; atomic,
                     commit-ordered batches (multi-document transactions on a replica set, a
                     staged-batch protocol on a standalone server); cursor reads by ``seq``
=========  ========  =========================================================================

``import strataml_mongodb`` does not import pymongo: the store loads it when built.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.registry import Adapter, StackContext
from strataml_mongodb.config import MongoDBConfig

__all__ = ["ADAPTER", "INGEST_CAPS", "MONGODB", "MongoDBConfig", "shared_client"]

#: Records are at most 16 MiB of JSON, less a margin for the envelope fields (MongoDB's document
#: limit is 16 MiB); batches of at most 100k records (one transaction each on a replica set).
INGEST_CAPS = Capabilities(
    filter_ops=frozenset(),
    dense=False,
    transactions=True,
    max_batch_rows=100_000,
    max_record_bytes=16 * 1024 * 1024 - 4096,
)


def shared_client(config: MongoDBConfig, ctx: StackContext) -> Any:
    """The stack's pymongo client for this URL (one connection pool per server)."""
    from strataml_mongodb.ingest import make_client

    key = ("mongodb", config.url.get_secret_value(), config.app_name)
    return ctx.shared(key, lambda: make_client(config), lambda client: client.close())


def _ingest(config: MongoDBConfig, ctx: StackContext) -> Any:
    from strataml_mongodb.ingest import MongoIngestStore

    return MongoIngestStore(
        shared_client(config, ctx),
        database=config.database,
        collection_prefix=config.collection_prefix,
        transactions=config.transactions,
        batch_timeout_s=config.batch_timeout_s,
        write_concern=config.write_concern,
        owns_client=False,
    )


MONGODB = Adapter(
    name="mongodb",
    package="strataml-mongodb",
    config=MongoDBConfig,
    factories={"ingest": _ingest},
    capabilities={"ingest": INGEST_CAPS},
)
ADAPTER = MONGODB


def __getattr__(name: str) -> Any:
    if name == "MongoIngestStore":  # imports pymongo: only on demand
        from strataml_mongodb.ingest import MongoIngestStore

        return MongoIngestStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
