"""What the sync and async Redis stores share: view metadata, the write plan, the Lua script
that replaces a row atomically, and decoding of read replies. No I/O here.
"""

from __future__ import annotations

import hashlib
import time
from binascii import hexlify
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from strataml import codec
from strataml.errors import BackendError, InvalidInput, LimitExceeded, SchemaError
from strataml.online_rows import Batch
from strataml_redis.keys import MARKER, KeyLayout

__all__ = [
    "REPLACE_LUA",
    "REPLACE_SHA",
    "ViewMeta",
    "encode_meta",
    "expire_at_ms",
    "plan_write",
    "row_from_hgetall",
    "row_from_hmget",
    "rows_from_hmget",
]

#: Replace one row atomically (one key, so cluster-safe): delete the old hash, write the new
#: fields (in slices, below Lua's unpack limit), set the expiry. ARGV[1] is the PEXPIREAT
#: milliseconds or "" for no expiry; ARGV[2..] are field, value pairs (the marker first, so
#: the hash exists even for a row without features).
REPLACE_LUA = b"""\
redis.call('DEL', KEYS[1])
local n = #ARGV
for i = 2, n, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, n)))
end
if ARGV[1] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[1])
end
return 1
"""
REPLACE_SHA = hashlib.sha1(REPLACE_LUA).hexdigest()

_NIL = b"\xc0"  # msgpack nil: a field the row lacks
_MAX_PEXPIREAT_MS = 2**62
_pack_key_value = msgpack.Packer(use_bin_type=True).pack  # as strataml.codec packs them


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 65536:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


_HEADERS = [_array_header(n) for n in range(256)]


_unpackb = msgpack.unpackb


def _now_us() -> int:
    return time.time_ns() // 1000


def expire_at_ms(expiry_us: int) -> int:
    """The ``PEXPIREAT`` milliseconds of an expiry instant (µs since the epoch).

    Redis keeps a key while its clock (ms) is not *past* the ``PEXPIREAT`` value, so this is
    one millisecond before the expiry rounded down: the row is never visible at or after
    ``expiry_us``, and disappears at most 1 ms early when the expiry is not a whole ms.
    """
    return min(expiry_us // 1000 - 1, _MAX_PEXPIREAT_MS)


# ------------------------------------------------------------------------------------ views
def encode_meta(entities: Sequence[str], created_us: int) -> bytes:
    """The registry value of a view: msgpack ``[entity columns, created µs]``."""
    return codec.encode_value([list(entities), created_us])


class ViewMeta:
    """A view's metadata as read from the registry (``raw`` is the stored bytes), cached by a
    store until ``deadline`` (``time.monotonic()``)."""

    __slots__ = ("deadline", "entities", "entity_set", "head", "name", "raw", "single")

    def __init__(self, name: str, raw: bytes, layout: KeyLayout, deadline: float) -> None:
        try:
            entities, _created = codec.decode_value(raw)
            cols = tuple(entities)
            if not cols or not all(isinstance(c, str) for c in cols):
                raise ValueError(cols)
        except (ValueError, TypeError) as exc:
            raise BackendError(
                f"the registry entry of view {name!r} is not strataml metadata; the key "
                f"{layout.registry.decode()!r} was written by something else"
            ) from exc
        self.name = name
        self.raw = raw
        self.entities: tuple[str, ...] = cols
        self.entity_set = frozenset(cols)
        self.head = layout.row_head(name)
        self.deadline = deadline
        self.single = cols[0] if len(cols) == 1 else None

    def check_columns(self, cols: Sequence[str]) -> None:
        """:class:`SchemaError` unless ``cols`` are this view's entity columns (any order)."""
        if frozenset(cols) != self.entity_set:
            raise SchemaError(
                f"view {self.name!r} is keyed by {list(self.entities)}, not {list(cols)}; "
                "drop() it to change its entity columns"
            )

    def key(self, entity: Any) -> bytes:
        """The row key of one entity mapping (validated: exact key set, str/int values)."""
        col = self.single
        if col is not None:  # fast path: one int / str column, the bytes of codec.encode_key
            try:
                value = entity[col]
                if len(entity) == 1 and (type(value) is int or type(value) is str):
                    return self.head + hexlify(b"\x91" + _pack_key_value(value)) + b"}"
            except (KeyError, TypeError, IndexError, ValueError, OverflowError):
                pass  # the general path below says what is wrong
        cols = self.entities
        try:
            values = [entity[c] for c in cols]
            ok = len(entity) == len(cols)
        except (KeyError, TypeError, IndexError):
            ok = False
        if not ok:
            raise self._bad_entity(entity)
        try:
            return self.head + hexlify(codec.encode_key(values)) + b"}"
        except InvalidInput as exc:
            raise InvalidInput(f"view {self.name!r}: {exc}") from exc
        except (TypeError, OverflowError, ValueError) as exc:  # ints beyond 64 bits
            raise InvalidInput(
                f"view {self.name!r}: entity key {values!r} cannot be encoded"
            ) from exc

    def _bad_entity(self, entity: Any) -> InvalidInput:
        if not isinstance(entity, Mapping):
            return InvalidInput(
                f"view {self.name!r}: an entity is a mapping of {list(self.entities)} to "
                f"values, got {type(entity).__name__}"
            )
        given = [str(k) for k in entity]
        missing = sorted(self.entity_set - set(given))
        extra = sorted(set(given) - self.entity_set)
        return InvalidInput(
            f"view {self.name!r} is keyed by {list(self.entities)}; the entity mapping "
            f"lacks {missing} and has extra keys {extra}"
        )


# ------------------------------------------------------------------------------------ write
Command = tuple[Any, ...]


def plan_write(
    batch: Batch,
    head: bytes,
    ttl_us: int | None,
    max_record_bytes: int | None,
    where: str,
) -> list[Command]:
    """Validate and encode every row, in order, into one command each: ``EVALSHA`` of
    :data:`REPLACE_LUA` for a live row, ``UNLINK`` for a row already expired when written
    (it still replaces, i.e. deletes, the entity's previous row). Raises before any I/O."""
    now = _now_us()
    events = batch.event_us
    encode_value = codec.encode_value
    encode_key = codec.encode_key
    keys = zip(*batch.key_columns, strict=True)
    commands: list[Command] = []
    append = commands.append
    fields: dict[str, bytes] = {}  # rows of a batch share their feature names: encode once
    i = -1
    try:
        for i, (values, feats) in enumerate(zip(keys, batch.features, strict=True)):
            key = head + hexlify(encode_key(values)) + b"}"
            args: list[Any] = []
            size = 0
            for name, value in feats.items():
                field = fields.get(name)
                if field is None:
                    try:
                        field = fields[name] = name.encode("utf-8")
                    except UnicodeEncodeError as exc:
                        raise InvalidInput(f"feature name {name!r} is not valid Unicode") from exc
                blob = encode_value(value)
                size += len(field) + len(blob)
                args.append(field)
                args.append(blob)
            if max_record_bytes is not None and size > max_record_bytes:
                raise LimitExceeded(
                    f"{where}: row {i} encodes to {size} bytes, over the "
                    f"{max_record_bytes}-byte record limit"
                )
            if ttl_us is None:
                append(("EVALSHA", REPLACE_SHA, 1, key, b"", MARKER, b"", *args))
                continue
            expiry = (events[i] if events is not None else now) + ttl_us
            if expiry <= now:
                append(("UNLINK", key))
                continue
            at_ms = str(expire_at_ms(expiry)).encode()
            append(("EVALSHA", REPLACE_SHA, 1, key, at_ms, MARKER, b"", *args))
    except LimitExceeded:
        raise
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: row {i}: {exc}") from exc
    except (TypeError, OverflowError, ValueError) as exc:
        raise InvalidInput(f"{where}: row {i}: the entity key cannot be encoded") from exc
    return commands


def first_error(results: Sequence[Any]) -> BaseException | None:
    for r in results:
        if isinstance(r, BaseException):
            return r
    return None


# ------------------------------------------------------------------------------------- read
def row_from_hmget(vals: list[Any], features: Sequence[str]) -> dict[str, Any] | None:
    """Decode an ``HMGET key MARKER *features`` reply (the list is reused): no marker, no row.

    The serving hot path, hence inlined: the values are joined behind one msgpack array header
    (in the marker's slot) and decoded by a single ``unpackb`` with the options of
    :func:`strataml.codec.decode_value`.
    """
    if vals[0] is None:
        return None
    n = len(vals) - 1
    vals[0] = _HEADERS[n] if n < 256 else _array_header(n)
    try:
        blob = b"".join(vals)
    except TypeError:  # fields the row lacks come back as None
        blob = b"".join([_NIL if v is None else v for v in vals])
    try:
        values = _unpackb(blob, raw=False, timestamp=3, strict_map_key=False)
    except (ValueError, TypeError) as exc:
        raise BackendError(f"a row holds values strataml did not encode: {exc}") from exc
    return dict(zip(features, values))  # noqa: B905 - same length by construction


def rows_from_hmget(
    replies: list[list[Any]], features: Sequence[str]
) -> list[dict[str, Any] | None]:
    """:func:`row_from_hmget` of each reply of a pipeline."""
    return [row_from_hmget(vals, features) for vals in replies]


def row_from_hgetall(raw: dict[bytes, bytes]) -> dict[str, Any] | None:
    """Decode an ``HGETALL key`` reply (the dict is reused)."""
    marker = raw.pop(MARKER, None)
    if marker is None:
        return None
    try:
        names = list(map(bytes.decode, raw))  # UTF-8, strict
    except UnicodeDecodeError as exc:
        raise BackendError(f"a row holds fields strataml did not write: {exc}") from exc
    return row_from_hmget([marker, *raw.values()], names)
