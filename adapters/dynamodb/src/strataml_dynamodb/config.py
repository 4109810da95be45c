"""Settings of the DynamoDB stores (one model for the ingest and the online role)."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from strataml.config import AdapterConfig

__all__ = ["DynamoDBConfig"]


class DynamoDBConfig(AdapterConfig):
    """How to reach DynamoDB and how the stores lay out their tables.

    * ``region`` / ``endpoint_url``: the AWS region, and an endpoint override for a local
      emulator (``moto_server``, DynamoDB Local) or a VPC endpoint (empty: AWS itself).
    * Credentials: ``aws_access_key_id`` + ``aws_secret_access_key`` (+ ``aws_session_token``)
      are secrets; when absent, boto3's default chain is used (environment, shared config
      ``profile``, instance/task role). For a loopback ``endpoint_url`` (an emulator) without
      credentials, dummy ones are used unless ``dummy_credentials = false``.
    * ``table_prefix``: the stores use the tables ``<prefix>ingest``, ``<prefix>ingest_keys``
      (idempotency keys) and ``<prefix>online``
      (created on first use when ``create_tables``; stream and view names never become table
      names, so every strataml name works).
    * ``billing_mode`` (+ ``read_capacity_units`` / ``write_capacity_units`` for
      ``PROVISIONED``) apply only to tables this adapter creates.
    * ``connect_timeout_s`` / ``read_timeout_s`` / ``max_retries``: botocore's per-request
      timeouts and retries (throttling, 5xx); ``max_retries`` also bounds the retries of
      unprocessed batch items and keys (exponential backoff with jitter).
    * ``consistent_reads``: strongly consistent online reads (a read sees every write that
      returned before it); ``false`` halves read cost, reads may then lag writes briefly.
      Ingest reads are always strongly consistent (the cursor contract needs it).
    * ``view_cache_s``: how long an online store trusts its copy of a view's metadata.
    * ``batch_concurrency``: how many ``BatchWriteItem`` / ``BatchGetItem`` requests of one
      ingest call run at once (a batch of 5 000 keyed records is 200+ requests of 25 items),
      and how many of retention's conditional ``DeleteItem`` requests (one per idempotency key).
    * ``lease_s`` / ``lease_wait_s``: a large ingest batch holds its stream's write lease
      (renewed while it writes); a writer waits up to ``lease_wait_s`` for another's lease, or
      keeps retrying that long while other writers of the stream commit first.
    """

    type: Literal["dynamodb"] = "dynamodb"
    region: str = Field(default="us-east-1", min_length=1)
    endpoint_url: str | None = None
    table_prefix: str = Field(default="strataml_", pattern=r"^[A-Za-z0-9_.-]{0,200}$")
    profile: str | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    dummy_credentials: bool | None = None
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=8, ge=0, le=20)
    max_pool_connections: int = Field(default=20, ge=1)
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST"
    read_capacity_units: int = Field(default=5, ge=1)
    write_capacity_units: int = Field(default=5, ge=1)
    create_tables: bool = True
    consistent_reads: bool = True
    view_cache_s: float = Field(default=1.0, ge=0)
    batch_concurrency: int = Field(default=4, ge=1, le=32)
    lease_s: float = Field(default=30.0, gt=0)
    lease_wait_s: float = Field(default=30.0, ge=0)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        """An empty endpoint (``${STRATAML_DYNAMODB_ENDPOINT:-}``) means AWS itself."""
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint_url must be an http(s) URL, got {value!r}")
        return value.strip()

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> DynamoDBConfig:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("set both aws_access_key_id and aws_secret_access_key, or neither")
        if self.aws_session_token is not None and self.aws_access_key_id is None:
            raise ValueError("aws_session_token needs aws_access_key_id/aws_secret_access_key")
        if self.batch_concurrency > self.max_pool_connections:
            raise ValueError(
                f"batch_concurrency ({self.batch_concurrency}) cannot exceed "
                f"max_pool_connections ({self.max_pool_connections})"
            )
        return self

    @property
    def ingest_table(self) -> str:
        """The ingest store's table name."""
        return f"{self.table_prefix}ingest"

    @property
    def ingest_keys_table(self) -> str:
        """The ingest store's table of idempotency keys."""
        return f"{self.table_prefix}ingest_keys"

    @property
    def online_table(self) -> str:
        """The online store's table name."""
        return f"{self.table_prefix}online"

    def uses_dummy_credentials(self) -> bool:
        """Whether to sign with dummy credentials (an emulator on a loopback endpoint)."""
        if self.aws_access_key_id is not None:
            return False
        if self.dummy_credentials is not None:
            return self.dummy_credentials
        if not self.endpoint_url:
            return False
        host = urlsplit(self.endpoint_url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
