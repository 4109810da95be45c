"""The VectorStore and AsyncVectorStore contract suites against a real Weaviate server.

Runs only when ``STRATAML_TEST_WEAVIATE_URL`` is set (see ``conftest.py``): no Weaviate server
can be installed on the development machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from strataml.testing import AsyncVectorStoreTests, VectorStoreTests

from .conftest import SERVER_URL, SKIP_REASON

pytestmark = pytest.mark.skipif(not SERVER_URL, reason=SKIP_REASON)


class TestWeaviateContract(VectorStoreTests):
    """Every VectorStore contract test."""

    @pytest.fixture
    def vector_store(self, weaviate_store: Callable[..., Any]) -> Any:
        return weaviate_store()


class TestWeaviateAsyncContract(AsyncVectorStoreTests):
    """The async contract (the adapter's async factory: the store in a worker thread)."""

    @pytest.fixture
    def vector_store(self, weaviate_store: Callable[..., Any]) -> Any:
        return weaviate_store()


def test_names_that_weaviate_rejects_are_mapped(weaviate_store: Callable[..., Any]) -> None:
    """Hyphens, case and long names (collections), arbitrary tenants: all usable."""
    store = weaviate_store()
    names = ["with-hyphen", "Case", "case", "_lead", "x" * 128, "Y-" * 64]
    for name in names:
        store.create_collection(name, 4, multi_tenant=True)
    assert sorted(names) == store.collections()
    tenants = ["acme", "ACME", "o'reilly", "back\\slash", "ünï", "t" * 200]
    for i, tenant in enumerate(tenants):
        store.upsert("Case", [{"id": "a", "vector": [float(i), 1, 0, 0], "tenant": tenant}])
    for i, tenant in enumerate(tenants):
        (rec,) = store.get("Case", ["a"], tenant=tenant)
        assert rec.vector[0] == pytest.approx(float(i))
        assert store.count("case", tenant=tenant) == 0
