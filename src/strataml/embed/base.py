"""The embedder protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from strataml.errors import DimensionMismatch, InvalidInput


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
    """Validate an embedder's output: shape ``(n, dim)``, finite; returns it as float32."""
    arr = np.asarray(matrix, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InvalidInput(f"embedder {model} returned shape {arr.shape}, expected ({n}, {dim})")
    if arr.shape[1] != dim:
        raise DimensionMismatch(
            f"embedder {model} returned dimension {arr.shape[1]}, expected {dim}"
        )
    if not np.isfinite(arr).all():
        raise InvalidInput(f"embedder {model} returned NaN or infinite values")
    return arr
