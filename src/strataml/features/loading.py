"""Arguments of :meth:`~strataml.protocols.FeatureStore.load`, validated the same way on every
feature store before anything is written."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from strataml.arrowutil import as_reader
from strataml.errors import InvalidInput
from strataml.models import check_name

__all__ = ["INTERNAL_PREFIX", "prepare_load"]

#: Tables (and other objects) whose names start with this are strataml's own.
INTERNAL_PREFIX = "_strataml"


def prepare_load(table: Any, data: Any, mode: Any, checkpoint: Any) -> pa.RecordBatchReader:
    """Check ``load``'s arguments and return the data as a (streaming) record batch reader.

    Errors (:class:`InvalidInput`): a bad or reserved table name, a mode other than
    ``append``/``replace``, a checkpoint that is not a ``(key, value)`` pair of strings with a
    non-empty key, record batches that disagree, or columns that are empty or not unique
    (case-insensitively: SQL engines fold names).
    """
    check_name("table", table)
    if table.lower().startswith(INTERNAL_PREFIX):
        raise InvalidInput(f"table names starting with {INTERNAL_PREFIX!r} are reserved")
    if mode not in ("append", "replace"):
        raise InvalidInput(f"mode must be 'append' or 'replace', not {mode!r}")
    if checkpoint is not None and not (
        isinstance(checkpoint, tuple)
        and len(checkpoint) == 2
        and all(isinstance(p, str) for p in checkpoint)
        and checkpoint[0]
    ):
        raise InvalidInput("checkpoint must be a (key, value) tuple of strings, key non-empty")
    if isinstance(data, list | tuple) and data and isinstance(data[0], pa.RecordBatch):
        try:
            data = pa.Table.from_batches(list(data))
        except (pa.ArrowInvalid, TypeError) as exc:
            raise InvalidInput(f"load {table}: record batches disagree: {exc}") from exc
    reader = as_reader(data, f"load {table}")
    names = reader.schema.names
    lowered = [n.lower() for n in names]
    if not names or "" in names or len(set(lowered)) != len(lowered):
        raise InvalidInput(
            f"load {table}: columns must be non-empty and unique (case-insensitively): {names}"
        )
    return reader
