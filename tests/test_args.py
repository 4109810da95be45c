"""strataml._args.as_list: the one check of "a list of ..." arguments."""

from __future__ import annotations

from typing import Any

import pytest

from strataml._args import as_list, utf8_error
from strataml.errors import InvalidInput


class Thing:
    pass


@pytest.mark.parametrize(
    "values",
    ["ab", b"ab", {"a": 1}, Thing(), 5, None],
    ids=["str", "bytes", "mapping", "one_item", "int", "none"],
)
def test_a_single_value_or_a_non_iterable_is_refused(values: Any) -> None:
    with pytest.raises(InvalidInput, match="things is a list of Things, got"):
        as_list(values, "things", "Things", kind=Thing)


def test_any_iterable_is_read_once_into_a_list() -> None:
    a, b = Thing(), Thing()
    assert as_list((t for t in (a, b)), "things", "Things", kind=Thing) == [a, b]
    assert as_list((1, 2), "numbers", "ints") == [1, 2]


def test_items_of_another_kind_are_named() -> None:
    with pytest.raises(InvalidInput, match=r"got items \['1: str'\]"):
        as_list([Thing(), "x"], "things", "Things", kind=Thing)


def test_single_adds_types_that_are_one_value() -> None:
    with pytest.raises(InvalidInput, match="got a single Thing"):
        as_list(Thing(), "records", "records", single=(Thing,))
    assert as_list([Thing()], "records", "records", single=(Thing,))[0].__class__ is Thing


def test_utf8_error_names_a_lone_surrogate_and_nothing_else() -> None:
    assert utf8_error("plain") is None
    assert utf8_error("naïve ✓") is None
    bad = utf8_error("a\ud800b")
    assert bad is not None and bad.start == 1
