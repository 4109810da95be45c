"""The ingest and online contract suites on a real DynamoDB emulator (moto's server)."""

from __future__ import annotations

import pytest

from strataml.testing import AsyncOnlineStoreTests, IngestStoreTests, OnlineStoreTests
from strataml_dynamodb.ingest import DynamoDBIngestStore
from strataml_dynamodb.online import DynamoDBOnlineStore


class TestDynamoDBIngestContract(IngestStoreTests):
    @pytest.fixture
    def ingest_store(self, ingest: DynamoDBIngestStore) -> DynamoDBIngestStore:
        return ingest


class TestDynamoDBOnlineContract(OnlineStoreTests):
    @pytest.fixture
    def online_store(self, shared_online: DynamoDBOnlineStore) -> DynamoDBOnlineStore:
        return shared_online


class TestDynamoDBAsyncOnlineContract(AsyncOnlineStoreTests):
    """Through :class:`strataml.aio.AsyncOnlineAdapter` (worker threads), as the stack does."""

    @pytest.fixture
    def online_store(self, shared_online: DynamoDBOnlineStore) -> DynamoDBOnlineStore:
        return shared_online
