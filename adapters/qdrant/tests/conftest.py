"""Qdrant stores for the tests: qdrant-client's embedded local mode always (a directory per
test), and a real server when ``STRATAML_TEST_QDRANT_URL`` is set (e.g.
``http://127.0.0.1:6333``; ``STRATAML_TEST_QDRANT_API_KEY`` for its key). No Qdrant server
binary is installable here, so the server runs are skipped unless that variable is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from strataml_qdrant.aio import AsyncQdrantVectorStore
from strataml_qdrant.clients import ThreadedAsyncClient, engine_settings, make_async_client
from strataml_qdrant.config import QdrantConfig
from strataml_qdrant.store import QdrantVectorStore

SERVER_ENV = "STRATAML_TEST_QDRANT_URL"
SERVER_URL = os.environ.get(SERVER_ENV, "").strip()
SKIP_SERVER = pytest.mark.skipif(
    not SERVER_URL,
    reason=f"no Qdrant server: set {SERVER_ENV}=http://HOST:6333 to run against one",
)

Factory = Callable[..., tuple[QdrantVectorStore, QdrantConfig]]


def local_config(path: Path, **kwargs: Any) -> QdrantConfig:
    return QdrantConfig(type="qdrant", path=path, **kwargs)


def server_config(**kwargs: Any) -> QdrantConfig:
    """A config with a collection prefix of its own (an empty, isolated store on a shared
    server)."""
    kwargs.setdefault("collection_prefix", f"t{uuid.uuid4().hex[:10]}_")
    api_key = os.environ.get("STRATAML_TEST_QDRANT_API_KEY") or None
    return QdrantConfig(type="qdrant", url=SERVER_URL, api_key=api_key, **kwargs)


def _cleanup(store: QdrantVectorStore) -> None:
    for alias in store.aliases():
        store.drop_alias(alias)
    for name in store.collections():
        store.drop_collection(name)


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Factory]:
    """``make_store(server=False, **config)`` -> ``(store, config)``; closed (and, on a server,
    emptied) after the test."""
    made: list[tuple[QdrantVectorStore, bool]] = []

    def make(server: bool = False, **kwargs: Any) -> tuple[QdrantVectorStore, QdrantConfig]:
        if server:
            config = server_config(**kwargs)
        else:
            config = local_config(tmp_path / f"q{len(made)}", **kwargs)
        store = QdrantVectorStore.from_config(config)
        made.append((store, server))
        return store, config

    yield make
    for store, server in made:
        if server:
            _cleanup(store)
        store.close()


def async_twin(store: QdrantVectorStore, config: QdrantConfig) -> AsyncQdrantVectorStore:
    """The native asyncio store reaching ``store``'s data: an ``AsyncQdrantClient`` on a
    server; in local mode the same local client, called from a worker thread."""
    settings = engine_settings(config)
    if config.local:
        return AsyncQdrantVectorStore(
            ThreadedAsyncClient(store._client), settings=settings, owns_client=False
        )
    return AsyncQdrantVectorStore(make_async_client(config), settings=settings)
