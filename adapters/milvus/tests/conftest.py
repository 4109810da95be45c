"""Milvus for the adapter's tests: Milvus Lite started by the test setup itself (127.0.0.1, a
free port, through :mod:`strataml_milvus.devserver`), or a real server when
``STRATAML_TEST_MILVUS_URL`` is set (``STRATAML_TEST_MILVUS_TOKEN`` for its token). One
session-wide client; every store gets a collection prefix of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from strataml.dev.servers import ServerHandle, stop
from strataml_milvus import MilvusConfig
from strataml_milvus.devserver import start
from strataml_milvus.vectors import MilvusVectorStore

SERVER_ENV = "STRATAML_TEST_MILVUS_URL"
TOKEN_ENV = "STRATAML_TEST_MILVUS_TOKEN"


@pytest.fixture(scope="session")
def milvus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint under test: $STRATAML_TEST_MILVUS_URL, else a fresh Milvus Lite."""
    external = os.environ.get(SERVER_ENV)
    if external:
        yield external
        return
    handle: ServerHandle = start(tmp_path_factory.mktemp("milvus"))
    yield handle.url
    stop(handle)


@pytest.fixture(scope="session")
def make_config(milvus_url: str) -> Callable[..., MilvusConfig]:
    def make(**kwargs: Any) -> MilvusConfig:
        kwargs.setdefault("collection_prefix", f"t{uuid.uuid4().hex[:10]}_")
        token = os.environ.get(TOKEN_ENV)
        if token:
            kwargs.setdefault("token", token)
        return MilvusConfig(uri=milvus_url, timeout_s=20.0, **kwargs)

    return make


def _cleanup(store: MilvusVectorStore) -> None:
    """Drop what a test left behind under its prefix (aliases first)."""
    for alias in store.aliases():
        store.drop_alias(alias)
    for name in store.collections():
        store.drop_collection(name)
    registry = store._registry
    if registry.exists():
        store._client.drop_collection(registry.name)


@pytest.fixture(scope="session")
def shared_store(make_config: Callable[..., MilvusConfig]) -> Iterator[MilvusVectorStore]:
    """One store (one client) for the contract tests; their collections have unique names."""
    store = MilvusVectorStore(make_config())
    yield store
    _cleanup(store)
    store.close()


@pytest.fixture
def own_store(
    make_config: Callable[..., MilvusConfig],
) -> Iterator[Callable[..., MilvusVectorStore]]:
    """``own_store(**config)`` -> a store with a prefix of its own, cleaned up afterwards."""
    made: list[MilvusVectorStore] = []

    def make(**kwargs: Any) -> MilvusVectorStore:
        store = MilvusVectorStore(make_config(**kwargs))
        made.append(store)
        return store

    yield make
    for store in made:
        _cleanup(store)
        store.close()
