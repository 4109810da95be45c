"""Settings of the Snowflake adapter (the ``[features]`` / ``[training]`` table of a profile)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from strataml.config import AdapterConfig

__all__ = ["SnowflakeConfig"]

_IDENT = r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$"


class SnowflakeConfig(AdapterConfig):
    """How to reach Snowflake and where strataml keeps its objects.

    ``database`` and ``schema`` follow strataml's naming rule for Snowflake (see
    :mod:`strataml_snowflake.names`): lowercase names are Snowflake's case-insensitive
    (uppercase) identifiers, so ``schema = "strataml"`` is the schema ``STRATAML``; names with
    uppercase letters are used exactly as written. ``password`` is a secret: it never appears in
    reprs, logs or errors. ``host``/``port``/``protocol`` override the endpoint derived from
    ``account`` (the local emulator: ``host = "127.0.0.1"``, ``protocol = "http"``).
    """

    type: Literal["snowflake"] = "snowflake"
    account: str = Field(min_length=1)
    user: str = Field(default="strataml", min_length=1)
    password: SecretStr | None = None
    authenticator: str | None = Field(
        default=None,
        description="passed to the connector (e.g. 'externalbrowser'); default: password",
    )
    database: str = Field(default="strataml", pattern=_IDENT)
    schema_name: str = Field(default="strataml", alias="schema", pattern=_IDENT)
    warehouse: str | None = Field(default=None, pattern=_IDENT)
    role: str | None = Field(default=None, pattern=_IDENT)
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65_535)
    protocol: Literal["https", "http"] = "https"
    url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/:@\s]+(:\d{1,5})?/?$",
        description="endpoint override, e.g. http://127.0.0.1:8080 (the emulator)",
    )
    create_schema: bool = Field(
        default=True, description="CREATE SCHEMA IF NOT EXISTS on first use (needs the privilege)"
    )
    login_timeout_s: int = Field(default=60, ge=1)
    network_timeout_s: int | None = Field(
        default=None,
        ge=1,
        description="bound on one request including the connector's retries (None: its default)",
    )
    statement_timeout_s: int = Field(
        default=0, ge=0, description="STATEMENT_TIMEOUT_IN_SECONDS for the session; 0 = account's"
    )
    pool_max_size: int = Field(default=8, ge=1, description="sessions open at once")
    pool_timeout_s: float = Field(default=30.0, gt=0, description="wait for a free session")
    stage_file_rows: int = Field(
        default=500_000, ge=1, description="rows per Parquet file staged by load/write"
    )
    query_tag: str = Field(default="strataml", max_length=2000)

    model_config = AdapterConfig.model_config | {"populate_by_name": True}

    @field_validator(
        "password", "authenticator", "warehouse", "role", "host", "port", "url", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    def endpoint(self) -> tuple[str | None, int | None, str]:
        """``(host, port, protocol)`` to connect to: ``url`` when set, else the fields."""
        if self.url:
            parts = urlsplit(self.url)
            return parts.hostname, parts.port, parts.scheme
        return self.host, self.port, self.protocol
