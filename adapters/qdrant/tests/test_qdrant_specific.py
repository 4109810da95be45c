"""Qdrant-specific tests: filter translation (property-tested against the reference evaluator
on the real local engine), BM25 weights, payload layout, request splitting and limits, error
mapping, config, aliases under concurrent readers, and the adapter's stack wiring."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import socket
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from strataml.errors import (
    BackendError,
    Conflict,
    FilterError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    Unavailable,
    Unsupported,
)
from strataml.filters import FieldType, matches, parse_filter, value_kind
from strataml.registry import StackContext
from strataml_qdrant import QDRANT, VECTORS_CAPS
from strataml_qdrant import filters as qfilters
from strataml_qdrant.bm25 import Bm25Params, query_terms, term_index, tokens
from strataml_qdrant.config import QdrantConfig
from strataml_qdrant.errors import redact, translate
from strataml_qdrant.payload import NAMESPACE, point_id, split_by_size
from strataml_qdrant.store import QdrantVectorStore

from .conftest import Factory, local_config

DIM = 4
UTC = dt.UTC


def _vec(i: int) -> list[float]:
    rng = np.random.default_rng(i)
    return rng.normal(size=DIM).tolist()


# --------------------------------------------------------------------------------- filters
_T0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
_WORDS = ["", "a", "b", "ab", "é", "Z", "a b", "zz", "\U0001f600"]


def _typed_rows() -> list[dict[str, Any]]:
    """Records covering every filterable kind, with absent values."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    for i in range(40):
        meta: dict[str, Any] = {}
        if rng.random() < 0.75:
            meta["at"] = _T0 + dt.timedelta(hours=int(rng.integers(-48, 48)))
        if rng.random() < 0.75:
            meta["day"] = dt.date(2024, 1, 1) + dt.timedelta(days=int(rng.integers(-3, 3)))
        if rng.random() < 0.75:
            meta["w"] = str(rng.choice(_WORDS))
        if rng.random() < 0.75:
            meta["big"] = int(rng.choice([-(2**62), -1, 0, 7, 2**62]))
        if rng.random() < 0.5:
            meta["tags"] = ["x"] if rng.random() < 0.5 else []
        rows.append({"id": f"t{i}", "metadata": meta})
    return rows


def _temporal_values() -> st.SearchStrategy[Any]:
    instants = st.integers(-50, 50).map(lambda h: _T0 + dt.timedelta(hours=h))
    naive = instants.map(lambda t: t.replace(tzinfo=None))
    dates = st.integers(-4, 4).map(lambda d: dt.date(2024, 1, 1) + dt.timedelta(days=d))
    iso = instants.map(lambda t: t.isoformat())
    return st.one_of(instants, naive, dates, iso)


def _values(field: str) -> st.SearchStrategy[Any]:
    if field in ("at", "day"):
        return _temporal_values()
    if field == "w":
        return st.sampled_from([*_WORDS, "b", "aa", "y"])
    return st.one_of(
        st.sampled_from([-(2**62), -1, 0, 7, 2**62, 2**70, -(2**70)]),
        st.sampled_from([0.0, 7.0, 6.5, -1.5, 1e300]),
    )


@st.composite
def _leaf(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(st.sampled_from(["at", "day", "w", "big", "tags"]))
    if field == "tags":
        return {field: {"$exists": draw(st.booleans())}}
    op = draw(
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "eqnone"])
    )
    vals = _values(field)
    if op in ("$in", "$nin"):
        items = draw(st.lists(st.one_of(vals, st.none()), max_size=3))
        kinds = [value_kind(v) for v in items if v is not None]  # one kind per list
        items = [v for v in items if v is None or value_kind(v) == kinds[0]]
        return {field: {op: items}}
    if op == "eqnone":
        return {field: {draw(st.sampled_from(["$eq", "$ne"])): None}}
    return {field: {op: draw(vals)}}


_FILTERS = st.recursive(
    _leaf(),
    lambda kids: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, kids),
    ),
    max_leaves=5,
)


def _reference(rows: list[dict[str, Any]], spec: dict[str, Any]) -> set[str]:
    expr = parse_filter(spec)
    return {r["id"] for r in rows if matches(expr, r["metadata"])}


def test_filter_translation_matches_the_reference(make_store: Factory) -> None:
    """Timestamps, dates (and ISO strings), unicode string ranges, 64-bit ints compared with
    floats beyond 2**53 and beyond the float range, ``$exists`` on lists: the local engine's
    results equal :func:`strataml.filters.matches`."""
    store, _ = make_store()
    store.create_collection("typed", DIM)
    rows = _typed_rows()
    store.upsert("typed", [{**r, "vector": _vec(i)} for i, r in enumerate(rows)])

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(spec=_FILTERS)
    def check(spec: dict[str, Any]) -> None:
        expected = _reference(rows, spec)
        assert store.count("typed", filter=spec) == len(expected), spec
        hits = store.search("typed", [0.1] * DIM, k=50, filter=spec)
        assert {h.id for h in hits} == expected, spec

    check()


def test_compiled_conditions() -> None:
    from qdrant_client.http import models as m

    fields = {
        "x": FieldType.FLOAT,
        "n": FieldType.INT,
        "s": FieldType.STRING,
        "b": FieldType.BOOL,
        "at": FieldType.TIMESTAMP,
    }

    def comp(spec: dict[str, Any]) -> Any:
        return qfilters.compile_expr(qfilters.prepare_filter(spec, fields), fields)

    eq_float = comp({"x": 2.5})
    assert isinstance(eq_float.range, m.Range)
    assert (eq_float.range.gte, eq_float.range.lte) == (2.5, 2.5)
    assert isinstance(comp({"s": {"$in": ["a", "b"]}}).match, m.MatchAny)
    assert comp({"n": 0.5}) is False  # an int field never holds 0.5
    assert comp({"n": 2.0}).match == m.MatchValue(value=2)
    assert comp({"nothere": 1}) is False
    assert comp({"nothere": {"$ne": 1}}) is True
    assert comp({"$or": [{"nothere": 1}, {"n": {"$in": []}}]}) is False
    absent = comp({"s": None})
    assert isinstance(absent, m.IsEmptyCondition)
    assert isinstance(comp({"s": {"$exists": True}}), m.Filter)
    at = comp({"at": {"$gte": "2024-05-01T00:00:00+02:00"}})
    assert at.range.gte == dt.datetime(2024, 4, 30, 22, tzinfo=UTC)
    assert isinstance(comp({"b": {"$in": [True, None]}}), m.Filter)
    # the tenant predicate is ANDed in, and the result is always a Filter or a constant
    tenant = qfilters.with_tenant(comp({"n": 1}), "acme")
    assert isinstance(tenant, m.Filter)
    assert len(tenant.must) == 2
    assert qfilters.with_tenant(True, None) is True
    assert qfilters.with_tenant(False, "acme") is False
    # every compiled filter is a valid request model on the wire
    m.Filter.model_validate_json(tenant.model_dump_json())


def test_filter_errors() -> None:
    fields = {"n": FieldType.INT, "s": FieldType.STRING, "tags": FieldType.LIST}
    with pytest.raises(Unsupported):
        qfilters.prepare_filter({"user.country": "fr"}, fields)
    with pytest.raises(FilterError):
        qfilters.prepare_filter({"n": {"$gt": "3"}}, fields)
    with pytest.raises(FilterError):
        qfilters.prepare_filter({"tags": "x"}, fields)
    with pytest.raises(Unsupported):  # a string range whose values were not resolved
        qfilters.compile_expr(qfilters.prepare_filter({"s": {"$gt": "a"}}, fields), fields)


def test_string_range_over_too_many_values(
    make_store: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = make_store()
    store.create_collection("words", DIM)
    store.upsert(
        "words",
        [{"id": str(i), "vector": _vec(i), "metadata": {"w": f"w{i:02d}"}} for i in range(8)],
    )
    assert store.count("words", filter={"w": {"$gte": "w05"}}) == 3
    monkeypatch.setattr(qfilters, "MAX_RANGE_VALUES", 2)
    with pytest.raises(Unsupported):
        store.count("words", filter={"w": {"$gte": "w05"}})
    assert store.count("words", filter={"w": {"$gte": "w06"}}) == 2


# -------------------------------------------------------------------------------------- BM25
def test_tokenizer_and_hashing() -> None:
    assert tokens("The QUICK, brown_fox isn't ﬁne: 42") == [
        "quick",
        "brown",
        "fox",
        "isn",
        "t",
        "fine",
        "42",
    ]
    assert tokens("the of and") == []
    expected = int.from_bytes(hashlib.blake2b(b"quick", digest_size=4).digest(), "little")
    assert term_index("quick") == expected
    indices, values = query_terms("quick quick brown")
    assert indices == sorted({term_index("quick"), term_index("brown")})
    assert values == [1.0, 1.0]


def test_document_weights_are_bm25_term_frequencies() -> None:
    params = Bm25Params(k1=1.5, b=0.5, avg_len=4.0)
    vec = params.document("river river stone the")
    assert vec is not None
    norm = 1.5 * (1 - 0.5 + 0.5 * 3 / 4.0)
    weights = dict(zip(*vec, strict=True))
    assert weights[term_index("river")] == pytest.approx(2 * 2.5 / (2 + norm))
    assert weights[term_index("stone")] == pytest.approx(1 * 2.5 / (1 + norm))
    assert params.document("") is None
    assert params.document("the a") is None


def test_keyword_scores_are_bm25(make_store: Factory) -> None:
    """Qdrant's IDF modifier x the stored weights = BM25 over the live corpus."""
    store, _ = make_store(bm25_avg_len=5.0)
    store.create_collection("kw", DIM)
    docs = [
        "river stone river",
        "stone garden",
        "garden window paper cloud",
        "river",
        "engine orange silver stone river",
        None,
    ]
    store.upsert("kw", [{"id": f"d{i}", "vector": _vec(i), "text": t} for i, t in enumerate(docs)])
    store.delete("kw", ["d2"])
    live = {f"d{i}": tokens(t) for i, t in enumerate(docs) if t and i != 2}

    def bm25(query: str, doc: list[str]) -> float:
        n = len(live)
        k1, b, avg = 1.2, 0.75, 5.0
        tf = Counter(doc)
        total = 0.0
        for term in set(tokens(query)):
            df = sum(term in d for d in live.values())
            idf = math.log((n - df + 0.5) / (df + 0.5) + 1)
            total += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(doc) / avg))
        return total

    hits = store.search("kw", text="river stone", k=10)
    expected = {i: bm25("river stone", d) for i, d in live.items() if bm25("river stone", d) > 0}
    assert {h.id: h.keyword_score for h in hits} == pytest.approx(expected, rel=1e-5)
    assert [h.id for h in hits] == sorted(expected, key=lambda i: -expected[i])
    assert store.search("kw", text="the of", k=5) == []  # stop words only


# ---------------------------------------------------------------------------- payload, ids
def test_point_ids_are_per_tenant_uuid5() -> None:
    import uuid

    assert point_id("a", None) == str(uuid.uuid5(NAMESPACE, "a"))
    assert point_id("a", "t1") != point_id("a", "t2")
    assert point_id("b:c", "a") != point_id("c", "a:b")  # length-prefixed: no ambiguity
    with pytest.raises(InvalidInput):
        point_id("\ud800", None)


def test_stored_layout(make_store: Factory) -> None:
    """The payload is as documented: the raw client sees the strataml id, tenant, text, norm
    and typed metadata; the cosine vector comes back un-normalised."""
    store, _ = make_store()
    store.create_collection("lay", DIM, multi_tenant=True)
    at = dt.datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    vec = [3.0, 4.0, 0.0, 0.0]
    store.upsert(
        "lay",
        [
            {
                "id": "r1",
                "vector": vec,
                "text": "hello",
                "tenant": "acme",
                "metadata": {"at": at, "day": dt.date(2024, 5, 1), "tags": [1, "x"], "f": 2},
            }
        ],
    )
    (raw,) = store._client.retrieve("lay", [point_id("r1", "acme")], with_vectors=True)
    assert raw.payload["id"] == "r1"
    assert raw.payload["tenant"] == "acme"
    assert raw.payload["norm"] == pytest.approx(5.0)
    assert raw.payload["metadata"] == {
        "at": "2024-05-01T12:30:00.000000Z",
        "day": "2024-05-01T00:00:00Z",
        "tags": '[1,"x"]',
        "f": 2,
    }
    assert raw.vector["dense"] == pytest.approx([0.6, 0.8, 0.0, 0.0])
    (rec,) = store.get("lay", ["r1"], tenant="acme")
    assert rec.vector == pytest.approx(vec)
    assert rec.metadata == {"at": at, "day": dt.date(2024, 5, 1), "tags": [1, "x"], "f": 2}
    meta = store._client.get_collection("lay").config.metadata
    assert meta["strataml_field__at"] == "timestamp"
    assert meta["strataml"]["multi_tenant"] is True


def test_text_that_is_not_unicode_writes_nothing(make_store: Factory) -> None:
    store, _ = make_store()
    store.create_collection("u", DIM)
    good = {"id": "ok", "vector": _vec(1)}
    with pytest.raises(InvalidInput):
        store.upsert("u", [good, {"id": "bad", "vector": _vec(2), "text": "x\ud800"}])
    with pytest.raises(InvalidInput):
        store.upsert("u", [good, {"id": "bad", "vector": _vec(2), "metadata": {"k": "\udfff"}}])
    assert store.count("u") == 0
    assert store.describe("u").fields == {}


def test_foreign_collection_is_a_schema_error(make_store: Factory) -> None:
    from qdrant_client.http import models as m

    store, _ = make_store()
    store._client.create_collection("raw", vectors_config=m.VectorParams(size=3, distance="Dot"))
    with pytest.raises(SchemaError):
        store.describe("raw")
    with pytest.raises(SchemaError):
        store.create_collection("raw", 3, "dot", exist_ok=True)


# ----------------------------------------------------------------------- batching, limits
class _P:
    def __init__(self, rid: str) -> None:
        self.payload = {"id": rid}

    def model_dump(self, **_: Any) -> dict[str, Any]:
        return {"id": self.payload["id"], "payload": "x" * 5000}


def test_split_by_rows_and_bytes() -> None:
    pts = [_P(str(i)) for i in range(10)]
    groups = split_by_size(pts, [100] * 10, max_rows=4, max_bytes=1_000_000)
    assert [len(g) for g in groups] == [4, 4, 2]
    groups = split_by_size(pts, [3000] * 10, max_rows=100, max_bytes=10_024)
    assert [len(g) for g in groups] == [3, 3, 3, 1]
    assert [p for g in groups for p in g] == pts
    with pytest.raises(LimitExceeded):  # the exact size confirms the estimate
        split_by_size(pts, [100] * 9 + [20_000], max_rows=100, max_bytes=3_000)


def test_large_batches_are_split_and_oversized_records_refused(make_store: Factory) -> None:
    store, _ = make_store(max_batch_bytes=64 * 1024, max_batch_rows=50)
    assert store.capabilities.max_batch_bytes == 64 * 1024
    store.create_collection("big", DIM)
    calls: list[int] = []
    upsert = store._client.upsert

    def counting(**kwargs: Any) -> Any:
        calls.append(len(kwargs["points"]))
        return upsert(**kwargs)

    store._client.upsert = counting  # type: ignore[method-assign]  # count the real requests
    recs = [{"id": str(i), "vector": _vec(i), "text": "word " * 200} for i in range(120)]
    assert store.upsert("big", recs) == 120
    assert store.count("big") == 120
    assert len(calls) >= 3  # 120 records of ~1.4 KB: the 64 KiB budget, not the rows, splits
    assert max(calls) <= 50
    huge = {"id": "huge", "vector": _vec(1), "text": "w" * (70 * 1024)}
    with pytest.raises(LimitExceeded):
        store.upsert("big", [{"id": "fresh", "vector": _vec(2), "metadata": {"new": 1}}, huge])
    assert store.count("big") == 120
    assert "new" not in store.describe("big").fields


# ---------------------------------------------------------------------------------- errors
def _unexpected(status: int, error: str) -> Exception:
    import httpx
    from qdrant_client.http.exceptions import UnexpectedResponse

    body = (f'{{"status": {{"error": "{error}"}}, "time": 0.0}}').encode()
    return UnexpectedResponse(status, "reason", body, httpx.Headers())


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (404, "Not found: Collection `x` doesn't exist!", NotFound),
        (409, "Collection `x` already exists!", Conflict),
        (400, "Wrong input: Collection `x` already exists!", Conflict),
        (400, "Wrong input: Vector dimension error: expected dim: 4, got 3", InvalidInput),
        (413, "Payload too large", LimitExceeded),
        (401, "Invalid api-key", Unavailable),
        (503, "Service unavailable", Unavailable),
        (418, "teapot", BackendError),
    ],
)
def test_http_errors(status: int, error: str, expected: type[Exception]) -> None:
    exc = _unexpected(status, error)
    err = translate(exc, "doing x")
    assert type(err) is expected
    assert "doing x" in str(err)


def test_transport_and_local_errors() -> None:
    import grpc
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    down = translate(ResponseHandlingException(httpx.ConnectError("refused")), "reading")
    assert isinstance(down, Unavailable)

    class Rpc(grpc.RpcError):
        def __init__(self, code: grpc.StatusCode, details: str) -> None:
            self._code, self._details = code, details

        def code(self) -> grpc.StatusCode:
            return self._code

        def details(self) -> str:
            return self._details

    assert isinstance(translate(Rpc(grpc.StatusCode.NOT_FOUND, "no"), "x"), NotFound)
    assert isinstance(translate(Rpc(grpc.StatusCode.UNAVAILABLE, "down"), "x"), Unavailable)
    assert isinstance(translate(Rpc(grpc.StatusCode.INVALID_ARGUMENT, "bad"), "x"), InvalidInput)
    assert isinstance(translate(ValueError("Collection c not found"), "x"), NotFound)
    locked = RuntimeError("Storage folder /d is already accessed by another instance of Qdrant")
    assert isinstance(translate(locked, "x"), Unavailable)
    passthrough = Conflict("mine")
    assert translate(passthrough, "x") is passthrough


def test_secrets_are_redacted() -> None:
    text = redact("GET http://user:s3cret@host:6333/x failed; api-key: abc123, api_key=xyz")
    assert "s3cret" not in text
    assert "abc123" not in text
    assert "xyz" not in text
    cfg = QdrantConfig(type="qdrant", url="https://u:pw@q.example:6333", api_key="k-123")
    assert "pw" not in repr(cfg)
    assert "k-123" not in repr(cfg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_unavailable() -> None:
    cfg = QdrantConfig(type="qdrant", url=f"http://127.0.0.1:{_free_port()}", timeout_s=2)
    with QdrantVectorStore.from_config(cfg) as store, pytest.raises(Unavailable) as err:
        store.collections()
    assert isinstance(err.value.__cause__, Exception)


def test_one_local_client_per_directory(tmp_path: Path) -> None:
    cfg = local_config(tmp_path / "q")
    with QdrantVectorStore.from_config(cfg), pytest.raises(Unavailable):
        QdrantVectorStore.from_config(cfg)


def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = QdrantVectorStore.from_config(local_config(tmp_path / "q"))
    store.close()
    store.close()
    with pytest.raises(Unavailable):
        store.collections()


# ---------------------------------------------------------------------------------- config
def test_config_modes() -> None:
    local = QdrantConfig.model_validate({"type": "qdrant", "url": "", "path": "/tmp/q"})
    assert local.local
    server = QdrantConfig.model_validate(
        {"type": "qdrant", "url": "http://127.0.0.1:6333", "path": "/tmp/q", "api_key": ""}
    )
    assert not server.local
    assert server.api_key is None
    with pytest.raises(ValidationError):
        QdrantConfig.model_validate({"type": "qdrant"})
    with pytest.raises(ValidationError):
        QdrantConfig.model_validate({"type": "qdrant", "url": "127.0.0.1:6333"})
    with pytest.raises(ValidationError):
        QdrantConfig.model_validate({"type": "qdrant", "path": "/q", "collection_prefix": "a/b"})


def test_collection_prefix_isolates(tmp_path: Path) -> None:
    from strataml_qdrant.clients import SerializedClient, engine_settings, make_client

    client = make_client(local_config(tmp_path / "q"))
    assert isinstance(client, SerializedClient)
    a = QdrantVectorStore(
        client, settings=engine_settings(local_config(tmp_path, collection_prefix="a_"))
    )
    b = QdrantVectorStore(
        client, settings=engine_settings(local_config(tmp_path, collection_prefix="b_"))
    )
    a.create_collection("docs", DIM)
    b.create_collection("docs", DIM)
    a.upsert("docs", [{"id": "x", "vector": _vec(1)}])
    assert (a.collections(), b.collections()) == (["docs"], ["docs"])
    assert (a.count("docs"), b.count("docs")) == (1, 0)
    assert sorted(c.name for c in client.get_collections().collections) == ["a_docs", "b_docs"]
    a.set_alias("live", "docs")
    assert b.aliases() == {}
    client.close()


# --------------------------------------------------------------------------------- aliases
def test_repoint_under_concurrent_readers(make_store: Factory) -> None:
    """Readers through the alias see the old target or the new one, never an error."""
    store, _ = make_store()
    for name, rid in (("blue", "old"), ("green", "new")):
        store.create_collection(name, DIM)
        store.upsert(name, [{"id": rid, "vector": _vec(3)}])
    store.set_alias("live", "blue")
    seen: Counter[str] = Counter()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                (hit,) = store.search("live", _vec(3), k=1)
                seen[hit.id] += 1
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for i in range(20):
        store.set_alias("live", "green" if i % 2 == 0 else "blue")
    stop.set()
    for t in readers:
        t.join()
    assert errors == []
    assert set(seen) <= {"old", "new"}
    assert store.aliases() == {"live": "blue"}
    with pytest.raises(Conflict):
        store.drop_collection("live")  # an alias is not a collection
    with pytest.raises(Conflict):
        store.create_collection("live", DIM)


def test_stats_in_local_mode(make_store: Factory) -> None:
    store, _ = make_store()
    store.create_collection("s", DIM)
    store.upsert("s", [{"id": str(i), "vector": _vec(i)} for i in range(10)])
    store.delete("s", ["1", "2"])
    stats = store.optimize("s")
    assert (stats.count, stats.deleted, stats.tombstone_ratio) == (8, None, None)
    assert (stats.index_type, stats.indexed) == ("flat", 0)
    assert stats.details["local_mode"] is True
    assert store.count("s") == 8


# ----------------------------------------------------------------------- adapter, stacks
def test_adapter_declaration_and_lazy_import() -> None:
    import subprocess
    import sys

    assert QDRANT.capabilities["vectors"] is VECTORS_CAPS
    assert VECTORS_CAPS.supports("hybrid")
    assert VECTORS_CAPS.supports("aliases")
    code = "import sys, strataml_qdrant; print('qdrant_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_profile_table_and_shared_local_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The growth profiles' ``[vectors]`` table: local mode under data_dir unless the URL is
    set; the sync and async stores of a stack share the one local client."""
    import asyncio

    from strataml.config import load_profile

    monkeypatch.delenv("STRATAML_QDRANT_URL", raising=False)
    profile = tmp_path / "p.toml"
    profile.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[vectors]\ntype = "qdrant"\n'
        'url = "${STRATAML_QDRANT_URL:-}"\npath = "{data_dir}/qdrant"\n'
        'require = ["hybrid", "tenants", "aliases"]\n'
    )
    section = load_profile(str(profile)).roles["vectors"]
    cfg = QdrantConfig.model_validate(section)
    assert cfg.local
    assert cfg.path == tmp_path / "data" / "qdrant"
    ctx = StackContext()
    try:
        sync = QDRANT.factories["vectors"](cfg, ctx)
        aio = QDRANT.async_factories["vectors"](cfg, ctx)
        sync.create_collection("docs", DIM)

        async def run() -> int:
            await aio.upsert("docs", [{"id": "a", "vector": _vec(1), "text": "hello"}])
            hits = await aio.search("docs", text="hello")
            assert [h.id for h in hits] == ["a"]
            return await aio.count("docs")

        assert asyncio.run(run()) == 1
        assert sync.count("docs") == 1
    finally:
        ctx.close()
    monkeypatch.setenv("STRATAML_QDRANT_URL", "http://127.0.0.1:6333")
    server = QdrantConfig.model_validate(load_profile(str(profile)).roles["vectors"])
    assert not server.local


def test_tenant_is_pushed_into_every_request(make_store: Factory) -> None:
    """Spy on the real client: every point read of a multi-tenant collection carries the
    tenant (a filter condition, or point ids derived from it)."""
    store, _ = make_store()
    store.create_collection("mt", DIM, multi_tenant=True)
    store.upsert(
        "mt",
        [
            {"id": "a", "vector": _vec(1), "tenant": "t1", "text": "x y", "metadata": {"s": "q"}},
            {"id": "a", "vector": _vec(2), "tenant": "t2", "text": "x", "metadata": {"s": "r"}},
        ],
    )
    seen: list[tuple[str, dict[str, Any]]] = []
    client = store._client
    wrapped: dict[str, Callable[..., Any]] = {}
    for method in ("query_points", "query_batch_points", "count", "scroll", "delete"):
        real = getattr(client, method)

        def spy(*args: Any, _real: Any = real, _m: str = method, **kwargs: Any) -> Any:
            seen.append((_m, kwargs))
            return _real(*args, **kwargs)

        wrapped[method] = spy
    store._client = _Spy(client, wrapped)  # type: ignore[assignment]
    store.search("mt", _vec(1), k=5, tenant="t1", filter={"s": {"$gte": "a"}})
    store.search("mt", _vec(1), text="x", k=5, tenant="t1")
    store.count("mt", tenant="t1")
    list(store.scan("mt", tenant="t1"))
    store.delete("mt", ["a"], tenant="t1")
    dumped = [str(kwargs) for _, kwargs in seen]
    assert len(seen) >= 6
    assert all("'tenant'" in d and "t1" in d and "t2" not in d for d in dumped), dumped
    assert store.count("mt", tenant="t2") == 1


class _Spy:
    """The real client with some methods replaced by recording wrappers."""

    def __init__(self, client: Any, wrapped: dict[str, Callable[..., Any]]) -> None:
        self._client, self._wrapped = client, wrapped

    def __getattr__(self, name: str) -> Any:
        return self._wrapped.get(name) or getattr(self._client, name)

    def close(self) -> None:
        self._client.close()
