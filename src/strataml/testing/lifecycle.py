"""Contract tests for the embedding lifecycle on a :class:`~strataml.protocols.VectorStore`:
incremental refresh (:mod:`strataml.vectors.refresh`) and blue/green rebuilds with alias
promotion and rollback (:mod:`strataml.vectors.bluegreen`).

Part of :class:`~strataml.testing.VectorStoreTests` (fixture ``vector_store``). The embedder is
a small deterministic hashing embedder, so the tests need no model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from strataml.errors import Conflict, DimensionMismatch, InvalidInput, NotFound
from strataml.testing._base import ContractBase
from strataml.vectors import bluegreen
from strataml.vectors.refresh import refresh

__all__ = ["HashEmbedder", "VectorLifecycleTests"]

Uid = Callable[[str], str]


class HashEmbedder:
    """Bag of words hashed into ``dim`` buckets, L2-normalised; counts the texts it embeds."""

    def __init__(self, dim: int = 16, version: str = "1") -> None:
        self._dim = dim
        self._version = version
        self.embedded = 0

    @property
    def name(self) -> str:
        return "contract-hash"

    @property
    def version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.embedded += len(texts)
        out = np.full((len(texts), self._dim), 1e-3, dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
                out[i, h % self._dim] += 1.0
        normed: npt.NDArray[np.float32] = out / np.linalg.norm(out, axis=1, keepdims=True)
        return normed


def _docs(n: int, *, version: str = "a") -> list[dict[str, Any]]:
    words = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda"]
    return [
        {
            "id": f"doc{i}",
            "text": f"{words[i % 8]} {words[(i * 3) % 8]} topic {i} {version}",
            "metadata": {"n": i},
        }
        for i in range(n)
    ]


def _state(store: Any, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for batch in store.scan(name):
        for r in batch:
            out[r.id] = (r.text, r.metadata.get("_doc"), r.metadata.get("_hash"))
    return out


class VectorLifecycleTests(ContractBase):
    """Incremental refresh and blue/green rebuilds, on any vector store."""

    @pytest.fixture
    def lifecycle_names(self, vector_store: Any, uid: Uid) -> Iterator[Callable[[str], str]]:
        made: list[str] = []

        def make(prefix: str) -> str:
            made.append(uid(prefix))
            return made[-1]

        yield make
        try:
            if vector_store.capabilities.aliases:
                for alias, target in vector_store.aliases().items():
                    if any(alias.startswith(m) or target.startswith(m) for m in made):
                        vector_store.drop_alias(alias)
            for name in vector_store.collections():
                if any(name.startswith(m) for m in made):
                    vector_store.drop_collection(name)
        except Exception:  # noqa: BLE001 - cleanup must not mask the test's outcome
            pass

    def test_refresh_embeds_only_what_changed(
        self, vector_store: Any, lifecycle_names: Callable[[str], str]
    ) -> None:
        name = lifecycle_names("rf")
        emb = HashEmbedder()
        first = refresh(vector_store, name, _docs(12), emb)
        assert (first.added, first.updated, first.deleted) == (12, 0, 0)
        assert emb.embedded == first.embedded_chunks > 0
        again = refresh(vector_store, name, _docs(12), emb)
        assert (again.unchanged, again.embedded_chunks, again.written_chunks) == (12, 0, 0)
        assert again.deleted_chunks == 0

        docs = _docs(12)
        docs[3]["text"] += " revised"
        del docs[5]
        docs.append({"id": "doc99", "text": "brand new words here", "metadata": {"n": 99}})
        emb.embedded = 0
        third = refresh(vector_store, name, docs, emb)
        assert (third.added, third.updated, third.deleted, third.unchanged) == (1, 1, 1, 10)
        assert emb.embedded == third.embedded_chunks == 2
        fresh = lifecycle_names("fresh")
        refresh(vector_store, fresh, docs, HashEmbedder())
        got, want = _state(vector_store, name), _state(vector_store, fresh)
        assert got == want
        assert not any(doc == "doc5" for _, doc, _ in got.values())

    def test_refresh_refuses_another_model_and_bad_documents(
        self, vector_store: Any, lifecycle_names: Callable[[str], str]
    ) -> None:
        name = lifecycle_names("rf")
        refresh(vector_store, name, _docs(4), HashEmbedder())
        before = _state(vector_store, name)
        with pytest.raises((DimensionMismatch, Conflict)):
            refresh(vector_store, name, _docs(4), HashEmbedder(dim=8))
        with pytest.raises(Conflict):
            refresh(vector_store, name, _docs(4), HashEmbedder(version="2"))
        with pytest.raises(InvalidInput):
            refresh(vector_store, name, [*_docs(4), {"id": "x"}], HashEmbedder())
        with pytest.raises(InvalidInput):
            refresh(vector_store, name, [*_docs(4), {"text": "no id"}], HashEmbedder())
        assert _state(vector_store, name) == before

    def test_blue_green_promote_and_rollback(
        self, vector_store: Any, lifecycle_names: Callable[[str], str]
    ) -> None:
        self.require(vector_store, "aliases")
        alias = lifecycle_names("live")
        emb = HashEmbedder()
        v1 = bluegreen.stage(vector_store, alias, _docs(10), emb)
        report = bluegreen.validate(vector_store, alias, v1, embedder=emb, expected_count=10)
        assert report.passed, report.reasons
        assert bluegreen.promote(vector_store, report) is None
        assert vector_store.aliases()[alias] == v1.name
        golden = [bluegreen.GoldenQuery(text="alpha topic 0", relevant=("doc0",))]

        v2 = bluegreen.stage(vector_store, alias, _docs(10, version="b"), emb)
        report2 = bluegreen.validate(
            vector_store, alias, v2, golden=golden, embedder=emb, min_recall=0.5
        )
        assert report2.passed, report2.reasons
        assert bluegreen.promote(vector_store, report2) == v1.name
        assert vector_store.aliases()[alias] == v2.name
        hits = vector_store.search(alias, emb.embed(["alpha topic 0 b"])[0], k=1)
        assert hits[0].text is not None
        assert hits[0].text.endswith(" b")
        assert bluegreen.rollback(vector_store, alias) == v1.name
        assert vector_store.aliases()[alias] == v1.name

    def test_failed_validation_leaves_live_serving(
        self, vector_store: Any, lifecycle_names: Callable[[str], str]
    ) -> None:
        self.require(vector_store, "aliases")
        alias = lifecycle_names("live")
        emb = HashEmbedder()
        v1 = bluegreen.stage(vector_store, alias, _docs(10), emb)
        bluegreen.promote(
            vector_store, bluegreen.validate(vector_store, alias, v1, expected_count=10)
        )
        broken = bluegreen.stage(vector_store, alias, _docs(3), emb)  # lost 7 documents
        report = bluegreen.validate(vector_store, alias, broken, embedder=emb)
        assert not report.passed
        with pytest.raises(bluegreen.ValidationFailed):
            bluegreen.promote(vector_store, report)
        with pytest.raises(bluegreen.ValidationFailed):
            bluegreen.promote(vector_store, broken)  # type: ignore[arg-type]
        assert vector_store.aliases()[alias] == v1.name
        assert vector_store.count(alias) == vector_store.count(v1.name)
        with pytest.raises(NotFound):
            bluegreen.rollback(vector_store, lifecycle_names("nowhere"))
