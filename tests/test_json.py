"""Strict JSON for ingested records: NaN/inf anywhere and non-JSON values are errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strataml._json import _find_non_finite, _has_non_finite, dumps_record, loads
from strataml.errors import InvalidInput


def test_round_trip_and_dates():
    rec = {"a": 1, "b": [1.5, None], "c": {"d": "x"}, "t": dt.datetime(2024, 1, 2, 3, 4, 5)}
    back = loads(dumps_record(rec))
    assert back == {"a": 1, "b": [1.5, None], "c": {"d": "x"}, "t": "2024-01-02T03:04:05+00:00"}


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        [1.0, float("-inf")],
        {"x": {"y": float("nan")}},
        {float("nan")},
        np.float32("nan"),
        np.array([1.0, np.nan]),
    ],
)
def test_non_finite_anywhere_is_rejected(value: Any):
    with pytest.raises(InvalidInput, match="NaN and infinity"):
        dumps_record({"v": value})


def test_non_finite_inside_a_dataclass_is_rejected():
    @dataclasses.dataclass
    class P:
        x: float

    with pytest.raises(InvalidInput, match=r"record\.v\.x"):
        dumps_record({"v": P(float("nan"))})


@pytest.mark.parametrize("record", [[1], "x", None, {"a": object()}, {"a": 2**70}])
def test_non_json_is_rejected(record: Any):
    with pytest.raises(InvalidInput):
        dumps_record(record)


def test_real_nulls_are_fine():
    assert loads(dumps_record({"a": None, "b": [None]})) == {"a": None, "b": [None]}


_floats = st.floats(allow_nan=True, allow_infinity=True)
_nested = st.recursive(
    st.none() | st.integers() | st.text(max_size=3) | st.booleans() | _floats,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.frozensets(_floats, max_size=2)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)


def _reference_non_finite(obj: Any) -> bool:
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, dict):
        return any(_reference_non_finite(v) for v in obj.values())
    if isinstance(obj, list | tuple | frozenset):
        return any(_reference_non_finite(v) for v in obj)
    return False


@settings(max_examples=300, deadline=None)
@given(value=_nested)
def test_nan_scan_finds_exactly_the_non_finite(value: Any) -> None:
    found = _has_non_finite({"v": value})
    assert found == _reference_non_finite(value)
    assert (_find_non_finite({"v": value}, "record") is not None) == found
