"""Blue/green rebuilds (strataml.vectors.bluegreen) on real stores with a real embedder."""

from __future__ import annotations

from typing import Any

import pytest

from strataml.capabilities import Capabilities
from strataml.embed import Chunker, LSAEmbedder
from strataml.errors import Conflict, InvalidInput, NotFound, Unsupported
from strataml.vectors import bluegreen as bg
from strataml.vectors.refresh import refresh

SMALL = Chunker(size=120, overlap=20)


def docs_of(helpers: Any, n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"d{i}", "text": helpers.text(i, 50)} for i in range(start, start + n)]


def golden(helpers: Any, n: int = 6) -> list[bg.GoldenQuery]:
    return [bg.GoldenQuery(helpers.text(i, 50)[:80]) for i in range(n)]


def serve(store: Any, alias: str, lsa: Any, helpers: Any) -> list[str]:
    """What readers of the alias get for a fixed query."""
    hits = store.search(alias, lsa.embed([helpers.text(3, 20)])[0], k=5)
    return [h.id for h in hits]


def live_v1(store: Any, lsa: Any, helpers: Any, n: int = 12) -> bg.StagedVersion:
    staged = bg.stage(store, "docs", docs_of(helpers, n), lsa, chunker=SMALL)
    report = bg.validate(store, "docs", staged, expected_count=store.count(staged.name))
    bg.promote(store, report)
    return staged


def test_stage_validate_promote_rollback_cleanup(store: Any, lsa: Any, helpers: Any):
    v1 = live_v1(store, lsa, helpers)
    assert v1.name == "docs__v1" and bg.live(store, "docs") == "docs__v1"
    assert store.describe("docs").name == "docs__v1"
    meta = store.describe("docs__v1").metadata
    assert meta["bluegreen_alias"] == "docs" and meta["bluegreen_version"] == 1
    assert meta["embedder_version"] == lsa.version

    v2 = bg.stage(store, "docs", docs_of(helpers, 12), lsa, chunker=SMALL)
    assert v2.name == "docs__v2" and bg.live(store, "docs") == "docs__v1"  # live untouched
    report = bg.validate(store, "docs", v2, golden=golden(helpers), embedder=lsa)
    assert report.passed and report.count_ok and report.recall == pytest.approx(1.0)
    assert report.live == "docs__v1"
    assert bg.promote(store, report) == "docs__v1"
    assert bg.live(store, "docs") == "docs__v2"
    assert store.aliases()[bg.previous_alias("docs")] == "docs__v1"
    served = serve(store, "docs", lsa, helpers)
    assert served

    assert bg.rollback(store, "docs") == "docs__v1"
    assert bg.live(store, "docs") == "docs__v1"
    assert bg.rollback(store, "docs") == "docs__v2"  # a second rollback undoes the first
    assert serve(store, "docs", lsa, helpers) == served

    v3 = bg.stage(store, "docs", docs_of(helpers, 12), lsa, chunker=SMALL)
    bg.promote(store, bg.validate(store, "docs", v3, golden=golden(helpers), embedder=lsa))
    v4 = bg.create_staging(store, "docs", lsa)  # staged, not promoted
    assert bg.cleanup(store, "docs", keep=2) == ["docs__v1"]
    assert set(bg.versions(store, "docs").values()) == {"docs__v2", "docs__v3", v4.name}
    assert bg.cleanup(store, "docs", keep=2, staging=True) == [v4.name]
    assert bg.cleanup(store, "docs", keep=1) == []  # live and previous are always kept


def test_a_failed_validation_cannot_be_promoted_and_live_keeps_serving(
    store: Any, lsa: Any, helpers: Any
):
    live_v1(store, lsa, helpers)
    served = serve(store, "docs", lsa, helpers)
    short = bg.stage(store, "docs", docs_of(helpers, 4), lsa, chunker=SMALL)
    report = bg.validate(store, "docs", short, golden=golden(helpers), embedder=lsa)
    assert not report.passed and not report.count_ok
    assert any("count parity" in r for r in report.reasons)
    with pytest.raises(bg.ValidationFailed, match="count parity") as info:
        bg.promote(store, report)
    assert info.value.report is report and isinstance(info.value, Conflict)
    assert bg.live(store, "docs") == "docs__v1"
    assert serve(store, "docs", lsa, helpers) == served


def test_recall_against_the_live_version_is_checked(store: Any, lsa: Any, helpers: Any):
    live_v1(store, lsa, helpers)
    # same count, other documents: the live top-k is not found any more
    other = bg.stage(store, "docs", docs_of(helpers, 12, start=100), lsa, chunker=SMALL)
    report = bg.validate(
        store,
        "docs",
        other,
        golden=golden(helpers),
        embedder=lsa,
        count_tolerance=1.0,
        min_recall=0.9,
    )
    assert report.count_ok and not report.recall_ok and not report.passed
    assert report.recall is not None and report.recall < 0.9
    with pytest.raises(bg.ValidationFailed, match="recall"):
        bg.promote(store, report)
    assert bg.live(store, "docs") == "docs__v1"


def test_relevant_documents_compare_both_versions(store: Any, lsa: Any, helpers: Any):
    live_v1(store, lsa, helpers)
    queries = [bg.GoldenQuery(helpers.text(i, 50)[:80], relevant=(f"d{i}",)) for i in range(5)]
    v2 = bg.stage(store, "docs", docs_of(helpers, 12), lsa, chunker=SMALL)
    report = bg.validate(store, "docs", v2, golden=queries, embedder=lsa, k=3)
    assert report.recall == report.live_recall and report.passed


def test_promote_checks_the_report_is_still_current(store: Any, lsa: Any, helpers: Any):
    live_v1(store, lsa, helpers)
    v2 = bg.stage(store, "docs", docs_of(helpers, 12), lsa, chunker=SMALL)
    report = bg.validate(store, "docs", v2)
    assert report.passed
    with pytest.raises(bg.ValidationFailed, match="unvalidated"):
        bg.promote(store, v2)  # type: ignore[arg-type]
    refresh(store, v2.name, docs_of(helpers, 13), lsa, chunker=SMALL)  # staging changed
    with pytest.raises(Conflict, match="changed since validation"):
        bg.promote(store, report)
    assert bg.live(store, "docs") == "docs__v1"
    report = bg.validate(store, "docs", v2, count_tolerance=0.5)
    v3 = bg.stage(store, "docs", docs_of(helpers, 12), lsa, chunker=SMALL)
    bg.promote(store, bg.validate(store, "docs", v3))
    with pytest.raises(Conflict, match="now points at"):
        bg.promote(store, report)  # validated against v1, but v3 is live now
    assert bg.live(store, "docs") == "docs__v3"
    store.drop_alias(bg.previous_alias("docs"))
    store.drop_collection("docs__v1")
    gone = bg.ValidationReport(
        alias="docs",
        staging="docs__v1",
        live="docs__v3",
        staging_count=1,
        live_count=1,
        count_ok=True,
        recall=None,
        live_recall=None,
        recall_ok=True,
        passed=True,
    )
    with pytest.raises(NotFound):
        bg.promote(store, gone)


def test_missing_alias_and_previous_version_are_not_found(store: Any, lsa: Any, helpers: Any):
    with pytest.raises(NotFound):
        bg.rollback(store, "nowhere")
    with pytest.raises(NotFound):
        bg.stage_from_live(store, "nowhere")
    live_v1(store, lsa, helpers)
    with pytest.raises(NotFound, match="no previous version"):
        bg.rollback(store, "docs")
    assert bg.live(store, "docs") == "docs__v1"
    with pytest.raises(NotFound):
        bg.validate(store, "docs", "docs__v9")


def test_an_alias_named_like_a_collection_is_refused(store: Any, lsa: Any):
    store.create_collection("taken", lsa.dim)
    with pytest.raises(Conflict):
        bg.create_staging(store, "taken", lsa)
    assert bg.versions(store, "taken") == {}


def test_bad_documents_create_no_staging(store: Any, lsa: Any, helpers: Any):
    with pytest.raises(InvalidInput):
        bg.stage(store, "docs", [{"id": "a"}], lsa)
    assert bg.versions(store, "docs") == {}


def test_copy_from_live_keeps_vectors_or_re_embeds(store: Any, lsa: Any, lsa8: Any, helpers: Any):
    live_v1(store, lsa, helpers)
    copy = bg.stage_from_live(store, "docs")
    assert copy.copied == store.count("docs")
    a = {r.id: r for r in store.get("docs__v1", ["d1#0"])}
    b = {r.id: r for r in store.get(copy.name, ["d1#0"])}
    assert a["d1#0"].metadata == b["d1#0"].metadata
    assert a["d1#0"].vector == pytest.approx(b["d1#0"].vector, abs=1e-6)
    report = bg.validate(store, "docs", copy, golden=golden(helpers), embedder=lsa)
    assert report.passed and report.recall == pytest.approx(1.0)

    # a new model: re-embedded, hashes recomputed so refresh stays incremental on it
    new = bg.stage_from_live(store, "docs", embedder=lsa8)
    info = store.describe(new.name)
    assert info.dim == lsa8.dim and info.metadata["embedder_version"] == lsa8.version
    rep = refresh(store, new.name, docs_of(helpers, 12), lsa8, chunker=SMALL)
    assert rep.unchanged == 12 and not rep.changed
    queries = [bg.GoldenQuery(helpers.text(i, 50)[:80], relevant=(f"d{i}",)) for i in range(4)]
    check = bg.validate(
        store, "docs", new, golden=queries, embedder=lsa8, live_embedder=lsa, min_recall=0.5
    )
    assert check.count_ok and check.recall is not None


def test_multi_tenant_versions(store: Any, lsa: Any, helpers: Any):
    staged = bg.stage(
        store, "mt", docs_of(helpers, 3), lsa, chunker=SMALL, multi_tenant=True, tenant="acme"
    )
    refresh(store, staged.name, docs_of(helpers, 2, start=5), lsa, chunker=SMALL, tenant="beta")
    bg.promote(
        store, bg.validate(store, "mt", staged, expected_count=store.describe(staged.name).count)
    )
    with pytest.raises(InvalidInput):
        bg.stage_from_live(store, "mt")
    copy = bg.stage_from_live(store, "mt", tenants=["acme", "beta"])
    assert copy.copied == store.describe(staged.name).count
    assert store.count(copy.name, tenant="beta") == store.count("mt", tenant="beta")


def test_stores_without_aliases_are_refused(lance: Any, lsa: Any):
    class NoAliases:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        @property
        def capabilities(self) -> Capabilities:
            return Capabilities(**{**self.inner.capabilities.model_dump(), "aliases": False})

    with pytest.raises(Unsupported, match="aliases"):
        bg.create_staging(NoAliases(lance), "docs", lsa)
    with pytest.raises(InvalidInput):
        bg.cleanup(lance, "docs", keep=0)
    with pytest.raises(InvalidInput):
        bg.create_staging(lance, "bad alias!", lsa)


def test_lsa_model_versions_differ(helpers: Any):
    a = LSAEmbedder(dim=8).fit([helpers.text(i, 20) for i in range(40)])
    b = LSAEmbedder(dim=8).fit([helpers.text(i, 20) for i in range(41)])
    assert a.version != b.version
