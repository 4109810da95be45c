"""The training source contract suite, plus PostgreSQL-specific behaviour, on a real server."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.errors import InvalidInput, NotFound
from strataml.testing.training import TrainingSourceTests
from strataml_postgres.pool import PgDatabase
from strataml_postgres.training import PostgresTrainingSource


class TestPostgresTrainingContract(TrainingSourceTests):
    @pytest.fixture
    def training_source(self, pg_db: PgDatabase) -> Iterator[PostgresTrainingSource]:
        source = PostgresTrainingSource(pg_db)
        yield source
        source.close()


# --------------------------------------------------------------------- PostgreSQL specifics
T0 = dt.datetime(2024, 1, 1, 12, 30, 15, 123456)


def _wide_table() -> pa.Table:
    """One column per Arrow type the source stores, with nulls."""
    return pa.table(
        {
            "i8": pa.array([1, None, -128], pa.int8()),
            "u8": pa.array([0, 255, None], pa.uint8()),
            "u16": pa.array([None, 65535, 7], pa.uint16()),
            "u32": pa.array([2**32 - 1, None, 0], pa.uint32()),
            "i64": pa.array([2**63 - 1, -(2**63), None], pa.int64()),
            "f32": pa.array([1.5, None, float("inf")], pa.float32()),
            "f64": pa.array([float("nan"), -0.0, None], pa.float64()),
            "flag": pa.array([True, False, None]),
            "text": pa.array(["héllo ✓", "", None]),
            "large": pa.array(["a", None, "b" * 1000], pa.large_string()),
            "dict": pa.array(["x", "y", "x"]).dictionary_encode(),
            "blob": pa.array([b"\x00\x01\xff", None, b""], pa.binary()),
            "ts": pa.array([T0, None, dt.datetime(1900, 1, 1)], pa.timestamp("us")),
            "ts_ns": pa.array([T0, T0, None], pa.timestamp("ns")),
            "ts_tz": pa.array([T0, None, T0], pa.timestamp("ms", tz="Europe/Paris")),
            "day": pa.array([dt.date(2024, 2, 29), None, dt.date(1, 1, 1)]),
            "clock": pa.array([dt.time(23, 59, 59, 999999), None, dt.time(0)]),
            "span": pa.array([dt.timedelta(days=3, microseconds=7), None, dt.timedelta(0)]),
            "money": pa.array(
                [decimal.Decimal("12345.67"), None, decimal.Decimal("-0.01")], pa.decimal128(9, 2)
            ),
            "vec": pa.array([[1.0, 2.5], None, []], pa.list_(pa.float32())),
            "fixed": pa.array([[1, 2], [3, 4], None], pa.list_(pa.int64(), 2)),
            "tags": pa.array([["a", None], [], None], pa.list_(pa.string())),
            "point": pa.array([{"x": 1, "y": "a"}, None, {"x": None, "y": "b"}]),
        }
    )


def test_every_supported_type_round_trips(pg_db: PgDatabase) -> None:
    source = PostgresTrainingSource(pg_db)
    table = _wide_table()
    sid = source.write("wide", table)
    want = table.set_column(
        table.schema.get_field_index("dict"),
        "dict",
        table.column("dict").combine_chunks().dictionary_decode(),
    )
    got = source.scan("wide", snapshot=sid, batch_size=2).read_all()
    assert got.schema == want.schema
    for name in want.column_names:
        assert got.column(name).to_pylist() == want.column(name).to_pylist() or name == "f64"
    assert math.isnan(got.column("f64")[0].as_py())
    assert got.column("f64").to_pylist()[1:] == [-0.0, None]


_SCALARS: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "n": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "i": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "x": (pa.float64(), st.floats(allow_nan=False)),
    "s": (
        pa.string(),
        st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    ),
    "b": (pa.bool_(), st.booleans()),
    "t": (
        pa.timestamp("us"),
        st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    ),
    "v": (pa.list_(pa.float64()), st.lists(st.floats(allow_nan=False), max_size=4)),
}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.fixed_dictionaries({k: st.none() | s for k, (_, s) in _SCALARS.items()}),
        min_size=1,
        max_size=30,
    ),
    batch_size=st.integers(1, 40),
)
def test_binary_copy_round_trip_property(
    pg_db: PgDatabase, rows: list[dict[str, Any]], batch_size: int
) -> None:
    """Random nullable columns survive write + scan exactly, whatever the batch size."""
    source = PostgresTrainingSource(pg_db)
    schema = pa.schema([(k, t) for k, (t, _) in _SCALARS.items()])
    table = pa.Table.from_pylist(rows, schema=schema)
    sid = source.write("prop", table)
    batches = list(source.scan("prop", snapshot=sid, batch_size=batch_size))
    assert all(b.num_rows <= batch_size for b in batches)
    assert pa.Table.from_batches(batches, schema=schema).to_pylist() == table.to_pylist()


def test_values_postgres_cannot_store_are_rejected_before_writing(pg_db: PgDatabase) -> None:
    source = PostgresTrainingSource(pg_db)
    sid = source.write("ds", pa.table({"s": ["ok"]}))
    bad_tables = [
        pa.table({"s": ["a\x00b"]}),  # NUL in text
        pa.table({"t": pa.array([1_700_000_000_000_000_001], pa.timestamp("ns"))}),  # sub-µs
        pa.table({"u": pa.array([2**64 - 1], pa.uint64())}),  # wider than bigint
    ]
    for bad in bad_tables:
        with pytest.raises(InvalidInput):
            source.write("ds", bad)
    assert source.versions("ds") == [sid]
    with pytest.raises(InvalidInput):
        source.write("x" * 64, pa.table({"s": ["ok"]}))  # longer than an identifier


def test_sql_sources_read_the_latest_version_view(pg_db: PgDatabase) -> None:
    source = PostgresTrainingSource(pg_db)
    view = f'"{source.datasets_schema}"."clicks"'
    source.write("clicks", pa.table({"id": [1, 2]}))
    source.write("clicks", pa.table({"id": [3, 4, 5], "extra": ["a", "b", "c"]}))
    got = source.scan(f"SELECT * FROM {view} ORDER BY id").read_all()
    assert got.to_pylist() == [
        {"id": 3, "extra": "a"},
        {"id": 4, "extra": "b"},
        {"id": 5, "extra": "c"},
    ]
    source.drop("clicks")
    with pytest.raises(NotFound):
        source.scan(f"SELECT * FROM {view}")


def test_dataset_shards_are_contiguous_ranges(pg_db: PgDatabase) -> None:
    source = PostgresTrainingSource(pg_db)
    source.write("r", pa.table({"id": pa.array(range(1000), pa.int64())}))
    parts = [source.scan("r", shard=(i, 3)).read_all().column("id").to_pylist() for i in range(3)]
    assert parts == [list(range(0, 333)), list(range(333, 666)), list(range(666, 1000))]
    assert [source.count("r", shard=(i, 3)) for i in range(3)] == [333, 333, 334]


def test_query_sources_return_natural_types(pg_db: PgDatabase) -> None:
    source = PostgresTrainingSource(pg_db)
    query = (
        "SELECT 1::int2 AS a, 2::int4 AS b, avg(x) AS mean, 1.25::numeric(5, 2) AS money,"
        " '{\"k\": 1}'::jsonb AS doc, gen_random_uuid() IS NOT NULL AS ok, interval '1 day' AS d"
        " FROM (VALUES (1::bigint), (2::bigint)) AS v(x)"
    )
    scan = source.scan(query)
    assert scan.schema.field("a").type == pa.int16()
    assert scan.schema.field("b").type == pa.int32()
    assert scan.schema.field("mean").type == pa.float64()  # unconstrained numeric
    assert scan.schema.field("money").type == pa.decimal128(5, 2)
    assert scan.schema.field("doc").type == pa.string()
    row = scan.read_all().to_pylist()[0]
    assert row["mean"] == 1.5
    assert row["money"] == decimal.Decimal("1.25")
    assert row["doc"] == '{"k": 1}'


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    scale=st.integers(0, 12),
    data=st.data(),
)
def test_decimals_round_trip_through_binary_numeric(
    pg_db: PgDatabase, scale: int, data: st.DataObject
) -> None:
    """PostgreSQL's base-10000 ``numeric`` encoding, written by hand, against the server."""
    precision = 30
    values = data.draw(
        st.lists(
            st.none()
            | st.decimals(
                min_value=-(10 ** (precision - scale)) + 1,
                max_value=10 ** (precision - scale) - 1,
                places=scale,
                allow_nan=False,
                allow_infinity=False,
            ),
            min_size=1,
            max_size=10,
        )
    )
    table = pa.table({"d": pa.array(values, pa.decimal128(precision, scale))})
    source = PostgresTrainingSource(pg_db)
    sid = source.write("dec", table)
    assert source.scan("dec", snapshot=sid).read_all().to_pylist() == table.to_pylist()
    text = source.scan(f'SELECT d::text AS t FROM "{source.datasets_schema}"."dec"').read_all()
    with decimal.localcontext(prec=60):
        step = decimal.Decimal(1).scaleb(-scale)
        want = [
            None if v is None else format(v.quantize(step), "f")
            for v in table.column("d").to_pylist()
        ]
    assert text.column("t").to_pylist() == want


def test_datasets_are_named_portably_in_sql_sources(pg_db: PgDatabase) -> None:
    """`datasets.<name>` works as on every backend; the schema-qualified view works too."""
    source = PostgresTrainingSource(pg_db)
    try:
        source.write("clicks", pa.table({"label": [1, 0, 1], "x": [1.0, 2.0, 3.0]}))
        portable = source.scan(
            "WITH d AS (SELECT label FROM datasets.clicks) SELECT label, count(*) AS n "
            "FROM d GROUP BY label ORDER BY label"
        ).read_all()
        assert portable.to_pylist() == [{"label": 0, "n": 1}, {"label": 1, "n": 2}]
        direct = source.scan(f'SELECT count(*) AS n FROM "{source.datasets_schema}"."clicks"')
        assert direct.read_all().to_pylist() == [{"n": 3}]
        with pytest.raises(NotFound):
            source.scan("SELECT * FROM datasets.nope").read_all()
    finally:
        source.close()
