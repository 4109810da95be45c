"""Embedder validation, the LSA embedder and chunking (strataml.embed)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strataml.embed import (
    CheckedEmbedder,
    Chunker,
    LSAEmbedder,
    check_embeddings,
    checked,
    chunk_text,
    chunk_tokens,
    embedder_metadata,
    word_spans,
)
from strataml.errors import BackendError, DimensionMismatch, InvalidInput

TOPICS = ("rivers", "mountains", "vectors", "queries", "loops", "classes")
CORPUS = [
    f"document {i} about {' '.join(t for k, t in enumerate(TOPICS) if (i >> k) % 2)} "
    f"and more words {i % 7}"
    for i in range(60)
]


@pytest.fixture(scope="module")
def lsa() -> LSAEmbedder:
    return LSAEmbedder(dim=8).fit(CORPUS)


# ------------------------------------------------------------------------------- validation
class Raw:
    """An embedder returning whatever it is told to (to check the validation)."""

    name, version, dim = "raw", "1", 3

    def __init__(self, out: Any) -> None:
        self.out = out

    def embed(self, texts: Any) -> Any:
        if isinstance(self.out, Exception):
            raise self.out
        return self.out


@pytest.mark.parametrize(
    ("out", "error"),
    [
        (np.ones((2, 3)), None),
        ([[1, 2, 3], [4, 5, 6]], None),
        (np.ones((2, 4)), DimensionMismatch),
        (np.ones((3, 3)), InvalidInput),
        (np.ones(3), InvalidInput),
        (np.array([[1, 2, np.nan], [1, 2, 3]]), InvalidInput),
        (np.array([[1, 2, np.inf], [1, 2, 3]]), InvalidInput),
        (np.array([[1e39, 2, 3], [1, 2, 3]]), InvalidInput),  # beyond float32
        ([["a", "b", "c"], [1, 2, 3]], InvalidInput),
        ([[1, 2, 3], [1, 2]], InvalidInput),
        (RuntimeError("boom"), BackendError),
    ],
)
def test_checked_embedder_validates_every_output(out: Any, error: Any):
    emb = CheckedEmbedder(Raw(out))
    if error is None:
        got = emb.embed(["a", "b"])
        assert got.dtype == np.float32 and got.shape == (2, 3)
    else:
        with pytest.raises(error, match="raw@1"):
            emb.embed(["a", "b"])


def test_checked_embedder_checks_its_input_and_the_embedder():
    emb = checked(Raw(np.ones((1, 3))))
    assert checked(emb) is emb and CheckedEmbedder(emb).inner is emb.inner
    with pytest.raises(InvalidInput):
        emb.embed("a single string")
    with pytest.raises(InvalidInput):
        emb.embed([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="not an embedder"):
        CheckedEmbedder(object())  # type: ignore[arg-type]
    bad = Raw(None)
    bad.dim = 0  # type: ignore[misc]
    with pytest.raises(InvalidInput, match="dim"):
        CheckedEmbedder(bad)
    assert check_embeddings(np.zeros((0, 3)), 0, 3, "m").shape == (0, 3)
    assert embedder_metadata(Raw(None)) == {
        "embedder": "raw",
        "embedder_version": "1",
        "embedder_dim": 3,
    }


# -------------------------------------------------------------------------------------- LSA
def test_lsa_embeds_unit_rows_and_round_trips_through_save(lsa: LSAEmbedder, tmp_path: Path):
    out = lsa.embed(["rivers and mountains", "loops and classes"])
    assert out.shape == (2, 8) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    path = lsa.save(tmp_path / "m" / "lsa.npz")
    again = LSAEmbedder.load(path)
    assert again.version == lsa.version and again.dim == lsa.dim
    assert np.allclose(again.embed(CORPUS[:5]), lsa.embed(CORPUS[:5]), atol=1e-6)
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(InvalidInput):
        LSAEmbedder.load(tmp_path / "junk.npz")
    with pytest.raises(InvalidInput):
        LSAEmbedder(dim=4).save(tmp_path / "unfitted.npz")
    with pytest.raises(InvalidInput):
        LSAEmbedder(dim=4).embed(["unfitted"])


def test_lsa_version_tracks_the_fitted_vocabulary(lsa: LSAEmbedder):
    same = LSAEmbedder(dim=8).fit(CORPUS)
    other = LSAEmbedder(dim=8).fit([*CORPUS, "a brand new vocabulary word"])
    assert same.version == lsa.version != other.version
    with pytest.raises(InvalidInput):
        LSAEmbedder(dim=500).fit(CORPUS)


# --------------------------------------------------------------------------------- chunking
def test_character_chunks_overlap_and_prefer_breaks():
    text = "First paragraph here.\n\nSecond one is a bit longer. It has sentences. " * 10
    chunks = chunk_text("doc", text, size=120, overlap=30)
    assert [c.id for c in chunks] == [f"doc#{i}" for i in range(len(chunks))]
    assert all(len(c.text) <= 120 for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlapping windows
    assert chunk_text("doc", text, size=120, overlap=30) == chunks  # deterministic
    assert chunk_text("doc", "   \n  ") == []


def test_token_chunks_count_tokens_and_keep_the_original_spacing():
    text = "one  two\tthree four\nfive six seven eight nine ten"
    chunks = chunk_tokens("d", text, size=4, overlap=1)
    assert [c.text for c in chunks] == [
        "one  two\tthree four",
        "four\nfive six seven",
        "seven eight nine ten",
    ]
    assert word_spans("a  b") == [(0, 1), (3, 4)]
    with pytest.raises(InvalidInput, match="not increasing"):
        chunk_tokens("d", "abc", tokenizer=lambda t: [(2, 3), (0, 1)])


@pytest.mark.parametrize(
    "kwargs",
    [{"size": 0}, {"size": 10, "overlap": 10}, {"overlap": -1}, {"size": 1.5}, {"unit": "words"}],
)
def test_bad_chunker_parameters(kwargs: dict[str, Any]):
    with pytest.raises(InvalidInput):
        Chunker(**kwargs)


def test_chunker_params_identify_the_chunking():
    assert Chunker().params == {"unit": "chars", "size": 1000, "overlap": 100}
    tok = Chunker(size=64, overlap=8, unit="tokens")
    assert tok.params == {"unit": "tokens", "size": 64, "overlap": 8, "tokenizer": "words"}
    with pytest.raises(InvalidInput):
        Chunker(tokenizer=word_spans)  # a tokenizer needs unit="tokens"
    with pytest.raises(InvalidInput):
        chunk_text("", "text")


@given(
    text=st.text(alphabet=st.sampled_from("ab .\n"), max_size=400),
    size=st.integers(5, 60),
    data=st.data(),
)
def test_property_chunks_cover_the_text(text: str, size: int, data: st.DataObject):
    overlap = data.draw(st.integers(0, size - 1))
    chunks = chunk_text("d", text, size=size, overlap=overlap)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    covered: set[int] = set()
    for c in chunks:
        assert c.text == text[c.start : c.end].strip() and 0 < len(c.text) <= size
        covered.update(range(c.start, c.end))
    # every non-space character is in some chunk
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    tokens = chunk_tokens("d", text, size=size, overlap=overlap)
    words = [w for c in tokens for w in c.text.split()]
    assert set(words) == set(text.split())
