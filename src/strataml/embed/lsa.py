"""Latent semantic analysis: TF-IDF + truncated SVD (scikit-learn). Offline, CPU, fast."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from strataml.errors import InvalidInput

__all__ = ["LSAEmbedder"]


class LSAEmbedder:
    """A light embedder fitted on your corpus: word and bigram TF-IDF projected onto ``dim``
    latent topics, rows L2-normalised (use the ``cosine`` metric).

    ``version`` is derived from the parameters and the fitted vocabulary, so refitting on a
    different corpus yields a different version (and vectors that must not be mixed).
    """

    name = "lsa-tfidf"

    def __init__(
        self,
        dim: int = 256,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        max_features: int | None = 200_000,
        random_state: int = 0,
    ) -> None:
        if dim < 2:
            raise InvalidInput("LSA needs dim >= 2")
        self._dim = dim
        self._params = {
            "ngram_range": ngram_range,
            "min_df": min_df,
            "max_features": max_features,
            "random_state": random_state,
        }
        self._vectorizer: Any = None
        self._svd: Any = None
        self._version = "unfitted"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def version(self) -> str:
        return self._version

    def fit(self, corpus: Sequence[str]) -> LSAEmbedder:
        """Learn the vocabulary and the latent space from ``corpus``."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = list(corpus)
        if len(texts) < 2:
            raise InvalidInput("LSA needs at least two documents to fit")
        vec = TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=self._params["ngram_range"],  # type: ignore[arg-type]
            min_df=self._params["min_df"],  # type: ignore[arg-type]
            max_features=self._params["max_features"],  # type: ignore[arg-type]
            strip_accents="unicode",
            token_pattern=r"(?u)\b\w[\w_]+\b",
        )
        tfidf = vec.fit_transform(texts)
        components = min(self._dim, tfidf.shape[1] - 1, len(texts) - 1)
        if components < self._dim:
            raise InvalidInput(
                f"corpus too small for dim={self._dim}: at most {components} latent dimensions"
            )
        svd = TruncatedSVD(n_components=self._dim, random_state=self._params["random_state"])
        svd.fit(tfidf)
        self._vectorizer, self._svd = vec, svd
        digest = hashlib.sha256(repr(sorted(self._params.items())).encode())
        digest.update(str(self._dim).encode())
        for term in sorted(vec.vocabulary_):
            digest.update(term.encode())
            digest.update(b"\0")
        self._version = digest.hexdigest()[:16]
        return self

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts into the fitted space; rows are unit length (zero rows stay zero)."""
        if self._vectorizer is None:
            raise InvalidInput("fit() the LSA embedder on a corpus before embedding")
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        dense = self._svd.transform(self._vectorizer.transform(list(texts)))
        out = np.asarray(dense, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        result: npt.NDArray[np.float32] = out / norms
        return result
