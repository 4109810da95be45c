"""The FeatureStore and TrainingSource contract suites on the BigQuery emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strataml.testing.features import FeatureStoreTests
from strataml.testing.training import TrainingSourceTests
from strataml_bigquery.engine import BigQueryEngine
from strataml_bigquery.features import BigQueryFeatureStore
from strataml_bigquery.training import BigQueryTrainingSource


class TestBigQueryFeatureContract(FeatureStoreTests):
    @pytest.fixture
    def feature_store(self, bq_engine: BigQueryEngine) -> Iterator[BigQueryFeatureStore]:
        store = BigQueryFeatureStore(bq_engine)
        yield store
        store.close()


class TestBigQueryTrainingContract(TrainingSourceTests):
    def dataset_sql(self, name: str) -> str:
        """GoogleSQL quotes identifiers with backquotes (double quotes make strings)."""
        return f"datasets.`{name}`"

    @pytest.fixture
    def training_source(self, bq_engine: BigQueryEngine) -> Iterator[BigQueryTrainingSource]:
        source = BigQueryTrainingSource(bq_engine)
        yield source
        source.close()
