"""Unit tests of what the Weaviate adapter translates, without a server.

* filters: random strataml filters (hypothesis) compile to Weaviate ``Filter`` trees that, run by
  a reference evaluator of Weaviate's operators over the properties the adapter writes, select
  exactly what :func:`strataml.filters.matches` selects -- whether or not the server's
  ``NotEqual`` matches nulls -- and that weaviate-client turns into gRPC filters; no ``Not``
  operator is ever sent; type mismatches and nested fields fail closed;
* names (injective, valid for Weaviate, safe on case-insensitive servers) and object ids;
* the collection definition (validated by weaviate-client's own config model);
* metadata and score mapping, request batching and limits;
* error translation and secret redaction; configuration; the adapter declaration.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import subprocess
import sys
import uuid
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from weaviate import exceptions as we
from weaviate.collections.classes.config import _CollectionConfigCreate
from weaviate.collections.classes.filters import (
    _FilterAnd,
    _FilterNot,
    _FilterOr,
    _Filters,
    _FilterValue,
    _Operator,
)
from weaviate.collections.filters import _FilterToGRPC

from strataml.config import redact as redact_settings
from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    FilterError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    Unavailable,
    Unsupported,
)
from strataml.filters import FieldType, matches, parse_filter
from strataml.models import score_from_bm25, score_from_distance
from strataml.registry import get_adapter
from strataml.vectors.batch import prepare_batch
from strataml_weaviate import VECTORS_CAPS, WEAVIATE
from strataml_weaviate.batching import check_text, estimate_bytes, plan_requests
from strataml_weaviate.codec import (
    decode_metadata,
    dense_distance,
    encode_metadata,
    keyword_hit_scores,
    minmax,
    object_properties,
    object_vector,
)
from strataml_weaviate.config import WeaviateConfig
from strataml_weaviate.errors import redact, translate
from strataml_weaviate.filters import FALSE, TRUE, compile_filter
from strataml_weaviate.names import (
    class_name,
    decode_class,
    escape,
    field_of_property,
    object_uuid,
    property_name,
    tenant_name,
    unescape,
)
from strataml_weaviate.schema import (
    CollectionMeta,
    IndexSettings,
    create_arguments,
    describe_meta,
    parse_meta,
)
from strataml_weaviate.vectors import WeaviateVectorStore

API_KEY = "wv-secret-key-123"
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ------------------------------------------------------------------------ reference evaluator
def _present(props: Mapping[str, Any], prop: str) -> bool:
    return props.get(prop) is not None


def evaluate(f: _Filters, props: Mapping[str, Any], *, ne_matches_null: bool) -> bool:
    """Weaviate's filter semantics over an object's properties (a missing property is null)."""
    if isinstance(f, _FilterAnd):
        return all(evaluate(x, props, ne_matches_null=ne_matches_null) for x in f.filters)
    if isinstance(f, _FilterOr):
        return any(evaluate(x, props, ne_matches_null=ne_matches_null) for x in f.filters)
    assert not isinstance(f, _FilterNot), "Not is never sent"
    assert isinstance(f, _FilterValue)
    prop = f.target
    assert isinstance(prop, str)
    op, want = f.operator, f.value
    if op is _Operator.IS_NULL:
        return (not _present(props, prop)) is want
    if not _present(props, prop):
        return op is _Operator.NOT_EQUAL and ne_matches_null
    have = props[prop]
    if op is _Operator.EQUAL:
        return bool(have == want)
    if op is _Operator.NOT_EQUAL:
        return bool(have != want)
    if op is _Operator.CONTAINS_ANY:
        assert isinstance(want, list)
        return have in want
    compare = {
        _Operator.GREATER_THAN: lambda a, b: a > b,
        _Operator.GREATER_THAN_EQUAL: lambda a, b: a >= b,
        _Operator.LESS_THAN: lambda a, b: a < b,
        _Operator.LESS_THAN_EQUAL: lambda a, b: a <= b,
    }[op]
    return bool(compare(have, want))


def _walk(f: _Filters) -> list[_Filters]:
    out = [f]
    for child in getattr(f, "filters", None) or []:
        out.extend(_walk(child))
    return out


# ------------------------------------------------------------------------------- test data
T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
STRINGS = ["a", "b", "ab", "B", "a'b", "z", "é", ""]


def _records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(48):
        meta: dict[str, Any] = {}
        if i % 5:
            meta["s"] = STRINGS[i % len(STRINGS)]
        if i % 4:
            meta["n"] = (i % 7) - 3
        elif i % 8 == 0:
            meta["n"] = None
        if i % 3:
            meta["x"] = [-1.5, 0.0, 0.5, 2.25, 3][i % 5]
        if i % 6 != 1:
            meta["b"] = i % 2 == 0
        if i % 4 != 3:
            meta["t"] = T0 + dt.timedelta(hours=(i % 9) - 4, microseconds=i)
        if i % 5 != 2:
            meta["d"] = dt.date(2024, 1, 1 + i % 6)
        if i % 7 == 0:
            meta["tags"] = ["x", 1]
        out.append({"id": f"r{i}", "vector": [0.0, 1.0], "metadata": meta})
    return out


RECORDS = _records()
BATCH = prepare_batch(RECORDS, dim=2, multi_tenant=False)
FIELDS = BATCH.field_types
OBJECTS = {
    rid: object_properties(rid, None, md, FIELDS)
    for rid, md in zip(BATCH.ids, BATCH.metadata, strict=True)
}


def _values(field: str) -> st.SearchStrategy[Any]:
    if field == "s":
        return st.sampled_from(STRINGS)
    if field in ("n", "x"):
        return st.one_of(st.integers(-4, 4), st.sampled_from([-1.5, 0.0, 0.5, 2.25, 3.0, 9.5]))
    if field == "b":
        return st.booleans()
    if field == "t":
        return st.one_of(
            st.integers(-5, 5).map(lambda h: T0 + dt.timedelta(hours=h)),
            st.integers(-5, 5).map(lambda h: (T0 + dt.timedelta(hours=h)).replace(tzinfo=None)),
            st.integers(-5, 5).map(lambda h: (T0 + dt.timedelta(hours=h)).isoformat()),
        )
    if field == "d":
        return st.one_of(
            st.integers(1, 7).map(lambda d: dt.date(2024, 1, d)),
            st.integers(1, 7).map(lambda d: dt.datetime(2024, 1, d, 6)),
            st.integers(1, 7).map(lambda d: f"2024-01-0{d}"),
        )
    return st.integers(0, 3)


@st.composite
def _leaf(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(["s", "n", "x", "b", "t", "d", "missing", "tags"]))
    if field == "tags":
        return {field: {"$exists": draw(st.booleans())}}
    kind = "n" if field == "missing" else field
    vals = _values(kind)
    ops = ["$eq", "$ne", "$in", "$nin", "$exists", "implicit", "not"]
    if kind != "b":
        ops += ["$gt", "$gte", "$lt", "$lte"]
    op = draw(st.sampled_from(ops))
    if op == "implicit":
        return {field: draw(st.one_of(vals, st.none()))}
    if op in ("$eq", "$ne"):
        return {field: {op: draw(st.one_of(vals, st.none()))}}
    if op in ("$in", "$nin"):
        return {field: {op: draw(st.lists(st.one_of(vals, st.none()), max_size=3))}}
    if op == "$exists":
        return {field: {op: draw(st.booleans())}}
    if op == "not":
        return {field: {"$not": {"$eq": draw(vals)}}}
    return {field: {op: draw(vals)}}


FILTERS: st.SearchStrategy[dict[str, Any]] = st.recursive(
    _leaf(),
    lambda children: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, children),
        st.builds(lambda a, b: {**a, **b}, children, children),
    ),
    max_leaves=7,
)


def _mixed_kinds(spec: Any) -> bool:
    """Whether a generated $in/$nin list mixes kinds (the parser refuses those)."""
    try:
        parse_filter(spec)
    except FilterError:
        return True
    return False


# --------------------------------------------------------------------------------- filters
class TestFilters:
    @PROPERTY
    @given(spec=FILTERS)
    def test_translation_matches_the_reference(self, spec: dict[str, Any]) -> None:
        if _mixed_kinds(spec):
            return
        compiled = compile_filter(spec, FIELDS)
        expr = parse_filter(spec)
        want = {r["id"] for r in RECORDS if matches(expr, r["metadata"])}
        if isinstance(compiled, bool):
            assert want == (set(OBJECTS) if compiled else set()), spec
            return
        for ne_matches_null in (False, True):
            got = {
                rid
                for rid, props in OBJECTS.items()
                if evaluate(compiled, props, ne_matches_null=ne_matches_null)
            }
            assert got == want, (spec, ne_matches_null)
        assert not any(isinstance(n, _FilterNot) for n in _walk(compiled))
        assert _FilterToGRPC.convert(compiled) is not None  # weaviate-client accepts it

    def test_every_operator_translates(self) -> None:
        specs = {
            "$eq": {"n": {"$eq": 1}},
            "$ne": {"n": {"$ne": 1}},
            "$gt": {"n": {"$gt": 1}},
            "$gte": {"n": {"$gte": 1}},
            "$lt": {"n": {"$lt": 1}},
            "$lte": {"n": {"$lte": 1}},
            "$in": {"n": {"$in": [1, 2]}},
            "$nin": {"n": {"$nin": [1, 2]}},
            "$exists": {"n": {"$exists": True}},
            "$and": {"$and": [{"n": 1}, {"s": "a"}]},
            "$or": {"$or": [{"n": 1}, {"s": "a"}]},
            "$not": {"$not": {"n": 1}},
        }
        assert set(specs) == {op.value for op in VECTORS_CAPS.filter_ops}
        for spec in specs.values():
            assert isinstance(compile_filter(spec, FIELDS), _Filters)

    def test_shapes(self) -> None:
        eq = compile_filter({"s": "a"}, FIELDS)
        assert isinstance(eq, _FilterValue)
        assert (eq.target, eq.operator, eq.value) == (property_name("s"), _Operator.EQUAL, "a")
        ne = compile_filter({"s": {"$ne": "a"}}, FIELDS)
        assert isinstance(ne, _FilterOr)
        assert [(f.operator, f.value) for f in ne.filters] == [  # type: ignore[attr-defined]
            (_Operator.IS_NULL, True),
            (_Operator.NOT_EQUAL, "a"),
        ]
        num = compile_filter({"n": {"$gte": 2}}, FIELDS)
        assert isinstance(num, _FilterValue)
        assert num.value == 2.0
        assert type(num.value) is float
        day = compile_filter({"d": {"$lt": "2024-01-03"}}, FIELDS)
        assert isinstance(day, _FilterValue)
        assert day.value == dt.datetime(2024, 1, 3, tzinfo=dt.UTC)
        not_gt = compile_filter({"$not": {"n": {"$gt": 1}}}, FIELDS)
        assert isinstance(not_gt, _FilterOr)
        assert [f.operator for f in not_gt.filters] == [  # type: ignore[attr-defined]
            _Operator.IS_NULL,
            _Operator.LESS_THAN_EQUAL,
        ]

    def test_constants(self) -> None:
        assert compile_filter(None, FIELDS) is TRUE
        assert compile_filter({}, FIELDS) is TRUE
        assert compile_filter({"nothere": 1}, FIELDS) is FALSE
        assert compile_filter({"nothere": {"$ne": 1}}, FIELDS) is TRUE
        assert compile_filter({"n": {"$in": []}}, FIELDS) is FALSE
        assert compile_filter({"$or": [{"nothere": 1}, {"n": 1}]}, FIELDS) == compile_filter(
            {"n": 1}, FIELDS
        )

    @pytest.mark.parametrize(
        "spec",
        [
            {"n": {"$gt": "2"}},
            {"n": "x"},
            {"s": {"$lt": 3}},
            {"b": 1},
            {"s": {"$in": [1, 2]}},
            {"tags": "x"},
            {"t": {"$gt": "not a time"}},
            {"n": {"$regex": "a"}},
            {"$or": []},
            {"bad field": 1},
        ],
        ids=repr,
    )
    def test_fail_closed_with_filter_errors(self, spec: dict[str, Any]) -> None:
        with pytest.raises(FilterError):
            compile_filter(spec, FIELDS)

    def test_nested_fields_are_unsupported(self) -> None:
        with pytest.raises(Unsupported):
            compile_filter({"user.country": "fr"}, FIELDS)


# ----------------------------------------------------------------------------------- names
_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,127}", fullmatch=True)
CLASS_RE = re.compile(r"^[A-Z][_0-9A-Za-z]{0,254}$")
PROP_RE = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")
TENANT_RE = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")


class TestNames:
    @settings(max_examples=300, deadline=None)
    @given(name=_NAME)
    def test_collection_names(self, name: str) -> None:
        cls = class_name("Strataml", name)
        assert CLASS_RE.match(cls)
        assert decode_class("Strataml", cls) == name
        assert decode_class("Other", cls) is None

    @settings(max_examples=200, deadline=None)
    @given(a=_NAME, b=_NAME)
    def test_collection_names_are_injective_even_ignoring_case(self, a: str, b: str) -> None:
        if a != b:
            assert class_name("S", a).lower() != class_name("S", b).lower()

    def test_examples(self) -> None:
        assert class_name("Strataml", "docs") == "Strataml_docs"
        assert class_name("Strataml", "My-Docs") == "Strataml__my_2D_docs"
        assert class_name("Strataml", "_x") == "Strataml___x"
        long = "Y-" * 64
        assert class_name("Strataml", long).startswith("Strataml__")
        assert decode_class("Strataml", class_name("Strataml", long)) == long
        assert decode_class("Strataml", "Strataml_UPPER") is None  # not an escaped form
        assert property_name("Lang") == "m__lang"
        assert field_of_property("m__lang") == "Lang"
        assert field_of_property("sm_text") is None

    @settings(max_examples=200, deadline=None)
    @given(field=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,63}", fullmatch=True))
    def test_property_names(self, field: str) -> None:
        prop = property_name(field)
        assert PROP_RE.match(prop)
        assert prop not in ("id", "_id", "_additional", "sm_id", "sm_text", "sm_meta")
        assert prop == prop.lower()
        assert field_of_property(prop) == field

    @settings(max_examples=300, deadline=None)
    @given(a=st.text(min_size=1, max_size=90), b=st.text(min_size=1, max_size=90))
    def test_tenant_names(self, a: str, b: str) -> None:
        ta = tenant_name(a)
        assert TENANT_RE.match(ta), ta
        if a != b:
            assert ta.lower() != tenant_name(b).lower()
        if len(ta) <= 64 and not ta.startswith("_-"):
            assert unescape(ta) == a

    def test_tenant_examples(self) -> None:
        assert tenant_name("acme") == "acme"
        assert tenant_name("ACME") == "_a_c_m_e"
        assert tenant_name("o'reilly") == "o_27reilly"
        assert tenant_name("t-1") == "t-1"
        assert tenant_name("x" * 65).startswith("_-")
        assert escape("a b") == "a_20b"

    def test_object_ids(self) -> None:
        assert object_uuid("r1") == object_uuid("r1")
        assert object_uuid("r1") != object_uuid("r2")
        assert object_uuid("r1").version == 5
        assert isinstance(object_uuid("é"), uuid.UUID)


# -------------------------------------------------------------------------------- schema
class TestSchema:
    @pytest.mark.parametrize("multi_tenant", [False, True])
    @pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
    def test_create_arguments_are_valid_for_the_client(
        self, metric: str, multi_tenant: bool
    ) -> None:
        meta = CollectionMeta(
            name="My-Docs",
            cls=class_name("Strataml", "My-Docs"),
            dim=8,
            metric=metric,  # type: ignore[arg-type]
            multi_tenant=multi_tenant,
            metadata={"model": "m-1"},
            fields={"lang": FieldType.STRING, "year": FieldType.INT, "tags": FieldType.LIST},
        )
        args = create_arguments(meta, IndexSettings(ef=64, ef_construction=100, max_connections=16))
        body = _CollectionConfigCreate(**args)._to_dict(emit_default_vector_index_type=True)
        assert body["class"] == "Strataml__my_2D_docs"
        assert json.loads(body["description"])["name"] == "My-Docs"
        props = {p["name"]: p for p in body["properties"]}
        assert set(props) == {"sm_id", "sm_text", "sm_meta", "m_lang", "m_year", "m_tags"}
        assert props["sm_text"]["indexSearchable"] is True
        assert props["sm_text"]["tokenization"] == "word"
        assert props["sm_meta"]["indexFilterable"] is False
        assert props["sm_meta"]["indexSearchable"] is False
        assert props["m_lang"]["tokenization"] == "field"
        assert props["m_lang"]["dataType"] == ["text"]
        assert props["m_year"]["dataType"] == ["number"]
        assert props["m_year"]["description"] == "strataml:int"
        inverted = body["invertedIndexConfig"]
        assert inverted["indexNullState"] is True
        assert inverted["stopwords"]["preset"] == "none"
        vector = body["vectorConfig"]["default"]
        distance = {"cosine": "cosine", "l2": "l2-squared", "dot": "dot"}[metric]
        assert vector["vectorIndexConfig"]["distance"] == distance
        assert vector["vectorIndexConfig"]["efConstruction"] == 100
        if multi_tenant:
            mt = body["multiTenancyConfig"]
            assert (mt["enabled"], mt["autoTenantCreation"], mt["autoTenantActivation"]) == (
                True,
                True,
                True,
            )
        else:
            assert "multiTenancyConfig" not in body

    def test_meta_round_trip_and_property_fallback(self) -> None:
        meta = CollectionMeta(
            name="docs",
            cls="Strataml_docs",
            dim=4,
            metric="l2",
            multi_tenant=True,
            metadata={"a": [1]},
            fields={"year": FieldType.INT},
        )
        text = describe_meta(meta)
        props = [
            ("sm_id", "text", None),
            ("m_year", "number", "strataml:int"),
            ("m_price", "number", None),  # a description update lost in a race
            ("m_at", "date", "strataml:date"),
        ]
        back = parse_meta("Strataml_docs", text, props)
        assert back is not None
        assert (back.name, back.dim, back.metric, back.multi_tenant) == ("docs", 4, "l2", True)
        assert back.fields == {
            "year": FieldType.INT,
            "price": FieldType.FLOAT,
            "at": FieldType.DATE,
        }
        assert parse_meta("X", "not json", []) is None
        assert parse_meta("X", json.dumps({"other": 1}), []) is None


# ---------------------------------------------------------------------------- codec/scores
class TestCodec:
    def test_metadata_round_trip_keeps_exact_types(self) -> None:
        meta = {
            "i": 2,
            "f": 2.0,
            "big": 2**63 - 1,
            "s": "é\x00'",
            "b": False,
            "at": dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC),
            "day": dt.date(2023, 12, 31),
            "tags": ["a", 1, 2.5, None, True],
        }
        back = decode_metadata(encode_metadata(meta))
        assert back == meta
        assert type(back["i"]) is int
        assert type(back["f"]) is float
        assert decode_metadata(None) == {}

    def test_object_properties(self) -> None:
        batch = prepare_batch(
            [
                {
                    "id": "a",
                    "vector": [0.0, 1.0],
                    "text": "hello",
                    "metadata": {"n": 3, "day": dt.date(2024, 1, 2), "tags": ["x"]},
                }
            ],
            dim=2,
            multi_tenant=False,
        )
        props = object_properties("a", "hello", batch.metadata[0], batch.field_types)
        assert props["sm_id"] == "a"
        assert props["sm_text"] == "hello"
        assert props["m_n"] == 3.0
        assert type(props["m_n"]) is float
        assert props["m_day"] == dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
        assert props["m_tags"] == '["x"]'
        assert decode_metadata(props["sm_meta"]) == {
            "n": 3,
            "day": dt.date(2024, 1, 2),
            "tags": ["x"],
        }
        assert "sm_text" not in object_properties("b", None, {}, {})

    @pytest.mark.parametrize(
        ("metric", "weaviate", "distance"),
        [("cosine", 0.25, 0.25), ("dot", -3.0, -3.0), ("l2", 9.0, 3.0), ("l2", -1e-9, 0.0)],
    )
    def test_dense_scores(self, metric: Any, weaviate: float, distance: float) -> None:
        got = dense_distance(metric, weaviate)
        assert got == pytest.approx(distance)
        assert 0.0 <= score_from_distance(metric, got) <= 1.0

    def test_keyword_scores(self) -> None:
        assert keyword_hit_scores(3.0) == (score_from_bm25(3.0), 3.0)
        assert keyword_hit_scores(-0.1) == (0.0, 0.0)

    def test_minmax(self) -> None:
        assert minmax([]) == []
        assert minmax([2.0, 2.0]) == [1.0, 1.0]
        assert minmax([3.0, 2.0, 1.0]) == [1.0, 0.5, 0.0]

    def test_object_vector(self) -> None:
        assert object_vector({"default": [1, 2]}) == [1.0, 2.0]
        assert object_vector([0.5]) == [0.5]
        assert object_vector({}) is None


# -------------------------------------------------------------------------------- batching
class TestBatching:
    def test_requests_respect_rows_and_bytes(self) -> None:
        sizes = [100] * 10
        plan = plan_requests([(None, list(range(10)))], sizes, batch_size=4, max_bytes=10_000)
        assert [len(i) for _, i in plan] == [4, 4, 2]
        plan = plan_requests([(None, list(range(10)))], sizes, batch_size=100, max_bytes=250)
        assert [len(i) for _, i in plan] == [2, 2, 2, 2, 2]
        plan = plan_requests([("a", [0, 2]), ("b", [1])], sizes, batch_size=100, max_bytes=10_000)
        assert plan == [("a", [0, 2]), ("b", [1])]
        assert sorted(i for _, idx in plan for i in idx) == [0, 1, 2]

    def test_one_record_over_the_limit_fails_before_anything(self) -> None:
        with pytest.raises(LimitExceeded):
            plan_requests([(None, [0, 1])], [10, 10_000], batch_size=10, max_bytes=1000)

    def test_estimate_grows_with_vector_and_text(self) -> None:
        small = estimate_bytes(8, {"sm_id": "a"})
        assert estimate_bytes(1024, {"sm_id": "a"}) - small == 4 * (1024 - 8)
        assert estimate_bytes(8, {"sm_id": "a", "sm_text": "é" * 100}) - small >= 200

    def test_text_must_be_valid_unicode(self) -> None:
        batch = prepare_batch(
            [{"id": "a", "vector": [0.0], "text": "bad \ud800"}], dim=1, multi_tenant=False
        )
        with pytest.raises(InvalidInput):
            check_text(batch)


# ---------------------------------------------------------------------------------- errors
def _status(code: int, body: Any = None) -> we.UnexpectedStatusCodeError:
    request = httpx.Request("GET", "http://127.0.0.1:8080/v1/schema")
    return we.UnexpectedStatusCodeError("call", httpx.Response(code, json=body, request=request))


class TestErrors:
    @pytest.mark.parametrize(
        ("exc", "kind"),
        [
            (_status(404, {"error": [{"message": "not found"}]}), NotFound),
            (_status(401), ConfigError),
            (_status(403), ConfigError),
            (_status(413), LimitExceeded),
            (_status(422, {"error": [{"message": "class name X already exists"}]}), Conflict),
            (_status(422, {"error": [{"message": "bad property"}]}), InvalidInput),
            (_status(503), Unavailable),
            (_status(418), BackendError),
            (we.WeaviateConnectionError("refused"), Unavailable),
            (we.WeaviateTimeoutError("slow"), Unavailable),
            (we.WeaviateClosedClientError(), Unavailable),
            (we.WeaviateInvalidInputError("bad"), InvalidInput),
            (we.WeaviateUnsupportedFeatureError("Aliases", "1.30.0", "1.32.0"), Unsupported),
            (we.WeaviateQueryError("class Foo not found", "GRPC"), NotFound),
            (we.WeaviateQueryError("grpc: message larger than max", "GRPC"), LimitExceeded),
            (we.WeaviateQueryError("boom", "GRPC"), BackendError),
            (we.WeaviateBaseError("other"), BackendError),
        ],
        ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
    )
    def test_translate(self, exc: BaseException, kind: type[Exception]) -> None:
        err = translate(exc, "searching 'docs'")
        assert type(err) is kind
        assert str(err).startswith("searching 'docs'")

    def test_redaction(self) -> None:
        text = (
            f"GET https://user:pw123@cluster.example/v1 failed; Authorization: Bearer {API_KEY}; "
            f"api_key={API_KEY}"
        )
        out = redact(text, [API_KEY])
        assert API_KEY not in out
        assert "pw123" not in out
        err = translate(we.WeaviateConnectionError(f"key {API_KEY} rejected"), "x", [API_KEY])
        assert API_KEY not in str(err)


# ------------------------------------------------------------------ store without a server
class _NoServer:
    """Stands for a client: any attribute access means the store tried to reach the server."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store reached the server ({name}) before checking its input")


class TestBeforeAnyIO:
    @pytest.fixture
    def store(self) -> WeaviateVectorStore:
        return WeaviateVectorStore(_NoServer())

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.create_collection("bad name!", 8),
            lambda s: s.create_collection("ok", 0),
            lambda s: s.create_collection("ok", True),
            lambda s: s.create_collection("ok", 8, "manhattan"),
            lambda s: s.create_collection("ok", 8, metadata={"x": object()}),
            lambda s: s.search("c", [0.1], k=0),
            lambda s: s.search("c"),
            lambda s: s.search("c", [0.1], text="t", alpha=1.5),
            lambda s: s.search("c", [0.1], text="t", alpha=math.nan),
            lambda s: s.search("c", [0.1], mode="sparse"),
            lambda s: s.scan("c", batch_size=0),
            lambda s: s.set_alias("bad name!", "c"),
            lambda s: s.drop_alias("a/b"),
            lambda s: s.describe("x.y"),
        ],
    )
    def test_invalid_input(self, store: WeaviateVectorStore, call: Any) -> None:
        with pytest.raises(InvalidInput):
            call(store)

    def test_closed_store(self, store: WeaviateVectorStore) -> None:
        store.close()
        store.close()
        with pytest.raises(Unavailable):
            store.collections()


# ----------------------------------------------------------------------- config / adapter
class TestConfig:
    def test_secrets_are_never_shown(self) -> None:
        config = WeaviateConfig(type="weaviate", url="https://c.example", api_key=API_KEY)
        assert API_KEY not in repr(config)
        assert API_KEY not in str(config.model_dump())
        assert API_KEY not in str(redact_settings({"api_key": API_KEY}))

    def test_endpoints(self) -> None:
        local = WeaviateConfig(type="weaviate", url="http://127.0.0.1:8080")
        assert local.endpoints() == ("127.0.0.1", 8080, False, "127.0.0.1", 50051, False)
        cloud = WeaviateConfig(
            type="weaviate", url="https://c.example", grpc_host="grpc-c.example", grpc_port=443
        )
        assert cloud.endpoints() == ("c.example", 443, True, "grpc-c.example", 443, True)
        assert WeaviateConfig(type="weaviate", url="http://h", api_key="  ").api_key is None

    @pytest.mark.parametrize(
        "bad",
        [
            {"url": "ftp://h"},
            {"url": "not a url"},
            {"url": "http://h", "collection_prefix": "lower"},
            {"url": "http://h", "collection_prefix": "Has_Underscore"},
            {"url": "http://h", "batch_size": 0},
            {"url": "http://h", "unknown": 1},
        ],
        ids=repr,
    )
    def test_validation(self, bad: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="validation error"):
            WeaviateConfig(type="weaviate", **bad)

    def test_adapter_declaration(self) -> None:
        assert get_adapter("weaviate") is WEAVIATE
        assert set(WEAVIATE.factories) == {"vectors"}
        assert set(WEAVIATE.async_factories) == {"vectors"}
        caps = WEAVIATE.capabilities["vectors"]
        assert all((caps.hybrid, caps.keyword, caps.tenants, caps.aliases, caps.async_api))
        assert caps.filter_ops == VECTORS_CAPS.filter_ops

    def test_importing_the_adapter_does_not_import_the_client(self) -> None:
        code = "import sys, strataml_weaviate; print('weaviate' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"
