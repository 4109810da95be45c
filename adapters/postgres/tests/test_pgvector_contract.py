"""The VectorStore contract suite against a real PostgreSQL 18 + pgvector (started by conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from strataml.testing.vectors import AsyncVectorStoreTests, VectorStoreTests
from strataml_postgres.vectors import PgVectorStore


@pytest.fixture
def vector_store(pg_db: Any) -> Iterator[PgVectorStore]:
    store = PgVectorStore(pg_db)
    yield store
    store.close()


class TestPgVectorContract(VectorStoreTests):
    """Every VectorStore contract test, on pgvector."""


class TestPgVectorAsyncContract(AsyncVectorStoreTests):
    """The async contract through strataml.aio.AsyncVectorAdapter (a worker thread per call)."""
