"""Settings of the PostgreSQL adapters (the ``[role]`` table of a profile)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from strataml.config import AdapterConfig


class PostgresConfig(AdapterConfig):
    """Connection settings shared by every PostgreSQL-backed store.

    ``url`` is a libpq URI (``postgresql://user:password@host:port/db``); it is a secret
    because it may carry a password, and never appears in reprs or errors.
    """

    type: Literal["postgres", "pgvector"] = "postgres"
    url: SecretStr
    schema_name: str = Field(default="strataml", alias="schema", pattern=r"^[a-z_][a-z0-9_]*$")
    pool_min_size: int = Field(default=1, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    pool_timeout_s: float = Field(default=10.0, gt=0, description="wait for a free connection")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    statement_timeout_ms: int = Field(default=0, ge=0, description="0 = no limit")
    application_name: str = "strataml"
    # pgvector (type = "pgvector") only
    hnsw_m: int = Field(default=16, ge=2, le=100)
    hnsw_ef_construction: int = Field(default=64, ge=4, le=1000)
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000)
    hnsw_iterative_scan: Literal["relaxed_order", "strict_order", "off"] = "relaxed_order"
    hnsw_max_scan_tuples: int = Field(default=20_000, ge=1)
    hnsw_build_memory: str | None = Field(default="512MB", pattern=r"^\d+(kB|MB|GB)$")

    model_config = AdapterConfig.model_config | {"populate_by_name": True}
