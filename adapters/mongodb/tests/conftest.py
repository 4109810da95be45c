"""MongoDB stores for the tests.

No MongoDB server can be installed on the development machine (``mongodb-memory-server``
downloads ``mongod`` at run time), so the contract suite runs only when
``STRATAML_TEST_MONGODB_URL`` names a real server, e.g. ``mongodb://127.0.0.1:27017`` (a
standalone: the staged-batch protocol) or ``mongodb://127.0.0.1:27017/?replicaSet=rs0`` (a
replica set: transactions, and the staged protocol too). Each test gets its own collection
prefix (an empty, isolated store) and its collections are dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

SERVER_ENV = "STRATAML_TEST_MONGODB_URL"
SERVER_URL = os.environ.get(SERVER_ENV, "").strip()
SKIP_REASON = (
    f"no MongoDB server: set {SERVER_ENV}=mongodb://HOST:27017 (standalone) or "
    "mongodb://HOST:27017/?replicaSet=rs0 (replica set) to run the contract suite against one"
)


@pytest.fixture
def mongo_store() -> Iterator[Callable[..., Any]]:
    """``mongo_store(**settings)`` -> a store on the test server under a fresh collection
    prefix; closed and its collections dropped after the test."""
    from strataml_mongodb.config import MongoDBConfig
    from strataml_mongodb.ingest import MongoIngestStore

    made: list[tuple[Any, MongoDBConfig]] = []

    def make(**settings: Any) -> Any:
        if not SERVER_URL:
            pytest.skip(SKIP_REASON)
        settings.setdefault("collection_prefix", f"t{uuid.uuid4().hex[:12]}")
        settings.setdefault("server_selection_timeout_ms", 5000)
        config = MongoDBConfig(type="mongodb", url=SERVER_URL, **settings)
        store = MongoIngestStore.from_config(config)
        made.append((store, config))
        return store

    yield make
    for store, _ in made:
        store.close()
    if made:
        from strataml_mongodb.ingest import make_client

        client = make_client(made[0][1])
        try:
            for _, config in made:
                db = client[config.database]
                for suffix in ("streams", "records"):
                    db.drop_collection(f"{config.collection_prefix}_{suffix}")
        finally:
            client.close()
