"""The five storage protocols, one per access pattern of an ML system.

=====================  ==========================  ===========================================
stage                  protocol                    access pattern
=====================  ==========================  ===========================================
ingestion              :class:`IngestStore`        high write rate, schema-flexible documents
feature engineering    :class:`FeatureStore`       SQL joins/aggregations, point-in-time joins
feature serving        :class:`OnlineStore`        one key lookup, p99 well under 10 ms
embedding retrieval    :class:`VectorStore`        nearest neighbours + filters + keywords
batch training         :class:`TrainingSource`     columnar scans, sharded, reproducible
=====================  ==========================  ===========================================

Each is a :class:`typing.Protocol`: an adapter satisfies it structurally, and
:mod:`strataml.testing` proves it behaves as documented here.
"""

from strataml.protocols.base import Store
from strataml.protocols.features import FeatureStore
from strataml.protocols.ingest import IngestStore
from strataml.protocols.online import AsyncOnlineStore, OnlineStore
from strataml.protocols.training import TrainingSource
from strataml.protocols.vectors import AsyncVectorStore, VectorStore

__all__ = [
    "AsyncOnlineStore",
    "AsyncVectorStore",
    "FeatureStore",
    "IngestStore",
    "OnlineStore",
    "Store",
    "TrainingSource",
    "VectorStore",
]
