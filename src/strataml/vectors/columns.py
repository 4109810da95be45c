"""Column-wise scans of ids and metadata (``VectorStore.scan_metadata``), shared by the adapters.

A bookkeeping pass over a large collection (incremental refresh compares every stored chunk's
content hash with the current documents) needs a few scalar fields of every record, not the
records: building 100k :class:`~strataml.models.VectorRecord` objects costs far more than
reading the columns. ``scan_metadata`` yields :class:`pyarrow.RecordBatch` objects instead:

* column ``id`` (``string``, never null);
* column ``metadata``: a ``struct`` with one child per requested field (in the order asked,
  repeats dropped), typed by the field's :class:`~strataml.filters.FieldType`
  (:data:`ARROW_TYPES`), null where a record lacks the field; a name the collection has no
  field of is a child of type ``null``.

List fields are refused (:class:`~strataml.errors.InvalidInput`): their values are not one
Arrow type (use ``scan``). Adapters whose engine reads columns natively (LanceDB) build the
batches directly with :func:`metadata_schema`; the others convert the rows they read with
:func:`columns_batch`, :func:`rows_batch` or :func:`batches_from_records`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from strataml.errors import InvalidInput
from strataml.filters import FieldType
from strataml.models import VectorRecord

__all__ = [
    "ARROW_TYPES",
    "batches_from_records",
    "check_batch_size",
    "check_fields",
    "columns_batch",
    "metadata_schema",
    "rows_batch",
]

#: The Arrow type of each scalar field type in ``scan_metadata`` batches.
ARROW_TYPES: Final[Mapping[FieldType, pa.DataType]] = {
    FieldType.STRING: pa.string(),
    FieldType.INT: pa.int64(),
    FieldType.FLOAT: pa.float64(),
    FieldType.BOOL: pa.bool_(),
    FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    FieldType.DATE: pa.date32(),
}


def check_fields(fields: Any) -> list[str]:
    """``fields`` as a list of distinct names, in order; :class:`InvalidInput` unless it is a
    sequence (not a string) of non-empty strings."""
    if isinstance(fields, str | bytes) or not isinstance(fields, Iterable):
        raise InvalidInput(
            f"fields must be a list of metadata field names, got {type(fields).__name__}"
        )
    out: dict[str, None] = {}
    for i, name in enumerate(fields):
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"fields[{i}] must be a non-empty string, got {name!r}")
        out[name] = None
    return list(out)


#: The largest batch size passed on to a backend: a larger one means "everything in one
#: batch" just the same, and stays a 64-bit integer (``LIMIT`` in SQL).
MAX_BATCH_SIZE = 2**62


def check_batch_size(batch_size: Any) -> int:
    """A positive integer (:class:`InvalidInput` otherwise); capped at
    :data:`MAX_BATCH_SIZE`."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInput(f"batch_size must be a positive integer, got {batch_size!r}")
    return min(batch_size, MAX_BATCH_SIZE)


def metadata_schema(fields: Sequence[str], types: Mapping[str, FieldType]) -> pa.Schema:
    """The schema of the batches for ``fields`` of a collection whose fields have ``types``.

    Raises :class:`InvalidInput` for a list field (or another non-scalar type)."""
    children: list[pa.Field] = []
    for name in fields:
        ftype = types.get(name)
        if ftype is None:
            children.append(pa.field(name, pa.null()))
            continue
        arrow = ARROW_TYPES.get(ftype)
        if arrow is None:
            raise InvalidInput(
                f"metadata field {name!r} holds {ftype} values, which scan_metadata cannot "
                "return as a column; read it with scan()"
            )
        children.append(pa.field(name, arrow))
    return pa.schema(
        [pa.field("id", pa.string(), nullable=False), pa.field("metadata", pa.struct(children))]
    )


def _column(values: list[Any], arrow: pa.DataType) -> pa.Array:
    if pa.types.is_null(arrow):
        return pa.nulls(len(values))
    if pa.types.is_timestamp(arrow):
        values = [
            v.astimezone(dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo else v for v in values
        ]
    elif arrow == pa.int64() and any(type(v) is float for v in values):
        # the field was widened to float by another writer meanwhile (pyarrow would truncate)
        arrow = pa.float64()
    return pa.array(values, arrow)


def columns_batch(
    ids: Sequence[str], columns: Sequence[Sequence[Any]], schema: pa.Schema
) -> pa.RecordBatch:
    """One batch from Python values read column-wise: ``columns[i]`` holds the values of the
    ``i``-th field of ``schema``'s ``metadata`` struct (``None`` = the record lacks it)."""
    struct = schema.field("metadata").type
    children = [struct.field(i) for i in range(struct.num_fields)]
    if len(columns) != len(children):
        raise ValueError(f"{len(columns)} columns for {len(children)} fields")
    if children:
        arrays = [_column(list(v), f.type) for v, f in zip(columns, children, strict=True)]
        meta = pa.StructArray.from_arrays(arrays, names=[f.name for f in children])
    else:
        meta = pa.array([{}] * len(ids), pa.struct([]))
    return pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), meta], names=["id", "metadata"])


def rows_batch(
    ids: Sequence[str], metadata: Sequence[Mapping[str, Any]], schema: pa.Schema
) -> pa.RecordBatch:
    """One batch from ids and metadata dicts read row-wise (see :func:`columns_batch`)."""
    struct = schema.field("metadata").type
    names = [struct.field(i).name for i in range(struct.num_fields)]
    return columns_batch(ids, [[m.get(n) for m in metadata] for n in names], schema)


def batches_from_records(
    batches: Iterable[list[VectorRecord]], schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """``scan_metadata`` batches from ``scan`` batches (one for one; empty ones skipped)."""
    for records in batches:
        if records:
            yield rows_batch([r.id for r in records], [r.metadata for r in records], schema)
