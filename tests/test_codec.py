"""The online value codec shared by every online store."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest

from strataml.codec import decode_row, decode_value, encode_key, encode_row, encode_value
from strataml.errors import InvalidInput


def test_types_round_trip():
    row = {
        "none": None,
        "t": True,
        "i": -(2**63),
        "u": 2**64 - 1,
        "f": 1.5,
        "nan": float("nan"),
        "s": "ünï",
        "b": b"\x00\xff",
        "l": [1, "a", None],
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5),
    }
    back = decode_row(encode_row(row))
    assert math.isnan(back.pop("nan"))
    assert back["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    back.pop("ts")
    assert back == {k: v for k, v in row.items() if k not in ("nan", "ts")}


def test_decimals_from_sql_engines():
    back = decode_row(encode_row({"n": Decimal(12), "d": Decimal("0.25"), "x": Decimal("NaN")}))
    assert back["n"] == 12 and isinstance(back["n"], int)
    assert back["d"] == 0.25 and isinstance(back["d"], float)
    assert math.isnan(back["x"])


def test_keys_distinguish_types_and_reject_bad_values():
    assert encode_key([42]) != encode_key(["42"])
    assert decode_value(encode_key(["a", 1])) == ["a", 1]
    for bad in ([1.5], [True], [None], [2**64]):
        with pytest.raises(InvalidInput):
            encode_key(bad)


def test_unencodable_values_raise_invalid_input():
    with pytest.raises(InvalidInput):
        encode_value(object())
    with pytest.raises(InvalidInput):
        encode_row({"a": {1, object()}})
