"""Unit tests of what the MongoDB adapter translates, without a server.

* the documents built for insert (layout, ``seq`` patching, BSON-safety, the 16 MiB limit);
* the query filters for reads, counts, retention, cursors and windows, *executed* by mongomock
  against a reference evaluation in Python (hypothesis) -- mongomock runs these plain query
  documents faithfully; it is not used as a stand-in for the store (the contract suite runs
  against a real server, see ``test_mongodb_contract.py``);
* the update pipelines (structure) and the visibility horizon;
* error translation (including ``BulkWriteError`` partial results) and secret redaction;
* argument checks that happen before any I/O (a store pointed at a closed port proves it);
* configuration, the adapter declaration and lazy imports.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import bson
import mongomock
import pytest
from bson.int64 import Int64
from bson.objectid import ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import errors as pm

from strataml._json import dumps_record
from strataml.config import redact as redact_settings
from strataml.errors import (
    BackendError,
    ConfigError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    Unavailable,
)
from strataml.registry import get_adapter
from strataml_mongodb import INGEST_CAPS, MONGODB
from strataml_mongodb.config import MongoDBConfig
from strataml_mongodb.documents import (
    CODEC_OPTIONS,
    MAX_BSON_BYTES,
    SEQ_OFFSET,
    bson_safe,
    decode_data,
    encode_record,
    with_seq,
)
from strataml_mongodb.errors import redact, split_write_errors, translate
from strataml_mongodb.ingest import MongoIngestStore, _key_duplicate
from strataml_mongodb.queries import (
    INDEXES,
    commit_update,
    drop_update,
    horizon,
    reap_update,
    reserve_update,
    visible_filter,
)

PASSWORD = "s3cr3t-pa55"
DEAD_URL = f"mongodb://admin:{PASSWORD}@127.0.0.1:1/?directConnection=true"


def _encode(data: Any, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "stream": "ev",
        "key": None,
        "ts_us": 1_700_000_000_123_456,
        "ingested_us": 1_700_000_001_000_000,
        "where": "record",
    }
    args.update(kw)
    return encode_record(dumps_record(data), **args)


def _decode(raw: bytes) -> dict[str, Any]:
    out: dict[str, Any] = bson.decode(raw, codec_options=CODEC_OPTIONS)
    return out


# -------------------------------------------------------------------------------- documents
class TestDocuments:
    def test_layout(self) -> None:
        doc = _decode(_encode({"user": 1, "nested": {"a": [1, 2.5, None]}}, key="k1"))
        assert list(doc) == [
            "_id",
            "seq",
            "stream",
            "ts_us",
            "ts",
            "ingested_us",
            "key",
            "data",
        ]
        assert isinstance(doc["_id"], ObjectId)
        assert (doc["seq"], doc["stream"], doc["key"]) == (0, "ev", "k1")
        assert doc["ts_us"] == 1_700_000_000_123_456
        # the BSON date keeps milliseconds; ts_us keeps the microseconds
        assert doc["ts"] == dt.datetime(2023, 11, 14, 22, 13, 20, 123000)
        assert doc["data"] == {"user": 1, "nested": {"a": [1, 2.5, None]}}
        assert "data_json" not in doc

    def test_no_key_field_without_a_key(self) -> None:
        assert "key" not in _decode(_encode({"v": 1}))

    @pytest.mark.parametrize("seq", [1, 255, 2**31, 2**62 + 7])
    def test_seq_is_patched_in_place(self, seq: int) -> None:
        raw = _encode({"v": 1})
        patched = with_seq(raw, seq)
        doc = _decode(patched.raw)
        assert doc["seq"] == seq
        assert type(doc["seq"]) is int
        assert patched.raw[:SEQ_OFFSET] == raw[:SEQ_OFFSET]
        assert patched.raw[SEQ_OFFSET + 8 :] == raw[SEQ_OFFSET + 8 :]
        assert _decode(raw)["seq"] == 0  # the prepared bytes are not changed

    def test_datetimes_tuples_and_sets_become_json(self) -> None:
        at = dt.datetime(2024, 5, 6, 7, 8, 9, 123456)
        doc = _decode(_encode({"at": at, "pair": (1, "a"), "day": dt.date(2024, 5, 6)}))
        assert doc["data"] == {
            "at": "2024-05-06T07:08:09.123456+00:00",
            "pair": [1, "a"],
            "day": "2024-05-06",
        }

    def test_int64_come_back_as_plain_int(self) -> None:
        doc = _decode(_encode({"big": 2**63 - 1, "list": [2**40], "d": {"x": -(2**63)}}))
        data = decode_data(doc)
        assert data == {"big": 2**63 - 1, "list": [2**40], "d": {"x": -(2**63)}}
        assert type(data["big"]) is int
        assert type(data["list"][0]) is int
        assert type(data["d"]["x"]) is int

    @pytest.mark.parametrize(
        "data",
        [
            {"a.b": 1},
            {"$set": 1},
            {"": 1},
            {"nul\x00": 1},
            {"deep": [{"x": {"$where": 1}}]},
            {"u64": 2**64 - 1},
            {"list": [1, 2**63]},
        ],
        ids=repr,
    )
    def test_unsafe_documents_are_stored_as_json(self, data: dict[str, Any]) -> None:
        assert not bson_safe(data)
        doc = _decode(_encode(data))
        assert "data" not in doc
        assert doc["data_json"] == dumps_record(data).decode()
        assert decode_data(doc) == data

    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"a": {"b": [1, {"c": "d"}]}},
            {"x": -(2**63), "y": 2**63 - 1},
            {"t": True, "n": None},
        ],
        ids=repr,
    )
    def test_safe_documents_are_native(self, data: dict[str, Any]) -> None:
        assert bson_safe(data)
        doc = _decode(_encode(data))
        assert doc["data"] == data
        assert decode_data(doc) == data

    def test_native_form_over_16_mib_falls_back_to_json(self) -> None:
        # 3M zeros: 6 MB of JSON, but BSON spends ~10 bytes per array element
        data = {"zeros": [0] * 3_000_000}
        raw = _encode(data)
        assert len(raw) <= MAX_BSON_BYTES
        doc = _decode(raw)
        assert "data" not in doc
        assert decode_data(doc) == data

    def test_over_16_mib_even_as_json_is_limit_exceeded(self) -> None:
        with pytest.raises(LimitExceeded, match="16 MiB"):
            _encode({"v": 1}, key="k" * MAX_BSON_BYTES)

    def test_declared_record_limit_fits_a_document(self) -> None:
        limit = INGEST_CAPS.max_record_bytes
        assert limit is not None
        blob = {"b": "x" * (limit - 8)}  # JSON exactly at the limit
        assert len(dumps_record(blob)) == limit
        long_key = "k" * 1000
        raw = _encode(blob, stream="s" * 128, key=long_key)
        assert len(raw) <= MAX_BSON_BYTES


# --------------------------------------------------------------------------------- queries
def _state(
    next_seq: int, pending: list[tuple[int, int]] = (), aborted: list[tuple[int, int]] = ()
) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "next_seq": next_seq,
        "pending": [{"id": ObjectId(), "lo": lo, "hi": hi} for lo, hi in pending],
        "aborted": [{"lo": lo, "hi": hi, "clean": False} for lo, hi in aborted],
    }


class TestQueries:
    def test_indexes(self) -> None:
        by_name = {name: (keys, opts) for name, keys, opts in INDEXES}
        assert by_name["stream_seq"] == ([("stream", 1), ("seq", 1)], {"unique": True})
        keys, opts = by_name["stream_key"]
        assert keys == [("stream", 1), ("key", 1)]
        assert opts == {"unique": True, "partialFilterExpression": {"key": {"$type": "string"}}}
        assert by_name["stream_ts"][0] == [("stream", 1), ("ts_us", 1)]

    def test_reserve_update_transactions(self) -> None:
        (stage,) = reserve_update(5, None, 1000)
        body = stage["$set"]
        assert body["next_seq"] == {"$add": [{"$ifNull": ["$next_seq", Int64(0)]}, Int64(5)]}
        assert body["live"] is True
        assert "pending" not in body

    def test_reserve_update_staged_records_the_batch(self) -> None:
        batch = ObjectId()
        (stage,) = reserve_update(3, batch, 60_000)
        pending = stage["$set"]["pending"]["$concatArrays"]
        assert pending[0] == {"$ifNull": ["$pending", []]}
        (entry,) = pending[1]
        nxt = {"$ifNull": ["$next_seq", Int64(0)]}
        assert entry == {
            "id": batch,
            "lo": {"$add": [nxt, Int64(1)]},
            "hi": {"$add": [nxt, Int64(3)]},
            "exp": {"$add": ["$$NOW", 60_000]},
        }

    def test_commit_reap_and_drop_updates(self) -> None:
        batch = ObjectId()
        assert commit_update(batch) == (
            {"pending.id": batch},
            {"$pull": {"pending": {"id": batch}}},
        )
        (reap,) = reap_update()
        assert set(reap["$set"]) == {"aborted", "pending"}
        assert reap["$set"]["pending"]["$filter"]["cond"] == {"$gte": ["$$this.exp", "$$NOW"]}
        (drop,) = drop_update()
        assert drop["$set"]["live"] is False
        assert drop["$set"]["pending"] == []

    def test_horizon(self) -> None:
        assert horizon({}) == 1
        assert horizon(_state(10)) == 11
        assert horizon(_state(10, pending=[(7, 9), (4, 6)])) == 4
        assert horizon(_state(10, aborted=[(1, 3)])) == 11

    def test_visible_filter_shape(self) -> None:
        flt = visible_filter(
            "ev",
            _state(20, pending=[(15, 20)], aborted=[(3, 4), (30, 31)]),
            after=2,
            start_us=100,
            end_us=200,
        )
        assert flt == {
            "stream": "ev",
            "seq": {"$gt": Int64(2), "$lt": Int64(15)},
            "ts_us": {"$gte": Int64(100), "$lt": Int64(200)},
            "$nor": [{"seq": {"$gte": Int64(3), "$lte": Int64(4)}}],
        }
        assert "$nor" not in visible_filter("ev", _state(20, aborted=[(1, 2)]), after=5)

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        records=st.lists(
            st.tuples(st.integers(1, 40), st.integers(0, 9)), max_size=30, unique_by=lambda r: r[0]
        ),
        next_seq=st.integers(0, 45),
        pending=st.lists(st.tuples(st.integers(1, 45), st.integers(0, 5)), max_size=3),
        aborted=st.lists(st.tuples(st.integers(1, 45), st.integers(0, 5)), max_size=3),
        after=st.integers(0, 45),
        start=st.none() | st.integers(0, 9),
        end=st.none() | st.integers(0, 10),
    )
    def test_filters_run_by_mongodb_match_the_reference(
        self,
        records: list[tuple[int, int]],
        next_seq: int,
        pending: list[tuple[int, int]],
        aborted: list[tuple[int, int]],
        after: int,
        start: int | None,
        end: int | None,
    ) -> None:
        """The read/count/delete filter, run by a MongoDB query engine (mongomock), selects
        exactly the records below the horizon, after the cursor, outside aborted ranges and
        inside the window."""
        coll = mongomock.MongoClient().db.records
        docs = [{"stream": "ev", "seq": s, "ts_us": t} for s, t in records]
        docs += [{"stream": "other", "seq": s, "ts_us": t} for s, t in records]
        if docs:
            coll.insert_many(docs)
        state = _state(
            next_seq, [(lo, lo + n) for lo, n in pending], [(lo, lo + n) for lo, n in aborted]
        )
        flt = visible_filter("ev", state, after=after, start_us=start, end_us=end)
        got = sorted(d["seq"] for d in coll.find(flt))
        bound = horizon(state)
        want = sorted(
            s
            for s, t in records
            if after < s < bound
            and not any(lo <= s <= lo + n for lo, n in aborted)
            and (start is None or t >= start)
            and (end is None or t < end)
        )
        assert got == want
        assert coll.count_documents(flt) == len(want)


# ---------------------------------------------------------------------------------- errors
class TestErrors:
    def test_redact(self) -> None:
        text = f"failed on mongodb://admin:{PASSWORD}@db:27017/x and password={PASSWORD}"
        out = redact(text)
        assert PASSWORD not in out
        assert "mongodb://admin:****@db:27017/x" in out
        assert (
            redact(f"mongodb+srv://u:{PASSWORD}@c.example.net")
            == "mongodb+srv://u:****@c.example.net"
        )

    @pytest.mark.parametrize(
        ("exc", "kind"),
        [
            (pm.DuplicateKeyError("E11000 dup", 11000), Conflict),
            (pm.OperationFailure("not authorized", 13), ConfigError),
            (pm.OperationFailure("auth failed", 18), ConfigError),
            (pm.OperationFailure("WriteConflict", 112), Conflict),
            (pm.OperationFailure("operation exceeded time limit", 50), Unavailable),
            (pm.OperationFailure("object to insert too large", 10334), LimitExceeded),
            (pm.OperationFailure("not primary", 10107), Unavailable),
            (
                pm.OperationFailure("Transaction numbers are only allowed on a replica set", 20),
                ConfigError,
            ),
            (pm.OperationFailure("something else", 9999), BackendError),
            (pm.ServerSelectionTimeoutError("127.0.0.1:1: connection refused"), Unavailable),
            (pm.AutoReconnect("lost"), Unavailable),
            (pm.NetworkTimeout("timed out"), Unavailable),
            (pm.ExecutionTimeout("slow", 50), Unavailable),
            (pm.DocumentTooLarge("BSON document too large"), LimitExceeded),
            (pm.ConfigurationError("bad option"), ConfigError),
            (pm.InvalidURI("bad uri"), ConfigError),
            (bson.errors.InvalidDocument("key must not contain NUL"), InvalidInput),
            (pm.PyMongoError("other"), BackendError),
        ],
        ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else v.__name__,
    )
    def test_translate(self, exc: BaseException, kind: type[Exception]) -> None:
        err = translate(exc, "writing to stream 'ev'")
        assert type(err) is kind
        assert str(err).startswith("writing to stream 'ev'")

    def test_transient_transaction_label_is_a_conflict(self) -> None:
        exc = pm.OperationFailure(
            "interrupted", 999, {"errorLabels": ["TransientTransactionError"]}
        )
        assert isinstance(translate(exc, "w"), Conflict)

    def test_messages_never_carry_the_password(self) -> None:
        exc = pm.ConfigurationError(f"cannot parse mongodb://admin:{PASSWORD}@h/?x=1")
        assert PASSWORD not in str(translate(exc, "connecting"))

    def test_bulk_write_error_partial_results(self) -> None:
        details = {
            "nInserted": 3,
            "writeErrors": [
                {
                    "index": 1,
                    "code": 11000,
                    "errmsg": "E11000 ... index: stream_key dup key",
                    "keyPattern": {"stream": 1, "key": 1},
                },
                {"index": 4, "code": 11000, "errmsg": "E11000 ... index: stream_key dup key"},
                {"index": 5, "code": 121, "errmsg": "Document failed validation"},
            ],
            "writeConcernErrors": [{"code": 64, "errmsg": "waiting for replication timed out"}],
        }
        inserted, dups, others = split_write_errors(details)
        assert inserted == 3
        assert [d["index"] for d in dups] == [1, 4]
        assert [o["code"] for o in others] == [121, 64]
        err = translate(pm.BulkWriteError(details), "writing")
        assert isinstance(err, BackendError)
        assert "Document failed validation" in str(err)
        only_dups = {"nInserted": 0, "writeErrors": details["writeErrors"][:2]}
        assert isinstance(translate(pm.BulkWriteError(only_dups), "writing"), Conflict)

    def test_key_duplicates_are_told_from_other_unique_violations(self) -> None:
        keys = ["a", None, "c"]
        with_pattern = {"index": 0, "code": 11000, "keyPattern": {"stream": 1, "key": 1}}
        assert _key_duplicate(with_pattern, keys)
        assert not _key_duplicate({**with_pattern, "keyPattern": {"stream": 1, "seq": 1}}, keys)
        assert _key_duplicate(
            {"index": 2, "code": 11000, "errmsg": "index: stream_key dup key"}, keys
        )
        assert not _key_duplicate(
            {"index": 2, "code": 11000, "errmsg": "index: _id_ dup key"}, keys
        )
        assert not _key_duplicate({"index": 1, "code": 11000, "errmsg": "index: stream_key"}, keys)
        assert not _key_duplicate({"index": 9, "code": 11000}, keys)


# ------------------------------------------------------------- store without a server
@pytest.fixture
def dead_store() -> Any:
    """A store whose server does not exist: every call that reaches the network fails fast."""
    config = MongoDBConfig(type="mongodb", url=DEAD_URL, server_selection_timeout_ms=150)
    store = MongoIngestStore.from_config(config)
    yield store
    store.close()


class TestBeforeAnyIO:
    """Bad input is refused before the store talks to the server (which here does not exist:
    a call that reached the network would raise Unavailable instead)."""

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.write("bad name", {"v": 1}),
            lambda s: s.write("ev", {"v": float("nan")}),
            lambda s: s.write("ev", ["not", "a", "mapping"]),
            lambda s: s.write("ev", {"v": 1}, key=["k"]),
            lambda s: s.write("ev", {"at": "yesterday"}, time_field="at"),
            lambda s: s.write_batch("ev", [{"v": 1}, {"v": object()}]),
            lambda s: s.write_batch("ev", {"v": 1}),
            lambda s: s.write_batch("ev", [{"id": {"x": 1}}], key_field="id"),
            lambda s: s.read("ev", after="not-a-cursor"),
            lambda s: s.read("ev", limit=0),
            lambda s: s.read("ev", start="garbage"),  # type: ignore[arg-type]
            lambda s: s.count("bad/name"),
            lambda s: s.drop("a.b"),
        ],
    )
    def test_invalid_input(self, dead_store: MongoIngestStore, call: Any) -> None:
        with pytest.raises(InvalidInput):
            call(dead_store)

    def test_limits(self, dead_store: MongoIngestStore) -> None:
        rows = INGEST_CAPS.max_batch_rows
        assert rows is not None
        with pytest.raises(LimitExceeded):
            dead_store.write_batch("ev", [{"v": 1}] * (rows + 1))
        limit = INGEST_CAPS.max_record_bytes
        assert limit is not None
        with pytest.raises(LimitExceeded):
            dead_store.write("ev", {"blob": "x" * limit})

    def test_empty_batch_needs_no_server(self, dead_store: MongoIngestStore) -> None:
        result = dead_store.write_batch("ev", [])
        assert (result.written, result.duplicates) == (0, 0)

    def test_unreachable_server_is_unavailable_without_secrets(
        self, dead_store: MongoIngestStore
    ) -> None:
        for call in (
            lambda: dead_store.write("ev", {"v": 1}),
            lambda: dead_store.read("ev"),
            lambda: dead_store.streams(),
        ):
            with pytest.raises(Unavailable) as info:
                call()
            assert PASSWORD not in str(info.value)
            assert isinstance(info.value.__cause__, pm.PyMongoError)
        assert PASSWORD not in repr(dead_store)

    def test_closed_store(self, dead_store: MongoIngestStore) -> None:
        dead_store.close()
        dead_store.close()
        with pytest.raises(Unavailable, match="closed"):
            dead_store.read("ev")


# --------------------------------------------------------------------- config / adapter
class TestConfig:
    def test_secret_url_is_never_shown(self) -> None:
        config = MongoDBConfig(type="mongodb", url=DEAD_URL)
        assert PASSWORD not in repr(config)
        assert PASSWORD not in str(config.model_dump())
        assert PASSWORD not in str(redact_settings(DEAD_URL))
        assert config.url.get_secret_value() == DEAD_URL

    def test_defaults_and_validation(self) -> None:
        config = MongoDBConfig(type="mongodb", url="mongodb://h:27017")
        assert (config.database, config.collection_prefix) == ("strataml", "strataml_ingest")
        assert (config.transactions, config.write_concern) == ("auto", "majority")
        assert (
            MongoDBConfig(type="mongodb", url="mongodb://h", write_concern="1").write_concern == 1
        )
        for bad in (
            {"url": "postgresql://h/db"},
            {"url": "mongodb://h", "database": "bad name"},
            {"url": "mongodb://h", "collection_prefix": "1bad"},
            {"url": "mongodb://h", "transactions": "sometimes"},
            {"url": "mongodb://h", "batch_timeout_s": 0},
            {"url": "mongodb://h", "unknown": 1},
        ):
            with pytest.raises(ValueError, match="validation error"):
                MongoDBConfig(type="mongodb", **bad)

    def test_adapter_declaration(self) -> None:
        assert get_adapter("mongodb") is MONGODB
        assert MONGODB.config is MongoDBConfig
        assert set(MONGODB.factories) == {"ingest"}
        caps = MONGODB.capabilities["ingest"]
        assert caps.transactions
        assert caps.max_record_bytes is not None
        assert caps.max_record_bytes < MAX_BSON_BYTES

    def test_importing_the_adapter_does_not_import_pymongo(self) -> None:
        code = "import sys, strataml_mongodb; print('pymongo' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False"
