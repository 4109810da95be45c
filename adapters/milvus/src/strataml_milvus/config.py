"""Settings of the Milvus vector store (the ``[vectors]`` table of a profile)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from strataml.config import AdapterConfig

__all__ = ["MilvusConfig"]

_SCHEME = re.compile(r"^(https?|tcp|grpcs?|unix)://", re.IGNORECASE)
_CREDENTIALS = re.compile(r"^[a-z+]+://[^/@\s]*@", re.IGNORECASE)

Scalar = int | float | str | bool


class MilvusConfig(AdapterConfig):
    """How to reach Milvus and how collections are built.

    ``uri`` is either a server endpoint (``http://host:19530``, ``https://...``) or the path of a
    Milvus Lite database file (``./vectors/milvus.db``): the store then starts Milvus Lite (the
    ``milvus-lite`` package) as a subprocess bound to 127.0.0.1 and stops it on ``close()``.
    Credentials go in ``token`` (``"user:password"`` or an API key), never in the URI.

    * ``collection_prefix`` namespaces every Milvus collection this store creates (see
      :mod:`strataml_milvus.names` for the name mapping).
    * ``index_type`` / ``index_params``: the dense index of new collections (``AUTOINDEX``: the
      server's choice; ``HNSW`` with ``{"M": 16, "efConstruction": 200}``; ...).
      ``search_params``: passed with every dense search (``{"ef": 128}``, ``{"nprobe": 16}``;
      ``ef`` is raised to ``k`` where the index needs it).
    * ``consistency_level``: ``Strong`` (default) makes every read see every acknowledged write,
      so ``count`` right after ``delete`` or ``upsert`` is exact; weaker levels trade that for
      latency.
    * ``max_request_bytes`` / ``max_request_rows``: upserts are split into requests within both
      (Milvus accepts at most 64 MiB per insert); a single record larger than
      ``max_request_bytes`` raises :class:`~strataml.errors.LimitExceeded` before anything is
      written.
    * ``text_max_bytes``: the ``VARCHAR`` capacity of the text field (UTF-8 bytes, <= 65535).
    * ``tenant_partition_key``: multi-tenant collections put the tenant in a partition-key field
      (``num_partitions`` partitions) so a tenant's searches touch its partition only;
      ``"auto"`` does so on servers and not on Milvus Lite (which cannot filter partition-key
      collections). The tenant predicate is part of every expression either way.
    * ``filter_values``: ``"bind"`` sends filter values as templated-expression parameters
      (Milvus >= 2.5), ``"inline"`` renders them as escaped literals, ``"auto"`` binds where the
      server supports it.
    * ``analyzer`` and ``bm25_k1`` / ``bm25_b``: the text analyzer of the BM25 function and the
      BM25 parameters of new collections.
    * ``metadata_cache_s``: how stale this store's copy of a collection's field types and of the
      alias table may be when another process changes them.
    """

    type: Literal["milvus"] = "milvus"
    uri: str = Field(min_length=1)
    token: SecretStr | None = None
    db_name: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_]{0,254})?$")
    collection_prefix: str = Field(default="sml_", pattern=r"^([A-Za-z_][A-Za-z0-9_]{0,63})?$")
    index_type: Literal[
        "AUTOINDEX", "FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "DISKANN", "SCANN"
    ] = "AUTOINDEX"
    index_params: dict[str, Scalar] = Field(default_factory=dict)
    search_params: dict[str, Scalar] = Field(default_factory=dict)
    consistency_level: Literal["Strong", "Session", "Bounded", "Eventually"] = "Strong"
    timeout_s: float = Field(default=30.0, gt=0)
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_request_rows: int = Field(default=5_000, ge=1, le=100_000)
    text_max_bytes: int = Field(default=65_535, ge=1, le=65_535)
    tenant_partition_key: Literal["auto"] | bool = "auto"
    num_partitions: int = Field(default=64, ge=1, le=1024)
    filter_values: Literal["auto", "bind", "inline"] = "auto"
    analyzer: dict[str, str] = Field(default_factory=lambda: {"type": "english"})
    bm25_k1: float = Field(default=1.2, ge=1.2, le=2.0)
    bm25_b: float = Field(default=0.75, ge=0.0, le=1.0)
    metadata_cache_s: float = Field(default=1.0, ge=0.0)

    @field_validator("uri")
    @classmethod
    def _no_credentials(cls, v: str) -> str:
        if _CREDENTIALS.match(v):
            raise ValueError("do not put credentials in the uri; set token instead")
        return v

    @property
    def is_local(self) -> bool:
        """Whether ``uri`` names a Milvus Lite database file rather than a server."""
        return _SCHEME.match(self.uri) is None
