"""Resolving names: collections, aliases and the cached collection info of one store.

A :class:`Directory` answers "which collection is ``name``?" for the store: a collection of
its prefix, or an alias of one (native on a server, registry rows on Milvus Lite, see
:mod:`strataml_milvus.catalog`). It caches each collection's :class:`CollectionMeta` (until an
operation finds the collection gone) and each alias's target for ``metadata_cache_s``, so a
reader of a repointed alias sees the old target or the new one, never an error: an operation
that finds its cached collection gone reloads and retries once (``MilvusVectorStore._fresh``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from strataml.errors import Conflict, NotFound, SchemaError, StrataError, Unsupported
from strataml.filters import Expr, fields_used, parse_filter
from strataml.models import check_name
from strataml_milvus.catalog import CollectionMeta, Registry, meta_from_description, not_found
from strataml_milvus.errors import milvus_call
from strataml_milvus.names import from_milvus_name, to_milvus_name

__all__ = ["Directory"]


class Directory:
    """Name resolution, alias management and collection-info caching (see module docstring)."""

    def __init__(
        self,
        client: Any,
        registry: Registry,
        *,
        prefix: str,
        lite: bool,
        timeout: float,
        cache_s: float,
    ) -> None:
        self._client = client
        self.registry = registry
        self.prefix = prefix
        self.lite = lite
        self._timeout = timeout
        self._cache_s = cache_s
        self._metas: dict[str, CollectionMeta] = {}
        self._aliases: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.RLock()

    def milvus_name(self, name: str) -> str:
        return to_milvus_name(self.prefix, name)

    def clear(self) -> None:
        with self._lock:
            self._metas.clear()
            self._aliases.clear()

    def cached(self, name: Any) -> CollectionMeta | None:
        """The cached info of collection ``name`` (no I/O), if any."""
        return self._metas.get(name) if isinstance(name, str) else None

    def forget(self, collection: str | None = None, alias: str | None = None) -> None:
        with self._lock:
            if collection is not None:
                self._metas.pop(collection, None)
            if alias is not None:
                self._aliases.pop(alias, None)

    # ------------------------------------------------------------------------- lookups
    def describe_milvus(self, milvus_name: str, what: str) -> dict[str, Any] | None:
        """``describe_collection`` output, or ``None`` if there is no such collection (asked
        with ``has_collection`` first: pymilvus logs every failed call as an error)."""
        try:
            with milvus_call(what):
                if not self._client.has_collection(milvus_name, timeout=self._timeout):
                    return None
                desc = self._client.describe_collection(milvus_name, timeout=self._timeout)
        except NotFound:
            return None
        return dict(desc)

    def alias_target(self, name: str) -> str | None:
        """The collection alias ``name`` points at (``None``: not an alias), cached."""
        now = time.monotonic()
        cached = self._aliases.get(name)
        if cached is not None and cached[1] > now:
            return cached[0]
        target: str | None
        if self.lite:
            target = self.registry.alias(name)
        else:
            try:
                with milvus_call(f"resolving alias {name!r}"):
                    desc = self._client.describe_alias(
                        self.milvus_name(name), timeout=self._timeout
                    )
                target = from_milvus_name(self.prefix, str(desc.get("collection_name") or ""))
            except (NotFound, Unsupported):
                target = None
            except StrataError as exc:
                if "alias" not in str(exc).lower():  # "alias ... not found", worded variously
                    raise
                target = None
        self._aliases[name] = (target, now + self._cache_s)
        return target

    def load(self, name: str, *, follow_alias: bool = True) -> CollectionMeta:
        """Read a collection's info (following an alias); :class:`NotFound` if neither."""
        mname = self.milvus_name(name)
        desc = self.describe_milvus(mname, f"reading collection {name!r}")
        if desc is not None:
            real = str(desc.get("collection_name") or mname)
            if real != mname:  # a native alias: the server described its target
                if not follow_alias:
                    raise NotFound(f"{name!r} is an alias, not a collection")
                target = from_milvus_name(self.prefix, real)
                if target is None:
                    raise SchemaError(f"alias {name!r} points at a foreign collection {real!r}")
                self._aliases[name] = (target, time.monotonic() + self._cache_s)
                return self.load(target, follow_alias=False)
            meta = meta_from_description(name, mname, desc)
            meta.set_fields(self.registry.fields(name, meta.token))
            with self._lock:
                self._metas[name] = meta
            return meta
        if follow_alias and self.lite:
            target = self.alias_target(name)
            if target is not None:
                return self.load(target, follow_alias=False)
        self.forget(collection=name)
        if not follow_alias and self.lite and self.registry.alias(name) is not None:
            raise NotFound(f"{name!r} is an alias, not a collection")
        raise not_found(name)

    def meta(self, name: Any) -> CollectionMeta:
        """The collection ``name`` is (itself, or an alias's target), cached."""
        meta = self.cached(name)
        if meta is not None:
            return meta
        check_name("collection", name)
        target = self._aliases.get(name)
        if target is not None and target[0] is not None and target[1] > time.monotonic():
            meta = self._metas.get(target[0])
            if meta is not None:
                return meta
        return self.load(name)

    def existing(self, name: str) -> CollectionMeta | None:
        """Collection ``name`` if it exists; :class:`Conflict` if an alias has the name."""
        if self.alias_target(name) is not None:
            raise Conflict(f"{name!r} is an alias; drop it or choose another collection name")
        try:
            return self.load(name, follow_alias=False)
        except NotFound as exc:
            if "is an alias" in str(exc):
                raise Conflict(f"{name!r} is an alias; choose another collection name") from exc
            return None

    # --------------------------------------------------------------------- field types
    def refresh_fields(self, meta: CollectionMeta, *, force: bool = False) -> None:
        """Re-read the field types if the cached ones are older than ``metadata_cache_s``."""
        if force or time.monotonic() - meta.fields_at >= self._cache_s:
            meta.set_fields(self.registry.fields(meta.name, meta.token))

    def needs_refresh(self, meta: CollectionMeta, spec: Any) -> bool:
        """Whether a filter names a field not known yet and the known ones may be stale."""
        expr: Expr | None = parse_filter(spec)
        return (
            expr is not None
            and not fields_used(expr) <= set(meta.fields)
            and time.monotonic() - meta.fields_at >= self._cache_s
        )

    # ------------------------------------------------------------------------- aliases
    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` (see ``MilvusVectorStore.set_alias``)."""
        check_name("alias", alias)
        check_name("collection", collection)
        target = self.load(collection, follow_alias=False)  # NotFound: missing or an alias
        exists = self.describe_milvus(self.milvus_name(alias), f"checking {alias!r}") is not None
        if exists and self.alias_target(alias) is None:
            raise Conflict(f"{alias!r} is a collection's name; an alias needs a name of its own")
        if self.lite:
            self.registry.put_alias(alias, target.name)
        else:
            self._native_set_alias(alias, target)
        self.forget(alias=alias)

    def _native_set_alias(self, alias: str, target: CollectionMeta) -> None:
        malias = self.milvus_name(alias)
        exists = self.alias_target(alias) is not None
        with milvus_call(f"pointing alias {alias!r} at {target.name!r}"):
            if exists:
                self._client.alter_alias(target.milvus_name, malias, timeout=self._timeout)
                return
            try:
                self._client.create_alias(target.milvus_name, malias, timeout=self._timeout)
            except Exception as exc:
                if "exist" not in str(exc).lower():
                    raise
                self._client.alter_alias(target.milvus_name, malias, timeout=self._timeout)

    def drop_alias(self, alias: str) -> None:
        check_name("alias", alias)
        if self.lite:
            self.registry.drop_alias(alias)
        elif self.alias_target(alias) is not None:
            with milvus_call(f"dropping alias {alias!r}"):
                try:
                    self._client.drop_alias(self.milvus_name(alias), timeout=self._timeout)
                except Exception as exc:
                    if "not" not in str(exc).lower():  # already gone
                        raise
        self.forget(alias=alias)

    def aliases(self) -> dict[str, str]:
        if self.lite:
            return dict(sorted(self.registry.aliases().items()))
        with milvus_call("listing aliases"):
            listed = self._client.list_aliases(timeout=self._timeout)
        out: dict[str, str] = {}
        for malias in listed.get("aliases", []):
            alias = from_milvus_name(self.prefix, str(malias))
            if alias is None:
                continue
            with milvus_call(f"resolving alias {alias!r}"):
                desc = self._client.describe_alias(str(malias), timeout=self._timeout)
            target = from_milvus_name(self.prefix, str(desc.get("collection_name") or ""))
            if target is not None:
                out[alias] = target
        return dict(sorted(out.items()))
