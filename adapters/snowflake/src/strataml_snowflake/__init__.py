"""Snowflake adapter for strataml.

=========  ==============================  ============================================
type       roles                           how
=========  ==============================  ============================================
snowflake  features, training              SQL feature views transpiled with sqlglot,
                                           window-based point-in-time joins, bulk loads
                                           through a stage (Parquet + COPY INTO),
                                           versioned datasets scanned with
                                           ``fetch_arrow_batches``
=========  ==============================  ============================================

Stores of one stack that use the same account, database and schema share one session pool.
Importing this module does not import the connector; building a store does.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.filters import ALL_OPS
from strataml.registry import Adapter, StackContext
from strataml_snowflake.config import SnowflakeConfig

__all__ = ["FEATURES_CAPS", "SNOWFLAKE", "TRAINING_CAPS", "SnowflakeConfig", "database"]


def database(config: SnowflakeConfig, ctx: StackContext) -> Any:
    """The stack's shared session pool for this account, database and schema."""
    from strataml_snowflake.db import SnowflakeDatabase

    key = (
        "snowflake",
        config.account,
        config.endpoint(),
        config.user,
        config.database,
        config.schema_name,
    )
    return ctx.shared(key, lambda: SnowflakeDatabase(config), lambda db: db.close())


FEATURES_CAPS = Capabilities(filter_ops=ALL_OPS, dense=False, transactions=True)
TRAINING_CAPS = Capabilities(filter_ops=ALL_OPS, dense=False, transactions=True, snapshots=True)


def _features(config: SnowflakeConfig, ctx: StackContext) -> Any:
    from strataml_snowflake.features import SnowflakeFeatureStore

    return SnowflakeFeatureStore(database(config, ctx))


def _training(config: SnowflakeConfig, ctx: StackContext) -> Any:
    from strataml_snowflake.training import SnowflakeTrainingSource

    return SnowflakeTrainingSource(database(config, ctx))


SNOWFLAKE = Adapter(
    name="snowflake",
    package="strataml-snowflake",
    config=SnowflakeConfig,
    factories={"features": _features, "training": _training},
    capabilities={"features": FEATURES_CAPS, "training": TRAINING_CAPS},
)
