"""Arguments of :class:`~strataml.protocols.TrainingSource` methods, validated the same way on
every backend: shards, batch sizes, projections, snapshot ids, query sources and the data a
``write`` accepts (streamed as record batches)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from strataml.arrowutil import as_table
from strataml.errors import InvalidInput, NotFound
from strataml.models import is_name

__all__ = [
    "QUERY_RE",
    "ROW_COLUMN",
    "SNAPSHOT_RE",
    "check_batch_size",
    "check_columns",
    "check_schema",
    "check_shard",
    "input_batches",
    "is_query",
    "same_layout",
]

#: A SQL source: text starting with SELECT or WITH (anything else names a dataset).
QUERY_RE = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)
#: The row ordinal every stored dataset version carries (write order; sharding); reserved.
ROW_COLUMN = "_row"
#: Snapshot ids: ``<dataset>@<version>``.
SNAPSHOT_RE = re.compile(r"^(?P<name>.+)@(?P<version>[1-9][0-9]*)$")


def is_query(source: str) -> bool:
    """``SELECT``/``WITH`` text; a bare word such as ``select`` stays a dataset name."""
    return bool(QUERY_RE.match(source)) and not is_name(source)


def check_shard(shard: Any) -> tuple[int, int] | None:
    """``shard=(i, n)`` with ``n >= 1`` and ``0 <= i < n`` (or ``None``)."""
    if shard is None:
        return None
    if (
        not isinstance(shard, tuple | list)
        or len(shard) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in shard)
    ):
        raise InvalidInput(f"shard must be a pair of ints (i, n), got {shard!r}")
    i, n = shard
    if n < 1 or not 0 <= i < n:
        raise InvalidInput(f"shard (i, n) needs n >= 1 and 0 <= i < n, got ({i}, {n})")
    return (i, n)


def check_batch_size(batch_size: Any) -> int:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def check_columns(columns: Any, schema: pa.Schema, source: str) -> list[str]:
    """A projection: distinct names of columns ``schema`` has (``None``: all of them)."""
    if columns is None:
        return list(schema.names)
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise InvalidInput(f"columns must be a list of column names, got {columns!r}")
    cols = list(columns)
    if not cols:
        raise InvalidInput("columns must name at least one column (or be None for all)")
    if not all(isinstance(c, str) for c in cols) or len(set(cols)) != len(cols):
        raise InvalidInput(f"columns must be distinct column names, got {cols!r}")
    unknown = [c for c in cols if c not in schema.names]
    if unknown:
        raise NotFound(f"{source} has no column(s) {unknown}; columns: {schema.names}")
    return cols


def check_schema(schema: pa.Schema) -> None:
    """Columns a dataset can store: named, unique (case-insensitively, as SQL engines fold
    names), and not the reserved row ordinal."""
    names = schema.names
    if not names:
        raise InvalidInput("training data has no columns")
    if any(not n for n in names):
        raise InvalidInput(f"training data has an unnamed column: {names}")
    lowered = [n.lower() for n in names]
    if ROW_COLUMN in lowered:
        raise InvalidInput(
            f"the column name {ROW_COLUMN!r} is reserved (the row ordinal); rename it"
        )
    if len(set(lowered)) != len(lowered):
        raise InvalidInput(
            f"training data has duplicate column names (case-insensitively): {names}"
        )


def same_layout(a: pa.Schema, b: pa.Schema) -> bool:
    """Same column names and types (nullability and metadata may differ)."""
    return a.names == b.names and all(x.type.equals(y.type) for x, y in zip(a, b, strict=True))


def input_batches(data: Any) -> Iterator[pa.RecordBatch]:
    """The record batches of what ``TrainingSource.write`` accepts: a table, a batch, a reader
    or an iterable of batches (all streamed), or a pandas/polars frame or a list of rows."""
    if isinstance(data, pa.Table):
        return iter(data.to_batches())
    if isinstance(data, pa.RecordBatch):
        return iter([data])
    if isinstance(data, pa.RecordBatchReader):
        return _reader_batches(data)
    if isinstance(data, list | tuple) and data and all(isinstance(b, pa.RecordBatch) for b in data):
        return iter(data)
    if (
        isinstance(data, Iterable)
        and not isinstance(data, list | tuple | Mapping | str | bytes)
        and not hasattr(data, "__arrow_c_stream__")
        and type(data).__module__.split(".")[0] != "pandas"
    ):
        return _checked_batches(data)
    if isinstance(data, list | tuple) and not all(isinstance(r, Mapping) for r in data):
        raise InvalidInput(
            "training data must be a pyarrow Table, RecordBatchReader or record batches (or a "
            "list of row mappings)"
        )
    try:
        return iter(as_table(data, "training data").to_batches())
    except (AttributeError, pa.ArrowException) as exc:
        raise InvalidInput(f"training data cannot be converted to Arrow: {exc}") from exc


def _reader_batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"reading the input record batches failed: {exc}") from exc
        yield batch


def _checked_batches(data: Iterable[Any]) -> Iterator[pa.RecordBatch]:
    for i, batch in enumerate(data):
        if not isinstance(batch, pa.RecordBatch):
            raise InvalidInput(
                f"item {i} of the input is a {type(batch).__name__}; an iterable must yield "
                "pyarrow.RecordBatch objects"
            )
        yield batch
