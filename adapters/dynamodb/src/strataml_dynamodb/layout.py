"""Item layout of the tables: how strataml names, positions and keys become DynamoDB keys.

Ingest tables ``<prefix>ingest`` and ``<prefix>ingest_keys`` (both ``pk`` S, ``sk`` S)
======================================================================================
=====================  ===============  ==================================================
pk                     sk               item
=====================  ===============  ==================================================
``streams``            stream name      registry entry of a live stream (``streams()``)
``s#<stream>``         ``#``            the stream's head: generation ``g``, ``live``, next
                                        position ``n``, visible bound ``c``, holes ``h``,
                                        write lease ``lo`` / ``lu``
``r#<stream>#<g>``     19-digit seq     a *page*: consecutive records of one batch, from
                                        this position on (:mod:`strataml_dynamodb.pages`)
=====================  ===============  ==================================================

``<prefix>ingest_keys`` holds one item per idempotency key (a table of their own, so queries
of the pages never touch them):

=====================  ===============  ==================================================
``k#<stream>#<g>``     key slot         the position ``s`` of the key's record
=====================  ===============  ==================================================

Stream names (letters, digits, ``_``, ``-``) never contain ``#``, so keys cannot collide. The
zero-padded seq makes string order numeric order. A key slot is ``=`` + the key (keys of at
most 512 UTF-8 bytes) or ``#`` + its SHA-256 (longer ones: sort keys hold 1024 bytes at most);
the page holds the full key.

Online table ``<prefix>online`` (``pk`` B, TTL attribute ``x``)
===============================================================
* ``b"m"``: the view registry, one item: attribute ``v:<view>`` holds msgpack
  ``[view id, entity columns, created µs]``; ``d:<id hex>`` marks a drop in progress.
* ``b"r" + <view id, 8 bytes> + codec.encode_key(entity values)``: one entity's row, ``f`` the
  msgpack features (:func:`strataml.codec.encode_row`), ``e`` the expiry (µs) and ``x`` the same
  expiry in whole epoch seconds, rounded up (DynamoDB's TTL attribute).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final

__all__ = [
    "MAX_SEQ",
    "REGISTRY_PK",
    "head_key",
    "key_slot",
    "keys_pk",
    "pad_seq",
    "records_pk",
    "registry_key",
    "visible",
    "visible_segments",
]

REGISTRY_PK: Final = "streams"
HEAD_SK: Final = "#"
SEQ_WIDTH: Final = 19
MAX_SEQ: Final = 10**SEQ_WIDTH - 1
_MAX_PLAIN_KEY_BYTES: Final = 512

ONLINE_REGISTRY_PK: Final = b"m"
ONLINE_ROW_TAG: Final = b"r"
VIEW_ID_BYTES: Final = 8
VIEW_ATTR: Final = "v:"
DROP_ATTR: Final = "d:"


def head_key(stream: str) -> dict[str, Any]:
    return {"pk": {"S": f"s#{stream}"}, "sk": {"S": HEAD_SK}}


def registry_key(stream: str) -> dict[str, Any]:
    return {"pk": {"S": REGISTRY_PK}, "sk": {"S": stream}}


def records_pk(stream: str, generation: str) -> str:
    return f"r#{stream}#{generation}"


def keys_pk(stream: str, generation: str) -> str:
    return f"k#{stream}#{generation}"


def pad_seq(seq: int) -> str:
    """A record's sort key: its seq, zero-padded to 19 digits."""
    return f"{seq:0{SEQ_WIDTH}d}"


def key_slot(key: str) -> str:
    """The sort key of an idempotency key item (never empty, at most 65 bytes over 512)."""
    raw = key.encode("utf-8")
    if len(raw) <= _MAX_PLAIN_KEY_BYTES:
        return "=" + key
    return "#" + hashlib.sha256(raw).hexdigest()


def visible(seq: int, bound: int, holes: Sequence[tuple[int, int]]) -> bool:
    """Whether ``seq`` is a committed position: below the visible ``bound`` and in no hole
    (``[start, end)`` ranges abandoned by writers that lost their lease)."""
    return 1 <= seq < bound and not any(s <= seq < e for s, e in holes)


def visible_segments(
    after: int, bound: int, holes: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The committed positions after ``after`` as inclusive ``(first, last)`` ranges, in
    order: ``(after, bound)`` minus the holes."""
    segments: list[tuple[int, int]] = []
    lo = max(after + 1, 1)
    for start, end in sorted(holes):
        if end <= lo:
            continue
        if start >= bound:
            break
        if start > lo:
            segments.append((lo, min(start, bound) - 1))
        lo = max(lo, end)
    if lo < bound:
        segments.append((lo, bound - 1))
    return segments


def parse_holes(value: Any) -> list[tuple[int, int]]:
    """The head's ``h`` attribute (a flat list ``[s1, e1, s2, e2, ...]``) as pairs."""
    if not value:
        return []
    flat = [int(v["N"]) for v in value.get("L", [])]
    return list(zip(flat[::2], flat[1::2], strict=True))


# ------------------------------------------------------------------------------------ online
def view_attr(view: str) -> str:
    return VIEW_ATTR + view


def drop_attr(view_id: bytes) -> str:
    return DROP_ATTR + view_id.hex()


def row_prefix(view_id: bytes) -> bytes:
    return ONLINE_ROW_TAG + view_id


def row_pk(view_id: bytes, encoded_key: bytes) -> bytes:
    return ONLINE_ROW_TAG + view_id + encoded_key
