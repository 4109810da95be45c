"""Amazon DynamoDB adapters for strataml (boto3): the ``dynamodb`` backend type.

======  ==============================================================================
role    how
======  ==============================================================================
ingest  tables ``<prefix>ingest`` (heads, record pages) and ``<prefix>ingest_keys``
        (idempotency keys): a head item per stream serializes commits (conditional
        writes); records are packed into pages of up to 256; small batches are one
        ``TransactWriteItems``, large ones reserve their positions under a lease,
        ``BatchWriteItem`` the pages and key items and commit with one conditional update.
        Reads are strongly consistent queries of the pages, in commit order.
online  table ``<prefix>online``: one item per (view, entity), msgpack features,
        ``GetItem`` / ``BatchGetItem`` (pages of 100) reads, ``BatchWriteItem`` writes,
        TTL checked on read and set as DynamoDB's TTL attribute.
======  ==============================================================================

See :mod:`strataml_dynamodb.layout` for the items, :mod:`strataml_dynamodb.pages` for the
pages and :mod:`strataml_dynamodb.commit` for the commit protocol. ``import strataml_dynamodb``
does not import boto3: the stores do.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.registry import Adapter, StackContext
from strataml_dynamodb.config import DynamoDBConfig

__all__ = [
    "DYNAMODB",
    "INGEST_CAPS",
    "MAX_RECORD_BYTES",
    "ONLINE_CAPS",
    "DynamoDBConfig",
    "DynamoDBIngestStore",
    "DynamoDBOnlineStore",
]

#: A record's JSON (ingest) or a row's encoded features (online): DynamoDB items hold 400 KB
#: (409 600 bytes) with their keys and attribute names, so 400 000 bytes always fit.
MAX_RECORD_BYTES = 400_000

INGEST_CAPS = Capabilities(
    filter_ops=frozenset(),
    dense=False,
    transactions=True,
    max_batch_rows=10_000,
    max_record_bytes=MAX_RECORD_BYTES,
)

ONLINE_CAPS = Capabilities(
    filter_ops=frozenset(),
    dense=False,
    ttl=True,
    async_api=True,
    transactions=False,
    max_record_bytes=MAX_RECORD_BYTES,
)


def _ingest(config: DynamoDBConfig, ctx: StackContext) -> Any:
    from strataml_dynamodb.ingest import DynamoDBIngestStore

    return DynamoDBIngestStore.from_config(config)


def _online(config: DynamoDBConfig, ctx: StackContext) -> Any:
    from strataml_dynamodb.online import DynamoDBOnlineStore

    return DynamoDBOnlineStore.from_config(config)


DYNAMODB = Adapter(
    name="dynamodb",
    package="strataml-dynamodb",
    config=DynamoDBConfig,
    factories={"ingest": _ingest, "online": _online},
    capabilities={"ingest": INGEST_CAPS, "online": ONLINE_CAPS},
)


def __getattr__(name: str) -> Any:
    # the store classes import boto3: load them only when asked for
    if name == "DynamoDBIngestStore":
        from strataml_dynamodb.ingest import DynamoDBIngestStore

        return DynamoDBIngestStore
    if name == "DynamoDBOnlineStore":
        from strataml_dynamodb.online import DynamoDBOnlineStore

        return DynamoDBOnlineStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
