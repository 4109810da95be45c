"""How a strataml collection is laid out in Weaviate, and how its shape is remembered.

A collection is one Weaviate collection (see :mod:`strataml_weaviate.names` for its name) with:

* one self-provided named vector ``default``: HNSW with the metric's distance (``cosine``,
  ``l2-squared``, ``dot``), no vectorizer;
* the record's properties ``sm_id`` (text, field tokenization: the strataml id), ``sm_text``
  (text, word tokenization, BM25-searchable only) and ``sm_meta`` (text, unindexed: the
  metadata exactly as written, see :mod:`strataml_weaviate.codec`);
* one property per metadata field, added the first time the field is written, typed by the
  field's :class:`~strataml.filters.FieldType`: string -> ``text`` (field tokenization),
  int/float -> ``number``, bool -> ``boolean``, timestamp/date -> ``date``, list -> ``text``
  (its JSON; only ``$exists`` filters it). Each property's description records the strataml
  type (``strataml:int`` ...);
* the inverted index with ``indexNullState`` (null filters), BM25 ``k1``/``b``, no stop words;
* multi-tenancy (``autoTenantCreation``, ``autoTenantActivation``) for multi-tenant collections.

The collection's *description* holds its strataml shape as JSON (:func:`describe_meta`): the
strataml name, dimension, metric, tenancy, free-form metadata and the field types; it is
rewritten when a field appears or widens from int to float. Field types are merged with the
properties on read (:func:`parse_meta`), so a lost concurrent description update still leaves
every field known (int/float and timestamp/date read as float and timestamp then).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from weaviate.classes.config import (
    Configure,
    DataType,
    Property,
    StopwordsPreset,
    Tokenization,
    VectorDistances,
)

from strataml.filters import FieldType
from strataml.models import Metric
from strataml_weaviate.names import (
    ID_PROPERTY,
    META_PROPERTY,
    TEXT_PROPERTY,
    field_of_property,
    property_name,
)

__all__ = [
    "DISTANCES",
    "VECTOR",
    "CollectionMeta",
    "IndexSettings",
    "base_properties",
    "create_arguments",
    "describe_meta",
    "field_property",
    "parse_meta",
]

#: The name of the collection's (only) vector.
VECTOR: Final = "default"
MARKER: Final = "strataml"
FORMAT: Final = 1
DISTANCES: Final[dict[str, VectorDistances]] = {
    "cosine": VectorDistances.COSINE,
    "l2": VectorDistances.L2_SQUARED,
    "dot": VectorDistances.DOT,
}
_DATA_TYPES: Final[dict[FieldType, DataType]] = {
    FieldType.STRING: DataType.TEXT,
    FieldType.INT: DataType.NUMBER,
    FieldType.FLOAT: DataType.NUMBER,
    FieldType.BOOL: DataType.BOOL,
    FieldType.TIMESTAMP: DataType.DATE,
    FieldType.DATE: DataType.DATE,
    FieldType.LIST: DataType.TEXT,
}
_FALLBACK: Final[dict[str, FieldType]] = {
    "text": FieldType.STRING,
    "number": FieldType.FLOAT,
    "boolean": FieldType.BOOL,
    "date": FieldType.TIMESTAMP,
}


@dataclass(frozen=True)
class IndexSettings:
    """Per-store index settings applied when a collection is created."""

    ef: int | None = None
    ef_construction: int = 128
    max_connections: int = 32
    bm25_k1: float = 1.2
    bm25_b: float = 0.75


@dataclass(frozen=True)
class CollectionMeta:
    """A collection's strataml shape (``cls``: its Weaviate name)."""

    name: str
    cls: str
    dim: int
    metric: Metric
    multi_tenant: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, FieldType] = field(default_factory=dict)


def describe_meta(meta: CollectionMeta) -> str:
    """The collection description holding ``meta``."""
    return json.dumps(
        {
            MARKER: FORMAT,
            "name": meta.name,
            "dim": meta.dim,
            "metric": meta.metric,
            "multi_tenant": meta.multi_tenant,
            "metadata": meta.metadata,
            "fields": {k: str(v) for k, v in sorted(meta.fields.items())},
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def parse_meta(
    cls: str, description: str | None, properties: Sequence[tuple[str, str, str | None]]
) -> CollectionMeta | None:
    """The shape stored in a collection's description, with field types merged from its
    ``(name, data_type, description)`` properties; ``None`` if it is not a strataml
    collection."""
    try:
        raw = json.loads(description or "")
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get(MARKER) != FORMAT:
        return None
    fields: dict[str, FieldType] = {}
    for k, v in (raw.get("fields") or {}).items():
        try:
            fields[str(k)] = FieldType(v)
        except ValueError:
            continue
    for prop, data_type, prop_description in properties:
        name = field_of_property(prop)
        if name is None or name in fields:
            continue
        ftype = _type_of_description(prop_description) or _FALLBACK.get(str(data_type))
        if ftype is not None:
            fields[name] = ftype
    metric = raw.get("metric")
    if metric not in DISTANCES:
        return None
    return CollectionMeta(
        name=str(raw["name"]),
        cls=cls,
        dim=int(raw["dim"]),
        metric=metric,
        multi_tenant=bool(raw.get("multi_tenant")),
        metadata=dict(raw.get("metadata") or {}),
        fields=fields,
    )


def _type_of_description(text: str | None) -> FieldType | None:
    if text and text.startswith(f"{MARKER}:"):
        try:
            return FieldType(text.split(":", 1)[1])
        except ValueError:
            return None
    return None


def field_property(name: str, ftype: FieldType) -> Property:
    """The property of metadata field ``name`` of type ``ftype``."""
    data_type = _DATA_TYPES[ftype]
    text = data_type is DataType.TEXT
    return Property(
        name=property_name(name),
        data_type=data_type,
        description=f"{MARKER}:{ftype}",
        index_filterable=True,
        index_searchable=False,
        index_range_filters=data_type in (DataType.NUMBER, DataType.DATE),
        tokenization=Tokenization.FIELD if text else None,
        skip_vectorization=True,
    )


def base_properties() -> list[Property]:
    """The record's own properties: id, text (BM25) and exact metadata."""
    return [
        Property(
            name=ID_PROPERTY,
            data_type=DataType.TEXT,
            tokenization=Tokenization.FIELD,
            index_filterable=True,
            index_searchable=False,
            skip_vectorization=True,
        ),
        Property(
            name=TEXT_PROPERTY,
            data_type=DataType.TEXT,
            tokenization=Tokenization.WORD,
            index_filterable=False,
            index_searchable=True,
            skip_vectorization=True,
        ),
        Property(
            name=META_PROPERTY,
            data_type=DataType.TEXT,
            index_filterable=False,
            index_searchable=False,
            skip_vectorization=True,
        ),
    ]


def create_arguments(meta: CollectionMeta, settings: IndexSettings) -> dict[str, Any]:
    """Keyword arguments of ``client.collections.create`` for ``meta``."""
    index = Configure.VectorIndex.hnsw(
        distance_metric=DISTANCES[meta.metric],
        ef=settings.ef,
        ef_construction=settings.ef_construction,
        max_connections=settings.max_connections,
    )
    args: dict[str, Any] = {
        "name": meta.cls,
        "description": describe_meta(meta),
        "vector_config": Configure.Vectors.self_provided(name=VECTOR, vector_index_config=index),
        "properties": base_properties()
        + [field_property(k, v) for k, v in sorted(meta.fields.items())],
        "inverted_index_config": Configure.inverted_index(
            bm25_k1=settings.bm25_k1,
            bm25_b=settings.bm25_b,
            index_null_state=True,
            stopwords_preset=StopwordsPreset.NONE,
        ),
    }
    if meta.multi_tenant:
        args["multi_tenancy_config"] = Configure.multi_tenancy(
            enabled=True, auto_tenant_creation=True, auto_tenant_activation=True
        )
    return args


def property_rows(properties: Sequence[Any]) -> list[tuple[str, str, str | None]]:
    """``(name, data_type, description)`` of Weaviate property configs."""
    out: list[tuple[str, str, str | None]] = []
    for p in properties:
        data_type = getattr(p, "data_type", "")
        out.append((str(p.name), str(getattr(data_type, "value", data_type)), p.description))
    return out


def merged_fields(meta: CollectionMeta, types: Mapping[str, FieldType]) -> CollectionMeta:
    """``meta`` with the field types ``types`` added or replaced."""
    return CollectionMeta(
        name=meta.name,
        cls=meta.cls,
        dim=meta.dim,
        metric=meta.metric,
        multi_tenant=meta.multi_tenant,
        metadata=meta.metadata,
        fields={**meta.fields, **types},
    )
