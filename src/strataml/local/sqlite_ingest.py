"""The embedded ingest store: append-only JSON streams in one SQLite file (WAL mode).

Layout
------
``ingest_streams(id, name, created_us)`` names the streams; ``ingest_records`` holds the records::

    seq          INTEGER PRIMARY KEY  -- position: grows in commit order, never reused
    stream_id    INTEGER              -- ingest_streams.id
    idem_key     TEXT NULL            -- idempotency key, unique per stream
    ts           INTEGER              -- event time, microseconds since the epoch (UTC)
    ingested_us  INTEGER              -- ingestion time, same unit
    data         TEXT                 -- the record as JSON (queryable with json_extract)

Writers take SQLite's single write lock (``BEGIN IMMEDIATE``) and SQLite gives each new row
``seq = max(seq) + 1``, so transactions commit one after the other and ``seq`` only ever grows
in commit order: a reader that resumes after the last ``seq`` it saw misses nothing and sees
nothing twice, even while other threads or processes write.

``max(seq)`` must never go back, or retention deleting the newest rows would hand their ``seq``
out again, behind some reader's cursor. ``AUTOINCREMENT`` would guarantee it at a cost on every
insert; instead, :meth:`SQLiteIngestStore.delete_before` and :meth:`SQLiteIngestStore.drop`
leave a *high-water row* (``stream_id = 0``, in no stream) at the old maximum when they delete
it, in the same transaction. Writes pay nothing.

Each thread gets its own connection (SQLite connections must not be shared between threads);
WAL mode lets readers run while one writer writes, across processes too.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from itertools import repeat
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from strataml._json import dumps_record, loads
from strataml._time import EPOCH, event_micros, from_micros, parse_event_time, to_micros
from strataml.capabilities import Capabilities
from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    StrataError,
    Unavailable,
)
from strataml.ingestargs import (
    batch_records,
    field_name,
    idempotency_key,
    page_limit,
    seq_cursor,
)
from strataml.local import SQLITE_CAPS
from strataml.models import IngestedRecord, ReadPage, WriteResult, check_name

__all__ = ["PRAGMAS", "SCHEMA", "SQLiteIngestStore", "translate_sqlite_error"]

SCHEMA_VERSION: Final = 1

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS ingest_streams (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_us  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_records (
    seq          INTEGER PRIMARY KEY,
    stream_id    INTEGER NOT NULL,
    idem_key     TEXT,
    ts           INTEGER NOT NULL,
    ingested_us  INTEGER NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ingest_records_stream ON ingest_records (stream_id);
CREATE INDEX IF NOT EXISTS ingest_records_stream_ts ON ingest_records (stream_id, ts);
CREATE UNIQUE INDEX IF NOT EXISTS ingest_records_stream_key
    ON ingest_records (stream_id, idem_key) WHERE idem_key IS NOT NULL;
"""

#: Per-connection settings besides ``synchronous`` and ``busy_timeout`` (the bench reuses them).
PRAGMAS: Final = ("PRAGMA cache_size = -65536", "PRAGMA temp_store = MEMORY")

_SYNCHRONOUS: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})
_MAX_LIMIT: Final = 1 << 62

_INSERT: Final = (
    "INSERT INTO ingest_records (stream_id, idem_key, ts, ingested_us, data) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_HIGH_WATER_STREAM: Final = 0  # stream ids start at 1
_SELECT_COLUMNS: Final = "SELECT seq, idem_key, ts, ingested_us, data FROM ingest_records"


# ------------------------------------------------------------------------------------ errors
def translate_sqlite_error(exc: sqlite3.Error, what: str) -> StrataError:
    """Map a ``sqlite3`` exception to the strataml hierarchy (the caller chains it)."""
    msg = str(exc) or type(exc).__name__
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    low = "" if name else msg.lower()  # the message only when SQLite gave no error code
    text = f"{what}: {msg}"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in low or "busy" in low:
        return Unavailable(
            f"{what}: the database is locked by another writer for longer than busy_timeout_ms; "
            "retry, or raise busy_timeout_ms"
        )
    if isinstance(exc, sqlite3.ProgrammingError) and "closed" in msg.lower():
        return Unavailable(f"{what}: the store is closed")
    if name.startswith("SQLITE_CONSTRAINT") or isinstance(exc, sqlite3.IntegrityError):
        return Conflict(text)
    if name == "SQLITE_TOOBIG" or "too big" in low:
        return LimitExceeded(text)
    if name == "SQLITE_NOTADB" or "not a database" in low:
        return ConfigError(f"{what}: the file is not a SQLite database; point `path` elsewhere")
    if name.startswith(
        ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_NOMEM")
    ) or any(s in low for s in ("unable to open", "disk i/o", "readonly", "disk is full")):
        return Unavailable(text)
    if isinstance(exc, sqlite3.DataError):
        return InvalidInput(text)
    return BackendError(text)


# ------------------------------------------------------------------------------- validation


def _instant(value: Any, what: str) -> int | None:
    return None if value is None else to_micros(parse_event_time(value, what))


class _Prepared:
    """A validated batch, column by column, ready for ``executemany``."""

    __slots__ = ("datas", "keys", "times")

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.times: list[int] = []
        self.datas: list[str] = []


# ---------------------------------------------------------------------------------- records
_RECORD_FIELDS: Final = frozenset(IngestedRecord.model_fields)
_set = object.__setattr__


def _record_fast(values: dict[str, Any]) -> IngestedRecord:
    """What ``IngestedRecord.model_construct(**values)`` does for a model without defaults,
    extras or private attributes, at a quarter of the cost (rows come from our own table)."""
    rec = IngestedRecord.__new__(IngestedRecord)
    _set(rec, "__dict__", values)
    _set(rec, "__pydantic_fields_set__", _RECORD_FIELDS)
    _set(rec, "__pydantic_extra__", None)
    _set(rec, "__pydantic_private__", None)
    return rec


def _record_slow(values: dict[str, Any]) -> IngestedRecord:
    return IngestedRecord.model_construct(**values)


def _pick_record_factory() -> Callable[[dict[str, Any]], IngestedRecord]:
    """The fast constructor if it builds exactly what pydantic builds, else pydantic's own."""
    sample = {
        "stream": "s",
        "seq": 1,
        "key": None,
        "ts": dt.datetime(2000, 1, 1),
        "ingested_at": dt.datetime(2000, 1, 1),
        "data": {"a": [1]},
    }
    try:
        fast, slow = _record_fast(dict(sample)), _record_slow(dict(sample))
        same = fast == slow and fast.model_dump() == slow.model_dump() and repr(fast) == repr(slow)
    except Exception:  # noqa: BLE001 - any surprise from pydantic internals: use the safe path
        same = False
    return _record_fast if same else _record_slow


_make_record: Final = _pick_record_factory()


# ------------------------------------------------------------------------------ connections
class _Connection:
    """One thread's connection (a holder, since ``sqlite3.Connection`` takes no weak refs)."""

    __slots__ = ("__weakref__", "con", "pid")

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con
        self.pid = os.getpid()


class _Transaction:
    """``with _Transaction(con, "BEGIN IMMEDIATE"):`` commits on success, rolls back on any
    error (a plain class: cheaper than a generator context manager on the single-write path)."""

    __slots__ = ("begin", "con")

    def __init__(self, con: sqlite3.Connection, begin: str) -> None:
        self.con = con
        self.begin = begin

    def __enter__(self) -> None:
        self.con.execute(self.begin)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            try:
                self.con.execute("COMMIT")
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.con.in_transaction:
            try:
                self.con.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the original error matters more; SQLite rolled back already


# ------------------------------------------------------------------------------------ store
class SQLiteIngestStore:
    """:class:`~strataml.protocols.IngestStore` over one SQLite file in WAL mode.

    ``path`` is the database file (created with its parent directories). ``busy_timeout_ms`` is
    how long a writer waits for another writer (thread or process) before
    :class:`~strataml.errors.Unavailable`; ``synchronous`` is SQLite's durability setting
    (``NORMAL``: a commit survives a process crash, the last ones may be lost on power loss;
    ``FULL``: also power loss).

    Semantics beyond the protocol:

    * Idempotency keys are strings; an int key is stored as its decimal string (``42`` and
      ``"42"`` are the same key). With ``key_field``, a record whose field is missing or null has
      no key. Keys are remembered as long as their record is: after :meth:`delete_before` or
      :meth:`drop` removed it, the same key is accepted again.
    * With ``time_field``, every record must hold a valid event time in that (top-level) field:
      a missing or null value is :class:`~strataml.errors.InvalidInput`.
    * Cursors are the decimal ``seq`` of the last record returned; an empty page returns the
      ``after`` it was given. They stay valid across restarts, retention and other writers.
    * An empty batch writes nothing and does not create the stream.

    Errors: :class:`~strataml.errors.ConfigError` (bad settings, a path that is not a SQLite
    database), :class:`~strataml.errors.SchemaError` (a file written by a newer strataml), and
    those of the protocol.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = 10_000,
        synchronous: str = "NORMAL",
    ) -> None:
        if str(path) == ":memory:" or str(path).startswith("file:"):
            raise ConfigError(
                "the SQLite ingest store needs a file path (WAL mode, shared between threads "
                "and processes); use a temporary directory for throwaway data"
            )
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int):
            raise ConfigError(f"busy_timeout_ms must be an int, got {busy_timeout_ms!r}")
        if busy_timeout_ms < 0:
            raise ConfigError(f"busy_timeout_ms must be >= 0, got {busy_timeout_ms}")
        sync = str(synchronous).upper()
        if sync not in _SYNCHRONOUS:
            raise ConfigError(
                f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {synchronous!r}"
            )
        self.path = Path(path).expanduser()
        self._busy_timeout_ms = busy_timeout_ms
        self._synchronous = sync
        self._max_rows = SQLITE_CAPS.max_batch_rows
        self._max_bytes = SQLITE_CAPS.max_record_bytes
        self._local = threading.local()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._inherited: list[_Connection] = []  # opened before a fork: never used nor closed
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create the directory of {self.path}: {exc}") from exc
        self._init_schema()

    # -------------------------------------------------------------------------- plumbing
    @property
    def capabilities(self) -> Capabilities:
        """The declared capabilities (``strataml.local.SQLITE_CAPS``)."""
        return SQLITE_CAPS

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_ms / 1000,
            isolation_level=None,  # transactions are explicit
            check_same_thread=False,  # close() may run on another thread
            cached_statements=64,
        )
        try:
            con.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            con.execute(f"PRAGMA synchronous = {self._synchronous}")
            for pragma in PRAGMAS:
                con.execute(pragma)
        except BaseException:
            con.close()
            raise
        return con

    def _con(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        if self._closed:
            raise Unavailable(f"the ingest store {self.path} is closed")
        holder: _Connection | None = getattr(self._local, "holder", None)
        if holder is not None and holder.pid == os.getpid():
            return holder.con
        if holder is not None:  # inherited through fork(): SQLite forbids using it here
            self._inherited.append(holder)
        try:
            con = self._connect()
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, f"opening {self.path}") from exc
        holder = _Connection(con)
        self._local.holder = holder
        with self._lock:
            self._connections.add(holder)
        return con

    def _init_schema(self) -> None:
        what = f"opening the ingest database {self.path}"
        try:
            con = self._con()
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ConfigError(
                    f"{what}: SQLite could not switch to WAL mode (got {mode!r}); "
                    "put the database on a local filesystem"
                )
            with self._write(con):
                version = con.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise SchemaError(
                        f"{what}: written by a newer strataml (schema {version}, this one "
                        f"reads {SCHEMA_VERSION}); upgrade strataml"
                    )
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                if version < SCHEMA_VERSION:
                    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            self.close()
            raise translate_sqlite_error(exc, what) from exc
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _write(con: sqlite3.Connection) -> _Transaction:
        """One write transaction holding SQLite's write lock from the start."""
        return _Transaction(con, "BEGIN IMMEDIATE")

    @staticmethod
    def _snapshot(con: sqlite3.Connection) -> _Transaction:
        """A read transaction: every statement inside sees the same committed state."""
        return _Transaction(con, "BEGIN")

    @staticmethod
    def _stream_id(con: sqlite3.Connection, stream: str) -> int:
        row = con.execute("SELECT id FROM ingest_streams WHERE name = ?", (stream,)).fetchone()
        if row is None:
            raise NotFound(f"stream {stream!r} does not exist; it is created by its first write")
        return int(row[0])

    @staticmethod
    def _max_seq(con: sqlite3.Connection) -> int | None:
        row = con.execute("SELECT max(seq) FROM ingest_records").fetchone()
        return None if row[0] is None else int(row[0])

    @staticmethod
    def _keep_high_water(con: sqlite3.Connection, high: int | None) -> None:
        """After a delete (same transaction): if it removed the row with the highest ``seq``,
        put a high-water row there (replacing the previous one), so ``seq`` is never reused."""
        if high is None:
            return
        now = con.execute("SELECT max(seq) FROM ingest_records").fetchone()[0]
        if now is None or now < high:
            con.execute("DELETE FROM ingest_records WHERE stream_id = ?", (_HIGH_WATER_STREAM,))
            con.execute(
                "INSERT INTO ingest_records (seq, stream_id, idem_key, ts, ingested_us, data) "
                "VALUES (?, ?, NULL, 0, 0, '{}')",
                (high, _HIGH_WATER_STREAM),
            )

    # ---------------------------------------------------------------------------- writing
    def _prepare(
        self,
        records: Iterable[Any],
        *,
        key: str | None,
        key_field: str | None,
        time_field: str | None,
        now_us: int,
        single: bool,
    ) -> _Prepared:
        """Validate every record completely (nothing is written yet).

        The loop names no record until one fails; then that record is checked again under its
        name (``records[i]``) so the error says which one it is.
        """
        out = _Prepared()
        add_key, add_time, add_data = out.keys.append, out.times.append, out.datas.append
        max_bytes = self._max_bytes
        for i, rec in enumerate(records):
            where = "record"
            while True:
                try:
                    data = dumps_record(rec, where)
                    if max_bytes is not None and len(data) > max_bytes:
                        raise LimitExceeded(
                            f"{where} is {len(data)} bytes of JSON, over the limit of "
                            f"{max_bytes}; split it, or store large payloads elsewhere and keep "
                            "a reference"
                        )
                    if time_field is None:
                        ts = now_us
                    elif time_field in rec:
                        ts = event_micros(rec[time_field], f"{where}.{time_field}")
                    else:
                        raise InvalidInput(f"{where}: no event-time field {time_field!r}")
                    if key_field is not None:
                        key = rec.get(key_field)
                        if key is not None and type(key) is not str:
                            key = idempotency_key(key, f"{where}.{key_field}")
                    break
                except InvalidInput:
                    if single or where != "record":
                        raise
                    where = f"records[{i}]"  # again, to name the record in the error
            add_key(key)
            add_time(ts)
            add_data(data.decode())
        return out

    def _insert(self, stream: str, rows: _Prepared, now_us: int) -> WriteResult:
        if not rows.datas:
            return WriteResult()
        con = self._con()
        try:
            with self._write(con):
                row = con.execute(
                    "SELECT id FROM ingest_streams WHERE name = ?", (stream,)
                ).fetchone()
                if row is None:
                    row = con.execute(
                        "INSERT INTO ingest_streams (name, created_us) VALUES (?, ?) RETURNING id",
                        (stream, now_us),
                    ).fetchone()
                params = zip(
                    repeat(row[0]),
                    rows.keys,
                    rows.times,
                    repeat(now_us),
                    rows.datas,
                    strict=False,  # repeat() is endless
                )
                written = con.executemany(_INSERT, params).rowcount
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, f"writing to stream {stream!r}") from exc
        return WriteResult(written=written, duplicates=len(rows.datas) - written)

    def write(
        self,
        stream: str,
        record: Mapping[str, Any],
        *,
        key: str | None = None,
        time_field: str | None = None,
    ) -> WriteResult:
        """Append one record; with ``key``, a record with the same key already in the stream
        makes this a no-op counted as a duplicate.

        Errors: :class:`~strataml.errors.InvalidInput` (bad stream name, record, key or event
        time), :class:`~strataml.errors.LimitExceeded` (record over ``max_record_bytes``),
        :class:`~strataml.errors.Unavailable` (locked longer than ``busy_timeout_ms``, closed).
        """
        check_name("stream", stream)
        idem = idempotency_key(key, "key")
        tf = field_name(time_field, "time_field")
        now_us = time.time_ns() // 1000
        rows = self._prepare(
            (record,), key=idem, key_field=None, time_field=tf, now_us=now_us, single=True
        )
        return self._insert(stream, rows, now_us)

    def write_batch(
        self,
        stream: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str | None = None,
        time_field: str | None = None,
    ) -> WriteResult:
        """Append many records in one transaction, all or none. Every record is validated before
        anything is written; duplicate keys (already stored, or earlier in the batch) are
        skipped and counted, the first one wins.

        Errors: as :meth:`write`, naming the failing record's index; ``LimitExceeded`` for more
        than ``max_batch_rows`` records.
        """
        check_name("stream", stream)
        kf = field_name(key_field, "key_field")
        tf = field_name(time_field, "time_field")
        items = batch_records(records, self._max_rows)
        now_us = time.time_ns() // 1000
        rows = self._prepare(
            items, key=None, key_field=kf, time_field=tf, now_us=now_us, single=False
        )
        return self._insert(stream, rows, now_us)

    # ---------------------------------------------------------------------------- reading
    def read(
        self,
        stream: str,
        *,
        after: str | None = None,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        limit: int = 1000,
    ) -> ReadPage:
        """Records committed after cursor ``after`` whose event time is in ``[start, end)``,
        in commit order, at most ``limit``. ``has_more`` says whether more such records exist
        right now; ``cursor`` is the last record's (or ``after`` for an empty page).

        Errors: :class:`~strataml.errors.NotFound` (unknown stream),
        :class:`~strataml.errors.InvalidInput` (bad name, cursor, window or ``limit < 1``).
        """
        check_name("stream", stream)
        seq = seq_cursor(after)
        lo, hi = _instant(start, "start"), _instant(end, "end")
        limit = page_limit(limit)
        sql = [_SELECT_COLUMNS, "WHERE stream_id = ? AND seq > ?"]
        params: list[int] = [0, seq]
        if lo is not None:
            sql.append("AND ts >= ?")
            params.append(lo)
        if hi is not None:
            sql.append("AND ts < ?")
            params.append(hi)
        sql.append("ORDER BY seq LIMIT ?")
        params.append(min(limit, _MAX_LIMIT) + 1)
        con = self._con()
        try:
            with self._snapshot(con):
                params[0] = self._stream_id(con, stream)
                rows = con.execute(" ".join(sql), params).fetchall()
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, f"reading stream {stream!r}") from exc
        has_more = len(rows) > limit
        if has_more:
            del rows[limit:]
        ingested: dict[int, dt.datetime] = {}  # one value per write call: convert it once
        records: list[IngestedRecord] = []
        add, make, epoch, delta = records.append, _make_record, EPOCH, dt.timedelta
        for seq_, key, ts, ing, data in rows:
            at = ingested.get(ing)
            if at is None:
                at = ingested[ing] = from_micros(ing)
            add(
                make(
                    {
                        "stream": stream,
                        "seq": seq_,
                        "key": key,
                        "ts": epoch + delta(microseconds=ts),  # _time.from_micros, inlined
                        "ingested_at": at,
                        "data": loads(data),
                    }
                )
            )
        cursor = str(rows[-1][0]) if rows else after
        return ReadPage(records=records, cursor=cursor, has_more=has_more)

    def count(
        self, stream: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> int:
        """Number of records, optionally with event time in ``[start, end)``.

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        lo, hi = _instant(start, "start"), _instant(end, "end")
        sql = ["SELECT count(*) FROM ingest_records WHERE stream_id = ?"]
        params: list[int] = [0]
        if lo is not None:
            sql.append("AND ts >= ?")
            params.append(lo)
        if hi is not None:
            sql.append("AND ts < ?")
            params.append(hi)
        con = self._con()
        try:
            with self._snapshot(con):
                params[0] = self._stream_id(con, stream)
                return int(con.execute(" ".join(sql), params).fetchone()[0])
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, f"counting stream {stream!r}") from exc

    # -------------------------------------------------------------------------- retention
    def delete_before(self, stream: str, before: dt.datetime) -> int:
        """Delete the stream's records whose event time is before ``before``; return how many.
        The stream itself (and every cursor) stays valid.

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        cutoff = to_micros(parse_event_time(before, "before"))
        con = self._con()
        try:
            with self._write(con):
                sid = self._stream_id(con, stream)
                high = self._max_seq(con)
                deleted: int = con.execute(
                    "DELETE FROM ingest_records WHERE stream_id = ? AND ts < ?", (sid, cutoff)
                ).rowcount
                self._keep_high_water(con, high)
                return deleted
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, f"deleting from stream {stream!r}") from exc

    def streams(self) -> list[str]:
        """Names of the existing streams, sorted."""
        try:
            rows = self._con().execute("SELECT name FROM ingest_streams").fetchall()
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, "listing streams") from exc
        return sorted(r[0] for r in rows)

    def drop(self, stream: str) -> None:
        """Delete a stream and its records (and so their idempotency keys); no error if the
        stream does not exist. Errors: :class:`~strataml.errors.InvalidInput` (bad name)."""
        check_name("stream", stream)
        con = self._con()
        try:
            with self._write(con):
                row = con.execute(
                    "SELECT id FROM ingest_streams WHERE name = ?", (stream,)
                ).fetchone()
                if row is not None:
                    high = self._max_seq(con)
                    con.execute("DELETE FROM ingest_records WHERE stream_id = ?", (row[0],))
                    con.execute("DELETE FROM ingest_streams WHERE id = ?", (row[0],))
                    self._keep_high_water(con, high)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, f"dropping stream {stream!r}") from exc

    def close(self) -> None:
        """Close every thread's connection; later calls raise
        :class:`~strataml.errors.Unavailable`. Safe to call twice."""
        with self._lock:
            self._closed = True
            holders = list(self._connections)
            self._connections = weakref.WeakSet()
        for holder in holders:
            if holder.pid == os.getpid():
                try:
                    holder.con.close()
                except sqlite3.Error:
                    pass  # closing anyway; nothing to recover

    def __repr__(self) -> str:
        return f"<SQLiteIngestStore {str(self.path)!r}>"
