"""Validation shared by every vector adapter: records in, a checked columnar batch out.

:func:`prepare_batch` turns what callers pass to ``upsert`` (an iterable of
:class:`~strataml.models.VectorRecord` objects or plain mappings with the same keys) into a
:class:`VectorBatch`: ids, a ``float32`` matrix, texts, normalised metadata and tenants. The whole
batch is validated before an adapter writes anything, so a bad record anywhere means nothing is
written.

Rules
-----
* **ids** are non-empty strings (ints are accepted and converted, bools are not).
* **vectors** have exactly the collection's dimension (:class:`DimensionMismatch` otherwise) and
  are finite once stored as ``float32`` (NaN, inf and values beyond the ``float32`` range raise
  :class:`InvalidInput`). They hold numbers: text, bools and ``None``, which NumPy would read as
  numbers, raise :class:`InvalidInput` (in a batch of plain lists, text after a number in the
  same list is not looked for: checking every element would double the batch's cost).
* **tenant** is a non-empty string on every record of a multi-tenant collection and absent on
  every record of a single-tenant one (:class:`InvalidInput` otherwise).
* **metadata** keys are identifiers (``[A-Za-z_][A-Za-z0-9_]*``, at most 64 characters), the
  field names the filter language can address. Values are scalars -- ``str``, ``int`` (64-bit),
  finite ``float``, ``bool``, ``datetime`` (naive means UTC; normalised to aware UTC), ``date``
  -- or lists of JSON scalars (``str``, ``int``, finite ``float``, ``bool``, ``None``). A value of
  ``None`` means the field is absent and is dropped. Nested mappings raise :class:`InvalidInput`.
  NumPy scalars are unwrapped (``datetime64`` as a ``date`` or a UTC ``datetime`` whatever its
  unit, NaT as ``None``).
* **field types** are inferred per field (:class:`~strataml.filters.FieldType`); ``int`` and
  ``float`` mix (the field becomes ``FLOAT``). A value whose type differs from the field's known
  type -- in the batch or in the collection -- raises :class:`InvalidInput`.
* **duplicate ids** within one batch (per tenant): the *last* record wins, as if the records had
  been upserted one after another. Only surviving records contribute field types.

Queries use :func:`query_vector`, :func:`check_k`, :func:`resolve_mode`, :func:`check_alpha`,
:func:`normalize_ids` and :func:`check_tenant`, so every adapter rejects the same bad calls the
same way. Scans build their records with :func:`stored_records` (stored rows
were validated when written: no second validation per row).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from strataml._args import as_list
from strataml._time import to_utc_naive
from strataml.capabilities import Capabilities
from strataml.errors import DimensionMismatch, InvalidInput, LimitExceeded, Unsupported
from strataml.filters import FieldType
from strataml.models import SearchMode, VectorRecord

__all__ = [
    "FIELD_NAME_RE",
    "VectorBatch",
    "check_alpha",
    "check_k",
    "check_tenant",
    "merge_field_type",
    "normalize_ids",
    "normalize_metadata",
    "prepare_batch",
    "query_vector",
    "resolve_mode",
    "stored_records",
]

#: Metadata keys: identifiers the filter language can address (no dots: values are not nested).
FIELD_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_RECORD_KEYS = frozenset({"id", "vector", "text", "metadata", "tenant"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NUMERIC = frozenset({FieldType.INT, FieldType.FLOAT})


@dataclass(frozen=True)
class VectorBatch:
    """A validated batch, one entry per surviving record (see the module docstring).

    ``field_types`` are the types of the fields present in this batch, already merged with the
    collection's known types; ``new_fields`` are the ones the collection did not know and
    ``widened`` the known ``INT`` fields that become ``FLOAT`` because the batch writes floats.
    """

    ids: list[str]
    vectors: npt.NDArray[np.float32]
    texts: list[str | None]
    metadata: list[dict[str, Any]]
    tenants: list[str | None]
    field_types: dict[str, FieldType] = field(default_factory=dict)
    new_fields: dict[str, FieldType] = field(default_factory=dict)
    widened: dict[str, FieldType] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


# ------------------------------------------------------------------------------------ values
def _numpy_datetime(value: np.datetime64) -> Any:
    """A ``datetime64`` as a ``date`` (calendar units), a naive ``datetime`` (time units,
    truncated to microseconds) or ``None`` (NaT); ``.item()`` gives an int for ns and finer."""
    unit = np.datetime_data(value.dtype)[0]
    out = value.item() if unit in ("Y", "M", "W", "D") else value.astype("datetime64[us]").item()
    if out is not None and not isinstance(out, dt.date):
        raise InvalidInput(f"{value!r} is outside the range of Python datetimes")
    return out


def _unwrap_numpy(value: Any) -> Any:
    if type(value).__module__ == "numpy":
        if isinstance(value, np.datetime64):
            return _numpy_datetime(value)
        if isinstance(value, np.timedelta64):
            return value  # not a metadata value (its .item() may be an int): refused as such
        if isinstance(value, np.ndarray) and value.dtype.kind in "mM":
            # as datetimes/timedeltas (refused in lists), not nanosecond ints
            return value.astype(f"{value.dtype.kind.lower()}8[us]").tolist()
        item = getattr(value, "item", None)
        if callable(item) and getattr(value, "ndim", 0) == 0:
            return item()
        tolist = getattr(value, "tolist", None)
        if callable(tolist):
            return tolist()
    return value


def _scalar_type(value: Any, where: str) -> tuple[Any, FieldType]:
    """Normalise one non-null scalar metadata value and return it with its field type."""
    if isinstance(value, bool):
        return value, FieldType.BOOL
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise InvalidInput(f"{where}: {value} does not fit in a 64-bit integer")
        return value, FieldType.INT
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{where}: {value!r} is not finite; use None for a missing value")
        return value, FieldType.FLOAT
    if isinstance(value, str):
        return value, FieldType.STRING
    if isinstance(value, dt.datetime):
        return to_utc_naive(value, where).replace(tzinfo=dt.UTC), FieldType.TIMESTAMP
    if isinstance(value, dt.date):
        return value, FieldType.DATE
    raise InvalidInput(
        f"{where}: {type(value).__name__} is not a metadata value; use str, int, float, bool, "
        "datetime, date or a list of JSON scalars"
    )


def _list_value(value: Sequence[Any], where: str) -> list[Any]:
    out: list[Any] = []
    for i, item in enumerate(value):
        item = _unwrap_numpy(item)
        here = f"{where}[{i}]"
        if item is None or isinstance(item, str | bool | int):
            if isinstance(item, int) and not isinstance(item, bool):
                _scalar_type(item, here)
            out.append(item)
        elif isinstance(item, float):
            _scalar_type(item, here)
            out.append(item)
        else:
            raise InvalidInput(
                f"{here}: lists hold JSON scalars (str, int, float, bool, None), "
                f"got {type(item).__name__}"
            )
    return out


_KEYS_OK: set[str] = set()  # metadata keys already validated (bounded, see below)


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not FIELD_NAME_RE.match(key):
        raise InvalidInput(
            f"{where}: invalid field name {key!r}; use letters, digits and '_' "
            "(starting with a letter or '_', at most 64 characters)"
        )
    if len(_KEYS_OK) < 65_536:
        _KEYS_OK.add(key)


def normalize_metadata(
    metadata: Any, where: str = "metadata"
) -> tuple[dict[str, Any], dict[str, FieldType]]:
    """Validate one record's metadata: ``(values without nulls, {field: type})``."""
    if metadata is None:
        return {}, {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput(f"{where}: metadata must be a mapping, got {type(metadata).__name__}")
    values: dict[str, Any] = {}
    types: dict[str, FieldType] = {}
    for key, value in metadata.items():
        if key not in _KEYS_OK:
            _check_key(key, where)
        kind = type(value)  # fast path for the common exact types
        if kind is str:
            values[key], types[key] = value, FieldType.STRING
        elif kind is int and _INT64_MIN <= value <= _INT64_MAX:
            values[key], types[key] = value, FieldType.INT
        elif kind is float and math.isfinite(value):
            values[key], types[key] = value, FieldType.FLOAT
        elif kind is bool:
            values[key], types[key] = value, FieldType.BOOL
        elif value is not None:
            _slow_value(key, value, values, types, f"{where}.{key}")
    return values, types


def _slow_value(
    key: str, raw: Any, values: dict[str, Any], types: dict[str, FieldType], here: str
) -> None:
    value = _unwrap_numpy(raw)
    if value is None:
        return
    if isinstance(value, Mapping):
        raise InvalidInput(
            f"{here}: nested objects are not supported; flatten them into separate fields"
        )
    if isinstance(value, list | tuple):
        values[key] = _list_value(value, here)
        types[key] = FieldType.LIST
        return
    values[key], types[key] = _scalar_type(value, here)


def merge_field_type(old: FieldType, new: FieldType) -> FieldType | None:
    """The type a field holding ``old`` values has after ``new`` ones arrive (``None``: clash)."""
    if old == new or old is FieldType.ANY:
        return old
    if old in _NUMERIC and new in _NUMERIC:
        return FieldType.FLOAT
    return None


# ------------------------------------------------------------------------------------ records
def _record_parts(rec: Any, where: str) -> tuple[Any, Any, Any, Any, Any]:
    if type(rec) is dict and rec.keys() <= _RECORD_KEYS:  # the common case, without ABC checks
        return (
            rec.get("id"),
            rec.get("vector"),
            rec.get("text"),
            rec.get("metadata"),
            rec.get("tenant"),
        )
    if isinstance(rec, VectorRecord):
        return rec.id, rec.vector, rec.text, rec.metadata, rec.tenant
    if isinstance(rec, Mapping):
        if not rec.keys() <= _RECORD_KEYS:
            unknown = set(rec) - _RECORD_KEYS
            raise InvalidInput(
                f"{where}: unknown keys {sorted(map(str, unknown))}; a record has "
                "id, vector, text, metadata and tenant (put other fields in metadata)"
            )
        return (
            rec.get("id"),
            rec.get("vector"),
            rec.get("text"),
            rec.get("metadata"),
            rec.get("tenant"),
        )
    raise InvalidInput(f"{where}: expected a VectorRecord or a mapping, got {type(rec).__name__}")


def _check_id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"{where}: ids are non-empty strings, got {value!r}")
    out = str(value)
    if not out:
        raise InvalidInput(f"{where}: ids are non-empty strings, got ''")
    return out


#: Values NumPy converts to numbers that are not numbers in a vector.
_NOT_NUMBERS = (str, bytes, bool, np.bool_, type(None))
_NOT_LISTED = (list, tuple, *_NOT_NUMBERS)


def _vector_row(value: Any, dim: int, where: str) -> npt.NDArray[np.float32]:
    if value is None:
        raise InvalidInput(f"{where}: the record has no vector")
    if isinstance(value, str | bytes):
        raise InvalidInput(
            f"{where}: a vector is a sequence of numbers, got {type(value).__name__}"
        )
    loose = np.asarray(value)
    if loose.dtype.kind in "bUS" or (
        loose.dtype.kind == "O" and any(isinstance(v, _NOT_NUMBERS) for v in loose.flat)
    ):
        # NumPy would read "1" as 1.0 and True as 1.0: a vector of those is a mistake
        raise InvalidInput(
            f"{where}: a vector is a sequence of numbers, not of text, bools or None"
        )
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: a vector is a sequence of numbers: {exc}") from exc
    if arr.ndim != 1:
        raise DimensionMismatch(
            f"{where}: expected a 1-D vector of {dim} numbers, got shape {arr.shape}"
        )
    if arr.shape[0] != dim:
        raise DimensionMismatch(f"{where}: vector has {arr.shape[0]} dimensions, expected {dim}")
    if not np.isfinite(arr).all():
        raise InvalidInput(f"{where}: the vector contains NaN or infinity")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise InvalidInput(f"{where}: the vector has values beyond the float32 range")
    return out


def _check_record_tenant(value: Any, multi_tenant: bool, where: str) -> str | None:
    if multi_tenant:
        if not isinstance(value, str) or not value:
            raise InvalidInput(
                f"{where}: this collection is multi-tenant; every record needs a non-empty "
                "string tenant"
            )
        return value
    if value is not None:
        raise InvalidInput(
            f"{where}: this collection is not multi-tenant; records must not carry a tenant "
            "(create the collection with multi_tenant=True to use tenants)"
        )
    return None


def _plausible_vector(value: Any, dim: int) -> bool:
    """Cheap per-record check; the whole matrix is converted and checked at once later."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.shape[0] == dim and value.dtype.kind in "fiu"
    if isinstance(value, list | tuple):
        # text or bools (which NumPy would read as numbers) are caught by their first element
        # here, and anywhere in the vector by _vector_row; checking every element of every
        # record would double the cost of a batch of lists
        return len(value) == dim and (not value or not isinstance(value[0], _NOT_LISTED))
    return False


def _matrix(raw: list[Any], dim: int, items: list[Any]) -> npt.NDArray[np.float32]:
    """Stack the vectors into ``float32``; find the offending record if that fails."""
    if not raw:
        return np.zeros((0, dim), dtype=np.float32)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.array(raw, dtype=np.float32)
        ok = out.ndim == 2 and out.shape[1] == dim
    except (TypeError, ValueError):
        ok = False
    if ok:
        finite = np.isfinite(out).all(axis=1)
        if finite.all():
            return out
        bad = int(np.flatnonzero(~finite)[0])
        _vector_row(raw[bad], dim, f"records[{bad}]")  # raises with the precise reason
        raise InvalidInput(f"records[{bad}]: the vector is not finite as float32")
    for i, value in enumerate(raw):
        _vector_row(value, dim, f"records[{i}]")
    raise InvalidInput("records: the vectors cannot be stacked into a matrix")  # unreachable


def prepare_batch(
    records: Iterable[VectorRecord | Mapping[str, Any]],
    *,
    dim: int,
    multi_tenant: bool,
    known_fields: Mapping[str, FieldType] | None = None,
    max_rows: int | None = None,
) -> VectorBatch:
    """Validate ``records`` completely and return them as a :class:`VectorBatch`.

    Raises :class:`InvalidInput` (bad ids, tenants, texts, metadata, type conflicts, NaN/inf),
    :class:`DimensionMismatch` (a vector of the wrong length) and :class:`LimitExceeded` (more
    than ``max_rows`` records). Nothing is written by this function.
    """
    items = as_list(
        records, "records", "records (mappings or VectorRecord)", single=(VectorRecord,)
    )
    if max_rows is not None and len(items) > max_rows:
        raise LimitExceeded(f"records: {len(items)} records in one batch; the limit is {max_rows}")
    known = dict(known_fields or {})

    slot: dict[tuple[str | None, str], int] = {}
    keep: list[int] = []  # index in ``items`` of the record each slot holds (last wins)
    rows: list[tuple[str, str | None, dict[str, Any], str | None]] = []
    row_types: list[dict[str, FieldType]] = []
    raw_vectors: list[Any] = []
    for i, rec in enumerate(items):
        rid, vec, text, meta, tenant = _record_parts(rec, f"records[{i}]")
        if type(rid) is not str or not rid:
            rid = _check_id(rid, f"records[{i}]")
        try:
            raw_vectors.append(vec if _plausible_vector(vec, dim) else _vector_row(vec, dim, ""))
            if text is not None and not isinstance(text, str):
                raise InvalidInput(f"text must be a string or None, got {type(text).__name__}")
            values, types = normalize_metadata(meta, "metadata")
            tenant = _check_record_tenant(tenant, multi_tenant, "")
        except InvalidInput as exc:
            raise type(exc)(
                f"records[{i}] (id {rid!r}){'' if str(exc).startswith(':') else ': '}{exc}"
            ) from exc
        key = (tenant, rid)
        if key in slot:
            keep[slot[key]] = i
            rows[slot[key]] = (rid, text, values, tenant)
            row_types[slot[key]] = types
        else:
            slot[key] = len(rows)
            keep.append(i)
            rows.append((rid, text, values, tenant))
            row_types.append(types)
    matrix = _matrix(raw_vectors, dim, items)

    batch_types: dict[str, FieldType] = {}
    for i, types in enumerate(row_types):
        for name, ftype in types.items():
            prior = batch_types.get(name) or known.get(name)
            merged = ftype if prior is None else merge_field_type(prior, ftype)
            if merged is None:
                raise InvalidInput(
                    f"record id {rows[i][0]!r}: metadata field {name!r} holds {prior} values, "
                    f"got a {ftype}; a field keeps the type it was first written with"
                )
            batch_types[name] = merged
    new_fields = {n: t for n, t in batch_types.items() if n not in known}
    widened = {n: t for n, t in batch_types.items() if n in known and known[n] != t}
    vectors = matrix if len(keep) == len(items) else matrix[keep]
    return VectorBatch(
        ids=[r[0] for r in rows],
        vectors=vectors,
        texts=[r[1] for r in rows],
        metadata=[r[2] for r in rows],
        tenants=[r[3] for r in rows],
        field_types=batch_types,
        new_fields=new_fields,
        widened=widened,
    )


# ------------------------------------------------------------------------------------ queries
def query_vector(vector: Any, dim: int) -> npt.NDArray[np.float32]:
    """A query vector as ``float32`` of length ``dim``.

    Raises :class:`DimensionMismatch` (wrong length) or :class:`InvalidInput` (not numbers,
    NaN/inf).
    """
    if (
        isinstance(vector, np.ndarray)
        and vector.ndim == 1
        and vector.shape[0] == dim
        and vector.dtype.kind == "f"
    ):
        with np.errstate(over="ignore"):
            out = vector.astype(np.float32, copy=False)
        if np.isfinite(out).all():
            return out
    return _vector_row(vector, dim, "query vector")


#: The largest ``k`` passed on to a backend: a larger one means "every match" just the same
#: (no collection holds 2**62 records), and hybrid candidate pools (2k) stay 64-bit integers.
MAX_K: Final = 2**62


def check_k(k: Any) -> int:
    """``k`` must be a positive integer (:class:`InvalidInput` otherwise); capped at
    :data:`MAX_K`."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k <= 0:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    return min(int(k), MAX_K)


def check_alpha(alpha: Any) -> float:
    """``alpha`` (the weight of the dense side in hybrid search) must be in ``[0, 1]``."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float):
        raise InvalidInput(f"alpha must be a number in [0, 1], got {alpha!r}")
    value = float(alpha)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise InvalidInput(f"alpha must be in [0, 1], got {alpha!r}")
    return value


def resolve_mode(
    vector: Any, text: Any, mode: Any, capabilities: Capabilities | None = None
) -> SearchMode:
    """The search mode of a call, checking that its inputs are there.

    Without ``mode``: vector only -> ``dense``, text only -> ``keyword``, both -> ``hybrid``.
    An explicit mode uses only its own inputs (``dense`` ignores ``text``, ``keyword`` ignores
    ``vector``). Empty or whitespace-only text counts as no text. Raises :class:`InvalidInput`
    when the mode's inputs are missing (or neither is given), and :class:`Unsupported` when
    ``capabilities`` lack the mode.
    """
    if text is not None and not isinstance(text, str):
        raise InvalidInput(f"text must be a string, got {type(text).__name__}")
    has_text = bool(text and text.strip())
    has_vector = vector is not None
    if mode is None:
        if has_vector and has_text:
            resolved: SearchMode = "hybrid"
        elif has_vector:
            resolved = "dense"
        elif has_text:
            resolved = "keyword"
        else:
            raise InvalidInput("search needs a vector, a non-empty text, or both")
    elif mode == "dense":
        if not has_vector:
            raise InvalidInput("dense search needs a vector")
        resolved = "dense"
    elif mode == "keyword":
        if not has_text:
            raise InvalidInput("keyword search needs a non-empty text")
        resolved = "keyword"
    elif mode == "hybrid":
        if not (has_vector and has_text):
            raise InvalidInput("hybrid search needs both a vector and a non-empty text")
        resolved = "hybrid"
    else:
        raise InvalidInput(f"unknown search mode {mode!r}; use 'dense', 'keyword' or 'hybrid'")
    if capabilities is not None and not capabilities.supports(resolved):
        raise Unsupported(f"this backend cannot run {resolved} search")
    return resolved


def normalize_ids(ids: Any) -> list[str]:
    """Ids for ``get``/``delete``: a sequence of non-empty strings (or ints), order kept,
    duplicates removed."""
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise InvalidInput(f"ids must be a list of strings, got {type(ids).__name__}")
    out: dict[str, None] = {}
    for i, value in enumerate(ids):
        out[_check_id(value, f"ids[{i}]")] = None
    return list(out)


def check_tenant(multi_tenant: bool, tenant: Any, collection: str) -> str | None:
    """A read/delete/count/search ``tenant=``: required on multi-tenant collections, forbidden
    on the others (:class:`InvalidInput`)."""
    if multi_tenant:
        if not isinstance(tenant, str) or not tenant:
            raise InvalidInput(
                f"collection {collection!r} is multi-tenant: pass tenant= (a non-empty string)"
            )
        return tenant
    if tenant is not None:
        raise InvalidInput(
            f"collection {collection!r} is not multi-tenant: do not pass tenant= "
            "(create it with multi_tenant=True to use tenants)"
        )
    return None


# -------------------------------------------------------------------------------------- scans
_record_new = object.__new__
_set = object.__setattr__
_FIELDS_SET: Final = frozenset(VectorRecord.model_fields)
# the fast path below does what ``model_construct`` does for this plain model (no aliases,
# defaults, private attributes or post-init); anything else falls back to model_construct
_PLAIN_RECORD: Final = (
    _FIELDS_SET == _RECORD_KEYS
    and not VectorRecord.__private_attributes__
    and VectorRecord.__pydantic_post_init__ is None
    and VectorRecord.model_config.get("extra") != "allow"
)


def stored_records(
    ids: Sequence[str],
    texts: Sequence[str | None] | None,
    metadata: Sequence[dict[str, Any]],
    tenants: Sequence[str | None] | None,
    vectors: Sequence[Any] | None,
) -> list[VectorRecord]:
    """:class:`VectorRecord` objects for rows read back from a store (already validated when
    they were written), without validating them again: scans of large collections spend
    most of their time building records otherwise. ``None`` for ``texts``, ``tenants`` or
    ``vectors`` means ``None`` on every record. The metadata dicts are used as they are."""
    n = len(ids)
    none = (None,) * n
    text_col = none if texts is None else texts
    tenant_col = none if tenants is None else tenants
    vector_col = none if vectors is None else vectors
    rows = zip(ids, vector_col, text_col, metadata, tenant_col, strict=True)
    if not _PLAIN_RECORD:  # pragma: no cover - a future VectorRecord with extras
        return [
            VectorRecord.model_construct(id=i, vector=v, text=t, metadata=m, tenant=tn)
            for i, v, t, m, tn in rows
        ]
    out: list[VectorRecord] = []
    append = out.append
    # every field is set, so pydantic never changes this set (it only adds field names to
    # it): the records of one call can share it
    fields_set = set(_FIELDS_SET)
    for i, v, t, m, tn in rows:
        rec = _record_new(VectorRecord)
        _set(rec, "__dict__", {"id": i, "vector": v, "text": t, "metadata": m, "tenant": tn})
        _set(rec, "__pydantic_fields_set__", fields_set)
        _set(rec, "__pydantic_extra__", None)
        _set(rec, "__pydantic_private__", None)
        append(rec)
    return out
