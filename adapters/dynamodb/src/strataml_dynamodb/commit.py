"""The commit protocol of the DynamoDB ingest store: how a batch becomes visible at once,
in commit order, with idempotency keys stored once (used by
:class:`strataml_dynamodb.ingest.DynamoDBIngestStore`; items in :mod:`strataml_dynamodb.layout`).

Commit protocol
---------------
Each stream has a *head* item: ``n`` (the next position to hand out), ``c`` (the *visible
bound*: records at positions ``< c`` outside the holes ``h`` are committed), a generation
``g`` (renewed by :meth:`~DynamoDBIngestStore.drop`) and an optional write lease ``lo``/``lu``.
Without a lease, ``c == n``. Every commit changes the head with a conditional write, so commits
of one stream are serialized and positions grow in commit order:

* **Small batch** (records + key items + head fit one ``TransactWriteItems``: 100 actions,
  4 MB): one transaction puts the records at ``[n, n + k)``, their key items, and moves
  ``n`` and ``c`` to ``n + k`` on condition that the head is unchanged (``n``, ``g``, no lease).
  All or nothing, one round trip.
* **Large batch**: the writer takes the stream's lease and reserves ``[n, n + k)`` in one
  conditional update (``n += k``, ``c`` unchanged: nothing of it is visible), writes the records
  and their key items with ``BatchWriteItem`` (retrying unprocessed items; the lease is renewed
  as it goes), then commits with one conditional update ``c = n`` that also releases the lease.
  Before that update nothing is visible; after it, everything is. No transaction: a batch of
  ``k`` records costs about ``2k / 25`` requests, whatever the table's size.
* A lease that expired (its writer crashed or stalled) is *broken* by the next writer: its
  range ``[c, n)`` becomes a hole (never visible, even if the stalled writer's records land
  there later) and ``c = n``. The stalled writer's commit then fails.

A reader reads the head (strongly consistent), then queries the records in ``(cursor, c)``
minus the holes: they were all written before ``c`` moved past them, and later commits only
use positions ``>= n >= c``. So a record committed later never gets a position a reader has
already passed: every reader sees every record exactly once, in commit order.

Idempotency keys: a key item ``k#<stream>#<g> / key -> seq`` (in the keys table) is checked
against the head the commit is conditioned on (a commit that succeeds saw every earlier key):

* ``seq`` visible: the key is taken. Only the batch that put the record at ``seq`` writes an
  item pointing there, and retention deletes a record's key item before the record, on
  condition that the item still points at that record: two retentions of the same records
  may run at once, and after the first has deleted the key and its record a writer may store
  the key again; the second retention's (late) delete then fails its condition and leaves the
  new record's key item in place.
* ``seq`` not visible (in a hole, or not committed): the item was written by an abandoned
  batch. Such a batch checked the key before reserving its range, so a record holding the key
  can only have been committed *after* that range: one query of the visible pages after
  ``seq`` (projected to their keys) settles it. This also covers a stalled writer whose late
  key write overwrote the key item of a record committed after its lease was broken (key
  items are plain ``BatchWriteItem`` puts, not fenced by the lease); retention of that record
  leaves such an item in place (it does not point at the record), and the query then finds no
  record. The query runs only for keys last written by an abandoned batch; writing the key
  again repairs its item.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Final, NoReturn

from strataml.capabilities import Capabilities
from strataml.errors import StrataError, Unavailable
from strataml_dynamodb.client import Batcher, query_pages
from strataml_dynamodb.config import DynamoDBConfig
from strataml_dynamodb.errors import DRIVER_ERRORS, cancellation_codes, error_code, translate
from strataml_dynamodb.layout import (
    head_key,
    key_slot,
    keys_pk,
    pad_seq,
    parse_holes,
    records_pk,
    registry_key,
    visible,
    visible_segments,
)
from strataml_dynamodb.pages import (
    PAGE_FIXED_BYTES,
    PageRow,
    page_items,
    page_keys,
    paginate,
)

__all__ = [
    "GEN_CHARS",
    "CommitProtocol",
    "Head",
    "Retry",
    "new_generation",
    "now_ms",
    "num",
]

_TX_ACTIONS: Final = 100
_TX_BYTES: Final = 4_000_000  # DynamoDB: 4 MB per transaction; keep a margin
GEN_CHARS: Final = 16
_RENEW_EVERY: Final = 1000  # items written between lease renewal checks
_NAMES: Final = {
    "#n": "n",
    "#c": "c",
    "#g": "g",
    "#h": "h",
    "#live": "live",
    "#lo": "lo",
    "#lu": "lu",
}


def new_generation() -> str:
    return os.urandom(GEN_CHARS // 2).hex()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def num(value: int) -> dict[str, str]:
    return {"N": str(value)}


# ------------------------------------------------------------------------------------ head
class Head:
    """A snapshot of a stream's head item (``exists`` is false for a stream never written)."""

    __slots__ = ("c", "exists", "gen", "holes", "live", "lu", "n", "owner")

    def __init__(self, item: dict[str, Any] | None) -> None:
        self.exists = item is not None
        item = item or {}
        self.gen: str = item.get("g", {}).get("S", "")
        self.live: bool = bool(item.get("live", {}).get("BOOL", False))
        self.n = int(item.get("n", {}).get("N", "1"))
        self.c = int(item.get("c", {}).get("N", "1"))
        self.holes = parse_holes(item.get("h"))
        self.owner: str | None = item.get("lo", {}).get("S")
        self.lu = int(item.get("lu", {}).get("N", "0"))

    def committed(self, gen: str, end: int) -> Head:
        """The head right after a commit of ours up to ``end`` (cached: the next commit is
        conditioned on it, so a stale copy only costs a retry)."""
        head = Head(None)
        head.exists, head.live, head.gen = True, True, gen
        head.n = head.c = end
        head.holes = self.holes
        return head

    def unchanged(self) -> tuple[str, dict[str, Any]]:
        """A condition that holds while the head is as in this snapshot and has no lease."""
        if not self.exists:
            return "attribute_not_exists(pk)", {}
        return (
            "#n = :n0 AND #c = :n0 AND #g = :g0 AND attribute_not_exists(#lo)",
            {":n0": num(self.n), ":g0": {"S": self.gen}},
        )


class Retry(Exception):
    """The head changed under a commit: read it again and retry."""


# ------------------------------------------------------------------------------------ store


class CommitProtocol:
    """Commits of batches to streams (a base of the ingest store, which sets the attributes
    below): small ones in one transaction, large ones under a lease; see the module doc."""

    _client: Any
    _config: DynamoDBConfig
    _caps: Capabilities
    _table: str
    _keys_table: str
    _batch: Batcher
    _key_batch: Batcher
    _closed: bool

    def _fail(self, exc: BaseException, what: str) -> NoReturn:
        if self._closed:
            raise Unavailable(f"{what}: the store is closed") from exc
        raise translate(exc, what) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable(f"{self!r} is closed")

    def _read_head(self, stream: str) -> Head:
        self._check_open()
        try:
            out = self._client.get_item(
                TableName=self._table, Key=head_key(stream), ConsistentRead=True
            )
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"reading the head of stream {stream!r}")
        return Head(out.get("Item"))

    def _update_head(
        self, stream: str, update: str, condition: str, values: dict[str, Any], what: str
    ) -> bool:
        """A conditional update of the head; ``False`` if the condition failed."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": head_key(stream),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                k: v for k, v in _NAMES.items() if k in update + condition
            },
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._client.update_item(**kwargs)
        except DRIVER_ERRORS as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            self._fail(exc, what)
        return True

    def _transact(self, actions: list[dict[str, Any]], what: str) -> None:
        """``TransactWriteItems``; :class:`Retry` if a condition failed or a concurrent
        transaction conflicted (botocore's idempotency token makes its own retries safe)."""
        try:
            self._client.transact_write_items(TransactItems=actions)
        except DRIVER_ERRORS as exc:
            codes = cancellation_codes(exc)
            if error_code(exc) == "TransactionConflictException" or any(
                c in {"ConditionalCheckFailed", "TransactionConflict"} for c in codes
            ):
                raise Retry from exc
            self._fail(exc, what)

    def _head_action(
        self, stream: str, update: str, condition: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        action: dict[str, Any] = {
            "TableName": self._table,
            "Key": head_key(stream),
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {
                k: v for k, v in _NAMES.items() if k in update + condition
            },
        }
        if values:
            action["ExpressionAttributeValues"] = values
        return {"Update": action}

    # ---------------------------------------------------------------------------- writing
    def _existing_keys(self, stream: str, head: Head, keys: list[str]) -> set[str]:
        """The keys among ``keys`` held by committed records (as of ``head``, which has no
        lease); see the module doc."""
        if not keys or not head.exists:
            return set()
        kpk = keys_pk(stream, head.gen)
        by_slot = {key_slot(k): k for k in keys}
        what = f"checking idempotency keys of stream {stream!r}"
        found = self._key_batch.get(
            [{"pk": {"S": kpk}, "sk": {"S": slot}} for slot in by_slot],
            what,
            consistent=True,
            projection="sk, #s",
            names={"#s": "s"},
        )
        taken: set[str] = set()
        abandoned: dict[str, int] = {}  # key -> the invisible position its item points to
        for item in found:
            seq = int(item["s"]["N"])
            key = by_slot[item["sk"]["S"]]
            if visible(seq, head.c, head.holes):
                taken.add(key)
            else:
                abandoned[key] = seq
        if abandoned:
            taken |= self._keys_committed_after(stream, head, abandoned, what)
        return taken

    def _keys_committed_after(
        self, stream: str, head: Head, abandoned: dict[str, int], what: str
    ) -> set[str]:
        """The keys of ``abandoned`` held by a visible record after the position their item
        points to (one query over the visible pages after the smallest such position)."""
        taken: set[str] = set()
        for lo, hi in visible_segments(min(abandoned.values()), head.c, head.holes):
            kwargs: dict[str, Any] = {
                "TableName": self._table,
                "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
                "FilterExpression": "attribute_exists(#k)",
                "ProjectionExpression": "sk, #k",
                "ExpressionAttributeNames": {"#k": "k"},
                "ExpressionAttributeValues": {
                    ":p": {"S": records_pk(stream, head.gen)},
                    ":a": {"S": pad_seq(lo)},
                    ":b": {"S": pad_seq(hi)},
                },
                "ConsistentRead": True,
            }
            for page in query_pages(self._client, what, **kwargs):
                for item in page.get("Items", []):
                    taken.update(k for k in page_keys(item) if k is not None and k in abandoned)
        return taken

    def _items(
        self, stream: str, gen: str, rows: list[PageRow], start: int, now_us: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The page items holding ``rows`` at positions ``start...`` and the key items of
        those with keys."""
        pages = page_items(records_pk(stream, gen), start, rows, now_us)
        kpk = {"S": keys_pk(stream, gen)}
        keys = [
            {"pk": kpk, "sk": {"S": key_slot(row.key)}, "s": num(seq)}
            for seq, row in enumerate(rows, start)
            if row.key is not None
        ]
        return [item for _, item in pages], keys

    @staticmethod
    def _fits_one_transaction(rows: list[PageRow], head: Head) -> bool:
        """Whether the pages and key items of ``rows`` (+ head, registry) fit one
        ``TransactWriteItems`` (100 actions, 4 MB)."""
        keyed = sum(1 for r in rows if r.key is not None)
        pages = len(paginate(rows))
        actions = 1 + (0 if head.live else 1) + pages + keyed
        size = sum(r.size for r in rows) + pages * PAGE_FIXED_BYTES + keyed * 1200 + 1000
        return actions <= _TX_ACTIONS and size <= _TX_BYTES

    def _commit_small(self, stream: str, head: Head, rows: list[PageRow], now_us: int) -> Head:
        """One transaction: pages, key items, the stream's registry entry if new, and the
        head moved past them (on condition that it is unchanged); :class:`Retry` if it
        changed."""
        gen = head.gen if head.exists else new_generation()
        start = head.n
        end = start + len(rows)
        records, keys = self._items(stream, gen, rows, start, now_us)
        condition, values = head.unchanged()
        update = "SET #n = :n1, #c = :n1, #live = :t"
        values = {**values, ":n1": num(end), ":t": {"BOOL": True}}
        if not head.exists:
            update += ", #g = :g1"
            values[":g1"] = {"S": gen}
        actions = [self._head_action(stream, update, condition, values)]
        if not head.live:
            actions.append({"Put": {"TableName": self._table, "Item": registry_key(stream)}})
        actions.extend({"Put": {"TableName": self._table, "Item": it}} for it in records)
        actions.extend({"Put": {"TableName": self._keys_table, "Item": it}} for it in keys)
        self._transact(actions, f"writing to stream {stream!r}")
        return head.committed(gen, end)

    # ----------------------------------------------------------------------- large batches
    def _commit_large(self, stream: str, head: Head, rows: list[PageRow], now_us: int) -> Head:
        """Lease, reserve, write, commit (see the module doc); :class:`Retry` if the head
        changed before the lease was taken or the lease was lost (nothing became visible)."""
        where = f"writing to stream {stream!r}"
        me = uuid.uuid4().hex
        gen = head.gen if head.exists else new_generation()
        start = head.n
        end = start + len(rows)
        until = now_ms() + int(self._config.lease_s * 1000)
        condition, values = head.unchanged()
        update = "SET #n = :n1, #lo = :me, #lu = :until"
        values = {**values, ":n1": num(end), ":me": {"S": me}, ":until": num(until)}
        if not head.exists:
            update += ", #g = :g1, #c = :c1, #live = :f"
            values.update({":g1": {"S": gen}, ":c1": num(start), ":f": {"BOOL": False}})
        if not self._update_head(stream, update, condition, values, where):
            raise Retry
        try:
            records, keys = self._items(stream, gen, rows, start, now_us)
            renewed = time.monotonic()
            # pages first: a key item is only ever written after its page (drop's purge
            # finds key items through the pages)
            for batch, items in ((self._batch, records), (self._key_batch, keys)):
                for i in range(0, len(items), _RENEW_EVERY):
                    batch.write(
                        [{"PutRequest": {"Item": it}} for it in items[i : i + _RENEW_EVERY]], where
                    )
                    if time.monotonic() - renewed > self._config.lease_s / 3:
                        self._renew(stream, me, where)
                        renewed = time.monotonic()
            self._commit_lease(stream, head, me, gen, start, end)
        except BaseException:
            self._release(stream, me)
            raise
        return head.committed(gen, end)

    def _renew(self, stream: str, me: str, where: str) -> None:
        until = now_ms() + int(self._config.lease_s * 1000)
        values = {":me": {"S": me}, ":until": num(until)}
        if not self._update_head(stream, "SET #lu = :until", "#lo = :me", values, where):
            raise Retry  # the lease was broken: this attempt is a hole now

    def _commit_lease(
        self, stream: str, head: Head, me: str, gen: str, start: int, end: int
    ) -> None:
        where = f"committing a batch to stream {stream!r}"
        update = "SET #c = :end, #live = :t REMOVE #lo, #lu"
        condition = "#lo = :me AND #n = :end"
        values = {":me": {"S": me}, ":end": num(end), ":t": {"BOOL": True}}
        if head.live:
            if self._update_head(stream, update, condition, values, where):
                return
        else:
            actions = [
                self._head_action(stream, update, condition, values),
                {"Put": {"TableName": self._table, "Item": registry_key(stream)}},
            ]
            try:
                self._transact(actions, where)
                return
            except Retry:
                pass
        # the condition failed: either the lease was broken (our range is a hole), or our own
        # commit went through and only its response was lost (botocore retried it)
        now = self._read_head(stream)
        ours_is_a_hole = any(s <= start and end <= e for s, e in now.holes)
        if now.gen == gen and now.c >= end and now.owner != me and not ours_is_a_hole:
            return
        raise Retry

    def _break_lease(self, stream: str, head: Head) -> None:
        """Turn an expired lease's reserved range into a hole and remove the lease."""
        update = "SET #c = :n0 REMOVE #lo, #lu"
        values: dict[str, Any] = {
            ":n0": num(head.n),
            ":old": {"S": head.owner or ""},
            ":lu": num(head.lu),
        }
        if head.c < head.n:
            update = (
                "SET #c = :n0, #h = list_append(if_not_exists(#h, :empty), :hole) REMOVE #lo, #lu"
            )
            values[":empty"] = {"L": []}
            values[":hole"] = {"L": [num(head.c), num(head.n)]}
        condition = "#lo = :old AND #lu = :lu AND #n = :n0"
        self._update_head(stream, update, condition, values, f"breaking a lease of {stream!r}")

    def _release(self, stream: str, me: str) -> None:
        """Give up our lease after a failure: our reserved range becomes a hole. Best effort
        (an unreachable DynamoDB leaves the lease to expire and be broken by the next writer)."""
        try:
            head = self._read_head(stream)
            if head.owner == me:
                self._break_lease(stream, head)
        except StrataError:
            pass

    # ---------------------------------------------------------------------------- reading
