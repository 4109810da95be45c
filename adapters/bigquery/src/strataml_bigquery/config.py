"""Settings of the BigQuery adapter (the ``[features]`` / ``[training]`` table of a profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from strataml.config import AdapterConfig

__all__ = ["BigQueryConfig"]


class BigQueryConfig(AdapterConfig):
    """Where the feature store and training source live, how to authenticate, and the limits.

    Credentials, in order: ``credentials_json`` (the key file's content, a secret), then
    ``credentials_file`` (its path), then -- when ``api_endpoint`` points at an emulator --
    anonymous credentials, else Application Default Credentials. ``credentials_json`` never
    appears in reprs, logs or errors.

    ``max_bytes_billed`` is the cost guard: every query is dry-run first and refused with
    :class:`~strataml.errors.LimitExceeded` when BigQuery estimates it would process more bytes;
    the same number is passed to the job as ``maximum_bytes_billed`` so BigQuery enforces it too.
    """

    type: Literal["bigquery"] = "bigquery"
    project: str = Field(pattern=r"^[a-z][a-z0-9\-:.]{0,127}$", description="Google Cloud project")
    dataset: str = Field(
        default="strataml",
        pattern=r"^[A-Za-z0-9_]{1,1024}$",
        description="the BigQuery dataset holding tables, views and training datasets",
    )
    location: str | None = Field(default=None, description="dataset location, e.g. US or EU")
    credentials_file: Path | None = Field(default=None, description="service account key file")
    credentials_json: SecretStr | None = Field(
        default=None, description="service account key (JSON text); a secret"
    )
    api_endpoint: str | None = Field(
        default=None, description="REST endpoint override, e.g. an emulator: http://127.0.0.1:9050"
    )
    read_api: Literal["auto", "storage", "rest"] = Field(
        default="auto",
        description="how query results are read: the Storage Read API (gRPC, Arrow), REST "
        "pages, or auto (Storage Read API when installed and reachable, else REST)",
    )
    storage_api_endpoint: str | None = Field(
        default=None,
        description="Storage Read API endpoint override: host:port (TLS) or grpc://host:port "
        "(plaintext, emulators)",
    )
    max_bytes_billed: int | None = Field(
        default=None, ge=1, description="refuse queries estimated to process more bytes"
    )
    create_dataset: bool = Field(default=True, description="create the dataset if missing")
    query_timeout_s: float = Field(default=600.0, gt=0, description="wait for one query job")
    request_timeout_s: float = Field(default=60.0, gt=0, description="one HTTP request")
    staging_expiration_s: int = Field(
        default=3600,
        ge=60,
        description="expiry of the staging tables loads and point-in-time joins create (they "
        "are deleted when the call ends; the expiry cleans up after a crash)",
    )
    scan_page_rows: int = Field(
        default=50_000,
        ge=1,
        description="rows fetched per REST page of a scan (batches are cut to batch_size)",
    )

    @field_validator("api_endpoint", "storage_api_endpoint", "location", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``""`` means unset, so profiles can write ``${STRATAML_BQ_ENDPOINT:-}``."""
        return None if value == "" else value

    @field_validator("max_bytes_billed", mode="before")
    @classmethod
    def _empty_is_unlimited(cls, value: Any) -> Any:
        return None if value == "" else value

    @model_validator(mode="after")
    def _one_credential(self) -> BigQueryConfig:
        if self.credentials_file is not None and self.credentials_json is not None:
            raise ValueError("give credentials_file or credentials_json, not both")
        return self
