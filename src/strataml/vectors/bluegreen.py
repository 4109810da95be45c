"""Blue/green index rebuilds: build a new version beside the live one, validate, swap, roll back.

Readers always search an **alias** (e.g. ``docs``); each index version is a collection named
``<alias>__v<N>`` (N = 1, 2, ...). The flow, through the
:class:`~strataml.protocols.VectorStore` protocol (capability ``aliases``):

1. **Stage** a new version: :func:`stage` refreshes documents into a new, empty
   ``<alias>__v<N>`` (:mod:`strataml.vectors.refresh`); :func:`stage_from_live` copies the live
   version through ``scan`` -- as is (a new metric or index) or re-embedded with a new model.
   More tenants can be added with :func:`~strataml.vectors.refresh.refresh` on the returned
   name. The live alias is not touched.
2. **Validate** it against the live version: :func:`validate` checks count parity (within a
   tolerance) and the recall@k of golden queries (the live version's top-k, or each query's
   known relevant documents, must be found by the staging version) and returns a
   :class:`ValidationReport`.
3. **Promote** it: :func:`promote` takes a *passing* report and repoints the alias atomically
   (``set_alias``: readers see the old version or the new one, never an error). The version it
   replaced stays, pointed at by the alias ``<alias>__previous``.
4. **Roll back** with :func:`rollback` (swaps the alias and ``<alias>__previous``) and
   **clean up** old versions with :func:`cleanup`.

Each version's collection metadata records the alias and the version number
(``bluegreen_alias``, ``bluegreen_version``) next to its embedder. Aliased collections cannot be
dropped (the protocol forbids it), so neither the live nor the previous version ever disappears
under its readers.

Errors: :class:`ValidationFailed` (promoting a failed validation), :class:`~strataml.errors.
Conflict` (a report of another alias or of a staging collection changed since its validation),
:class:`~strataml.errors.NotFound` (a missing alias, staging collection or previous version),
:class:`~strataml.errors.Unsupported` (the store has no aliases). In each case the live alias
keeps pointing where it did.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from strataml._args import as_list
from strataml.embed.base import Embedder, checked, embedder_metadata
from strataml.embed.chunking import Chunker
from strataml.errors import Conflict, InvalidInput, NotFound, Unsupported
from strataml.models import Metric, SearchMode, check_name
from strataml.vectors.batch import check_k
from strataml.vectors.refresh import (
    HASH,
    RESERVED_FIELDS,
    THASH,
    Document,
    RefreshReport,
    _prepare_documents,
    content_hash,
    refresh,
)

if TYPE_CHECKING:
    from strataml.protocols.vectors import VectorStore

__all__ = [
    "GoldenQuery",
    "StagedVersion",
    "ValidationFailed",
    "ValidationReport",
    "cleanup",
    "create_staging",
    "ensure_alias_free",
    "live",
    "previous_alias",
    "promote",
    "rollback",
    "stage",
    "stage_from_live",
    "validate",
    "version_name",
    "versions",
]

ALIAS_KEY: Final = "bluegreen_alias"
VERSION_KEY: Final = "bluegreen_version"
_PREVIOUS: Final = "__previous"


class ValidationFailed(Conflict):
    """A staging version failed validation (or was never validated) and cannot be promoted.
    ``report`` holds the failed :class:`ValidationReport` when there is one."""

    def __init__(self, message: str, report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.report = report


# ------------------------------------------------------------------------------------ naming
def version_name(alias: str, version: int) -> str:
    """The collection of ``alias``'s version ``version``: ``<alias>__v<version>``."""
    return f"{alias}__v{int(version)}"


def previous_alias(alias: str) -> str:
    """The alias that points at the version ``alias`` replaced: ``<alias>__previous``."""
    return f"{alias}{_PREVIOUS}"


def _check_alias(store: VectorStore, alias: str) -> str:
    check_name("alias", alias)
    if len(alias) > 100:
        raise InvalidInput(f"alias {alias!r} is too long for versioned names (at most 100)")
    if not store.capabilities.aliases:
        raise Unsupported(
            "blue/green rebuilds need a vector store with aliases (capability 'aliases')"
        )
    return alias


def versions(store: VectorStore, alias: str) -> dict[int, str]:
    """``alias``'s versions that exist: ``{version: collection name}``, oldest first."""
    pattern = re.compile(rf"^{re.escape(alias)}__v(\d+)$")
    found = {int(m[1]): name for name in store.collections() if (m := pattern.match(name))}
    return dict(sorted(found.items()))


def live(store: VectorStore, alias: str) -> str | None:
    """The collection ``alias`` points at (``None`` if the alias does not exist)."""
    return store.aliases().get(alias)


# ---------------------------------------------------------------------------------- staging
@dataclass(frozen=True)
class StagedVersion:
    """A new version built beside the live one: its ``name`` (``<alias>__v<version>``) and the
    refresh report (or ``None`` for a copy)."""

    alias: str
    version: int
    name: str
    report: RefreshReport | None = None
    copied: int = 0


def create_staging(
    store: VectorStore,
    alias: str,
    embedder: Embedder,
    *,
    metric: Metric = "cosine",
    multi_tenant: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> StagedVersion:
    """Create the next version of ``alias`` as an empty collection ``<alias>__v<N>`` (N one
    above the highest existing version) recording ``embedder`` and the version."""
    _check_alias(store, alias)
    ensure_alias_free(store, alias)
    emb = checked(embedder)
    existing = versions(store, alias)
    n = max(existing, default=0) + 1
    while True:
        name = version_name(alias, n)
        meta = {**(metadata or {}), **embedder_metadata(emb), ALIAS_KEY: alias, VERSION_KEY: n}
        try:
            store.create_collection(name, emb.dim, metric, multi_tenant=multi_tenant, metadata=meta)
        except Conflict:  # taken concurrently: try the next number
            n += 1
            continue
        return StagedVersion(alias=alias, version=n, name=name)


def stage(
    store: VectorStore,
    alias: str,
    documents: Iterable[Document | Mapping[str, Any]],
    embedder: Embedder,
    *,
    chunker: Chunker | None = None,
    metric: Metric = "cosine",
    multi_tenant: bool = False,
    tenant: str | None = None,
    **refresh_options: Any,
) -> StagedVersion:
    """Build a new version of ``alias`` from ``documents`` (:func:`create_staging` then
    :func:`~strataml.vectors.refresh.refresh`; ``refresh_options`` go to refresh). Documents
    are validated before the staging collection is created: bad input creates nothing."""
    docs = list(documents)
    _prepare_documents(docs, {})  # fail before creating anything
    staged = create_staging(store, alias, embedder, metric=metric, multi_tenant=multi_tenant)
    try:
        report = refresh(
            store, staged.name, docs, embedder, chunker=chunker, tenant=tenant, **refresh_options
        )
    except BaseException:
        _discard(store, staged.name)
        raise
    return StagedVersion(alias, staged.version, staged.name, report=report)


def stage_from_live(
    store: VectorStore,
    alias: str,
    *,
    embedder: Embedder | None = None,
    metric: Metric | None = None,
    tenants: Sequence[str] | None = None,
    batch_size: int = 1000,
) -> StagedVersion:
    """Build a new version of ``alias`` from its live version, read with ``scan``.

    Without ``embedder`` the records are copied as they are (vectors included): a rebuild with
    another ``metric`` or a fresh index. With ``embedder`` every record's text is re-embedded
    (records without text raise :class:`InvalidInput`) and refresh's content hashes are
    recomputed for the new model, so later refreshes of the new version stay incremental.
    A multi-tenant live version needs ``tenants`` (the tenants to copy).
    """
    _check_alias(store, alias)
    source = live(store, alias)
    if source is None:
        raise NotFound(f"alias {alias!r} does not exist: nothing to copy from")
    info = store.describe(source)
    if info.multi_tenant and not tenants:
        raise InvalidInput(f"{source!r} is multi-tenant: pass the tenants to copy")
    if not info.multi_tenant and tenants:
        raise InvalidInput(f"{source!r} is not multi-tenant: do not pass tenants")
    if embedder is None:
        emb: Any = _RecordedEmbedder(info.metadata, info.dim)
    else:
        emb = checked(embedder)
    extra = {k: v for k, v in info.metadata.items() if k not in (ALIAS_KEY, VERSION_KEY)}
    staged = create_staging(
        store,
        alias,
        emb,
        metric=metric or info.metric,
        multi_tenant=info.multi_tenant,
        metadata=extra,
    )
    copied = 0
    try:
        todo: list[str | None] = list(tenants) if tenants else [None]
        for tenant in todo:
            for batch in store.scan(
                source, tenant=tenant, include_vectors=embedder is None, batch_size=batch_size
            ):
                copied += store.upsert(staged.name, _copy_batch(batch, emb, embedder, tenant))
    except BaseException:
        _discard(store, staged.name)
        raise
    return StagedVersion(alias, staged.version, staged.name, copied=copied)


def _discard(store: VectorStore, name: str) -> None:
    """Drop a half-built staging collection; the original error is what matters."""
    with contextlib.suppress(Exception):
        store.drop_collection(name)


class _RecordedEmbedder:
    """The embedder identity a collection records (for copies that keep the vectors)."""

    def __init__(self, metadata: Mapping[str, Any], dim: int) -> None:
        self.name = str(metadata.get("embedder", "unknown"))
        self.version = str(metadata.get("embedder_version", "unknown"))
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> Any:
        raise Unsupported("a copied version keeps its vectors; pass an embedder to re-embed")


def _copy_batch(
    batch: Sequence[Any], emb: Any, embedder: Embedder | None, tenant: str | None
) -> list[dict[str, Any]]:
    if embedder is None:
        return [
            {
                "id": r.id,
                "vector": r.vector,
                "text": r.text,
                "metadata": r.metadata,
                **({"tenant": tenant} if tenant is not None else {}),
            }
            for r in batch
        ]
    missing = [r.id for r in batch if not r.text]
    if missing:
        raise InvalidInput(f"records {missing[:3]} have no text to re-embed")
    matrix = emb.embed([r.text for r in batch])
    out = []
    for r, vec in zip(batch, matrix, strict=True):
        meta = dict(r.metadata)
        if isinstance(meta.get(THASH), str) and HASH in meta:
            user = {k: v for k, v in meta.items() if k not in RESERVED_FIELDS}
            meta[HASH] = content_hash(meta[THASH], user, emb)
        rec: dict[str, Any] = {"id": r.id, "vector": vec, "text": r.text, "metadata": meta}
        if tenant is not None:
            rec["tenant"] = tenant
        out.append(rec)
    return out


# ------------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class GoldenQuery:
    """A query the new version must answer as well as the live one.

    ``text`` is embedded with each version's embedder (and used for keyword/hybrid modes);
    ``relevant`` optionally lists the documents (refresh ``_doc`` ids, or record ids for
    records without ``_doc``) a right answer contains -- then recall is measured against them
    on both versions; otherwise against the live version's top-k.
    """

    text: str
    relevant: tuple[str, ...] = ()
    tenant: str | None = None
    filter: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of :func:`validate`; pass it to :func:`promote`."""

    alias: str
    staging: str
    live: str | None
    staging_count: int
    live_count: int | None
    count_ok: bool
    recall: float | None
    live_recall: float | None
    recall_ok: bool
    passed: bool
    reasons: tuple[str, ...] = ()
    per_query: tuple[float, ...] = field(default=(), repr=False)
    seconds: float = 0.0


def _key(hit: Any) -> str:
    doc = hit.metadata.get("_doc")
    return doc if isinstance(doc, str) else str(hit.id)


def _top_docs(
    store: VectorStore,
    name: str,
    q: GoldenQuery,
    vector: Any,
    k: int,
    mode: SearchMode,
    alpha: float,
) -> list[str]:
    hits = store.search(
        name,
        None if mode == "keyword" else vector,
        k=k * 4,
        text=None if mode == "dense" else q.text,
        mode=mode,
        filter=q.filter,
        tenant=q.tenant,
        alpha=alpha,
    )
    out: list[str] = []
    for h in hits:
        key = _key(h)
        if key not in out:
            out.append(key)
        if len(out) == k:
            break
    return out


def validate(
    store: VectorStore,
    alias: str,
    staged: StagedVersion | str,
    *,
    golden: Sequence[GoldenQuery] = (),
    embedder: Embedder | None = None,
    live_embedder: Embedder | None = None,
    k: int = 10,
    mode: SearchMode = "dense",
    alpha: float = 0.5,
    min_recall: float = 0.9,
    count_tolerance: float = 0.0,
    expected_count: int | None = None,
) -> ValidationReport:
    """Check a staging version against the live one; never raises for a failed check (the
    report says why), only for bad arguments or missing collections.

    * **count parity**: ``|staging - live| <= count_tolerance * live`` (``expected_count``
      replaces the live count, e.g. for a first version). Counts span all tenants.
    * **recall@k** over ``golden`` queries, measured on documents (chunks of one document count
      once): for a query with ``relevant`` documents, the share of them in the staging version's
      top ``k``, which must be ``>= min_recall`` *and* at least the live version's recall on
      the same query set; without ``relevant``, the share of the live version's top ``k``
      found in the staging top ``k`` (``>= min_recall``). ``embedder`` embeds queries for the
      staging version, ``live_embedder`` (default: ``embedder``) for the live one.

    A first version (no live alias) passes count parity only against ``expected_count`` and
    recall only with ``relevant`` documents.
    """
    t0 = time.perf_counter()
    _check_alias(store, alias)
    k = check_k(k)
    golden = _check_golden(golden)
    if not _is_number(min_recall) or not 0.0 <= min_recall <= 1.0:
        raise InvalidInput(f"min_recall must be a number in [0, 1], got {min_recall!r}")
    if not _is_number(count_tolerance) or not count_tolerance >= 0:
        raise InvalidInput(f"count_tolerance must be a number >= 0, got {count_tolerance!r}")
    if expected_count is not None and (
        isinstance(expected_count, bool)
        or not isinstance(expected_count, int)
        or expected_count < 0
    ):
        raise InvalidInput(f"expected_count must be an integer >= 0, got {expected_count!r}")
    name = staged.name if isinstance(staged, StagedVersion) else staged
    staging_info = store.describe(name)
    if staging_info.name != name:
        raise InvalidInput(f"{name!r} is an alias, not a staging collection")
    current = live(store, alias)
    if golden and mode != "keyword" and embedder is None:
        raise InvalidInput("validating golden queries needs the staging version's embedder")
    reasons: list[str] = []
    if current == name:
        reasons.append(f"{name!r} is already the live version")
    live_count = store.describe(current).count if current is not None else None
    reference = expected_count if expected_count is not None else live_count
    count_ok = True
    if reference is not None:
        allowed = count_tolerance * reference
        count_ok = abs(staging_info.count - reference) <= allowed
        if not count_ok:
            reasons.append(
                f"count parity: staging has {staging_info.count} records, expected "
                f"{reference} (tolerance {count_tolerance:.1%})"
            )
    recall = live_recall = None
    per_query: list[float] = []
    if golden:
        texts = [q.text for q in golden]
        s_emb = checked(embedder) if embedder is not None else None
        l_emb = checked(live_embedder) if live_embedder is not None else s_emb
        s_vecs: Any = s_emb.embed(texts) if s_emb is not None else [None] * len(texts)
        l_vecs: Any = l_emb.embed(texts) if l_emb is not None else [None] * len(texts)
        live_scores: list[float] = []
        for i, q in enumerate(golden):
            got = _top_docs(store, name, q, s_vecs[i], k, mode, alpha)
            if q.relevant:
                want = set(q.relevant)
                per_query.append(len(want & set(got)) / len(want))
                if current is not None:
                    ref = _top_docs(store, current, q, l_vecs[i], k, mode, alpha)
                    live_scores.append(len(want & set(ref)) / len(want))
            elif current is not None:
                ref = _top_docs(store, current, q, l_vecs[i], k, mode, alpha)
                per_query.append(len(set(ref) & set(got)) / len(ref) if ref else 1.0)
        if per_query:
            recall = float(np.mean(per_query))
        if live_scores:
            live_recall = float(np.mean(live_scores))
    recall_ok = True
    if recall is not None:
        if recall < min_recall:
            recall_ok = False
            reasons.append(f"recall@{k} {recall:.3f} < {min_recall:.3f}")
        if live_recall is not None and recall < live_recall:
            recall_ok = False
            reasons.append(f"recall@{k} {recall:.3f} below the live version's {live_recall:.3f}")
    elif golden:
        reasons.append("no live version and no relevant documents: recall not measured")
    return ValidationReport(
        alias=alias,
        staging=name,
        live=current,
        staging_count=staging_info.count,
        live_count=live_count,
        count_ok=count_ok,
        recall=recall,
        live_recall=live_recall,
        recall_ok=recall_ok,
        passed=count_ok and recall_ok and current != name,
        reasons=tuple(reasons),
        per_query=tuple(per_query),
        seconds=time.perf_counter() - t0,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_golden(golden: Any) -> tuple[GoldenQuery, ...]:
    """``golden`` as a tuple of :class:`GoldenQuery` whose ``relevant`` are document ids."""
    queries = tuple(as_list(golden, "golden", "GoldenQuery", kind=GoldenQuery))
    for i, q in enumerate(queries):
        if not isinstance(q.relevant, tuple | list | set | frozenset) or not all(
            isinstance(d, str) and d for d in q.relevant
        ):
            raise InvalidInput(
                f"golden[{i}].relevant must be a tuple of document ids (non-empty strings), "
                f"got {q.relevant!r}"
            )
    return queries


# ------------------------------------------------------------------------------ promotion
def promote(store: VectorStore, report: ValidationReport) -> str | None:
    """Point ``report.alias`` at the validated staging version, atomically; return the
    collection it pointed at before (now ``<alias>__previous``), or ``None``.

    Raises :class:`ValidationFailed` if the report did not pass, :class:`Conflict` if the
    alias was repointed or the staging version's count changed since validation,
    :class:`NotFound` if the staging collection is gone. The alias is unchanged on error.
    """
    if not isinstance(report, ValidationReport):
        raise ValidationFailed(
            "promote() needs the ValidationReport of validate(): an unvalidated version "
            "cannot be promoted"
        )
    alias = _check_alias(store, report.alias)
    if not report.passed:
        raise ValidationFailed(
            f"staging {report.staging!r} failed validation: {'; '.join(report.reasons)}",
            report,
        )
    info = store.describe(report.staging)
    if info.name != report.staging:
        raise Conflict(f"{report.staging!r} is now an alias; validate the collection again")
    if info.count != report.staging_count:
        raise Conflict(
            f"staging {report.staging!r} changed since validation ({report.staging_count} -> "
            f"{info.count} records); validate it again"
        )
    current = live(store, alias)
    if current != report.live:
        raise Conflict(
            f"alias {alias!r} now points at {current!r}, not {report.live!r} as when validated; "
            "validate again"
        )
    if current is not None:
        store.set_alias(previous_alias(alias), current)
    store.set_alias(alias, report.staging)
    return current


def rollback(store: VectorStore, alias: str) -> str:
    """Point ``alias`` back at the version it replaced (``<alias>__previous``), atomically;
    the rolled-back version becomes ``<alias>__previous`` (a second rollback undoes the
    first). Returns the collection now live. :class:`NotFound` if ``alias`` or a previous
    version does not exist (nothing changes)."""
    _check_alias(store, alias)
    names = store.aliases()
    if alias not in names:
        raise NotFound(f"alias {alias!r} does not exist")
    prev = names.get(previous_alias(alias))
    if prev is None:
        raise NotFound(f"alias {alias!r} has no previous version to roll back to")
    store.describe(prev)  # still there (aliased collections cannot be dropped)
    current = names[alias]
    store.set_alias(alias, prev)
    store.set_alias(previous_alias(alias), current)
    return prev


def cleanup(store: VectorStore, alias: str, *, keep: int = 2, staging: bool = False) -> list[str]:
    """Drop old versions of ``alias``; return the dropped collections.

    Kept: the live version, the previous one (``<alias>__previous``) and the newest other
    versions older than the live one, up to ``keep`` versions in all. Versions newer than the
    live one (staged, not promoted) are kept unless ``staging=True``. Without a live alias the
    newest ``keep`` versions are kept. A version some other alias points at is never dropped.
    """
    _check_alias(store, alias)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise InvalidInput(f"keep must be an integer >= 1, got {keep!r}")
    names = store.aliases()
    current = names.get(alias)
    found = versions(store, alias)
    protected = {n for n in (current, names.get(previous_alias(alias))) if n is not None}
    live_v = next((v for v, n in found.items() if n == current), None)
    newer = {n for v, n in found.items() if live_v is not None and v > live_v}
    older = [n for _, n in sorted(found.items(), reverse=True) if n not in protected | newer]
    kept = protected | set(older[: max(0, keep - len(protected))])
    if not staging:
        kept |= newer
    aliased = set(names.values())
    dropped = []
    for name in found.values():
        if name not in kept and name not in aliased:
            store.drop_collection(name)
            dropped.append(name)
    return dropped


def ensure_alias_free(store: VectorStore, alias: str) -> None:
    """Raise :class:`Conflict` if ``alias`` is the name of a collection (aliases and
    collections share one namespace: drop or rename the collection first)."""
    if alias in store.collections():
        raise Conflict(
            f"{alias!r} is a collection; blue/green serves it through an alias of that name: "
            "copy it into a version (create_staging + upsert) and drop it first"
        )
