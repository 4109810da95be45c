"""Contract tests for :class:`~strataml.protocols.OnlineStore` and
:class:`~strataml.protocols.AsyncOnlineStore`, written from the protocol docstrings.

Provide an ``online_store`` fixture yielding an empty, isolated store. The async suite uses
``async_online_store``, which by default wraps ``online_store`` in
:class:`strataml.aio.AsyncOnlineAdapter`; adapters with a native asyncio client override it.
The tests never close the store (it may be shared by a whole stack) and drive coroutines with
:func:`asyncio.run` (no pytest-asyncio needed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.aio import AsyncOnlineAdapter
from strataml.capabilities import Capabilities
from strataml.errors import InvalidInput, LimitExceeded, NotFound, SchemaError, StrataError
from strataml.protocols.online import AsyncOnlineStore, OnlineStore
from strataml.testing._base import ContractBase, raises_strata

__all__ = [
    "AsyncOnlineStoreTests",
    "OnlineDeleteTests",
    "OnlineErrorTests",
    "OnlineProtocolTests",
    "OnlineReadTests",
    "OnlineStoreTests",
    "OnlineTTLTests",
    "OnlineValueTests",
    "OnlineViewTests",
    "OnlineWriteTests",
    "same_value",
]

T = TypeVar("T")
UTC = dt.UTC
NAN = float("nan")
INF = float("inf")
_T0 = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


# ------------------------------------------------------------------------------------ helpers
def same_value(got: Any, want: Any) -> bool:
    """Type-strict equality: ``True`` is not ``1``, NaN equals NaN, ``-0.0`` is not ``0.0``,
    datetimes must come back timezone-aware UTC."""
    if type(got) is not type(want):
        return False
    if isinstance(want, float):
        if math.isnan(want):
            return math.isnan(got)
        return bool(got == want and math.copysign(1.0, got) == math.copysign(1.0, want))
    if isinstance(want, dt.datetime):
        return bool(got == want and got.tzinfo is not None and got.utcoffset() == dt.timedelta(0))
    if isinstance(want, list):
        return len(got) == len(want) and all(
            same_value(g, w) for g, w in zip(got, want, strict=True)
        )
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(same_value(got[k], want[k]) for k in want)
    return bool(got == want)


def _expected(value: Any) -> Any:
    """What a written value reads back as: datetimes aware UTC (naive ones taken as UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, list):
        return [_expected(v) for v in value]
    return value


def _assert_row(got: Any, want: Mapping[str, Any]) -> None:
    expected = {k: _expected(v) for k, v in want.items()}
    assert isinstance(got, dict), f"expected a row {expected!r}, got {got!r}"
    assert same_value(got, expected), f"read back {got!r}, expected {expected!r}"


#: Documented value types, each with what must be read back.
VALUE_SAMPLES: dict[str, tuple[Any, Any]] = {
    "none": (None, None),
    "bool_true": (True, True),
    "bool_false": (False, False),
    "int_zero": (0, 0),
    "int_negative": (-7, -7),
    "int64_max": (2**63 - 1, 2**63 - 1),
    "int64_min": (-(2**63), -(2**63)),
    "float": (1.5, 1.5),
    "float_nan": (NAN, NAN),
    "float_negative_zero": (-0.0, -0.0),
    "float_inf": (INF, INF),
    "float_negative_inf": (-INF, -INF),
    "float_max": (1.7976931348623157e308, 1.7976931348623157e308),
    "float_subnormal": (5e-324, 5e-324),
    "float_not_float32": (0.1, 0.1),
    "str_empty": ("", ""),
    "str_unicode": ("héllo wörld ✓ 日本語 🚀", "héllo wörld ✓ 日本語 🚀"),
    "str_with_nul": ("a\x00b", "a\x00b"),
    "bytes_empty": (b"", b""),
    "bytes_nul": (b"\x00", b"\x00"),
    "bytes_all": (bytes(range(256)), bytes(range(256))),
    "datetime_utc": (_T0, _T0),
    "datetime_naive_is_utc": (_T0.replace(tzinfo=None), _T0),
    "datetime_offset": (_T0.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30))), _T0),
    "datetime_pre_epoch": (
        dt.datetime(1969, 7, 20, 20, 17, 40, 500000, tzinfo=UTC),
        dt.datetime(1969, 7, 20, 20, 17, 40, 500000, tzinfo=UTC),
    ),
    "list_empty": ([], []),
    "list_ints": ([1, -2, 2**62], [1, -2, 2**62]),
    "list_floats": ([0.5, NAN, -0.0], [0.5, NAN, -0.0]),
    "list_mixed": (
        [None, True, 3, 2.5, "s", b"\x00b", _T0.replace(tzinfo=None)],
        [None, True, 3, 2.5, "s", b"\x00b", _T0],
    ),
    "list_nested": ([[1, 2], [], ["a", [None]]], [[1, 2], [], ["a", [None]]]),
}

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.sampled_from([None, UTC]),
    )
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
_feature_rows = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8), _values, max_size=6
)
_entity_keys = st.lists(
    st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=16),
    min_size=1,
    max_size=25,
    unique_by=lambda k: (type(k), k),
)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -------------------------------------------------------------------------------------- base
class _OnlineBase(ContractBase):
    """Fixtures shared by the online mixins."""

    @pytest.fixture
    def new_view(
        self, online_store: Any, uid: Callable[[str], str]
    ) -> Iterator[Callable[..., str]]:
        """``new_view(suffix="")``: a unique view name, dropped after the test."""
        made: list[str] = []

        def make(suffix: str = "") -> str:
            name = uid(f"ov{suffix}")
            made.append(name)
            return name

        yield make
        for name in made:
            try:
                online_store.drop(name)
            except StrataError:
                pass


# ------------------------------------------------------------------------------------ writing
class OnlineWriteTests(_OnlineBase):
    """write(): list of dicts, Arrow table and batch; replace semantics; entity key set."""

    def test_write_list_of_dicts(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        rows = [{"user_id": 1, "a": 1.5, "b": "x"}, {"user_id": 2, "a": 2.5, "b": "y"}]
        assert online_store.write(view, rows, entities=["user_id"]) == 2
        _assert_row(online_store.get(view, {"user_id": 1}), {"a": 1.5, "b": "x"})
        _assert_row(online_store.get(view, {"user_id": 2}), {"a": 2.5, "b": "y"})

    def test_write_arrow_table(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        table = pa.table(
            {
                "user_id": pa.array([1, 2, 3], pa.int64()),
                "a": [0.5, 1.5, None],
                "s": ["p", "q", "r"],
            }
        )
        assert online_store.write(view, table, entities=["user_id"]) == 3
        _assert_row(online_store.get(view, {"user_id": 1}), {"a": 0.5, "s": "p"})
        _assert_row(online_store.get(view, {"user_id": 3}), {"a": None, "s": "r"})

    def test_write_record_batch(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        batch = pa.RecordBatch.from_pydict({"k": ["a", "b"], "n": pa.array([10, 20], pa.int64())})
        assert online_store.write(view, batch, entities=["k"]) == 2
        _assert_row(online_store.get(view, {"k": "b"}), {"n": 20})

    def test_write_replaces_whole_row(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        online_store.write(view, [{"id": 1, "a": 1, "b": 2}, {"id": 2, "a": 5}], entities=["id"])
        online_store.write(view, [{"id": 1, "c": 3}], entities=["id"])
        _assert_row(online_store.get(view, {"id": 1}), {"c": 3})
        assert online_store.get(view, {"id": 1}, ["a", "b", "c"]) == {"a": None, "b": None, "c": 3}
        _assert_row(online_store.get(view, {"id": 2}), {"a": 5})  # other entities untouched

    def test_write_last_duplicate_in_batch_wins(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        rows = [{"id": 1, "v": "first", "old": 1}, {"id": 2, "v": "x"}, {"id": 1, "v": "last"}]
        online_store.write(view, rows, entities=["id"])
        _assert_row(online_store.get(view, {"id": 1}), {"v": "last"})

    def test_write_rows_with_different_features(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        online_store.write(view, [{"id": 1, "a": 1}, {"id": 2, "b": "two"}], entities=["id"])
        _assert_row(online_store.get(view, {"id": 1}), {"a": 1})
        _assert_row(online_store.get(view, {"id": 2}), {"b": "two"})

    def test_write_entity_only_row(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        online_store.write(view, [{"id": 1}], entities=["id"])
        assert online_store.get(view, {"id": 1}) == {}

    def test_entity_columns_are_a_set(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        online_store.write(view, [{"t": "acme", "u": 1, "v": 1}], entities=["t", "u"])
        online_store.write(view, [{"t": "acme", "u": 1, "v": 2}], entities=["u", "t"])
        _assert_row(online_store.get(view, {"u": 1, "t": "acme"}), {"v": 2})
        _assert_row(online_store.get(view, {"t": "acme", "u": 1}), {"v": 2})

    def test_write_empty_batch(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        online_store.write(view, [{"id": 1, "a": 1}], entities=["id"])
        assert online_store.write(view, [], entities=["id"]) == 0
        _assert_row(online_store.get(view, {"id": 1}), {"a": 1})


# ------------------------------------------------------------------------------------ reading
class OnlineReadTests(_OnlineBase):
    """get() / get_many(): order, unknown keys, feature subsets, key types, composite keys."""

    @pytest.fixture
    def filled(self, online_store: Any, new_view: Callable[..., str]) -> str:
        view = new_view()
        rows = [{"id": i, "x": float(i), "name": f"n{i}", "sq": i * i} for i in range(1, 6)]
        online_store.write(view, rows, entities=["id"])
        return view

    def test_get_unknown_entity_is_none(self, online_store: Any, filled: str) -> None:
        assert online_store.get(filled, {"id": 999}) is None
        assert online_store.get(filled, {"id": 999}, ["x"]) is None

    def test_get_returns_features_not_entity_columns(self, online_store: Any, filled: str) -> None:
        _assert_row(online_store.get(filled, {"id": 3}), {"x": 3.0, "name": "n3", "sq": 9})

    def test_get_many_preserves_order(self, online_store: Any, filled: str) -> None:
        got = online_store.get_many(filled, [{"id": 4}, {"id": 1}, {"id": 5}])
        assert [r["sq"] if r else None for r in got] == [16, 1, 25]

    def test_get_many_unknown_and_mixed(self, online_store: Any, filled: str) -> None:
        got = online_store.get_many(filled, [{"id": 100}, {"id": 2}, {"id": 101}, {"id": 3}])
        assert len(got) == 4
        assert got[0] is None
        assert got[2] is None
        _assert_row(got[1], {"x": 2.0, "name": "n2", "sq": 4})
        _assert_row(got[3], {"x": 3.0, "name": "n3", "sq": 9})
        assert online_store.get_many(filled, [{"id": 100}, {"id": 101}]) == [None, None]

    def test_get_many_duplicate_entities(self, online_store: Any, filled: str) -> None:
        got = online_store.get_many(filled, [{"id": 2}, {"id": 2}, {"id": 9}, {"id": 2}])
        assert [r["sq"] if r else None for r in got] == [4, 4, None, 4]

    def test_get_many_empty_list(self, online_store: Any, filled: str) -> None:
        assert online_store.get_many(filled, []) == []

    def test_features_subset(self, online_store: Any, filled: str) -> None:
        assert online_store.get(filled, {"id": 2}, ["sq"]) == {"sq": 4}
        _assert_row(online_store.get(filled, {"id": 2}, ["name", "x"]), {"name": "n2", "x": 2.0})
        got = online_store.get_many(filled, [{"id": 1}, {"id": 7}, {"id": 3}], ["sq"])
        assert got == [{"sq": 1}, None, {"sq": 9}]

    def test_requested_feature_row_lacks_is_none(self, online_store: Any, filled: str) -> None:
        assert online_store.get(filled, {"id": 2}, ["sq", "nope"]) == {"sq": 4, "nope": None}
        got = online_store.get_many(filled, [{"id": 2}], ["nope"])
        assert got == [{"nope": None}]

    def test_results_are_independent_copies(self, online_store: Any, filled: str) -> None:
        row = online_store.get(filled, {"id": 1})
        assert row is not None
        row["sq"] = "changed"
        row["extra"] = 1
        _assert_row(online_store.get(filled, {"id": 1}), {"x": 1.0, "name": "n1", "sq": 1})

    def test_int_and_str_keys_differ(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        online_store.write(view, [{"k": 42, "v": "int"}, {"k": "42", "v": "str"}], entities=["k"])
        assert online_store.get(view, {"k": 42}) == {"v": "int"}
        assert online_store.get(view, {"k": "42"}) == {"v": "str"}
        online_store.write(view, [{"k": 7, "v": "int"}], entities=["k"])
        assert online_store.get(view, {"k": "7"}) is None
        assert online_store.get_many(view, [{"k": "42"}, {"k": 42}, {"k": "7"}]) == [
            {"v": "str"},
            {"v": "int"},
            None,
        ]

    def test_multi_column_entity_keys(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        rows = [
            {"tenant": "a", "user": 1, "v": "a1"},
            {"tenant": "a", "user": 2, "v": "a2"},
            {"tenant": "b", "user": 1, "v": "b1"},
            {"tenant": "1", "user": "a", "v": "swapped"},
        ]
        online_store.write(view, rows, entities=["tenant", "user"])
        assert online_store.get(view, {"tenant": "a", "user": 1}) == {"v": "a1"}
        assert online_store.get(view, {"user": 1, "tenant": "b"}) == {"v": "b1"}
        assert online_store.get(view, {"tenant": "b", "user": 2}) is None
        assert online_store.get(view, {"tenant": 1, "user": "a"}) is None
        got = online_store.get_many(
            view,
            [{"tenant": "a", "user": 2}, {"tenant": "c", "user": 1}, {"tenant": "1", "user": "a"}],
        )
        assert got == [{"v": "a2"}, None, {"v": "swapped"}]

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(keys=_entity_keys)
    def test_property_keys_address_their_rows(
        self, online_store: Any, new_view: Callable[..., str], keys: list[Any]
    ) -> None:
        view = new_view("keys")  # dropped after every example
        try:
            online_store.write(view, [{"k": k, "i": i} for i, k in enumerate(keys)], entities=["k"])
            wanted = [*reversed(keys), "\x00missing", -1, keys[0]]
            got = online_store.get_many(view, [{"k": k} for k in wanted])
            assert got == [{"i": keys.index(k)} if k in keys else None for k in wanted]
            assert online_store.get(view, {"k": keys[-1]}) == {"i": len(keys) - 1}
        finally:
            online_store.drop(view)


# ------------------------------------------------------------------------------------- values
class OnlineValueTests(_OnlineBase):
    """Values round-trip with their types (the documented ones)."""

    @pytest.mark.parametrize("sample", sorted(VALUE_SAMPLES))
    def test_value_roundtrip(
        self, online_store: Any, new_view: Callable[..., str], sample: str
    ) -> None:
        view = new_view()
        value, want = VALUE_SAMPLES[sample]
        online_store.write(view, [{"id": 1, "f": value}], entities=["id"])
        got = online_store.get(view, {"id": 1})
        assert got is not None
        assert same_value(got["f"], want), f"{value!r} read back as {got!r}"
        many = online_store.get_many(view, [{"id": 1}], ["f"])
        assert many[0] is not None
        assert same_value(many[0]["f"], want)

    def test_all_values_in_one_row(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        row = {name: value for name, (value, _) in VALUE_SAMPLES.items()}
        online_store.write(view, [{"id": "all", **row}], entities=["id"])
        got = online_store.get(view, {"id": "all"})
        assert got is not None
        assert same_value(got, {name: want for name, (_, want) in VALUE_SAMPLES.items()})

    def test_arrow_types_roundtrip(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        naive = _T0.replace(tzinfo=None)
        table = pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "i": pa.array([2**63 - 1, None], pa.int64()),
                "f": pa.array([NAN, -0.0], pa.float64()),
                "s": pa.array(["日本語 🚀", ""], pa.string()),
                "b": pa.array([b"\x00", b"\xff"], pa.binary()),
                "flag": pa.array([True, False], pa.bool_()),
                "ts": pa.array([_T0, None], pa.timestamp("us", tz="UTC")),
                "ts_naive": pa.array([naive, naive], pa.timestamp("us")),
                "li": pa.array([[1, 2], []], pa.list_(pa.int64())),
                "ls": pa.array([["a", None], None], pa.list_(pa.string())),
            }
        )
        online_store.write(view, table, entities=["id"])
        _assert_row(
            online_store.get(view, {"id": 1}),
            {"i": 2**63 - 1, "f": NAN, "s": "日本語 🚀", "b": b"\x00", "flag": True, "ts": _T0,
             "ts_naive": _T0, "li": [1, 2], "ls": ["a", None]},
        )  # fmt: skip
        _assert_row(
            online_store.get(view, {"id": 2}),
            {"i": None, "f": -0.0, "s": "", "b": b"\xff", "flag": False, "ts": None,
             "ts_naive": _T0, "li": [], "ls": None},
        )  # fmt: skip

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(row=_feature_rows)
    def test_property_rows_roundtrip(
        self, online_store: Any, new_view: Callable[..., str], row: dict[str, Any]
    ) -> None:
        view = new_view("prop")  # the same view every example: also exercises replacement
        online_store.write(view, [{"entity_id": 1, **row}], entities=["entity_id"])
        _assert_row(online_store.get(view, {"entity_id": 1}), row)


# ------------------------------------------------------------------------------------- delete
class OnlineDeleteTests(_OnlineBase):
    """delete(): returns how many existed; rows read as missing afterwards."""

    def test_delete_counts_existing(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        online_store.write(view, [{"id": i, "v": i} for i in range(5)], entities=["id"])
        assert online_store.delete(view, [{"id": 1}, {"id": 3}, {"id": 99}]) == 2
        assert online_store.get(view, {"id": 1}) is None
        assert online_store.get_many(view, [{"id": 0}, {"id": 3}, {"id": 4}]) == [
            {"v": 0},
            None,
            {"v": 4},
        ]
        assert online_store.delete(view, [{"id": 1}, {"id": 3}]) == 0

    def test_delete_duplicates_count_once(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        online_store.write(view, [{"id": "a", "v": 1}], entities=["id"])
        assert online_store.delete(view, [{"id": "a"}, {"id": "a"}]) == 1

    def test_delete_empty_list(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        online_store.write(view, [{"id": 1, "v": 1}], entities=["id"])
        assert online_store.delete(view, []) == 0
        assert online_store.get(view, {"id": 1}) == {"v": 1}

    def test_delete_then_rewrite(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        online_store.write(view, [{"id": 1, "v": 1, "w": 2}], entities=["id"])
        online_store.delete(view, [{"id": 1}])
        online_store.write(view, [{"id": 1, "v": 3}], entities=["id"])
        assert online_store.get(view, {"id": 1}) == {"v": 3}

    def test_delete_multi_column_keys(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        rows = [{"t": "a", "u": 1, "v": 1}, {"t": "a", "u": 2, "v": 2}]
        online_store.write(view, rows, entities=["t", "u"])
        assert online_store.delete(view, [{"u": 1, "t": "a"}, {"t": "b", "u": 2}]) == 1
        assert online_store.get_many(view, [{"t": "a", "u": 1}, {"t": "a", "u": 2}]) == [
            None,
            {"v": 2},
        ]


# -------------------------------------------------------------------------------------- views
class OnlineViewTests(_OnlineBase):
    """views() and drop()."""

    def test_views_lists_written_views_sorted(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        b, a = new_view("_b"), new_view("_a")
        online_store.write(b, [{"id": 1}], entities=["id"])
        online_store.write(a, [{"id": 1}], entities=["id"])
        names = online_store.views()
        assert names == sorted(names)
        assert a in names
        assert b in names

    def test_unwritten_view_is_not_listed(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        with raises_strata(NotFound):
            online_store.get(view, {"id": 1})
        assert view not in online_store.views()

    def test_drop_removes_view_and_rows(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view, other = new_view(), new_view("_other")
        online_store.write(view, [{"id": i, "v": i} for i in range(10)], entities=["id"])
        online_store.write(other, [{"id": 1, "v": "keep"}], entities=["id"])
        assert online_store.drop(view) is None
        assert view not in online_store.views()
        with raises_strata(NotFound):
            online_store.get(view, {"id": 1})
        with raises_strata(NotFound):
            online_store.get_many(view, [{"id": 1}])
        assert online_store.get(other, {"id": 1}) == {"v": "keep"}

    def test_drop_unknown_view_is_quiet(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        online_store.drop(view)
        online_store.write(view, [{"id": 1}], entities=["id"])
        online_store.drop(view)
        online_store.drop(view)
        assert view not in online_store.views()

    def test_recreate_after_drop_starts_empty(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        online_store.write(view, [{"id": 1, "v": 1}], entities=["id"])
        online_store.drop(view)
        online_store.write(view, [{"t": "x", "u": 2, "v": 2}], entities=["t", "u"])
        assert online_store.get(view, {"t": "x", "u": 2}) == {"v": 2}
        with raises_strata(InvalidInput):
            online_store.get(view, {"id": 1})


# ---------------------------------------------------------------------------------------- TTL
class OnlineTTLTests(_OnlineBase):
    """TTL: rows expire ``ttl`` after their event time (or the write); expired = missing."""

    def test_ttl_expires_after_write(self, online_store: Any, new_view: Callable[..., str]) -> None:
        self.require(online_store, "ttl")
        view = new_view()
        ttl = dt.timedelta(seconds=1)
        t0 = time.monotonic()
        online_store.write(view, [{"id": 1, "v": 1}, {"id": 2, "v": 2}], entities=["id"], ttl=ttl)
        # the store reads its clock somewhere inside write: the rows expire by t1 + ttl
        t1 = time.monotonic()
        online_store.write(view, [{"id": 3, "v": 3}], entities=["id"])  # no ttl: never expires
        first = online_store.get(view, {"id": 1})
        if time.monotonic() - t0 < 0.8:  # only meaningful if the machine did not stall
            assert first == {"v": 1}
        time.sleep(max(0.0, 1.25 - (time.monotonic() - t1)))
        assert online_store.get(view, {"id": 1}) is None
        assert online_store.get(view, {"id": 1}, ["v"]) is None
        assert online_store.get_many(view, [{"id": 2}, {"id": 3}, {"id": 1}]) == [
            None,
            {"v": 3},
            None,
        ]

    def test_ttl_counts_from_event_time(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        self.require(online_store, "ttl")
        view = new_view()
        now = dt.datetime.now(UTC)
        hour_ago = now - dt.timedelta(hours=1)
        online_store.write(
            view,
            [{"id": "old", "ts": hour_ago, "v": 1}],
            entities=["id"],
            ttl=dt.timedelta(minutes=1),
            event_time="ts",
        )
        online_store.write(
            view,
            [{"id": "kept", "ts": hour_ago, "v": 2}],
            entities=["id"],
            ttl=dt.timedelta(hours=2),
            event_time="ts",
        )
        assert online_store.get(view, {"id": "old"}) is None  # expired on write
        assert online_store.get(view, {"id": "kept"}, ["v"]) == {"v": 2}

    def test_ttl_expired_rows_read_like_missing(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        self.require(online_store, "ttl")
        view = new_view()
        now = dt.datetime.now(UTC)
        rows = [
            {"id": 1, "ts": now - dt.timedelta(days=3), "v": 1},
            {"id": 2, "ts": now, "v": 2},
            {"id": 3, "ts": (now - dt.timedelta(days=2)).replace(tzinfo=None), "v": 3},
            {"id": 4, "ts": now - dt.timedelta(minutes=5), "v": 4},
        ]
        n = online_store.write(
            view, rows, entities=["id"], ttl=dt.timedelta(days=1), event_time="ts"
        )
        assert n == 4
        assert online_store.get(view, {"id": 1}) is None
        assert online_store.get(view, {"id": 3}, ["v"]) is None
        got = online_store.get_many(view, [{"id": 1}, {"id": 2}, {"id": 9}, {"id": 3}, {"id": 4}])
        assert [r["v"] if r else None for r in got] == [None, 2, None, None, 4]
        assert online_store.get_many(view, [{"id": 1}, {"id": 3}], ["v"]) == [None, None]

    def test_ttl_event_time_from_arrow(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        self.require(online_store, "ttl")
        view = new_view()
        now = dt.datetime.now(UTC)
        table = pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "ts": pa.array([now - dt.timedelta(hours=5), now], pa.timestamp("us", tz="UTC")),
                "v": [1.0, 2.0],
            }
        )
        online_store.write(view, table, entities=["id"], ttl=dt.timedelta(hours=1), event_time="ts")
        got = online_store.get_many(view, [{"id": 1}, {"id": 2}], ["v"])
        assert got == [None, {"v": 2.0}]

    def test_ttl_rewrite_replaces_expiry(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        self.require(online_store, "ttl")
        view = new_view()
        now = dt.datetime.now(UTC)
        online_store.write(view, [{"id": 1, "v": "fresh"}], entities=["id"])
        online_store.write(
            view,
            [{"id": 1, "ts": now - dt.timedelta(hours=2), "v": "stale"}],
            entities=["id"],
            ttl=dt.timedelta(hours=1),
            event_time="ts",
        )
        assert online_store.get(view, {"id": 1}) is None  # the last write wins, and it expired
        online_store.write(view, [{"id": 1, "v": "again"}], entities=["id"])
        assert online_store.get(view, {"id": 1}) == {"v": "again"}

    def test_no_ttl_never_expires(self, online_store: Any, new_view: Callable[..., str]) -> None:
        self.require(online_store, "ttl")
        view = new_view()
        old = dt.datetime(2001, 1, 1, tzinfo=UTC)
        online_store.write(view, [{"id": 1, "ts": old, "v": 1}], entities=["id"], event_time="ts")
        assert online_store.get(view, {"id": 1}, ["v"]) == {"v": 1}


# ------------------------------------------------------------------------------------- errors
_BAD_KEY_VALUES = [1.5, True, None, b"42", [1]]


#: Aware times whose UTC instant no ``datetime`` can hold (after 9999 / before year 1).
_PAST_MAX = dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
_BEFORE_MIN = dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=5)))


class OnlineErrorTests(_OnlineBase):
    """Bad input raises typed strataml errors and leaves the store unchanged."""

    @pytest.fixture
    def existing(self, online_store: Any, new_view: Callable[..., str]) -> str:
        view = new_view()
        online_store.write(view, [{"id": 1, "v": "one"}, {"id": 2, "v": "two"}], entities=["id"])
        return view

    @staticmethod
    def _unchanged(store: Any, view: str) -> None:
        assert store.get_many(view, [{"id": 1}, {"id": 2}, {"id": 3}]) == [
            {"v": "one"},
            {"v": "two"},
            None,
        ]

    @pytest.mark.parametrize(
        "rows",
        [
            [{"id": 1, "v": _PAST_MAX}],
            [{"id": 2, "v": ["ok", _BEFORE_MIN]}],
            [{"id": 1, "v": {"at": _PAST_MAX}}],
            pa.table({"id": [1], "v": pa.array([300_000_000_000], pa.timestamp("s"))}),
            pa.table({"id": [2], "v": pa.array([3_000_000], pa.date32())}),
        ],
        ids=["aware", "in_list", "in_map", "arrow_timestamp", "arrow_date"],
    )
    def test_times_no_datetime_holds_are_invalid(
        self, online_store: Any, existing: str, rows: Any
    ) -> None:
        """A time beyond the years 1-9999 in UTC, once stored, could never be read back."""
        with raises_strata(InvalidInput):
            online_store.write(existing, rows, entities=["id"])
        self._unchanged(online_store, existing)

    def test_unknown_view_not_found(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view("_never")
        with raises_strata(NotFound):
            online_store.get(view, {"id": 1})
        with raises_strata(NotFound):
            online_store.get_many(view, [{"id": 1}])
        with raises_strata(NotFound):
            online_store.delete(view, [{"id": 1}])
        assert view not in online_store.views()

    @pytest.mark.parametrize(
        "entity",
        [{}, {"id": 1, "extra": 2}, {"other": 1}, {"ID": 1}],
        ids=["empty", "extra_key", "wrong_key", "wrong_case"],
    )
    def test_entity_mapping_keys_mismatch(
        self, online_store: Any, existing: str, entity: dict[str, Any]
    ) -> None:
        with raises_strata(InvalidInput):
            online_store.get(existing, entity)
        with raises_strata(InvalidInput):
            online_store.get_many(existing, [{"id": 1}, entity])
        with raises_strata(InvalidInput):
            online_store.delete(existing, [{"id": 1}, entity])
        self._unchanged(online_store, existing)

    def test_multi_column_entity_missing_key(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        online_store.write(view, [{"t": "a", "u": 1, "v": 1}], entities=["t", "u"])
        for entity in ({"t": "a"}, {"u": 1}, {"t": "a", "u": 1, "x": 0}):
            with raises_strata(InvalidInput):
                online_store.get(view, entity)
            with raises_strata(InvalidInput):
                online_store.delete(view, [{"t": "a", "u": 1}, entity])
        assert online_store.get(view, {"t": "a", "u": 1}) == {"v": 1}

    @pytest.mark.parametrize("bad", _BAD_KEY_VALUES, ids=lambda v: type(v).__name__)
    def test_key_of_wrong_type(self, online_store: Any, existing: str, bad: Any) -> None:
        with raises_strata(InvalidInput):
            online_store.get(existing, {"id": bad})
        with raises_strata(InvalidInput):
            online_store.get_many(existing, [{"id": 1}, {"id": bad}])
        with raises_strata(InvalidInput):
            online_store.delete(existing, [{"id": 1}, {"id": bad}])
        self._unchanged(online_store, existing)

    @pytest.mark.parametrize("bad", _BAD_KEY_VALUES, ids=lambda v: type(v).__name__)
    def test_write_key_of_wrong_type(self, online_store: Any, existing: str, bad: Any) -> None:
        rows = [{"id": 3, "v": "three"}, {"id": 1, "v": "changed"}, {"id": bad, "v": "bad"}]
        with raises_strata(InvalidInput):
            online_store.write(existing, rows, entities=["id"])
        self._unchanged(online_store, existing)

    def test_write_row_missing_entity_column(self, online_store: Any, existing: str) -> None:
        rows = [{"id": 3, "v": "three"}, {"v": "no key"}]
        with raises_strata(InvalidInput):
            online_store.write(existing, rows, entities=["id"])
        table = pa.table({"v": ["x"]})
        with raises_strata(InvalidInput):
            online_store.write(existing, table, entities=["id"])
        self._unchanged(online_store, existing)

    def test_write_without_entities(self, online_store: Any, new_view: Callable[..., str]) -> None:
        view = new_view()
        with raises_strata(InvalidInput):
            online_store.write(view, [{"id": 1}], entities=[])
        assert view not in online_store.views()

    @pytest.mark.parametrize(
        "entities", [["id", "v"], ["v"], ["other"]], ids=["superset", "different", "absent"]
    )
    def test_write_other_entity_columns(
        self, online_store: Any, existing: str, entities: list[str]
    ) -> None:
        rows = [{"id": 1, "v": "changed", "other": 0}, {"id": 3, "v": "three", "other": 0}]
        with raises_strata(SchemaError):
            online_store.write(existing, rows, entities=entities)
        self._unchanged(online_store, existing)

    @pytest.mark.parametrize(
        "bad", [object(), complex(1, 2), len], ids=["object", "complex", "function"]
    )
    def test_unencodable_value_writes_nothing(
        self, online_store: Any, existing: str, bad: Any
    ) -> None:
        rows = [
            {"id": 3, "v": "three"},
            {"id": 1, "v": "changed"},
            {"id": 4, "v": "four", "bad": bad},
            {"id": 5, "v": "five"},
        ]
        with raises_strata(InvalidInput):
            online_store.write(existing, rows, entities=["id"])
        self._unchanged(online_store, existing)
        assert online_store.get_many(existing, [{"id": 4}, {"id": 5}]) == [None, None]

    def test_unencodable_value_in_new_view(
        self, online_store: Any, new_view: Callable[..., str]
    ) -> None:
        view = new_view()
        with raises_strata(InvalidInput):
            online_store.write(view, [{"id": 1, "v": 1}, {"id": 2, "v": object()}], entities=["id"])
        assert view not in online_store.views()

    def test_record_over_max_record_bytes(self, online_store: Any, existing: str) -> None:
        limit = online_store.capabilities.max_record_bytes
        if limit is None:
            pytest.skip("backend declares no max_record_bytes")
        rows = [{"id": 3, "v": "three"}, {"id": 1, "v": "changed", "blob": b"x" * limit}]
        with raises_strata(LimitExceeded):
            online_store.write(existing, rows, entities=["id"])
        self._unchanged(online_store, existing)


# ----------------------------------------------------------------------------------- protocol
class OnlineProtocolTests(_OnlineBase):
    """The store satisfies the protocol structurally and declares its capabilities."""

    def test_is_online_store(self, online_store: Any) -> None:
        assert isinstance(online_store, OnlineStore)
        assert isinstance(online_store.capabilities, Capabilities)


class OnlineStoreTests(
    OnlineProtocolTests,
    OnlineWriteTests,
    OnlineReadTests,
    OnlineValueTests,
    OnlineDeleteTests,
    OnlineViewTests,
    OnlineTTLTests,
    OnlineErrorTests,
):
    """The whole :class:`~strataml.protocols.OnlineStore` contract (fixture ``online_store``)."""


# -------------------------------------------------------------------------------------- async
class AsyncOnlineStoreTests(ContractBase):
    """The :class:`~strataml.protocols.AsyncOnlineStore` contract (fixture
    ``async_online_store``; by default ``online_store`` wrapped in
    :class:`~strataml.aio.AsyncOnlineAdapter`). Re-checks the main paths through awaitables."""

    @pytest.fixture
    def async_online_store(self, online_store: Any) -> Any:
        return AsyncOnlineAdapter(online_store)

    def test_async_is_async_online_store(self, async_online_store: Any) -> None:
        assert isinstance(async_online_store, AsyncOnlineStore)
        assert isinstance(async_online_store.capabilities, Capabilities)

    def test_async_write_and_read(self, async_online_store: Any, uid: Callable[[str], str]) -> None:
        store, view = async_online_store, uid("aov")

        async def body() -> None:
            n = await store.write(
                view, [{"id": 1, "a": 1.5}, {"id": "1", "a": 2.5}], entities=["id"]
            )
            assert n == 2
            table = pa.table(
                {"id": pa.array([2, 3], pa.int64()), "a": [3.5, None], "b": ["x", "y"]}
            )
            assert await store.write(view, table, entities=["id"]) == 2
            assert await store.get(view, {"id": 1}) == {"a": 1.5}
            assert await store.get(view, {"id": "1"}) == {"a": 2.5}
            assert await store.get(view, {"id": 3}, ["a", "b", "c"]) == {
                "a": None,
                "b": "y",
                "c": None,
            }
            assert await store.get(view, {"id": 99}) is None
            got = await store.get_many(view, [{"id": 3}, {"id": 99}, {"id": 2}, {"id": 3}], ["b"])
            assert got == [{"b": "y"}, None, {"b": "x"}, {"b": "y"}]
            assert await store.get_many(view, []) == []

        _run(body())

    def test_async_replace_and_delete(
        self, async_online_store: Any, uid: Callable[[str], str]
    ) -> None:
        store, view = async_online_store, uid("aov")

        async def body() -> None:
            await store.write(view, [{"id": 1, "a": 1, "b": 2}, {"id": 2, "a": 2}], entities=["id"])
            await store.write(view, [{"id": 1, "c": 3}], entities=["id"])
            assert await store.get(view, {"id": 1}) == {"c": 3}
            assert await store.delete(view, [{"id": 1}, {"id": 1}, {"id": 7}]) == 1
            assert await store.get_many(view, [{"id": 1}, {"id": 2}]) == [None, {"a": 2}]

        _run(body())

    def test_async_values_roundtrip(
        self, async_online_store: Any, uid: Callable[[str], str]
    ) -> None:
        store, view = async_online_store, uid("aov")
        row = {name: value for name, (value, _) in VALUE_SAMPLES.items()}

        async def body() -> Any:
            await store.write(view, [{"id": 1, **row}], entities=["id"])
            return await store.get(view, {"id": 1})

        got = _run(body())
        assert same_value(got, {name: want for name, (_, want) in VALUE_SAMPLES.items()})

    def test_async_concurrent_gets(
        self, async_online_store: Any, uid: Callable[[str], str]
    ) -> None:
        store, view = async_online_store, uid("aov")

        async def body() -> list[Any]:
            await store.write(view, [{"id": i, "v": i * 2} for i in range(50)], entities=["id"])
            return list(await asyncio.gather(*(store.get(view, {"id": i}) for i in range(60))))

        got = _run(body())
        assert got == [{"v": i * 2} for i in range(50)] + [None] * 10

    def test_async_errors(self, async_online_store: Any, uid: Callable[[str], str]) -> None:
        store, view = async_online_store, uid("aov")

        async def body() -> None:
            with raises_strata(NotFound):
                await store.get(uid("aov_never"), {"id": 1})
            with raises_strata(NotFound):
                await store.get_many(uid("aov_never"), [{"id": 1}])
            with raises_strata(NotFound):
                await store.delete(uid("aov_never"), [{"id": 1}])
            await store.write(view, [{"id": 1, "v": 1}], entities=["id"])
            with raises_strata(InvalidInput):
                await store.get(view, {"id": 1, "x": 2})
            with raises_strata(InvalidInput):
                await store.get(view, {"id": 1.0})
            with raises_strata(InvalidInput):
                await store.delete(view, [{"id": 1}, {"id": None}])
            with raises_strata(SchemaError):
                await store.write(view, [{"id": 1, "v": 2, "w": 0}], entities=["id", "w"])
            with raises_strata(InvalidInput):
                await store.write(
                    view, [{"id": 2, "v": 2}, {"id": 1, "v": object()}], entities=["id"]
                )
            assert await store.get_many(view, [{"id": 1}, {"id": 2}]) == [{"v": 1}, None]

        _run(body())

    def test_async_ttl_event_time(self, async_online_store: Any, uid: Callable[[str], str]) -> None:
        self.require(async_online_store, "ttl")
        store, view = async_online_store, uid("aov")
        now = dt.datetime.now(UTC)

        async def body() -> list[Any]:
            rows = [
                {"id": 1, "ts": now - dt.timedelta(hours=3), "v": 1},
                {"id": 2, "ts": now, "v": 2},
            ]
            await store.write(
                view, rows, entities=["id"], ttl=dt.timedelta(hours=1), event_time="ts"
            )
            return [
                await store.get(view, {"id": 1}),
                *(await store.get_many(view, [{"id": 1}, {"id": 2}], ["v"])),
            ]

        assert _run(body()) == [None, None, {"v": 2}]
