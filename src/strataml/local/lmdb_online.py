"""The embedded online store: LMDB, a memory-mapped copy-on-write B+tree.

Layout
------
One LMDB environment (a directory holding ``data.mdb`` and ``lock.mdb``) with three named
sub-databases:

* ``strataml.sys``: the on-disk format version and the next view id.
* ``strataml.views``: view name (UTF-8) -> msgpack ``[view_id, [entity columns], created_us]``.
  The entity columns are stored in the order of the view's first write; keys are always encoded
  in that order, whatever order later writes or lookups name them in.
* ``strataml.data``: ``view_id`` (8 bytes, big-endian) + :func:`strataml.codec.encode_key` of the
  entity values -> an 8-byte little-endian expiry (microseconds since the epoch, ``0`` = never)
  followed by :func:`strataml.codec.encode_row` of the features.

View ids are never reused, so a view dropped and re-created (by this or another process) can
never be confused with its predecessor: every read checks the view's metadata in the same read
transaction as the row, and re-derives its cached key layout when the metadata changed.

Concurrency: LMDB allows any number of readers (threads and processes) next to one writer;
readers never block and always see a committed snapshot. Every :meth:`LMDBOnlineStore.write`
commits all its rows in one write transaction, so readers see all of a batch or none of it.
Rows are validated and encoded before the write transaction opens, which keeps the writer lock
short and guarantees that bad input changes nothing.

Within one process, stores opened on the same directory share one LMDB environment (LMDB forbids
opening an environment twice in a process). After ``fork()``, open a new store in the child.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, NoReturn

import lmdb
import pyarrow as pa

from strataml import codec
from strataml.capabilities import Capabilities
from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    StrataError,
    Unavailable,
)
from strataml.online_rows import (
    entity_columns,
    features_arg,
    normalize_rows,
    to_batch,
    ttl_micros,
)

__all__ = ["LMDBOnlineStore"]

_FORMAT = b"1"
_SYS_DB = b"strataml.sys"
_VIEWS_DB = b"strataml.views"
_DATA_DB = b"strataml.data"
_K_FORMAT = b"format"
_K_NEXT_ID = b"next_view_id"

_EXPIRY = struct.Struct("<Q")
_EXPIRY_SIZE = _EXPIRY.size
_NEVER = _EXPIRY.pack(0)
_MAX_EXPIRY = 2**64 - 1
_VIEW_ID = struct.Struct(">Q")
_PREFIX_SIZE = _VIEW_ID.size
_MAX_VIEW_NAME_BYTES = 255
_WRITE_RETRIES = 5
_CORRUPT = (lmdb.InvalidError, lmdb.VersionMismatchError, lmdb.CorruptedError)


def _now_us() -> int:
    return time.time_ns() // 1000


# ------------------------------------------------------------------------------------ views
class _View:
    """A view's decoded metadata, cached per store; ``raw`` is the stored bytes it came from."""

    __slots__ = (
        "created_us",
        "entities",
        "entity_set",
        "getter",
        "name",
        "name_key",
        "prefix",
        "raw",
        "single",
        "width",
    )

    def __init__(self, name: str, name_key: bytes, raw: bytes) -> None:
        view_id, entities, created_us = codec.decode_value(raw)
        self.name = name
        self.name_key = name_key
        self.raw = raw
        self.prefix = _VIEW_ID.pack(view_id)
        self.entities: tuple[str, ...] = tuple(entities)
        self.entity_set = frozenset(self.entities)
        self.created_us: int = created_us
        self.width = len(self.entities)
        self.single = self.width == 1
        self.getter = itemgetter(*self.entities)  # one column: the value; several: a tuple


def _name_key(view: Any) -> bytes:
    if not isinstance(view, str) or not view:
        raise InvalidInput(f"a view name is a non-empty string, got {view!r}")
    key = view.encode("utf-8", "surrogatepass")
    if len(key) > _MAX_VIEW_NAME_BYTES:
        raise InvalidInput(
            f"view name {view[:40]!r}... is longer than {_MAX_VIEW_NAME_BYTES} bytes"
        )
    return key


def _bad_entity(view: _View, entity: Any) -> InvalidInput:
    if not isinstance(entity, Mapping):
        return InvalidInput(
            f"view {view.name!r}: an entity is a mapping of {list(view.entities)} to values, "
            f"got {type(entity).__name__}"
        )
    given = [str(k) for k in entity]
    missing = sorted(view.entity_set - set(given))
    extra = sorted(set(given) - view.entity_set)
    return InvalidInput(
        f"view {view.name!r} is keyed by {list(view.entities)}; the entity mapping "
        f"lacks {missing} and has extra keys {extra}"
    )


def _key_of(view: _View, entity: Any) -> bytes:
    """The data-db key of one entity mapping (validated: exact key set, str/int values)."""
    try:
        values = [view.getter(entity)] if view.single else view.getter(entity)
        ok = len(entity) == view.width
    except (KeyError, TypeError, IndexError):
        ok = False
    if not ok:
        raise _bad_entity(view, entity)
    try:
        return view.prefix + codec.encode_key(values)
    except InvalidInput as exc:
        raise InvalidInput(f"view {view.name!r}: {exc}") from exc


# -------------------------------------------------------------------------- shared environments
class _ClosedEnv:
    """Stands in for the environment of a closed store, so the hot path needs no closed check."""

    def __init__(self, path: str) -> None:
        self._path = path

    def begin(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise Unavailable(f"the LMDB online store at {self._path} is closed")


_ENVS: dict[tuple[int, str], tuple[Any, int]] = {}
_ENVS_LOCK = threading.Lock()


def _acquire_env(path: str, map_size: int, sync: bool) -> Any:
    key = (os.getpid(), path)
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is not None:
            _ENVS[key] = (entry[0], entry[1] + 1)
            return entry[0]
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create the LMDB directory {path}: {exc}") from exc
        try:
            env = lmdb.open(
                path,
                map_size=map_size,
                subdir=True,
                lock=True,
                sync=sync,
                metasync=sync,
                readahead=False,
                meminit=False,
                max_dbs=8,
                max_readers=1024,
                max_spare_txns=8,
            )
            env.reader_check()  # free the reader slots of crashed processes
        except lmdb.Error as exc:
            err = _translate(exc, f"opening LMDB environment {path}", map_size)
            if type(err) is BackendError and not isinstance(exc, _CORRUPT):
                err = Unavailable(str(err))  # permissions, missing files, locks, ...
            raise err from exc
        _ENVS[key] = (env, 1)
        return env


def _release_env(path: str, env: Any) -> None:
    key = (os.getpid(), path)
    with _ENVS_LOCK:
        entry = _ENVS.get(key)
        if entry is None or entry[0] is not env:
            return
        if entry[1] > 1:
            _ENVS[key] = (env, entry[1] - 1)
            return
        del _ENVS[key]
    env.close()


def _translate(exc: BaseException, what: str, map_size: int) -> StrataError:
    """Map a py-lmdb error to the strataml hierarchy (the caller chains it with ``from``)."""
    text = f"{what}: {exc}"
    if isinstance(exc, lmdb.MapFullError):
        return LimitExceeded(
            f"{what}: the LMDB map is full ({map_size // (1024 * 1024)} MB); raise map_size_mb "
            "(it only reserves address space) or drop unused views / purge_expired()"
        )
    if isinstance(exc, lmdb.BadValsizeError):
        return LimitExceeded(f"{text} (an entity key or view name is too long)")
    if isinstance(exc, lmdb.ReadersFullError):
        return Unavailable(f"{text} (too many concurrent readers across processes)")
    if isinstance(exc, lmdb.LockError | lmdb.DiskError | lmdb.TlsFullError):
        return Unavailable(text)
    if isinstance(exc, lmdb.ReadonlyError):
        return Unavailable(f"{text} (the environment is read-only)")
    if isinstance(exc, _CORRUPT):
        return BackendError(f"{text} (not a valid LMDB environment, or a corrupt one)")
    if "closed" in str(exc):
        return Unavailable(f"{what}: the store is closed")
    return BackendError(text)


class _Retry(Exception):
    """The view's metadata changed between validation and the write transaction."""


# -------------------------------------------------------------------------------------- store
class LMDBOnlineStore:
    """An :class:`~strataml.protocols.OnlineStore` in an LMDB environment (a directory).

    ``map_size_mb`` is the most the database can grow to (address space, not disk: the file
    grows as data arrives); a write beyond it raises :class:`LimitExceeded`. ``sync=False``
    skips the fsync at commit: faster writes, and a process crash still loses nothing, but an
    OS crash may lose the last commits.

    Semantics are those of :class:`~strataml.protocols.OnlineStore`. Choices the protocol leaves
    open:

    * Later writes may name the view's entity columns in any order (it is a set).
    * The ``event_time`` column is kept as an ordinary feature; entity columns are not features.
    * Rows already expired when written (old event time, short ``ttl``) are not stored; they
      still replace (delete) the entity's previous row, as any write does.
    * :meth:`write` returns the number of input rows, duplicates included (the last one wins).
    * A write of zero rows still registers a new view's entity columns.
    * Expired rows are invisible at once and physically removed by :meth:`purge_expired`.

    Stores of one process opened on the same directory share its LMDB environment; the first
    one's ``map_size_mb`` and ``sync`` apply until all of them are closed.

    Errors: :class:`NotFound` for a view never written, :class:`InvalidInput` for bad input,
    :class:`SchemaError` for entity columns differing from the view's, :class:`LimitExceeded`
    for a row over ``capabilities.max_record_bytes``, a key over LMDB's 511-byte key limit or a
    full map, :class:`Unavailable` once closed. Nothing is written when a write fails.
    """

    #: Reads take microseconds: :mod:`strataml.aio` runs async calls inline, not in a thread.
    blocking_io: ClassVar[bool] = False

    def __init__(self, path: str | os.PathLike[str], *, map_size_mb: int = 4096, sync: bool = True):
        if map_size_mb < 1:
            raise InvalidInput(f"map_size_mb must be at least 1, got {map_size_mb}")
        from strataml.local import LMDB_CAPS

        self._caps: Capabilities = LMDB_CAPS
        self._max_record = LMDB_CAPS.max_record_bytes
        self.path = str(Path(path).expanduser().resolve())
        self._map_size = map_size_mb * 1024 * 1024
        self._cache: dict[str, _View] = {}
        self._lmdb_env = _acquire_env(self.path, self._map_size, sync)
        self._env: Any = self._lmdb_env
        try:
            self._init_dbs()
        except BaseException:
            self.close()
            raise
        self._max_key = int(self._lmdb_env.max_key_size())

    def _init_dbs(self) -> None:
        env = self._lmdb_env
        try:
            with env.begin(write=True) as txn:
                self._sys = env.open_db(_SYS_DB, txn=txn, create=True)
                self._views = env.open_db(_VIEWS_DB, txn=txn, create=True)
                self._data = env.open_db(_DATA_DB, txn=txn, create=True)
                fmt = txn.get(_K_FORMAT, db=self._sys)
                if fmt is None:
                    txn.put(_K_FORMAT, _FORMAT, db=self._sys)
                elif fmt != _FORMAT:
                    raise SchemaError(
                        f"{self.path} holds strataml online format {fmt.decode()!r}; this "
                        f"version reads format {_FORMAT.decode()!r}"
                    )
        except lmdb.Error as exc:
            raise _translate(exc, f"opening {self.path}", self._map_size) from exc

    def __repr__(self) -> str:
        return f"LMDBOnlineStore(path={self.path!r})"

    @property
    def capabilities(self) -> Capabilities:
        """TTL, async (inline), transactions; ``max_record_bytes`` per encoded row."""
        return self._caps

    # ------------------------------------------------------------------------------ internals
    def _fail(self, exc: BaseException, what: str) -> NoReturn:
        raise _translate(exc, what, self._map_size) from exc

    def _adopt_map_size(self) -> None:
        """Another process grew the map: adopt its size (LMDB's MDB_MAP_RESIZED)."""
        self._lmdb_env.set_mapsize(0)

    def _begin(self, **kwargs: Any) -> Any:
        """A transaction, adopting a map grown by another process (off the hot path)."""
        try:
            return self._env.begin(**kwargs)
        except lmdb.MapResizedError:
            self._adopt_map_size()
            return self._env.begin(**kwargs)

    def _resolve(self, txn: Any, view: str) -> _View:
        """The view's metadata as of ``txn``; :class:`NotFound` if it was never written."""
        try:
            cached = self._cache.get(view)
        except TypeError:
            raise InvalidInput(f"a view name is a non-empty string, got {view!r}") from None
        name_key = cached.name_key if cached is not None else _name_key(view)
        raw = txn.get(name_key, db=self._views)
        if raw is None:
            if cached is not None:
                self._cache.pop(view, None)
            raise NotFound(f"online view {view!r} does not exist; write() it first")
        if cached is not None and cached.raw == raw:
            return cached
        resolved = _View(view, name_key, raw)
        self._cache[view] = resolved
        return resolved

    def _snapshot(self, view: str) -> _View | None:
        """The view's current metadata (a short read transaction), or None if it is new."""
        with self._begin() as txn:
            try:
                return self._resolve(txn, view)
            except NotFound:
                return None

    # ----------------------------------------------------------------------------------- read
    def get(
        self, view: str, entity: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One entity's features, or ``None`` if unknown or expired (see the class doc)."""
        if features is not None:
            features = features_arg(features)
        try:
            with self._env.begin(db=self._data) as txn:
                blob = txn.get(_key_of(self._resolve(txn, view), entity))
        except lmdb.MapResizedError:
            self._adopt_map_size()
            return self.get(view, entity, features)
        except lmdb.Error as exc:
            self._fail(exc, f"get from view {view!r}")
        if blob is None:
            return None
        expiry = _EXPIRY.unpack_from(blob)[0]
        if expiry and expiry <= time.time_ns() // 1000:
            return None
        row = codec.decode_row(blob[_EXPIRY_SIZE:])
        if features is None:
            return row
        return {f: row.get(f) for f in features}

    def get_many(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]],
        features: Sequence[str] | None = None,
    ) -> list[dict[str, Any] | None]:
        """:meth:`get` for many entities in one read transaction, results in input order."""
        if features is not None:
            features = features_arg(features)
        if isinstance(entities, Mapping | str) or not isinstance(entities, Iterable):
            raise InvalidInput(
                f"entities is a list of entity mappings, got {type(entities).__name__}"
            )
        try:
            with self._env.begin(db=self._data) as txn:
                resolved = self._resolve(txn, view)
                keys = [_key_of(resolved, e) for e in entities]
                get = txn.get
                blobs = [get(k) for k in keys]
        except lmdb.MapResizedError:
            self._adopt_map_size()
            return self.get_many(view, entities, features)
        except lmdb.Error as exc:
            self._fail(exc, f"get_many from view {view!r}")
        now = time.time_ns() // 1000
        unpack = _EXPIRY.unpack_from
        decode = codec.decode_row
        out: list[dict[str, Any] | None] = []
        append = out.append
        for blob in blobs:
            if blob is None:
                append(None)
                continue
            expiry = unpack(blob)[0]
            if expiry and expiry <= now:
                append(None)
                continue
            row = decode(blob[_EXPIRY_SIZE:])
            append(row if features is None else {f: row.get(f) for f in features})
        return out

    def views(self) -> list[str]:
        """Views that have been written (and not dropped), sorted."""
        try:
            with self._begin(db=self._views) as txn:
                names = [
                    bytes(k).decode("utf-8", "surrogatepass")
                    for k in txn.cursor().iternext(keys=True, values=False)
                ]
        except lmdb.Error as exc:
            self._fail(exc, "listing views")
        return sorted(names)

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
        """Replace the rows of the entities in ``rows`` (all in one transaction).

        ``rows``: a ``pa.Table`` / ``pa.RecordBatch`` (converted column-wise), a pandas or
        polars DataFrame, or an iterable of mappings. Each row holds the entity columns and its
        features; its whole previous row is replaced. Returns the number of rows.
        """
        name_key = _name_key(view)
        cols = entity_columns(entities)
        ttl_us = ttl_micros(ttl)
        if event_time is not None and (not isinstance(event_time, str) or event_time in cols):
            raise InvalidInput(f"event_time= names a non-entity column, got {event_time!r}")
        where = f"write to view {view!r}"
        data = normalize_rows(rows, where)  # read once: encoded again if the view changes
        for _ in range(_WRITE_RETRIES):
            try:
                current = self._snapshot(view)
            except lmdb.Error as exc:
                self._fail(exc, where)
            if current is not None and current.entity_set != frozenset(cols):
                raise SchemaError(
                    f"view {view!r} is keyed by {list(current.entities)}, not {list(cols)}; "
                    "drop() it to change its entity columns"
                )
            order = current.entities if current is not None else cols
            ops, has_deletes, n = self._encode(data, order, ttl_us, event_time, where)
            try:
                self._commit(name_key, cols, current, ops, has_deletes)
            except _Retry:
                continue
            except lmdb.Error as exc:
                self._fail(exc, where)
            return n
        raise Conflict(f"{where}: the view kept changing under concurrent drops; retry")

    def _encode(
        self,
        data: pa.Table | list[Any],
        order: tuple[str, ...],
        ttl_us: int | None,
        event_time: str | None,
        where: str,
    ) -> tuple[list[tuple[bytes, bytes | None]], bool, int]:
        """Validate and encode every row, in order: ``(key suffix, value)`` to put, or
        ``(key suffix, None)`` to delete (a row already expired when written)."""
        batch = to_batch(data, order, event_time, where)
        keys = self._encode_keys(batch.key_columns, where)
        now = _now_us()
        events = batch.event_us
        ops: list[tuple[bytes, bytes | None]] = []
        has_deletes = False
        encode_row = codec.encode_row
        limit = self._max_record
        i = -1
        try:
            for i, feats in enumerate(batch.features):
                if ttl_us is None:
                    header = _NEVER
                else:
                    expiry = (events[i] if events is not None else now) + ttl_us
                    if expiry <= now:
                        encode_row(feats)  # still reject values that cannot be encoded
                        ops.append((keys[i], None))
                        has_deletes = True
                        continue
                    header = _EXPIRY.pack(min(expiry, _MAX_EXPIRY))
                value = header + encode_row(feats)
                if limit is not None and len(value) > limit:
                    raise LimitExceeded(
                        f"{where}: row {i} encodes to {len(value)} bytes, over the "
                        f"{limit}-byte record limit"
                    )
                ops.append((keys[i], value))
        except LimitExceeded:
            raise
        except InvalidInput as exc:
            if i < 0:  # Arrow input: a column failed to convert, and names itself
                raise
            raise InvalidInput(f"{where}: row {i}: {exc}") from exc
        return ops, has_deletes, batch.n

    def _encode_keys(self, key_columns: list[list[Any]], where: str) -> list[bytes]:
        encode_key = codec.encode_key
        room = self._max_key - _PREFIX_SIZE
        rows = zip(*key_columns, strict=True)
        keys: list[bytes] = []
        i = -1
        try:
            for i, values in enumerate(rows):
                key = encode_key(values)
                if len(key) > room:
                    raise LimitExceeded(
                        f"{where}: row {i}: the entity key encodes to {len(key)} bytes; LMDB keys "
                        f"hold at most {room}"
                    )
                keys.append(key)
        except LimitExceeded:
            raise
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: row {i}: {exc}") from exc
        return keys

    def _commit(
        self,
        name_key: bytes,
        cols: tuple[str, ...],
        expected: _View | None,
        ops: list[tuple[bytes, bytes | None]],
        has_deletes: bool,
    ) -> None:
        """Apply ``ops`` in one write transaction, unless the view changed since ``expected``
        (:class:`_Retry`). A new view gets its id and metadata in the same transaction."""
        with self._begin(write=True) as txn:
            raw = txn.get(name_key, db=self._views)
            if raw != (expected.raw if expected is not None else None):
                raise _Retry
            if expected is None:
                view_id = self._next_view_id(txn)
                raw = codec.encode_value([view_id, list(cols), _now_us()])
                txn.put(name_key, raw, db=self._views)
                prefix = _VIEW_ID.pack(view_id)
            else:
                prefix = expected.prefix
            if not has_deletes:
                if ops:
                    txn.cursor(db=self._data).putmulti([(prefix + k, v) for k, v in ops])
                return
            for k, v in ops:  # in order: a later row of the same entity wins
                if v is None:
                    txn.delete(prefix + k, db=self._data)
                else:
                    txn.put(prefix + k, v, db=self._data)

    def _next_view_id(self, txn: Any) -> int:
        raw = txn.get(_K_NEXT_ID, db=self._sys)
        view_id = _VIEW_ID.unpack(raw)[0] if raw is not None else 1
        txn.put(_K_NEXT_ID, _VIEW_ID.pack(view_id + 1), db=self._sys)
        return int(view_id)

    # --------------------------------------------------------------------------------- delete
    def delete(self, view: str, entities: Sequence[Mapping[str, Any]]) -> int:
        """Delete entities' rows; return how many existed (expired rows do not count)."""
        if isinstance(entities, Mapping | str) or not isinstance(entities, Iterable):
            raise InvalidInput(
                f"entities is a list of entity mappings, got {type(entities).__name__}"
            )
        entities = list(entities)
        where = f"delete from view {view!r}"
        for _ in range(_WRITE_RETRIES):
            try:
                with self._begin() as txn:
                    current = self._resolve(txn, view)
            except lmdb.Error as exc:
                self._fail(exc, where)
            keys = [_key_of(current, e) for e in entities]
            try:
                with self._begin(write=True, db=self._data) as txn:
                    if txn.get(current.name_key, db=self._views) != current.raw:
                        raise _Retry
                    now = _now_us()
                    existed = 0
                    for key in keys:
                        old = txn.pop(key)
                        if old is not None:
                            expiry = _EXPIRY.unpack_from(old)[0]
                            existed += not expiry or expiry > now
                return existed
            except _Retry:
                continue
            except lmdb.Error as exc:
                self._fail(exc, where)
        raise Conflict(f"{where}: the view kept changing under concurrent drops; retry")

    def drop(self, view: str) -> None:
        """Delete a view and all its rows in one transaction (no error if it does not exist)."""
        name_key = _name_key(view)
        try:
            with self._begin(write=True) as txn:
                raw = txn.get(name_key, db=self._views)
                if raw is None:
                    return
                prefix = _View(view, name_key, raw).prefix
                txn.delete(name_key, db=self._views)
                cursor = txn.cursor(db=self._data)
                found = cursor.set_range(prefix)
                while found and cursor.key()[:_PREFIX_SIZE] == prefix:
                    found = cursor.delete()
        except lmdb.Error as exc:
            self._fail(exc, f"drop view {view!r}")
        finally:
            self._cache.pop(view, None)

    def purge_expired(self, *, chunk: int = 10_000) -> int:
        """Physically delete expired rows of every view; return how many were removed.

        Expired rows are already invisible to reads; this reclaims their space. It scans the
        whole store in write transactions of at most ``chunk`` rows each, so concurrent writers
        wait at most one chunk. Safe to run while other processes read and write (e.g. from a
        periodic job).
        """
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise InvalidInput(f"chunk must be an integer of at least 1, got {chunk!r}")
        now = _now_us()
        removed = 0
        start: bytes | None = b""
        try:
            while start is not None:
                with self._begin(write=True, db=self._data) as txn:
                    cursor = txn.cursor()
                    ok = cursor.set_range(start) if start else cursor.first()
                    scanned = deleted = 0
                    while ok and scanned < chunk:
                        expiry = _EXPIRY.unpack_from(cursor.value())[0]
                        if expiry and expiry <= now:
                            cursor.delete()  # moves to the next row
                            deleted += 1
                        else:
                            cursor.next()
                        ok = cursor.key() != b""
                        scanned += 1
                    start = bytes(cursor.key()) if ok else None
                removed += deleted  # committed
        except lmdb.Error as exc:
            self._fail(exc, "purge_expired")
        return removed

    # -------------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Release the environment (shared with other stores of this process on the same path).

        Idempotent. Calls made after closing raise :class:`Unavailable`.
        """
        if isinstance(self._env, _ClosedEnv):
            return
        self._env = _ClosedEnv(self.path)
        self._cache.clear()
        _release_env(self.path, self._lmdb_env)

    def __enter__(self) -> LMDBOnlineStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
