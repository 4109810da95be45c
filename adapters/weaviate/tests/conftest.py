"""Weaviate stores for the tests.

No Weaviate server can run on the development machine (``connect_to_embedded`` downloads a
binary at run time, and no registry ships one), so the contract suite runs only when
``STRATAML_TEST_WEAVIATE_URL`` names a real server (>= 1.32 for aliases), e.g.
``http://127.0.0.1:8080``; ``STRATAML_TEST_WEAVIATE_GRPC_PORT`` (default 50051) and
``STRATAML_TEST_WEAVIATE_API_KEY`` complete it. Each test gets its own collection prefix (an
empty, isolated store on a shared server); what it creates is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

SERVER_ENV = "STRATAML_TEST_WEAVIATE_URL"
SERVER_URL = os.environ.get(SERVER_ENV, "").strip()
GRPC_PORT = int(os.environ.get("STRATAML_TEST_WEAVIATE_GRPC_PORT", "50051"))
API_KEY = os.environ.get("STRATAML_TEST_WEAVIATE_API_KEY") or None
SKIP_REASON = (
    f"no Weaviate server: set {SERVER_ENV}=http://HOST:8080 (and "
    "STRATAML_TEST_WEAVIATE_GRPC_PORT if gRPC is not on 50051) to run the contract suite"
)


def _cleanup(store: Any) -> None:
    for alias in store.aliases():
        store.drop_alias(alias)
    for name in store.collections():
        store.drop_collection(name)


@pytest.fixture
def weaviate_store() -> Iterator[Callable[..., Any]]:
    """``weaviate_store(**settings)`` -> a store on the test server under a fresh collection
    prefix; emptied and closed after the test."""
    from strataml_weaviate.config import WeaviateConfig
    from strataml_weaviate.vectors import WeaviateVectorStore

    made: list[Any] = []

    def make(**settings: Any) -> Any:
        if not SERVER_URL:
            pytest.skip(SKIP_REASON)
        settings.setdefault("collection_prefix", f"T{uuid.uuid4().hex[:12]}")
        config = WeaviateConfig(
            type="weaviate", url=SERVER_URL, grpc_port=GRPC_PORT, api_key=API_KEY, **settings
        )
        store = WeaviateVectorStore.from_config(config)
        made.append(store)
        return store

    yield make
    for store in made:
        try:
            _cleanup(store)
        finally:
            store.close()
