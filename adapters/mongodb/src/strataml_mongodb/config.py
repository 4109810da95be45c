"""Settings of the MongoDB ingest store (the ``[ingest]`` table of a profile)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from strataml.config import AdapterConfig

__all__ = ["MongoDBConfig"]


class MongoDBConfig(AdapterConfig):
    """Where the streams live and how batches are made atomic.

    ``url`` is a MongoDB connection string (``mongodb://user:password@host:27017/?replicaSet=rs0``
    or ``mongodb+srv://...``); it is a secret because it may carry a password, and never appears
    in reprs or errors. ``database`` holds two collections, ``<collection_prefix>_streams`` (one
    document per stream: its sequence counter and in-flight batches) and
    ``<collection_prefix>_records`` (the records of every stream).

    ``transactions`` chooses how a batch is made all-or-nothing:

    * ``"auto"`` (default): multi-document transactions when the deployment supports them (a
      replica set or a sharded cluster), the staged-batch protocol on a standalone server;
    * ``"always"``: transactions, and :class:`~strataml.errors.ConfigError` on a standalone;
    * ``"never"``: the staged-batch protocol everywhere (see :mod:`strataml_mongodb.ingest`).

    ``batch_timeout_s`` (staged protocol only) is how long a batch may stay in flight before
    readers treat it as abandoned and delete what it wrote; readers of its stream see nothing
    committed after it until it commits or expires, so keep it well above the slowest batch.

    ``write_concern`` is ``"majority"`` (default: a batch is acknowledged once a majority of the
    replica set has it) or ``1`` (the primary only). Timeouts are in milliseconds.
    """

    type: Literal["mongodb"] = "mongodb"
    url: SecretStr
    database: str = Field(default="strataml", pattern=r"^[A-Za-z0-9_\-]{1,63}$")
    collection_prefix: str = Field(
        default="strataml_ingest", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
    )
    transactions: Literal["auto", "always", "never"] = "auto"
    batch_timeout_s: float = Field(default=300.0, gt=0, le=86_400)
    write_concern: Literal["majority", 1] = "majority"
    server_selection_timeout_ms: int = Field(default=10_000, ge=1)
    connect_timeout_ms: int = Field(default=10_000, ge=1)
    socket_timeout_ms: int | None = Field(default=None, ge=1, description="None: no limit")
    max_pool_size: int = Field(default=50, ge=1)
    app_name: str = "strataml"

    @field_validator("url")
    @classmethod
    def _mongo_url(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(
                "url must be a MongoDB connection string (mongodb://... or mongodb+srv://...)"
            )
        return value

    @field_validator("write_concern", mode="before")
    @classmethod
    def _w(cls, value: Any) -> Any:
        return 1 if value in ("1", 1) else value
