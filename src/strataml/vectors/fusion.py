"""Hybrid search by fusing a dense and a keyword result list, for adapters without a native
hybrid whose scores follow the contract.

Both legs are run separately with the same filter and tenant (each retrieving
:func:`candidate_pool` candidates), then fused here. ``alpha`` is the weight of the dense side:
``1.0`` = dense only, ``0.0`` = keyword only.

Methods
-------
``"rrf"`` -- weighted reciprocal-rank fusion::

    fused = (alpha / (c + rank_dense) + (1 - alpha) / (c + rank_keyword)) * (c + 1)

with 1-based ranks, ``c = 60`` and a missing rank contributing 0. Multiplying by ``c + 1`` maps
the best possible value (first in both lists) to 1.0, so scores are in ``[0, 1]``. Only ranks
matter: robust to how either engine scales its scores.

``"relative"`` -- relative-score fusion (min-max normalised scores)::

    fused = alpha * norm(dense score) + (1 - alpha) * norm(bm25)

where ``norm`` maps each list's scores linearly onto ``[0, 1]`` (min -> 0, max -> 1; a list whose
scores are all equal maps to 1.0) and a candidate missing from a list gets 0 for it. Dense
scores are the contract similarities of :class:`~strataml.models.Hit`. Scores are in ``[0, 1]``.

Common rules
------------
* A candidate is kept only if a side with positive weight retrieved it: with ``alpha=1.0`` the
  result is exactly the dense ranking, with ``alpha=0.0`` exactly the keyword ranking.
* Ties on the fused score are broken by the rank on the heavier side, then the other side's
  rank, then by id, so results are deterministic.
* Fused hits keep ``distance``/``metric`` from the dense leg and ``keyword_score`` (raw BM25)
  from the keyword leg where the candidate appeared there.

:data:`DEFAULT_FUSION` is the method adapters use; it was chosen by measurement (see its
comment and ``bench/bench_vectors.py``, hybrid section).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from strataml.errors import InvalidInput
from strataml.models import Hit

__all__ = [
    "DEFAULT_FUSION",
    "RRF_C",
    "FusedItem",
    "FusionMethod",
    "candidate_pool",
    "fuse",
    "fuse_hits",
    "relative_score_fusion",
    "rrf_fusion",
]

FusionMethod = Literal["rrf", "relative"]

#: The fusion adapters use by default: relative-score fusion, chosen by measurement. On the
#: synthetic hybrid task of ``bench/bench_vectors.py`` (relevant = the query's cluster; a noisy
#: query vector and a noisy keyword signal), precision@10 at alpha=0.5 over 100k documents was
#: relative 0.820, rrf 0.711 (dense alone 0.531, keyword alone 0.787); at 20k: 0.779 vs 0.752.
#: RRF ignores how far apart the scores are, which throws away the information that one leg is
#: confident; it remains available as ``method="rrf"``.
DEFAULT_FUSION: Final[FusionMethod] = "relative"
#: The rank offset of reciprocal-rank fusion (the value of the original RRF paper).
RRF_C: Final = 60


def candidate_pool(k: int) -> int:
    """How many candidates each leg retrieves for a hybrid search returning ``k`` hits."""
    return max(2 * k, k + 20)


@dataclass(frozen=True, slots=True)
class FusedItem:
    """One fused candidate: its key, fused score in ``[0, 1]`` and 1-based ranks per leg."""

    key: Hashable
    score: float
    dense_rank: int | None
    keyword_rank: int | None


def _ranks(keys: Sequence[Hashable]) -> dict[Hashable, int]:
    out: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, i + 1)
    return out


def _finish(
    scores: dict[Hashable, float],
    dense: dict[Hashable, int],
    keyword: dict[Hashable, int],
    alpha: float,
    limit: int | None,
) -> list[FusedItem]:
    far = 1 << 62

    def keep(key: Hashable) -> bool:
        return (alpha > 0.0 and key in dense) or (alpha < 1.0 and key in keyword)

    def order(key: Hashable) -> tuple[float, int, int, str]:
        d, w = dense.get(key, far), keyword.get(key, far)
        first, second = (d, w) if alpha >= 0.5 else (w, d)
        return (-scores[key], first, second, repr(key))

    ranked = sorted((key for key in scores if keep(key)), key=order)
    if limit is not None:
        ranked = ranked[:limit]
    return [
        FusedItem(key, min(1.0, max(0.0, scores[key])), dense.get(key), keyword.get(key))
        for key in ranked
    ]


def _check_alpha(alpha: float) -> float:
    value = float(alpha)
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(f"alpha must be in [0, 1], got {alpha!r}")
    return value


def rrf_fusion(
    dense: Sequence[Hashable],
    keyword: Sequence[Hashable],
    alpha: float,
    *,
    limit: int | None = None,
    c: int = RRF_C,
) -> list[FusedItem]:
    """Weighted reciprocal-rank fusion of two ranked key lists (best first)."""
    alpha = _check_alpha(alpha)
    d, w = _ranks(dense), _ranks(keyword)
    scores: dict[Hashable, float] = {}
    for key in (*d, *w):
        s = 0.0
        if key in d:
            s += alpha / (c + d[key])
        if key in w:
            s += (1.0 - alpha) / (c + w[key])
        scores[key] = s * (c + 1)
    return _finish(scores, d, w, alpha, limit)


def _minmax(items: Sequence[tuple[Hashable, float]]) -> dict[Hashable, float]:
    out: dict[Hashable, float] = {}
    if not items:
        return out
    values = [s for _, s in items]
    lo, hi = min(values), max(values)
    for key, s in items:
        if key not in out:
            out[key] = 1.0 if hi <= lo else (s - lo) / (hi - lo)
    return out


def relative_score_fusion(
    dense: Sequence[tuple[Hashable, float]],
    keyword: Sequence[tuple[Hashable, float]],
    alpha: float,
    *,
    limit: int | None = None,
) -> list[FusedItem]:
    """Relative-score fusion of two ranked ``(key, score)`` lists (best first, higher better)."""
    alpha = _check_alpha(alpha)
    dn, wn = _minmax(dense), _minmax(keyword)
    d, w = _ranks([k for k, _ in dense]), _ranks([k for k, _ in keyword])
    scores = {
        key: alpha * dn.get(key, 0.0) + (1.0 - alpha) * wn.get(key, 0.0) for key in (*dn, *wn)
    }
    return _finish(scores, d, w, alpha, limit)


def fuse(
    dense: Sequence[tuple[Hashable, float]],
    keyword: Sequence[tuple[Hashable, float]],
    alpha: float,
    *,
    limit: int | None = None,
    method: FusionMethod = DEFAULT_FUSION,
) -> list[FusedItem]:
    """Fuse ``(key, score)`` lists with ``method`` (``"rrf"`` ignores the scores)."""
    if method == "rrf":
        return rrf_fusion([k for k, _ in dense], [k for k, _ in keyword], alpha, limit=limit)
    if method == "relative":
        return relative_score_fusion(dense, keyword, alpha, limit=limit)
    raise InvalidInput(f"unknown fusion method {method!r}; use 'rrf' or 'relative'")


def fuse_hits(
    dense: Sequence[Hit],
    keyword: Sequence[Hit],
    alpha: float,
    k: int,
    *,
    method: FusionMethod = DEFAULT_FUSION,
) -> list[Hit]:
    """Fuse a dense and a keyword leg of :class:`Hit` objects into at most ``k`` hybrid hits.

    Hits are matched by ``(tenant, id)``. The keyword leg's ``score`` is ignored in favour of the
    raw BM25 in ``keyword_score`` (falling back to ``score``).
    """
    by_key: dict[Hashable, tuple[Hit | None, Hit | None]] = {}
    for h in dense:
        by_key.setdefault((h.tenant, h.id), (h, None))
    for h in keyword:
        key = (h.tenant, h.id)
        prior = by_key.get(key, (None, None))
        if prior[1] is None:
            by_key[key] = (prior[0], h)
    dense_scores = [((h.tenant, h.id), h.score) for h in dense]
    keyword_scores = [
        ((h.tenant, h.id), h.keyword_score if h.keyword_score is not None else h.score)
        for h in keyword
    ]
    fused = fuse(dense_scores, keyword_scores, alpha, limit=k, method=method)
    out: list[Hit] = []
    for item in fused:
        d, w = by_key[item.key]
        base = d if d is not None else w
        assert base is not None
        out.append(
            base.model_copy(
                update={
                    "score": item.score,
                    "distance": d.distance if d is not None else None,
                    "metric": d.metric if d is not None else None,
                    "keyword_score": w.keyword_score if w is not None else None,
                    "vector": d.vector if d is not None else base.vector,
                }
            )
        )
    return out
