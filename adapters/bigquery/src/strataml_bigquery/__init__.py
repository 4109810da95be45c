"""Google BigQuery adapter for strataml (google-cloud-bigquery).

=========  ======================  ===================================================
type       roles                   how
=========  ======================  ===================================================
bigquery   features, training      SQL feature views transpiled with sqlglot, window-based
                                   point-in-time joins, Parquet load jobs with
                                   transactional checkpoints, immutable table-per-version
                                   training datasets scanned as Arrow (Storage Read API
                                   or REST pages), a dry-run cost guard on every query
=========  ======================  ===================================================

The feature store and the training source of one stack share one client per project and
dataset. ``import strataml_bigquery`` does not import the Google client: the stores do.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.filters import ALL_OPS
from strataml.registry import Adapter, StackContext
from strataml_bigquery.config import BigQueryConfig

__all__ = ["BIGQUERY", "FEATURES_CAPS", "TRAINING_CAPS", "BigQueryConfig", "shared_engine"]

#: Loads commit with their checkpoint in one BigQuery transaction.
FEATURES_CAPS = Capabilities(filter_ops=ALL_OPS, dense=False, transactions=True)
#: Every version is its own immutable table: snapshots are reproducible.
TRAINING_CAPS = Capabilities(filter_ops=ALL_OPS, dense=False, transactions=True, snapshots=True)


def shared_engine(config: BigQueryConfig, ctx: StackContext) -> Any:
    """The stack's shared client for this project and dataset."""
    from strataml_bigquery.engine import BigQueryEngine

    key = ("bigquery", config.project, config.dataset, config.api_endpoint)
    return ctx.shared(key, lambda: BigQueryEngine(config), lambda e: e.close())


def _features(config: BigQueryConfig, ctx: StackContext) -> Any:
    from strataml_bigquery.features import BigQueryFeatureStore

    return BigQueryFeatureStore(shared_engine(config, ctx))


def _training(config: BigQueryConfig, ctx: StackContext) -> Any:
    from strataml_bigquery.training import BigQueryTrainingSource

    return BigQueryTrainingSource(shared_engine(config, ctx))


BIGQUERY = Adapter(
    name="bigquery",
    package="strataml-bigquery",
    config=BigQueryConfig,
    factories={"features": _features, "training": _training},
    capabilities={"features": FEATURES_CAPS, "training": TRAINING_CAPS},
)
