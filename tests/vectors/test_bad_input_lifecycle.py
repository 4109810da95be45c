"""The embedding lifecycle on the embedded LanceDB store with hostile inputs: metadata and
filter values, blue/green arguments, recall probes and refresh documents that used to leak
non-strataml errors or write part of a refresh. Each case raises a strataml error and leaves
the store as it was."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from strataml.errors import FilterError, InvalidInput

#: The last hour of 9999 at UTC-5 is in the year 10000 at UTC: no Python datetime holds it.
PAST_THE_END = dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
BEFORE_THE_START = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))


@pytest.mark.parametrize("value", [PAST_THE_END, BEFORE_THE_START])
def test_a_datetime_outside_the_utc_range_is_invalid_input(lance: Any, value: dt.datetime):
    lance.create_collection("c", 3)
    lance.upsert(
        "c", [{"id": "a", "vector": [1, 0, 0], "metadata": {"ts": dt.datetime(2020, 1, 1)}}]
    )
    with pytest.raises(InvalidInput, match="outside the range"):
        lance.upsert("c", [{"id": "b", "vector": [1, 0, 0], "metadata": {"ts": value}}])
    assert lance.count("c") == 1
    for spec in ({"ts": {"$lt": value}}, {"ts": {"$gt": value.isoformat()}}):
        with pytest.raises(FilterError, match="outside the range"):
            lance.count("c", filter=spec)


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "zz", "text": "alpha \ud800 beta"},
        {"id": "z\udfff", "text": "alpha beta"},
        {"id": "zz", "text": "alpha beta", "metadata": {"tag": "\ud800"}},
        {"id": "zz", "text": "alpha beta", "metadata": {"tags": ["ok", "\ud800"]}},
    ],
)
def test_refresh_refuses_a_lone_surrogate_before_writing_anything(
    lance: Any, lsa: Any, helpers: Any, bad: dict[str, Any]
):
    # the store cannot encode it as UTF-8: the id leaked UnicodeEncodeError, the text and the
    # metadata failed in the last upsert batch after the earlier batches were written
    from strataml.vectors.refresh import refresh

    docs = [{"id": f"d{i}", "text": helpers.text(i, 30)} for i in range(6)]
    refresh(lance, "kb", docs[:2], lsa)
    before = helpers.snapshot(lance, "kb")
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        refresh(lance, "kb", [*docs, bad], lsa, batch_rows=2)
    assert helpers.snapshot(lance, "kb") == before
