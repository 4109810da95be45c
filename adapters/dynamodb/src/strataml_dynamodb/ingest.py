"""The DynamoDB ingest store: append-only JSON streams with atomic batches and exactly-once
incremental reads (see :mod:`strataml_dynamodb.layout` for the items and
:mod:`strataml_dynamodb.pages` for the pages that hold the records).

See :mod:`strataml_dynamodb.commit` for the commit protocol: how a batch becomes visible at
once, in commit order, with each idempotency key stored once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

from strataml._json import dumps_record
from strataml._time import event_micros, from_micros, parse_event_time, to_micros
from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, LimitExceeded, NotFound, Unavailable
from strataml.ingestargs import batch_records, field_name, idempotency_key, page_limit, seq_cursor
from strataml.models import IngestedRecord, ReadPage, WriteResult, check_name
from strataml_dynamodb.client import (
    MAX_ITEM_BYTES,
    Batcher,
    backoff_delays,
    ensure_table,
    make_client,
    query_pages,
)
from strataml_dynamodb.commit import CommitProtocol, Head, Retry, new_generation, now_ms, num
from strataml_dynamodb.config import DynamoDBConfig
from strataml_dynamodb.errors import DRIVER_ERRORS, error_code
from strataml_dynamodb.layout import (
    REGISTRY_PK,
    key_slot,
    keys_pk,
    pad_seq,
    records_pk,
    registry_key,
    visible_segments,
)
from strataml_dynamodb.pages import (
    PAGE_FIXED_BYTES,
    PageRow,
    page_keys,
    page_start,
    pruned,
    slots,
)

__all__ = ["DynamoDBIngestStore"]

KEY_SCHEMA: Final = (("pk", "HASH", "S"), ("sk", "RANGE", "S"))
_HEAD_CACHE: Final = 4096  # streams whose last committed head a store remembers
_QUERY_PAGES: Final = 100  # page items asked for per Query (DynamoDB also stops at 1 MB)
_REWRITE_TRIES: Final = 20  # retention: attempts at a page that concurrent retention changes


class _Window:
    """An event-time window ``[lo, hi)`` (µs; ``None``: open) and its page-level filter."""

    __slots__ = ("hi", "lo")

    def __init__(self, start: dt.datetime | None, end: dt.datetime | None) -> None:
        self.lo = None if start is None else to_micros(parse_event_time(start, "start"))
        self.hi = None if end is None else to_micros(parse_event_time(end, "end"))

    @property
    def open(self) -> bool:
        return self.lo is None and self.hi is None

    def contains(self, ts: int) -> bool:
        return (self.lo is None or ts >= self.lo) and (self.hi is None or ts < self.hi)

    def covers(self, item: dict[str, Any]) -> bool:
        """Whether every live record of a page (projected with ``t0``, ``t1``) is inside."""
        return self.contains(int(item["t0"]["N"])) and self.contains(int(item["t1"]["N"]))

    def page_filter(self) -> tuple[str | None, dict[str, str], dict[str, Any]]:
        """A ``FilterExpression`` keeping the pages that may hold records inside."""
        parts: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if self.lo is not None:
            parts.append("#t1 >= :lo")
            names["#t1"] = "t1"
            values[":lo"] = num(self.lo)
        if self.hi is not None:
            parts.append("#t0 < :hi")
            names["#t0"] = "t0"
            values[":hi"] = num(self.hi)
        return (" AND ".join(parts) or None), names, values


class DynamoDBIngestStore(CommitProtocol):
    """:class:`~strataml.protocols.IngestStore` on one DynamoDB table (see the module doc).

    Build it with :meth:`from_config`. Semantics beyond the protocol (as the other backends):

    * Idempotency keys are strings (an int key is its decimal string). With ``key_field``, a
      record whose field is missing or null has no key. Keys are remembered as long as their
      record is (retention and :meth:`drop` forget them).
    * Cursors are the decimal position (``seq``) of the last record returned; an empty page
      returns the ``after`` it was given. Positions never go back, across retention and
      :meth:`drop` (a re-created stream continues after the dropped one's last position).
    * An empty batch writes nothing and does not create the stream. Writers of one stream are
      serialized (commits are conditional writes on its head item); a large batch makes other
      writers of its stream wait up to ``lease_wait_s``.
    * Limits: a record's JSON is at most ``max_record_bytes`` (400 000 bytes) and its item
      (with key and positions) at most DynamoDB's 400 KB; a batch is at most
      ``max_batch_rows`` records. Both are checked before anything is written.

    Errors: those of the protocol; :class:`~strataml.errors.Unavailable` when DynamoDB cannot
    be reached, refuses the credentials, throttles beyond ``max_retries``, when a stream's lease
    stays taken for ``lease_wait_s``, or after :meth:`close`; :class:`~strataml.errors.ConfigError`
    for a missing table that may not be created.
    """

    def __init__(self, client: Any, config: DynamoDBConfig, caps: Capabilities) -> None:
        self._client = client
        self._config = config
        self._caps = caps
        self._table = config.ingest_table
        self._keys_table = config.ingest_keys_table
        self._max_rows = caps.max_batch_rows
        self._max_bytes = caps.max_record_bytes
        workers = config.batch_concurrency
        self._batch = Batcher(client, self._table, config.max_retries, workers=workers)
        self._key_batch = Batcher(client, self._keys_table, config.max_retries, workers=workers)
        self._lock = threading.Lock()
        self._closed = False
        self._heads: dict[str, Head] = {}

    @classmethod
    def from_config(cls, config: DynamoDBConfig) -> DynamoDBIngestStore:
        """Connect, and create the two tables if needed (``create_tables``)."""
        from strataml_dynamodb import INGEST_CAPS

        client = make_client(config)
        ensure_table(client, config, config.ingest_table, KEY_SCHEMA)
        ensure_table(client, config, config.ingest_keys_table, KEY_SCHEMA)
        return cls(client, config, INGEST_CAPS)

    @property
    def capabilities(self) -> Capabilities:
        """Atomic batches; ``max_record_bytes`` (JSON) and ``max_batch_rows`` limits."""
        return self._caps

    @property
    def client(self) -> Any:
        """The boto3 client (benchmarks, operations)."""
        return self._client

    @property
    def table(self) -> str:
        """The table of heads, registry and pages."""
        return self._table

    @property
    def keys_table(self) -> str:
        """The table of idempotency keys."""
        return self._keys_table

    def __repr__(self) -> str:
        where = self._config.endpoint_url or f"region {self._config.region}"
        return f"DynamoDBIngestStore(table={self._table!r}, {where})"

    # ------------------------------------------------------------------------- plumbing
    def _live_head(self, stream: str) -> Head:
        head = self._read_head(stream)
        if not head.live:
            raise NotFound(f"stream {stream!r} does not exist; it is created by its first write")
        return head

    def _prepare(
        self,
        records: Iterable[Any],
        *,
        key: str | None,
        key_field: str | None,
        time_field: str | None,
        now_us: int,
        single: bool,
    ) -> list[PageRow]:
        """Validate every record completely (nothing is written yet); name the failing one."""
        rows: list[PageRow] = []
        max_bytes = self._max_bytes
        for i, rec in enumerate(records):
            where = "record" if single else f"records[{i}]"
            data = dumps_record(rec, where)
            if max_bytes is not None and len(data) > max_bytes:
                raise LimitExceeded(
                    f"{where} is {len(data)} bytes of JSON, over the limit of {max_bytes} "
                    "(DynamoDB items hold 400 KB); split it, or store large payloads elsewhere "
                    "and keep a reference"
                )
            if time_field is None:
                ts = now_us
            elif time_field in rec:
                ts = event_micros(rec[time_field], f"{where}.{time_field}")
            else:
                raise InvalidInput(f"{where}: no event-time field {time_field!r}")
            if key_field is not None:
                key = idempotency_key(rec.get(key_field), f"{where}.{key_field}")
            key_json = None
            if key is not None:
                try:
                    key_json = orjson.dumps(key)
                except orjson.JSONEncodeError as exc:
                    raise InvalidInput(f"{where}: the idempotency key is not valid text") from exc
            row = PageRow(key, ts, data, key_json)
            if PAGE_FIXED_BYTES + row.size > MAX_ITEM_BYTES:
                raise LimitExceeded(
                    f"{where}: its DynamoDB item would be {PAGE_FIXED_BYTES + row.size} bytes "
                    f"(record, idempotency key and positions), over DynamoDB's "
                    f"{MAX_ITEM_BYTES}-byte item limit"
                )
            rows.append(row)
        return rows

    def write(
        self,
        stream: str,
        record: Mapping[str, Any],
        *,
        key: str | None = None,
        time_field: str | None = None,
    ) -> WriteResult:
        """Append one record; with ``key``, a record with the same key already in the stream
        makes this a no-op counted as a duplicate. One ``TransactWriteItems`` (after reading
        the head, unless cached, and, with a key, checking it).

        Errors: :class:`~strataml.errors.InvalidInput` (bad stream name, record, key or event
        time), :class:`~strataml.errors.LimitExceeded` (record over the limits),
        :class:`~strataml.errors.Unavailable` (DynamoDB unreachable or throttling, closed).
        """
        check_name("stream", stream)
        idem = idempotency_key(key, "key")
        tf = field_name(time_field, "time_field")
        now_us = time.time_ns() // 1000
        rows = self._prepare(
            (record,), key=idem, key_field=None, time_field=tf, now_us=now_us, single=True
        )
        return self._write(stream, rows, now_us)

    def write_batch(
        self,
        stream: str,
        records: Iterable[Mapping[str, Any]],
        *,
        key_field: str | None = None,
        time_field: str | None = None,
    ) -> WriteResult:
        """Append many records atomically: every record is validated before anything is
        written, then all are committed or none (see the module doc for how). Duplicate keys
        (already stored, or earlier in the batch) are skipped and counted; the first wins.

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
        return self._write(stream, rows, now_us)

    def _write(self, stream: str, rows: list[PageRow], now_us: int) -> WriteResult:
        self._check_open()
        if not rows:
            return WriteResult()
        seen: set[str] = set()
        unique: list[PageRow] = []
        for row in rows:  # duplicate keys inside the batch: the first wins
            if row.key is not None:
                if row.key in seen:
                    continue
                seen.add(row.key)
            unique.append(row)
        deadline = time.monotonic() + self._config.lease_wait_s
        delays = backoff_delays(10_000, base=0.01, cap=0.5)
        where = f"writing to stream {stream!r}"
        head = self._heads.get(stream)
        fresh = head is None
        if head is None:
            head = self._read_head(stream)
        while True:
            if head.owner is not None:
                if head.lu >= now_ms():
                    if time.monotonic() > deadline:
                        raise Unavailable(
                            f"{where}: another writer has held the stream's write lease for "
                            f"longer than lease_wait_s ({self._config.lease_wait_s} s); retry"
                        )
                    time.sleep(next(delays))
                else:
                    self._break_lease(stream, head)
                head, fresh = self._read_head(stream), True
                continue
            taken = self._existing_keys(stream, head, [r.key for r in unique if r.key is not None])
            new = [r for r in unique if r.key is None or r.key not in taken]
            result = WriteResult(written=len(new), duplicates=len(rows) - len(new))
            if not new:
                return result
            try:
                if self._fits_one_transaction(new, head):
                    committed = self._commit_small(stream, head, new, now_us)
                else:
                    committed = self._commit_large(stream, head, new, now_us)
            except Retry:
                self._heads.pop(stream, None)
                if fresh:  # a competing writer committed first: back off (a stale cached head
                    # only needs reading again)
                    if time.monotonic() > deadline:
                        raise Unavailable(
                            f"{where}: other writers of the stream kept committing first for "
                            f"longer than lease_wait_s ({self._config.lease_wait_s} s); retry"
                        ) from None
                    time.sleep(next(delays))
                head, fresh = self._read_head(stream), True
                continue
            if len(self._heads) >= _HEAD_CACHE:
                self._heads.clear()
            self._heads[stream] = committed
            return result

    def _pages_query(
        self,
        stream: str,
        head: Head,
        first: int,
        last: int,
        window: _Window | None = None,
        projection: str | None = None,
        names: dict[str, str] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """A ``Query`` of the pages starting in ``[first, last]`` (strongly consistent), those
        that may hold records in ``window`` only."""
        values: dict[str, Any] = {
            ":p": {"S": records_pk(stream, head.gen)},
            ":a": {"S": pad_seq(first)},
            ":b": {"S": pad_seq(last)},
        }
        all_names = dict(names or {})
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "ConsistentRead": True,
            **extra,
        }
        if window is not None:
            condition, filter_names, filter_values = window.page_filter()
            if condition is not None:
                kwargs["FilterExpression"] = condition
                all_names.update(filter_names)
                values.update(filter_values)
        if projection is not None:
            kwargs["ProjectionExpression"] = projection
        if all_names:
            kwargs["ExpressionAttributeNames"] = all_names
        kwargs["ExpressionAttributeValues"] = values
        return kwargs

    def _page_holding(self, stream: str, head: Head, seq: int, what: str) -> int:
        """The start of the page holding position ``seq`` (``seq`` itself if none does): the
        last page starting at or before it, if it reaches that far."""
        out = self._query_once(
            what,
            TableName=self._table,
            KeyConditionExpression="pk = :p AND sk <= :a",
            ExpressionAttributeValues={
                ":p": {"S": records_pk(stream, head.gen)},
                ":a": {"S": pad_seq(seq)},
            },
            ProjectionExpression="sk, #e",
            ExpressionAttributeNames={"#e": "e"},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        for item in out.get("Items", []):
            if int(item["e"]["N"]) > seq:
                return int(item["sk"]["S"])
        return seq

    def _query_once(self, what: str, **kwargs: Any) -> dict[str, Any]:
        page: dict[str, Any] = next(query_pages(self._client, what, **kwargs))
        return page

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
        in commit order, at most ``limit`` (strongly consistent queries of the pages; pages
        without records in the window are filtered out by DynamoDB). ``has_more`` says
        whether more such records exist now; ``cursor`` is the last record's (or ``after``).

        Errors: :class:`~strataml.errors.NotFound` (unknown stream),
        :class:`~strataml.errors.InvalidInput` (bad name, cursor, window or ``limit < 1``).
        """
        check_name("stream", stream)
        seq = seq_cursor(after)
        window = _Window(start, end)
        limit = page_limit(limit)
        head = self._live_head(stream)
        records: list[IngestedRecord] = []
        has_more = False
        what = f"reading stream {stream!r}"
        for first, last in visible_segments(seq, head.c, head.holes):
            # the cursor may point into a page: start at that page (a page lies in one batch,
            # so it is visible whole or not at all)
            lo = self._page_holding(stream, head, first, what) if first == seq + 1 > 1 else first
            want = limit + 1 - len(records)
            kwargs = self._pages_query(
                stream, head, lo, last, window, Limit=min(want, _QUERY_PAGES)
            )
            for page in query_pages(self._client, what, **kwargs):
                for item in page.get("Items", []):
                    ingested = from_micros(int(item["i"]["N"]))
                    for pos, ts, key, data in slots(item):
                        if pos < first or not window.contains(ts):
                            continue
                        if len(records) == limit:
                            has_more = True
                            break
                        records.append(
                            IngestedRecord.model_construct(
                                stream=stream,
                                seq=pos,
                                key=key,
                                ts=from_micros(ts),
                                ingested_at=ingested,
                                data=data,
                            )
                        )
                    if has_more:
                        break
                if has_more:
                    break
            if has_more:
                break
        cursor = str(records[-1].seq) if records else after
        return ReadPage(records=records, cursor=cursor, has_more=has_more)

    def count(
        self, stream: str, *, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> int:
        """Number of records, optionally with event time in ``[start, end)``: a query of the
        visible pages projected to their record counts (and, with a window, the event times
        of the pages it cuts through).

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        window = _Window(start, end)
        head = self._live_head(stream)
        total = 0
        what = f"counting stream {stream!r}"
        if window.open:
            projection, names = "#m", {"#m": "m"}
        else:
            projection = "#m, #t0, #t1, #t"
            names = {"#m": "m", "#t0": "t0", "#t1": "t1", "#t": "t"}
        for first, last in visible_segments(0, head.c, head.holes):
            kwargs = self._pages_query(stream, head, first, last, window, projection, names)
            for page in query_pages(self._client, what, **kwargs):
                for item in page.get("Items", []):
                    if window.open or window.covers(item):
                        total += int(item["m"]["N"])
                    else:
                        times: list[int | None] = orjson.loads(item["t"]["S"])
                        total += sum(1 for t in times if t is not None and window.contains(t))
        return total

    # -------------------------------------------------------------------------- retention
    def delete_before(self, stream: str, before: dt.datetime) -> int:
        """Delete the stream's records whose event time is before ``before``; return how many.
        Their idempotency keys are forgotten first (a ``DeleteItem`` per key, conditional on
        the key item still pointing at the deleted record, ``batch_concurrency`` at once);
        then pages left without records are deleted, and the others rewritten without them
        (each conditional on the page's live count, ``batch_concurrency`` pages at once; a page
        a concurrent retention changed is read again). Records removed by a concurrent
        retention are counted by that one only. The stream and every cursor stay valid.

        Errors: :class:`~strataml.errors.NotFound` (unknown stream).
        """
        check_name("stream", stream)
        cutoff = to_micros(parse_event_time(before, "before"))
        head = self._live_head(stream)
        what = f"deleting from stream {stream!r}"
        window = _Window(None, from_micros(cutoff))
        pages: list[dict[str, Any]] = []  # the pages holding records to delete
        keys: list[tuple[str, int]] = []  # (key, position) of the deleted records with keys
        for first, last in visible_segments(0, head.c, head.holes):
            kwargs = self._pages_query(stream, head, first, last, window)
            for page in query_pages(self._client, what, **kwargs):
                for item in page.get("Items", []):
                    gone = [s for s in slots(item) if s[1] < cutoff]
                    if gone:
                        keys.extend((key, pos) for pos, _, key, _ in gone if key is not None)
                        pages.append(item)
        self._forget_keys(stream, head.gen, keys, what)
        # each page is deleted or rewritten conditionally on its live count, so records that a
        # concurrent retention removed first are counted by that one only
        return sum(self._batch.each(pages, lambda item: self._prune_page(item, cutoff, what)))

    def _forget_keys(self, stream: str, gen: str, keys: list[tuple[str, int]], what: str) -> None:
        """Delete the key items of the records at the given positions (``(key, position)``
        pairs), before the records themselves.

        Each delete is conditional on the item still pointing at that position: a concurrent
        retention of the same records may have deleted it already, and a writer may since have
        stored the key again for a new record, whose key item must stay (else a retry of that
        key would be stored twice). A failed condition means the item is no longer the doomed
        record's: it is skipped. ``batch_concurrency`` requests run at once."""
        kpk = {"S": keys_pk(stream, gen)}
        self._key_batch.delete_where(
            [
                {
                    "Key": {"pk": kpk, "sk": {"S": key_slot(key)}},
                    "ConditionExpression": "#s = :s",
                    "ExpressionAttributeNames": {"#s": "s"},
                    "ExpressionAttributeValues": {":s": num(pos)},
                }
                for key, pos in keys
            ],
            what,
        )

    def _prune_page(self, item: dict[str, Any], cutoff: int, what: str) -> int:
        """Rewrite a page without its records older than ``cutoff``, or delete it if none is
        left (conditional on its live count, which every change lowers); return how many
        records this removed."""
        for _ in range(_REWRITE_TRIES):
            first = page_start(item)
            gone = [pos - first for pos, ts, _, _ in slots(item) if ts < cutoff]
            if not gone:
                return 0
            live = int(item["m"]["N"])
            condition: dict[str, Any] = {
                "TableName": self._table,
                "ConditionExpression": "#m = :m0",
                "ExpressionAttributeNames": {"#m": "m"},
                "ExpressionAttributeValues": {":m0": num(live)},
            }
            try:
                if len(gone) == live:
                    self._client.delete_item(Key={"pk": item["pk"], "sk": item["sk"]}, **condition)
                else:
                    self._client.put_item(Item=pruned(item, gone), **condition)
                return len(gone)
            except DRIVER_ERRORS as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    self._fail(exc, what)
            try:  # changed meanwhile (by concurrent retention): read it again
                got = self._client.get_item(
                    TableName=self._table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    ConsistentRead=True,
                )
            except DRIVER_ERRORS as exc:
                self._fail(exc, what)
            if "Item" not in got:
                return 0
            item = got["Item"]
        raise Unavailable(f"{what}: a page kept changing under concurrent retention; retry")

    def streams(self) -> list[str]:
        """Names of the existing streams, sorted (one query of the registry)."""
        self._check_open()
        names: list[str] = []
        for page in query_pages(
            self._client,
            "listing streams",
            TableName=self._table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": REGISTRY_PK}},
            ProjectionExpression="sk",
            ConsistentRead=True,
        ):
            names.extend(item["sk"]["S"] for item in page.get("Items", []))
        return sorted(names)

    def drop(self, stream: str) -> None:
        """Delete a stream, its records and keys (no error if it does not exist).

        The head is kept as a tombstone holding the last position (so positions never go back)
        with a new generation; the old generation's items are then deleted.
        """
        check_name("stream", stream)
        what = f"dropping stream {stream!r}"
        self._heads.pop(stream, None)
        for _ in range(100):
            head = self._read_head(stream)
            if not head.live:  # never written, dropped, or its first batch not committed yet
                return
            new_gen = new_generation()
            actions = [
                self._head_action(
                    stream,
                    "SET #live = :f, #g = :g1, #c = :n0 REMOVE #lo, #lu, #h",
                    "#g = :g0 AND #n = :n0",
                    {
                        ":f": {"BOOL": False},
                        ":g1": {"S": new_gen},
                        ":g0": {"S": head.gen},
                        ":n0": num(head.n),
                    },
                ),
                {"Delete": {"TableName": self._table, "Key": registry_key(stream)}},
            ]
            try:
                self._transact(actions, what)
            except Retry:
                continue
            self._purge(stream, head.gen, what)
            return
        raise Unavailable(f"{what}: the stream kept changing; retry")

    def _purge(self, stream: str, gen: str, what: str) -> None:
        """Delete generation ``gen`` of a dropped stream: the key items named by its pages
        (every key item is written after the page holding its key), then the pages; then any
        key item left (e.g. by an earlier purge that was interrupted)."""
        pages: list[dict[str, Any]] = []
        kpk = {"S": keys_pk(stream, gen)}
        slots_: set[str] = set()
        for page in query_pages(
            self._client,
            what,
            TableName=self._table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": records_pk(stream, gen)}},
            ProjectionExpression="pk, sk, #k",
            ExpressionAttributeNames={"#k": "k"},
            ConsistentRead=True,
        ):
            for item in page.get("Items", []):
                pages.append({"DeleteRequest": {"Key": {"pk": item["pk"], "sk": item["sk"]}}})
                slots_.update(key_slot(k) for k in page_keys(item) if k is not None)
        keys = [{"DeleteRequest": {"Key": {"pk": kpk, "sk": {"S": s}}}} for s in sorted(slots_)]
        self._key_batch.write(keys, what)
        self._batch.write(pages, what)
        leftover = self._query_once(
            what,
            TableName=self._keys_table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": kpk},
            ProjectionExpression="pk, sk",
            Limit=1,
            ConsistentRead=True,
        )
        if leftover.get("Items") or leftover.get("LastEvaluatedKey"):
            self._purge_partition(self._key_batch, kpk["S"], what)

    def _purge_partition(self, batch: Batcher, pk: str, what: str) -> None:
        """Delete every item of partition ``pk`` of ``batch``'s table."""
        doomed: list[dict[str, Any]] = []
        for page in query_pages(
            self._client,
            what,
            TableName=batch.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        ):
            doomed.extend({"DeleteRequest": {"Key": item}} for item in page.get("Items", []))
        batch.write(doomed, what)

    # ---------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Close the client's connections; later calls raise
        :class:`~strataml.errors.Unavailable`. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        close = getattr(self._client, "close", None)
        if close is not None:
            try:
                close()
            except DRIVER_ERRORS:
                pass

    def __enter__(self) -> DynamoDBIngestStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
