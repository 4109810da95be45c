"""Splitting documents into overlapping chunks with stable ids."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from strataml.errors import InvalidInput

__all__ = ["Chunk", "chunk_text"]


class Chunk(BaseModel):
    """A piece of a document. ``id`` is ``"{doc_id}#{position}"``: stable as long as the text
    before it does not change, so re-chunking an unchanged document yields the same ids."""

    model_config = ConfigDict(frozen=True)

    id: str
    doc_id: str
    position: int
    text: str
    start: int
    end: int


def chunk_text(doc_id: str, text: str, *, size: int = 1000, overlap: int = 100) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``size`` characters overlapping by ``overlap``.

    Chunk ends prefer paragraph breaks, then line breaks, then sentence ends, then spaces, in
    the last third of the window, so chunks rarely cut words.
    """
    if not doc_id:
        raise InvalidInput("chunk_text needs a document id")
    if size <= 0 or overlap < 0 or overlap >= size:
        raise InvalidInput(f"need size > 0 and 0 <= overlap < size (got {size}, {overlap})")
    chunks: list[Chunk] = []
    start, n = 0, len(text)
    while start < n:
        end = min(n, start + size)
        if end < n:
            window = text[start + (2 * size) // 3 : end]
            best = None
            for pattern in (r"\n\s*\n", r"\n", r"(?<=[.!?])\s+", r"\s+"):
                found = [m.end() for m in re.finditer(pattern, window)]
                if found:
                    best = start + (2 * size) // 3 + found[-1]
                    break
            if best is not None and best > start:
                end = best
        piece = text[start:end].strip()
        if piece:
            chunks.append(
                Chunk(
                    id=f"{doc_id}#{len(chunks)}",
                    doc_id=doc_id,
                    position=len(chunks),
                    text=piece,
                    start=start,
                    end=end,
                )
            )
        if end >= n:
            break
        start = max(end - overlap, start + 1)
    return chunks
