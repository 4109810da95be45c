"""Hostile and edge-case input to the lean profile's PostgreSQL stores (ingest, features,
training): every failure is a typed strataml error raised before anything is written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from strataml.errors import InvalidInput, SchemaError
from strataml.models import FeatureView
from strataml_postgres.features import PostgresFeatureStore
from strataml_postgres.ingest import PostgresIngestStore
from strataml_postgres.pool import PgDatabase
from strataml_postgres.training import PostgresTrainingSource

# an aware time whose UTC instant is past 9999-12-31: no datetime can hold it
BEYOND = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


@pytest.fixture
def ingest(pg_db: PgDatabase) -> Iterator[PostgresIngestStore]:
    store = PostgresIngestStore(pg_db)
    yield store
    store.close()


@pytest.fixture
def features(pg_db: PgDatabase) -> Iterator[PostgresFeatureStore]:
    store = PostgresFeatureStore(pg_db)
    yield store
    store.close()


@pytest.fixture
def training(pg_db: PgDatabase) -> Iterator[PostgresTrainingSource]:
    source = PostgresTrainingSource(pg_db)
    yield source
    source.close()


def test_training_filter_time_beyond_utc_range_is_invalid_input(
    training: PostgresTrainingSource,
) -> None:
    """A filter value like 9999-12-31T23:00-05:00 leaked OverflowError from the PG compiler."""
    ts = pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us", tz="UTC"))
    training.write("d", pa.table({"ts": ts}))
    with pytest.raises(InvalidInput, match=r"out of range|outside the range"):
        training.scan("d", filter={"ts": {"$lt": BEYOND}})
    with pytest.raises(InvalidInput, match=r"out of range|outside the range"):
        training.count("d", filter={"ts": BEYOND})


LONE = "\ud800"  # a lone surrogate: a Python str, but no UTF-8 text


def test_lone_surrogates_are_invalid_input_and_write_nothing(
    ingest: PostgresIngestStore, features: PostgresFeatureStore, training: PostgresTrainingSource
) -> None:
    """Text psycopg cannot encode leaked UnicodeEncodeError from every PostgreSQL store."""
    ingest.write("s", {"a": 1})
    with pytest.raises(InvalidInput, match="valid Unicode"):
        ingest.write("s", {"a": 2}, key=LONE)
    with pytest.raises(InvalidInput, match="valid Unicode"):
        ingest.write("t", {"a": 2}, key=f"k{LONE}")
    assert ingest.count("s") == 1
    assert ingest.streams() == ["s"]

    src = pa.table({"uid": [1], "ts": pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us"))})
    features.load("src", src)
    with pytest.raises(InvalidInput, match="valid Unicode"):
        features.sql(f"SELECT '{LONE}' AS a")
    with pytest.raises(InvalidInput, match="valid Unicode"):
        features.sql("SELECT %s AS a", [LONE])
    with pytest.raises(InvalidInput, match="valid Unicode"):
        features.checkpoint(LONE)
    with pytest.raises(InvalidInput, match="valid Unicode"):
        features.load("src", src, checkpoint=(LONE, "v"))
    with pytest.raises(InvalidInput, match="valid Unicode"):
        features.load("src", src, checkpoint=("k", LONE))
    assert features.sql("SELECT count(*) AS n FROM src").column(0).to_pylist() == [1]
    view = FeatureView(
        name="v", entities=["uid"], timestamp="ts", sql=f"SELECT uid, ts, '{LONE}' AS x FROM src"
    )
    with pytest.raises(SchemaError, match="valid Unicode"):  # SQL that does not run
        features.register(view)
    assert features.views() == []

    training.write("d", pa.table({"s": ["a"]}))
    with pytest.raises(InvalidInput, match="valid Unicode"):
        training.scan("d", filter={"s": LONE})
    with pytest.raises(InvalidInput, match="valid Unicode"):
        training.count("d", filter={"s": {"$in": ["a", LONE]}})
    with pytest.raises(SchemaError, match="valid Unicode"):  # a query that does not run
        training.scan(f"SELECT '{LONE}' AS a")


def test_sql_parameters_in_the_select_list_read_back(features: PostgresFeatureStore) -> None:
    """``sql("SELECT %s AS a", [3])`` failed with BackendError 'unexpected field width for
    int2': the query was described with bound parameters (3 is a smallint, 3.5 a float8) and
    copied with literals (an integer, a numeric)."""
    features.load("t", pa.table({"id": [1, 2]}))
    assert features.sql("SELECT %s AS a", [3]).to_pylist() == [{"a": 3}]
    assert features.sql("SELECT %s AS a", [3.5]).to_pylist() == [{"a": 3.5}]
    assert features.sql("SELECT %s AS a, %s AS b", [np.int64(4), np.float64(0.5)]).to_pylist() == [
        {"a": 4, "b": 0.5}
    ]
    out = features.sql("SELECT id, %(k)s * id AS k, '%%' AS p FROM t ORDER BY id", {"k": 2})
    assert out.to_pylist() == [{"id": 1, "k": 2, "p": "%"}, {"id": 2, "k": 4, "p": "%"}]


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("SELECT %s AS a", [object()]),
        ("SELECT %s AS a", [{"a": 1}]),
        ("SELECT %s AS a", [np.arange(3)]),
        ("SELECT %s AS a", [np.datetime64("2024-01-01")]),
        ("SELECT %s AS a", [1, 2]),
        ("SELECT %s, %s AS a", [1]),
        ("SELECT %(a)s AS a", {"b": 1}),
        ("SELECT '%' AS a, %s AS b", [1]),
        ("UPDATE t SET id = %s", [object()]),
        ("UPDATE t SET id = %s WHERE id = %s", [5]),
    ],
)
def test_sql_parameters_that_cannot_bind_are_invalid_input(
    features: PostgresFeatureStore, query: str, params: Any
) -> None:
    """The protocol documents bad parameters as InvalidInput; psycopg's client-side binding
    errors came back as BackendError."""
    features.load("t", pa.table({"id": [1, 2]}))
    with pytest.raises(InvalidInput, match="cannot bind the parameters"):
        features.sql(query, params)
    assert features.sql("SELECT id FROM t ORDER BY id").column(0).to_pylist() == [1, 2]


def test_training_all_null_column_reads_back(training: PostgresTrainingSource) -> None:
    """A column of Arrow type null (e.g. a feature that was never set) was written, after which
    every scan of the dataset failed: 'cannot restore string as null'."""
    data = pa.table({"id": [1, 2], "never": pa.nulls(2)})
    snap = training.write("d", data)
    assert training.scan("d").read_all().equals(data)
    assert training.scan("d", columns=["never"], snapshot=snap).read_all().column(0).null_count == 2
    assert training.count("d", filter={"never": None}) == 2


def test_training_json_stored_columns_read_back(training: PostgresTrainingSource) -> None:
    """Nested columns are stored as jsonb; a map (written as [key, value] pairs, read back as
    if it were an object) and a timestamp, date or time inside a list or struct (written as
    ISO-8601 text) were accepted by write(), after which every scan of the dataset leaked
    AttributeError or ArrowTypeError."""
    t0 = dt.datetime(2024, 1, 2, 3, 4, 5, 6)
    tokyo = pa.timestamp("us", tz="Asia/Tokyo")
    data = pa.table(
        {
            "m": pa.array([[("a", 1), ("b", None)], None, []], pa.map_(pa.string(), pa.int64())),
            "mi": pa.array([[(1, "x")], [], None], pa.map_(pa.int32(), pa.string())),
            "lm": pa.array(
                [[[("k", 1.5)]], None, [None]], pa.list_(pa.map_(pa.string(), pa.float64()))
            ),
            "s": pa.array(
                [{"t": t0, "d": t0.date(), "z": t0}, None, {"t": None, "d": None, "z": None}],
                pa.struct([("t", pa.timestamp("us")), ("d", pa.date32()), ("z", tokyo)]),
            ),
            "lt": pa.array([[t0], [None], None], pa.list_(pa.timestamp("us", tz="UTC"))),
            "ld": pa.array([[t0.date()], None, []], pa.list_(pa.date32())),
            "ltm": pa.array([[t0.time()], None, []], pa.list_(pa.time64("us"))),
        }
    )
    training.write("d", data)
    out = training.scan("d").read_all()
    assert out.schema == data.schema
    assert out.to_pylist() == data.to_pylist()
