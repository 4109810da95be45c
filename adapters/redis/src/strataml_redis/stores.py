"""The synchronous Redis / Redis Cluster online store.

One string key per entity holding its row as a msgpack map (see :mod:`strataml_redis.keys`).
``get`` is one ``GET``, ``get_many`` one ``MGET`` (a pipeline on a cluster), a row is written
with one ``SET``; a view's metadata is read once and cached in-process for ``view_cache_s``
seconds.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, NoReturn

import pyarrow as pa
from redis import exceptions as rx

from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, NotFound, Unavailable
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
from strataml_redis._encode import EncodedWrite, encode_write
from strataml_redis._packed import ErrorReply, chunks, reply_exception, send_chunks
from strataml_redis.clients import describe, sync_client
from strataml_redis.config import RedisConfig
from strataml_redis.errors import DRIVER_ERRORS, translate
from strataml_redis.keys import KeyLayout

__all__ = ["RedisOnlineStore", "StoreSettings"]

_monotonic = time.monotonic
_SCAN_COUNT = 1000


class StoreSettings:
    """What a store needs besides its client (shared by the sync and async stores)."""

    __slots__ = ("caps", "cluster", "layout", "target", "view_cache_s", "write_batch_size")

    def __init__(
        self,
        *,
        caps: Capabilities,
        key_prefix: str,
        cluster: bool,
        target: str,
        view_cache_s: float = 1.0,
        write_batch_size: int = 1000,
    ) -> None:
        self.caps = caps
        self.layout = KeyLayout(key_prefix)
        self.cluster = cluster
        self.target = target
        self.view_cache_s = view_cache_s
        self.write_batch_size = write_batch_size

    @classmethod
    def from_config(cls, config: RedisConfig, *, cluster: bool) -> StoreSettings:
        from strataml_redis import ONLINE_CAPS

        return cls(
            caps=ONLINE_CAPS,
            key_prefix=config.key_prefix,
            cluster=cluster,
            target=describe(config.url.get_secret_value()),
            view_cache_s=config.view_cache_s,
            write_batch_size=config.write_batch_size,
        )

    def describe(self, cls_name: str) -> str:
        kind = "cluster" if self.cluster else "single"
        return f"{cls_name}({kind} {self.target}, key_prefix={self.layout.prefix!r})"


def check_event_time(event_time: Any, cols: tuple[str, ...]) -> None:
    if event_time is not None and (not isinstance(event_time, str) or event_time in cols):
        raise InvalidInput(f"event_time= names a non-entity column, got {event_time!r}")


def materialize(rows: Any) -> Any:
    """Rows that can be read twice (a write re-encodes them if the view appears meanwhile)."""
    if isinstance(rows, pa.RecordBatchReader):
        return rows.read_all()
    if isinstance(rows, pa.Table | pa.RecordBatch | Mapping | str | bytes):
        return rows
    if type(rows).__module__.split(".")[0] in {"pandas", "polars", "pyarrow"}:
        return rows
    try:
        return list(rows)
    except TypeError:
        return rows  # not iterable: to_batch raises InvalidInput


class _Closed:
    """Stands in for the client of a closed store, so the hot path needs no closed check."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        return self._raise

    def _raise(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise Unavailable(f"{self._what} is closed")


class RedisOnlineStore:
    """An :class:`~strataml.protocols.OnlineStore` on Redis or Redis Cluster (``redis-py``).

    Build it with :meth:`from_config`, or pass a ``redis.Redis`` / ``redis.cluster.RedisCluster``
    client (the store closes it on :meth:`close`).

    Semantics are those of :class:`~strataml.protocols.OnlineStore`. Choices the protocol leaves
    open:

    * Later writes may name the view's entity columns in any order (it is a set).
    * The ``event_time`` column is kept as an ordinary feature; entity columns are not features.
    * Each entity's row is replaced atomically: one ``SET key row [PXAT ms]`` (Redis >= 6.2)
      writes the whole row and its expiry (or clears an earlier one) in one command; a batch is
      not atomic as a whole. Rows already expired when written are not stored, and still
      delete (``UNLINK``) the entity's previous row.
    * On a single node, writes skip redis-py's pipeline: Arrow input is encoded column-wise
      and the commands are streamed as ready RESP over one pooled connection
      (:mod:`strataml_redis._packed`); on a cluster they go through redis-py's cluster
      pipeline, which routes each key to its node.
    * TTL is Redis's own (``PXAT`` on the row key, one millisecond before the expiry rounded
      down, so a row is never read at or after its expiry and vanishes at most 1 ms early).
      Redis checks expiry on every access, so an expired row reads as missing before Redis
      reclaims it. The expiry instant is computed with the client's clock and enforced with
      the server's: keep them in sync (NTP).
    * :meth:`get` is one round trip (``GET``) and decodes the row once; requested features
      the row lacks read as ``None``. :meth:`get_many` is one ``MGET`` on a single node (which
      reads a key of another type, written by something else under this ``key_prefix``, as
      missing, where :meth:`get` raises) and one pipeline of ``GET`` on a cluster. A row is
      read whole: very wide rows (thousands of features) read for a few features transfer
      more than a per-field layout would.
    * :meth:`write` returns the number of input rows, duplicates included (the last one wins).
      A write of zero rows still registers a new view's entity columns.
    * View metadata is cached per store for ``view_cache_s``; a view dropped or re-created by
      another process is noticed within that time (by this store's own calls: at once).
    * :meth:`drop` removes the view from the registry first, then its rows (``SCAN`` on every
      node); it always scans, so it also cleans rows left by an interrupted earlier drop.

    Errors: :class:`NotFound` for a view never written; :class:`InvalidInput` for bad input;
    :class:`SchemaError` for entity columns differing from the view's; :class:`LimitExceeded`
    for a row over ``capabilities.max_record_bytes``; :class:`Unavailable` when Redis cannot be
    reached, times out, refuses the credentials, or after :meth:`close`; :class:`BackendError`
    for any other Redis failure. Bad input raises before anything is sent.
    """

    blocking_io: ClassVar[bool] = True

    def __init__(self, client: Any, settings: StoreSettings) -> None:
        self._settings = settings
        self._layout = settings.layout
        self._registry = settings.layout.registry
        self._caps = settings.caps
        self._max_record = settings.caps.max_record_bytes
        self._cache_s = settings.view_cache_s
        self._batch_size = settings.write_batch_size
        self._cache: dict[str, ViewMeta] = {}
        self._client = client
        self._exec: Any = client.execute_command
        # a single node takes pre-packed RESP on one pooled connection; a cluster routes by key
        self._packed = not settings.cluster and hasattr(client, "connection_pool")

    @classmethod
    def from_config(cls, config: RedisConfig, *, cluster: bool = False) -> RedisOnlineStore:
        """A store for ``config`` (``cluster=True`` for Redis Cluster)."""
        settings = StoreSettings.from_config(config, cluster=cluster)
        return cls(sync_client(config, cluster=cluster), settings)

    def __repr__(self) -> str:
        return self._settings.describe(type(self).__name__)

    @property
    def capabilities(self) -> Capabilities:
        """TTL and a native asyncio API; ``max_record_bytes`` per encoded row."""
        return self._caps

    @property
    def client(self) -> Any:
        """The underlying redis-py client (for benchmarks and operations)."""
        return self._client

    # ------------------------------------------------------------------------------ internals
    def _fail(self, exc: BaseException, what: str) -> NoReturn:
        raise translate(exc, what) from exc

    def _fetch(self, view: str, field: bytes) -> ViewMeta | None:
        """The view's metadata read from Redis now (cached), or ``None`` if never written."""
        try:
            raw = self._exec("HGET", self._registry, field)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"reading the metadata of view {view!r}")
        if raw is None:
            self._cache.pop(view, None)
            return None
        meta = ViewMeta(view, raw, self._layout, _monotonic() + self._cache_s)
        self._cache[view] = meta
        return meta

    def _load(self, view: Any) -> ViewMeta:
        meta = self._fetch(view, self._layout.view_field(view))
        if meta is None:
            raise NotFound(f"online view {view!r} does not exist; write() it first")
        return meta

    def _view(self, view: Any) -> ViewMeta:
        """The view's metadata, from the cache while it is fresh."""
        try:
            meta = self._cache.get(view)
        except TypeError:
            raise InvalidInput(f"a view name is a non-empty string, got {view!r}") from None
        if meta is None or meta.deadline < _monotonic():
            return self._load(view)
        return meta

    def _key(self, meta: ViewMeta, entity: Any) -> bytes:
        try:
            return meta.key(entity)
        except InvalidInput:
            fresh = self._load(meta.name)  # the view may have been re-created elsewhere
            if fresh.raw == meta.raw:
                raise
            return fresh.key(entity)

    def _keys(self, meta: ViewMeta, entities: Sequence[Any]) -> list[bytes]:
        try:
            return [meta.key(e) for e in entities]
        except InvalidInput:
            fresh = self._load(meta.name)
            if fresh.raw == meta.raw:
                raise
            return [fresh.key(e) for e in entities]

    # ----------------------------------------------------------------------------------- read
    def get(
        self, view: str, entity: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One entity's features, or ``None`` if unknown or expired (see the class doc)."""
        try:
            meta = self._cache.get(view)
        except TypeError:
            meta = None
        if meta is None or meta.deadline < _monotonic():
            meta = self._view(view)
        try:
            key = meta.key(entity)
        except InvalidInput:
            key = self._key(meta, entity)
        if features is not None:
            features = features_arg(features)
        try:
            blob = self._exec("GET", key)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"get from view {view!r}")
        row = decode_row(blob)
        return row if features is None else pick(row, features)

    def get_many(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]],
        features: Sequence[str] | None = None,
    ) -> list[dict[str, Any] | None]:
        """:meth:`get` for many entities in one round trip (``MGET``; on a cluster, one
        pipeline of ``GET`` split by slot), results in input order."""
        meta = self._view(view)
        keys = self._keys(meta, entity_list(entities))
        if features is not None:
            features = features_arg(features)
        if not keys:
            return []
        try:
            if self._settings.cluster:
                pipe = self._client.pipeline(transaction=False)
                for key in keys:
                    pipe.execute_command("GET", key)
                replies = pipe.execute()
            else:
                replies = self._exec("MGET", *keys)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"get_many from view {view!r}")
        rows = decode_rows(replies)
        return rows if features is None else pick_many(rows, features)

    def views(self) -> list[str]:
        """Views that have been written (and not dropped), sorted."""
        try:
            names = self._exec("HKEYS", self._registry)
        except DRIVER_ERRORS as exc:
            self._fail(exc, "listing views")
        return sorted(n.decode("utf-8") for n in names)

    # ---------------------------------------------------------------------------------- write
    def write(
        self,
        view: str,
        rows: Any,
        *,
        entities: Sequence[str],
        ttl: dt.timedelta | None = None,
        event_time: str | None = None,
    ) -> int:
        """Replace the rows of the entities in ``rows``.

        ``rows``: a ``pa.Table`` / ``pa.RecordBatch`` (converted column-wise), a pandas or
        polars DataFrame, or an iterable of mappings. Each row holds the entity columns and its
        features; its whole previous row is replaced. Every row is validated and encoded before
        anything is sent; rows are then written in pipelines of ``write_batch_size``. Returns
        the number of rows.
        """
        field = self._layout.view_field(view)
        cols = entity_columns(entities)
        ttl_us = ttl_micros(ttl)
        check_event_time(event_time, cols)
        where = f"write to view {view!r}"
        data = materialize(rows)
        current = self._fetch(view, field)
        while True:
            if current is not None:
                current.check_columns(cols)
            order = current.entities if current is not None else cols
            head = self._layout.row_head(view)
            batch = to_batch(data, order, event_time, where)
            enc = encode_write(batch, head, ttl_us, now_us(), self._max_record, where)
            if current is not None:
                break
            current = self._create(view, field, cols)
            if current.entities == cols:
                break  # else: created meanwhile with another column order, re-encode
        if self._packed:
            self._send_packed(enc, where)
        else:
            self._run(plan_write(enc), where)
        return batch.n

    def _create(self, view: str, field: bytes, cols: tuple[str, ...]) -> ViewMeta:
        """Register a new view (``HSETNX``); the registered metadata if another writer won."""
        raw = encode_meta(cols, time.time_ns() // 1000)
        try:
            created = self._exec("HSETNX", self._registry, field, raw)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"creating view {view!r}")
        meta = self._fetch(view, field) if not created else None
        if meta is None:
            meta = ViewMeta(view, raw, self._layout, _monotonic() + self._cache_s)
            self._cache[view] = meta
        return meta

    def _send_packed(self, enc: EncodedWrite, where: str) -> None:
        """Stream a packed write over one pooled connection (see :mod:`strataml_redis._packed`);
        a connection left mid-reply by an error is closed, never reused."""
        pool = self._client.connection_pool
        try:
            conn = pool.get_connection()
        except DRIVER_ERRORS as exc:
            self._fail(exc, where)
        clean = False
        try:
            send_chunks(conn._sock, chunks(enc, self._batch_size))  # connected by the pool
            clean = True
        except ErrorReply as exc:
            error = reply_exception(str(exc))
            raise translate(error, where) from exc
        except (OSError, ConnectionError) as exc:  # socket errors and timeouts
            raise translate(rx.ConnectionError(str(exc)), where) from exc
        finally:
            if not clean:
                conn.disconnect()
            pool.release(conn)

    def _run(self, commands: list[Command], where: str) -> None:
        """Send ``commands`` in pipelines of ``write_batch_size`` (split by slot on a cluster)."""
        size = self._batch_size
        try:
            for start in range(0, len(commands), size):
                pipe = self._client.pipeline(transaction=False)
                for cmd in commands[start : start + size]:
                    pipe.execute_command(*cmd)
                error = first_error(pipe.execute(raise_on_error=False))
                if error is not None:
                    raise translate(error, where) from error
        except DRIVER_ERRORS as exc:
            self._fail(exc, where)

    # --------------------------------------------------------------------------------- delete
    def delete(self, view: str, entities: Sequence[Mapping[str, Any]]) -> int:
        """Delete entities' rows; return how many existed (expired rows do not count)."""
        meta = self._view(view)
        keys = self._keys(meta, entity_list(entities))
        if not keys:
            return 0
        try:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command("UNLINK", key)
            return sum(pipe.execute())  # an expired row is no key for Redis: 0
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"delete from view {view!r}")

    def drop(self, view: str) -> None:
        """Delete a view and all its rows (no error if it does not exist)."""
        field = self._layout.view_field(view)
        self._cache.pop(view, None)
        try:
            self._exec("HDEL", self._registry, field)
            pending: list[bytes] = []
            for key in self._client.scan_iter(
                match=self._layout.row_pattern(view), count=_SCAN_COUNT
            ):
                pending.append(key)
                if len(pending) >= _SCAN_COUNT:
                    self._unlink(pending)
                    pending = []
            self._unlink(pending)
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"drop view {view!r}")
        finally:
            self._cache.pop(view, None)

    def _unlink(self, keys: list[bytes]) -> None:
        if not keys:
            return
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("UNLINK", key)
        pipe.execute()

    # -------------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Close the client and its connections. Idempotent; later calls raise
        :class:`Unavailable`."""
        client = self._client
        if isinstance(client, _Closed):
            return
        closed = _Closed(repr(self))
        self._client = closed
        self._exec = closed.execute_command
        self._cache.clear()
        try:
            client.close()
        except DRIVER_ERRORS:
            pass

    def __enter__(self) -> RedisOnlineStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
