"""Settings of the Weaviate vector store (the ``[vectors]`` table of a profile)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from strataml.config import AdapterConfig

__all__ = ["WeaviateConfig"]


class WeaviateConfig(AdapterConfig):
    """Where the Weaviate server is and how collections are built.

    **Connection.** ``url`` is the REST endpoint (``http://127.0.0.1:8080``, ``https://...``);
    the client also talks gRPC to ``grpc_host`` (default: the URL's host) on ``grpc_port``
    (``grpc_secure`` defaults to ``https``). ``url`` and ``api_key`` are secrets: neither
    appears in reprs or errors. ``skip_init_checks`` skips the client's startup health check.

    **Names.** Every collection and alias lives under ``collection_prefix`` (an uppercase letter,
    then letters and digits): several stacks can share one server, and :meth:`collections`
    lists only those under it (see :mod:`strataml_weaviate.names` for the mapping).

    **Index.** HNSW with ``hnsw_ef_construction`` / ``hnsw_max_connections`` set when a
    collection is created and ``hnsw_ef`` at search time (``None``: Weaviate's dynamic ef).
    BM25 uses ``bm25_k1`` / ``bm25_b``, no stop words (every token counts, as in BM25).

    **Limits.** Upserts are sent in requests of at most ``batch_size`` objects and
    ``max_request_bytes`` (below the server's gRPC message limit, ``GRPC_MAX_MESSAGE_SIZE``,
    100 MB by default); a single record larger than that raises
    :class:`~strataml.errors.LimitExceeded` before anything is written. ``metadata_cache_s``
    bounds how long a store trusts its copy of a collection's shape and field types.
    """

    type: Literal["weaviate"] = "weaviate"
    url: SecretStr
    api_key: SecretStr | None = None
    grpc_host: str | None = None
    grpc_port: int = Field(default=50051, ge=1, le=65535)
    grpc_secure: bool | None = None
    skip_init_checks: bool = False
    timeout_init_s: float = Field(default=10.0, gt=0)
    timeout_query_s: float = Field(default=60.0, gt=0)
    timeout_insert_s: float = Field(default=120.0, gt=0)
    collection_prefix: str = Field(default="Strataml", pattern=r"^[A-Z][A-Za-z0-9]{0,31}$")
    hnsw_ef: int | None = Field(default=None, ge=1, le=100_000)
    hnsw_ef_construction: int = Field(default=128, ge=4, le=4096)
    hnsw_max_connections: int = Field(default=32, ge=4, le=256)
    bm25_k1: float = Field(default=1.2, gt=0, le=10)
    bm25_b: float = Field(default=0.75, ge=0, le=1)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    metadata_cache_s: float = Field(default=1.0, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http(s)://HOST[:PORT] (e.g. http://127.0.0.1:8080)")
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def endpoints(self) -> tuple[str, int, bool, str, int, bool]:
        """``(http_host, http_port, http_secure, grpc_host, grpc_port, grpc_secure)``."""
        parts = urlsplit(self.url.get_secret_value())
        secure = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if secure else 8080)
        grpc_secure = secure if self.grpc_secure is None else self.grpc_secure
        return host, port, secure, self.grpc_host or host, self.grpc_port, grpc_secure
