"""The IngestStore contract suite against a real MongoDB server.

Runs only when ``STRATAML_TEST_MONGODB_URL`` is set (see ``conftest.py``): no MongoDB server is
installable on the development machine. Two runs: the protocol the deployment picks
(``transactions = "auto"``: transactions on a replica set, staged batches on a standalone)
and the staged-batch protocol forced (``"never"``), so a replica set proves both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from strataml.testing import IngestStoreTests
from strataml.testing.ingest import read_all

from .conftest import SERVER_URL, SKIP_REASON

pytestmark = pytest.mark.skipif(not SERVER_URL, reason=SKIP_REASON)


class TestMongoIngestContract(IngestStoreTests):
    """The deployment's own protocol (``transactions = "auto"``)."""

    @pytest.fixture
    def ingest_store(self, mongo_store: Callable[..., Any]) -> Any:
        return mongo_store(transactions="auto")


class TestMongoStagedIngestContract(IngestStoreTests):
    """The staged-batch protocol (what a standalone server uses), on any deployment."""

    @pytest.fixture
    def ingest_store(self, mongo_store: Callable[..., Any]) -> Any:
        return mongo_store(transactions="never")


@pytest.mark.parametrize("transactions", ["auto", "never"])
def test_concurrent_writers_never_skip_a_commit(
    mongo_store: Callable[..., Any], transactions: str
) -> None:
    """Four threads write batches to one stream while a reader follows it by cursor: the
    reader sees every record exactly once, each batch contiguous, whatever the commit order."""
    store = mongo_store(transactions=transactions)
    stream = "race"
    store.write(stream, {"w": -1, "i": 0})
    cursor = store.read(stream).cursor
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def writer(w: int) -> None:
        for b in range(5):
            store.write_batch(stream, [{"w": w, "b": b, "i": i} for i in range(20)])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    while not done.is_set():
        page = store.read(stream, after=cursor, limit=37)
        seen.extend((r.data["w"], r.data["b"]) for r in page.records)
        cursor = page.cursor
        if not any(t.is_alive() for t in threads) and not page.has_more:
            done.set()
    for t in threads:
        t.join()
    seen.extend((r.data["w"], r.data["b"]) for r in read_all(store, stream, after=cursor))
    assert len(seen) == 4 * 5 * 20
    assert sorted(set(seen)) == [(w, b) for w in range(4) for b in range(5)]
    runs = [seen[i : i + 20] for i in range(0, len(seen), 20)]
    assert all(len(set(run)) == 1 for run in runs), "a batch's records are contiguous"


def test_mode_matches_the_deployment(mongo_store: Callable[..., Any]) -> None:
    assert mongo_store(transactions="never").mode == "staged"
    assert mongo_store(transactions="auto").mode in ("transactions", "staged")
