"""Embedders (text -> float32 vectors) and chunking.

:class:`Embedder` is the protocol every embedder follows; :class:`LSAEmbedder` is the light,
offline default (TF-IDF + truncated SVD, scikit-learn).
"""

from strataml.embed.base import Embedder, check_embeddings
from strataml.embed.chunking import Chunk, chunk_text
from strataml.embed.lsa import LSAEmbedder

__all__ = ["Chunk", "Embedder", "LSAEmbedder", "check_embeddings", "chunk_text"]
