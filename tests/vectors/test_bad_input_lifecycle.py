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


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_recall": None}, "min_recall"),
        ({"min_recall": "0.5"}, "min_recall"),
        ({"min_recall": float("nan")}, "min_recall"),
        ({"count_tolerance": None}, "count_tolerance"),
        ({"count_tolerance": float("nan")}, "count_tolerance"),
        ({"expected_count": "12"}, "expected_count"),
        ({"expected_count": -1}, "expected_count"),
        ({"k": "3"}, "got '3'"),
        ({"k": -1}, "got -1"),
        ({"golden": "refund policy"}, "golden"),
        ({"golden": [{"text": "refund policy"}]}, "golden"),
        ({"golden": [None]}, "golden"),
        ({"golden": ["refund policy"]}, "golden"),
    ],
)
def test_validate_refuses_bad_arguments_with_invalid_input(
    lance: Any, lsa: Any, helpers: Any, kwargs: dict[str, Any], match: str
):
    # each leaked TypeError/AttributeError, or (k) named k*4 as the bad value
    from strataml.vectors import bluegreen as bg

    staged = bg.stage(lance, "docs", [{"id": "d0", "text": helpers.text(0, 30)}], lsa)
    with pytest.raises(InvalidInput, match=match):
        bg.validate(lance, "docs", staged, embedder=lsa, **kwargs)
    assert bg.live(lance, "docs") is None


def test_validate_refuses_relevant_documents_given_as_one_string(
    lance: Any, lsa: Any, helpers: Any
):
    # relevant="d1" was read as the documents {"d", "1"}: recall 0 for a right answer
    from strataml.vectors import bluegreen as bg

    staged = bg.stage(lance, "docs", [{"id": "d1", "text": helpers.text(1, 30)}], lsa)
    query = bg.GoldenQuery(helpers.text(1, 30), relevant="d1")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="relevant"):
        bg.validate(lance, "docs", staged, golden=[query], embedder=lsa)
    ok = bg.GoldenQuery(helpers.text(1, 30), relevant=("d1",))
    assert bg.validate(lance, "docs", staged, golden=[ok], embedder=lsa).recall == 1.0


def test_recall_probe_refuses_a_negative_seed(lance: Any) -> None:
    """seed=-1 leaked NumPy's ValueError from default_rng."""
    from strataml.vectors.health import recall_probe

    lance.create_collection("c", 2, "l2")
    lance.upsert("c", [{"id": "a", "vector": [1.0, 0.0]}])
    with pytest.raises(InvalidInput, match="seed"):
        recall_probe(lance, "c", seed=-1)
