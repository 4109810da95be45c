"""Settings of the Qdrant vector store (the ``[vectors]`` table of a profile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from strataml.config import AdapterConfig

__all__ = ["REQUEST_LIMIT_BYTES", "QdrantConfig"]

#: Qdrant's default ``service.max_request_size_mb`` (32 MiB).
REQUEST_LIMIT_BYTES = 32 * 1024 * 1024


class QdrantConfig(AdapterConfig):
    """Where the Qdrant store lives and how it searches.

    **Server or local mode.** ``url`` (``http(s)://host:6333``) names a Qdrant server; it is a
    secret because it may carry credentials, and ``api_key`` is one too: neither appears in
    reprs or errors. Without a ``url`` (or with an empty one, as ``"${STRATAML_QDRANT_URL:-}"``
    gives when the variable is unset) the store runs in qdrant-client's embedded *local mode*
    on the directory ``path`` (one process at a time; exhaustive search, fine for tests, demos
    and up to ~20k points; every point written is committed to SQLite on its own, so bulk
    loads are slow on slow disks). ``path = ":memory:"`` keeps local mode in memory.

    **Names.** ``collection_prefix`` is put before every collection and alias name on the
    server, so several stacks can share one; :meth:`collections` lists only those under it.

    **Index and search.** ``hnsw_m`` / ``hnsw_ef_construct`` are set when a collection is
    created (multi-tenant collections use ``payload_m = hnsw_payload_m`` and ``m = 0``: one
    graph per tenant, Qdrant's multitenancy layout); ``hnsw_ef`` is the search-time candidate
    list (``None``: the server's default), ``exact`` forces exhaustive search.

    **Keyword search** is BM25 over sparse vectors with Qdrant's IDF modifier: ``bm25_k1``,
    ``bm25_b`` and ``bm25_avg_len`` (the average document length, in tokens, that BM25's
    length normalisation divides by) are fixed per collection when it is created.

    **Limits.** Upserts are split into requests of at most ``max_batch_rows`` points and
    ``max_batch_bytes`` bytes (the server's request limit, 32 MiB by default); one record
    larger than that raises :class:`~strataml.errors.LimitExceeded` before anything is written.

    ``metadata_cache_s`` bounds how long a store trusts its copy of a collection's shape
    (dimension, metric, field types) before reading it again.
    """

    type: Literal["qdrant"] = "qdrant"
    url: SecretStr | None = None
    api_key: SecretStr | None = None
    path: Path | None = None
    prefer_grpc: bool = False
    grpc_port: int = Field(default=6334, ge=1, le=65535)
    timeout_s: int = Field(default=30, ge=1)
    collection_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_\-]{0,64}$")
    hnsw_m: int = Field(default=16, ge=4, le=128)
    hnsw_ef_construct: int = Field(default=100, ge=4, le=4096)
    hnsw_payload_m: int = Field(default=16, ge=4, le=128)
    hnsw_ef: int | None = Field(default=None, ge=1, le=65536)
    exact: bool = False
    bm25_k1: float = Field(default=1.2, gt=0, le=10)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    bm25_avg_len: float = Field(default=256.0, gt=0)
    max_batch_rows: int = Field(default=256, ge=1, le=100_000)
    max_batch_bytes: int = Field(default=REQUEST_LIMIT_BYTES, ge=64 * 1024)
    index_fields: bool = Field(
        default=True, description="create a payload index for each metadata field (server)"
    )
    metadata_cache_s: float = Field(default=1.0, ge=0)
    optimize_timeout_s: float = Field(default=300.0, gt=0)

    @field_validator("url", "api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, SecretStr) and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https:// (e.g. http://127.0.0.1:6333)")
        return value

    @model_validator(mode="after")
    def _where(self) -> QdrantConfig:
        if self.url is None and self.path is None:
            raise ValueError("set url (a Qdrant server) or path (embedded local mode)")
        return self

    @property
    def local(self) -> bool:
        """Whether the store runs in embedded local mode (no ``url``)."""
        return self.url is None
