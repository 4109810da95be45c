"""Hostile and edge-case input to the lean profile's PostgreSQL stores (ingest, features,
training): every failure is a typed strataml error raised before anything is written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
import pytest

from strataml.errors import InvalidInput
from strataml_postgres.pool import PgDatabase
from strataml_postgres.training import PostgresTrainingSource

# an aware time whose UTC instant is past 9999-12-31: no datetime can hold it
BEYOND = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))


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
    with pytest.raises(InvalidInput, match="out of range"):
        training.scan("d", filter={"ts": {"$lt": BEYOND}})
    with pytest.raises(InvalidInput, match="out of range"):
        training.count("d", filter={"ts": BEYOND})
