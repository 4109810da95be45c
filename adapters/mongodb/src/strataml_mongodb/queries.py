"""The MongoDB queries and updates of the ingest store, as plain documents (unit-tested).

Stream documents (``<prefix>_streams``, ``_id`` = the stream's name)::

    next_seq   int64     the last sequence number handed out (never goes back, even on drop)
    live       bool      false once dropped (the counter is kept so ``seq`` is never reused)
    created    date
    pending    [{id, lo, hi, exp}]   staged protocol: batches in flight and their seq ranges
    aborted    [{lo, hi, clean}]     staged protocol: ranges of abandoned batches

**Visibility.** A reader sees the records of a stream with ``seq`` below its *horizon*: the
lowest ``lo`` of a batch still in flight, else ``next_seq + 1``; and never a record in an
aborted range. Ranges are reserved in one atomic update of the stream document (with the
in-flight entry, on the staged protocol), so a batch that commits late has a lower ``seq``
than the batches committing after it *and* holds the horizon back until it commits: a reader
that pages by ``seq`` never skips a record. Server time (``$$NOW``) stamps and expires the
in-flight entries, so client clocks do not matter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from bson.int64 import Int64
from bson.objectid import ObjectId

__all__ = [
    "INDEXES",
    "commit_update",
    "drop_update",
    "horizon",
    "reap_update",
    "reserve_update",
    "visible_filter",
]

#: Indexes of the records collection: ``(name, keys, options)``.
INDEXES: Final[tuple[tuple[str, list[tuple[str, int]], dict[str, Any]], ...]] = (
    ("stream_seq", [("stream", 1), ("seq", 1)], {"unique": True}),
    (
        "stream_key",
        [("stream", 1), ("key", 1)],
        {"unique": True, "partialFilterExpression": {"key": {"$type": "string"}}},
    ),
    ("stream_ts", [("stream", 1), ("ts_us", 1)], {}),
)

_NEXT: Final = {"$ifNull": ["$next_seq", Int64(0)]}
_PENDING: Final = {"$ifNull": ["$pending", []]}
_ABORTED: Final = {"$ifNull": ["$aborted", []]}


def reserve_update(n: int, batch: ObjectId | None, timeout_ms: int) -> list[dict[str, Any]]:
    """Pipeline update reserving ``n`` sequence numbers (``next_seq + 1 .. next_seq + n``),
    marking the stream live and, for a staged ``batch``, recording it as in flight until
    ``$$NOW + timeout_ms``. Run it with ``upsert=True`` and read ``next_seq`` after it."""
    stage: dict[str, Any] = {
        "next_seq": {"$add": [_NEXT, Int64(n)]},
        "live": True,
        "created": {"$ifNull": ["$created", "$$NOW"]},
    }
    if batch is not None:
        entry = {
            "id": batch,
            "lo": {"$add": [_NEXT, Int64(1)]},
            "hi": {"$add": [_NEXT, Int64(n)]},
            "exp": {"$add": ["$$NOW", int(timeout_ms)]},
        }
        stage["pending"] = {"$concatArrays": [_PENDING, [entry]]}
    return [{"$set": stage}]


def commit_update(batch: ObjectId) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(filter, update)`` committing a staged batch: removing its in-flight entry makes its
    records visible at once. Matching nothing means the batch was abandoned meanwhile."""
    return {"pending.id": batch}, {"$pull": {"pending": {"id": batch}}}


def reap_update() -> list[dict[str, Any]]:
    """Pipeline update moving every in-flight batch past its expiry (server time) to the
    aborted ranges (``clean: false`` until their records are deleted)."""
    expired = {"$filter": {"input": _PENDING, "cond": {"$lt": ["$$this.exp", "$$NOW"]}}}
    live = {"$filter": {"input": _PENDING, "cond": {"$gte": ["$$this.exp", "$$NOW"]}}}
    moved = {
        "$map": {"input": expired, "in": {"lo": "$$this.lo", "hi": "$$this.hi", "clean": False}}
    }
    return [{"$set": {"aborted": {"$concatArrays": [_ABORTED, moved]}, "pending": live}}]


def drop_update() -> list[dict[str, Any]]:
    """Pipeline update dropping a stream: not live, every in-flight batch aborted (their
    writers fail to commit and remove what they wrote); the counter is kept."""
    moved = {
        "$map": {"input": _PENDING, "in": {"lo": "$$this.lo", "hi": "$$this.hi", "clean": False}}
    }
    return [
        {"$set": {"live": False, "aborted": {"$concatArrays": [_ABORTED, moved]}, "pending": []}}
    ]


def horizon(state: Mapping[str, Any]) -> int:
    """The exclusive upper bound of the ``seq`` a reader may see (see the module docstring)."""
    bound = int(state.get("next_seq", 0) or 0) + 1
    for entry in state.get("pending") or ():
        bound = min(bound, int(entry["lo"]))
    return bound


def visible_filter(
    stream: str,
    state: Mapping[str, Any],
    *,
    after: int = 0,
    start_us: int | None = None,
    end_us: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The records of ``stream`` a reader may see after ``seq`` ``after``, with event time in
    ``[start_us, end_us)``."""
    bound = horizon(state)
    flt: dict[str, Any] = {"stream": stream, "seq": {"$gt": Int64(after), "$lt": Int64(bound)}}
    window: dict[str, Any] = {}
    if start_us is not None:
        window["$gte"] = Int64(start_us)
    if end_us is not None:
        window["$lt"] = Int64(end_us)
    if window:
        flt["ts_us"] = window
    ranges = _overlapping(state.get("aborted") or (), after, bound)
    if ranges:
        flt["$nor"] = [{"seq": {"$gte": Int64(lo), "$lte": Int64(hi)}} for lo, hi in ranges]
    if extra:
        flt.update(extra)
    return flt


def _overlapping(
    aborted: Sequence[Mapping[str, Any]], after: int, bound: int
) -> list[tuple[int, int]]:
    out = []
    for entry in aborted:
        lo, hi = int(entry["lo"]), int(entry["hi"])
        if hi > after and lo < bound:
            out.append((lo, hi))
    return out
