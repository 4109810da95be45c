"""Collections, field types and aliases: what a Milvus deployment holds besides the records.

* **Collection info** (dimension, metric, tenancy, the user's metadata, a random incarnation
  token) is written once, in the Milvus collection's description, when it is created: one
  atomic call, so a collection either exists complete or not at all.
* **Field types** (:class:`~strataml.filters.FieldType` per metadata field) change as records
  arrive, so they live in the **registry**, a small collection of this store's prefix
  (:func:`strataml_milvus.names.registry_name`), one row per collection keyed by name and
  tagged with the collection's token (a row left by a dropped collection of the same name is
  ignored). Writers merge their new fields into it before writing records.
* **Aliases** are Milvus's own (``create_alias``/``alter_alias``: atomic, resolved by the
  server) on a server. Milvus Lite does not implement aliases, so there the registry holds one
  row per alias instead (an upsert of one row: atomic too).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from strataml.errors import InvalidInput, LimitExceeded, NotFound, SchemaError
from strataml.filters import FieldType
from strataml.models import Metric
from strataml_milvus.codec import temporal_fields
from strataml_milvus.errors import milvus_call
from strataml_milvus.names import PK_MAX_LENGTH, TKEY_MAX_LENGTH, registry_name

__all__ = [
    "MILVUS_METRICS",
    "CollectionMeta",
    "Registry",
    "build_index_params",
    "build_schema",
    "describe_info",
    "meta_from_description",
]

FORMAT: Final = 1
MILVUS_METRICS: Final[dict[str, str]] = {"cosine": "COSINE", "l2": "L2", "dot": "IP"}
_DESCRIPTION_MAX: Final = 60_000
_REGISTRY_KEY_MAX: Final = 1024


@dataclass
class CollectionMeta:
    """What the store knows about one collection (cached; ``fields`` refreshed periodically)."""

    name: str
    milvus_name: str
    dim: int
    metric: Metric
    multi_tenant: bool
    metadata: dict[str, Any]
    token: str
    partition_key: bool
    fields: dict[str, FieldType] = field(default_factory=dict)
    fields_at: float = 0.0  # time.monotonic() of the last registry read
    temporal: frozenset[str] = frozenset()  # the timestamp/date fields among ``fields``
    lock: threading.RLock = field(default_factory=threading.RLock)

    def set_fields(self, fields: Mapping[str, FieldType]) -> None:
        """Replace the known field types (read from or written to the registry just now)."""
        self.fields = dict(fields)
        self.temporal = temporal_fields(fields)
        self.fields_at = time.monotonic()


def describe_info(
    dim: int, metric: str, multi_tenant: bool, metadata: Mapping[str, Any], partition_key: bool
) -> str:
    """The collection description: the immutable collection info as JSON."""
    info = {
        "strataml": FORMAT,
        "token": uuid.uuid4().hex,
        "dim": dim,
        "metric": metric,
        "multi_tenant": multi_tenant,
        "partition_key": partition_key,
        "metadata": dict(metadata),
    }
    try:
        text = json.dumps(info, ensure_ascii=True, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"collection metadata must be JSON-serializable: {exc}") from exc
    if len(text) > _DESCRIPTION_MAX:
        raise LimitExceeded(
            f"collection metadata is {len(text)} bytes as JSON; at most {_DESCRIPTION_MAX} fit"
        )
    return text


def meta_from_description(name: str, milvus_name: str, desc: Mapping[str, Any]) -> CollectionMeta:
    """Read a collection's info from ``describe_collection`` output."""
    raw = desc.get("description") or ""
    try:
        info = json.loads(raw)
    except ValueError:
        info = None
    if not isinstance(info, dict) or info.get("strataml") != FORMAT:
        raise SchemaError(
            f"Milvus collection {milvus_name!r} was not created by strataml (no collection info "
            "in its description); use another collection_prefix"
        )
    metric = info["metric"]
    if metric not in MILVUS_METRICS:
        raise SchemaError(f"collection {name!r} has an unknown metric {metric!r}")
    return CollectionMeta(
        name=name,
        milvus_name=milvus_name,
        dim=int(info["dim"]),
        metric=metric,
        multi_tenant=bool(info["multi_tenant"]),
        metadata=dict(info.get("metadata") or {}),
        token=str(info["token"]),
        partition_key=bool(info.get("partition_key", False)),
    )


def build_schema(
    client: Any,
    *,
    dim: int,
    description: str,
    partition_key: bool,
    text_max_bytes: int,
    analyzer: Mapping[str, Any],
) -> Any:
    """The Milvus schema of a strataml collection (see :mod:`strataml_milvus.codec`)."""
    from pymilvus import DataType, Function, FunctionType  # type: ignore[import-untyped, unused-ignore]

    schema = client.create_schema(
        auto_id=False, enable_dynamic_field=False, description=description
    )
    schema.add_field("pk", DataType.VARCHAR, max_length=PK_MAX_LENGTH, is_primary=True)
    schema.add_field(
        "tkey", DataType.VARCHAR, max_length=TKEY_MAX_LENGTH, is_partition_key=partition_key
    )
    schema.add_field(
        "text",
        DataType.VARCHAR,
        max_length=text_max_bytes,
        enable_analyzer=True,
        analyzer_params=dict(analyzer),
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("has", DataType.JSON)
    schema.add_function(
        Function(
            name="text_bm25",
            function_type=FunctionType.BM25,
            input_field_names=["text"],
            output_field_names=["sparse"],
        )
    )
    return schema


def build_index_params(
    client: Any,
    *,
    metric: str,
    index_type: str,
    index_params: Mapping[str, Any],
    bm25_k1: float,
    bm25_b: float,
) -> Any:
    params = client.prepare_index_params()
    params.add_index(
        "vector",
        index_type=index_type,
        metric_type=MILVUS_METRICS[metric],
        params=dict(index_params),
    )
    params.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": bm25_k1, "bm25_b": bm25_b},
    )
    return params


# ------------------------------------------------------------------------------------ registry
class Registry:
    """The per-prefix registry collection (field types; aliases on Milvus Lite).

    Rows: ``key`` (``"f:<collection>"`` or ``"a:<alias>"``, strataml names, so plain literals),
    ``kind``, ``target`` (an alias's collection), ``token`` (the collection incarnation whose
    field types a row holds), ``info`` (JSON), ``v`` (a 2-d dummy vector: Milvus collections
    need one). Created on first write; reads of a missing registry find nothing.
    """

    def __init__(self, client: Any, prefix: str, *, timeout: float) -> None:
        self._client = client
        self.name = registry_name(prefix)
        self._timeout = timeout
        self._exists = False
        self._lock = threading.Lock()

    # -- housekeeping
    def exists(self) -> bool:
        if self._exists:
            return True
        with milvus_call("reading the strataml registry"):
            found = bool(self._client.has_collection(self.name, timeout=self._timeout))
        self._exists = found
        return found

    def ensure(self) -> None:
        if self.exists():
            return
        from pymilvus import DataType  # type: ignore[import-untyped, unused-ignore]

        with self._lock, milvus_call("creating the strataml registry"):
            if self._client.has_collection(self.name, timeout=self._timeout):
                self._exists = True
                return
            schema = self._client.create_schema(
                auto_id=False, enable_dynamic_field=False, description="strataml registry"
            )
            schema.add_field("key", DataType.VARCHAR, max_length=_REGISTRY_KEY_MAX, is_primary=True)
            schema.add_field("kind", DataType.VARCHAR, max_length=16)
            schema.add_field("target", DataType.VARCHAR, max_length=_REGISTRY_KEY_MAX)
            schema.add_field("token", DataType.VARCHAR, max_length=64)
            schema.add_field("info", DataType.JSON)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
            index = self._client.prepare_index_params()
            index.add_index("v", index_type="FLAT", metric_type="L2")
            try:
                self._client.create_collection(
                    self.name, schema=schema, consistency_level="Strong", timeout=self._timeout
                )
            except Exception as exc:
                if "already exist" not in str(exc).lower():
                    raise
            self._client.create_index(self.name, index, timeout=self._timeout, sync=False)
            self._client.load_collection(self.name, timeout=self._timeout)
            self._exists = True

    def _rows(self, expr: str, what: str) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        with milvus_call(what):
            rows = self._client.query(
                self.name,
                filter=expr,
                output_fields=["key", "kind", "target", "token", "info"],
                timeout=self._timeout,
            )
        return [dict(r) for r in rows]

    def _put(self, row: dict[str, Any], what: str) -> None:
        self.ensure()
        with milvus_call(what):
            self._client.upsert(self.name, [{**row, "v": [0.0, 0.0]}], timeout=self._timeout)

    def _delete(self, key: str, what: str) -> None:
        if not self.exists():
            return
        with milvus_call(what):
            self._client.delete(self.name, filter=f'key == "{key}"', timeout=self._timeout)

    # -- field types
    def fields(self, name: str, token: str) -> dict[str, FieldType]:
        """The field types registered for collection ``name`` (incarnation ``token``)."""
        for row in self._rows(f'key == "f:{name}"', f"reading the field types of {name!r}"):
            if row.get("token") != token:
                return {}
            info = row.get("info") or {}
            return {k: FieldType(v) for k, v in dict(info).items()}
        return {}

    def put_fields(self, name: str, token: str, fields: Mapping[str, FieldType]) -> None:
        info = {k: str(v) for k, v in sorted(fields.items())}
        row = {"key": f"f:{name}", "kind": "fields", "target": name, "token": token, "info": info}
        self._put(row, f"registering the field types of {name!r}")

    def drop_fields(self, name: str) -> None:
        self._delete(f"f:{name}", f"forgetting the field types of {name!r}")

    # -- emulated aliases
    def alias(self, alias: str) -> str | None:
        rows = self._rows(f'key == "a:{alias}"', f"resolving alias {alias!r}")
        return str(rows[0]["target"]) if rows else None

    def aliases(self) -> dict[str, str]:
        rows = self._rows('kind == "alias"', "listing aliases")
        return {str(r["key"])[2:]: str(r["target"]) for r in rows}

    def put_alias(self, alias: str, target: str) -> None:
        row = {"key": f"a:{alias}", "kind": "alias", "target": target, "token": "", "info": {}}
        self._put(row, f"pointing alias {alias!r} at {target!r}")

    def drop_alias(self, alias: str) -> None:
        self._delete(f"a:{alias}", f"dropping alias {alias!r}")


def check_dim(dim: Any) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 32_768:
        raise InvalidInput(f"dim must be an integer in [1, 32768] (Milvus's limit), got {dim!r}")
    return dim


def not_found(name: str) -> NotFound:
    return NotFound(f"collection {name!r} does not exist; create it first")
