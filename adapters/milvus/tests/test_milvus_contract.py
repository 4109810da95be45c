"""The VectorStore contract suite against Milvus Lite (started by conftest) or a real Milvus
server ($STRATAML_TEST_MILVUS_URL)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from strataml.testing.vectors import AsyncVectorStoreTests, VectorStoreTests
from strataml_milvus.aio import AsyncMilvusVectorStore
from strataml_milvus.vectors import MilvusVectorStore


class TestMilvusContract(VectorStoreTests):
    """Every VectorStore contract test, on Milvus."""

    @pytest.fixture
    def vector_store(self, shared_store: MilvusVectorStore) -> Any:
        return shared_store


class TestMilvusAsyncAdapterContract(AsyncVectorStoreTests):
    """The async contract through strataml.aio.AsyncVectorAdapter (a worker thread per call)."""

    @pytest.fixture
    def vector_store(self, shared_store: MilvusVectorStore) -> Any:
        return shared_store


class TestMilvusNativeAsyncContract(AsyncVectorStoreTests):
    """The async contract on the native store (pymilvus's AsyncMilvusClient)."""

    @pytest.fixture
    def vector_store(self, shared_store: MilvusVectorStore) -> Any:
        return shared_store

    @pytest.fixture
    def async_vector_store(self, shared_store: MilvusVectorStore) -> Iterator[Any]:
        store = AsyncMilvusVectorStore(shared_store)
        yield store
        asyncio.run(store.aclose())
