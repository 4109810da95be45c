"""Record layout: how a strataml record is stored in a Milvus collection, and read back.

=========  =======================  ==========================================================
field      Milvus type              content
=========  =======================  ==========================================================
pk         VARCHAR (primary key)    tenant + id, base64 (:mod:`strataml_milvus.names`)
tkey       VARCHAR                  base64 tenant (``""`` single-tenant); partition key on
                                    servers (``tenant_partition_key``)
text       VARCHAR + analyzer       the text (``""`` when the record has none)
sparse     SPARSE_FLOAT_VECTOR      BM25 function output over ``text`` (Milvus fills it)
vector     FLOAT_VECTOR(dim)        the embedding
meta       JSON                     metadata values (below)
has        JSON                     ``{field: 1}`` for every metadata field present, plus
                                    ``{"$text": 1}`` when the record has text
=========  =======================  ==========================================================

Metadata values are JSON: strings, numbers, booleans and lists as themselves; **timestamps and
dates as integer microseconds since the Unix epoch (UTC; a date is its midnight)**, so they
compare as numbers in filters and a date compares with a timestamp as its midnight, like
:func:`strataml.filters.matches`. The collection's tracked field types tell how to read them
back (aware UTC ``datetime``, ``date``).

``has`` exists because Milvus Lite has neither ``exists`` nor ``not`` in its expressions:
presence is ``has["f"] == 1`` and absence ``has["f"] != 1`` (a missing JSON key compares
unequal to everything), see :mod:`strataml_milvus.filters`. Milvus Lite cannot store nulls, so
text absence lives in ``has`` too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

from strataml.filters import FieldType
from strataml.models import Hit, Metric, VectorRecord, score_from_bm25, score_from_distance
from strataml.vectors.batch import stored_records
from strataml_milvus.names import decode_key

__all__ = [
    "FIELDS",
    "TEXT_FLAG",
    "decode_metadata",
    "encode_metadata",
    "from_micros_date",
    "from_micros_ts",
    "hit_from_result",
    "presence",
    "record_from_row",
    "temporal_fields",
    "to_micros",
]

#: Field names of every strataml collection.
FIELDS: Final = ("pk", "tkey", "text", "sparse", "vector", "meta", "has")
#: The ``has`` key marking a record with text (not an identifier: no metadata field has it).
TEXT_FLAG: Final = "$text"
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DATE: Final = dt.date(1970, 1, 1)
_US_PER_DAY: Final = 86_400_000_000
_RECORD: Final = VectorRecord.__pydantic_validator__.validate_python
_HIT: Final = Hit.__pydantic_validator__.validate_python


def to_micros(value: dt.date) -> int:
    """Microseconds since the epoch of a datetime (naive = UTC) or a date (its midnight UTC)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        delta = aware - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (value - _EPOCH_DATE).days * _US_PER_DAY


def from_micros_ts(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=value)


def from_micros_date(value: int) -> dt.date:
    return _EPOCH_DATE + dt.timedelta(days=value // _US_PER_DAY)


def encode_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Normalised metadata (from :func:`strataml.vectors.batch.prepare_batch`) as JSON values."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        out[key] = to_micros(value) if isinstance(value, dt.date) else value
    return out


def presence(metadata: Mapping[str, Any], has_text: bool) -> dict[str, int]:
    """The ``has`` document of a record."""
    out = dict.fromkeys(metadata, 1)
    if has_text:
        out[TEXT_FLAG] = 1
    return out


def decode_metadata(stored: Mapping[str, Any], fields: Mapping[str, FieldType]) -> dict[str, Any]:
    """Stored JSON metadata back to Python values (timestamps aware UTC, dates as ``date``)."""
    return _decode(stored, temporal_fields(fields), fields)


def temporal_fields(fields: Mapping[str, FieldType]) -> frozenset[str]:
    """The timestamp and date fields of a collection (the ones stored as microseconds)."""
    return frozenset(k for k, t in fields.items() if t in (FieldType.TIMESTAMP, FieldType.DATE))


def _decode(
    stored: Mapping[str, Any], temporal: frozenset[str], fields: Mapping[str, FieldType]
) -> dict[str, Any]:
    out = dict(stored)
    for key in temporal:
        value = out.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            if fields[key] is FieldType.TIMESTAMP:
                out[key] = from_micros_ts(value)
            else:
                out[key] = from_micros_date(value)
    return out


def _vector(value: Any) -> list[float] | None:
    if value is None:
        return None
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else [float(x) for x in value]


def record_from_row(
    row: Mapping[str, Any],
    fields: Mapping[str, FieldType],
    temporal: frozenset[str],
    vectors: bool,
) -> VectorRecord:
    """A stored row (``pk``, ``text``, ``meta``, ``has`` and maybe ``vector``) as a record.

    (Built through the model's validator directly: cheaper than ``__init__`` and than
    ``model_construct``.)
    """
    tenant, rid = decode_key(str(row["pk"]))
    has = row.get("has") or {}
    record: VectorRecord = _RECORD(
        {
            "id": rid,
            "vector": _vector(row.get("vector")) if vectors else None,
            "text": row.get("text") if has.get(TEXT_FLAG) else None,
            "metadata": _decode(row.get("meta") or {}, temporal, fields),
            "tenant": tenant,
        }
    )
    return record


def records_from_rows(
    rows: Sequence[Mapping[str, Any]],
    fields: Mapping[str, FieldType],
    temporal: frozenset[str],
    vectors: bool,
) -> list[VectorRecord]:
    """:func:`record_from_row` of a page of scanned rows, built without validating again
    (:func:`strataml.vectors.batch.stored_records`): the rows were validated when written."""
    keys = [decode_key(str(row["pk"])) for row in rows]
    texts = [row.get("text") if (row.get("has") or {}).get(TEXT_FLAG) else None for row in rows]
    metas = [_decode(row.get("meta") or {}, temporal, fields) for row in rows]
    vecs = [_vector(row.get("vector")) for row in rows] if vectors else None
    return stored_records([k[1] for k in keys], texts, metas, [k[0] for k in keys], vecs)


def hit_from_result(
    raw: Mapping[str, Any],
    fields: Mapping[str, FieldType],
    temporal: frozenset[str],
    vectors: bool,
    *,
    metric: Metric,
    distance: float | None = None,
    bm25: float | None = None,
) -> Hit:
    """One Milvus search result as a :class:`~strataml.models.Hit` (the score contract: a
    dense hit has ``distance`` and ``metric``, a keyword hit the raw BM25)."""
    entity = raw.get("entity") or {}
    tenant, rid = decode_key(str(raw.get("id", entity.get("pk"))))
    has = entity.get("has") or {}
    if distance is not None:
        score = score_from_distance(metric, distance)
    else:
        assert bm25 is not None
        score = score_from_bm25(bm25)
    hit: Hit = _HIT(
        {
            "id": rid,
            "score": score,
            "distance": distance,
            "metric": metric if distance is not None else None,
            "keyword_score": bm25,
            "text": entity.get("text") if has.get(TEXT_FLAG) else None,
            "metadata": _decode(entity.get("meta") or {}, temporal, fields),
            "tenant": tenant,
            "vector": _vector(entity.get("vector")) if vectors else None,
        }
    )
    return hit
