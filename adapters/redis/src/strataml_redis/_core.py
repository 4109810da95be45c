"""What the sync and async Redis stores share: view metadata, the write commands and decoding
of read replies. No I/O here.
"""

from __future__ import annotations

import time
from binascii import hexlify
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from strataml import codec
from strataml.errors import BackendError, InvalidInput, SchemaError
from strataml_redis._encode import EXPIRED, EncodedWrite
from strataml_redis.keys import KeyLayout

__all__ = [
    "ViewMeta",
    "decode_row",
    "decode_rows",
    "encode_meta",
    "now_us",
    "pick",
    "pick_many",
    "plan_write",
]

_pack_key_value = msgpack.Packer(use_bin_type=True).pack  # as strataml.codec packs them
_unpackb = msgpack.unpackb


def now_us() -> int:
    return time.time_ns() // 1000


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
            return KeyLayout.row_key(self.head, codec.encode_key(values))
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


def plan_write(enc: EncodedWrite) -> list[Command]:
    """One command per row, in order: ``SET key value [PXAT ms]`` (which also drops any
    earlier expiry), or ``UNLINK key`` for a row already expired when written (it still
    replaces, i.e. deletes, the entity's previous row)."""
    expire = enc.expire_ms
    if expire is None:
        return [("SET", k, v) for k, v in zip(enc.keys, enc.values, strict=True)]
    return [
        ("UNLINK", k) if at == EXPIRED else ("SET", k, v, "PXAT", at)
        for k, v, at in zip(enc.keys, enc.values, expire, strict=True)
    ]


def first_error(results: Sequence[Any]) -> BaseException | None:
    for r in results:
        if isinstance(r, BaseException):
            return r
    return None


# ------------------------------------------------------------------------------------- read
def decode_row(blob: bytes | None) -> dict[str, Any] | None:
    """A ``GET`` reply as a row (``None`` stays ``None``: no row, or an expired one)."""
    if blob is None:
        return None
    try:
        row = _unpackb(blob, raw=False, timestamp=3, strict_map_key=False)
    except (ValueError, TypeError) as exc:
        raise BackendError(f"a row holds a value strataml did not encode: {exc}") from exc
    if type(row) is not dict:
        raise BackendError("a row holds a value strataml did not encode (not a msgpack map)")
    return row


def decode_rows(replies: list[bytes | None]) -> list[dict[str, Any] | None]:
    """``MGET`` / pipelined ``GET`` replies as rows: joined behind one msgpack array header and
    decoded by one ``unpackb`` (per-row calls cost more than the decoding itself)."""
    n = len(replies)
    head = bytes((0x90 | n,)) if n < 16 else b"\xdd" + n.to_bytes(4, "big")
    try:
        blob = head + b"".join([b"\xc0" if r is None else r for r in replies])
        rows = _unpackb(blob, raw=False, timestamp=3, strict_map_key=False)
    except (ValueError, TypeError):
        return [decode_row(r) for r in replies]  # names the bad row's error
    if len(rows) != n or not all(r is None or type(r) is dict for r in rows):
        return [decode_row(r) for r in replies]  # a reply that is not exactly one row
    return rows  # type: ignore[no-any-return]


def pick(
    row: dict[str, Any] | None, features: Sequence[str], wanted: frozenset[str] | None = None
) -> dict[str, Any] | None:
    """The requested features of a decoded row (``None`` for those it lacks). ``wanted`` is
    ``frozenset(features)``, if the caller has it: a row holding exactly those features (the
    usual read of a view's features) is returned as decoded, without a copy."""
    if row is None:
        return None
    if row.keys() == (wanted if wanted is not None else frozenset(features)):
        return row
    get = row.get
    return {f: get(f) for f in features}


def pick_many(
    rows: list[dict[str, Any] | None], features: Sequence[str]
) -> list[dict[str, Any] | None]:
    """:func:`pick` of each row."""
    wanted = frozenset(features)
    return [pick(r, features, wanted) for r in rows]
