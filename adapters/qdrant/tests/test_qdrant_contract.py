"""The VectorStore and AsyncVectorStore contract suites on Qdrant: local mode always, a real
server when ``STRATAML_TEST_QDRANT_URL`` is set (see conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from strataml.testing.vectors import AsyncVectorStoreTests, VectorStoreTests
from strataml_qdrant.aio import AsyncQdrantVectorStore
from strataml_qdrant.config import QdrantConfig
from strataml_qdrant.store import QdrantVectorStore

from .conftest import SKIP_SERVER, Factory, async_twin

Pair = tuple[QdrantVectorStore, QdrantConfig]


class TestQdrantLocalContract(VectorStoreTests):
    """Every VectorStore contract test on qdrant-client's embedded local mode."""

    @pytest.fixture
    def vector_store(self, make_store: Factory) -> QdrantVectorStore:
        return make_store()[0]


class _AsyncContract(AsyncVectorStoreTests):
    """The async contract on the native asyncio store, reaching the synchronous store's data
    (which creates the collections)."""

    @pytest.fixture
    def vector_store(self, pair: Pair) -> QdrantVectorStore:
        return pair[0]

    @pytest.fixture
    def async_vector_store(self, pair: Pair) -> Iterator[AsyncQdrantVectorStore]:
        store = async_twin(*pair)
        yield store
        asyncio.run(store.aclose())


class TestQdrantLocalAsyncContract(_AsyncContract):
    """Local mode: the asyncio store's calls run in a worker thread on the same local client."""

    @pytest.fixture
    def pair(self, make_store: Factory) -> Pair:
        return make_store()


@SKIP_SERVER
class TestQdrantServerContract(VectorStoreTests):
    """Every VectorStore contract test on a real Qdrant server."""

    @pytest.fixture
    def vector_store(self, make_store: Factory) -> QdrantVectorStore:
        return make_store(server=True)[0]


@SKIP_SERVER
class TestQdrantServerAsyncContract(_AsyncContract):
    """The async contract on ``AsyncQdrantClient`` against the server."""

    @pytest.fixture
    def pair(self, make_store: Factory) -> Pair:
        return make_store(server=True)
