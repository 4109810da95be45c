"""Finding adapters: built-in ones plus any distribution exposing the ``strataml.adapters``
entry-point group, loaded lazily (importing an adapter never imports its driver until a store is
actually built).

An adapter distribution declares, in its ``pyproject.toml``::

    [project.entry-points."strataml.adapters"]
    postgres = "strataml_postgres:ADAPTER"

where ``ADAPTER`` is an :class:`Adapter`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from strataml.capabilities import Capabilities
from strataml.config import ROLES, AdapterConfig
from strataml.errors import AdapterNotInstalled, ConfigError

__all__ = ["INSTALL_HINTS", "Adapter", "StackContext", "available", "get_adapter"]

GROUP = "strataml.adapters"

#: Backend type -> the distribution that provides it, for install hints.
INSTALL_HINTS: dict[str, str] = {
    "postgres": "strataml-postgres",
    "pgvector": "strataml-postgres",
    "redis": "strataml-redis",
    "redis-cluster": "strataml-redis",
    "mongodb": "strataml-mongodb",
    "dynamodb": "strataml-dynamodb",
    "bigquery": "strataml-bigquery",
    "snowflake": "strataml-snowflake",
    "qdrant": "strataml-qdrant",
    "weaviate": "strataml-weaviate",
    "milvus": "strataml-milvus",
    "pinecone": "strataml-pinecone",
    "kafka": "strataml-kafka",
    "spark": "strataml-spark",
    "delta": "strataml-delta",
    "cassandra": "strataml-cassandra",
    "s3": "strataml-objectstore",
}

#: Adapters that ship inside the core distribution (the embedded ``local`` profile).
_BUILTIN: dict[str, str] = {
    "sqlite": "strataml.local:SQLITE",
    "duckdb": "strataml.local:DUCKDB",
    "lmdb": "strataml.local:LMDB",
    "lancedb": "strataml.local:LANCEDB",
}

Factory = Callable[[Any, "StackContext"], Any]


@dataclass(frozen=True)
class Adapter:
    """A backend's declaration: its settings model, which roles it can fill and how to build
    each store, and what each store can do (checked against profiles before anything connects).
    """

    name: str
    package: str
    config: type[AdapterConfig]
    factories: Mapping[str, Factory]
    capabilities: Mapping[str, Capabilities]
    async_factories: Mapping[str, Factory] = field(default_factory=dict)

    def __post_init__(self) -> None:
        bad = set(self.factories) - set(ROLES)
        if bad:
            raise ConfigError(f"adapter {self.name!r} declares unknown roles {sorted(bad)}")
        missing = set(self.factories) - set(self.capabilities)
        if missing:
            raise ConfigError(f"adapter {self.name!r} has no capabilities for {sorted(missing)}")


class StackContext:
    """Shared resources of one open stack (e.g. one DuckDB connection serving both the feature
    store and the training source), closed with the stack."""

    def __init__(self) -> None:
        self._shared: dict[Any, Any] = {}
        self._closers: list[Callable[[], None]] = []

    def shared(
        self, key: Any, factory: Callable[[], Any], close: Callable[[Any], None] | None = None
    ) -> Any:
        if key not in self._shared:
            value = factory()
            self._shared[key] = value
            if close is not None:
                self._closers.append(lambda: close(value))
        return self._shared[key]

    def close(self) -> None:
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except Exception:  # noqa: BLE001 - closing must not mask the original error
                pass
        self._shared.clear()


def _load(target: str) -> Adapter:
    module, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    if not isinstance(obj, Adapter):
        raise ConfigError(f"{target} is not a strataml Adapter")
    return obj


_cache: dict[str, Adapter] = {}


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def get_adapter(name: str, role: str | None = None) -> Adapter:
    """The adapter called ``name``; :class:`AdapterNotInstalled` with an install hint if absent."""
    if name in _cache:
        return _cache[name]
    target = _BUILTIN.get(name)
    if target is not None:
        adapter = _load(target)
    else:
        ep = _entry_points().get(name)
        if ep is None:
            if name in INSTALL_HINTS:
                raise AdapterNotInstalled(name, INSTALL_HINTS[name], role)
            known = ", ".join(sorted(available()))
            raise ConfigError(f"unknown backend type {name!r}; installed backends: {known}")
        try:
            adapter = ep.load()
        except ImportError as exc:
            package = INSTALL_HINTS.get(name, ep.dist.name if ep.dist else name)
            raise AdapterNotInstalled(name, package, role) from exc
        if not isinstance(adapter, Adapter):
            raise ConfigError(f"entry point {name!r} ({ep.value}) is not a strataml Adapter")
    _cache[name] = adapter
    return adapter


def available() -> list[str]:
    """Names of every installed backend type."""
    return sorted(set(_BUILTIN) | set(_entry_points()))
