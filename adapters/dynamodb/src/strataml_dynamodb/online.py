"""The DynamoDB online store: one item per (view, entity), read with ``GetItem`` /
``BatchGetItem``, written with ``BatchWriteItem`` (see :mod:`strataml_dynamodb.layout`).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, NoReturn

from strataml import codec
from strataml.capabilities import Capabilities
from strataml.errors import (
    BackendError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    Unavailable,
)
from strataml.online_rows import (
    entity_columns,
    entity_list,
    features_arg,
    normalize_rows,
    to_batch,
    ttl_micros,
)
from strataml_dynamodb.client import (
    MAX_ITEM_BYTES,
    MAX_PARTITION_KEY_BYTES,
    Batcher,
    ensure_table,
    make_client,
)
from strataml_dynamodb.config import DynamoDBConfig
from strataml_dynamodb.errors import DRIVER_ERRORS, error_code, translate
from strataml_dynamodb.layout import (
    DROP_ATTR,
    ONLINE_REGISTRY_PK,
    VIEW_ATTR,
    VIEW_ID_BYTES,
    drop_attr,
    row_pk,
    row_prefix,
    view_attr,
)

__all__ = ["DynamoDBOnlineStore", "ViewMeta"]

KEY_SCHEMA: Final = (("pk", "HASH", "B"),)
TTL_ATTRIBUTE: Final = "x"
MAX_VIEW_NAME_BYTES: Final = 255
_WRITE_ATTEMPTS: Final = 5
_REGISTRY_KEY: Final = {"pk": {"B": ONLINE_REGISTRY_PK}}
#: item size besides the key and the features: names "pk", "f", "e", "x" and two numbers
_ROW_OVERHEAD: Final = 2 + 1 + 1 + 1 + 2 * 21


def _now_us() -> int:
    return time.time_ns() // 1000


def _view_name(view: Any) -> str:
    """A view name: a non-empty string of at most 255 UTF-8 bytes."""
    if not isinstance(view, str) or not view:
        raise InvalidInput(f"a view name is a non-empty string, got {view!r}")
    try:
        raw = view.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"view name {view!r} is not valid Unicode text") from exc
    if len(raw) > MAX_VIEW_NAME_BYTES:
        raise InvalidInput(f"view name {view[:40]!r}... is longer than {MAX_VIEW_NAME_BYTES} bytes")
    return view


class ViewMeta:
    """A view as registered: its id (8 random bytes, never reused), entity columns, and the
    stored bytes (``raw``); cached by a store until ``deadline`` (``time.monotonic()``)."""

    __slots__ = ("deadline", "entities", "entity_set", "name", "raw", "view_id")

    def __init__(self, name: str, raw: bytes, deadline: float) -> None:
        try:
            view_id, entities, _created = codec.decode_value(raw)
            cols = tuple(entities)
            if len(view_id) != VIEW_ID_BYTES or not cols:
                raise ValueError(cols)
            if not all(isinstance(c, str) for c in cols):
                raise ValueError(cols)
        except (ValueError, TypeError) as exc:
            raise BackendError(
                f"the registry entry of view {name!r} is not strataml metadata: the online "
                "table holds something else; use a table_prefix of its own"
            ) from exc
        self.name = name
        self.raw = raw
        self.view_id: bytes = bytes(view_id)
        self.entities: tuple[str, ...] = cols
        self.entity_set = frozenset(cols)
        self.deadline = deadline

    @staticmethod
    def encode(view_id: bytes, entities: Sequence[str]) -> bytes:
        return codec.encode_value([view_id, list(entities), _now_us()])

    def check_columns(self, cols: Sequence[str]) -> None:
        """:class:`SchemaError` unless ``cols`` are this view's entity columns (any order)."""
        if frozenset(cols) != self.entity_set:
            raise SchemaError(
                f"view {self.name!r} is keyed by {list(self.entities)}, not {list(cols)}; "
                "drop() it to change its entity columns"
            )

    def key(self, entity: Any) -> bytes:
        """The row key of one entity mapping (exact key set; ``str`` / ``int`` values)."""
        cols = self.entities
        try:
            values = [entity[c] for c in cols]
            ok = len(entity) == len(cols)
        except (KeyError, TypeError, IndexError):
            ok = False
        if not ok:
            raise self._bad_entity(entity)
        try:
            return row_pk(self.view_id, codec.encode_key(values))
        except InvalidInput as exc:
            raise InvalidInput(f"view {self.name!r}: {exc}") from exc

    def _bad_entity(self, entity: Any) -> InvalidInput:
        if not isinstance(entity, Mapping):
            return InvalidInput(
                f"view {self.name!r}: an entity is a mapping of {list(self.entities)} to "
                f"values, got {type(entity).__name__}"
            )
        given = {str(k) for k in entity}
        missing, extra = sorted(self.entity_set - given), sorted(given - self.entity_set)
        return InvalidInput(
            f"view {self.name!r} is keyed by {list(self.entities)}; the entity mapping lacks "
            f"{missing} and has extra keys {extra}"
        )


class DynamoDBOnlineStore:
    """An :class:`~strataml.protocols.OnlineStore` on one DynamoDB table.

    Build it with :meth:`from_config`. Choices the protocol leaves open:

    * One item per (view, entity): the partition key is the view's id plus
      :func:`strataml.codec.encode_key` of the entity values (``42`` and ``"42"`` differ), so
      rows spread over partitions. Features are one msgpack attribute (typed round trips).
    * :meth:`write` validates and encodes every row first, then sends ``BatchWriteItem``
      requests of 25 (retrying unprocessed items); each row is replaced whole (``PutItem``
      semantics), the last duplicate of an entity in a batch wins. A batch is not atomic as a
      whole. Returns the number of input rows.
    * TTL: the expiry (µs) is stored with the row and checked on every read, so an expired row
      reads as missing at once; the same expiry, rounded up to whole seconds, is DynamoDB's TTL
      attribute ``x``, so DynamoDB deletes expired rows eventually (lazily, within days) and
      never before they expired. Rows already expired when written are not stored: they
      delete the entity's previous row.
    * :meth:`get` is one ``GetItem``; :meth:`get_many` one ``BatchGetItem`` per 100 distinct
      keys (retrying unprocessed keys). Reads are strongly consistent unless
      ``consistent_reads = false``.
    * :meth:`delete` reads which rows exist (``BatchGetItem``), then deletes with
      ``BatchWriteItem``; the count is of rows alive at that read.
    * View metadata (entity columns, id) lives in one registry item and is cached per store for
      ``view_cache_s``. :meth:`drop` removes the view from the registry first (its rows are
      unreachable at once, its id is never reused), then deletes its rows with a scan of the
      table (filtered client-side by key prefix); a drop interrupted midway is finished by the
      next :meth:`drop` of any view.

    Errors: :class:`NotFound` for a view never written; :class:`InvalidInput` for bad input;
    :class:`SchemaError` for entity columns differing from the view's; :class:`LimitExceeded`
    for a row whose features encode to more than ``max_record_bytes`` or whose item would pass
    DynamoDB's 400 KB (or an entity key over 2 KB); :class:`Unavailable` when DynamoDB cannot
    be reached, refuses the credentials, throttles beyond ``max_retries``, or after
    :meth:`close`. Bad input raises before anything is sent.
    """

    blocking_io = True

    def __init__(self, client: Any, config: DynamoDBConfig, caps: Capabilities) -> None:
        self._client = client
        self._config = config
        self._caps = caps
        self._table = config.online_table
        self._max_record = caps.max_record_bytes
        self._consistent = config.consistent_reads
        self._cache_s = config.view_cache_s
        self._batch = Batcher(client, self._table, config.max_retries)
        self._cache: dict[str, ViewMeta] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(cls, config: DynamoDBConfig) -> DynamoDBOnlineStore:
        """Connect, and create the table with its TTL attribute if needed (``create_tables``)."""
        from strataml_dynamodb import ONLINE_CAPS

        client = make_client(config)
        ensure_table(client, config, config.online_table, KEY_SCHEMA, ttl_attribute=TTL_ATTRIBUTE)
        return cls(client, config, ONLINE_CAPS)

    @property
    def capabilities(self) -> Capabilities:
        """TTL; ``max_record_bytes`` of encoded features per row."""
        return self._caps

    @property
    def client(self) -> Any:
        """The boto3 client (benchmarks, operations)."""
        return self._client

    @property
    def table(self) -> str:
        return self._table

    def __repr__(self) -> str:
        where = self._config.endpoint_url or f"region {self._config.region}"
        return f"DynamoDBOnlineStore(table={self._table!r}, {where})"

    # ------------------------------------------------------------------------- plumbing
    def _fail(self, exc: BaseException, what: str) -> NoReturn:
        if self._closed:
            raise Unavailable(f"{what}: the store is closed") from exc
        raise translate(exc, what) from exc

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable(f"{self!r} is closed")

    def _registry(self, what: str, attrs: Sequence[str] | None = None) -> dict[str, Any]:
        """The registry item (only ``attrs`` when given), read strongly consistent."""
        self._check_open()
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": _REGISTRY_KEY,
            "ConsistentRead": True,
        }
        if attrs:
            names = {f"#a{i}": a for i, a in enumerate(attrs)}
            kwargs["ProjectionExpression"] = ", ".join(names)
            kwargs["ExpressionAttributeNames"] = names
        try:
            item: dict[str, Any] = self._client.get_item(**kwargs).get("Item") or {}
        except DRIVER_ERRORS as exc:
            self._fail(exc, what)
        return item

    def _fetch(self, view: str) -> ViewMeta | None:
        """The view's metadata read now (and cached), or ``None`` if it does not exist."""
        item = self._registry(f"reading the metadata of view {view!r}", [view_attr(view)])
        value = item.get(view_attr(view))
        if value is None:
            self._cache.pop(view, None)
            return None
        meta = ViewMeta(view, bytes(value["B"]), time.monotonic() + self._cache_s)
        self._cache[view] = meta
        return meta

    def _load(self, view: str) -> ViewMeta:
        meta = self._fetch(view)
        if meta is None:
            raise NotFound(f"online view {view!r} does not exist; write() it first")
        return meta

    def _view(self, view: Any) -> ViewMeta:
        """The view's metadata, from the cache while it is fresh."""
        meta = self._cache.get(view) if isinstance(view, str) else None
        if meta is None or meta.deadline < time.monotonic():
            return self._load(_view_name(view))
        return meta

    def _keys(self, meta: ViewMeta, entities: Sequence[Any]) -> tuple[ViewMeta, list[bytes]]:
        """Row keys of ``entities``; a mismatch re-reads the metadata once (the view may have
        been re-created with other columns by another process)."""
        try:
            return meta, [meta.key(e) for e in entities]
        except InvalidInput:
            fresh = self._load(meta.name)
            if fresh.raw == meta.raw:
                raise
            return fresh, [fresh.key(e) for e in entities]

    # ------------------------------------------------------------------------------- read
    @staticmethod
    def _row(item: dict[str, Any] | None, features: Sequence[str] | None, now: int) -> Any:
        if item is None:
            return None
        expiry = item.get("e")
        if expiry is not None and int(expiry["N"]) <= now:
            return None
        try:
            row = codec.decode_row(bytes(item["f"]["B"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise BackendError(f"a row holds data strataml did not write: {exc}") from exc
        if features is None:
            return row
        return {f: row.get(f) for f in features}

    def get(
        self, view: str, entity: Mapping[str, Any], features: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One entity's features, or ``None`` if unknown or expired (one ``GetItem``)."""
        self._check_open()
        if features is not None:
            features = features_arg(features)
        meta, (key,) = self._keys(self._view(view), [entity])
        if len(key) > MAX_PARTITION_KEY_BYTES:
            return None  # no row can have this key
        try:
            out = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"B": key}},
                ConsistentRead=self._consistent,
                ProjectionExpression="f, e",
            )
        except DRIVER_ERRORS as exc:
            self._fail(exc, f"get from view {meta.name!r}")
        result: dict[str, Any] | None = self._row(out.get("Item"), features, _now_us())
        return result

    def get_many(
        self,
        view: str,
        entities: Sequence[Mapping[str, Any]],
        features: Sequence[str] | None = None,
    ) -> list[dict[str, Any] | None]:
        """:meth:`get` for many entities: one ``BatchGetItem`` per 100 distinct keys, results
        in input order."""
        self._check_open()
        if features is not None:
            features = features_arg(features)
        meta, keys = self._keys(self._view(view), entity_list(entities))
        if not keys:
            return []
        wanted = list(dict.fromkeys(k for k in keys if len(k) <= MAX_PARTITION_KEY_BYTES))
        items = self._batch.get(
            [{"pk": {"B": k}} for k in wanted],
            f"get_many from view {meta.name!r}",
            consistent=self._consistent,
            projection="pk, f, e",
        )
        by_key = {bytes(item["pk"]["B"]): item for item in items}
        now = _now_us()
        return [self._row(by_key.get(k), features, now) for k in keys]

    def views(self) -> list[str]:
        """Views that have been written (and not dropped), sorted."""
        item = self._registry("listing views")
        return sorted(a[len(VIEW_ATTR) :] for a in item if a.startswith(VIEW_ATTR))

    # ------------------------------------------------------------------------------ write
    def write(
        self,
        view: str,
        rows: Any,
        *,
        entities: Sequence[str],
        ttl: dt.timedelta | None = None,
        event_time: str | None = None,
    ) -> int:
        """Replace the rows of the entities in ``rows`` (see the class doc).

        ``rows``: a ``pa.Table`` / ``pa.RecordBatch`` / reader, a pandas or polars DataFrame,
        or an iterable of mappings holding the entity columns and the features. Every row is
        validated and encoded before anything is sent. Returns the number of rows.
        """
        view = _view_name(view)
        cols = entity_columns(entities)
        ttl_us = ttl_micros(ttl)
        if event_time is not None and (not isinstance(event_time, str) or event_time in cols):
            raise InvalidInput(f"event_time= names a non-entity column, got {event_time!r}")
        where = f"write to view {view!r}"
        data = normalize_rows(rows, where)  # read once: encoded again if the view changes
        for _ in range(_WRITE_ATTEMPTS):
            current = self._fetch(view)
            if current is not None:
                current.check_columns(cols)
            order = current.entities if current is not None else cols
            view_id = current.view_id if current is not None else os.urandom(VIEW_ID_BYTES)
            batch = to_batch(data, order, event_time, where)
            requests = self._plan(batch, view_id, ttl_us, where)
            if current is None and not self._register(view, view_id, cols):
                continue  # registered meanwhile by another writer: check and encode again
            self._batch.write(requests, where)
            return batch.n
        raise Conflict(f"{where}: the view kept changing under concurrent drops; retry")

    def _plan(
        self, batch: Any, view_id: bytes, ttl_us: int | None, where: str
    ) -> list[dict[str, Any]]:
        """Validate and encode every row into a ``PutRequest`` (or a ``DeleteRequest`` for a
        row already expired), one per entity (the last row of an entity wins)."""
        now = _now_us()
        events = batch.event_us
        limit = self._max_record
        encode_key, encode_row = codec.encode_key, codec.encode_row
        planned: dict[bytes, dict[str, Any]] = {}
        i = -1
        try:
            for i, (values, feats) in enumerate(
                zip(zip(*batch.key_columns, strict=True), batch.features, strict=True)
            ):
                key = row_pk(view_id, encode_key(values))
                blob = encode_row(feats)
                if len(key) > MAX_PARTITION_KEY_BYTES:
                    raise LimitExceeded(
                        f"{where}: row {i}: the entity key encodes to {len(key)} bytes; "
                        f"DynamoDB partition keys hold at most {MAX_PARTITION_KEY_BYTES}"
                    )
                if limit is not None and len(blob) > limit:
                    raise LimitExceeded(
                        f"{where}: row {i} encodes to {len(blob)} bytes, over the "
                        f"{limit}-byte record limit"
                    )
                if len(key) + len(blob) + _ROW_OVERHEAD > MAX_ITEM_BYTES:
                    raise LimitExceeded(
                        f"{where}: row {i} (key and features) is over DynamoDB's "
                        f"{MAX_ITEM_BYTES}-byte item limit"
                    )
                pk = {"B": key}
                if ttl_us is None:
                    planned[key] = {"PutRequest": {"Item": {"pk": pk, "f": {"B": blob}}}}
                    continue
                expiry = (events[i] if events is not None else now) + ttl_us
                if expiry <= now:
                    planned[key] = {"DeleteRequest": {"Key": {"pk": pk}}}
                    continue
                seconds = -(-expiry // 1_000_000)  # rounded up: DynamoDB never deletes early
                item = {
                    "pk": pk,
                    "f": {"B": blob},
                    "e": {"N": str(expiry)},
                    "x": {"N": str(seconds)},
                }
                planned[key] = {"PutRequest": {"Item": item}}
        except LimitExceeded:
            raise
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: row {i}: {exc}") from exc
        return list(planned.values())

    def _register(self, view: str, view_id: bytes, cols: tuple[str, ...]) -> bool:
        """Register a new view (conditional update of the registry item); ``False`` if
        another writer registered it first."""
        raw = ViewMeta.encode(view_id, cols)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_REGISTRY_KEY,
                UpdateExpression="SET #v = :m",
                ConditionExpression="attribute_not_exists(#v)",
                ExpressionAttributeNames={"#v": view_attr(view)},
                ExpressionAttributeValues={":m": {"B": raw}},
            )
        except DRIVER_ERRORS as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            if error_code(exc) == "ValidationException" and "size" in str(exc).lower():
                raise LimitExceeded(
                    f"registering view {view!r}: the registry item is full (DynamoDB's 400 KB "
                    "item limit, several thousand views); drop unused views"
                ) from exc
            self._fail(exc, f"registering view {view!r}")
        self._cache[view] = ViewMeta(view, raw, time.monotonic() + self._cache_s)
        return True

    # ----------------------------------------------------------------------------- delete
    def delete(self, view: str, entities: Sequence[Mapping[str, Any]]) -> int:
        """Delete entities' rows; return how many existed (expired rows do not count)."""
        self._check_open()
        meta, keys = self._keys(self._view(view), entity_list(entities))
        unique = list(dict.fromkeys(k for k in keys if len(k) <= MAX_PARTITION_KEY_BYTES))
        if not unique:
            return 0
        what = f"delete from view {meta.name!r}"
        found = self._batch.get(
            [{"pk": {"B": k}} for k in unique], what, consistent=True, projection="pk, e"
        )
        now = _now_us()
        alive = sum(1 for it in found if "e" not in it or int(it["e"]["N"]) > now)
        self._batch.write([{"DeleteRequest": {"Key": {"pk": {"B": k}}}} for k in unique], what)
        return alive

    def drop(self, view: str) -> None:
        """Delete a view and all its rows (no error if it does not exist); also finishes drops
        of other views that were interrupted."""
        view = _view_name(view)
        what = f"drop view {view!r}"
        self._cache.pop(view, None)
        item = self._registry(what)
        pending = {
            bytes.fromhex(a[len(DROP_ATTR) :]): v["S"]
            for a, v in item.items()
            if a.startswith(DROP_ATTR)
        }
        value = item.get(view_attr(view))
        if value is not None:
            meta = ViewMeta(view, bytes(value["B"]), 0.0)
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=_REGISTRY_KEY,
                    UpdateExpression="REMOVE #v SET #d = :name",
                    ConditionExpression="#v = :raw",
                    ExpressionAttributeNames={"#v": view_attr(view), "#d": drop_attr(meta.view_id)},
                    ExpressionAttributeValues={":raw": {"B": meta.raw}, ":name": {"S": view}},
                )
                pending[meta.view_id] = view
            except DRIVER_ERRORS as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    self._fail(exc, what)
                # dropped (or re-created) meanwhile by another store: its drop handles the rows
        if pending:
            self._purge(pending, what)
        self._cache.pop(view, None)

    def _purge(self, pending: dict[bytes, str], what: str) -> None:
        """Delete every row of the view ids in ``pending`` (one scan), then clear their marks."""
        prefixes = tuple(row_prefix(view_id) for view_id in pending)
        doomed: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ProjectionExpression": "pk",
            "ConsistentRead": True,
        }
        while True:
            try:
                page = self._client.scan(**kwargs)
            except DRIVER_ERRORS as exc:
                self._fail(exc, what)
            for item in page.get("Items", []):
                key = bytes(item["pk"]["B"])
                if key.startswith(prefixes):
                    doomed.append({"DeleteRequest": {"Key": {"pk": {"B": key}}}})
            last = page.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        self._batch.write(doomed, what)
        names = {f"#d{i}": drop_attr(view_id) for i, view_id in enumerate(pending)}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_REGISTRY_KEY,
                UpdateExpression="REMOVE " + ", ".join(names),
                ExpressionAttributeNames=names,
            )
        except DRIVER_ERRORS as exc:
            self._fail(exc, what)

    # ---------------------------------------------------------------------------- closing
    def close(self) -> None:
        """Close the client's connections. Idempotent; later calls raise
        :class:`Unavailable`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._cache.clear()
        close = getattr(self._client, "close", None)
        if close is not None:
            try:
                close()
            except DRIVER_ERRORS:
                pass

    def __enter__(self) -> DynamoDBOnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
