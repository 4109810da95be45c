"""Record pages: how the ingest store packs consecutive records of one batch into one item.

A page holds up to :data:`PAGE_ROWS` records at consecutive positions ``[start, e)`` of one
batch (so a page is committed, or in a hole, as a whole), and is closed before its item grows
past :data:`PAGE_BYTES`. One item per page instead of one per record cuts requests, write
units and the items a read returns by two orders of magnitude for small records, while every
record keeps its own position (cursors stay per record).

Attributes of a page item (``pk`` = ``r#<stream>#<g>``, ``sk`` = the zero-padded ``start``):

====  ======  ===============================================================================
name  type    value
====  ======  ===============================================================================
e     N       the position after the page's last slot (``start`` + slots); never changes
m     N       live records (slots not deleted by retention)
i     N       ingestion time, µs (one per batch)
t0    N       smallest event time (µs) of the live records
t1    N       largest event time (µs) of the live records
t     S       JSON list: each slot's event time (µs), ``null`` once deleted
d     S       JSON list: each slot's record, ``null`` once deleted
k     S       JSON list: each slot's idempotency key or ``null`` (absent: no keys at all)
====  ======  ===============================================================================

Retention turns deleted slots into ``null`` (positions never move); a page with no live
record left is deleted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import orjson

from strataml_dynamodb.layout import SEQ_WIDTH, pad_seq

__all__ = [
    "PAGE_BYTES",
    "PAGE_FIXED_BYTES",
    "PAGE_ROWS",
    "PageRow",
    "build_page",
    "page_items",
    "page_keys",
    "page_start",
    "paginate",
    "pruned",
    "row_bytes",
    "slots",
]

#: At most this many records per page.
PAGE_ROWS: Final = 256
#: A page is closed before the next record would take its item past this size (a single
#: larger record gets a page of its own, up to DynamoDB's 400 KB).
PAGE_BYTES: Final = 96 * 1024
#: An upper bound of a page item's size without its records: attribute names, ``pk`` (prefix,
#: a stream name of at most 128 characters, ``#``, generation), ``sk``, the numbers, brackets.
PAGE_FIXED_BYTES: Final = len("pkskemit0t1tdk") + len("r##") + 128 + 16 + SEQ_WIDTH + 5 * 12 + 6


class PageRow:
    """One validated record as a page slot: event time, key, JSON, and its share of a page."""

    __slots__ = ("data", "key", "key_json", "size", "ts")

    def __init__(self, key: str | None, ts: int, data: bytes, key_json: bytes | None) -> None:
        self.key = key
        self.ts = ts
        self.data = data
        self.key_json = key_json
        self.size = row_bytes(ts, data, key_json)


def row_bytes(ts: int, data: bytes, key_json: bytes | None) -> int:
    """A record's share of its page item: its JSON, event time and key in the three lists,
    with separators (an upper bound)."""
    return len(data) + len(str(ts)) + (4 if key_json is None else len(key_json)) + 3


def paginate(rows: Sequence[PageRow]) -> list[tuple[int, int]]:
    """Split ``rows`` into pages: ``(first, end)`` index ranges, in order."""
    bounds: list[tuple[int, int]] = []
    first = 0
    size = PAGE_FIXED_BYTES
    for i, row in enumerate(rows):
        if i > first and (i - first == PAGE_ROWS or size + row.size > PAGE_BYTES):
            bounds.append((first, i))
            first, size = i, PAGE_FIXED_BYTES
        size += row.size
    if first < len(rows):
        bounds.append((first, len(rows)))
    return bounds


def build_page(pk: str, start: int, rows: Sequence[PageRow], ingested_us: int) -> dict[str, Any]:
    """The item of a page holding ``rows`` at positions ``start...``."""
    times = [r.ts for r in rows]
    item: dict[str, Any] = {
        "pk": {"S": pk},
        "sk": {"S": pad_seq(start)},
        "e": {"N": str(start + len(rows))},
        "m": {"N": str(len(rows))},
        "i": {"N": str(ingested_us)},
        "t0": {"N": str(min(times))},
        "t1": {"N": str(max(times))},
        "t": {"S": "[" + ",".join(map(str, times)) + "]"},
        "d": {"S": (b"[" + b",".join([r.data for r in rows]) + b"]").decode()},
    }
    if any(r.key_json is not None for r in rows):
        keys = b",".join([b"null" if r.key_json is None else r.key_json for r in rows])
        item["k"] = {"S": (b"[" + keys + b"]").decode()}
    return item


def page_items(
    pk: str, start: int, rows: Sequence[PageRow], ingested_us: int
) -> list[tuple[int, dict[str, Any]]]:
    """``(first position, item)`` of every page of ``rows`` put at positions ``start...``."""
    return [
        (start + lo, build_page(pk, start + lo, rows[lo:hi], ingested_us))
        for lo, hi in paginate(rows)
    ]


def page_start(item: dict[str, Any]) -> int:
    """The position of a page item's first slot."""
    return int(item["sk"]["S"])


def page_keys(item: dict[str, Any]) -> list[str | None]:
    """The slots' idempotency keys of a page item (projected with ``k``)."""
    raw = item.get("k")
    if raw is None:
        return []
    keys: list[str | None] = orjson.loads(raw["S"])
    return keys


def slots(item: dict[str, Any]) -> Iterator[tuple[int, int, str | None, Any]]:
    """``(seq, ts, key, record)`` of each live slot of a full page item, in order."""
    start = page_start(item)
    times: list[int | None] = orjson.loads(item["t"]["S"])
    records: list[Any] = orjson.loads(item["d"]["S"])
    keys = page_keys(item)
    for j, ts in enumerate(times):
        if ts is not None:
            yield start + j, ts, (keys[j] if keys else None), records[j]


def pruned(item: dict[str, Any], gone: Sequence[int]) -> dict[str, Any]:
    """A full page item with the slots at indexes ``gone`` deleted (``null``); some live slot
    must remain."""
    times: list[int | None] = orjson.loads(item["t"]["S"])
    records: list[Any] = orjson.loads(item["d"]["S"])
    keys = page_keys(item)
    for j in gone:
        times[j] = records[j] = None
        if keys:
            keys[j] = None
    live = [t for t in times if t is not None]
    out = dict(item)
    out["m"] = {"N": str(len(live))}
    out["t0"] = {"N": str(min(live))}
    out["t1"] = {"N": str(max(live))}
    out["t"] = {"S": orjson.dumps(times).decode()}
    out["d"] = {"S": orjson.dumps(records).decode()}
    out.pop("k", None)
    if any(k is not None for k in keys):
        out["k"] = {"S": orjson.dumps(keys).decode()}
    return out
