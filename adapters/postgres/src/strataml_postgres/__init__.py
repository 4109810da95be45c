"""PostgreSQL (+ pgvector) adapters for strataml.

=========  ==============================  ============================================
type       roles                           how
=========  ==============================  ============================================
postgres   ingest, features, training      JSONB streams (COPY), SQL feature views
                                           transpiled with sqlglot, LATERAL point-in-time
                                           joins, server-side cursor scans to Arrow
pgvector   vectors                         HNSW (cosine / l2 / inner product), iterative
                                           index scans, tsvector + reciprocal-rank fusion
=========  ==============================  ============================================

Stores of one stack that use the same URL share one connection pool.
"""

from __future__ import annotations

from typing import Any

from strataml.capabilities import Capabilities
from strataml.filters import ALL_OPS
from strataml.registry import Adapter, StackContext
from strataml_postgres.config import PostgresConfig

__all__ = ["PGVECTOR", "POSTGRES", "PostgresConfig", "database"]


def database(config: PostgresConfig, ctx: StackContext) -> Any:
    """The stack's shared pool for this URL and schema."""
    from strataml_postgres.pool import PgDatabase

    key = ("postgres", config.url.get_secret_value(), config.schema_name)
    return ctx.shared(key, lambda: PgDatabase(config), lambda db: db.close())


INGEST_CAPS = Capabilities(
    dense=False,
    transactions=True,
    max_batch_rows=1_000_000,
    max_record_bytes=64 * 1024 * 1024,
)
FEATURES_CAPS = Capabilities(dense=False, transactions=True)
TRAINING_CAPS = Capabilities(dense=False, transactions=True, snapshots=True)
VECTORS_CAPS = Capabilities(
    filter_ops=ALL_OPS,
    dense=True,
    keyword=True,
    hybrid=True,
    metrics=frozenset({"cosine", "l2", "dot"}),
    tenants=True,
    aliases=True,
    async_api=True,
    transactions=True,
    max_dim=16_000,
    max_batch_rows=100_000,
)


def _ingest(config: PostgresConfig, ctx: StackContext) -> Any:
    from strataml_postgres.ingest import PostgresIngestStore

    return PostgresIngestStore(database(config, ctx))


def _features(config: PostgresConfig, ctx: StackContext) -> Any:
    from strataml_postgres.features import PostgresFeatureStore

    return PostgresFeatureStore(database(config, ctx))


def _training(config: PostgresConfig, ctx: StackContext) -> Any:
    from strataml_postgres.training import PostgresTrainingSource

    return PostgresTrainingSource(database(config, ctx))


def _vectors(config: PostgresConfig, ctx: StackContext) -> Any:
    from strataml_postgres.vectors import PgVectorStore

    return PgVectorStore(
        database(config, ctx),
        ef_search=config.hnsw_ef_search,
        hnsw_m=config.hnsw_m,
        hnsw_ef_construction=config.hnsw_ef_construction,
        iterative_scan=config.hnsw_iterative_scan,
        max_scan_tuples=config.hnsw_max_scan_tuples,
        build_memory=config.hnsw_build_memory,
    )


POSTGRES = Adapter(
    name="postgres",
    package="strataml-postgres",
    config=PostgresConfig,
    factories={"ingest": _ingest, "features": _features, "training": _training},
    capabilities={"ingest": INGEST_CAPS, "features": FEATURES_CAPS, "training": TRAINING_CAPS},
)

PGVECTOR = Adapter(
    name="pgvector",
    package="strataml-postgres",
    config=PostgresConfig,
    factories={"vectors": _vectors},
    capabilities={"vectors": VECTORS_CAPS},
)
