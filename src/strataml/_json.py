"""Strict, fast JSON for records: orjson, but NaN/inf and unknown types are errors, not nulls."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import orjson

from strataml.errors import InvalidInput

_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    if isinstance(obj, dt.date):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


_SCALARS = frozenset({str, int, bool, type(None)})


def _has_non_finite(obj: Any) -> bool:
    """Whether ``obj`` holds a NaN/infinity anywhere (mappings, sequences, sets, NumPy values,
    dataclasses: orjson writes all of them as null). Builds no paths: the common case."""
    t = type(obj)
    items: Any
    if t is dict or isinstance(obj, Mapping):
        items = obj.values()
    elif t is list or t is tuple or isinstance(obj, list | tuple | set | frozenset):
        items = obj
    elif isinstance(obj, float):
        return not math.isfinite(obj)
    elif t.__module__ == "numpy" and hasattr(obj, "tolist"):
        return _has_non_finite(obj.tolist())
    elif hasattr(obj, "__dataclass_fields__"):
        items = [getattr(obj, f) for f in obj.__dataclass_fields__]
    else:
        return False
    for v in items:
        tv = type(v)
        if tv in _SCALARS:
            continue
        if tv is float:
            if not math.isfinite(v):
                return True
        elif _has_non_finite(v):
            return True
    return False


def _find_non_finite(obj: Any, path: str) -> str | None:
    """Path of the first NaN/infinity (only called once one is known to exist)."""
    if isinstance(obj, float):
        return path if not math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _find_non_finite(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(obj, list | tuple | set | frozenset):
        for i, v in enumerate(obj):
            found = _find_non_finite(v, f"{path}[{i}]")
            if found:
                return found
    elif type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        return _find_non_finite(obj.tolist(), path)
    elif hasattr(obj, "__dataclass_fields__"):
        for f in obj.__dataclass_fields__:
            found = _find_non_finite(getattr(obj, f), f"{path}.{f}")
            if found:
                return found
    return None


def dumps_record(record: Any, where: str = "record") -> bytes:
    """Serialise one record; :class:`InvalidInput` if it is not a JSON object of JSON values."""
    if type(record) is not dict and not isinstance(record, Mapping):
        raise InvalidInput(
            f"{where}: expected a mapping (JSON object), got {type(record).__name__}"
        )
    try:
        out = orjson.dumps(record, default=_default, option=_OPTS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"{where}: not JSON-serialisable: {exc}") from exc
    # orjson writes NaN/inf as null; only look for them when a null is present at all
    if b"null" in out and _has_non_finite(record):
        bad = _find_non_finite(record, where) or where
        raise InvalidInput(f"{bad}: NaN and infinity are not JSON; use null or a number")
    return out


loads = orjson.loads
