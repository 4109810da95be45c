"""pgvector with hostile inputs: collection metadata, metadata values and filter values that
the checks before the database let through. Each case gets a strataml error (or the documented
result) and leaves the store as it was.

Everything runs against the real PostgreSQL + pgvector started by ``conftest.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from strataml.errors import FilterError, InvalidInput
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


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    ],
)
def test_a_datetime_outside_the_utc_range_is_a_strataml_error(
    store: PgVectorStore, value: dt.datetime
) -> None:
    # both used to leak OverflowError from datetime.astimezone(UTC)
    store.create_collection("c", 3)
    store.upsert(
        "c", [{"id": "a", "vector": [1, 0, 0], "metadata": {"ts": dt.datetime(2020, 1, 1)}}]
    )
    with pytest.raises(InvalidInput, match="outside the range"):
        store.upsert("c", [{"id": "b", "vector": [1, 0, 0], "metadata": {"ts": value}}])
    assert store.count("c") == 1
    for spec in ({"ts": {"$lt": value}}, {"ts": {"$gt": value.isoformat()}}):
        with pytest.raises(FilterError, match="outside the range"):
            store.search("c", [1, 0, 0], k=1, filter=spec)


@pytest.mark.parametrize(
    "spec",
    [
        {"s": {"$gt": "\ud800"}},
        {"s": "a\udfff"},
        {"s": {"$in": ["ok", "\ud800"]}},
        {"$not": {"s": {"$lte": "\ud800"}}},
    ],
)
def test_a_filter_string_with_a_lone_surrogate_is_a_filter_error(
    store: PgVectorStore, spec: dict[str, Any]
) -> None:
    # a range comparison leaked UnicodeEncodeError from psycopg (not UTF-8 encodable)
    store.create_collection("c", 3)
    store.upsert("c", [{"id": "a", "vector": [1, 0, 0], "metadata": {"s": "x"}}])
    with pytest.raises(FilterError, match="not valid Unicode"):
        store.search("c", [1, 0, 0], k=1, filter=spec)
    with pytest.raises(FilterError, match="not valid Unicode"):
        store.count("c", filter=spec)
