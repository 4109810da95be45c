"""The MongoDB ingest store: append-only JSON streams in two collections.

Layout: see :mod:`strataml_mongodb.documents` (records) and :mod:`strataml_mongodb.queries`
(stream documents, visibility). Indexes on the records: ``(stream, seq)`` unique (incremental
reads), ``(stream, key)`` unique where ``key`` is a string (idempotency), ``(stream, ts_us)``
(windows, retention).

Writing a batch (validated and encoded completely first; nothing is written on bad input)
----------------------------------------------------------------------------------------
Duplicate keys inside the batch are dropped (the first wins). Then, depending on the deployment
(``transactions`` setting):

* **Transactions** (replica set or sharded cluster): one multi-document transaction reserves
  the batch's ``seq`` range on the stream document, finds which keys are already stored and
  inserts the other records. The reservation is a write to the stream document, so a second
  writer of the same stream conflicts and (pymongo's ``with_transaction``) retries after the
  first commits: a stream's ``seq`` order is its commit order, and the batch appears at once.
* **Staged batches** (standalone server): one atomic update of the stream document reserves the
  range *and* records the batch as in flight; the records are inserted unordered
  (``insert_many(ordered=False)``: duplicate-key errors on ``(stream, key)`` are counted as
  duplicates, any other error aborts); removing the in-flight entry commits the batch. Readers
  see nothing at or after the lowest in-flight range, so a batch's records appear together and
  a late commit is never skipped. A failed batch deletes what it wrote; one abandoned by a dead
  writer expires after ``batch_timeout_s`` (server time) and its range is then hidden from
  readers and deleted.

Reading
-------
``read`` gets the stream document (its existence, horizon and aborted ranges), then the records
after the cursor below the horizon, in ``seq`` order, on the ``(stream, seq)`` index. Cursors
are the decimal ``seq`` of the last record returned; they survive restarts, retention and drops
(the counter is never reset).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal, TypeVar

from bson.int64 import Int64
from bson.objectid import ObjectId
from pymongo import MongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from strataml._json import dumps_record
from strataml._time import EPOCH, event_micros, parse_event_time, to_micros, utcnow
from strataml.capabilities import Capabilities
from strataml.errors import (
    ConfigError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
    Unsupported,
)
from strataml.ingestargs import batch_records, field_name, idempotency_key, page_limit, seq_cursor
from strataml.models import IngestedRecord, ReadPage, WriteResult, check_name
from strataml_mongodb.config import MongoDBConfig
from strataml_mongodb.documents import CODEC_OPTIONS, decode_data, encode_record, with_seq
from strataml_mongodb.errors import redact, split_write_errors, translate
from strataml_mongodb.queries import (
    INDEXES,
    commit_update,
    drop_update,
    reap_update,
    reserve_update,
    visible_filter,
)

__all__ = ["MongoIngestStore", "make_client"]

T = TypeVar("T")
Mode = Literal["transactions", "staged"]

_PROJECTION: Final = {
    "_id": 0,
    "seq": 1,
    "key": 1,
    "ts_us": 1,
    "ingested_us": 1,
    "data": 1,
    "data_json": 1,
}
_STATE: Final = {"next_seq": 1, "pending": 1, "aborted": 1}
_MAX_LIMIT: Final = 1 << 31


def make_client(config: MongoDBConfig) -> MongoClient[dict[str, Any]]:
    """A pymongo client for ``config`` (connects lazily; errors surface on first use)."""
    try:
        return MongoClient(
            config.url.get_secret_value(),
            appname=config.app_name,
            serverSelectionTimeoutMS=config.server_selection_timeout_ms,
            connectTimeoutMS=config.connect_timeout_ms,
            socketTimeoutMS=config.socket_timeout_ms,
            maxPoolSize=config.max_pool_size,
            tz_aware=False,
            uuidRepresentation="standard",
        )
    except PyMongoError as exc:
        raise translate(exc, "connecting to MongoDB") from exc


def _instant(value: Any, what: str) -> int | None:
    return None if value is None else to_micros(parse_event_time(value, what))


def _key_duplicate(error: Mapping[str, Any], keys: Sequence[str | None]) -> bool:
    """Whether a duplicate-key write error is an idempotency hit: the record had a key and the
    error does not name another unique index."""
    index = error.get("index")
    if not isinstance(index, int) or not 0 <= index < len(keys) or keys[index] is None:
        return False
    pattern = error.get("keyPattern")
    if isinstance(pattern, Mapping):
        return "key" in pattern
    message = str(error.get("errmsg", ""))
    return "stream_seq" not in message and "_id_" not in message


class _Prepared:
    """A validated batch: encoded documents (``seq`` still 0) and their keys, in batch order,
    duplicate keys of the batch already removed."""

    __slots__ = ("docs", "duplicates", "keys")

    def __init__(self) -> None:
        self.docs: list[bytes] = []
        self.keys: list[str | None] = []
        self.duplicates = 0


class MongoIngestStore:
    """:class:`~strataml.protocols.IngestStore` on MongoDB (see the module docstring).

    ``client`` is a pymongo ``MongoClient``; :meth:`close` closes it only if ``owns_client``.
    ``transactions``: ``"auto"`` (transactions where the deployment has them, else staged
    batches), ``"always"`` or ``"never"``; ``batch_timeout_s``: how long a staged batch may stay
    in flight; ``write_concern``: ``"majority"`` or ``1``.

    Semantics beyond the protocol (the same as the other strataml ingest stores): keys are
    strings (an int key is stored as its decimal string); with ``key_field`` a record without
    the field has no key; keys are remembered as long as their record is; an empty batch writes
    nothing and does not create the stream; cursors are decimal ``seq`` values.

    Errors: those of the protocol; :class:`~strataml.errors.Unavailable` when the server cannot
    be reached or a staged batch was abandoned while it wrote (retry it: keys make that safe),
    :class:`~strataml.errors.Conflict` when a transaction kept conflicting,
    :class:`~strataml.errors.ConfigError` for ``transactions="always"`` on a standalone server
    or bad credentials.
    """

    #: Calls do network I/O: async wrappers run them in a worker thread.
    blocking_io = True

    def __init__(
        self,
        client: MongoClient[dict[str, Any]],
        *,
        database: str = "strataml",
        collection_prefix: str = "strataml_ingest",
        transactions: Literal["auto", "always", "never"] = "auto",
        batch_timeout_s: float = 300.0,
        write_concern: Literal["majority", 1] = "majority",
        owns_client: bool = False,
    ) -> None:
        from strataml_mongodb import INGEST_CAPS

        if transactions not in ("auto", "always", "never"):
            raise ConfigError(f"transactions must be auto, always or never, got {transactions!r}")
        if not batch_timeout_s > 0:
            raise ConfigError(f"batch_timeout_s must be positive, got {batch_timeout_s!r}")
        self._client = client
        self._owns_client = owns_client
        self._caps = INGEST_CAPS
        self._wc = WriteConcern(w=write_concern)
        db = client.get_database(database, write_concern=self._wc)
        self._streams = db[f"{collection_prefix}_streams"]
        self._records = db.get_collection(
            f"{collection_prefix}_records", codec_options=CODEC_OPTIONS
        )
        self._where = f"{database}.{collection_prefix}"
        self._transactions = transactions
        self._timeout_ms = int(batch_timeout_s * 1000)
        self._mode: Mode | None = None
        self._known: set[str] = set()  # streams whose document exists
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, config: MongoDBConfig) -> MongoIngestStore:
        """A store owning a new client for ``config``."""
        return cls(
            make_client(config),
            database=config.database,
            collection_prefix=config.collection_prefix,
            transactions=config.transactions,
            batch_timeout_s=config.batch_timeout_s,
            write_concern=config.write_concern,
            owns_client=True,
        )

    # ---------------------------------------------------------------------------- plumbing
    @property
    def capabilities(self) -> Capabilities:
        """The declared capabilities (``strataml_mongodb.INGEST_CAPS``)."""
        return self._caps

    @property
    def mode(self) -> Mode:
        """How batches are made atomic here: ``"transactions"`` or ``"staged"``."""
        return self._ensure()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except StrataError:
            raise
        except (PyMongoError, OverflowError) as exc:
            raise translate(exc, what) from exc

    def _ensure(self) -> Mode:
        """Create the indexes and pick the write protocol, once."""
        if self._closed:
            raise Unavailable(f"the ingest store {self._where} is closed")
        if self._mode is not None:
            return self._mode
        with self._lock:
            mode = self._mode
            if mode is None:
                mode = self._call(f"opening {self._where}", self._setup)
                self._mode = mode
        return mode

    def _setup(self) -> Mode:
        for name, keys, options in INDEXES:
            self._records.create_index(keys, name=name, **options)
        if self._transactions == "never":
            return "staged"
        hello = self._client.admin.command("hello")
        clustered = "setName" in hello or hello.get("msg") == "isdbgrid"
        if clustered and hello.get("logicalSessionTimeoutMinutes") is not None:
            return "transactions"
        if self._transactions == "always":
            raise ConfigError(
                "transactions = 'always' needs a replica set or a sharded cluster; this MongoDB "
                "server is standalone (use 'auto' for the staged-batch protocol)"
            )
        return "staged"

    # ----------------------------------------------------------------------------- writing
    def _prepare(
        self,
        records: Sequence[Any],
        *,
        stream: str,
        key: str | None,
        key_field: str | None,
        time_field: str | None,
        now_us: int,
        single: bool,
    ) -> _Prepared:
        """Validate and encode every record (nothing is written yet)."""
        out = _Prepared()
        seen: set[str] = set()
        max_json = self._caps.max_record_bytes
        for i, rec in enumerate(records):
            where = "record" if single else f"records[{i}]"
            data = dumps_record(rec, where)
            if max_json is not None and len(data) > max_json:
                raise LimitExceeded(
                    f"{where} is {len(data)} bytes of JSON, over the limit of {max_json}; "
                    "split it, or store large payloads elsewhere and keep a reference"
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
            out.docs.append(
                encode_record(
                    data, stream=stream, key=key, ts_us=ts, ingested_us=now_us, where=where
                )
            )
            out.keys.append(key)
        return out

    def _write(self, stream: str, batch: _Prepared) -> WriteResult:
        if not batch.docs:
            return WriteResult(duplicates=batch.duplicates)
        mode = self._ensure()
        what = f"writing to stream {stream!r}"
        if mode == "transactions":
            written = self._call(what, lambda: self._write_transaction(stream, batch))
        else:
            written = self._call(what, lambda: self._write_staged(stream, batch))
        return WriteResult(written=written, duplicates=batch.duplicates + len(batch.docs) - written)

    def _reserve(self, stream: str, n: int, staged: ObjectId | None, session: Any = None) -> int:
        """Reserve ``n`` sequence numbers; return the first."""
        state = self._streams.find_one_and_update(
            {"_id": stream},
            reserve_update(n, staged, self._timeout_ms),
            projection={"next_seq": 1},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert state is not None
        return int(state["next_seq"]) - n + 1

    def _write_transaction(self, stream: str, batch: _Prepared) -> int:
        if stream not in self._known:  # upserting inside a transaction can conflict needlessly
            self._streams.update_one(
                {"_id": stream},
                {"$setOnInsert": {"next_seq": Int64(0), "live": False}},
                upsert=True,
            )
            self._known.add(stream)
        keys = [k for k in batch.keys if k is not None]

        def body(session: Any) -> int:
            lo = self._reserve(stream, len(batch.docs), None, session)
            stored: set[str] = set()
            if keys:
                found = self._records.find(
                    {"stream": stream, "key": {"$in": keys}},
                    {"_id": 0, "key": 1},
                    session=session,
                )
                stored = {doc["key"] for doc in found}
            docs = [
                with_seq(raw, lo + i)
                for i, (raw, key) in enumerate(zip(batch.docs, batch.keys, strict=True))
                if key is None or key not in stored
            ]
            if docs:
                self._records.insert_many(docs, ordered=True, session=session)
            return len(docs)

        with self._client.start_session() as session:
            return session.with_transaction(
                body, read_concern=ReadConcern("snapshot"), write_concern=self._wc
            )

    def _write_staged(self, stream: str, batch: _Prepared) -> int:
        batch_id = ObjectId()
        n = len(batch.docs)
        lo = self._reserve(stream, n, batch_id)
        seq_range = {"stream": stream, "seq": {"$gte": Int64(lo), "$lte": Int64(lo + n - 1)}}
        docs = [with_seq(raw, lo + i) for i, raw in enumerate(batch.docs)]
        try:
            self._records.insert_many(docs, ordered=False)
            inserted = n
        except BulkWriteError as exc:
            inserted, dups, others = split_write_errors(exc.details)
            if others or not all(_key_duplicate(d, batch.keys) for d in dups):
                self._abort(stream, batch_id, seq_range)
                raise
        except BaseException:
            self._abort(stream, batch_id, seq_range)
            raise
        flt, update = commit_update(batch_id)
        if self._streams.update_one({"_id": stream, **flt}, update).modified_count != 1:
            self._records.delete_many(seq_range)
            raise Unavailable(
                f"writing to stream {stream!r}: the batch was abandoned before it committed "
                f"(it took longer than batch_timeout_s, or the stream was dropped); nothing of "
                "it is visible: retry it"
            )
        return inserted

    def _abort(self, stream: str, batch_id: ObjectId, seq_range: Mapping[str, Any]) -> None:
        """Best effort: remove what a failed staged batch wrote, then its in-flight entry (if
        the server is unreachable the entry expires and readers clean up)."""
        try:
            self._records.delete_many(seq_range)
            flt, update = commit_update(batch_id)
            self._streams.update_one({"_id": stream, **flt}, update)
        except PyMongoError:
            pass  # the original error matters more; expiry takes care of the rest

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
        time), :class:`~strataml.errors.LimitExceeded` (record over ``max_record_bytes`` or
        MongoDB's 16 MiB), :class:`~strataml.errors.Unavailable` (server unreachable, closed).
        """
        check_name("stream", stream)
        idem = idempotency_key(key, "key")
        tf = field_name(time_field, "time_field")
        now_us = time.time_ns() // 1000
        batch = self._prepare(
            (record,),
            stream=stream,
            key=idem,
            key_field=None,
            time_field=tf,
            now_us=now_us,
            single=True,
        )
        return self._write(stream, batch)

    def write_batch(
        self,
        stream: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str | None = None,
        time_field: str | None = None,
    ) -> WriteResult:
        """Append many records atomically (see the module docstring). Every record is validated
        before anything is written; duplicate keys (already stored, or earlier in the batch) are
        skipped and counted, the first one wins.

        Errors: as :meth:`write`, naming the failing record's index; ``LimitExceeded`` for more
        than ``max_batch_rows`` records.
        """
        check_name("stream", stream)
        kf = field_name(key_field, "key_field")
        tf = field_name(time_field, "time_field")
        items = batch_records(records, self._caps.max_batch_rows)
        now_us = time.time_ns() // 1000
        batch = self._prepare(
            items, stream=stream, key=None, key_field=kf, time_field=tf, now_us=now_us, single=False
        )
        return self._write(stream, batch)

    # ----------------------------------------------------------------------------- reading
    def _state(self, stream: str, what: str) -> Mapping[str, Any]:
        """The live stream's document (expired staged batches reaped first)."""
        self._ensure()
        found = self._call(
            what, lambda: self._streams.find_one({"_id": stream, "live": True}, _STATE)
        )
        if found is None:
            raise NotFound(f"stream {stream!r} does not exist; it is created by its first write")
        state: Mapping[str, Any] = found
        now = utcnow()
        pending = state.get("pending") or ()
        if any(isinstance(p.get("exp"), dt.datetime) and p["exp"] < now for p in pending):
            reaped = self._call(what, lambda: self._reap(stream))
            state = reaped if reaped is not None else state
        if any(not a.get("clean") for a in state.get("aborted") or ()):
            self._call(what, lambda: self._clean(stream, state))
        return state

    def _reap(self, stream: str) -> Mapping[str, Any] | None:
        return self._streams.find_one_and_update(
            {"_id": stream, "live": True},
            reap_update(),
            projection=_STATE,
            return_document=ReturnDocument.AFTER,
        )

    def _clean(self, stream: str, state: Mapping[str, Any]) -> None:
        """Delete the records of aborted ranges (idempotent), then mark them clean."""
        for entry in state.get("aborted") or ():
            if entry.get("clean"):
                continue
            lo, hi = Int64(int(entry["lo"])), Int64(int(entry["hi"]))
            self._records.delete_many({"stream": stream, "seq": {"$gte": lo, "$lte": hi}})
            self._streams.update_one(
                {"_id": stream},
                {"$set": {"aborted.$[a].clean": True}},
                array_filters=[{"a.lo": lo, "a.hi": hi}],
            )

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
        in commit order, at most ``limit``. ``has_more`` says whether more such records are
        committed right now; ``cursor`` is the last record's (or ``after`` for an empty page).

        Errors: :class:`~strataml.errors.NotFound` (unknown stream),
        :class:`~strataml.errors.InvalidInput` (bad name, cursor, window or ``limit < 1``).
        """
        check_name("stream", stream)
        seq = seq_cursor(after)
        lo, hi = _instant(start, "start"), _instant(end, "end")
        limit = page_limit(limit)
        what = f"reading stream {stream!r}"
        state = self._state(stream, what)
        flt = visible_filter(stream, state, after=seq, start_us=lo, end_us=hi)
        rows = self._call(
            what,
            lambda: list(
                self._records.find(flt, _PROJECTION)
                .sort("seq", 1)
                .hint("stream_seq")
                .limit(min(limit, _MAX_LIMIT) + 1)
            ),
        )
        has_more = len(rows) > limit
        if has_more:
            del rows[limit:]
        records = [self._record(stream, row) for row in rows]
        cursor = str(rows[-1]["seq"]) if rows else after
        return ReadPage(records=records, cursor=cursor, has_more=has_more)

    @staticmethod
    def _record(stream: str, row: Mapping[str, Any]) -> IngestedRecord:
        return IngestedRecord.model_construct(
            stream=stream,
            seq=int(row["seq"]),
            key=row.get("key"),
            ts=EPOCH + dt.timedelta(microseconds=int(row["ts_us"])),
            ingested_at=EPOCH + dt.timedelta(microseconds=int(row["ingested_us"])),
            data=decode_data(row),
        )

    def count(
        self, stream: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> int:
        """Number of committed records, optionally with event time in ``[start, end)``.

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        lo, hi = _instant(start, "start"), _instant(end, "end")
        what = f"counting stream {stream!r}"
        state = self._state(stream, what)
        flt = visible_filter(stream, state, start_us=lo, end_us=hi)
        return int(self._call(what, lambda: self._records.count_documents(flt)))

    # --------------------------------------------------------------------------- retention
    def delete_before(self, stream: str, before: dt.datetime) -> int:
        """Delete the stream's committed records whose event time is before ``before``; return
        how many. The stream itself (and every cursor) stays valid; batches in flight are not
        touched.

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        cutoff = to_micros(parse_event_time(before, "before"))
        what = f"deleting from stream {stream!r}"
        state = self._state(stream, what)
        flt = visible_filter(stream, state, end_us=cutoff)
        return int(self._call(what, lambda: self._records.delete_many(flt).deleted_count))

    def streams(self) -> list[str]:
        """Names of the existing streams, sorted."""
        self._ensure()
        rows = self._call(
            "listing streams", lambda: list(self._streams.find({"live": True}, {"_id": 1}))
        )
        return sorted(str(r["_id"]) for r in rows)

    def drop(self, stream: str) -> None:
        """Delete a stream and its records (and so their idempotency keys); no error if it does
        not exist. Its ``seq`` counter is kept, so no cursor ever sees a number twice; batches in
        flight on the staged protocol fail to commit.

        Errors: :class:`~strataml.errors.InvalidInput` (bad name).
        """
        check_name("stream", stream)
        self._ensure()

        def run() -> None:
            found = self._streams.find_one_and_update(
                {"_id": stream, "live": True}, drop_update(), projection={"_id": 1}
            )
            if found is not None:
                self._records.delete_many({"stream": stream})
                self._streams.update_one({"_id": stream}, {"$set": {"aborted.$[].clean": True}})

        self._call(f"dropping stream {stream!r}", run)

    # ------------------------------------------------------------------------ change streams
    def changes(
        self,
        stream: str,
        *,
        max_await_ms: int = 1000,
        resume_after: Mapping[str, Any] | None = None,
    ) -> Iterator[IngestedRecord]:
        """Follow a stream with a MongoDB change stream: yield each record as its batch commits
        (blocking; stop iterating to close it). Transactions only: on the staged protocol
        records are inserted before they commit, so use :meth:`read` with a cursor.

        Errors: :class:`~strataml.errors.Unsupported` (standalone server or ``transactions =
        "never"``), :class:`~strataml.errors.Unavailable`.
        """
        check_name("stream", stream)
        if self._ensure() != "transactions":
            raise Unsupported(
                "change streams need a replica set and the transaction protocol; "
                "poll read() with a cursor instead"
            )
        pipeline = [{"$match": {"operationType": "insert", "fullDocument.stream": stream}}]
        what = f"following stream {stream!r}"
        try:
            with self._records.watch(
                pipeline, max_await_time_ms=max_await_ms, resume_after=resume_after
            ) as changes:
                for change in changes:
                    yield self._record(stream, change["fullDocument"])
        except PyMongoError as exc:
            raise translate(exc, what) from exc

    def close(self) -> None:
        """Stop serving calls (later ones raise :class:`~strataml.errors.Unavailable`); the
        client is closed only if this store owns it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            try:
                self._client.close()
            except PyMongoError:
                pass  # closing anyway

    def __repr__(self) -> str:
        return f"<MongoIngestStore {redact(self._where)!r}>"
