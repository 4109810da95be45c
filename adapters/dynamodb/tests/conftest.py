"""A real DynamoDB emulator (moto's server, serialized requests) started by the test setup itself
through :func:`strataml_dynamodb.devserver.start` (127.0.0.1, free port); no mocks. Every test
gets tables of its own (a unique ``table_prefix``), deleted afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strataml.dev.servers import ServerHandle, stop
from strataml_dynamodb import DynamoDBConfig
from strataml_dynamodb.client import make_client
from strataml_dynamodb.devserver import start
from strataml_dynamodb.ingest import DynamoDBIngestStore
from strataml_dynamodb.online import DynamoDBOnlineStore


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start(tmp_path_factory.mktemp("moto"))
    yield handle
    stop(handle)


@pytest.fixture(scope="session")
def admin(moto: ServerHandle) -> Iterator[Any]:
    """A raw boto3 client on the emulator (for cleanup and for looking behind the stores)."""
    client = make_client(DynamoDBConfig(endpoint_url=moto.url))
    yield client
    client.close()


@pytest.fixture
def make_config(moto: ServerHandle, admin: Any) -> Iterator[Callable[..., DynamoDBConfig]]:
    """``make_config(**overrides)``: settings for a table prefix of this test alone; the tables
    the test created are deleted afterwards."""
    made: list[DynamoDBConfig] = []

    def make(**kwargs: Any) -> DynamoDBConfig:
        kwargs.setdefault("endpoint_url", moto.url)
        kwargs.setdefault("table_prefix", f"t{uuid.uuid4().hex[:10]}_")
        kwargs.setdefault("max_retries", 3)
        kwargs.setdefault("connect_timeout_s", 2.0)
        kwargs.setdefault("read_timeout_s", 10.0)
        config = DynamoDBConfig(**kwargs)
        made.append(config)
        return config

    yield make
    for config in made:
        for table in (config.ingest_table, config.ingest_keys_table, config.online_table):
            try:
                admin.delete_table(TableName=table)
            except admin.exceptions.ResourceNotFoundException:
                pass


@pytest.fixture
def ingest(make_config: Callable[..., DynamoDBConfig]) -> Iterator[DynamoDBIngestStore]:
    """An empty ingest store on tables of its own."""
    store = DynamoDBIngestStore.from_config(make_config())
    yield store
    store.close()


@pytest.fixture
def online(make_config: Callable[..., DynamoDBConfig]) -> Iterator[DynamoDBOnlineStore]:
    """An empty online store on tables of its own."""
    store = DynamoDBOnlineStore.from_config(make_config())
    yield store
    store.close()


@pytest.fixture(scope="session")
def shared_online(moto: ServerHandle, admin: Any) -> Iterator[DynamoDBOnlineStore]:
    """One online store for the whole contract suite, as on a shared server: the suite names
    its views uniquely and drops them. (Not used for ingest: moto copies a whole table for every
    action of a transaction, which small ingest batches use, so ingest tests keep their tables
    small.)"""
    config = DynamoDBConfig(endpoint_url=moto.url, table_prefix="shared_", max_retries=3)
    store = DynamoDBOnlineStore.from_config(config)
    yield store
    store.close()
    admin.delete_table(TableName=config.online_table)
