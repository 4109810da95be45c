"""Moving data between stages through the protocols (so it works for every backend pair)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from strataml.models import IngestedRecord
from strataml.protocols import FeatureStore, IngestStore

__all__ = ["records_to_arrow", "sync_stream"]

#: System columns added to every synced row.
SYSTEM_COLUMNS = ("_seq", "_key", "_event_time", "_ingested_at")


def _column(name: str, values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        # a field whose type varies between records: keep strings as they are and the other
        # values as JSON text, so nothing is lost and SQL can still cast or parse it
        return pa.array(
            [
                None
                if v is None
                else v
                if isinstance(v, str)
                else orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()
                for v in values
            ],
            type=pa.string(),
        )


def records_to_arrow(records: Sequence[IngestedRecord]) -> pa.Table:
    """Flatten ingested documents to a table: one column per top-level field (nested objects
    become structs, lists become lists) plus the system columns ``_seq``, ``_key``,
    ``_event_time`` and ``_ingested_at``. A field whose type differs between records becomes a
    string column (JSON text for the non-string values)."""
    names: dict[str, None] = {}
    for r in records:
        for k in r.data:
            names.setdefault(k, None)
    columns: dict[str, pa.Array] = {
        "_seq": pa.array([r.seq for r in records], pa.int64()),
        "_key": pa.array([r.key for r in records], pa.string()),
        "_event_time": pa.array([r.ts for r in records], pa.timestamp("us")),
        "_ingested_at": pa.array([r.ingested_at for r in records], pa.timestamp("us")),
    }
    for name in names:
        if name in columns:
            continue
        columns[name] = _column(name, [r.data.get(name) for r in records])
    return pa.table(columns)


def sync_stream(
    ingest: IngestStore,
    features: FeatureStore,
    stream: str,
    *,
    table: str | None = None,
    batch_size: int = 50_000,
) -> int:
    """Load the records of ``stream`` not yet loaded into feature-store table ``table``
    (default: the stream's name). Returns how many rows were loaded.

    Exactly once: the read cursor is stored in the feature store in the same transaction as the
    rows (``checkpoint=``), so a crash between pages resumes where the last committed page ended.
    """
    target = table or stream
    key = f"sync:{stream}->{target}"
    cursor = features.checkpoint(key)
    total = 0
    while True:
        page = ingest.read(stream, after=cursor, limit=batch_size)
        if not page.records:
            break
        assert page.cursor is not None
        total += features.load(
            target, records_to_arrow(page.records), mode="append", checkpoint=(key, page.cursor)
        )
        cursor = page.cursor
        if not page.has_more:
            break
    return total
