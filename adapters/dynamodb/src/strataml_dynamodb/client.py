"""The boto3 client, the tables, and DynamoDB's batch operations with their retry rules.

* :func:`make_client` builds a low-level ``dynamodb`` client (thread-safe) from the config:
  timeouts, botocore's ``standard`` retries, credentials.
* :func:`ensure_table` creates a store's table on first use (and its TTL attribute).
* :class:`Batcher` runs ``BatchWriteItem`` in requests of 25 and ``BatchGetItem`` in pages of
  100 keys (several at once if asked), retrying ``UnprocessedItems`` / ``UnprocessedKeys`` with
  exponential backoff and full jitter, at most ``max_retries`` times, then
  :class:`~strataml.errors.Unavailable`; and conditional ``DeleteItem`` requests, several at
  once (a failed condition skips the item).
* :func:`item_size` is DynamoDB's size of an item (checked against the 400 KB limit before a
  write).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, NoReturn, TypeVar

from strataml.errors import ConfigError, NotFound, Unavailable
from strataml_dynamodb.config import DynamoDBConfig
from strataml_dynamodb.errors import DRIVER_ERRORS, error_code, translate

__all__ = [
    "BATCH_GET_KEYS",
    "BATCH_WRITE_ITEMS",
    "MAX_ITEM_BYTES",
    "Batcher",
    "backoff_delays",
    "ensure_table",
    "item_size",
    "make_client",
    "query_pages",
]

#: DynamoDB's limits (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html)
MAX_ITEM_BYTES: Final = 400 * 1024
BATCH_WRITE_ITEMS: Final = 25
BATCH_GET_KEYS: Final = 100
MAX_PARTITION_KEY_BYTES: Final = 2048
MAX_SORT_KEY_BYTES: Final = 1024

Item = dict[str, Any]
_T = TypeVar("_T")
_R = TypeVar("_R")
_DUMMY = "strataml-local"
_sessions: dict[tuple[str | None, str], Any] = {}
_sessions_lock = threading.Lock()


def _session(profile: str | None, region: str) -> Any:
    """One boto3 session per (profile, region), shared by the stores of a process: a session
    parses the service model once, so building more clients is cheap. Building a client from a
    session is not thread-safe: callers hold ``_sessions_lock``."""
    import boto3

    key = (profile, region)
    session = _sessions.get(key)
    if session is None:
        session = boto3.session.Session(profile_name=profile, region_name=region)
        _sessions[key] = session
    return session


def make_client(config: DynamoDBConfig) -> Any:
    """A boto3 ``dynamodb`` client for ``config`` (secrets are read here and nowhere else)."""
    from botocore.config import Config

    botocore_config = Config(
        region_name=config.region,
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
        retries={"mode": "standard", "max_attempts": config.max_retries + 1},
        max_pool_connections=config.max_pool_connections,
    )
    kwargs: dict[str, Any] = {}
    if config.aws_access_key_id is not None and config.aws_secret_access_key is not None:
        kwargs["aws_access_key_id"] = config.aws_access_key_id.get_secret_value()
        kwargs["aws_secret_access_key"] = config.aws_secret_access_key.get_secret_value()
        if config.aws_session_token is not None:
            kwargs["aws_session_token"] = config.aws_session_token.get_secret_value()
    elif config.uses_dummy_credentials():
        kwargs["aws_access_key_id"] = _DUMMY
        kwargs["aws_secret_access_key"] = _DUMMY
    try:
        with _sessions_lock:
            return _session(config.profile, config.region).client(
                "dynamodb", endpoint_url=config.endpoint_url, config=botocore_config, **kwargs
            )
    except DRIVER_ERRORS as exc:
        raise translate(exc, "creating the DynamoDB client") from exc
    except ValueError as exc:  # e.g. a malformed endpoint_url
        raise ConfigError(f"invalid DynamoDB settings: {exc}") from exc


def _fail(exc: BaseException, what: str) -> NoReturn:
    raise translate(exc, what) from exc


# ------------------------------------------------------------------------------------ tables
def ensure_table(
    client: Any,
    config: DynamoDBConfig,
    name: str,
    key_schema: Sequence[tuple[str, str, str]],
    *,
    ttl_attribute: str | None = None,
    wait_s: float = 120.0,
) -> None:
    """Make sure table ``name`` exists with ``key_schema`` (``(attribute, HASH|RANGE, S|N|B)``)
    and is ACTIVE; create it (and enable TTL on ``ttl_attribute``) when ``create_tables``.

    Errors: :class:`ConfigError` if the table is missing and may not be created, or has another
    key schema; :class:`Unavailable` if it does not become ACTIVE within ``wait_s``.
    """
    want = [(a, k) for a, k, _ in key_schema]
    what = f"checking the DynamoDB table {name!r}"
    try:
        table = client.describe_table(TableName=name)["Table"]
    except DRIVER_ERRORS as exc:
        if error_code(exc) != "ResourceNotFoundException":
            _fail(exc, what)
        table = None
    if table is None:
        if not config.create_tables:
            raise ConfigError(
                f"the DynamoDB table {name!r} does not exist and create_tables is false; create "
                f"it with key schema {want} (see docs/adapters/dynamodb.md)"
            )
        table = _create(client, config, name, key_schema, ttl_attribute, wait_s)
    got = [(k["AttributeName"], k["KeyType"]) for k in table.get("KeySchema", [])]
    if sorted(got) != sorted(want):
        raise ConfigError(
            f"the DynamoDB table {name!r} has key schema {got}, not {want}: it was not created "
            "by this adapter; choose another table_prefix"
        )
    if table.get("TableStatus") != "ACTIVE":
        _wait_active(client, name, wait_s)


def _create(
    client: Any,
    config: DynamoDBConfig,
    name: str,
    key_schema: Sequence[tuple[str, str, str]],
    ttl_attribute: str | None,
    wait_s: float,
) -> Any:
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": a, "KeyType": k} for a, k, _ in key_schema],
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": t} for a, _, t in key_schema
        ],
        "BillingMode": config.billing_mode,
    }
    if config.billing_mode == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = {
            "ReadCapacityUnits": config.read_capacity_units,
            "WriteCapacityUnits": config.write_capacity_units,
        }
    try:
        client.create_table(**kwargs)
    except DRIVER_ERRORS as exc:
        if error_code(exc) != "ResourceInUseException":  # created meanwhile by another process
            _fail(exc, f"creating the DynamoDB table {name!r}")
    table = _wait_active(client, name, wait_s)
    if ttl_attribute is not None:
        try:
            client.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
            )
        except DRIVER_ERRORS as exc:
            # already enabled (by a concurrent creator): fine; anything else is an error
            if "already enabled" not in str(exc).lower():
                _fail(exc, f"enabling TTL on the DynamoDB table {name!r}")
    return table


def _wait_active(client: Any, name: str, wait_s: float) -> Any:
    deadline = time.monotonic() + wait_s
    delay = 0.05
    while True:
        try:
            table = client.describe_table(TableName=name)["Table"]
        except DRIVER_ERRORS as exc:
            if error_code(exc) != "ResourceNotFoundException":
                _fail(exc, f"waiting for the DynamoDB table {name!r}")
            table = {}
        if table.get("TableStatus") == "ACTIVE":
            return table
        if time.monotonic() > deadline:
            raise Unavailable(f"the DynamoDB table {name!r} is not ACTIVE after {wait_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


# ------------------------------------------------------------------------------------- sizes
def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Any) -> int:
    """DynamoDB's size of one attribute value (wire form ``{"S": ...}`` etc.)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode("utf-8", "surrogatepass"))
    if kind == "B":
        return len(v)
    if kind == "N":
        return _number_size(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(x) for k, x in v.items())
    raise ValueError(f"unsupported attribute type {kind}")


def item_size(item: Item) -> int:
    """DynamoDB's size of an item: UTF-8 attribute names plus value sizes."""
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


# ---------------------------------------------------------------------------------- retrying
def backoff_delays(attempts: int, base: float = 0.05, cap: float = 2.0) -> Iterator[float]:
    """``attempts`` sleeps of exponential backoff with full jitter (``uniform(0, base*2**i)``,
    capped)."""
    for i in range(attempts):
        yield random.uniform(0, min(cap, base * (2**i)))


def _in_requests(items: Sequence[Item]) -> list[list[Item]]:
    """``items`` cut into runs of ``BATCH_WRITE_ITEMS`` (one ``BatchWriteItem`` each)."""
    return [list(items[i : i + BATCH_WRITE_ITEMS]) for i in range(0, len(items), BATCH_WRITE_ITEMS)]


class Batcher:
    """``BatchWriteItem`` / ``BatchGetItem`` on one table with bounded retries of unprocessed
    items and keys. Up to ``workers`` requests of one call run at once (boto3 clients are
    thread-safe); a failed request fails the call once the requests already running are done,
    and no new one starts. ``sleep`` is injectable (tests)."""

    def __init__(
        self,
        client: Any,
        table: str,
        max_retries: int,
        *,
        sleep: Callable[[float], None] = time.sleep,
        workers: int = 1,
    ) -> None:
        self.client = client
        self.table = table
        self.max_retries = max_retries
        self.sleep = sleep
        self.workers = workers

    def each(self, chunks: Sequence[_T], run: Callable[[_T], _R]) -> list[_R]:
        """``run`` every chunk (concurrently when there are several), results in order."""
        if self.workers <= 1 or len(chunks) <= 1:
            return [run(c) for c in chunks]
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        with ThreadPoolExecutor(min(self.workers, len(chunks))) as pool:
            futures = [pool.submit(run, c) for c in chunks]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                for f in futures:
                    f.cancel()
        return [f.result() for f in futures]  # raises the first failure, in request order

    def write(self, requests: Sequence[Item], what: str) -> None:
        """Send ``PutRequest`` / ``DeleteRequest`` entries in requests of 25 (no two for the
        same key in one request: callers deduplicate), retrying unprocessed ones."""
        self.each(_in_requests(requests), lambda chunk: self._write_one(chunk, what))

    def _write_one(self, pending: list[Item], what: str) -> None:
        delays = backoff_delays(self.max_retries)
        while pending:
            try:
                out = self.client.batch_write_item(RequestItems={self.table: pending})
            except DRIVER_ERRORS as exc:
                _fail(exc, what)
            pending = out.get("UnprocessedItems", {}).get(self.table, [])
            if pending:
                delay = next(delays, None)
                if delay is None:
                    raise Unavailable(
                        f"{what}: {len(pending)} items stayed unprocessed after "
                        f"{self.max_retries} retries (throttled); retry later or raise "
                        "the table's capacity"
                    )
                self.sleep(delay)

    def delete_where(self, deletes: Sequence[Item], what: str) -> int:
        """Run conditional ``DeleteItem`` requests (each entry: its ``Key``,
        ``ConditionExpression`` and expression names / values), ``workers`` at a time; return
        how many items were deleted. A failed condition (the item changed, or is gone) skips
        that item and is no error. ``BatchWriteItem`` cannot carry conditions, so this is one
        request per item; botocore retries throttled ones (``max_retries``)."""
        return sum(self.each(_in_requests(deletes), lambda c: self._delete_some(c, what)))

    def _delete_some(self, deletes: list[Item], what: str) -> int:
        deleted = 0
        for request in deletes:
            try:
                self.client.delete_item(TableName=self.table, **request)
            except DRIVER_ERRORS as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    continue
                _fail(exc, what)
            deleted += 1
        return deleted

    def get(
        self,
        keys: Sequence[Item],
        what: str,
        *,
        consistent: bool,
        projection: str | None = None,
        names: dict[str, str] | None = None,
    ) -> list[Item]:
        """Every existing item among ``keys`` (distinct), fetched in pages of 100 keys; the
        order of the result is DynamoDB's (match items by key)."""
        requests: list[Item] = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            request: Item = {"Keys": list(keys[start : start + BATCH_GET_KEYS])}
            request["ConsistentRead"] = consistent
            if projection is not None:
                request["ProjectionExpression"] = projection
            if names:
                request["ExpressionAttributeNames"] = names
            requests.append(request)
        pages = self.each(requests, lambda request: self._get_one(request, what))
        return [item for page in pages for item in page]

    def _get_one(self, request: Item, what: str) -> list[Item]:
        found: list[Item] = []
        delays = backoff_delays(self.max_retries)
        while request:
            try:
                out = self.client.batch_get_item(RequestItems={self.table: request})
            except DRIVER_ERRORS as exc:
                _fail(exc, what)
            found.extend(out.get("Responses", {}).get(self.table, []))
            request = out.get("UnprocessedKeys", {}).get(self.table) or {}
            if request:
                delay = next(delays, None)
                if delay is None:
                    raise Unavailable(
                        f"{what}: {len(request.get('Keys', []))} keys stayed unprocessed "
                        f"after {self.max_retries} retries (throttled or over 16 MB)"
                    )
                self.sleep(delay)
        return found


def query_pages(client: Any, what: str, **kwargs: Any) -> Iterator[Item]:
    """The pages of a ``Query`` (following ``LastEvaluatedKey``)."""
    while True:
        try:
            page = client.query(**kwargs)
        except DRIVER_ERRORS as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise NotFound(f"{what}: the table {kwargs.get('TableName')!r} is gone") from exc
            _fail(exc, what)
        yield page
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        kwargs["ExclusiveStartKey"] = last
