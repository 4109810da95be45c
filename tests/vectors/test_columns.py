"""The helpers behind ``scan_metadata`` and fast scans (strataml.vectors.columns, .batch)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from strataml.errors import InvalidInput
from strataml.filters import FieldType
from strataml.models import VectorRecord
from strataml.vectors.batch import stored_records
from strataml.vectors.columns import (
    batches_from_records,
    check_fields,
    columns_batch,
    metadata_schema,
    rows_batch,
)

TYPES = {
    "s": FieldType.STRING,
    "n": FieldType.INT,
    "ts": FieldType.TIMESTAMP,
    "tags": FieldType.LIST,
}


def test_fields_are_checked_and_deduplicated_in_order() -> None:
    assert check_fields(("b", "a", "b")) == ["b", "a"]
    for bad in ("a", b"a", None, 3, ["a", ""], ["a", 1]):
        with pytest.raises(InvalidInput):
            check_fields(bad)


def test_schema_types_unknown_fields_and_lists() -> None:
    schema = metadata_schema(["n", "zz", "ts"], TYPES)
    struct = schema.field("metadata").type
    assert [struct.field(i).type for i in range(3)] == [
        pa.int64(),
        pa.null(),
        pa.timestamp("us", tz="UTC"),
    ]
    with pytest.raises(InvalidInput, match="tags"):
        metadata_schema(["tags"], TYPES)


def test_rows_become_typed_columns() -> None:
    schema = metadata_schema(["s", "n", "ts", "zz"], TYPES)
    plus2 = dt.timezone(dt.timedelta(hours=2))
    batch = rows_batch(
        ["a", "b"],
        [{"s": "x", "n": 1, "ts": dt.datetime(2024, 1, 1, 12, tzinfo=plus2)}, {"n": 2}],
        schema,
    )
    assert batch.to_pylist() == [
        {
            "id": "a",
            "metadata": {
                "s": "x",
                "n": 1,
                "ts": dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC),
                "zz": None,
            },
        },
        {"id": "b", "metadata": {"s": None, "n": 2, "ts": None, "zz": None}},
    ]


def test_an_int_field_widened_meanwhile_comes_back_as_float() -> None:
    schema = metadata_schema(["n"], TYPES)
    batch = columns_batch(["a", "b"], [[1, 2.5]], schema)
    assert batch.column("metadata").type.field(0).type == pa.float64()
    assert [r["metadata"]["n"] for r in batch.to_pylist()] == [1.0, 2.5]


def test_no_fields_and_record_batches() -> None:
    schema = metadata_schema([], TYPES)
    recs = [VectorRecord(id="a", metadata={"n": 1}), VectorRecord(id="b")]
    (batch,) = list(batches_from_records([[], recs], schema))
    assert batch.to_pylist() == [{"id": "a", "metadata": {}}, {"id": "b", "metadata": {}}]


def test_stored_records_equal_validated_ones() -> None:
    meta = [{"n": 1}, {}]
    fast = stored_records(["a", "b"], ["t", None], meta, ["acme", "acme"], [[1.0, 2.0], None])
    slow = [
        VectorRecord(id="a", vector=[1.0, 2.0], text="t", metadata={"n": 1}, tenant="acme"),
        VectorRecord(id="b", tenant="acme"),
    ]
    assert fast == slow
    assert [r.model_dump() for r in fast] == [r.model_dump() for r in slow]
    copy = fast[0].model_copy(update={"text": "u"})
    assert (copy.text, fast[0].text) == ("u", "t")
    fast[1].text = "set later"  # assignment works as on any record
    assert fast[1].text == "set later"
    assert stored_records([], None, [], None, None) == []
