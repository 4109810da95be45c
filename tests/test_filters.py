"""The neutral filter language: parsing, errors, reference semantics and SQL compilation.

The SQL compiler is property-tested against the reference evaluator on a real engine (DuckDB),
with missing values, so the two-valued null semantics are checked where they usually break.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.errors import FilterError, Unsupported
from strataml.filters import (
    And,
    Compare,
    FieldType,
    Not,
    Op,
    Or,
    SQLFilterCompiler,
    check_types,
    fields_used,
    matches,
    ops_used,
    parse_filter,
    require_ops,
)


def test_empty_filters_match_everything():
    assert parse_filter(None) is None
    assert parse_filter({}) is None
    assert matches(None, {"a": 1})
    assert SQLFilterCompiler().compile(None) == ("TRUE", [])


def test_implicit_eq_and_implicit_and():
    expr = parse_filter({"lang": "en", "year": {"$gte": 2020, "$lt": 2025}})
    assert expr == And(
        (
            Compare("lang", Op.EQ, "en"),
            And((Compare("year", Op.GTE, 2020), Compare("year", Op.LT, 2025))),
        )
    )
    assert ops_used(expr) == {Op.EQ, Op.GTE, Op.LT, Op.AND}
    assert fields_used(expr) == {"lang", "year"}


def test_logical_operators_and_field_level_not():
    expr = parse_filter(
        {"$or": [{"a": 1}, {"$not": {"b": {"$in": [1, 2]}}}], "c": {"$not": {"$gt": 3}}}
    )
    assert isinstance(expr, And)
    assert isinstance(expr.items[0], Or)
    assert expr.items[1] == Not(Compare("c", Op.GT, 3))


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ([1], "must be a mapping"),
        ({"a": {"$regex": "x"}}, "not part of the strataml filter language"),
        ({"a": {"$foo": 1}}, "unknown operator '$foo'"),
        ({"$foo": 1}, "unknown operator '$foo'"),
        ({"a": {"$and": [{"b": 1}]}}, "logical operator"),
        ({"a": [1, 2]}, "not a filterable scalar"),
        ({"a": {"b": 1}}, "nested documents are not comparable"),
        ({"a": {}}, "empty operator mapping"),
        ({"a": {"$gt": None}}, "needs a number"),
        ({"a": {"$lt": True}}, "needs a number"),
        ({"a": {"$in": 3}}, "takes a list"),
        ({"a": {"$in": [1, "x"]}}, "mixes kinds"),
        ({"a": {"$exists": 1}}, "takes true or false"),
        ({"$and": []}, "non-empty list"),
        ({"$or": {"a": 1}}, "non-empty list"),
        ({"$not": {}}, "non-empty mapping"),
        ({"a b": 1}, "invalid field name"),
        ({"1a": 1}, "invalid field name"),
        ({'a"; DROP TABLE x; --': 1}, "invalid field name"),
        ({"a": float("nan")}, "not a finite number"),
        ({"a": float("inf")}, "not a finite number"),
        ({"a": object()}, "not a filterable scalar"),
    ],
)
def test_malformed_filters_raise_filter_error(spec: Any, fragment: str):
    with pytest.raises(FilterError) as info:
        parse_filter(spec)
    assert fragment in str(info.value)


def test_filter_error_is_a_value_error_and_strata_error():
    from strataml.errors import InvalidInput, StrataError

    with pytest.raises(StrataError):
        parse_filter({"a": {"$bad": 1}})
    assert issubclass(FilterError, InvalidInput)
    assert issubclass(FilterError, ValueError)


def test_require_ops_fails_closed():
    expr = parse_filter({"a": {"$in": [1]}, "$not": {"b": 1}})
    require_ops(expr, {Op.IN, Op.NOT, Op.EQ, Op.AND}, "x")
    with pytest.raises(Unsupported, match=r"\$not"):
        require_ops(expr, {Op.IN, Op.EQ, Op.AND}, "x")


def test_compiler_raises_unsupported_for_ops_it_lacks():
    class NoIn(SQLFilterCompiler):
        supported_ops = frozenset(set(Op) - {Op.IN, Op.NIN})
        backend = "toy"

    with pytest.raises(Unsupported, match="toy cannot run"):
        NoIn().compile(parse_filter({"a": {"$nin": [1]}}))


def test_nested_fields_unsupported_unless_declared():
    with pytest.raises(Unsupported, match="nested field"):
        SQLFilterCompiler().compile(parse_filter({"user.country": "de"}))

    class Nested(SQLFilterCompiler):
        nested_fields = True

    sql, _ = Nested().compile(parse_filter({"user.country": "de"}))
    assert '"user"."country"' in sql


def test_type_checks_against_schema():
    schema = {
        "year": FieldType.INT,
        "lang": FieldType.STRING,
        "ok": FieldType.BOOL,
        "at": FieldType.TIMESTAMP,
        "tags": FieldType.LIST,
    }
    check_types(parse_filter({"year": {"$gt": 2020.5}, "lang": {"$in": ["en", None]}}), schema)
    check_types(parse_filter({"at": {"$gte": dt.datetime(2024, 1, 1)}, "ok": True}), schema)
    check_types(parse_filter({"unknown": 1}), schema)  # absent field: matches nothing, no error
    for bad in (
        {"year": {"$gt": "2020"}},
        {"lang": 3},
        {"ok": 1},
        {"year": True},
        {"lang": {"$nin": [1, 2]}},
        {"tags": "a"},
    ):
        with pytest.raises(FilterError):
            check_types(parse_filter(bad), schema)
    with pytest.raises(FilterError, match="unknown field"):
        check_types(parse_filter({"unknown": 1}), schema, strict=True)
    check_types(parse_filter({"tags": {"$exists": True}}), schema)


def test_reference_null_semantics():
    absent: dict[str, Any] = {}
    null = {"f": None}
    one = {"f": 1}
    cases = [
        ({"f": None}, [True, True, False]),
        ({"f": {"$ne": None}}, [False, False, True]),
        ({"f": 1}, [False, False, True]),
        ({"f": {"$ne": 1}}, [True, True, False]),
        ({"f": {"$gt": 0}}, [False, False, True]),
        ({"f": {"$lte": 0}}, [False, False, False]),
        ({"f": {"$in": [1]}}, [False, False, True]),
        ({"f": {"$in": [None]}}, [True, True, False]),
        ({"f": {"$nin": [1]}}, [True, True, False]),
        ({"f": {"$nin": [None, 2]}}, [False, False, True]),
        ({"f": {"$exists": True}}, [False, False, True]),
        ({"f": {"$exists": False}}, [True, True, False]),
        ({"$not": {"f": {"$gt": 0}}}, [True, True, False]),
    ]
    for spec, expected in cases:
        expr = parse_filter(spec)
        assert [matches(expr, r) for r in (absent, null, one)] == expected, spec


def test_reference_type_mismatch_never_matches_range():
    assert not matches(parse_filter({"f": {"$gt": 1}}), {"f": "a"})
    assert matches(parse_filter({"f": {"$ne": 1}}), {"f": "a"})
    assert not matches(parse_filter({"f": 1}), {"f": True})


def test_inline_literals_escape_quotes():
    class Inline(SQLFilterCompiler):
        paramstyle = "inline"

    sql, params = Inline().compile(parse_filter({"name": "O'Brien'); DROP TABLE t; --"}))
    assert params == []
    assert "'O''Brien''); DROP TABLE t; --'" in sql
    con = duckdb.connect()
    con.execute("CREATE TABLE t (name VARCHAR)")
    con.execute("INSERT INTO t VALUES ('O''Brien''); DROP TABLE t; --'), ('x')")
    assert con.execute(f"SELECT count(*) FROM t WHERE {sql}").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM t").fetchone() == (2,)


@pytest.mark.parametrize("style", ["qmark", "format", "numeric"])
def test_param_styles(style: str):
    class C(SQLFilterCompiler):
        paramstyle = style

    sql, params = C().compile(parse_filter({"a": 1, "b": {"$in": ["x", "y"]}}))
    assert params == [1, "x", "y"]
    marker = {"qmark": "?", "format": "%s", "numeric": "$3"}[style]
    assert marker in sql


# --------------------------------------------------------------- property: SQL == reference
FIELDS = ["a", "b", "s"]
ints = st.integers(min_value=-3, max_value=3)
strs = st.sampled_from(["x", "y", "z", "O'Q"])


def _value_for(field: str) -> st.SearchStrategy[Any]:
    return strs if field == "s" else ints


@st.composite
def compare_expr(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(FIELDS))
    op = draw(
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"])
    )
    values = _value_for(field)
    if op == "$exists":
        return {field: {op: draw(st.booleans())}}
    if op in ("$in", "$nin"):
        return {field: {op: draw(st.lists(st.one_of(values, st.none()), max_size=3))}}
    if op in ("$eq", "$ne"):
        return {field: {op: draw(st.one_of(values, st.none()))}}
    return {field: {op: draw(values)}}


filter_docs = st.recursive(
    compare_expr(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
        st.lists(children, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
        children.map(lambda x: {"$not": x}),
    ),
    max_leaves=6,
)

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "a": st.one_of(ints, st.none()),
            "b": st.one_of(ints, st.none()),
            "s": st.one_of(strs, st.none()),
        },
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture(scope="module")
def duck() -> Any:
    con = duckdb.connect()
    yield con
    con.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=filter_docs, rows=rows_strategy)
def test_sql_compiler_agrees_with_reference(
    duck: Any, spec: dict[str, Any], rows: list[dict[str, Any]]
):
    expr = parse_filter(spec)
    sql, params = SQLFilterCompiler().compile(expr)
    duck.execute("CREATE OR REPLACE TEMP TABLE r (i INTEGER, a BIGINT, b BIGINT, s VARCHAR)")
    duck.executemany(
        "INSERT INTO r VALUES (?, ?, ?, ?)",
        [(i, r.get("a"), r.get("b"), r.get("s")) for i, r in enumerate(rows)],
    )
    got = {row[0] for row in duck.execute(f"SELECT i FROM r WHERE {sql}", params).fetchall()}
    want = {i for i, r in enumerate(rows) if matches(expr, r)}
    assert got == want, (spec, sql, params)
    # two-valued: the complement selects exactly the other rows
    nsql, nparams = SQLFilterCompiler().compile(Not(expr) if expr is not None else None)
    got_not = {row[0] for row in duck.execute(f"SELECT i FROM r WHERE {nsql}", nparams).fetchall()}
    if expr is not None:
        assert got_not == set(range(len(rows))) - want


def test_coerce_temporal_reads_iso_strings_on_time_fields():
    from strataml.filters import coerce_temporal

    schema = {"at": FieldType.TIMESTAMP, "day": FieldType.DATE, "name": FieldType.STRING}
    expr = parse_filter(
        {
            "at": {"$gte": "2024-01-02T03:04:05Z"},
            "day": {"$in": ["2024-01-02", None]},
            "name": "2024-01-02",
            "$not": {"day": {"$lt": "2024-02-01T12:00"}},
        }
    )
    out = coerce_temporal(expr, schema)
    assert isinstance(out, And)
    at, day, name, neg = out.items
    assert at == Compare("at", Op.GTE, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC))
    assert day == Compare("day", Op.IN, (dt.date(2024, 1, 2), None))
    assert name == Compare("name", Op.EQ, "2024-01-02")  # not a time field: untouched
    assert neg == Not(Compare("day", Op.LT, dt.datetime(2024, 2, 1, 12, 0)))
    with pytest.raises(FilterError, match="not an ISO-8601"):
        coerce_temporal(parse_filter({"at": "yesterday"}), schema)
    assert coerce_temporal(None, schema) is None
    # the reference evaluator agrees: an ISO string compares as an instant
    assert matches(parse_filter({"at": {"$gte": "2024-01-01"}}), {"at": dt.datetime(2024, 5, 1)})
