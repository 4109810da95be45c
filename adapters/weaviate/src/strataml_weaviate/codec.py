"""Records <-> Weaviate objects, and Weaviate scores -> the strataml score contract.

**Properties of an object**: ``sm_id`` (the strataml id), ``sm_text`` (absent without text),
``sm_meta`` (the metadata as JSON, exactly as written) and one typed property per metadata field
for filtering (see :mod:`strataml_weaviate.schema`). ``sm_meta`` is what reads return, so values
keep their exact type (``2`` vs ``2.0``, 64-bit integers, microseconds): JSON scalars and lists
are themselves, a datetime is ``{"t": ISO-8601}`` and a date ``{"d": "YYYY-MM-DD"}`` (metadata
values are never objects, so a mapping always marks a temporal value).

**Scores** (:class:`~strataml.models.Hit`):

* dense: Weaviate's ``distance`` is the strataml distance for ``cosine`` (``1 - cos``) and
  ``dot`` (``-dot``); for ``l2`` Weaviate returns the *squared* Euclidean distance
  (``l2-squared``), so its square root is reported. ``score`` follows from the distance.
* keyword: Weaviate's BM25 ``score`` is ``keyword_score``; ``score = bm25 / (1 + bm25)``.
* hybrid: Weaviate's ``relativeScoreFusion`` score -- each leg's scores min-max normalised to
  ``[0, 1]``, then ``alpha * dense + (1 - alpha) * keyword`` -- is already the strataml hybrid
  score (the same method as :func:`strataml.vectors.fusion.relative_score_fusion`); it is
  clamped to ``[0, 1]``. Weaviate does not return the legs' raw values with a fused hit, so
  ``distance`` and ``keyword_score`` are ``None`` there.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from strataml.filters import FieldType
from strataml.models import Hit, Metric, VectorRecord, score_from_bm25, score_from_distance
from strataml_weaviate.names import ID_PROPERTY, META_PROPERTY, TEXT_PROPERTY, property_name
from strataml_weaviate.schema import VECTOR

__all__ = [
    "RETURN_PROPERTIES",
    "decode_metadata",
    "dense_distance",
    "encode_metadata",
    "keyword_hit_scores",
    "minmax",
    "object_properties",
    "object_vector",
]

#: What every read asks Weaviate for (the typed filter properties are never read back).
RETURN_PROPERTIES: Final = [ID_PROPERTY, TEXT_PROPERTY, META_PROPERTY]


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    return value


def encode_metadata(metadata: Mapping[str, Any]) -> str:
    """Normalised metadata (:func:`strataml.vectors.batch.prepare_batch`) as the ``sm_meta``
    JSON text."""
    return json.dumps(
        {k: _encode_value(v) for k, v in metadata.items()},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def decode_metadata(text: str | None) -> dict[str, Any]:
    """The metadata stored in ``sm_meta`` (datetimes aware UTC, dates as ``date``)."""
    if not text:
        return {}
    raw = json.loads(text)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            if "t" in value:
                out[key] = dt.datetime.fromisoformat(value["t"])
            else:
                out[key] = dt.date.fromisoformat(value["d"])
        else:
            out[key] = value
    return out


def _filter_value(value: Any, ftype: FieldType) -> Any:
    """A metadata value in the form of its typed property."""
    if ftype in (FieldType.INT, FieldType.FLOAT):
        return float(value)
    if ftype is FieldType.DATE and not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if ftype is FieldType.LIST:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def object_properties(
    record_id: str,
    text: str | None,
    metadata: Mapping[str, Any],
    fields: Mapping[str, FieldType],
) -> dict[str, Any]:
    """The properties of the Weaviate object of one record."""
    props: dict[str, Any] = {ID_PROPERTY: record_id, META_PROPERTY: encode_metadata(metadata)}
    if text is not None:
        props[TEXT_PROPERTY] = text
    for key, value in metadata.items():
        props[property_name(key)] = _filter_value(value, fields[key])
    return props


def object_vector(vector: Any) -> list[float] | None:
    """The record's vector from a Weaviate object's ``vector`` (named ``default``)."""
    if isinstance(vector, Mapping):
        vector = vector.get(VECTOR)
    if vector is None:
        return None
    return [float(x) for x in vector]


def to_record(obj: Any, tenant: str | None, include_vectors: bool) -> VectorRecord:
    """A :class:`VectorRecord` from a Weaviate object."""
    props = obj.properties
    return VectorRecord.model_construct(
        id=str(props[ID_PROPERTY]),
        vector=object_vector(obj.vector) if include_vectors else None,
        text=props.get(TEXT_PROPERTY),
        metadata=decode_metadata(props.get(META_PROPERTY)),
        tenant=tenant,
    )


def dense_distance(metric: Metric, weaviate_distance: float) -> float:
    """The strataml distance of a Weaviate ``distance`` (``l2-squared`` -> Euclidean)."""
    if metric == "l2":
        return math.sqrt(max(0.0, weaviate_distance))
    return weaviate_distance


def dense_hit(obj: Any, metric: Metric, tenant: str | None, include_vectors: bool) -> Hit:
    distance = dense_distance(metric, float(obj.metadata.distance))
    return _hit(
        obj,
        tenant,
        include_vectors,
        score=score_from_distance(metric, distance),
        distance=distance,
        metric=metric,
    )


def keyword_hit_scores(bm25: float) -> tuple[float, float]:
    """``(score, keyword_score)`` of a BM25 score."""
    raw = max(0.0, float(bm25))
    return score_from_bm25(raw), raw


def keyword_hit(obj: Any, tenant: str | None, include_vectors: bool) -> Hit:
    score, raw = keyword_hit_scores(obj.metadata.score or 0.0)
    return _hit(obj, tenant, include_vectors, score=score, keyword_score=raw)


def hybrid_hit(obj: Any, tenant: str | None, include_vectors: bool) -> Hit:
    score = min(1.0, max(0.0, float(obj.metadata.score or 0.0)))
    return _hit(obj, tenant, include_vectors, score=score)


def _hit(obj: Any, tenant: str | None, include_vectors: bool, **scores: Any) -> Hit:
    props = obj.properties
    return Hit(
        id=str(props[ID_PROPERTY]),
        text=props.get(TEXT_PROPERTY),
        metadata=decode_metadata(props.get(META_PROPERTY)),
        tenant=tenant,
        vector=object_vector(obj.vector) if include_vectors else None,
        **scores,
    )


def minmax(values: Sequence[float]) -> list[float]:
    """Values mapped linearly onto ``[0, 1]`` (all equal -> 1.0), as relative-score fusion
    normalises one leg."""
    if not values:
        return []
    arr = np.asarray(values, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return [1.0] * len(values)
    return [float(x) for x in (arr - lo) / (hi - lo)]
