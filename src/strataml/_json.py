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


def _find_non_finite(obj: Any, path: str) -> str | None:
    if isinstance(obj, float) and not math.isfinite(obj):
        return path
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _find_non_finite(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found = _find_non_finite(v, f"{path}[{i}]")
            if found:
                return found
    return None


def dumps_record(record: Any, where: str = "record") -> bytes:
    """Serialise one record; :class:`InvalidInput` if it is not a JSON object of JSON values."""
    if not isinstance(record, Mapping):
        raise InvalidInput(
            f"{where}: expected a mapping (JSON object), got {type(record).__name__}"
        )
    try:
        out = orjson.dumps(record, default=_default, option=_OPTS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"{where}: not JSON-serialisable: {exc}") from exc
    # orjson writes NaN/inf as null; only look for them when a null is present at all
    if b"null" in out:
        bad = _find_non_finite(record, where)
        if bad:
            raise InvalidInput(f"{bad}: NaN and infinity are not JSON; use null or a number")
    return out


loads = orjson.loads
