"""Bulk loading through a stage: Arrow -> Parquet files -> ``PUT`` -> ``COPY INTO``.

(Small loads -- up to :data:`INLINE_MAX_ROWS` rows of scalar types -- skip the stage: one
``INSERT ... VALUES`` with server-side bound parameters, see :func:`upload`.)

The rows are written to local Parquet files of at most ``stage_file_rows`` rows each (memory
stays bounded by one input batch), each file is ``PUT`` into the session's temporary stage
under a prefix unique to the load, and ``COPY INTO <table> ... MATCH_BY_COLUMN_NAME =
CASE_INSENSITIVE PURGE = TRUE`` loads them all in one statement -- which callers run inside the
transaction that also stores the checkpoint or the catalog row. Nothing reaches a table until
the whole input has been read (and validated) and staged; on any failure the staged files are
removed.

Columns match by name case-insensitively: strataml never creates two columns whose names differ
only by case (loads and dataset writes reject them), so the match is exact.

This is what ``write_pandas`` does, without the detour through pandas (Arrow types, including
nested ones and time zones, go straight to Parquet).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from strataml.errors import StrataError
from strataml_snowflake.db import Session
from strataml_snowflake.names import quote

__all__ = [
    "INLINE_MAX_CELLS",
    "INLINE_MAX_ROWS",
    "STAGE",
    "Inline",
    "Staged",
    "copy_into",
    "load_into",
    "stage_batches",
    "upload",
]

#: The temporary (session-scoped) stage files are PUT into.
STAGE = "_STRATAML_STAGE"

_FILE_FORMAT = "FILE_FORMAT = (TYPE = PARQUET USE_LOGICAL_TYPE = TRUE BINARY_AS_TEXT = FALSE)"

#: Loads up to this size go in as one ``INSERT ... VALUES`` with bound parameters (one round
#: trip instead of a PUT and a COPY); larger ones, and types parameters cannot carry exactly
#: (nested values, nanosecond times), go through the stage. Snowflake takes at most 16,384
#: rows in one VALUES clause.
INLINE_MAX_ROWS = 2_000
INLINE_MAX_CELLS = 16_000


@dataclass
class Staged:
    """Files staged for one load: where they are and how many rows they hold."""

    session: Session
    prefix: str
    rows: int
    files: int

    @property
    def location(self) -> str:
        return f"@{quote(STAGE)}/{self.prefix}/"

    def remove(self) -> None:
        """Delete the staged files (best effort: they are in a temporary stage anyway)."""
        if self.files:
            with contextlib.suppress(StrataError):
                self.session.execute(f"REMOVE {self.location}", what="removing staged files")
            self.files = 0


@dataclass
class Inline:
    """Rows small enough to be inserted with bound parameters (see :data:`INLINE_MAX_ROWS`)."""

    session: Session
    batches: list[pa.RecordBatch]
    rows: int

    def remove(self) -> None:
        """Nothing was staged."""


def _inlineable(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t) or pa.types.is_time(t):
        return bool(t.unit != "ns")
    return bool(
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_float32(t)
        or pa.types.is_float64(t)
        or pa.types.is_decimal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_date(t)
    )


def upload(
    session: Session,
    batches: Iterator[pa.RecordBatch],
    convert: Callable[[pa.RecordBatch, int], pa.RecordBatch],
    file_rows: int,
    what: str,
) -> Staged | Inline:
    """Read and convert every batch; keep small inputs for an ``INSERT ... VALUES`` and stage
    the rest (:func:`stage_batches`). Errors while reading propagate before anything is
    written to a table."""
    kept: list[pa.RecordBatch] = []
    rows = cells = 0
    source = iter(batches)
    for batch in source:
        if batch.num_rows == 0:
            continue
        out = convert(batch, rows)
        kept.append(out)
        rows += out.num_rows
        cells += out.num_rows * out.num_columns
        if (
            rows > INLINE_MAX_ROWS
            or cells > INLINE_MAX_CELLS
            or not all(_inlineable(f.type) for f in out.schema)
        ):
            offset = rows

            def rest() -> Iterator[pa.RecordBatch]:
                nonlocal offset
                yield from kept
                for more in source:
                    if more.num_rows:
                        converted = convert(more, offset)
                        offset += converted.num_rows
                        yield converted

            return stage_batches(session, rest(), lambda b, _n: b, file_rows, what)
    return Inline(session, kept, rows)


def _bindable(value: object) -> object:
    """A Python value as a parameter: instants as naive UTC, decimals as exact text."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def insert_values(inline: Inline, table: str, what: str) -> int:
    """``INSERT INTO`` the qualified ``table`` the kept rows, parameters bound server-side."""
    if not inline.rows:
        return 0
    names = inline.batches[0].schema.names
    params: list[object] = []
    for batch in inline.batches:
        columns = [col.to_pylist() for col in batch.columns]
        for row in zip(*columns, strict=True):
            params.extend(_bindable(v) for v in row)
    one = "(" + ", ".join("?" for _ in names) + ")"
    cur = inline.session.execute(
        f"INSERT INTO {table} ({', '.join(quote(n) for n in names)})"
        f" VALUES {', '.join(one for _ in range(inline.rows))}",
        params,
        what=what,
    )
    cur.close()
    return inline.rows


def load_into(up: Staged | Inline, table: str, what: str) -> int:
    """Load what :func:`upload` prepared into the qualified ``table``; the rows loaded."""
    if isinstance(up, Inline):
        return insert_values(up, table, what)
    return copy_into(up, table, what)


def _ensure_stage(session: Session) -> None:
    if not session.stage_ready:
        session.execute(
            f"CREATE TEMPORARY STAGE IF NOT EXISTS {quote(STAGE)}",
            what="creating the load stage",
        )
        session.stage_ready = True


def stage_batches(
    session: Session,
    batches: Iterator[pa.RecordBatch],
    convert: Callable[[pa.RecordBatch, int], pa.RecordBatch],
    file_rows: int,
    what: str,
) -> Staged:
    """Write ``convert(batch, rows_so_far)`` of every batch to Parquet and PUT the files.

    Errors raised while reading ``batches`` or converting them propagate unchanged (after the
    files staged so far are removed); nothing is written to any table here."""
    _ensure_stage(session)
    staged = Staged(session, f"load_{uuid.uuid4().hex}", 0, 0)
    tmp = tempfile.mkdtemp(prefix="strataml_sf_")
    writer: pq.ParquetWriter | None = None
    path = ""
    in_file = 0

    def flush() -> None:
        nonlocal writer, in_file
        if writer is None:
            return
        writer.close()
        writer = None
        local = "file://" + path.replace("\\", "/")
        session.execute(
            f"PUT '{local}' {staged.location} AUTO_COMPRESS = FALSE OVERWRITE = TRUE",
            what=f"{what}: uploading to the stage",
        )
        staged.files += 1
        os.unlink(path)
        in_file = 0

    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            out = convert(batch, staged.rows)
            if writer is not None and not out.schema.equals(writer.schema):
                flush()  # a null-typed column became typed: start a new file
            if writer is None:
                path = os.path.join(tmp, f"part_{staged.files:06d}.parquet")
                writer = pq.ParquetWriter(path, out.schema)
            writer.write_batch(out)
            staged.rows += out.num_rows
            in_file += out.num_rows
            if in_file >= file_rows:
                flush()
        flush()
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
        staged.remove()
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return staged


def copy_into(staged: Staged, table: str, what: str) -> int:
    """``COPY INTO`` the qualified ``table`` from the staged files; the rows loaded."""
    if not staged.files:
        return 0
    cur = staged.session.execute(
        f"COPY INTO {table} FROM {staged.location} {_FILE_FORMAT}"
        " MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE ON_ERROR = ABORT_STATEMENT PURGE = TRUE",
        what=what,
    )
    rows = cur.fetchall()
    names = [d.name.lower() for d in cur.description or []]
    cur.close()
    staged.files = 0  # loaded and purged
    if "rows_loaded" not in names:
        return staged.rows
    at = names.index("rows_loaded")
    return sum(int(r[at] or 0) for r in rows)
