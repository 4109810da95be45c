"""Bad input on the vector stage (LanceDB store, refresh and its CLI, the LSA embedder): every
mistake gets a typed strataml error, raised before anything is written, and nothing is dropped
silently."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from strataml.embed import LSAEmbedder
from strataml.errors import InvalidInput, LimitExceeded
from strataml.filters import FieldType
from strataml.local.lancedb_vectors import LanceDBVectorStore
from strataml.vectors.refresh import load_documents, run_refresh_cli


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _docs(n: int = 4) -> list[dict[str, Any]]:
    words = [
        *("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta"),
        *("kappa", "lambda", "sigma", "omega", "river", "mountain"),
    ]
    return [
        {"id": f"d{i}", "text": " ".join(words[(i + j) % len(words)] for j in range(8))}
        for i in range(n)
    ]


# ------------------------------------------------------------------------------ refresh CLI
def test_cli_bad_collection_name_writes_no_model_outside_the_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _jsonl(tmp_path / "docs.jsonl", _docs())
    data = tmp_path / "a" / "b" / "data"
    code = run_refresh_cli(src, "../../escaped", data_dir=data, lsa_dim=2, as_json=True)
    assert code == 2
    assert "InvalidInput" in capsys.readouterr().out
    assert list(tmp_path.rglob("*.npz")) == []  # nothing fitted, nothing written


def test_cli_jsonl_that_is_not_utf8_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_bytes(b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "caf\xe9 \xff"}\n')
    with pytest.raises(InvalidInput, match=r"docs\.jsonl:2: not UTF-8"):
        load_documents(src)
    code = run_refresh_cli(src, "kb", data_dir=tmp_path / "data", as_json=True)
    assert code == 2
    assert "InvalidInput" in capsys.readouterr().out


# ------------------------------------------------------------------------- create_collection
@pytest.mark.parametrize("metadata", [[1, 2], "ab", 42, [("a", 1)]])
def test_create_collection_metadata_that_is_not_a_mapping(lance: Any, metadata: Any) -> None:
    with pytest.raises(InvalidInput, match="metadata"):
        lance.create_collection("c", 3, metadata=metadata)
    assert lance.collections() == []


def test_create_collection_dimension_beyond_arrow_is_refused(lance: Any) -> None:
    with pytest.raises(LimitExceeded, match="dim"):
        lance.create_collection("c", 2**31, "l2")
    assert lance.collections() == []


# ------------------------------------------------------------------------------ LSA embedder
CORPUS = [
    "alpha beta gamma delta",
    "epsilon zeta theta kappa",
    "lambda sigma omega river",
    "mountain valley forest ocean",
]


@pytest.mark.parametrize("dim", [None, "8", 2.5, True, 1])
def test_lsa_bad_dimension(dim: Any) -> None:
    with pytest.raises(InvalidInput, match="dim"):
        LSAEmbedder(dim)


@pytest.mark.parametrize(
    "corpus",
    [
        ["a", "b", "c"],  # no token of two characters or more: no vocabulary
        "alpha beta gamma",  # one string, not a list of texts
        ["alpha beta", None, "gamma delta"],
        [t.encode() for t in CORPUS],  # bytes, not str
    ],
)
def test_lsa_fit_on_unusable_corpus(corpus: Any) -> None:
    with pytest.raises(InvalidInput):
        LSAEmbedder(2).fit(corpus)


@pytest.mark.parametrize("texts", ["alpha beta", ["alpha", None], [b"alpha"]])
def test_lsa_embed_bad_texts(texts: Any) -> None:
    model = LSAEmbedder(2).fit(CORPUS)
    with pytest.raises(InvalidInput):
        model.embed(texts)


def test_lsa_load_of_a_damaged_model_file(tmp_path: Path) -> None:
    good = LSAEmbedder(2).fit(CORPUS).save(tmp_path / "m.npz")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    for path in (truncated, empty):
        with pytest.raises(InvalidInput, match="not a saved LSA model"):
            LSAEmbedder.load(path)
    # a header without the model's keys
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    for header in ({"format": 1}, ["format", 1], {"format": 1, "dim": "x", "params": {}}):
        bad = tmp_path / "bad_header.npz"
        np.savez(bad, **{**arrays, "header": np.array(json.dumps(header))})
        with pytest.raises(InvalidInput, match="not a saved LSA model"):
            LSAEmbedder.load(bad)


def test_cli_refresh_with_a_damaged_model_or_tiny_vocabulary_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _jsonl(tmp_path / "docs.jsonl", [{"id": f"d{i}", "text": "a b c"} for i in range(4)])
    code = run_refresh_cli(src, "kb", data_dir=tmp_path / "data", lsa_dim=2, as_json=True)
    assert code == 2
    assert "InvalidInput" in capsys.readouterr().out
    damaged = tmp_path / "model.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    src = _jsonl(tmp_path / "docs.jsonl", _docs())
    code = run_refresh_cli(src, "kb", data_dir=tmp_path / "data", lsa_model=damaged, as_json=True)
    assert code == 2
    assert "InvalidInput" in capsys.readouterr().out


# ----------------------------------------------------------------------- zero-norm vectors
def _zero_rows(store: Any, name: str) -> None:
    store.create_collection(name, 3, "cosine")
    store.upsert(
        name,
        [
            {"id": "a", "vector": [1.0, 0.0, 0.0], "metadata": {"g": 1}},
            {"id": "b", "vector": [0.0, 1.0, 0.0], "metadata": {"g": 1}},
            {"id": "zero", "vector": [0.0, 0.0, 0.0], "metadata": {"g": 1}},
            {"id": "other", "vector": [0.0, 0.0, 0.0], "metadata": {"g": 2}},
        ],
    )


def test_cosine_search_keeps_a_stored_zero_vector_ranked_last(lance: Any) -> None:
    """A zero vector has no cosine similarity: it ranks last (distance 2, score 0), as on
    pgvector, instead of vanishing from a search that asks for more hits than it got."""
    _zero_rows(lance, "c")
    hits = lance.search("c", [1.0, 0.0, 0.0], k=10, filter={"g": 1})
    assert [h.id for h in hits] == ["a", "b", "zero"]
    assert (hits[-1].score, hits[-1].distance, hits[-1].metric) == (0.0, 2.0, "cosine")
    assert [h.id for h in lance.search("c", [1.0, 0.0, 0.0], k=2)] == ["a", "b"]
    assert lance.count("c", filter={"g": 1}) == 3


def test_cosine_search_with_a_zero_query_vector_returns_k_hits(lance: Any) -> None:
    _zero_rows(lance, "c")
    hits = lance.search("c", [0.0, 0.0, 0.0], k=3, include_vectors=True)
    assert len(hits) == 3 and all(h.score == 0.0 and h.distance == 2.0 for h in hits)
    assert all(h.vector is not None and len(h.vector) == 3 for h in hits)
    assert {h.id for h in lance.search("c", [0.0, 0.0, 0.0], k=10, filter={"g": 1})} == {
        "a",
        "b",
        "zero",
    }
    hybrid = lance.search("c", [0.0, 0.0, 0.0], text="nothing", k=10)
    assert {h.id for h in hybrid} == {"a", "b", "zero", "other"}


def test_cosine_search_keeps_zero_vectors_with_an_ann_index(tmp_path: Path) -> None:
    store = LanceDBVectorStore(tmp_path / "v", index_threshold=256)
    try:
        store.create_collection("c", 4, "cosine")
        rng = np.random.default_rng(0)
        rows = [{"id": f"r{i}", "vector": rng.normal(size=4)} for i in range(300)]
        rows += [{"id": "z0", "vector": [0.0] * 4}, {"id": "z1", "vector": [0.0] * 4}]
        store.upsert("c", rows)
        assert store.optimize("c").index_type == "ivf_flat"
        hits = store.search("c", rng.normal(size=4), k=len(rows))
        assert len(hits) == len(rows)
        assert [h.id for h in hits[-2:]] == ["z0", "z1"]
    finally:
        store.close()


# ------------------------------------------------------------------- NumPy metadata values
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_numpy_datetime64_metadata_is_a_timestamp_in_every_unit(lance: Any, unit: str) -> None:
    """``np.datetime64`` values (what ``df[col].values`` holds) are timestamps whatever their
    unit; nanoseconds used to become an int field."""
    lance.create_collection("c", 2)
    value = np.datetime64("2020-01-06T01:02:03", unit)
    lance.upsert("c", [{"id": "a", "vector": [1.0, 0.0], "metadata": {"t": value}}])
    assert lance.describe("c").fields == {"t": FieldType.TIMESTAMP}
    (rec,) = lance.get("c", ["a"])
    assert rec.metadata["t"] == dt.datetime(2020, 1, 6, 1, 2, 3, tzinfo=dt.UTC)
    later = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    lance.upsert("c", [{"id": "b", "vector": [0.0, 1.0], "metadata": {"t": later}}])
    assert lance.count("c", filter={"t": {"$lt": later}}) == 1


def test_numpy_date_nat_and_timedelta_metadata(lance: Any) -> None:
    lance.create_collection("c", 2)
    lance.upsert(
        "c",
        [
            {"id": "d", "vector": [1.0, 0.0], "metadata": {"day": np.datetime64("2020-01-06")}},
            {"id": "n", "vector": [1.0, 0.0], "metadata": {"t": np.datetime64("NaT", "ns")}},
        ],
    )
    assert lance.describe("c").fields == {"day": FieldType.DATE}
    assert lance.get("c", ["n"])[0].metadata == {}  # NaT is a missing value
    for bad in (
        np.timedelta64(5, "ns"),
        np.datetime64("20000-01-01", "us"),  # beyond Python's datetime
        np.array(["2020-01-01"], dtype="datetime64[ns]"),  # lists hold JSON scalars
    ):
        with pytest.raises(InvalidInput):
            lance.upsert("c", [{"id": "x", "vector": [1.0, 0.0], "metadata": {"v": bad}}])
    assert lance.count("c") == 2


@pytest.mark.parametrize("k", [2**32, 2**63 - 1, 2**80])
def test_any_positive_k_or_batch_size_is_valid(tmp_path: Path, k: int) -> None:
    """LanceDB takes row counts as 32-bit integers: k or batch_size >= 2**32 was a
    BackendError ('out of range integral type conversion') for a valid call."""
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 2, "l2")
    store.upsert("c", [{"id": "a", "vector": [1.0, 0.0], "text": "alpha beta"}])
    assert [h.id for h in store.search("c", [1.0, 0.0], k=k)] == ["a"]
    assert [h.id for h in store.search("c", [1.0, 0.0], text="alpha", k=k)] == ["a"]
    assert [h.id for h in store.search("c", text="alpha", k=k)] == ["a"]
    assert [r.id for batch in store.scan("c", batch_size=k) for r in batch] == ["a"]
    assert sum(b.num_rows for b in store.scan_metadata("c", [], batch_size=k)) == 1
    store.close()


@pytest.mark.parametrize(
    "vector",
    [["1", "0"], [True, False], np.array([True, False]), np.array(["1", "0"]), [None, 1.0]],
    ids=["text", "bools", "np_bools", "np_text", "none"],
)
def test_vectors_of_text_or_bools_are_refused(tmp_path: Path, vector: Any) -> None:
    """NumPy reads "1" and True as 1.0: such vectors were stored (and searched) silently."""
    store = LanceDBVectorStore(tmp_path / "v")
    store.create_collection("c", 2, "l2")
    with pytest.raises(InvalidInput, match="numbers"):
        store.upsert("c", [{"id": "a", "vector": vector}])
    with pytest.raises(InvalidInput, match="numbers"):
        store.search("c", vector)
    assert store.count("c") == 0
    store.close()
