"""Retrieval quality on Python's own docs (strataml.vectors.evaluate), LSA on LanceDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from strataml.embed import LSAEmbedder
from strataml.errors import InvalidInput
from strataml.local.lancedb_vectors import LanceDBVectorStore
from strataml.vectors import evaluate as ev


def test_the_eval_set_is_deterministic_and_labelled_from_the_corpus():
    a, b = ev.build_eval_set(), ev.build_eval_set()
    assert a == b and len(a) == len(ev.QUESTIONS) >= 200
    assert len({q.text for q in a}) == len(a)
    splits = {s: sum(q.split == s for q in a) for s in ("dev", "test")}
    assert min(splits.values()) >= 0.4 * len(a)
    by = {q.topic: q.relevant for q in a}
    assert all(q.topic in q.relevant for q in a)
    assert "compound" in by["for"] and "compound" in by["try"]  # compound repeats them
    assert by["if"] >= {"if", "else"}  # the same page twice
    assert by["lambda"] == {"lambda"}
    from pydoc_data.topics import topics

    assert {q.topic for q in a} <= topics.keys()


def test_the_corpus_is_a_snapshot_unless_the_interpreter_s_is_asked_for():
    from pydoc_data.topics import topics

    snap = ev.corpus_documents()
    assert len(snap) == 79 and {d["id"] for d in snap} == set(topics)
    assert sum(len(d["text"]) for d in snap) == 464_970  # Python 3.11.7's topics
    live = {d["id"]: d["text"] for d in ev.corpus_documents("interpreter")}
    assert live == dict(topics)
    with pytest.raises(InvalidInput, match="corpus"):
        ev.corpus_documents("web")  # type: ignore[arg-type]


def test_rankings_and_scores():
    from strataml.models import Hit

    hits = [Hit(id=f"{t}#0", score=0.5, metadata={"_doc": t}) for t in ("a", "b", "a", "c")]
    assert ev.rank_topics(hits) == ["a", "b", "c"]
    assert ev.chunk_topics(hits) == ["a", "b", "a", "c"]
    q = ev.EvalQuery("x", "c", frozenset({"c"}), "dev")
    m = ev._score([ev.rank_topics(hits)], [q], 5)
    assert m.recall == 1.0 and m.mrr == pytest.approx(1 / 3)
    m2 = ev._score([ev.rank_topics(hits)], [q], 2)
    assert m2.recall == 0.0 and m2.mrr == pytest.approx(1 / 3)


@pytest.fixture(scope="module")
def lsa_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ev.QualityReport]:
    docs = ev.corpus_documents()
    texts = [c.text for d in docs for c in ev.CHUNKER.chunk(d["id"], d["text"])]
    embedder = LSAEmbedder(dim=192).fit(texts)
    store = LanceDBVectorStore(Path(tmp_path_factory.mktemp("eval")) / "v")
    try:
        yield ev.run_quality(store, embedder, backend="local", report_dev=False)
    finally:
        store.close()


def test_the_corpus_is_indexed_by_refresh(lsa_report: ev.QualityReport):
    rep = lsa_report.refresh
    assert rep is not None and rep.added == 79 and rep.written_chunks == lsa_report.chunks
    assert lsa_report.method == "relative" and 0.0 < lsa_report.alpha < 1.0


def test_hybrid_is_at_least_as_good_as_either_leg(lsa_report: ev.QualityReport):
    """On the held-out test split: hybrid recall@5 >= dense and keyword, and a better MRR."""
    dense, keyword, hybrid = (lsa_report.row(m).test.topics for m in ("dense", "keyword", "hybrid"))
    assert hybrid.n >= 100
    assert hybrid.recall >= max(dense.recall, keyword.recall)
    assert hybrid.mrr > max(dense.mrr, keyword.mrr)
    assert min(dense.recall, keyword.recall) > 0.8  # the eval set is answerable


@pytest.mark.xfail(
    strict=True,
    reason="issue 5's bar, not met: with the LSA embedder (a lexical model, like BM25) hybrid "
    "ties keyword on test recall@5 and only wins on MRR; see docs/retrieval-quality.md",
)
def test_hybrid_beats_both_legs_on_recall_at_5_with_lsa(lsa_report: ev.QualityReport):
    dense, keyword, hybrid = (lsa_report.row(m).test.topics for m in ("dense", "keyword", "hybrid"))
    assert hybrid.recall > max(dense.recall, keyword.recall)
