"""The embedded ``local`` backends: no server, data in a directory.

=========  ==============================  ===============================================
type       roles                           engine
=========  ==============================  ===============================================
sqlite     ingest                          SQLite in WAL mode (one writer, many readers)
duckdb     features, training              DuckDB (Arrow in and out, ASOF joins)
lmdb       online                          LMDB memory-mapped B+tree (microsecond reads)
lancedb    vectors                         LanceDB (ANN index, SQL filters, BM25, hybrid)
=========  ==============================  ===============================================

Each store module imports its engine only when a store is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from strataml.capabilities import Capabilities
from strataml.config import AdapterConfig
from strataml.filters import ALL_OPS
from strataml.registry import Adapter, StackContext

__all__ = ["DUCKDB", "LANCEDB", "LMDB", "SQLITE"]


# ------------------------------------------------------------------------------------ sqlite
class SQLiteConfig(AdapterConfig):
    type: Literal["sqlite"] = "sqlite"
    path: Path
    busy_timeout_ms: int = Field(default=10_000, ge=0)
    synchronous: Literal["OFF", "NORMAL", "FULL"] = "NORMAL"


SQLITE_CAPS = Capabilities(
    filter_ops=ALL_OPS,
    dense=False,
    transactions=True,
    max_batch_rows=1_000_000,
    max_record_bytes=16 * 1024 * 1024,
)


def _sqlite_ingest(config: SQLiteConfig, ctx: StackContext) -> Any:
    from strataml.local.sqlite_ingest import SQLiteIngestStore

    return SQLiteIngestStore(
        config.path, busy_timeout_ms=config.busy_timeout_ms, synchronous=config.synchronous
    )


SQLITE = Adapter(
    name="sqlite",
    package="strataml",
    config=SQLiteConfig,
    factories={"ingest": _sqlite_ingest},
    capabilities={"ingest": SQLITE_CAPS},
)


# ------------------------------------------------------------------------------------ duckdb
class DuckDBConfig(AdapterConfig):
    type: Literal["duckdb"] = "duckdb"
    path: Path
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None


DUCKDB_FEATURES_CAPS = Capabilities(filter_ops=ALL_OPS, dense=False, transactions=True)
DUCKDB_TRAINING_CAPS = Capabilities(
    filter_ops=ALL_OPS, dense=False, transactions=True, snapshots=True
)


def _duckdb_engine(config: DuckDBConfig, ctx: StackContext) -> Any:
    from strataml.local.duckdb_engine import DuckDBEngine

    key = ("duckdb", str(Path(config.path).expanduser().resolve()))
    return ctx.shared(
        key,
        lambda: DuckDBEngine(config.path, threads=config.threads, memory_limit=config.memory_limit),
        lambda engine: engine.close(),
    )


def _duckdb_features(config: DuckDBConfig, ctx: StackContext) -> Any:
    from strataml.local.duckdb_features import DuckDBFeatureStore

    return DuckDBFeatureStore(_duckdb_engine(config, ctx))


def _duckdb_training(config: DuckDBConfig, ctx: StackContext) -> Any:
    from strataml.local.duckdb_training import DuckDBTrainingSource

    return DuckDBTrainingSource(_duckdb_engine(config, ctx))


DUCKDB = Adapter(
    name="duckdb",
    package="strataml",
    config=DuckDBConfig,
    factories={"features": _duckdb_features, "training": _duckdb_training},
    capabilities={"features": DUCKDB_FEATURES_CAPS, "training": DUCKDB_TRAINING_CAPS},
)


# -------------------------------------------------------------------------------------- lmdb
class LMDBConfig(AdapterConfig):
    type: Literal["lmdb"] = "lmdb"
    path: Path
    map_size_mb: int = Field(default=4096, ge=1, description="maximum database size")
    sync: bool = Field(default=True, description="fsync on commit (durable) or leave it to the OS")


LMDB_CAPS = Capabilities(
    filter_ops=frozenset(),
    dense=False,
    ttl=True,
    async_api=True,
    transactions=True,
    max_record_bytes=64 * 1024 * 1024,
)


def _lmdb_online(config: LMDBConfig, ctx: StackContext) -> Any:
    from strataml.local.lmdb_online import LMDBOnlineStore

    return LMDBOnlineStore(config.path, map_size_mb=config.map_size_mb, sync=config.sync)


LMDB = Adapter(
    name="lmdb",
    package="strataml",
    config=LMDBConfig,
    factories={"online": _lmdb_online},
    capabilities={"online": LMDB_CAPS},
)


# ----------------------------------------------------------------------------------- lancedb
class LanceDBConfig(AdapterConfig):
    type: Literal["lancedb"] = "lancedb"
    path: Path
    index_threshold: int = Field(
        default=50_000,
        ge=256,
        description="build an ANN index once a collection has this many rows",
    )
    nprobes: int = Field(default=20, ge=1)
    refine_factor: int | None = Field(
        default=5,
        ge=1,
        description="exact re-ranking of refine_factor*k candidates when the index is quantized; "
        "the built-in IVF_FLAT index is exact",
    )


LANCEDB_CAPS = Capabilities(
    filter_ops=ALL_OPS,
    dense=True,
    keyword=True,
    hybrid=True,
    metrics=frozenset({"cosine", "l2", "dot"}),
    tenants=True,
    aliases=True,
    async_api=True,
    max_batch_rows=1_000_000,
)


def _lancedb_vectors(config: LanceDBConfig, ctx: StackContext) -> Any:
    from strataml.local.lancedb_vectors import LanceDBVectorStore

    return LanceDBVectorStore(
        config.path,
        index_threshold=config.index_threshold,
        nprobes=config.nprobes,
        refine_factor=config.refine_factor,
    )


LANCEDB = Adapter(
    name="lancedb",
    package="strataml",
    config=LanceDBConfig,
    factories={"vectors": _lancedb_vectors},
    capabilities={"vectors": LANCEDB_CAPS},
)
