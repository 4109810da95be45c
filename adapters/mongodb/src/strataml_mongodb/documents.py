"""Records as MongoDB documents: the layout of ``<prefix>_records``, built once per record.

Every record becomes one document, encoded to BSON exactly once while the batch is validated
(so its real size is known before anything is written)::

    _id          ObjectId   made by the client
    seq          int64      position in the stream (patched in place once the batch has its range)
    stream       string     the stream's name
    ts_us        int64      event time, microseconds since the epoch (UTC): windows and retention
    ts           date       the event time as a BSON date (milliseconds, UTC) for MongoDB tools
    ingested_us  int64      ingestion time, microseconds since the epoch (UTC)
    key          string     the idempotency key (absent when the record has none)
    data         document   the record itself, as a native subdocument ...
    data_json    string     ... or its JSON text when it is not "BSON-safe" (see below)

The record is first serialised with :func:`strataml._json.dumps_record` (the strict JSON every
strataml ingest store uses: datetimes become ISO-8601 strings, NaN/inf and non-JSON values are
errors) and read back, so what MongoDB stores is exactly the JSON document.

**BSON-safe** documents are stored natively, queryable with MongoDB's own tools: every field
name non-empty, without NUL, ``.`` or a leading ``$`` (which older servers refuse and queries
cannot address), and every integer within int64. Anything else (a key such as ``"a.b"``, an
unsigned 64-bit integer) and any document whose native form would exceed MongoDB's 16 MiB
limit (BSON arrays cost several bytes per element more than JSON) is stored as ``data_json``.
A record whose document exceeds 16 MiB even so raises :class:`LimitExceeded`.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping
from typing import Any, Final

import bson
from bson.codec_options import CodecOptions, TypeDecoder, TypeRegistry
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument

from strataml._json import loads
from strataml._time import EPOCH
from strataml.errors import LimitExceeded

__all__ = [
    "CODEC_OPTIONS",
    "MAX_BSON_BYTES",
    "SEQ_OFFSET",
    "bson_safe",
    "decode_data",
    "encode_record",
    "with_seq",
]

#: MongoDB's maximum document size (``maxBsonObjectSize``).
MAX_BSON_BYTES: Final = 16 * 1024 * 1024
#: Byte offset of ``seq``'s int64 value in every encoded record: the document's length word (4),
#: the ``_id`` element (type 1 + "_id\0" 4 + ObjectId 12), then ``seq``'s type byte and name (5).
SEQ_OFFSET: Final = 4 + (1 + 4 + 12) + (1 + 4)
_SEQ: Final = struct.Struct("<q")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class _PlainInt(TypeDecoder):
    """Decode BSON int64 as ``int`` (pymongo's default is :class:`bson.int64.Int64`, an ``int``
    subclass that would leak into the records read back)."""

    bson_type = Int64

    def transform_bson(self, value: Any) -> Any:
        return int(value)


#: How records are decoded: int64 values come back as plain ``int``.
CODEC_OPTIONS: Final[CodecOptions[dict[str, Any]]] = CodecOptions(
    type_registry=TypeRegistry([_PlainInt()])
)


def bson_safe(value: Any) -> bool:
    """Whether a JSON value can be stored as a native BSON subdocument and read back the same
    (see the module docstring)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if not key or "\x00" in key or "." in key or key[0] == "$":
                    return False
                if isinstance(sub, dict | list) or (type(sub) is int):
                    stack.append(sub)
        elif isinstance(item, list):
            stack.extend(s for s in item if isinstance(s, dict | list) or type(s) is int)
        elif type(item) is int and not _INT64_MIN <= item <= _INT64_MAX:
            return False
    return True


def encode_record(
    json_bytes: bytes,
    *,
    stream: str,
    key: str | None,
    ts_us: int,
    ingested_us: int,
    where: str,
    max_bytes: int = MAX_BSON_BYTES,
) -> bytes:
    """The record's document as BSON (``seq`` = 0, see :func:`with_seq`).

    Raises :class:`LimitExceeded` when even the ``data_json`` form is over ``max_bytes``.
    """
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "seq": Int64(0),
        "stream": stream,
        "ts_us": Int64(ts_us),
        "ts": EPOCH + dt.timedelta(microseconds=ts_us),
        "ingested_us": Int64(ingested_us),
    }
    if key is not None:
        doc["key"] = key
    data = loads(json_bytes)
    raw: bytes | None = None
    if bson_safe(data):
        doc["data"] = data
        raw = bson.encode(doc)
        if len(raw) > max_bytes:
            raw = None
            del doc["data"]
    if raw is None:
        doc["data_json"] = json_bytes.decode()
        raw = bson.encode(doc)
    if len(raw) > max_bytes:
        raise LimitExceeded(
            f"{where}: its MongoDB document would be {len(raw)} bytes, over the limit of "
            f"{max_bytes} (16 MiB); split it, or store large payloads elsewhere and keep a "
            "reference"
        )
    return raw


def with_seq(raw: bytes, seq: int) -> RawBSONDocument:
    """The encoded record with its ``seq`` set (a copy; ``raw`` is unchanged)."""
    buf = bytearray(raw)
    _SEQ.pack_into(buf, SEQ_OFFSET, seq)
    return RawBSONDocument(bytes(buf))


def decode_data(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The record stored in a document (native ``data`` or ``data_json``)."""
    data = doc.get("data")
    if data is None:
        out: dict[str, Any] = loads(doc["data_json"])
        return out
    return dict(data)
