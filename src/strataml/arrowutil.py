"""Turning what users pass (Arrow, pandas, polars, rows) into Arrow."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from strataml.errors import InvalidInput
from strataml.filters import FieldType

__all__ = ["as_reader", "as_table", "field_type_of", "field_types"]


def as_table(data: Any, where: str = "data") -> pa.Table:
    """A ``pa.Table`` from a Table, RecordBatch, RecordBatchReader, pandas/polars DataFrame,
    a list of row mappings or a mapping of columns."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    mod = type(data).__module__.split(".")[0]
    try:
        if mod == "pandas":
            return pa.Table.from_pandas(data, preserve_index=False)
        if hasattr(data, "__arrow_c_stream__"):
            return pa.table(data)
        if isinstance(data, Mapping):
            return pa.table(dict(data))
        if (
            isinstance(data, list | tuple)
            and data
            and all(isinstance(b, pa.RecordBatch) for b in data)
        ):
            return pa.Table.from_batches(list(data))
        if isinstance(data, list):
            return pa.Table.from_pylist(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"{where}: cannot convert to Arrow: {exc}") from exc
    raise InvalidInput(
        f"{where}: expected an Arrow table/batch/reader, a pandas or polars DataFrame, a list of "
        f"rows or a mapping of columns; got {type(data).__name__}"
    )


def as_reader(data: Any, where: str = "data") -> pa.RecordBatchReader:
    """A ``RecordBatchReader`` (streaming where the input streams: readers and batch iterables)."""
    if isinstance(data, pa.RecordBatchReader):
        return data
    if isinstance(data, pa.Table):
        return data.to_reader()
    if isinstance(data, list | tuple) and data and all(isinstance(b, pa.RecordBatch) for b in data):
        data = iter(data)
    if isinstance(data, Iterator) or (
        isinstance(data, Iterable)
        and not isinstance(data, list | Mapping | str | bytes)
        and not hasattr(data, "__arrow_c_stream__")
        and type(data).__module__.split(".")[0] != "pandas"
    ):
        it = iter(data)
        try:
            first = next(it)
        except StopIteration:
            raise InvalidInput(f"{where}: no record batches") from None
        if not isinstance(first, pa.RecordBatch):
            raise InvalidInput(f"{where}: an iterable must yield pyarrow.RecordBatch objects")

        def chain() -> Iterator[pa.RecordBatch]:
            yield first
            for b in it:
                if b.schema != first.schema:
                    raise InvalidInput(f"{where}: record batches disagree on schema")
                yield b

        return pa.RecordBatchReader.from_batches(first.schema, chain())
    return as_table(data, where).to_reader()


def field_type_of(t: pa.DataType) -> FieldType:
    """The filter field type of an Arrow type (what :func:`~strataml.filters.check_types` uses):
    structs, maps, binary, times and intervals are ``OBJECT`` (not comparable)."""
    if pa.types.is_dictionary(t):
        return field_type_of(t.value_type)
    if pa.types.is_boolean(t):
        return FieldType.BOOL
    if pa.types.is_integer(t):
        return FieldType.INT
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return FieldType.FLOAT
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return FieldType.STRING
    if pa.types.is_timestamp(t):
        return FieldType.TIMESTAMP
    if pa.types.is_date(t):
        return FieldType.DATE
    if pa.types.is_null(t):
        return FieldType.ANY
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return FieldType.LIST
    return FieldType.OBJECT


def field_types(schema: pa.Schema) -> dict[str, FieldType]:
    """Column name -> filter field type, for :func:`~strataml.filters.check_types`."""
    return {f.name: field_type_of(f.type) for f in schema}
