"""The contract suite against a configured stack: ``strataml contract PROFILE``.

Each protocol's mixin runs against the store the profile configures for that role, through a
fresh stack per test. Embedded backends get a temporary ``data_dir``; server backends are used
as configured, with uniquely named streams, tables, views and collections.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import strataml
from strataml.testing.features import FeatureStoreTests
from strataml.testing.ingest import IngestStoreTests
from strataml.testing.online import AsyncOnlineStoreTests, OnlineStoreTests
from strataml.testing.platform import FeaturePlatformTests
from strataml.testing.plugin import profile_option
from strataml.testing.training import TrainingSourceTests
from strataml.testing.vectors import AsyncVectorStoreTests, VectorStoreTests


@pytest.fixture
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh stack per test (stores connect lazily): some contract tests close their store."""
    profile = profile_option(request.config) or "local"
    with strataml.open(profile, data_dir=tmp_path) as opened:
        yield opened


def _store(stack: Any, role: str) -> Any:
    if role not in stack.backends():
        pytest.skip(f"the profile configures no [{role}] store")
    return getattr(stack, role)


class TestIngest(IngestStoreTests):
    @pytest.fixture
    def ingest_store(self, stack: Any) -> Any:
        return _store(stack, "ingest")


class TestFeatures(FeatureStoreTests):
    @pytest.fixture
    def feature_store(self, stack: Any) -> Any:
        return _store(stack, "features")


class TestFeaturePlatform(FeaturePlatformTests):
    @pytest.fixture
    def feature_store(self, stack: Any) -> Any:
        return _store(stack, "features")

    @pytest.fixture
    def online_store(self, stack: Any) -> Any:
        return _store(stack, "online")


class TestOnline(OnlineStoreTests):
    @pytest.fixture
    def online_store(self, stack: Any) -> Any:
        return _store(stack, "online")


class TestAsyncOnline(AsyncOnlineStoreTests):
    @pytest.fixture
    def online_store(self, stack: Any) -> Any:
        return _store(stack, "online")

    @pytest.fixture
    def async_online_store(self, stack: Any) -> Any:
        _store(stack, "online")
        return stack.online_async


class TestVectors(VectorStoreTests):
    @pytest.fixture
    def vector_store(self, stack: Any) -> Any:
        return _store(stack, "vectors")


class TestAsyncVectors(AsyncVectorStoreTests):
    @pytest.fixture
    def vector_store(self, stack: Any) -> Any:
        return _store(stack, "vectors")


class TestTraining(TrainingSourceTests):
    @pytest.fixture
    def training_source(self, stack: Any) -> Any:
        return _store(stack, "training")
