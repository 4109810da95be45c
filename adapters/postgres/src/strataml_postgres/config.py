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

    model_config = AdapterConfig.model_config | {"populate_by_name": True}
