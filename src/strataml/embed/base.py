"""The embedder protocol, output validation and the identity stored with a collection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from strataml.errors import BackendError, DimensionMismatch, InvalidInput, StrataError

__all__ = [
    "CheckedEmbedder",
    "Embedder",
    "check_embeddings",
    "checked",
    "embedder_metadata",
]

#: Collection-metadata keys recording the embedding model of a collection's vectors.
EMBEDDER_KEY = "embedder"
EMBEDDER_VERSION_KEY = "embedder_version"
EMBEDDER_DIM_KEY = "embedder_dim"


@runtime_checkable
class Embedder(Protocol):
    """Turns a batch of texts into a ``(len(texts), dim)`` float32 matrix.

    ``name`` and ``version`` identify the model (stored with the vectors, so a collection never
    mixes models); ``dim`` is the output dimension. Rows are L2-normalised where the model's
    similarity is cosine.
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


def check_embeddings(matrix: object, n: int, dim: int, model: str) -> npt.NDArray[np.float32]:
    """Validate an embedder's output: shape ``(n, dim)``, finite as float32; returns it.

    Raises :class:`InvalidInput` (not a numeric matrix, wrong number of rows, NaN/inf or values
    beyond the float32 range) or :class:`DimensionMismatch` (wrong number of columns), each
    naming the embedder ``model``.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.asarray(matrix, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"embedder {model} did not return a numeric matrix: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InvalidInput(f"embedder {model} returned shape {arr.shape}, expected ({n}, {dim})")
    if arr.shape[1] != dim:
        raise DimensionMismatch(
            f"embedder {model} returned dimension {arr.shape[1]}, expected {dim}"
        )
    if not np.isfinite(arr).all():
        raise InvalidInput(f"embedder {model} returned NaN or infinite values")
    return arr


def _label(embedder: Any) -> str:
    try:
        return f"{embedder.name}@{embedder.version}"
    except Exception:  # noqa: BLE001 - a label for messages only
        return type(embedder).__name__


class CheckedEmbedder:
    """An :class:`Embedder` whose every output is validated (see :func:`check_embeddings`).

    ``embed`` checks its input (a sequence of strings, :class:`InvalidInput` otherwise), calls the
    wrapped embedder and validates the result against ``len(texts)`` and the *declared*
    ``dim``. An exception from the wrapped embedder that is not a strataml error is raised as
    :class:`BackendError` naming the embedder (the original is chained).
    """

    def __init__(self, inner: Embedder) -> None:
        if isinstance(inner, CheckedEmbedder):
            inner = inner.inner
        self.inner: Embedder
        for attr in ("name", "version", "dim", "embed"):
            if not hasattr(inner, attr):
                raise InvalidInput(
                    f"{type(inner).__name__} is not an embedder: it has no {attr!r} "
                    "(an embedder has name, version, dim and embed(texts))"
                )
        dim = inner.dim
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise InvalidInput(f"embedder {_label(inner)} declares dim={dim!r}; expected int > 0")
        self.inner = inner

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def version(self) -> str:
        return str(self.inner.version)

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    @property
    def label(self) -> str:
        """``name@version``, for messages."""
        return _label(self.inner)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if isinstance(texts, str | bytes):
            raise InvalidInput("embed() takes a list of texts, not a single string")
        items = list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise InvalidInput(f"texts[{i}] is a {type(t).__name__}, not a string")
        try:
            out = self.inner.embed(items)
        except StrataError:
            raise
        except Exception as exc:
            raise BackendError(f"embedder {self.label} failed: {exc}") from exc
        return check_embeddings(out, len(items), self.dim, self.label)

    def __repr__(self) -> str:
        return f"CheckedEmbedder({self.label}, dim={self.dim})"


def checked(embedder: Embedder) -> CheckedEmbedder:
    """``embedder`` wrapped in :class:`CheckedEmbedder` (returned as is if it already is)."""
    if isinstance(embedder, CheckedEmbedder):
        return embedder
    return CheckedEmbedder(embedder)


def embedder_metadata(embedder: Embedder) -> dict[str, Any]:
    """The collection metadata recording ``embedder``: ``{"embedder": name,
    "embedder_version": version, "embedder_dim": dim}``. Pass it to ``create_collection``
    (refresh and blue/green builds do) so a collection never mixes models."""
    return {
        EMBEDDER_KEY: str(embedder.name),
        EMBEDDER_VERSION_KEY: str(embedder.version),
        EMBEDDER_DIM_KEY: int(embedder.dim),
    }
