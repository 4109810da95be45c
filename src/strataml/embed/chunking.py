"""Splitting documents into overlapping chunks with stable ids.

Two units: **characters** (:func:`chunk_text`: windows of ``size`` characters that prefer to end
at paragraph, line, sentence or word breaks) and **tokens** (:func:`chunk_tokens`: windows of
``size`` tokens, the tokens given as character spans -- by default words, or a model's own
tokenizer such as :meth:`~strataml.embed.sentence.SentenceTransformerEmbedder.token_spans`).
Either way chunk ``i`` of document ``d`` has the id ``"d#i"``: deterministic, so re-chunking an
unchanged document yields the same ids (the id is injective: the position after the last ``#``
is a number, so two documents never share a chunk id).

:class:`Chunker` bundles the unit and parameters; its :attr:`Chunker.params` are part of the
content hash of an incremental refresh, so changing how documents are chunked re-embeds them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from strataml.errors import InvalidInput

__all__ = ["Chunk", "Chunker", "TokenSpans", "chunk_text", "chunk_tokens", "word_spans"]

#: A tokenizer for :func:`chunk_tokens`: text -> the ``(start, end)`` character span of each token.
TokenSpans = Callable[[str], Sequence[tuple[int, int]]]

_WORD = re.compile(r"\S+")


class Chunk(BaseModel):
    """A piece of a document. ``id`` is ``"{doc_id}#{position}"``: stable as long as the text
    before it does not change, so re-chunking an unchanged document yields the same ids.
    ``start``/``end`` are character offsets into the document text."""

    model_config = ConfigDict(frozen=True)

    id: str
    doc_id: str
    position: int
    text: str
    start: int
    end: int


def _check(doc_id: str, size: int, overlap: int) -> None:
    if not isinstance(doc_id, str) or not doc_id:
        raise InvalidInput("chunking needs a non-empty document id")
    if (
        isinstance(size, bool)
        or not isinstance(size, int)
        or isinstance(overlap, bool)
        or not isinstance(overlap, int)
        or size <= 0
        or overlap < 0
        or overlap >= size
    ):
        raise InvalidInput(f"need size > 0 and 0 <= overlap < size (got {size!r}, {overlap!r})")


def chunk_text(doc_id: str, text: str, *, size: int = 1000, overlap: int = 100) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``size`` characters overlapping by ``overlap``.

    Chunk ends prefer paragraph breaks, then line breaks, then sentence ends, then spaces, in
    the last third of the window, so chunks rarely cut words. Whitespace-only pieces are
    skipped; chunk texts are stripped. Raises :class:`InvalidInput` for an empty id or bad
    ``size``/``overlap``.
    """
    _check(doc_id, size, overlap)
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


def word_spans(text: str) -> list[tuple[int, int]]:
    """The default token spans: maximal runs of non-whitespace characters."""
    return [m.span() for m in _WORD.finditer(text)]


def chunk_tokens(
    doc_id: str,
    text: str,
    *,
    size: int = 256,
    overlap: int = 32,
    tokenizer: TokenSpans | None = None,
) -> list[Chunk]:
    """Split ``text`` into windows of at most ``size`` tokens overlapping by ``overlap`` tokens.

    ``tokenizer`` returns each token's ``(start, end)`` character span (default:
    :func:`word_spans`); a chunk's text is the document text from its first token's start to
    its last token's end, so the original spacing is kept. A text without tokens has no chunks.
    Raises :class:`InvalidInput` for an empty id, bad ``size``/``overlap`` or a tokenizer whose
    spans are not increasing and within the text.
    """
    _check(doc_id, size, overlap)
    spans = list((tokenizer or word_spans)(text))
    prev_end, n = 0, len(text)
    for i, (s, e) in enumerate(spans):
        if not (0 <= s <= e <= n) or s < prev_end:
            raise InvalidInput(
                f"tokenizer span {i} ({s}, {e}) of document {doc_id!r} is not increasing "
                f"and within the text (length {n})"
            )
        prev_end = e
    chunks: list[Chunk] = []
    start = 0
    while start < len(spans):
        stop = min(len(spans), start + size)
        a, b = spans[start][0], spans[stop - 1][1]
        piece = text[a:b].strip()
        if piece:
            pos = len(chunks)
            chunks.append(
                Chunk(id=f"{doc_id}#{pos}", doc_id=doc_id, position=pos, text=piece, start=a, end=b)
            )
        if stop >= len(spans):
            break
        start = stop - overlap
    return chunks


@dataclass(frozen=True)
class Chunker:
    """How documents are cut: ``unit`` ``"chars"`` (:func:`chunk_text`) or ``"tokens"``
    (:func:`chunk_tokens` with ``tokenizer``, default words).

    ``tokenizer_name`` identifies a custom tokenizer in :attr:`params` (set it whenever you pass
    a tokenizer: two tokenizers with one name would share content hashes).
    """

    size: int = 1000
    overlap: int = 100
    unit: Literal["chars", "tokens"] = "chars"
    tokenizer: TokenSpans | None = field(default=None, compare=False, repr=False)
    tokenizer_name: str = "words"

    def __post_init__(self) -> None:
        _check("x", self.size, self.overlap)
        if self.unit not in ("chars", "tokens"):
            raise InvalidInput(f"chunk unit must be 'chars' or 'tokens', got {self.unit!r}")
        if self.unit == "chars" and self.tokenizer is not None:
            raise InvalidInput("a tokenizer only applies to unit='tokens'")

    @property
    def params(self) -> dict[str, Any]:
        """The parameters that decide the chunks (part of a refresh's content hash)."""
        out: dict[str, Any] = {"unit": self.unit, "size": self.size, "overlap": self.overlap}
        if self.unit == "tokens":
            out["tokenizer"] = self.tokenizer_name
        return out

    def chunk(self, doc_id: str, text: str) -> list[Chunk]:
        """The chunks of one document (ids ``"{doc_id}#{position}"``)."""
        if self.unit == "tokens":
            return chunk_tokens(
                doc_id, text, size=self.size, overlap=self.overlap, tokenizer=self.tokenizer
            )
        return chunk_text(doc_id, text, size=self.size, overlap=self.overlap)
