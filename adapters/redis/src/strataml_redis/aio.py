"""The native asyncio Redis / Redis Cluster online store (``redis.asyncio``).

Same layout, semantics and errors as :class:`strataml_redis.stores.RedisOnlineStore`; every
call awaits the server instead of blocking a thread. A store's connections belong to the event
loop that first used them: use one store per loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, NotFound
from strataml.online_rows import entity_columns, entity_list, features_arg, to_batch, ttl_micros
from strataml_redis._core import (
    Command,
    ViewMeta,
    decode_row,
    decode_rows,
    encode_meta,
    first_error,
    now_us,
    pick,
    pick_many,
    plan_write,
)
from strataml_redis._encode import encode_write
from strataml_redis.clients import async_client
from strataml_redis.config import RedisConfig
from strataml_redis.errors import DRIVER_ERRORS, translate
from strataml_redis.stores import StoreSettings, _Closed, check_event_time, materialize

__all__ = ["AsyncRedisOnlineStore"]

_monotonic = time.monotonic
_SCAN_COUNT = 1000


def _closer(client: Any) -> Any:
    """``client.aclose`` (redis-py >= 5.0.1), else the older awaitable ``client.close``."""
    return getattr(client, "aclose", None) or client.close


class AsyncRedisOnlineStore:
    """An :class:`~strataml.protocols.AsyncOnlineStore` on Redis or Redis Cluster.

    Build it with :meth:`from_config`, or pass a ``redis.asyncio.Redis`` /
    ``redis.asyncio.cluster.RedisCluster`` client (closed by :meth:`aclose`). Semantics,
    choices and errors: see :class:`strataml_redis.stores.RedisOnlineStore`. Besides the
    protocol, it has ``views()`` and ``drop()`` (awaitable) like the synchronous store.
    """

    def __init__(self, client: Any, settings: StoreSettings) -> None:
        self._settings = settings
        self._layout = settings.layout
        self._registry = settings.layout.registry
        self._caps = settings.caps
        self._max_record = settings.caps.max_record_bytes
        self._cache_s = settings.view_cache_s
        self._batch_size = settings.write_batch_size
        self._cache: dict[str, ViewMeta] = {}
        self._closing: asyncio.Task[None] | None = None
        self._client = client
        self._exec: Any = client.execute_command

    @classmethod
    def from_config(cls, config: RedisConfig, *, cluster: bool = False) -> AsyncRedisOnlineStore:
        """A store for ``config`` (``cluster=True`` for Redis Cluster)."""
        settings = StoreSettings.from_config(config, cluster=cluster)
        return cls(async_client(config, cluster=cluster), settings)

    def __repr__(self) -> str:
        return self._settings.describe(type(self).__name__)

    @property
    def capabilities(self) -> Capabilities:
        """TTL and a native asyncio API; ``max_record_bytes`` per encoded row."""
        return self._caps

    @property
    def client(self) -> Any:
        """The underlying redis-py asyncio client."""
        return self._client

    # ------------------------------------------------------------------------------ internals
    def _fail(self, exc: BaseException, what: str) -> NoReturn:
        raise translate(exc, what) from exc

    async def _fetch(self, view: str, field: bytes) -> ViewMeta | None:
        try:
            raw = await self._exec("HGET", self._registry, field)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"reading the metadata of view {view!r}")
        if raw is None:
            self._cache.pop(view, None)
            return None
        meta = ViewMeta(view, raw, self._layout, _monotonic() + self._cache_s)
        self._cache[view] = meta
        return meta

    async def _load(self, view: Any) -> ViewMeta:
        meta = await self._fetch(view, self._layout.view_field(view))
        if meta is None:
            raise NotFound(f"online view {view!r} does not exist; write() it first")
        return meta

    async def _view(self, view: Any) -> ViewMeta:
        try:
            meta = self._cache.get(view)
        except TypeError:
            raise InvalidInput(f"a view name is a non-empty string, got {view!r}") from None
        if meta is None or meta.deadline < _monotonic():
            return await self._load(view)
        return meta

    async def _keys(self, meta: ViewMeta, entities: Sequence[Any]) -> list[bytes]:
        try:
            return [meta.key(e) for e in entities]
        except InvalidInput:
            fresh = await self._load(meta.name)  # the view may have been re-created elsewhere
            if fresh.raw == meta.raw:
                raise
            return [fresh.key(e) for e in entities]

    # ----------------------------------------------------------------------------------- read
    async def get(
        self, view: str, entity: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One entity's features, or ``None`` if unknown or expired."""
        meta = await self._view(view)
        (key,) = await self._keys(meta, (entity,))
        if features is not None:
            features = features_arg(features)
        try:
            blob = await self._exec("GET", key)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"get from view {view!r}")
        row = decode_row(blob)
        return row if features is None else pick(row, features)

    async def get_many(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]],
        features: Sequence[str] | None = None,
    ) -> list[dict[str, Any] | None]:
        """:meth:`get` for many entities in one round trip (``MGET``; on a cluster, one
        pipeline of ``GET`` split by slot), results in input order."""
        meta = await self._view(view)
        keys = await self._keys(meta, entity_list(entities))
        if features is not None:
            features = features_arg(features)
        if not keys:
            return []
        try:
            if self._settings.cluster:
                pipe = self._client.pipeline(transaction=False)
                for key in keys:
                    pipe.execute_command("GET", key)
                replies = await pipe.execute()
            else:
                replies = await self._exec("MGET", *keys)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"get_many from view {view!r}")
        rows = decode_rows(replies)
        return rows if features is None else pick_many(rows, features)

    async def views(self) -> list[str]:
        """Views that have been written (and not dropped), sorted."""
        try:
            names = await self._exec("HKEYS", self._registry)
        except DRIVER_ERRORS as exc:
            self._fail(exc, "listing views")
        return sorted(n.decode("utf-8") for n in names)

    # ---------------------------------------------------------------------------------- write
    async def write(
        self,
        view: str,
        rows: Any,
        *,
        entities: Sequence[str],
        ttl: dt.timedelta | None = None,
        event_time: str | None = None,
    ) -> int:
        """Replace the rows of the entities in ``rows``; return how many rows were given.
        Everything is validated and encoded before anything is sent."""
        field = self._layout.view_field(view)
        cols = entity_columns(entities)
        ttl_us = ttl_micros(ttl)
        check_event_time(event_time, cols)
        where = f"write to view {view!r}"
        data = materialize(rows)
        current = await self._fetch(view, field)
        while True:
            if current is not None:
                current.check_columns(cols)
            order = current.entities if current is not None else cols
            batch = to_batch(data, order, event_time, where)
            head = self._layout.row_head(view)
            enc = encode_write(batch, head, ttl_us, now_us(), self._max_record, where)
            if current is not None:
                break
            current = await self._create(view, field, cols)
            if current.entities == cols:
                break
        await self._run(plan_write(enc), where)
        return batch.n

    async def _create(self, view: str, field: bytes, cols: tuple[str, ...]) -> ViewMeta:
        raw = encode_meta(cols, time.time_ns() // 1000)
        try:
            created = await self._exec("HSETNX", self._registry, field, raw)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"creating view {view!r}")
        meta = await self._fetch(view, field) if not created else None
        if meta is None:
            meta = ViewMeta(view, raw, self._layout, _monotonic() + self._cache_s)
            self._cache[view] = meta
        return meta

    async def _run(self, commands: list[Command], where: str) -> None:
        """Send ``commands`` in pipelines of ``write_batch_size`` (split by slot on a cluster)."""
        size = self._batch_size
        try:
            for start in range(0, len(commands), size):
                pipe = self._client.pipeline(transaction=False)
                for cmd in commands[start : start + size]:
                    pipe.execute_command(*cmd)
                error = first_error(await pipe.execute(raise_on_error=False))
                if error is not None:
                    raise translate(error, where) from error
        except DRIVER_ERRORS as exc:
            self._fail(exc, where)

    # --------------------------------------------------------------------------------- delete
    async def delete(self, view: str, entities: Sequence[Mapping[str, Any]]) -> int:
        """Delete entities' rows; return how many existed (expired rows do not count)."""
        meta = await self._view(view)
        keys = await self._keys(meta, entity_list(entities))
        if not keys:
            return 0
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command("UNLINK", key)
            return sum(await pipe.execute())  # an expired row is no key for Redis: 0
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"delete from view {view!r}")

    async def drop(self, view: str) -> None:
        """Delete a view and all its rows (no error if it does not exist)."""
        field = self._layout.view_field(view)
        self._cache.pop(view, None)
        try:
            await self._exec("HDEL", self._registry, field)
            pending: list[bytes] = []
            async for key in self._client.scan_iter(
                match=self._layout.row_pattern(view), count=_SCAN_COUNT
            ):
                pending.append(key)
                if len(pending) >= _SCAN_COUNT:
                    await self._unlink(pending)
                    pending = []
            await self._unlink(pending)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"drop view {view!r}")
        finally:
            self._cache.pop(view, None)

    async def _unlink(self, keys: list[bytes]) -> None:
        if not keys:
            return
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("UNLINK", key)
        await pipe.execute()

    # -------------------------------------------------------------------------------- closing
    def _detach(self) -> Any:
        client = self._client
        if isinstance(client, _Closed):
            return None
        closed = _Closed(repr(self))
        self._client = closed
        self._exec = closed.execute_command
        self._cache.clear()
        return client

    async def aclose(self) -> None:
        """Close the client and its connections. Idempotent; later calls raise
        :class:`Unavailable`."""
        client = self._detach()
        if client is None:
            return
        try:
            await _closer(client)()
        except RuntimeError:  # its event loop is gone: the connections die with it
            pass
        except DRIVER_ERRORS:
            pass

    def close(self) -> None:
        """Synchronous close (e.g. from ``Stack.close``): closes the connections on the running
        event loop if there is one; otherwise drops them (their loop has ended)."""
        client = self._detach()
        if client is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._closing = loop.create_task(_closer(client)())
