"""Time parsing shared by every store: naive is UTC, fast paths agree with the reference."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from strataml._time import event_micros, parse_event_time, to_micros
from strataml.errors import InvalidInput

_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
_datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)
) | st.datetimes(
    min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=_offsets
)
_event_times = (
    _datetimes
    | _datetimes.map(lambda d: d.isoformat())
    | _datetimes.map(lambda d: d.isoformat().replace("+00:00", "Z"))
    | _datetimes.map(lambda d: d.isoformat(timespec="milliseconds"))
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(min_value=-6e10, max_value=2.5e11, allow_nan=False)
    | st.text(max_size=30)
    | st.dates()
)


def _spec_micros(value: Any) -> int | type[InvalidInput]:
    try:
        return to_micros(parse_event_time(value, "v"))
    except InvalidInput:
        return InvalidInput


def _fast_micros(value: Any) -> int | type[InvalidInput]:
    try:
        return event_micros(value, "v")
    except InvalidInput:
        return InvalidInput


@settings(max_examples=400, deadline=None)
@given(value=_event_times)
def test_event_time_fast_path_matches_parse_event_time(value: Any) -> None:
    assert _fast_micros(value) == _spec_micros(value)
