"""The PostgreSQL ingest store: append-only JSON streams in one ``jsonb`` table.

Layout (in the configured schema)
---------------------------------
``_strataml_ingest_streams(name PRIMARY KEY, created_at)`` lists the streams;
``_strataml_ingest_records`` holds the records::

    seq          bigserial     -- position; grows in commit order within a stream, never reused
    stream       text          -- the stream's name
    key          text NULL     -- idempotency key: UNIQUE (stream, key) WHERE key IS NOT NULL
    ts           timestamptz   -- event time
    ingested_at  timestamptz   -- ingestion time (one value per write call)
    data         jsonb         -- the record (see strataml_postgres.jsonb for the exact encoding)

with indexes on ``(stream, seq)`` (incremental reads) and ``(stream, ts)`` (windows, retention).

Writing
-------
A batch is one transaction: the stream's writer lock, then one binary ``COPY`` straight into the
records table. Records are validated, serialised and encoded a thousand at a time and each chunk
is sent at once, so the server inserts while the client prepares the next chunk; an invalid
record anywhere aborts the ``COPY`` and rolls the transaction back, so a failed batch leaves
nothing behind (the store is exactly as before; only ``seq`` values were consumed). When keys are
in play the ``COPY`` runs in a savepoint: if it hits the unique key (a retried batch) it is rolled
back and the rows go through a temporary staging table and ``INSERT ... SELECT ... ON CONFLICT
DO NOTHING`` in batch order, which counts the duplicates. Duplicate keys inside one batch are
dropped before writing (the first wins).

Commit order
------------
``bigserial`` values are drawn when rows are inserted, not when they commit: with two concurrent
writers a reader could see ``seq`` 12 committed while 11 is still in flight, move its cursor past
11 and never see it. Writers of one stream therefore hold a transaction-scoped advisory lock on
the stream from before their first insert until they commit, so a stream's ``seq`` order is its
commit order and a cursor never skips a row. Writers of different streams do not wait for each
other.
"""

from __future__ import annotations

import datetime as dt
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.copy import LibpqWriter

from strataml._json import dumps_record
from strataml._time import EPOCH, event_micros, parse_event_time, to_micros, utcnow
from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, LimitExceeded, NotFound, Unavailable
from strataml.ingestargs import (
    batch_records,
    field_name,
    idempotency_key,
    page_limit,
    seq_cursor,
)
from strataml.models import IngestedRecord, ReadPage, WriteResult, check_name
from strataml_postgres.jsonb import from_jsonb, to_jsonb
from strataml_postgres.pgcopy import (
    HEADER,
    PG_EPOCH_US,
    TRAILER,
)
from strataml_postgres.pool import PgDatabase
from strataml_postgres.sql import advisory_lock, qname, run_ddl

__all__ = ["PostgresIngestStore"]

STREAMS: Final = "_strataml_ingest_streams"
RECORDS: Final = "_strataml_ingest_records"
STAGE: Final = "_strataml_ingest_stage"
_MAX_LIMIT: Final = 1 << 62
_CHUNK: Final = 250  # records validated, encoded and sent at a time
_TS_AND_DATA: Final = struct.Struct(">iqiB")  # ts field, then data's length word and version
_NULL_FIELD: Final = b"\xff\xff\xff\xff"
_FLUSH: Final = 128 * 1024  # send COPY data early, so the server works while we prepare more


# ------------------------------------------------------------------------------- validation


def _instant(value: Any, what: str) -> dt.datetime | None:
    """A window bound as an aware UTC datetime (naive values are UTC)."""
    if value is None:
        return None
    return parse_event_time(value, what).replace(tzinfo=dt.UTC)


class _Batch:
    """A validated batch, column by column."""

    __slots__ = ("datas", "duplicates", "keys", "times")

    def __init__(self) -> None:
        self.keys: list[str | None] = []
        self.times: list[int] = []
        self.datas: list[bytes] = []
        self.duplicates = 0


# ------------------------------------------------------------------------------------ store
class PostgresIngestStore:
    """:class:`~strataml.protocols.IngestStore` on PostgreSQL (see the module docstring).

    ``db`` is the stack's connection pool; :meth:`close` leaves it open unless ``owns_db``.

    Semantics beyond the protocol (the same as the embedded store's):

    * Idempotency keys are strings; an int key is stored as its decimal string. With
      ``key_field``, a record whose field is missing or null has no key. Keys are remembered as
      long as their record is (retention and :meth:`drop` forget them).
    * With ``time_field``, every record must hold a valid event time in that top-level field.
    * Cursors are the decimal ``seq`` of the last record returned; an empty page returns the
      ``after`` it was given. They stay valid across restarts, retention and other writers.
    * An empty batch writes nothing and does not create the stream.

    Errors: those of the protocol; :class:`~strataml.errors.Unavailable` also when the pool has
    no free connection within ``pool_timeout_s`` or the server is unreachable.
    """

    def __init__(self, db: PgDatabase, *, owns_db: bool = False) -> None:
        from strataml_postgres import INGEST_CAPS

        self._db = db
        self._owns_db = owns_db
        self._caps = INGEST_CAPS
        self._schema = db.schema
        self._streams = qname(self._schema, STREAMS)
        self._records = qname(self._schema, RECORDS)
        self._copy_sql = self._sql(
            "COPY {records} (stream, ingested_at, ts, data, key) FROM STDIN (FORMAT BINARY)"
        )
        self._ready = False
        self._ready_lock = threading.Lock()
        self._closed = False

    # ----------------------------------------------------------------------------- plumbing
    @property
    def capabilities(self) -> Capabilities:
        """The declared capabilities (``strataml_postgres.INGEST_CAPS``)."""
        return self._caps

    def _sql(self, template: LiteralString) -> sql.Composed:
        return sql.SQL(template).format(
            streams=self._streams,
            records=self._records,
            key_index=sql.Identifier(f"{RECORDS}_key"),
            seq_index=sql.Identifier(f"{RECORDS}_seq"),
            ts_index=sql.Identifier(f"{RECORDS}_ts"),
        )

    def _ensure(self) -> None:
        """Create the tables once (idempotent; concurrent creators serialise on a lock)."""
        if self._closed:
            raise Unavailable("the ingest store is closed")
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            statements = [
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {streams} (name text PRIMARY KEY,"
                    " created_at timestamptz NOT NULL DEFAULT now())"
                ),
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {records} (seq bigserial NOT NULL,"
                    " stream text NOT NULL, key text, ts timestamptz NOT NULL,"
                    " ingested_at timestamptz NOT NULL, data jsonb NOT NULL)"
                ),
                self._sql(
                    "CREATE UNIQUE INDEX IF NOT EXISTS {key_index} ON {records} (stream, key)"
                    " WHERE key IS NOT NULL"
                ),
                self._sql("CREATE INDEX IF NOT EXISTS {seq_index} ON {records} (stream, seq)"),
                self._sql("CREATE INDEX IF NOT EXISTS {ts_index} ON {records} (stream, ts)"),
            ]
            with self._db.connection("creating the ingest tables") as conn:
                run_ddl(conn, self._schema, statements)
            self._ready = True

    # ------------------------------------------------------------------------------ writing
    def _prepare(
        self,
        records: Sequence[Any],
        *,
        key: str | None,
        key_field: str | None,
        time_field: str | None,
        now_us: int,
        single: bool,
        offset: int = 0,
        seen: set[str] | None = None,
    ) -> _Batch:
        """Validate and serialise records (``offset``: index of the first, for messages;
        ``seen``: keys of earlier records of the batch, updated)."""
        out = _Batch()
        max_bytes = self._caps.max_record_bytes
        seen = set() if seen is None else seen
        for i, rec in enumerate(records, offset):
            where = "record" if single else f"records[{i}]"
            data = dumps_record(rec, where)
            if max_bytes is not None and len(data) > max_bytes:
                raise LimitExceeded(
                    f"{where} is {len(data)} bytes of JSON, over the limit of {max_bytes}; "
                    "split it or store large payloads elsewhere and keep a reference"
                )
            if time_field is None:
                ts = now_us
            elif time_field in rec:
                ts = event_micros(rec[time_field], f"{where}.{time_field}")
            else:
                raise InvalidInput(f"{where}: no event-time field {time_field!r}")
            if key_field is not None:
                key = idempotency_key(rec.get(key_field), f"{where}.{key_field}")
            if key is not None:
                if key in seen:
                    out.duplicates += 1
                    continue
                seen.add(key)
            out.keys.append(key)
            out.times.append(ts)
            out.datas.append(to_jsonb(data))
        return out

    @staticmethod
    def _encode(stream: str, now_us: int, batch: _Batch) -> bytes:
        """Binary COPY rows ``(stream, ingested_at, ts, data, key)``: a constant head, then per
        record its event time, its jsonb (version byte + text) and its key."""
        name = stream.encode()
        head = struct.pack(">hi", 5, len(name)) + name + struct.pack(">iq", 8, now_us - PG_EPOCH_US)
        pack_ts = _TS_AND_DATA.pack
        parts: list[bytes] = []
        append = parts.append
        for ts, data, key in zip(batch.times, batch.datas, batch.keys, strict=True):
            append(head)
            append(pack_ts(8, ts - PG_EPOCH_US, len(data) + 1, 1))
            append(data)
            if key is None:
                append(_NULL_FIELD)
            else:
                raw = key.encode()
                append(struct.pack(">i", len(raw)) + raw)
        return b"".join(parts)

    def _write(
        self, stream: str, items: Sequence[Any], key_field: str | None, time_field: str | None
    ) -> WriteResult:
        """Validate, encode and COPY the batch chunk by chunk inside one transaction, so the
        server works while the next chunk is prepared; an invalid record anywhere aborts the
        COPY and rolls the whole batch back."""
        if not items:
            return WriteResult()
        self._ensure()
        now_us = to_micros(utcnow())
        seen: set[str] = set()
        payloads: list[bytes] = []
        rows = duplicates = 0
        with self._db.connection(f"writing to stream {stream!r}") as conn:
            with conn.pipeline():
                advisory_lock(conn, "ingest", self._schema, stream)
                conn.execute(
                    self._sql("INSERT INTO {streams} (name) VALUES (%s) ON CONFLICT DO NOTHING"),
                    (stream,),
                )
            try:
                # a savepoint when keys may conflict: a retried batch rolls back only the COPY
                savepoint = conn.transaction() if key_field is not None else nullcontext()
                with (
                    savepoint,
                    conn.cursor() as cur,
                    cur.copy(
                        self._copy_sql, writer=LibpqWriter(cur, flush_threshold=_FLUSH)
                    ) as copy,
                ):
                    copy.write(HEADER)
                    for start in range(0, len(items), _CHUNK):
                        batch = self._prepare(
                            items[start : start + _CHUNK],
                            key=None,
                            key_field=key_field,
                            time_field=time_field,
                            now_us=now_us,
                            single=False,
                            offset=start,
                            seen=seen,
                        )
                        duplicates += batch.duplicates
                        if batch.datas:
                            payloads.append(self._encode(stream, now_us, batch))
                            copy.write(payloads[-1])
                            rows += len(batch.datas)
                    copy.write(TRAILER)
                written = rows
            except psycopg.errors.UniqueViolation:
                written = self._insert_new(conn, payloads)
        return WriteResult(written=written, duplicates=duplicates + rows - written)

    def _insert_new(self, conn: psycopg.Connection[Any], payloads: list[bytes]) -> int:
        """Write the rows whose key is new, in batch order, through a staging table."""
        stage = sql.Identifier(STAGE)
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE {} (stream text, ingested_at timestamptz, ts timestamptz,"
                " data jsonb, key text, ord bigint GENERATED ALWAYS AS IDENTITY) ON COMMIT DROP"
            ).format(stage)
        )
        copy_sql = sql.SQL(
            "COPY {} (stream, ingested_at, ts, data, key) FROM STDIN (FORMAT BINARY)"
        ).format(stage)
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.write(HEADER)
            for payload in payloads:
                copy.write(payload)
            copy.write(TRAILER)
        cur = conn.execute(
            sql.SQL(
                "INSERT INTO {} (stream, ingested_at, ts, data, key)"
                " SELECT stream, ingested_at, ts, data, key FROM {} ORDER BY ord"
                " ON CONFLICT DO NOTHING"
            ).format(self._records, stage)
        )
        return max(cur.rowcount, 0)

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
        :class:`~strataml.errors.Unavailable` (server unreachable, pool exhausted, closed).
        """
        check_name("stream", stream)
        idem = idempotency_key(key, "key")
        tf = field_name(time_field, "time_field")
        now_us = to_micros(utcnow())
        batch = self._prepare(
            (record,), key=idem, key_field=None, time_field=tf, now_us=now_us, single=True
        )
        self._ensure()
        now = EPOCH + dt.timedelta(microseconds=now_us)
        ts = EPOCH + dt.timedelta(microseconds=batch.times[0])
        with self._db.connection(f"writing to stream {stream!r}") as conn:
            with conn.pipeline():
                advisory_lock(conn, "ingest", self._schema, stream)
                conn.execute(
                    self._sql("INSERT INTO {streams} (name) VALUES (%s) ON CONFLICT DO NOTHING"),
                    (stream,),
                )
                cur = conn.execute(
                    self._sql(
                        "INSERT INTO {records} (stream, ingested_at, ts, data, key)"
                        " VALUES (%s, %s, %s, %s::jsonb, %s) ON CONFLICT DO NOTHING"
                    ),
                    (
                        stream,
                        now.replace(tzinfo=dt.UTC),
                        ts.replace(tzinfo=dt.UTC),
                        batch.datas[0].decode(),
                        batch.keys[0],
                    ),
                )
            written = max(cur.rowcount, 0)
        return WriteResult(written=written, duplicates=1 - written)

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
        items = batch_records(records, self._caps.max_batch_rows)
        return self._write(stream, items, kf, tf)

    # ------------------------------------------------------------------------------ reading
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
        self._ensure()
        window, params = self._window(lo, hi)
        query = sql.SQL(
            "SELECT r.seq, r.key, r.ts AT TIME ZONE 'UTC', r.ingested_at AT TIME ZONE 'UTC',"
            " r.data::text FROM {streams} AS s LEFT JOIN LATERAL ("
            "SELECT seq, key, ts, ingested_at, data FROM {records}"
            " WHERE stream = s.name AND seq > %s{window} ORDER BY seq LIMIT %s) AS r ON TRUE"
            " WHERE s.name = %s ORDER BY r.seq"
        ).format(streams=self._streams, records=self._records, window=window)
        with self._db.connection(f"reading stream {stream!r}") as conn:
            rows = conn.execute(
                query, [seq, *params, min(limit, _MAX_LIMIT) + 1, stream]
            ).fetchall()
        if not rows:
            raise NotFound(f"stream {stream!r} does not exist; it is created by its first write")
        if rows[0][0] is None:
            rows = []
        has_more = len(rows) > limit
        if has_more:
            del rows[limit:]
        records = [
            IngestedRecord.model_construct(
                stream=stream, seq=s, key=k, ts=ts, ingested_at=at, data=from_jsonb(d)
            )
            for s, k, ts, at, d in rows
        ]
        cursor = str(rows[-1][0]) if rows else after
        return ReadPage(records=records, cursor=cursor, has_more=has_more)

    @staticmethod
    def _window(lo: dt.datetime | None, hi: dt.datetime | None) -> tuple[sql.SQL, list[Any]]:
        clauses: list[LiteralString] = []
        params: list[Any] = []
        if lo is not None:
            clauses.append(" AND ts >= %s")
            params.append(lo)
        if hi is not None:
            clauses.append(" AND ts < %s")
            params.append(hi)
        return sql.SQL("".join(clauses)), params

    def count(
        self, stream: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> int:
        """Number of records, optionally with event time in ``[start, end)``.

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        lo, hi = _instant(start, "start"), _instant(end, "end")
        self._ensure()
        window, params = self._window(lo, hi)
        query = sql.SQL(
            "SELECT (SELECT count(*) FROM {records} WHERE stream = s.name{window})"
            " FROM {streams} AS s WHERE s.name = %s"
        ).format(streams=self._streams, records=self._records, window=window)
        with self._db.connection(f"counting stream {stream!r}") as conn:
            row = conn.execute(query, [*params, stream]).fetchone()
        if row is None:
            raise NotFound(f"stream {stream!r} does not exist; it is created by its first write")
        return int(row[0])

    # ---------------------------------------------------------------------------- retention
    def delete_before(self, stream: str, before: dt.datetime) -> int:
        """Delete the stream's records whose event time is before ``before``; return how many.
        The stream itself (and every cursor) stays valid.

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        cutoff = _instant(before, "before")
        self._ensure()
        query = self._sql(
            "WITH s AS (SELECT name FROM {streams} WHERE name = %s),"
            " d AS (DELETE FROM {records} AS r USING s WHERE r.stream = s.name AND r.ts < %s"
            " RETURNING 1)"
            " SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM d)"
        )
        with self._db.connection(f"deleting from stream {stream!r}") as conn:
            row = conn.execute(query, (stream, cutoff)).fetchone()
        if row is None or not row[0]:
            raise NotFound(f"stream {stream!r} does not exist; it is created by its first write")
        return int(row[1])

    def streams(self) -> list[str]:
        """Names of the existing streams, sorted."""
        self._ensure()
        with self._db.connection("listing streams") as conn:
            rows = conn.execute(self._sql("SELECT name FROM {streams}")).fetchall()
        return sorted(str(r[0]) for r in rows)

    def drop(self, stream: str) -> None:
        """Delete a stream and its records (and so their idempotency keys); no error if the
        stream does not exist. Errors: :class:`~strataml.errors.InvalidInput` (bad name)."""
        check_name("stream", stream)
        self._ensure()
        with self._db.connection(f"dropping stream {stream!r}") as conn:
            advisory_lock(conn, "ingest", self._schema, stream)
            conn.execute(self._sql("DELETE FROM {records} WHERE stream = %s"), (stream,))
            conn.execute(self._sql("DELETE FROM {streams} WHERE name = %s"), (stream,))

    def close(self) -> None:
        """Stop serving calls (later ones raise :class:`~strataml.errors.Unavailable`); the pool
        is closed only if this store owns it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_db:
            self._db.close()

    def __repr__(self) -> str:
        return f"<PostgresIngestStore schema={self._schema!r}>"
