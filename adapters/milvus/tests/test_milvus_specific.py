"""Milvus-specific tests: name and key mapping, the filter compiler (unit and against the real
engine, including adversarial strings), request splitting and limits, error translation,
config, registry persistence, aliases, statistics and an owned Milvus Lite."""

from __future__ import annotations

import datetime as dt
import os
import string
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pymilvus.exceptions import MilvusException, ParamError

from strataml.errors import (
    BackendError,
    Conflict,
    FilterError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    SchemaError,
    StrataError,
    Unavailable,
    Unsupported,
)
from strataml.filters import FieldType, matches, parse_filter
from strataml_milvus import MilvusConfig
from strataml_milvus.batching import split_requests
from strataml_milvus.codec import decode_metadata, encode_metadata, to_micros
from strataml_milvus.errors import redact, translate
from strataml_milvus.filters import compile_filter, string_literal
from strataml_milvus.names import (
    decode_key,
    encode_key,
    from_milvus_name,
    registry_name,
    to_milvus_name,
)
from strataml_milvus.vectors import MilvusVectorStore

DIM = 4
ON_SERVER = bool(os.environ.get("STRATAML_TEST_MILVUS_URL"))
_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAMES = st.from_regex(r"^[A-Za-z_][A-Za-z0-9_\-]{0,40}$", fullmatch=True)
# adversarial text: quotes, backslashes, braces, expression syntax, control and non-ASCII
ADVERSARIAL = st.lists(
    st.one_of(
        st.sampled_from(list("\"'\\{}[]()=!<>&|%$ \t\n\r\x00\x7f")),
        st.sampled_from(['" or pk != "', '\\"', "{p0}", " and ", "é", "☃", "𝄞", "\u2028"]),
        st.characters(codec="utf-8"),
    ),
    max_size=8,
).map("".join)


def _vec(seed: int) -> list[float]:
    return np.random.default_rng(seed).normal(size=DIM).tolist()


# ------------------------------------------------------------------------------------ names
class TestNames:
    @given(name=NAMES)
    def test_collection_names_roundtrip(self, name: str) -> None:
        mapped = to_milvus_name("sml_", name)
        assert all(c.isalnum() or c == "_" for c in mapped)
        assert from_milvus_name("sml_", mapped) == name

    @given(a=NAMES, b=NAMES)
    def test_distinct_names_stay_distinct(self, a: str, b: str) -> None:
        assume(a != b)
        assert to_milvus_name("p_", a) != to_milvus_name("p_", b)

    def test_registry_and_foreign_names_do_not_decode(self) -> None:
        assert from_milvus_name("sml_", registry_name("sml_")) is None
        assert from_milvus_name("", registry_name("")) is None
        assert from_milvus_name("sml_", "other_thing") is None
        assert from_milvus_name("sml_", "sml_a_b") is None  # a single '_' is not an escape

    def test_too_long_names_are_invalid(self) -> None:
        with pytest.raises(InvalidInput):
            to_milvus_name("sml_", "_" * 128)

    @given(tenant=st.one_of(st.none(), st.text(max_size=20)), rid=st.text(min_size=1, max_size=30))
    def test_keys_roundtrip(self, tenant: str | None, rid: str) -> None:
        try:
            key = encode_key(tenant, rid)
        except InvalidInput:  # lone surrogates are not Unicode text
            return
        assert set(key) <= set(string.ascii_letters + string.digits + "-_.")
        assert decode_key(key) == (tenant, rid)

    def test_key_limits(self) -> None:
        with pytest.raises(LimitExceeded):
            encode_key(None, "x" * 1025)
        with pytest.raises(LimitExceeded):
            encode_key("t" * 257, "x")
        with pytest.raises(InvalidInput):
            decode_key("not base64!")


# ---------------------------------------------------------------------------------- filters
FIELDS = {
    "n": FieldType.INT,
    "x": FieldType.FLOAT,
    "s": FieldType.STRING,
    "b": FieldType.BOOL,
    "at": FieldType.TIMESTAMP,
    "day": FieldType.DATE,
    "tags": FieldType.LIST,
}


class TestFilterCompiler:
    def test_negation_is_pushed_down(self) -> None:
        c = compile_filter({"$not": {"$or": [{"n": 1}, {"x": {"$gt": 2}}]}}, FIELDS, bind=False)
        assert c.expr == '(meta["n"] != 1 and (has["x"] != 1 or meta["x"] <= 2))'
        assert "not" not in (c.expr or "").replace("not in", "")

    def test_presence_and_null(self) -> None:
        assert compile_filter({"n": None}, FIELDS, bind=False).expr == 'has["n"] != 1'
        assert compile_filter({"n": {"$exists": True}}, FIELDS, bind=False).expr == 'has["n"] == 1'
        c = compile_filter({"n": {"$in": [1, None]}}, FIELDS, bind=False)
        assert c.expr == '(meta["n"] in [1] or has["n"] != 1)'
        c = compile_filter({"n": {"$nin": [1, None]}}, FIELDS, bind=False)
        assert c.expr == '(meta["n"] not in [1] and has["n"] == 1)'

    def test_constants_fold(self) -> None:
        never = compile_filter({"unknown": 1}, FIELDS, bind=False)
        assert never.never
        assert never.expr is None
        always = compile_filter({"unknown": {"$ne": 1}}, FIELDS, bind=False)
        assert not always.never
        assert always.expr is None
        assert compile_filter({"n": {"$in": []}}, FIELDS, bind=False).never
        c = compile_filter({"$or": [{"unknown": 1}, {"n": 2}]}, FIELDS, bind=False)
        assert c.expr == 'meta["n"] == 2'

    def test_mixed_number_lists_expand(self) -> None:
        c = compile_filter({"x": {"$in": [2, 2.5]}}, FIELDS, bind=False)
        assert c.expr == '(meta["x"] == 2 or meta["x"] == 2.5)'
        c = compile_filter({"x": {"$nin": [2, 2.5]}}, FIELDS, bind=False)
        assert c.expr == '(meta["x"] != 2 and meta["x"] != 2.5)'

    def test_values(self) -> None:
        at = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
        c = compile_filter({"at": {"$gte": "2024-05-01T12:00:00+00:00"}}, FIELDS, bind=False)
        assert c.expr == f'meta["at"] >= {to_micros(at)}'
        c = compile_filter({"day": {"$lt": dt.date(2024, 5, 2)}}, FIELDS, bind=False)
        assert c.expr == f'meta["day"] < {to_micros(dt.date(2024, 5, 2))}'
        assert compile_filter({"x": 3.0}, FIELDS, bind=False).expr == 'meta["x"] == 3'
        assert compile_filter({"b": True}, FIELDS, bind=False).expr == 'meta["b"] == true'
        c = compile_filter({"n": {"$gt": -(2**63)}}, FIELDS, bind=False)
        assert c.expr == 'meta["n"] > -9.223372036854776e+18'

    def test_bind_mode_formats_no_value(self) -> None:
        evil = '" or pk != "'
        c = compile_filter({"s": {"$in": [evil, "b"]}, "n": {"$gt": 2}}, FIELDS, bind=True)
        assert evil not in (c.expr or "")
        assert c.expr == '(meta["s"] in {p0} and meta["n"] > {p1})'
        assert c.params == {"p0": [evil, "b"], "p1": 2}

    def test_errors(self) -> None:
        with pytest.raises(FilterError):
            compile_filter({"n": {"$gt": "2"}}, FIELDS, bind=False)
        with pytest.raises(FilterError):
            compile_filter({"tags": "a"}, FIELDS, bind=False)
        with pytest.raises(FilterError):
            compile_filter({"n": {"$regex": "a"}}, FIELDS, bind=False)
        with pytest.raises(FilterError):
            compile_filter({"n": 2**1100}, FIELDS, bind=False)
        with pytest.raises(Unsupported):
            compile_filter({"user.country": "x"}, FIELDS, bind=False)
        with pytest.raises(Unsupported):
            compile_filter({"s": "line\nbreak"}, FIELDS, bind=False)
        assert compile_filter({"s": "line\nbreak"}, FIELDS, bind=True).params == {
            "p0": "line\nbreak"
        }

    @given(value=ADVERSARIAL)
    def test_string_literal_shape(self, value: str) -> None:
        """Every rendered literal is one token: a quote, escaped content, a quote."""
        if "\n" in value or "\r" in value:
            with pytest.raises(Unsupported):
                string_literal(value)
            return
        lit = string_literal(value)
        assert lit[0] == lit[-1] == '"'
        body = lit[1:-1]
        i = 0
        while i < len(body):  # every quote and backslash in the body is escaped
            if body[i] == "\\":
                assert body[i + 1] in '\\"'
                i += 2
                continue
            assert body[i] != '"'
            i += 1


class TestEscapingOnTheEngine:
    """Adversarial strings as metadata and as filter values: the engine's answer is exactly
    the reference evaluator's, or Unsupported for a value a literal cannot hold."""

    def test_adversarial_strings(self, own_store: Callable[..., MilvusVectorStore]) -> None:
        store = own_store()
        store.create_collection("esc", DIM)
        stored = ['a"b', "a'b", "a\\b", "\\", '"', "{p0}", '" or pk != "', "é☃𝄞", "x\ty", ""]
        store.upsert(
            "esc",
            [{"id": f"r{i}", "vector": _vec(i), "metadata": {"s": s}} for i, s in enumerate(stored)]
            + [{"id": "none", "vector": _vec(99)}],
        )
        data = [{"s": s} for s in stored] + [{}]

        @_SETTINGS
        @given(
            value=st.one_of(st.sampled_from(stored), ADVERSARIAL),
            op=st.sampled_from(["$eq", "$ne", "$gt", "$lte", "$in", "$nin"]),
        )
        def check(value: str, op: str) -> None:
            spec = {"s": {op: [value, "a\\b"] if op in ("$in", "$nin") else value}}
            expected = sum(1 for d in data if matches(parse_filter(spec), d))
            if ("\n" in value or "\r" in value) and not store.bind_values:
                with pytest.raises(Unsupported):
                    store.count("esc", filter=spec)
                return
            assert store.count("esc", filter=spec) == expected, spec

        check()

    def test_ids_and_tenants_with_any_characters(
        self, own_store: Callable[..., MilvusVectorStore]
    ) -> None:
        store = own_store()
        store.create_collection("keys", DIM, multi_tenant=True)
        odd = ['x"y', "a\nb", "back\\slash", "{p0}", "é☃", " ", "'"]
        store.upsert(
            "keys",
            [
                {"id": rid, "vector": _vec(i), "tenant": tenant, "metadata": {"i": i}}
                for i, (rid, tenant) in enumerate(zip(odd, reversed(odd), strict=True))
            ],
        )
        for i, (rid, tenant) in enumerate(zip(odd, reversed(odd), strict=True)):
            got = store.get("keys", [rid, "missing"], tenant=tenant)
            assert [(r.id, r.tenant, r.metadata) for r in got] == [(rid, tenant, {"i": i})]
            assert store.count("keys", tenant=tenant) == 1
            hits = store.search("keys", _vec(i), k=5, tenant=tenant)
            assert [(h.id, h.tenant) for h in hits] == [(rid, tenant)]
        store.delete("keys", [odd[0]], tenant=odd[-1])
        assert store.count("keys", tenant=odd[-1]) == 0
        assert store.get("keys", ["x" * 2000], tenant="t") == []  # too long to exist


class TestFilterTypes:
    """Timestamps, dates, big numbers and mixed ints/floats against the reference evaluator."""

    def test_typed_values_match_the_reference(
        self, own_store: Callable[..., MilvusVectorStore]
    ) -> None:
        store = own_store()
        store.create_collection("typed", DIM)
        base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        rows: list[dict[str, Any]] = []
        for i in range(12):
            meta: dict[str, Any] = {}
            if i % 3:
                meta["at"] = base + dt.timedelta(hours=7 * i)
            if i % 4:
                meta["day"] = dt.date(2024, 1, 1 + i)
            if i % 5:
                meta["x"] = [2**62, -(2**63), 1.5, 3, -2.25][i % 5]
            rows.append({"id": f"r{i}", "vector": _vec(i), "metadata": meta})
        store.upsert("typed", rows)
        got = {r.id: r.metadata for r in store.get("typed", [r["id"] for r in rows])}
        assert got == {r["id"]: r["metadata"] for r in rows}
        values = st.one_of(
            st.datetimes(
                min_value=dt.datetime(2023, 12, 31), max_value=dt.datetime(2024, 1, 5)
            ).map(lambda d: d.replace(tzinfo=dt.UTC)),
            st.dates(min_value=dt.date(2023, 12, 31), max_value=dt.date(2024, 1, 15)),
        )

        @_SETTINGS
        @given(
            field=st.sampled_from(["at", "day"]),
            op=st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
            value=values,
            negate=st.booleans(),
        )
        def check(field: str, op: str, value: Any, negate: bool) -> None:
            spec: dict[str, Any] = {field: {op: value}}
            if negate:
                spec = {"$not": spec}
            expected = sum(1 for r in rows if matches(parse_filter(spec), r["metadata"]))
            assert store.count("typed", filter=spec) == expected, spec

        check()
        for spec in (
            {"x": {"$gte": 2**62}},
            {"x": {"$lt": -(2**62)}},
            {"x": {"$in": [3, 1.5]}},
            {"x": {"$nin": [3.0, -2.25, None]}},
            {"at": {"$gt": "2024-01-01T10:00:00Z"}},
            {"day": {"$lte": "2024-01-03"}},
        ):
            expected = sum(1 for r in rows if matches(parse_filter(spec), r["metadata"]))
            assert store.count("typed", filter=spec) == expected, spec


# ----------------------------------------------------------------------------- batching/limits
class TestRequests:
    @given(
        sizes=st.lists(st.integers(1, 50), max_size=40),
        max_rows=st.integers(1, 7),
        max_bytes=st.integers(50, 200),
    )
    def test_split_requests(self, sizes: list[int], max_rows: int, max_bytes: int) -> None:
        rows = [{"i": i} for i in range(len(sizes))]
        chunks = list(split_requests(rows, sizes, max_rows=max_rows, max_bytes=max_bytes))
        assert [r for c in chunks for r in c] == rows
        for chunk in chunks:
            assert 0 < len(chunk) <= max_rows
            assert sum(sizes[r["i"]] for r in chunk) <= max_bytes

    def test_upserts_are_split_and_counted_exactly(
        self, own_store: Callable[..., MilvusVectorStore]
    ) -> None:
        store = own_store(max_request_rows=7, max_request_bytes=4096)
        store.create_collection("split", DIM)
        recs = [
            {"id": f"r{i}", "vector": _vec(i), "text": "word " * 40, "metadata": {"i": i}}
            for i in range(60)
        ]
        assert store.upsert("split", recs) == 60
        assert store.count("split") == 60
        assert store.upsert("split", recs[:30]) == 30  # upsert = delete + insert: still 60
        assert store.count("split") == 60
        store.delete("split", [f"r{i}" for i in range(0, 60, 2)])
        assert store.count("split") == 30

    def test_limits_raise_before_writing(self, own_store: Callable[..., MilvusVectorStore]) -> None:
        store = own_store(max_request_bytes=64 * 1024, text_max_bytes=100)
        store.create_collection("lim", DIM)
        store.upsert("lim", [{"id": "keep", "vector": _vec(0), "metadata": {"k": 1}}])
        good = {"id": "new", "vector": _vec(1)}
        bad_records: list[dict[str, Any]] = [
            {"id": "big", "vector": _vec(2), "metadata": {"blob": "x" * 70_000}},
            {"id": "long-text", "vector": _vec(3), "text": "é" * 51},
            {"id": "i" * 1100, "vector": _vec(4)},
        ]
        for bad in bad_records:
            with pytest.raises(LimitExceeded):
                store.upsert("lim", [good, bad])
            assert store.count("lim") == 1
            assert set(store.describe("lim").fields) == {"k"}
        with pytest.raises(InvalidInput):
            store.upsert("lim", [good, {"id": "sur", "vector": _vec(5), "text": "\ud800"}])
        assert store.count("lim") == 1
        with pytest.raises(InvalidInput):
            store.search("lim", _vec(0), k=16_385)
        with pytest.raises(InvalidInput):
            store.create_collection("toobig", 40_000)


# ------------------------------------------------------------------------------------ errors
class TestErrors:
    @pytest.mark.parametrize(
        ("exc", "kind"),
        [
            (MilvusException(100, "collection not found[collection=x]"), NotFound),
            (MilvusException(1, "collection already exists"), Conflict),
            (MilvusException(1100, "Invalid expr: x"), InvalidInput),
            (MilvusException(1102, "parameter too large"), LimitExceeded),
            (MilvusException(1100, "the length exceeds max length"), LimitExceeded),
            (MilvusException(2, "service unavailable"), Unavailable),
            (MilvusException(8, "rate limit exceeded"), Unavailable),
            (MilvusException(1800, "auth failed"), Unavailable),
            (MilvusException(2000, "segcore error"), BackendError),
            (ParamError(message="bad argument"), InvalidInput),
        ],
    )
    def test_translation(self, exc: BaseException, kind: type[StrataError]) -> None:
        out = translate(exc, "doing x")
        assert type(out) is kind
        assert out.args[0].startswith("doing x")

    def test_grpc_statuses(self) -> None:
        class Rpc(grpc.RpcError):
            def __init__(self, code: grpc.StatusCode) -> None:
                self._code = code

            def code(self) -> grpc.StatusCode:
                return self._code

            def details(self) -> str:
                return "details"

        assert isinstance(translate(Rpc(grpc.StatusCode.UNIMPLEMENTED), "x"), Unsupported)
        assert isinstance(translate(Rpc(grpc.StatusCode.UNAVAILABLE), "x"), Unavailable)
        assert isinstance(translate(Rpc(grpc.StatusCode.DEADLINE_EXCEEDED), "x"), Unavailable)
        assert isinstance(translate(Rpc(grpc.StatusCode.UNAUTHENTICATED), "x"), Unavailable)

    def test_secrets_are_masked(self) -> None:
        assert "s3cr3t" not in redact("bad token: s3cr3t given")
        assert "s3cr3t" not in str(translate(MilvusException(1, "password=s3cr3t"), "x"))
        cfg = MilvusConfig(uri="http://127.0.0.1:1", token="root:s3cr3t")
        assert "s3cr3t" not in repr(cfg)

    def test_unreachable_server(self) -> None:
        with pytest.raises(Unavailable):
            MilvusVectorStore(MilvusConfig(uri="http://127.0.0.1:1", timeout_s=1.0))


# ------------------------------------------------------------------------------------ config
class TestConfig:
    def test_validation(self) -> None:
        with pytest.raises(ValidationError):
            MilvusConfig(uri="http://root:pw@host:19530")
        with pytest.raises(ValidationError):
            MilvusConfig(uri="http://h:1", max_request_bytes=65 * 1024 * 1024)
        with pytest.raises(ValidationError):
            MilvusConfig(uri="http://h:1", collection_prefix="bad-prefix")
        assert MilvusConfig(uri="./data/milvus.db").is_local
        assert not MilvusConfig(uri="https://in01.example.com:443").is_local


# ------------------------------------------------------------------------------- behaviour
class TestStore:
    def test_registry_is_shared_by_stores(
        self,
        own_store: Callable[..., MilvusVectorStore],
        make_config: Callable[..., MilvusConfig],
    ) -> None:
        store = own_store()
        store.create_collection("my-docs_1", DIM, metadata={"model": "m"})
        at = dt.datetime(2024, 3, 4, 5, 6, 7, 891_011, tzinfo=dt.UTC)
        store.upsert(
            "my-docs_1",
            [{"id": "a", "vector": _vec(0), "text": "", "metadata": {"at": at, "n": 1}}],
        )
        assert store.collections() == ["my-docs_1"]
        other = MilvusVectorStore(make_config(collection_prefix=store.config.collection_prefix))
        try:
            info = other.describe("my-docs_1")
            assert info.fields == {"at": FieldType.TIMESTAMP, "n": FieldType.INT}
            assert info.metadata == {"model": "m"}
            (rec,) = other.get("my-docs_1", ["a"])
            assert rec.metadata == {"at": at, "n": 1}
            assert rec.text == ""  # empty text is kept apart from no text
            with pytest.raises(InvalidInput):
                other.upsert("my-docs_1", [{"id": "b", "vector": _vec(1), "metadata": {"n": "x"}}])
        finally:
            other.close()

    def test_foreign_collection_under_the_prefix(
        self, own_store: Callable[..., MilvusVectorStore]
    ) -> None:
        store = own_store()
        store._client.create_collection(to_milvus_name(store.config.collection_prefix, "raw"), 4)
        with pytest.raises(SchemaError):
            store.describe("raw")

    def test_alias_to_missing_and_stale_readers(
        self,
        own_store: Callable[..., MilvusVectorStore],
        make_config: Callable[..., MilvusConfig],
    ) -> None:
        store = own_store(metadata_cache_s=0.0)
        for name, seed in (("blue", 1), ("green", 2)):
            store.create_collection(name, DIM)
            store.upsert(name, [{"id": name, "vector": _vec(seed)}])
        store.set_alias("live", "blue")
        reader = MilvusVectorStore(
            make_config(collection_prefix=store.config.collection_prefix, metadata_cache_s=0.0)
        )
        try:
            assert [h.id for h in reader.search("live", _vec(1), k=5)] == ["blue"]
            store.set_alias("live", "green")
            assert [h.id for h in reader.search("live", _vec(1), k=5)] == ["green"]
            assert reader.aliases() == {"live": "green"}
            store.drop_alias("live")
            store.drop_collection("blue")
            with pytest.raises(NotFound):
                reader.count("live")
            with pytest.raises(Conflict):
                store.set_alias("green", "green")
        finally:
            reader.close()

    def test_stats_and_optimize(self, own_store: Callable[..., MilvusVectorStore]) -> None:
        store = own_store()
        store.create_collection("health", DIM, "l2")
        store.upsert("health", [{"id": f"r{i}", "vector": _vec(i)} for i in range(30)])
        store.delete("health", ["r1", "r2"])
        stats = store.stats("health")
        assert stats.count == 28
        assert stats.details["milvus_lite"] is store.lite
        if store.lite:
            assert stats.deleted is None
            assert stats.index_type == "flat"
        after = store.optimize("health")
        assert after.count == 28
        assert [h.id for h in store.search("health", _vec(5), k=1)] == ["r5"]

    def test_scan_pages_through_large_collections(
        self, own_store: Callable[..., MilvusVectorStore]
    ) -> None:
        store = own_store()
        store.create_collection("big", DIM, multi_tenant=True)
        recs = [
            {"id": f"r{i}", "vector": _vec(i), "tenant": "a" if i % 3 else "b"} for i in range(500)
        ]
        store.upsert("big", recs)
        seen = [r.id for batch in store.scan("big", tenant="a", batch_size=64) for r in batch]
        assert sorted(seen) == sorted(r["id"] for r in recs if r["tenant"] == "a")
        with pytest.raises(InvalidInput):
            store.scan("big", tenant="a", batch_size=True)  # type: ignore[arg-type]


@pytest.mark.skipif(ON_SERVER, reason="starts its own Milvus Lite")
def test_local_uri_starts_and_stops_milvus_lite(tmp_path: Any) -> None:
    store = MilvusVectorStore(MilvusConfig(uri=str(tmp_path / "own.db")))
    pid = store._server.pid
    try:
        assert store.lite
        store.create_collection("c", DIM)
        store.upsert("c", [{"id": "a", "vector": _vec(0), "text": "hello"}])
        assert [h.id for h in store.search("c", text="hello")] == ["a"]
    finally:
        store.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(Unavailable):
        store.count("c")


def test_encode_decode_metadata_roundtrip() -> None:
    at = dt.datetime(1969, 7, 20, 20, 17, 40, 5, tzinfo=dt.UTC)
    meta = {"at": at, "day": dt.date(1900, 1, 1), "n": 2, "l": [1, "a"]}
    types = {"at": FieldType.TIMESTAMP, "day": FieldType.DATE, "n": FieldType.INT}
    assert decode_metadata(encode_metadata(meta), types) == meta
