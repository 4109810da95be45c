"""Spooling Arrow input to a Parquet file on local disk before a load job.

Loads stream: each incoming record batch is converted (:func:`~strataml_bigquery.bqtypes.to_upload`)
and appended to a temporary Parquet file, so memory stays bounded by one batch whatever the input
size. Every conversion error (a type BigQuery cannot store, a uint64 out of range, NULL array
elements, batches that disagree) is raised while spooling -- before anything reaches BigQuery.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from strataml_bigquery.bqtypes import BQColumn, bq_column, to_upload, upload_schema

__all__ = ["Spool"]


@dataclass
class Spool:
    """A temporary Parquet file; use as a context manager (the file is removed on exit).

    ``columns`` are the BigQuery columns of the file, ``rows`` how many rows it holds.
    """

    where: str
    path: Path = field(init=False)
    columns: list[BQColumn] = field(default_factory=list)
    rows: int = 0
    _dir: Path = field(init=False)
    _writer: pq.ParquetWriter | None = field(default=None, init=False)
    _schema: pa.Schema | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="strataml-bq-"))
        self.path = self._dir / "data.parquet"

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def start(self, schema: pa.Schema, *, row_column: str | None = None) -> pa.Schema:
        """Fix the file's schema (from the input's); ``row_column`` prepends an INT64 ordinal.
        Returns the upload schema."""
        cols, up = upload_schema(schema, self.where)
        if row_column is not None:
            cols = [BQColumn(row_column, "INT64"), *cols]
            up = pa.schema([pa.field(row_column, pa.int64()), *up])
        self.columns = cols
        self._schema = up
        self._writer = pq.ParquetWriter(self.path, up, compression="snappy")
        return up

    @property
    def started(self) -> bool:
        return self._writer is not None

    def write(self, batch: pa.RecordBatch, *, with_row: bool = False) -> None:
        """Convert and append one batch (``with_row``: number its rows after the previous)."""
        if self._writer is None or self._schema is None:
            raise RuntimeError("Spool.start() first")
        if batch.num_rows == 0:
            return
        target = self._schema
        if with_row:
            ordinal = pa.array(np.arange(self.rows, self.rows + batch.num_rows, dtype=np.int64))
            converted = to_upload(batch, pa.schema(list(target)[1:]), self.where)
            out = pa.RecordBatch.from_arrays([ordinal, *converted.columns], schema=target)
        else:
            out = to_upload(batch, target, self.where)
        self._writer.write_batch(out)
        self.rows += batch.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def spool_reader(self, reader: pa.RecordBatchReader) -> None:
        """Start from the reader's schema and write every batch it yields."""
        self.start(reader.schema)
        for batch in _batches(reader):
            self.write(batch)
        self.close()


def _batches(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def column_of(name: str, t: pa.DataType, where: str) -> BQColumn:
    """The BigQuery column one Arrow field becomes."""
    return bq_column(name, t, where)[0]
