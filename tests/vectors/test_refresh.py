"""Incremental refresh (strataml.vectors.refresh) on real stores with a real embedder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.capabilities import Capabilities
from strataml.embed import Chunker, LSAEmbedder
from strataml.errors import Conflict, DimensionMismatch, InvalidInput, NotFound
from strataml.local.lancedb_vectors import LanceDBVectorStore
from strataml.vectors.refresh import (
    RESERVED_FIELDS,
    Document,
    load_documents,
    refresh,
    run_refresh_cli,
)

SMALL = Chunker(size=120, overlap=20)


def docs_of(helpers: Any, n: int, words: int = 60, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"d{i}", "text": helpers.text(i, words), "metadata": {"n": i, "lang": "en"}}
        for i in range(start, start + n)
    ]


# ----------------------------------------------------------------------------------- basics
def test_first_refresh_writes_every_chunk_with_bookkeeping(
    store: Any, lsa: Any, helpers: Any
) -> None:
    docs = docs_of(helpers, 6)
    rep = refresh(store, "kb", docs, lsa, chunker=SMALL)
    expected = {c.id: c for d in docs for c in SMALL.chunk(d["id"], d["text"])}
    assert (rep.added, rep.updated, rep.deleted, rep.unchanged) == (6, 0, 0, 0)
    assert rep.embedded_chunks == rep.written_chunks == len(expected)
    snap = helpers.snapshot(store, "kb")
    assert set(snap) == set(expected)
    text, meta = snap["d2#1"]
    assert text == expected["d2#1"].text
    assert meta["_doc"] == "d2" and meta["_chunk"] == 1 and meta["n"] == 2
    assert meta["_nchunks"] == sum(1 for c in expected.values() if c.doc_id == "d2")
    assert meta.keys() >= RESERVED_FIELDS
    info = store.describe("kb")
    assert info.dim == lsa.dim
    assert info.metadata["embedder"] == lsa.name
    assert info.metadata["embedder_version"] == lsa.version
    assert info.metadata["embedder_dim"] == lsa.dim
    # the vectors are the embedder's
    got = store.get("kb", ["d2#1"])[0]
    want = lsa.embed([expected["d2#1"].text])[0]
    assert np.allclose(np.asarray(got.vector, dtype=np.float32), want, atol=1e-5)


def test_second_run_on_unchanged_input_embeds_and_writes_nothing(
    store: Any, lsa: Any, helpers: Any
) -> None:
    docs = docs_of(helpers, 5)
    refresh(store, "kb", docs, lsa, chunker=SMALL)
    before = helpers.snapshot(store, "kb")
    emb, spy = helpers.counting(lsa), helpers.recording(store)
    rep = refresh(spy, "kb", [Document(**d) for d in docs], emb, chunker=SMALL)
    assert (rep.added, rep.updated, rep.deleted, rep.unchanged) == (0, 0, 0, 5)
    assert rep.embedded_chunks == rep.written_chunks == rep.deleted_chunks == 0
    assert not rep.changed
    assert emb.texts == 0 and spy.upserts == [] and spy.deletes == []
    assert helpers.snapshot(store, "kb") == before


def test_changes_embed_only_changed_documents(store: Any, lsa: Any, helpers: Any) -> None:
    docs = docs_of(helpers, 6)
    refresh(store, "kb", docs, lsa, chunker=SMALL)
    before = helpers.snapshot(store, "kb")
    docs[1] = {**docs[1], "text": helpers.text(101, 60)}  # changed text, same length
    docs[2] = {**docs[2], "text": helpers.text(2, 60)[:100]}  # shrinks to one chunk
    docs[3] = {**docs[3], "metadata": {"n": 3, "lang": "de"}}  # metadata only
    del docs[4]  # deleted
    docs.append({"id": "new", "text": helpers.text(77, 30)})  # added
    emb = helpers.counting(lsa)
    rep = refresh(store, "kb", docs, emb, chunker=SMALL)
    assert (rep.added, rep.updated, rep.deleted, rep.unchanged) == (1, 3, 1, 2)
    changed_chunks = sum(
        len(SMALL.chunk(d["id"], d["text"])) for d in docs if d["id"] in ("d1", "d2", "new")
    )
    assert rep.embedded_chunks == emb.texts == changed_chunks  # metadata-only: not embedded
    after = helpers.snapshot(store, "kb")
    assert not any(i.startswith("d4#") for i in after)
    assert {i for i in after if i.startswith("d2#")} == {"d2#0"}
    assert all(after[i][1]["lang"] == "de" for i in after if i.startswith("d3#"))
    for i in after:
        if i.startswith(("d0#", "d5#")):
            assert after[i] == before[i]
    # the metadata-only document kept its vectors
    old = store.get("kb", ["d3#0"])[0]
    assert np.allclose(old.vector, lsa.embed([after["d3#0"][0]])[0], atol=1e-5)
    # and the next run is a no-op
    again = refresh(store, "kb", docs, lsa, chunker=SMALL)
    assert again.unchanged == len(docs) and not again.changed


def test_changing_the_chunker_re_embeds_everything(lance: Any, lsa: Any, helpers: Any) -> None:
    docs = docs_of(helpers, 3)
    refresh(lance, "kb", docs, lsa, chunker=SMALL)
    rep = refresh(lance, "kb", docs, lsa, chunker=Chunker(size=80, overlap=10))
    assert rep.updated == 3 and rep.embedded_chunks == rep.written_chunks
    ids = set(helpers.snapshot(lance, "kb"))
    assert ids == {
        c.id for d in docs for c in Chunker(size=80, overlap=10).chunk(d["id"], d["text"])
    }


def test_token_chunker_and_dry_run(lance: Any, lsa: Any, helpers: Any) -> None:
    docs = docs_of(helpers, 3)
    tokens = Chunker(size=16, overlap=4, unit="tokens")
    plan = refresh(lance, "kb", docs, lsa, chunker=tokens, dry_run=True)
    assert plan.dry_run and plan.added == 3 and plan.written_chunks > 0
    with pytest.raises(NotFound):
        lance.describe("kb")  # a dry run creates nothing
    rep = refresh(lance, "kb", docs, lsa, chunker=tokens)
    assert rep.written_chunks == plan.written_chunks
    assert all(len(t.split()) <= 16 for t, _ in helpers.snapshot(lance, "kb").values())


def test_progress_is_reported(lance: Any, lsa: Any, helpers: Any) -> None:
    seen: list[tuple[str, int, int | None]] = []
    refresh(
        lance,
        "kb",
        docs_of(helpers, 4),
        lsa,
        chunker=SMALL,
        embed_batch=3,
        progress=lambda *a: seen.append(a),
    )
    phases = [p for p, _, _ in seen]
    assert "embed" in phases and "write" in phases
    last_write = [a for a in seen if a[0] == "write"][-1]
    assert last_write[1] == last_write[2]


# ------------------------------------------------------------------------------------ batches
def test_writes_respect_batch_rows_and_bytes(lance: Any, lsa: Any, helpers: Any) -> None:
    docs = docs_of(helpers, 8)
    spy = helpers.recording(lance)
    rep = refresh(spy, "kb", docs, lsa, chunker=SMALL, batch_rows=5)
    assert max(spy.upserts) <= 5 and sum(spy.upserts) == rep.written_chunks
    spy2 = helpers.recording(lance)
    refresh(spy2, "kb2", docs, lsa, chunker=SMALL, batch_bytes=600)  # ~2 records a batch
    assert max(spy2.upserts) <= 3 and len(spy2.upserts) > 3


def test_writes_respect_the_store_capabilities(lance: Any, lsa: Any, helpers: Any) -> None:
    caps = Capabilities(**{**lance.capabilities.model_dump(), "max_batch_rows": 4})
    spy = helpers.recording(lance, caps=caps)
    refresh(spy, "kb", docs_of(helpers, 6), lsa, chunker=SMALL, batch_rows=1000)
    assert max(spy.upserts) <= 4
    docs = docs_of(helpers, 6)[:1]
    refresh(spy, "kb", docs, lsa, chunker=SMALL)
    assert max(spy.deletes) <= 4


def test_a_chunk_over_the_record_limit_is_refused_before_writing(
    lance: Any, lsa: Any, helpers: Any
) -> None:
    from strataml.errors import LimitExceeded

    caps = Capabilities(**{**lance.capabilities.model_dump(), "max_record_bytes": 300})
    spy = helpers.recording(lance, caps=caps)
    with pytest.raises(LimitExceeded):
        refresh(spy, "kb", docs_of(helpers, 2), lsa, chunker=Chunker(size=1000, overlap=0))
    assert "kb" not in lance.collections()


# ------------------------------------------------------------------------------- retry/crash
def test_a_crash_half_way_then_a_rerun_converges(store: Any, lsa: Any, helpers: Any) -> None:
    docs = docs_of(helpers, 6)
    refresh(store, "kb", docs, lsa, chunker=SMALL)
    new_docs = [{**d, "text": helpers.text(500 + i, 30)} for i, d in enumerate(docs[:4])]
    new_docs += [docs[5]]  # d4 deleted, d5 unchanged, d0-d3 shrink
    crashing = helpers.recording(store, fail_upsert_at=1)
    with pytest.raises(ConnectionError):
        refresh(crashing, "kb", new_docs, lsa, chunker=SMALL, batch_rows=2)
    rep = refresh(store, "kb", new_docs, lsa, chunker=SMALL, batch_rows=2)
    assert rep.unchanged >= 1
    fresh = "fresh"
    refresh(store, fresh, new_docs, lsa, chunker=SMALL)
    assert helpers.snapshot(store, "kb") == helpers.snapshot(store, fresh)
    assert not refresh(store, "kb", new_docs, lsa, chunker=SMALL).changed


def test_stale_chunks_left_by_a_crash_are_removed_without_embedding(
    lance: Any, lsa: Any, helpers: Any
) -> None:
    docs = docs_of(helpers, 2, words=60)
    refresh(lance, "kb", docs, lsa, chunker=SMALL)
    shrunk = [{**docs[0], "text": helpers.text(0, 60)[:100]}, docs[1]]
    # the upsert went through, the deletes did not
    crashing = helpers.recording(lance)
    crashing.delete = lambda *a, **k: (_ for _ in ()).throw(ConnectionError("crash"))
    with pytest.raises(ConnectionError):
        refresh(crashing, "kb", shrunk, lsa, chunker=SMALL)
    emb = helpers.counting(lsa)
    rep = refresh(lance, "kb", shrunk, emb, chunker=SMALL)
    assert emb.texts == 0 and rep.deleted_chunks > 0 and rep.unchanged == 2
    assert {i for i in helpers.snapshot(lance, "kb") if i.startswith("d0#")} == {"d0#0"}


def test_tampered_bookkeeping_is_repaired(store: Any, lsa: Any, helpers: Any) -> None:
    """The column-wise state check: a chunk whose ``_nchunks`` disagrees makes its document
    changed; stray chunks carrying a document's current hash (a position past its end, a
    non-canonical id) are deleted and the document stays unchanged."""
    docs = docs_of(helpers, 4)
    refresh(store, "kb", docs, lsa, chunker=SMALL)
    (d0,) = store.get("kb", ["d0#0"], include_vectors=True)
    (d1,) = store.get("kb", ["d1#0"], include_vectors=True)
    (d2,) = store.get("kb", ["d2#1"], include_vectors=True)
    store.upsert(
        "kb",
        [
            {**d0.model_dump(), "metadata": {**d0.metadata, "_nchunks": 99}},
            {**d1.model_dump(), "id": "d1#99", "metadata": {**d1.metadata, "_chunk": 99}},
            {**d2.model_dump(), "id": "d2-copy"},
        ],
    )
    emb = helpers.counting(lsa)
    rep = refresh(store, "kb", docs, emb, chunker=SMALL)
    assert (rep.updated, rep.unchanged, rep.deleted) == (1, 3, 0)
    assert emb.texts == rep.embedded_chunks > 0  # d0 alone, its chunk count in doubt
    assert rep.deleted_chunks == 2
    refresh(store, "fresh", docs, lsa, chunker=SMALL)
    assert helpers.snapshot(store, "kb") == helpers.snapshot(store, "fresh")
    assert not refresh(store, "kb", docs, lsa, chunker=SMALL).changed


class _NoColumnScan:
    """A store implementing the protocol as it was before ``scan_metadata``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "scan_metadata":
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_a_store_without_scan_metadata_is_refreshed_through_scan(
    lance: Any, lsa: Any, helpers: Any
) -> None:
    docs = docs_of(helpers, 5)
    refresh(lance, "kb", docs, lsa, chunker=SMALL)
    changed = [{**docs[0], "text": helpers.text(900, 30)}, *docs[1:4]]
    emb = helpers.counting(lsa)
    rep = refresh(_NoColumnScan(lance), "kb", changed, emb, chunker=SMALL)
    assert (rep.updated, rep.unchanged, rep.deleted) == (1, 3, 1)
    assert emb.texts == rep.embedded_chunks > 0
    refresh(lance, "fresh", changed, lsa, chunker=SMALL)
    assert helpers.snapshot(lance, "kb") == helpers.snapshot(lance, "fresh")


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "bad",
    [
        {"text": "no id here"},
        {"id": "", "text": "empty id"},
        {"id": "x"},
        {"id": "x", "text": "   "},
        {"id": "x", "text": 42},
        {"id": "x", "text": "t", "metadata": {"_doc": "spoof"}},
        {"id": "x", "text": "t", "metadata": {"n": "a string where ints were"}},
        {"id": "x", "text": "t", "metadata": {"nested": {"a": 1}}},
        {"id": "x", "text": "t", "extra": 1},
        {"id": "d0", "text": "a duplicate id"},
        "not a document",
    ],
)
def test_bad_documents_raise_before_anything_is_written(
    store: Any, lsa: Any, helpers: Any, bad: Any
) -> None:
    docs = docs_of(helpers, 3)
    refresh(store, "kb", docs, lsa, chunker=SMALL)
    before = helpers.snapshot(store, "kb")
    with pytest.raises(InvalidInput):
        refresh(store, "kb", [*docs, bad], lsa, chunker=SMALL)
    assert helpers.snapshot(store, "kb") == before
    with pytest.raises(InvalidInput):
        refresh(store, "other", [*docs, bad], lsa, chunker=SMALL)
    assert "other" not in store.collections()


def test_documents_must_be_a_collection_of_documents(lance: Any, lsa: Any) -> None:
    one: Any = {"id": "a", "text": "one doc, not a list"}
    with pytest.raises(InvalidInput):
        refresh(lance, "kb", one, lsa)
    with pytest.raises(InvalidInput):
        refresh(lance, "bad name!", [{"id": "a", "text": "x"}], lsa)


class _Broken:
    """A real embedder (LSA) whose output is corrupted in one way."""

    def __init__(self, inner: Any, how: str) -> None:
        self.inner, self.how = inner, how
        self.name, self.version = "broken-" + how, inner.version

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed(self, texts: Any) -> Any:
        out = self.inner.embed(texts)
        if self.how == "nan":
            out[-1, 0] = np.nan
        elif self.how == "inf":
            out[0, -1] = np.inf
        elif self.how == "dim":
            out = out[:, :-1]
        elif self.how == "rows":
            out = out[:-1]
        elif self.how == "raise":
            raise RuntimeError("model crashed")
        return out


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("nan", InvalidInput),
        ("inf", InvalidInput),
        ("rows", InvalidInput),
        ("dim", DimensionMismatch),
    ],
)
def test_a_bad_embedder_raises_naming_it_and_writes_nothing(
    store: Any, lsa: Any, helpers: Any, how: str, error: type[Exception]
) -> None:
    docs = docs_of(helpers, 4)
    broken = _Broken(lsa, how)
    with pytest.raises(error, match=f"broken-{how}"):
        refresh(store, "kb", docs, broken, chunker=SMALL, embed_batch=4)
    assert "kb" not in store.collections()


def test_an_embedder_crash_is_a_strataml_error(lance: Any, lsa: Any, helpers: Any) -> None:
    from strataml.errors import BackendError

    with pytest.raises(BackendError, match="broken-raise") as info:
        refresh(lance, "kb", docs_of(helpers, 2), _Broken(lsa, "raise"), chunker=SMALL)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_another_embedder_or_dimension_is_refused(
    store: Any, lsa: Any, lsa8: Any, helpers: Any
) -> None:
    docs = docs_of(helpers, 3)
    refresh(store, "kb", docs, lsa, chunker=SMALL)
    before = helpers.snapshot(store, "kb")
    with pytest.raises(DimensionMismatch):
        refresh(store, "kb", docs, lsa8, chunker=SMALL)
    other = LSAEmbedder(dim=16, random_state=1).fit([helpers.text(i, 30) for i in range(50)])
    assert other.version != lsa.version
    with pytest.raises(Conflict, match="never mixes models"):
        refresh(store, "kb", docs, other, chunker=SMALL)
    assert helpers.snapshot(store, "kb") == before


def test_a_collection_without_embedder_metadata_is_not_managed(lance: Any, lsa: Any) -> None:
    lance.create_collection("plain", lsa.dim)
    with pytest.raises(Conflict, match="does not record its embedder"):
        refresh(lance, "plain", [{"id": "a", "text": "alpha beta"}], lsa)


# ------------------------------------------------------------------------- tenants, unmanaged
def test_tenants_are_refreshed_independently(store: Any, lsa: Any, helpers: Any) -> None:
    a, b = docs_of(helpers, 3), docs_of(helpers, 3, start=10)
    refresh(store, "mt", a, lsa, chunker=SMALL, tenant="acme", multi_tenant=True)
    refresh(store, "mt", b, lsa, chunker=SMALL, tenant="globex")
    b_before = helpers.snapshot(store, "mt", "globex")
    rep = refresh(store, "mt", a[:1], lsa, chunker=SMALL, tenant="acme")
    assert rep.deleted == 2 and rep.tenant == "acme"
    assert {m["_doc"] for _, m in helpers.snapshot(store, "mt", "acme").values()} == {"d0"}
    assert helpers.snapshot(store, "mt", "globex") == b_before
    with pytest.raises(InvalidInput):
        refresh(store, "mt", a, lsa, chunker=SMALL)  # tenant required
    with pytest.raises(InvalidInput):
        refresh(store, "kb", a, lsa, chunker=SMALL, tenant="acme")  # not multi-tenant


def test_records_written_by_others_are_left_alone(lance: Any, lsa: Any, helpers: Any) -> None:
    refresh(lance, "kb", docs_of(helpers, 2), lsa, chunker=SMALL)
    lance.upsert("kb", [{"id": "manual", "vector": lsa.embed(["alpha"])[0], "text": "alpha"}])
    rep = refresh(lance, "kb", [], lsa, chunker=SMALL)
    assert rep.deleted == 2 and rep.unmanaged == 1
    assert set(helpers.snapshot(lance, "kb")) == {"manual"}


# ------------------------------------------------------------------------ property (hypothesis)
_ops = st.lists(
    st.tuples(
        st.sampled_from(["add", "change", "meta", "delete", "shrink"]),
        st.integers(0, 5),
        st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(_ops, min_size=1, max_size=3))
def test_property_refresh_equals_a_fresh_build(lsa: Any, helpers: Any, steps: Any) -> None:
    """Random add/change/delete sequences, refreshed after each step: the collection always
    equals a fresh full build of the current documents (ids, texts, hashes, metadata)."""
    with tempfile.TemporaryDirectory() as tmp:
        store = LanceDBVectorStore(Path(tmp) / "v")
        try:
            docs: dict[str, dict[str, Any]] = {}
            for round_no, ops in enumerate(steps):
                for op, i, seed in ops:
                    key = f"doc{i}"
                    if op == "add" or (op != "delete" and key not in docs):
                        docs[key] = {"id": key, "text": helpers.text(seed, 10 + seed % 50)}
                    elif op == "change":
                        docs[key] = {**docs[key], "text": helpers.text(seed, 10 + seed % 50)}
                    elif op == "meta":
                        docs[key] = {**docs[key], "metadata": {"tag": f"t{seed % 3}"}}
                    elif op == "shrink":
                        docs[key] = {**docs[key], "text": docs[key]["text"][:60]}
                    else:
                        docs.pop(key, None)
                current = list(docs.values())
                refresh(store, "inc", current, lsa, chunker=SMALL, batch_rows=3)
                fresh = f"fresh{round_no}"
                refresh(store, fresh, current, lsa, chunker=SMALL)
                assert helpers.snapshot(store, "inc") == helpers.snapshot(store, fresh)
                assert not refresh(store, "inc", current, lsa, chunker=SMALL).changed
        finally:
            store.close()


# ------------------------------------------------------------------------------------ the CLI
def test_load_documents_from_jsonl_and_directories(tmp_path: Path) -> None:
    jl = tmp_path / "docs.jsonl"
    jl.write_text(
        json.dumps({"id": "a", "text": "alpha"}) + "\n\n" + json.dumps({"id": "b", "text": "b"})
    )
    assert [d["id"] for d in load_documents(jl)] == ["a", "b"]
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "one.txt").write_text("one")
    (tmp_path / "dir" / "sub" / "two.md").write_text("two")
    (tmp_path / "dir" / "skip.bin").write_bytes(b"\x00")
    docs = load_documents(tmp_path / "dir")
    assert [(d["id"], d["text"]) for d in docs] == [("one.txt", "one"), ("sub/two.md", "two")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\nnot json\n')
    with pytest.raises(InvalidInput, match=":2:"):
        load_documents(bad)
    with pytest.raises(InvalidInput):
        load_documents(tmp_path / "missing")


def test_refresh_cli_fits_saves_and_reuses_the_lsa_model(
    tmp_path: Path, helpers: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "docs.jsonl"
    rows = [{"id": f"d{i}", "text": helpers.text(i, 80)} for i in range(30)]
    src.write_text("\n".join(json.dumps(r) for r in rows))
    args: dict[str, Any] = {
        "profile": "local",
        "data_dir": tmp_path / "data",
        "lsa_dim": 16,
        "as_json": True,
    }
    assert run_refresh_cli(src, "kb", **args) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["added"] == 30 and first["written_chunks"] > 0
    assert (tmp_path / "data" / "embedders" / "kb.lsa.npz").is_file()
    rows[0]["text"] = helpers.text(999, 80)
    src.write_text("\n".join(json.dumps(r) for r in rows[:-1]))
    assert run_refresh_cli(src, "kb", **args) == 0
    second = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (second["updated"], second["deleted"], second["unchanged"]) == (1, 1, 28)
    src.write_text('{"id": "x"}\n')
    assert run_refresh_cli(src, "kb", **args) == 2
    assert "InvalidInput" in capsys.readouterr().out


def test_a_document_that_chunks_to_nothing_is_refused(lance: Any, lsa: Any) -> None:
    nothing = Chunker(size=8, overlap=0, unit="tokens", tokenizer=lambda t: [], tokenizer_name="x")
    with pytest.raises(InvalidInput, match="no text to embed"):
        refresh(lance, "kb", [{"id": "a", "text": "alpha beta"}], lsa, chunker=nothing)
    assert "kb" not in lance.collections()
