"""pgvector-specific behaviour: the JSONB filter compiler against the reference semantics,
SQL injection attempts, filtered search returning k rows (iterative scans + exact fallback),
halfvec and exact collections, bulk loads, concurrency, stale caches and error translation.

Everything runs against the real PostgreSQL + pgvector started by ``conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.dev.servers import ServerHandle, free_port
from strataml.errors import (
    Conflict,
    DimensionMismatch,
    FilterError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StrataError,
    Unavailable,
    Unsupported,
)
from strataml.filters import Compare, FieldType, Op, matches, parse_filter
from strataml.registry import StackContext
from strataml.vectors.batch import normalize_metadata
from strataml_postgres import PostgresConfig, database
from strataml_postgres.vector_filters import PgVectorFilterCompiler, compile_filter
from strataml_postgres.vectors import PgVectorStore

PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def store(pg_db: Any) -> Iterator[PgVectorStore]:
    s = PgVectorStore(pg_db)
    yield s
    s.close()


@pytest.fixture
def raw(pg_server: ServerHandle, pg_config: PostgresConfig) -> Iterator[psycopg.Connection[Any]]:
    """A bare autocommit connection on the test's schema (for inspection and interference)."""
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(f"SET search_path = {pg_config.schema_name}, public")
        yield conn


@pytest.fixture
def other_store(pg_config: PostgresConfig) -> Iterator[Callable[[], PgVectorStore]]:
    """Independent stores (own pools) on the same schema: another process, in effect."""
    ctxs: list[StackContext] = []
    stores: list[PgVectorStore] = []

    def make() -> PgVectorStore:
        ctx = StackContext()
        ctxs.append(ctx)
        s = PgVectorStore(database(pg_config, ctx))
        stores.append(s)
        return s

    yield make
    for s in stores:
        s.close()
    for c in ctxs:
        c.close()


def _vecs(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def _table(raw: psycopg.Connection[Any], name: str) -> str:
    row = raw.execute(
        "SELECT table_name FROM _strataml_vector_collections WHERE name = %s", (name,)
    ).fetchone()
    assert row is not None
    return str(row[0])


# ------------------------------------------------------------------------- filter compiler
class TestCompiler:
    def test_values_and_field_names_are_bound_never_inlined(self) -> None:
        payload = "x'); DROP TABLE t; --"
        where, params = compile_filter(
            {"lang": payload, "year": {"$gte": 2020}, "tags": {"$in": [payload, "b"]}},
            {"lang": FieldType.STRING, "year": FieldType.INT, "tags": FieldType.STRING},
        )
        assert payload not in where
        assert "DROP" not in where
        for name in ("lang", "year", "tags"):
            assert name not in where  # field names travel as parameters too
            assert name in params
        assert payload in params
        assert where.count("%s") == len(params)

    def test_types_follow_the_tracked_field_type(self) -> None:
        fields = {
            "n": FieldType.INT,
            "s": FieldType.STRING,
            "b": FieldType.BOOL,
            "t": FieldType.TIMESTAMP,
            "d": FieldType.DATE,
        }
        assert "::numeric" in compile_filter({"n": {"$gt": 1}}, fields)[0]
        assert 'COLLATE "C"' in compile_filter({"s": {"$lt": "m"}}, fields)[0]
        assert "::boolean" in compile_filter({"b": True}, fields)[0]
        assert "timestamptz" in compile_filter({"t": {"$gt": dt.datetime(2024, 1, 1)}}, fields)[0]
        assert "::date" in compile_filter({"d": dt.date(2024, 1, 1)}, fields)[0]

    def test_unknown_fields_are_absent_constants(self) -> None:
        assert compile_filter({"nope": 1}, {}) == ("FALSE", [])
        assert compile_filter({"nope": {"$ne": 1}}, {}) == ("TRUE", [])
        assert compile_filter({"nope": None}, {}) == ("TRUE", [])

    def test_errors(self) -> None:
        with pytest.raises(FilterError):
            compile_filter({"n": {"$gt": "x"}}, {"n": FieldType.INT})
        with pytest.raises(FilterError):
            compile_filter({"n": {"$regex": "x"}}, {"n": FieldType.INT})
        with pytest.raises(FilterError):
            compile_filter({"bad name": 1}, {})
        with pytest.raises(Unsupported):
            compile_filter({"a.b": 1}, {"a": FieldType.STRING})
        with pytest.raises(FilterError):
            compile_filter({"s": "a\x00b"}, {"s": FieldType.STRING})
        with pytest.raises(FilterError):
            compile_filter({"t": "not a date"}, {"t": FieldType.TIMESTAMP})
        with pytest.raises(FilterError):
            compile_filter({"l": "x"}, {"l": FieldType.LIST})
        assert compile_filter(None, {}) == ("TRUE", [])
        assert compile_filter({}, {}) == ("TRUE", [])


# ---------------------------------------------------------------- filters vs the reference
_STRINGS = ["a", "A", "ab", "é", "ß", "日本", "", " ", "'", "''", "\\", "%s", "?", "a'b", "z" * 9]
_INTS = [0, 1, -1, 2, 7, 2**31, 2**53, 2**53 + 1, 2**63 - 1, -(2**63)]
_FLOATS = [0.0, -0.0, 0.1, 0.3, 0.1 + 0.2, 1.5, -2.5, 7.0, 1e16, 2.0**53, 1e-300, 5e-324, 1e300]
_UTC = dt.UTC
_TIMES = [
    dt.datetime(2024, 1, 1, tzinfo=_UTC),
    dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=_UTC),
    dt.datetime(2024, 1, 1, 5, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=_UTC),
    dt.datetime(1970, 1, 1, tzinfo=_UTC),
]
_DATES = [dt.date(2024, 1, 1), dt.date(2023, 12, 31), dt.date(1999, 12, 31)]
_TEXT_ALPHABET = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")

_numbers = st.one_of(
    st.sampled_from(_INTS + _FLOATS),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
_KIND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "i": st.one_of(st.sampled_from(_INTS), st.integers(-(2**63), 2**63 - 1)),
    "f": _numbers,
    "s": st.one_of(st.sampled_from(_STRINGS), st.text(_TEXT_ALPHABET, max_size=4)),
    "b": st.booleans(),
    "t": st.sampled_from(_TIMES),
    "d": st.sampled_from(_DATES),
}
# filter values per field: numbers compare with numbers, timestamps with dates and timestamps
_FILTER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "i": _numbers,
    "f": _numbers,
    "s": _KIND_VALUES["s"],
    "b": st.booleans(),
    "t": st.sampled_from(_TIMES + _DATES + [dt.datetime(2024, 1, 1, 0, 0)]),
    "d": st.sampled_from(_DATES + _TIMES + [dt.datetime(2023, 12, 31, 12)]),
}
_FIELDS = list(_KIND_VALUES)


@st.composite
def _record_meta(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for f in draw(st.sets(st.sampled_from([*_FIELDS, "l"]))):
        meta[f] = ["x", 1] if f == "l" else draw(_KIND_VALUES[f])
    return meta


@st.composite
def _leaf(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from([*_FIELDS, "l", "missing"]))
    if field == "l":  # list fields only answer $exists (check_types rejects the rest)
        return {field: {"$exists": draw(st.booleans())}}
    if field == "missing":
        op = draw(st.sampled_from(["$exists", "none", "$ne_none", "$in_none"]))
        if op == "$exists":
            return {field: {"$exists": draw(st.booleans())}}
        if op == "$in_none":
            return {field: {"$in": [None]}}
        return {field: None} if op == "none" else {field: {"$ne": None}}
    vals = _FILTER_VALUES[field]
    ops = ["$eq", "$ne", "$in", "$nin", "$exists", "implicit"]
    if field != "b":
        ops += ["$gt", "$gte", "$lt", "$lte"]
    op = draw(st.sampled_from(ops))
    if op == "implicit":
        return {field: draw(st.one_of(vals, st.none()))}
    if op in ("$in", "$nin"):
        items = draw(st.lists(st.one_of(vals, st.none()), max_size=3))
        kinds = {type(v).__name__ for v in items if v is not None}
        if field in ("t", "d") and len(kinds) > 1:  # one kind per list
            items = [v for v in items if v is None or isinstance(v, dt.datetime)]
        return {field: {op: items}}
    if op == "$exists":
        return {field: {op: draw(st.booleans())}}
    if op in ("$eq", "$ne"):
        return {field: {op: draw(st.one_of(vals, st.none()))}}
    return {field: {op: draw(vals)}}


_FILTERS = st.recursive(
    _leaf(),
    lambda children: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, children),
    ),
    max_leaves=5,
)


def test_filters_match_the_reference_on_real_postgres(store: PgVectorStore) -> None:
    """Random records of every kind (big ints, float edge cases, unicode, quotes, timestamps in
    several offsets, dates, lists, missing fields) and random filters: PostgreSQL's answer is
    the one of :func:`strataml.filters.matches`. Each example uses its own tenant."""
    store.create_collection("props", 4, multi_tenant=True)
    counter = iter(range(10**6))

    @PROPERTY
    @given(metas=st.lists(_record_meta(), min_size=1, max_size=10), spec=_FILTERS)
    def check(metas: list[dict[str, Any]], spec: dict[str, Any]) -> None:
        tenant = f"t{next(counter)}"
        vecs = _vecs(len(metas), 4, seed=len(metas))
        store.upsert(
            "props",
            [
                {"id": f"r{i}", "vector": v, "metadata": m, "tenant": tenant}
                for i, (m, v) in enumerate(zip(metas, vecs, strict=True))
            ],
        )
        expr = parse_filter(spec)
        # the reference sees the values as the batch normalises them (aware UTC timestamps)
        expected = {f"r{i}" for i, m in enumerate(metas) if matches(expr, normalize_metadata(m)[0])}
        assert store.count("props", filter=spec, tenant=tenant) == len(expected), spec
        hits = store.search("props", [1.0, 0.5, 0.2, 0.1], k=20, filter=spec, tenant=tenant)
        assert {h.id for h in hits} == expected, spec

    check()


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"x": 2**53}, {"int53", "float53"}),
        ({"x": 2**53 + 1}, {"int53p1"}),
        ({"x": float(2**53)}, {"int53", "float53"}),
        ({"x": {"$gt": float(2**53)}}, {"int53p1", "big", "f60"}),
        ({"x": 0.1}, {"tenth"}),
        ({"x": {"$lt": 0.1}}, {"zero"}),
        ({"x": {"$lte": 0.1}}, {"zero", "tenth"}),
        ({"x": {"$in": [0.1, 2**53 + 1]}}, {"tenth", "int53p1"}),
        ({"x": 2**63 - 1}, {"big"}),
        ({"x": {"$gte": 9.223372036854776e18}}, set()),
        ({"x": 2**60}, {"f60"}),
        ({"x": {"$lt": 2**60}}, {"zero", "tenth", "int53", "float53", "int53p1"}),
        ({"x": {"$gt": 2**60 - 1}}, {"f60", "big"}),
        ({"x": {"$nin": [2.0**60, 0.1]}}, {"zero", "int53", "float53", "int53p1", "big"}),
    ],
)
def test_numbers_compare_exactly_like_python(
    store: PgVectorStore, spec: dict[str, Any], expected: set[str]
) -> None:
    store.create_collection("nums", 4)
    values = {
        "zero": 0.0,
        "tenth": 0.1,
        "int53": 2**53,
        "float53": float(2**53),
        "int53p1": 2**53 + 1,
        "big": 2**63 - 1,
        "f60": 2.0**60,  # repr() is not exact: '1.152921504606847e+18'
    }
    store.upsert(
        "nums",
        [{"id": k, "vector": [1, 0, 0, 0], "metadata": {"x": v}} for k, v in values.items()],
    )
    ref = {k for k, v in values.items() if matches(parse_filter(spec), {"x": v})}
    assert ref == expected  # the reference agrees with the case table
    assert {h.id for h in store.search("nums", [1, 0, 0, 0], k=10, filter=spec)} == expected


def test_timestamp_fields_accept_iso_strings(store: PgVectorStore) -> None:
    store.create_collection("iso", 4)
    store.upsert(
        "iso",
        [
            {"id": "a", "vector": [1, 0, 0, 0], "metadata": {"at": dt.datetime(2024, 5, 1, 12)}},
            {"id": "b", "vector": [0, 1, 0, 0], "metadata": {"at": dt.datetime(2024, 6, 1)}},
            {"id": "c", "vector": [0, 0, 1, 0], "metadata": {"day": dt.date(2024, 5, 2)}},
        ],
    )
    assert store.count("iso", filter={"at": {"$gt": "2024-05-15"}}) == 1
    assert store.count("iso", filter={"at": "2024-05-01T14:00:00+02:00"}) == 1
    assert store.count("iso", filter={"day": {"$gte": "2024-05-02"}}) == 1
    with pytest.raises(FilterError):
        store.count("iso", filter={"at": "yesterday"})
    (rec,) = store.get("iso", ["a"])
    assert rec.metadata["at"] == dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


# ------------------------------------------------------------------------------ injection
_PAYLOADS = [
    "x' OR '1'='1",
    "'; DROP TABLE _strataml_vector_collections; --",
    "\\'; SELECT pg_sleep(10); --",
    '"; DELETE FROM x; --',
    "%s%s%(x)s",
    "$1) OR (1=1",
    "a & b | !c <-> d:*",
]


def _intact(raw: psycopg.Connection[Any], store: PgVectorStore, name: str, n: int) -> None:
    assert raw.execute("SELECT count(*) FROM _strataml_vector_collections").fetchone() is not None
    assert store.count(name) == n


def test_injection_through_filter_values_is_inert(
    store: PgVectorStore, raw: psycopg.Connection[Any]
) -> None:
    store.create_collection("inj", 4)
    recs = [
        {"id": f"p{i}", "vector": [1, i, 0, 0], "metadata": {"s": p}}
        for i, p in enumerate(_PAYLOADS)
    ]
    recs.append({"id": "plain", "vector": [0, 0, 1, 0], "metadata": {"s": "plain"}})
    store.upsert("inj", recs)
    for i, p in enumerate(_PAYLOADS):
        assert [h.id for h in store.search("inj", [1, 0, 0, 0], k=20, filter={"s": p})] == [f"p{i}"]
        assert store.count("inj", filter={"s": {"$in": [p, "nope"]}}) == 1
        assert store.count("inj", filter={"s": {"$ne": p}}) == len(recs) - 1
        store.search("inj", text=p, k=5)  # search text is bound too: runs, never a SQL error
    _intact(raw, store, "inj", len(recs))


def test_injection_through_field_names_is_inert(
    store: PgVectorStore, raw: psycopg.Connection[Any]
) -> None:
    store.create_collection("injf", 4)
    store.upsert("injf", [{"id": "a", "vector": [1, 0, 0, 0], "metadata": {"year": 2020}}])
    for p in _PAYLOADS:
        with pytest.raises(FilterError):  # the parser rejects it ...
            store.count("injf", filter={p: 1})
        with pytest.raises(InvalidInput):  # ... and so does the write path
            store.upsert("injf", [{"id": "b", "vector": [0, 1, 0, 0], "metadata": {p: 1}}])
        # ... and even a hand-built tree that skips the parser only binds the name
        evil = Compare(p, Op.EQ, 2020)
        where, params = PgVectorFilterCompiler({p: FieldType.INT}).compile(evil)
        assert p not in where
        assert p in params
        table = _table(raw, "injf")
        got = raw.execute(f'SELECT count(*) FROM "{table}" WHERE {where}', params).fetchone()
        assert got == (0,)
    _intact(raw, store, "injf", 1)


def test_injection_through_tenants_ids_names_and_text_is_inert(
    store: PgVectorStore, raw: psycopg.Connection[Any]
) -> None:
    store.create_collection("injt", 4, multi_tenant=True)
    store.upsert(
        "injt",
        [{"id": "secret", "vector": [1, 0, 0, 0], "tenant": "victim", "text": "secret plans"}]
        + [{"id": p, "vector": [0, 1, 0, 0], "tenant": p, "text": p} for p in _PAYLOADS],
    )
    for p in _PAYLOADS:
        assert [h.id for h in store.search("injt", [1, 0, 0, 0], k=10, tenant=p)] == [p]
        assert store.count("injt", tenant=p) == 1
        assert [r.id for r in store.get("injt", [p, "secret"], tenant=p)] == [p]
        assert {h.id for h in store.search("injt", text="secret plans " + p, tenant=p)} <= {p}
        store.delete("injt", ["secret", "nope' OR '1'='1"], tenant=p)
        with pytest.raises(InvalidInput):
            store.create_collection(p, 4)
        with pytest.raises(InvalidInput):
            store.describe(p)
    assert [r.id for r in store.get("injt", ["secret"], tenant="victim")] == ["secret"]
    assert raw.execute("SELECT count(*) FROM _strataml_vector_collections").fetchone() == (1,)
    assert sum(store.count("injt", tenant=t) for t in ["victim", *_PAYLOADS]) == len(_PAYLOADS) + 1


# ------------------------------------------------------------- filtered search returns k
def _clustered_collection(store: PgVectorStore, name: str, n: int, dim: int = 16) -> np.ndarray:
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(20, dim))
    data = centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim))
    store.create_collection(name, dim)
    store.upsert(
        name,
        [
            {"id": str(i), "vector": v, "metadata": {"g": i % 10, "rare": i % 1000 == 7}}
            for i, v in enumerate(data)
        ],
    )
    return data


def test_iterative_scan_is_what_returns_k_filtered_rows(
    store: PgVectorStore, raw: psycopg.Connection[Any]
) -> None:
    """With the HNSW plan forced, iterative scans off lose rows of a 10 % filter; the store's
    settings (relaxed_order) return all k."""
    data = _clustered_collection(store, "iter", 3000)
    raw.execute(f'ANALYZE "{_table(raw, "iter")}"')
    where, params = compile_filter({"g": 3}, store.describe("iter").fields)
    table = _table(raw, "iter")
    query = (
        f"SELECT id FROM \"{table}\" WHERE tenant = '' AND {where} "
        "ORDER BY embedding <=> %s::vector LIMIT 10"
    )
    q = str(data[0].tolist())
    raw.execute("SET enable_sort = off")  # force the index-ordered plan
    raw.execute("SET hnsw.ef_search = 20")
    raw.execute("SET hnsw.iterative_scan = off")
    assert len(raw.execute(query, [*params, q]).fetchall()) < 10
    raw.execute("SET hnsw.iterative_scan = relaxed_order")
    assert len(raw.execute(query, [*params, q]).fetchall()) == 10
    plan = "\n".join(r[0] for r in raw.execute("EXPLAIN " + query, [*params, q]).fetchall())
    assert "_hnsw" in plan
    # the store's read sessions run with these settings
    settings_row = store._read(
        "settings",
        lambda c: c.execute(
            "SELECT current_setting('hnsw.iterative_scan'), current_setting('hnsw.ef_search')"
        ).fetchone(),
    )
    assert settings_row == ("relaxed_order", "100")
    # the store: k hits, all matching, close to the exact filtered ranking
    g3 = np.flatnonzero(np.arange(3000) % 10 == 3)
    norm = data / np.linalg.norm(data, axis=1, keepdims=True)
    for i in range(0, 40, 4):
        hits = store.search("iter", data[i], k=10, filter={"g": 3})
        assert len(hits) == 10
        assert all(h.metadata["g"] == 3 for h in hits)
        sims = norm[g3] @ (data[i] / np.linalg.norm(data[i]))
        exact = {str(j) for j in g3[np.argsort(-sims)[:10]]}
        assert len(exact & {h.id for h in hits}) >= 8


def test_very_selective_filters_fall_back_to_an_exact_scan(pg_db: Any) -> None:
    store = PgVectorStore(pg_db, ef_search=10, max_scan_tuples=30)
    try:
        data = _clustered_collection(store, "rare", 3000)
        hits = store.search("rare", data[0], k=10, filter={"rare": True})
        assert sorted(h.id for h in hits) == ["1007", "2007", "7"]  # every match, nothing else
        hits = store.search("rare", data[1], k=10, filter={"g": 3})
        assert len(hits) == 10
        assert all(h.metadata["g"] == 3 for h in hits)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
    finally:
        store.close()


def test_small_tenant_in_a_big_collection_gets_k_hits(pg_db: Any) -> None:
    store = PgVectorStore(pg_db, bulk_rebuild_rows=1000)
    try:
        store.create_collection("tenants", 8, multi_tenant=True)
        data = _vecs(2010, seed=11)
        store.upsert(
            "tenants",
            [
                {"id": str(i), "vector": v, "tenant": "big" if i < 2000 else "small"}
                for i, v in enumerate(data)
            ],
        )
        hits = store.search("tenants", data[5], k=10, tenant="small")
        assert sorted(h.id for h in hits) == [str(i) for i in range(2000, 2010)]
        assert {h.tenant for h in hits} == {"small"}
        big = store.search("tenants", data[2005], k=1500, tenant="big")  # k > ef_search max
        assert len(big) == 1500
        assert len({h.id for h in big}) == 1500
        assert all(h.tenant == "big" for h in big)
    finally:
        store.close()


# ----------------------------------------------------------------- dims, bulk, settings
@pytest.mark.parametrize(("dim", "kind"), [(2048, "hnsw_halfvec"), (4100, "exact")])
def test_high_dimensions(
    store: PgVectorStore, raw: psycopg.Connection[Any], dim: int, kind: str
) -> None:
    name = f"d{dim}"
    store.create_collection(name, dim, "l2")
    data = _vecs(12, dim, seed=dim)
    store.upsert(name, [{"id": str(i), "vector": v} for i, v in enumerate(data)])
    row = raw.execute(
        "SELECT index_kind FROM _strataml_vector_collections WHERE name = %s", (name,)
    ).fetchone()
    assert row == (kind,)
    indexes = {
        r[0]
        for r in raw.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s", (_table(raw, name),)
        )
    }
    assert any("halfvec" in d for d in indexes) is (kind == "hnsw_halfvec")
    hits = store.search(name, data[3], k=3, include_vectors=True)
    assert hits[0].id == "3"
    assert hits[0].distance == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(hits[0].vector, data[3].astype(np.float32), rtol=0, atol=0)  # full precision
    exact = np.linalg.norm(data - data[3], axis=1)
    assert [h.id for h in hits] == [str(i) for i in np.argsort(exact)[:3]]
    assert hits[1].distance == pytest.approx(float(exact[int(hits[1].id)]), rel=1e-5)
    with pytest.raises(DimensionMismatch):
        store.search(name, data[3][:-1])


def test_dimension_limits(store: PgVectorStore) -> None:
    with pytest.raises(LimitExceeded):
        store.create_collection("huge", 16_001)
    assert "huge" not in store.collections()


def test_bulk_upsert_rebuilds_the_index(pg_db: Any, raw: psycopg.Connection[Any]) -> None:
    store = PgVectorStore(pg_db, bulk_rebuild_rows=50)
    try:
        store.create_collection("bulk", 8, "dot")
        data = _vecs(120, seed=9)
        store.upsert("bulk", [{"id": str(i), "vector": v} for i, v in enumerate(data[:60])])
        table = _table(raw, "bulk")
        idx = raw.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            (table, "%_hnsw"),
        ).fetchall()
        assert len(idx) == 1
        store.upsert("bulk", [{"id": str(i), "vector": v} for i, v in enumerate(data)])
        assert store.count("bulk") == 120
        hits = store.search("bulk", data[77], k=120)
        ips = data @ data[77]
        assert hits[0].id == str(int(np.argmax(ips)))
        assert len(hits) == 120
    finally:
        store.close()


def test_bad_settings_are_config_errors(pg_db: Any) -> None:
    from strataml.errors import ConfigError

    for kwargs in (
        {"ef_search": 0},
        {"ef_search": True},
        {"hnsw_m": 1},
        {"hnsw_m": 16, "hnsw_ef_construction": 20},
        {"iterative_scan": "sometimes"},
        {"build_memory": "lots"},
        {"reindex_ratio": 1.5},
        {"reindex_ratio": True},
    ):
        with pytest.raises(ConfigError):
            PgVectorStore(pg_db, **kwargs)


# ------------------------------------------------------------------ keyword specifics
def test_keyword_is_an_or_of_terms_and_tolerates_any_text(store: PgVectorStore) -> None:
    store.create_collection("kw", 4)
    store.upsert(
        "kw",
        [
            {"id": "both", "vector": [1, 0, 0, 0], "text": "the refund policy for orders"},
            {"id": "one", "vector": [0, 1, 0, 0], "text": "our refund desk"},
            {"id": "none", "vector": [0, 0, 1, 0], "text": "shipping times"},
        ],
    )
    hits = store.search("kw", text="refund policies", k=10)
    assert [h.id for h in hits] == ["both", "one"]  # stemming; OR of terms; more terms rank higher
    assert store.search("kw", text="the and of", k=5) == []  # only stop words
    for odd in ["a & b", "!", "(", "':*", "x <-> y", "\\", "naïve café", "1.5e3 -x"]:
        store.search("kw", text=odd, k=5)
        store.search("kw", [1, 0, 0, 0], text=odd, k=5)


# ------------------------------------------------------------------ text PG cannot store
def test_text_postgres_cannot_store_is_rejected_before_writing(store: PgVectorStore) -> None:
    store.create_collection("nul", 4, multi_tenant=True)
    bad = [
        {"id": "a\x00", "vector": [1, 0, 0, 0], "tenant": "t"},
        {"id": "a", "vector": [1, 0, 0, 0], "tenant": "t\x00"},
        {"id": "a", "vector": [1, 0, 0, 0], "tenant": "t", "text": "x\x00"},
        {"id": "a", "vector": [1, 0, 0, 0], "tenant": "t", "metadata": {"s": "\x00"}},
        {"id": "a", "vector": [1, 0, 0, 0], "tenant": "t", "metadata": {"l": ["\x00"]}},
        {"id": "a", "vector": [1, 0, 0, 0], "tenant": "t", "text": "\ud800"},
    ]
    for rec in bad:
        with pytest.raises(InvalidInput):
            store.upsert("nul", [{"id": "ok", "vector": [0, 1, 0, 0], "tenant": "t"}, rec])
    assert store.count("nul", tenant="t") == 0
    assert store.describe("nul").fields == {}
    with pytest.raises(InvalidInput):
        store.search("nul", text="a\x00", tenant="t")
    with pytest.raises(InvalidInput):
        store.get("nul", ["\ud800"], tenant="t")
    with pytest.raises(FilterError):
        store.count("nul", tenant="t", filter={"s": "\x00"})


# -------------------------------------------------------------------------- concurrency
def _race(fns: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(fns))
    out: list[Any] = [None] * len(fns)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fns[i]()
        except StrataError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_concurrent_creates_conflict_cleanly(other_store: Callable[[], PgVectorStore]) -> None:
    stores = [other_store() for _ in range(4)]
    results = _race([lambda s=s: s.create_collection("race", 8) for s in stores])
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    results = _race([lambda s=s: s.create_collection("race", 8, exist_ok=True) for s in stores])
    assert all(r.dim == 8 for r in results)
    assert stores[0].collections().count("race") == 1


def test_concurrent_writers_cannot_give_a_field_two_types(
    other_store: Callable[[], PgVectorStore],
) -> None:
    a, b = other_store(), other_store()
    a.create_collection("types", 4)
    b.describe("types")  # both have the collection cached, without the field
    results = _race(
        [
            lambda: a.upsert("types", [{"id": "x", "vector": [1, 0, 0, 0], "metadata": {"f": 1}}]),
            lambda: b.upsert(
                "types", [{"id": "y", "vector": [0, 1, 0, 0], "metadata": {"f": "s"}}]
            ),
        ]
    )
    assert sorted(type(r).__name__ for r in results) == ["InvalidInput", "int"]
    info = a.describe("types")
    assert info.count == 1
    winner = "x" if results[0] == 1 else "y"
    assert info.fields == {"f": FieldType.INT if winner == "x" else FieldType.STRING}


def test_stale_caches_follow_drops_recreates_and_new_fields(
    other_store: Callable[[], PgVectorStore],
) -> None:
    a, b = other_store(), other_store()
    a.create_collection("stale", 4)
    a.upsert("stale", [{"id": "old", "vector": [1, 0, 0, 0]}])
    assert a.count("stale") == 1
    b.drop_collection("stale")
    b.create_collection("stale", 6, "l2")
    b.upsert(
        "stale",
        [{"id": "new", "vector": [1, 0, 0, 0, 0, 0], "metadata": {"at": dt.datetime(2024, 1, 1)}}],
    )
    with pytest.raises(DimensionMismatch):
        a.search("stale", [1, 0, 0, 0])  # a sees the new shape, not the old table
    (hit,) = a.search("stale", [1, 0, 0, 0, 0, 0], k=5)
    assert hit.metric == "l2"
    assert hit.metadata["at"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert a.count("stale", filter={"at": {"$gte": dt.date(2024, 1, 1)}}) == 1
    b.drop_collection("stale")
    with pytest.raises(NotFound):
        a.count("stale")


# ------------------------------------------------------------------------------- errors
def test_statement_timeout_is_unavailable(
    pg_server: ServerHandle, pg_config: PostgresConfig, raw: psycopg.Connection[Any]
) -> None:
    config = pg_config.model_copy(update={"statement_timeout_ms": 300})
    ctx = StackContext()
    store = PgVectorStore(database(config, ctx))
    try:
        store.create_collection("slow", 4)
        store.upsert("slow", [{"id": "a", "vector": [1, 0, 0, 0]}])
        table = _table(raw, "slow")
        with psycopg.connect(pg_server.url) as locker:
            locker.execute(f'LOCK TABLE {pg_config.schema_name}."{table}" IN ACCESS EXCLUSIVE MODE')
            with pytest.raises(Unavailable, match="timeout") as info:
                store.search("slow", [1, 0, 0, 0])
            assert isinstance(info.value.__cause__, psycopg.errors.QueryCanceled)
            with pytest.raises(Unavailable):
                store.upsert("slow", [{"id": "b", "vector": [0, 1, 0, 0]}])
        assert store.count("slow") == 1
    finally:
        store.close()
        ctx.close()


def test_unreachable_server_is_unavailable_and_secrets_stay_secret() -> None:
    url = f"postgresql://someone:s3cr3t-pw@127.0.0.1:{free_port()}/db"
    config = PostgresConfig(url=url, schema="x", connect_timeout_s=1.0)
    ctx = StackContext()
    store = PgVectorStore(database(config, ctx))
    try:
        with pytest.raises(Unavailable) as info:
            store.collections()
        assert "s3cr3t-pw" not in str(info.value)
        assert "s3cr3t-pw" not in repr(store)
        assert "s3cr3t-pw" not in repr(config)
    finally:
        store.close()
        ctx.close()


def test_closed_store_is_unavailable(pg_db: Any) -> None:
    store = PgVectorStore(pg_db)
    store.create_collection("c", 4)
    store.close()
    store.close()
    for call in (
        lambda: store.collections(),
        lambda: store.search("c", [1, 0, 0, 0]),
        lambda: store.create_collection("d", 4),
    ):
        with pytest.raises(Unavailable):
            call()


def test_a_broken_read_connection_is_replaced(
    store: PgVectorStore, raw: psycopg.Connection[Any]
) -> None:
    store.create_collection("conn", 4)
    store.upsert("conn", [{"id": "a", "vector": [1, 0, 0, 0]}])
    assert store.count("conn") == 1
    raw.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'strataml' AND pid <> pg_backend_pid() AND state = 'idle'"
    )
    assert [h.id for h in store.search("conn", [1, 0, 0, 0])] == ["a"]
    assert store.count("conn") == 1
