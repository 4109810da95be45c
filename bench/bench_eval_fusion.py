"""Hybrid fusion variants on the retrieval-quality eval, **dev split only**.

The study behind "Trying to close the LSA gap" in ``docs/retrieval-quality.md``: for each dev
question of :mod:`strataml.vectors.evaluate`, the dense and the keyword leg are retrieved once
from the store (``candidate_pool(30)`` candidates each, as the store's own hybrid search does),
then fused client-side by each method below at alpha 0.1 ... 0.9; each method's best alpha
(best recall@5, then MRR) is printed. The test split is never read.

Methods (``alpha`` = weight of the dense leg; a candidate missing from a leg gets that leg's
floor):

* ``minmax``   relative-score fusion, the library default (:mod:`strataml.vectors.fusion`)
* ``zscore``   (s - mean) / std per leg; floor = the leg's lowest z
* ``zcdf``     normal CDF of the z-score per leg
* ``dbsf``     distribution-based: [mean - 3 std, mean + 3 std] -> [0, 1], clipped
* ``tmm``      theoretical min-max: s / max (both legs' scores have 0 as their minimum)
* ``raw``      the contract scores as they are (dense score, bm25 / (1 + bm25)); the other
               methods take the raw BM25 (``keyword_score``), as the library does
* ``qpp``      min-max, with alpha scaled per query by each leg's top-score z
* ``rrf60`` / ``rrf10`` / ``rrf1``  weighted reciprocal-rank fusion with c = 60 / 10 / 1

    python bench/bench_eval_fusion.py [--backends local,pgvector] [--dims 192]
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from strataml.embed import LSAEmbedder
from strataml.models import Hit
from strataml.vectors import evaluate as ev
from strataml.vectors.fusion import candidate_pool
from strataml.vectors.refresh import refresh

ALPHAS = tuple(i / 10 for i in range(1, 10))
Leg = list[tuple[str, float, str]]  # (chunk id, score, topic), best first
Norm = Callable[[list[float]], tuple[list[float], float]]


def _minmax(xs: list[float]) -> tuple[list[float], float]:
    lo, hi = min(xs), max(xs)
    return [1.0 if hi <= lo else (x - lo) / (hi - lo) for x in xs], 0.0


def _zscore(xs: list[float]) -> tuple[list[float], float]:
    mean, std = statistics.fmean(xs), statistics.pstdev(xs) or 1.0
    z = [(x - mean) / std for x in xs]
    return z, min(z)


def _zcdf(xs: list[float]) -> tuple[list[float], float]:
    z, _ = _zscore(xs)
    return [0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z], 0.0


def _dbsf(xs: list[float]) -> tuple[list[float], float]:
    mean, std = statistics.fmean(xs), statistics.pstdev(xs) or 1.0
    lo, hi = mean - 3 * std, mean + 3 * std
    return [min(1.0, max(0.0, (x - lo) / (hi - lo))) for x in xs], 0.0


def _tmm(xs: list[float]) -> tuple[list[float], float]:
    hi = max(xs) or 1.0
    return [x / hi for x in xs], 0.0


def _raw(xs: list[float]) -> tuple[list[float], float]:
    return list(xs), 0.0


NORMS: dict[str, Norm] = {
    "minmax": _minmax,
    "zscore": _zscore,
    "zcdf": _zcdf,
    "dbsf": _dbsf,
    "tmm": _tmm,
    "raw": _raw,
    "qpp": _minmax,
}


def _confidence(xs: list[float]) -> float:
    mean, std = statistics.fmean(xs), statistics.pstdev(xs) or 1.0
    return max(1e-6, (xs[0] - mean) / std)


def fuse(dense: Leg, keyword: Leg, alpha: float, method: str, depth: int) -> list[str]:
    """The fused ranking's topics (one per chunk, ``depth`` chunks)."""
    scores: dict[str, float] = {}
    if method.startswith("rrf"):
        c = int(method[3:])
        for i, (cid, _, _) in enumerate(dense):
            scores[cid] = scores.get(cid, 0.0) + alpha / (c + i + 1)
        for i, (cid, _, _) in enumerate(keyword):
            scores[cid] = scores.get(cid, 0.0) + (1 - alpha) / (c + i + 1)
    else:
        ds, ws = [s for _, s, _ in dense], [s for _, s, _ in keyword]
        if method == "raw":  # the keyword leg's contract score
            ws = [max(0.0, s) / (1 + max(0.0, s)) for s in ws]
        wd, ww = alpha, 1 - alpha
        if method == "qpp" and ds and ws:
            wd, ww = alpha * _confidence(ds), (1 - alpha) * _confidence(ws)
            wd, ww = wd / (wd + ww), ww / (wd + ww)
        norm = NORMS[method]
        dn, dfloor = norm(ds) if ds else ([], 0.0)
        wn, wfloor = norm(ws) if ws else ([], 0.0)
        dmap = {cid: v for (cid, _, _), v in zip(dense, dn, strict=True)}
        wmap = {cid: v for (cid, _, _), v in zip(keyword, wn, strict=True)}
        for cid in {*dmap, *wmap}:
            scores[cid] = wd * dmap.get(cid, dfloor) + ww * wmap.get(cid, wfloor)
    topic = {cid: t for cid, _, t in (*dense, *keyword)}
    ranked = sorted(scores, key=lambda cid: (-scores[cid], cid))[:depth]
    return [topic[cid] for cid in ranked]


def _leg(hits: Sequence[Hit], keyword: bool) -> Leg:
    """Dense: the contract score; keyword: the raw BM25 (``keyword_score``), as fuse_hits."""
    out: Leg = []
    for h in hits:
        raw = h.keyword_score if keyword and h.keyword_score is not None else h.score
        out.append((h.id, float(raw), str(h.metadata.get("_doc", h.id))))
    return out


def legs(store: Any, embedder: LSAEmbedder, dev: list[ev.EvalQuery]) -> list[tuple[Leg, Leg]]:
    refresh(store, "fusion_study", ev.corpus_documents(), embedder, chunker=ev.CHUNKER)
    vectors = embedder.embed([q.text for q in dev])
    pool = candidate_pool(ev.DEPTH)
    out = []
    for i, q in enumerate(dev):
        d = store.search("fusion_study", vectors[i], k=pool, mode="dense")
        w = store.search("fusion_study", text=q.text, k=pool, mode="keyword")
        out.append((_leg(d, False), _leg(w, True)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--backends", default="local", help="local,pgvector")
    ap.add_argument("--dims", default="192", help="LSA dimensions, comma-separated")
    args = ap.parse_args()
    dev = [q for q in ev.build_eval_set() if q.split == "dev"]
    texts = [c.text for d in ev.corpus_documents() for c in ev.CHUNKER.chunk(d["id"], d["text"])]
    stores = {"local": ev._local_store, "pgvector": ev._pg_store}
    methods = [*NORMS, "rrf60", "rrf10", "rrf1"]
    print(f"dev split only: n={len(dev)}; each cell: best alpha, recall@5 / MRR")
    for dim in (int(x) for x in args.dims.split(",")):
        embedder = LSAEmbedder(dim=dim).fit(texts)
        for backend in args.backends.split(","):
            with stores[backend]() as store:
                pairs = legs(store, embedder, dev)
            alone = [
                ev._score([_distinct([t for *_, t in leg[: ev.DEPTH]]) for leg in side], dev, ev.K)
                for side in zip(*pairs, strict=True)
            ]
            dense, kw = alone
            print(
                f"\nLSA-{dim} on {backend}: dense {dense.recall:.3f} / {dense.mrr:.3f}, "
                f"keyword {kw.recall:.3f} / {kw.mrr:.3f}"
            )
            for method in methods:
                grid = {}
                for alpha in ALPHAS:
                    rankings = [_distinct(fuse(d, w, alpha, method, ev.DEPTH)) for d, w in pairs]
                    grid[alpha] = ev._score(rankings, dev, ev.K)
                best = max(grid, key=lambda a: (grid[a].recall, grid[a].mrr, -abs(a - 0.5)))
                m = grid[best]
                print(f"  {method:<7} alpha {best:.1f}: {m.recall:.3f} / {m.mrr:.3f}")


def _distinct(topics: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(topics))


if __name__ == "__main__":
    main()
