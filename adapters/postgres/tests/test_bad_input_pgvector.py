"""pgvector with hostile inputs: collection metadata, metadata values and filter values that
the checks before the database let through. Each case gets a strataml error (or the documented
result) and leaves the store as it was.

Everything runs against the real PostgreSQL + pgvector started by ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from strataml_postgres.vectors import PgVectorStore


@pytest.fixture
def store(pg_db: Any) -> Iterator[PgVectorStore]:
    s = PgVectorStore(pg_db)
    yield s
    s.close()


def test_collection_metadata_with_non_string_keys_is_stored_as_described(
    store: PgVectorStore,
) -> None:
    # JSON object keys are strings: {1: "x"} is stored as {"1": "x"}; create_collection used to
    # create the collection and then fail building its CollectionInfo (pydantic ValidationError)
    info = store.create_collection("c", 3, metadata={1: "x", "nested": {2: (1, 2)}})
    assert info.metadata == {"1": "x", "nested": {"2": [1, 2]}}
    assert store.describe("c").metadata == info.metadata
    assert store.collections() == ["c"]
