"""The strataml contract suite: prove a backend honours the five protocols.

Subclass the mixin for each protocol your adapter implements and provide one fixture yielding an
empty, isolated store::

    from strataml.testing import OnlineStoreTests

    class TestMyOnline(OnlineStoreTests):
        xfail = {"test_ttl_counts_from_event_time": "emulator ignores TTL (#12)"}  # strict

        @pytest.fixture
        def online_store(self, tmp_path):
            store = MyOnlineStore(...)
            yield store
            store.close()

Fixture names: ``ingest_store``, ``feature_store``, ``online_store``, ``vector_store``,
``training_source``; :class:`FeaturePlatformTests` (materialization, skew guard, transforms)
needs ``feature_store`` and ``online_store`` of one stack. Tests skip (naming the capability)
when the store's declared ``capabilities`` lack what they exercise; opting out otherwise takes a
strict xfail with a reason.
"""

from strataml.testing._base import ContractBase
from strataml.testing.features import FeatureStoreTests
from strataml.testing.ingest import IngestStoreTests
from strataml.testing.online import AsyncOnlineStoreTests, OnlineStoreTests
from strataml.testing.platform import FeaturePlatformTests
from strataml.testing.training import TrainingSourceTests
from strataml.testing.vectors import AsyncVectorStoreTests, VectorStoreTests

__all__ = [
    "AsyncOnlineStoreTests",
    "AsyncVectorStoreTests",
    "ContractBase",
    "FeaturePlatformTests",
    "FeatureStoreTests",
    "IngestStoreTests",
    "OnlineStoreTests",
    "TrainingSourceTests",
    "VectorStoreTests",
]
