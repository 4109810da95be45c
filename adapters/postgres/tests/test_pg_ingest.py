"""The ingest contract suite, plus PostgreSQL-specific ingest behaviour, on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strataml.errors import InvalidInput
from strataml.models import WriteResult
from strataml.testing.ingest import IngestStoreTests, same_json
from strataml_postgres.ingest import PostgresIngestStore
from strataml_postgres.jsonb import from_jsonb, has_nul, to_jsonb
from strataml_postgres.pool import PgDatabase


class TestPostgresIngestContract(IngestStoreTests):
    @pytest.fixture
    def ingest_store(self, pg_db: PgDatabase) -> Iterator[PostgresIngestStore]:
        store = PostgresIngestStore(pg_db)
        yield store
        store.close()


# --------------------------------------------------------------------- PostgreSQL specifics
EDGE_DOCUMENTS: list[dict[str, Any]] = [
    {"big_floats": [1e16, 1.5e17, -2e22, 1.7976931348623157e308, 123456789012345680.0]},
    {"small_floats": [5e-324, 1.5e-7, -0.0, 0.1, 2.0]},
    {"ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1]},
    {"nul": "a\x00b", "key\x00with nul": ["\x00", {"\x00": "\x00\x00"}]},
    {"private use": "\ue000", "mixed": "\ue0000\ue000e\x00\ue000", "\ue000": 1},
    {"escaped text": "\\u0000 is not a NUL", "backslashes": "\\\\u0000\\"},
    {"exponent in text": "1e+16", "1e+16": 1e16},
]


@pytest.mark.parametrize("doc", EDGE_DOCUMENTS, ids=lambda d: next(iter(d)))
def test_jsonb_edge_documents_round_trip_exactly(pg_db: PgDatabase, doc: dict[str, Any]) -> None:
    store = PostgresIngestStore(pg_db)
    store.write("edge", doc)
    store.write_batch("edge", [doc, doc])
    for rec in store.read("edge", limit=10).records:
        same_json(doc, rec.data)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(exclude_categories=["Cs"])), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=_JSON)
def test_jsonb_encoding_is_reversible(value: Any) -> None:
    """``to_jsonb`` only changes the text (numbers, NUL/U+E000 escapes) in ways that
    ``from_jsonb`` undoes, and never leaves a NUL escape nor an exponent jsonb would lose."""
    text = orjson.dumps({"v": value})
    stored = to_jsonb(text)
    assert not has_nul(stored)
    same_json({"v": value}, from_jsonb(stored))


def test_retried_batch_takes_the_staging_path_in_order(pg_db: PgDatabase) -> None:
    store = PostgresIngestStore(pg_db)
    store.write_batch("s", [{"id": i} for i in range(0, 10, 2)], key_field="id")
    mixed: list[dict[str, Any]] = [{"id": i} for i in range(10)]
    mixed += [{"id": 3}, {"v": "no key"}]
    assert store.write_batch("s", mixed, key_field="id") == WriteResult(written=6, duplicates=6)
    got = [r.data.get("id", "no key") for r in store.read("s", limit=100).records]
    assert got == [0, 2, 4, 6, 8, 1, 3, 5, 7, 9, "no key"]


def test_a_failed_batch_leaves_no_trace(pg_db: PgDatabase) -> None:
    store = PostgresIngestStore(pg_db)
    store.write_batch("s", [{"id": 1}], key_field="id")
    with pytest.raises(InvalidInput):
        store.write_batch("s", [{"id": 2}, {"id": ["not", "a", "key"]}], key_field="id")
    assert store.count("s") == 1
    assert store.write_batch("s", [{"id": 2}], key_field="id").written == 1
