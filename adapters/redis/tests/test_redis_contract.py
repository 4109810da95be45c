"""The online contract suite (sync and native async) on a real Redis and a real Redis Cluster."""

from __future__ import annotations

import pytest

from strataml.testing.online import AsyncOnlineStoreTests, OnlineStoreTests
from strataml_redis.aio import AsyncRedisOnlineStore
from strataml_redis.stores import RedisOnlineStore


class TestRedisOnlineContract(OnlineStoreTests):
    @pytest.fixture
    def online_store(self, single_store: RedisOnlineStore) -> RedisOnlineStore:
        return single_store


class TestRedisAsyncOnlineContract(AsyncOnlineStoreTests):
    @pytest.fixture
    def async_online_store(
        self, single_async_store: AsyncRedisOnlineStore
    ) -> AsyncRedisOnlineStore:
        return single_async_store


class TestRedisClusterOnlineContract(OnlineStoreTests):
    @pytest.fixture
    def online_store(self, cluster_store: RedisOnlineStore) -> RedisOnlineStore:
        return cluster_store


class TestRedisClusterAsyncOnlineContract(AsyncOnlineStoreTests):
    @pytest.fixture
    def async_online_store(
        self, cluster_async_store: AsyncRedisOnlineStore
    ) -> AsyncRedisOnlineStore:
        return cluster_async_store
