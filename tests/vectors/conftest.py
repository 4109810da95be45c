"""Fixtures for the embedding-lifecycle tests: real vector stores and a real (LSA) embedder.

``store`` runs each test on the embedded LanceDB store and, when ``strataml-postgres`` is
installed and its store implements the full protocol, on a real PostgreSQL + pgvector started
once per session (``STRATAML_TEST_PG=0`` skips it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from strataml.embed import LSAEmbedder
from strataml.local.lancedb_vectors import LanceDBVectorStore

WORDS = tuple(
    " ".join(
        [
            "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron",
            "pi rho sigma tau upsilon phi chi psi omega river mountain forest ocean desert",
            "valley island python rust haskell kotlin swift vector index search query refresh",
            "embedding chunk document model version alias tenant recall latency shard replica",
        ]
    ).split()
)


def make_text(seed: int, words: int = 40) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), words)) + "."


@pytest.fixture(scope="session")
def lsa() -> LSAEmbedder:
    """A real LSA embedder (dim 16) fitted on text from :data:`WORDS`."""
    corpus = [make_text(i, 30) for i in range(200)]
    return LSAEmbedder(dim=16, random_state=0).fit(corpus)


@pytest.fixture(scope="session")
def lsa8() -> LSAEmbedder:
    """Another model (dim 8): a different name@version and dimension."""
    corpus = [make_text(1000 + i, 30) for i in range(100)]
    return LSAEmbedder(dim=8, random_state=0).fit(corpus)


class Counting:
    """A real embedder that counts the texts it embedded (to check what refresh embeds)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts = 0
        self.calls = 0

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def version(self) -> str:
        return str(self.inner.version)

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls += 1
        self.texts += len(texts)
        out: npt.NDArray[np.float32] = self.inner.embed(texts)
        return out


class Recording:
    """A real store that records the writes going through it and can fail the n-th upsert
    (a crash half-way through a refresh)."""

    def __init__(self, inner: Any, *, fail_upsert_at: int | None = None, caps: Any = None):
        self.inner = inner
        self.upserts: list[int] = []
        self.deletes: list[int] = []
        self.fail_upsert_at = fail_upsert_at
        self._caps = caps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def capabilities(self) -> Any:
        return self._caps if self._caps is not None else self.inner.capabilities

    def upsert(self, name: str, records: Any) -> int:
        records = list(records)
        if self.fail_upsert_at is not None and len(self.upserts) == self.fail_upsert_at:
            raise ConnectionError("simulated crash during refresh")
        self.upserts.append(len(records))
        return int(self.inner.upsert(name, records))

    def delete(self, name: str, ids: Any, *, tenant: str | None = None) -> None:
        self.deletes.append(len(ids))
        self.inner.delete(name, ids, tenant=tenant)


def _pg_available() -> bool:
    if os.environ.get("STRATAML_TEST_PG", "1") == "0":
        return False
    try:
        from strataml_postgres.vectors import PgVectorStore
    except ImportError:
        return False
    return all(hasattr(PgVectorStore, m) for m in ("scan", "set_alias", "aliases", "stats"))


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from strataml.dev.servers import start_postgres, stop

    handle = start_postgres(tmp_path_factory.mktemp("pg"), durable=False)
    try:
        yield handle.url
    finally:
        stop(handle)


def _lance(tmp_path: Path) -> Iterator[Any]:
    store = LanceDBVectorStore(tmp_path / "vectors")
    try:
        yield store
    finally:
        store.close()


def _pg(request: pytest.FixtureRequest) -> Iterator[Any]:
    from strataml.registry import StackContext
    from strataml_postgres import PostgresConfig, database
    from strataml_postgres.vectors import PgVectorStore

    url = request.getfixturevalue("pg_url")
    ctx = StackContext()
    config = PostgresConfig(type="postgres", url=url, schema=f"t_{uuid.uuid4().hex[:10]}")
    store = PgVectorStore(database(config, ctx))
    try:
        yield store
    finally:
        store.close()
        ctx.close()


BACKENDS = ["lancedb", "pgvector"]


@pytest.fixture
def lance(tmp_path: Path) -> Iterator[Any]:
    """The embedded LanceDB store (empty)."""
    yield from _lance(tmp_path)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An empty store: LanceDB, and pgvector when available."""
    if request.param == "pgvector":
        if not _pg_available():
            pytest.skip("pgvector: disabled (STRATAML_TEST_PG=0) or strataml-postgres missing")
        yield from _pg(request)
    else:
        yield from _lance(tmp_path)


def snapshot_of(store: Any, collection: str, tenant: str | None = None) -> dict[str, Any]:
    """``{id: (text, metadata)}`` of every record, read with ``scan``."""
    return {
        r.id: (r.text, dict(r.metadata))
        for batch in store.scan(collection, tenant=tenant)
        for r in batch
    }


@pytest.fixture
def helpers() -> Any:
    """Test helpers (conftest modules cannot be imported in importlib mode)."""

    class H:
        counting = Counting
        recording = Recording
        text = staticmethod(make_text)
        snapshot = staticmethod(snapshot_of)

    return H
