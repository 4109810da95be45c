"""BM25 as Qdrant sparse vectors: term weights computed here, IDF applied by Qdrant.

Qdrant's ``Modifier.IDF`` on a sparse vector multiplies each *query* term by
``idf(t) = ln((N - df + 0.5) / (df + 0.5) + 1)`` over the points that have the sparse vector,
and scores by the dot product. Storing each document term with BM25's saturated frequency

    w(t, d) = tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avg_len))

and querying with weight 1 per distinct query term therefore gives exactly

    bm25(q, d) = sum over t in q of idf(t) * w(t, d)

with the collection's live statistics (deletes and updates change ``N`` and ``df`` at once).
``avg_len`` is fixed per collection (BM25 normally uses the corpus average; a fixed value keeps
stored weights valid as the corpus changes, as Qdrant's own ``qdrant/bm25`` model does).

Tokenizer (version 1, recorded per collection): Unicode NFKC, case-folded, words are runs of
letters and digits (``[^\\W_]+``), the 33 English stop words of Lucene's default set removed,
no stemming. A term's sparse index is the first 4 bytes of its BLAKE2b digest (little-endian,
a ``uint32``): deterministic across processes and Python versions; two terms colliding (about
one pair in 2**32) share statistics.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

__all__ = ["STOP_WORDS", "TOKENIZER_VERSION", "Bm25Params", "query_terms", "tokens"]

TOKENIZER_VERSION: Final = 1
STOP_WORDS: Final = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    }
)
_WORD: Final = re.compile(r"[^\W_]+")


def tokens(text: str) -> list[str]:
    """The terms of ``text`` (see the module docstring), in order, repeats kept."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return [t for t in _WORD.findall(folded) if t not in STOP_WORDS]


@lru_cache(maxsize=1 << 16)
def term_index(term: str) -> int:
    """The sparse index of ``term``: a stable 32-bit hash."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def query_terms(text: str) -> tuple[list[int], list[float]]:
    """The query's sparse vector: each distinct term once, weight 1 (sorted indices)."""
    indices = sorted({term_index(t) for t in tokens(text)})
    return indices, [1.0] * len(indices)


@dataclass(frozen=True, slots=True)
class Bm25Params:
    """A collection's BM25 constants, fixed when it is created."""

    k1: float = 1.2
    b: float = 0.75
    avg_len: float = 256.0

    def document(self, text: str | None) -> tuple[list[int], list[float]] | None:
        """The document's sparse vector (sorted indices), ``None`` when it has no terms."""
        if not text:
            return None
        terms = tokens(text)
        if not terms:
            return None
        counts = Counter(term_index(t) for t in terms)
        norm = self.k1 * (1.0 - self.b + self.b * len(terms) / self.avg_len)
        indices = sorted(counts)
        k1p1 = self.k1 + 1.0
        values = [counts[i] * k1p1 / (counts[i] + norm) for i in indices]
        return indices, values
