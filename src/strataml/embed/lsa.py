"""Latent semantic analysis: TF-IDF + truncated SVD (scikit-learn). Offline, CPU, fast."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from strataml._args import as_list
from strataml.errors import InvalidInput

__all__ = ["LSAEmbedder"]


class LSAEmbedder:
    """A light embedder fitted on your corpus: word and bigram TF-IDF projected onto ``dim``
    latent topics, rows L2-normalised (use the ``cosine`` metric).

    ``version`` is derived from the parameters and the fitted vocabulary, so refitting on a
    different corpus yields a different version (and vectors that must not be mixed). To keep
    refreshing a collection incrementally, fit once and :meth:`save` the fitted model; later
    runs :meth:`load` it (same version, same vectors).
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
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2:
            raise InvalidInput(f"LSA needs an integer dim >= 2, got {dim!r}")
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
        """Learn the vocabulary and the latent space from ``corpus`` (a list of strings).

        Raises :class:`InvalidInput` for fewer than two texts, a text that is not a string, a
        corpus without vocabulary (no word of two characters or more) or one too small for
        ``dim``."""
        from sklearn.decomposition import TruncatedSVD

        texts = _texts(corpus, "corpus")
        if len(texts) < 2:
            raise InvalidInput("LSA needs at least two documents to fit")
        vec = self._make_vectorizer()
        try:
            tfidf = vec.fit_transform(texts)
        except ValueError as exc:  # e.g. no word of two characters or more: no vocabulary
            raise InvalidInput(f"cannot fit LSA on this corpus: {exc}") from exc
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

    def _make_vectorizer(self, vocabulary: dict[str, int] | None = None) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(
            sublinear_tf=True,
            ngram_range=tuple(self._params["ngram_range"]),  # type: ignore[arg-type]
            min_df=self._params["min_df"],
            max_features=self._params["max_features"],
            strip_accents="unicode",
            token_pattern=r"(?u)\b\w[\w_]+\b",
            vocabulary=vocabulary,
        )

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (a ``.npz`` file: vocabulary, IDF weights and the
        SVD components; no pickle). Raises :class:`InvalidInput` if it is not fitted."""
        if self._vectorizer is None:
            raise InvalidInput("fit() the LSA embedder before saving it")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        vocab = self._vectorizer.vocabulary_
        terms = np.empty(len(vocab), dtype=object)
        for term, index in vocab.items():
            terms[index] = term
        header = {
            "format": 1,
            "dim": self._dim,
            "version": self._version,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self._params.items()},
        }
        with target.open("wb") as fh:
            np.savez_compressed(
                fh,
                header=np.array(json.dumps(header)),
                terms=terms.astype(str),
                idf=np.asarray(self._vectorizer.idf_, dtype=np.float64),
                components=np.asarray(self._svd.components_, dtype=np.float64),
            )
        return target

    @classmethod
    def load(cls, path: str | Path) -> LSAEmbedder:
        """Read a model written by :meth:`save`; it embeds exactly as the saved one did and has
        its ``version``. Raises :class:`InvalidInput` if the file is not such a model."""
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                header = json.loads(str(data["header"]))
                terms = [str(t) for t in data["terms"]]
                idf = np.asarray(data["idf"], dtype=np.float64)
                components = np.asarray(data["components"], dtype=np.float64)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InvalidInput(f"{path} is not a saved LSA model: {exc}") from exc
        try:
            if header.get("format") != 1 or components.shape != (header["dim"], len(terms)):
                raise InvalidInput(f"{path} is not a saved LSA model (unknown format or shape)")
            params = header["params"]
            model = cls(
                header["dim"],
                ngram_range=(int(params["ngram_range"][0]), int(params["ngram_range"][1])),
                min_df=params["min_df"],
                max_features=params["max_features"],
                random_state=params["random_state"],
            )
        except InvalidInput:
            raise
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{path} is not a saved LSA model (bad header: {exc!r})") from exc
        vec = model._make_vectorizer({t: i for i, t in enumerate(terms)})
        vec.idf_ = idf
        model._vectorizer = vec
        model._svd = _Projection(components)
        model._version = str(header["version"])
        return model

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed texts (a list of strings: :class:`InvalidInput` otherwise) into the fitted
        space; rows are unit length (zero rows stay zero)."""
        if self._vectorizer is None:
            raise InvalidInput("fit() the LSA embedder on a corpus before embedding")
        items = _texts(texts, "texts")
        if not items:
            return np.zeros((0, self._dim), dtype=np.float32)
        dense = self._svd.transform(self._vectorizer.transform(items))
        out = np.asarray(dense, dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        result: npt.NDArray[np.float32] = out / norms
        return result


def _texts(texts: Sequence[str], what: str) -> list[str]:
    """``texts`` as a list of strings (:class:`InvalidInput` for a single string or a
    non-string item: scikit-learn would split the one or fail on the other)."""
    return as_list(texts, what, "strings", kind=str)


class _Projection:
    """The ``transform`` of a fitted TruncatedSVD (``X @ components.T``), for loaded models."""

    def __init__(self, components: npt.NDArray[np.float64]) -> None:
        self.components_ = components

    def transform(self, x: Any) -> npt.NDArray[np.float64]:
        out: npt.NDArray[np.float64] = np.asarray(x @ self.components_.T)
        return out
