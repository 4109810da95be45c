"""The strataml contract suite (FeatureStore, TrainingSource) against the Snowflake emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from strataml.testing import FeatureStoreTests, TrainingSourceTests
from strataml_snowflake.db import SnowflakeDatabase
from strataml_snowflake.features import SnowflakeFeatureStore
from strataml_snowflake.training import SnowflakeTrainingSource


class TestSnowflakeFeaturesContract(FeatureStoreTests):
    @pytest.fixture
    def feature_store(self, sf_db: SnowflakeDatabase) -> Iterator[SnowflakeFeatureStore]:
        store = SnowflakeFeatureStore(sf_db)
        yield store
        store.close()


class TestSnowflakeTrainingContract(TrainingSourceTests):
    @pytest.fixture
    def training_source(self, sf_db: SnowflakeDatabase) -> Iterator[SnowflakeTrainingSource]:
        source = SnowflakeTrainingSource(sf_db)
        yield source
        source.close()
