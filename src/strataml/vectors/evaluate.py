"""Retrieval quality on real text, offline: dense vs keyword vs hybrid.

The corpus is Python's own reference documentation as shipped with the interpreter
(:mod:`pydoc_data.topics`: 79 topics, about 465k characters). Its text changes between
Python releases, patch releases included, so the evaluation reads a snapshot of Python
3.11.7's (``data/pydoc_topics.json.gz``, :data:`CORPUS_PYTHON`) and gives the same result on
every interpreter; ``corpus="interpreter"`` (``--corpus interpreter``) reads the running
interpreter's instead. The evaluation set is
:data:`QUESTIONS`: natural-language questions written by hand, each mapped to the topic that
answers it. Some topics repeat others' text (``compound`` holds every compound statement,
``specialnames`` every special method, ``if`` and ``else`` are the same page), so a question's
**relevant topics** are its topic plus every topic holding at least half of its paragraphs --
computed from the corpus (:func:`relevant_topics`), never from search results.

Protocol
--------
* The topics are chunked (1000 characters, 150 overlap) and indexed with
  :func:`~strataml.vectors.refresh.refresh` into a collection of the store under test.
* Each question is searched in each mode (``dense``: the embedded question; ``keyword``: BM25
  over the chunk texts; ``hybrid``: both, fused by the store with ``alpha``); the chunk hits
  (``depth`` of them) are reduced to a ranking of distinct topics.
* **recall@5**: share of questions with a relevant topic among the first 5 topics;
  **MRR**: mean of 1/rank of the first relevant topic (0 when none is retrieved).
* The questions are split deterministically (sha256 of the text) into a **dev** half, on which
  ``alpha`` and the fusion method are tuned, and a **test** half, on which results are
  reported. Run ``python -m strataml.vectors.evaluate`` to reproduce the table in
  ``docs/retrieval-quality.md``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from strataml.embed.base import Embedder, checked
from strataml.embed.chunking import Chunker
from strataml.errors import InvalidInput
from strataml.models import Hit, SearchMode
from strataml.vectors.fusion import DEFAULT_FUSION, FusionMethod, candidate_pool, fuse_hits
from strataml.vectors.refresh import RefreshReport, refresh

if TYPE_CHECKING:
    from strataml.protocols.vectors import VectorStore

__all__ = [
    "ALPHAS",
    "CHUNKER",
    "CORPUS_PYTHON",
    "QUESTIONS",
    "Corpus",
    "EvalQuery",
    "Metrics",
    "ModeMetrics",
    "ModeResult",
    "QualityReport",
    "build_eval_set",
    "chunk_topics",
    "corpus_documents",
    "evaluate_modes",
    "rank_topics",
    "relevant_topics",
    "run_quality",
    "tune",
]

#: Where the topics come from: the shipped snapshot, or the running interpreter's pydoc_data.
Corpus = Literal["snapshot", "interpreter"]
#: The Python release whose ``pydoc_data.topics`` the snapshot holds.
CORPUS_PYTHON: Final = "3.11.7"
_SNAPSHOT: Final = Path(__file__).parent / "data" / "pydoc_topics.json.gz"
#: How the corpus is cut (the demo's chunking).
CHUNKER: Final = Chunker(size=1000, overlap=150)
#: The alphas tried on the dev split.
ALPHAS: Final = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
K: Final = 5
DEPTH: Final = 30

#: (question, topic that answers it). Written by hand from general Python knowledge; every
#: label was checked against the topic's text, none against search results.
QUESTIONS: Final[tuple[tuple[str, str], ...]] = (
    ("how do I check a condition while debugging and fail with AssertionError", "assert"),
    ("are assertions removed when python runs with optimization -O", "assert"),
    ("unpacking several values into multiple targets on the left of =", "assignment"),
    ("assigning to a slice of a list replaces a range of elements", "assignment"),
    ("define a coroutine function with async def", "async"),
    ("iterate over an asynchronous iterator with async for", "async"),
    ("private name mangling of double underscore names inside a class", "atom-identifiers"),
    ("what happens when an unbound name is evaluated in an expression", "atom-identifiers"),
    ("do two occurrences of the same literal evaluate to the same object", "atom-literals"),
    ("customize what happens when attribute lookup fails with __getattr__", "attribute-access"),
    ("descriptors implementing __get__ and __set__", "attribute-access"),
    ("use __slots__ to avoid a per-instance __dict__", "attribute-access"),
    ("what does obj.name evaluate to when the attribute is missing", "attribute-references"),
    ("does x += 1 modify a mutable object in place", "augassign"),
    ("in-place operator statements like -= and *=", "augassign"),
    ("suspend a coroutine until an awaitable finishes", "await"),
    ("difference between true division / and floor division //", "binary"),
    ("what does the modulo operator return for negative numbers", "binary"),
    ("matrix multiplication operator @", "binary"),
    ("bitwise and, or and exclusive or of two integers", "bitwise"),
    (
        "compiled bytecode objects returned by compile() and the __code__ attribute",
        "bltin-code-objects",
    ),
    ("what is the three dots Ellipsis object for", "bltin-ellipsis-object"),
    ("the object a function returns when it has no explicit return value", "bltin-null-object"),
    ("what does type(x) return for a built-in object", "bltin-type-objects"),
    ("short-circuit evaluation of and / or and the value they return", "booleans"),
    ("the not operator yields True or False", "booleans"),
    ("leave the innermost enclosing loop early", "break"),
    ("make instances of my class callable like a function", "callable-types"),
    ("passing *args and **kwargs when calling a function", "calls"),
    ("error when the same argument is given both by position and by keyword", "calls"),
    ("class decorators and the list of base classes in a class statement", "class"),
    ("the class body runs in a new namespace; the metaclass keyword", "class"),
    ("chaining comparisons such as a < b < c", "comparisons"),
    ("difference between is and == identity versus equality", "comparisons"),
    ("objects that define __enter__ and __exit__ for the with statement", "context-managers"),
    ("skip the rest of the current loop iteration and start the next one", "continue"),
    ("how are an int and a float converted to a common type in arithmetic", "conversions"),
    ("difference between __repr__ and __str__", "customization"),
    ("__new__ versus __init__ when creating an instance", "customization"),
    ("make objects usable as dictionary keys with __hash__ and __eq__", "customization"),
    ("debugger commands to set a breakpoint and step through code", "debugger"),
    ("post-mortem debugging after an uncaught exception", "debugger"),
    ("remove a name binding or delete items from a list", "del"),
    ("dictionary comprehension and duplicate keys in a dict display", "dict"),
    ("exec and eval combined with free variables of nested scopes", "dynamic-features"),
    ("how does exception handling terminate the block that raised", "exceptions"),
    ("how a program is made of code blocks executed in execution frames", "execmodel"),
    ("a trailing comma creates a tuple; starred items in expression lists", "exprlists"),
    ("syntax of float literals with an exponent like 1e10", "floating"),
    ("when does the else clause of a for loop run", "for"),
    ("loop over an iterable assigning each item to a target variable", "for"),
    ("format specification mini-language: padding and alignment in str.format", "formatstrings"),
    ("format a number with a thousands separator and two decimals", "formatstrings"),
    ("default parameter values are evaluated once when the def runs", "function"),
    ("function annotations and the -> return annotation", "function"),
    ("keyword-only parameters after a bare star", "function"),
    ("change a module-level variable from inside a function", "global"),
    ("special meaning of names that begin and end with double underscores", "id-classes"),
    ("reserved keywords and soft keywords such as match and case", "identifiers"),
    ("which unicode characters may appear in a variable name", "identifiers"),
    ("conditional execution with elif branches", "if"),
    ("write a complex number with a j suffix", "imaginary"),
    ("relative imports with leading dots in from ... import", "import"),
    ("what does from __future__ import do", "import"),
    ("test whether a container holds a value with in / not in", "in"),
    ("hexadecimal, octal and binary integer literals with underscores", "integers"),
    ("anonymous inline function expression", "lambda"),
    ("square brackets creating a list from expressions or a comprehension", "lists"),
    ("scope of variables in nested functions and closures over free variables", "naming"),
    ("UnboundLocalError when a local variable is used before assignment", "naming"),
    ("rebind a variable of the enclosing function from a nested function", "nonlocal"),
    ("a negative number literal is really unary minus applied to a literal", "numbers"),
    ("overload arithmetic with __add__ and the reflected __radd__", "numeric-types"),
    ("every object has an identity, a type and a value; mutable vs immutable", "objects"),
    ("garbage collection and reference counting of unreachable objects", "objects"),
    ("operator precedence table from lowest to highest binding", "operator-summary"),
    ("a statement that does nothing, used as a placeholder", "pass"),
    ("exponentiation binds more tightly than a unary minus on its left", "power"),
    ("raising a negative number to a fractional power gives a complex result", "power"),
    ("exception chaining with raise ... from and __cause__", "raise"),
    ("re-raise the exception currently being handled", "raise"),
    ("leave a function with a value; return inside a generator", "return"),
    ("implement __len__ and __getitem__ to build a custom container", "sequence-types"),
    ("shift an integer left or right by a number of bits", "shifting"),
    ("extended slice with a step like a[::2]", "slicings"),
    ("attributes such as __dict__, __class__, __name__ and __qualname__", "specialattrs"),
    ("split a string on whitespace and join a list of strings", "string-methods"),
    ("strip leading and trailing characters and replace substrings", "string-methods"),
    ("raw string literals and backslash escape sequences", "strings"),
    ("formatted string literals with expressions in braces", "strings"),
    ("subscripting a generic class like list[int]", "subscriptions"),
    ("which values count as false in a boolean context", "truth"),
    ("a finally clause runs even when the try block returns", "try"),
    ("except* for handling exception groups", "try"),
    ("overview of the standard type hierarchy: numbers, sequences, mappings, callables", "types"),
    ("methods of dict: get, setdefault, update and items", "typesmapping"),
    ("dictionary view objects reflect changes to the dict", "typesmapping"),
    ("bound method objects and their __self__ and __func__ attributes", "typesmethods"),
    ("attribute access on module objects and a module's namespace", "typesmodules"),
    ("common sequence operations: concatenation, repetition, index and count", "typesseq"),
    ("range objects use little memory whatever their length", "typesseq"),
    ("sort a list in place with a key function", "typesseq"),
    ("append, extend, insert and pop on a mutable sequence", "typesseq-mutable"),
    ("unary minus, unary plus and bitwise inversion ~x", "unary"),
    ("repeat a block as long as a condition stays true", "while"),
    ("open several context managers in one with statement", "with"),
    ("generator functions with yield and yield from", "yield"),
    # second batch, written before any of it was evaluated, for statistical resolution
    ("the assert statement is equivalent to checking __debug__ and raising", "assert"),
    ("swapping two variables with a, b = b, a and evaluation order", "assignment"),
    ("annotated assignment statements like x: int = 5", "assignment"),
    ("async with calls __aenter__ and __aexit__", "async"),
    ("NameError raised for a name that is not bound", "atom-identifiers"),
    ("literals denote constant values of built-in types", "atom-literals"),
    ("__getattribute__ is called for every attribute access", "attribute-access"),
    ("AttributeError raised when an object lacks the requested attribute", "attribute-references"),
    ("the target of an augmented assignment is evaluated only once", "augassign"),
    ("await can only be used inside a coroutine function", "await"),
    ("multiplying a sequence by an integer repeats it", "binary"),
    ("divmod and the relationship between // and %", "binary"),
    ("the & | ^ operators on integers and their precedence", "bitwise"),
    ("execute a code object with exec or eval", "bltin-code-objects"),
    ("the Ellipsis singleton written as ...", "bltin-ellipsis-object"),
    ("None is a singleton: there is exactly one such object", "bltin-null-object"),
    ("built-in type objects represent the various object types", "bltin-type-objects"),
    ("x or y returns x if x is true, otherwise y", "booleans"),
    ("break inside a try statement with a finally clause", "break"),
    ("the __call__ method", "callable-types"),
    ("call a function with an iterable unpacked into positional arguments", "calls"),
    ("what does a call evaluate to: the return value or None", "calls"),
    ("a class definition creates a class object bound to a name", "class"),
    ("class attributes shared by all instances versus instance attributes", "class"),
    ("ordering comparison of objects of different types raises TypeError", "comparisons"),
    ("how are lists and tuples compared lexicographically", "comparisons"),
    ("statements that contain groups of other statements: clauses, headers and suites", "compound"),
    ("__exit__ returning a true value suppresses the exception", "context-managers"),
    ("continue statement in a while or for loop", "continue"),
    ("__bool__ and __len__ decide the truth value of an object", "customization"),
    ("rich comparison methods __lt__, __le__ and __eq__", "customization"),
    ("__del__ finalizer called when an object is about to be destroyed", "customization"),
    ("run a script under pdb from the command line", "debugger"),
    ("the breakpoint() builtin starts the debugger", "debugger"),
    ("deleting an attribute with del obj.attr", "del"),
    ("curly braces with key: value pairs create a new dictionary", "dict"),
    ("how eval() handles the global and local namespaces", "dynamic-features"),
    ("except clauses match an exception by its class or a base class", "exceptions"),
    ("the builtins module and the __builtins__ name", "execmodel"),
    ("the namespace in which a module's code runs", "execmodel"),
    ("unpacking an iterable with * inside a tuple display", "exprlists"),
    ("are float literals limited in range and precision", "floating"),
    ("iterating over range() in a for loop", "for"),
    ("format a float as a percentage", "formatstrings"),
    ("convert an integer to hexadecimal with a format spec", "formatstrings"),
    ("replacement fields with positional and named arguments in format strings", "formatstrings"),
    ("a function definition is an executable statement binding a function object", "function"),
    ("decorators applied to a function definition", "function"),
    ("positional-only parameters declared with a slash", "function"),
    ("using a name before its global declaration in the same block", "global"),
    ("the underscore name _ holds the last result in the interactive interpreter", "id-classes"),
    ("list of Python keywords that cannot be used as names", "identifiers"),
    ("if statement evaluates the expressions one by one until one is true", "if"),
    ("imaginary literals give complex numbers with a zero real part", "imaginary"),
    ("how does import find and load a module", "import"),
    ("import a submodule of a package with import a.b.c", "import"),
    ("from module import * and __all__", "import"),
    ("the in operator on strings tests for a substring", "in"),
    ("is there a limit on the size of integer literals", "integers"),
    ("leading zeros are not allowed in a decimal integer literal", "integers"),
    ("lambda cannot contain statements or annotations", "lambda"),
    ("list display syntax", "lists"),
    ("names defined in a class block are not visible in its methods", "naming"),
    ("nonlocal names must refer to pre-existing bindings in an enclosing scope", "nonlocal"),
    ("three kinds of numeric literals: integers, floats and imaginary numbers", "numbers"),
    ("implementing in-place operators with __iadd__", "numeric-types"),
    ("__index__ lets objects be used as integers in slices", "numeric-types"),
    ("the id() function returns an object's identity", "objects"),
    ("containers hold references to other objects", "objects"),
    ("precedence of not compared with and / or", "operator-summary"),
    ("an empty class or function body", "pass"),
    ("0 raised to a negative power raises ZeroDivisionError", "power"),
    ("raise with no active exception raises RuntimeError", "raise"),
    ("the __traceback__ attribute of an exception", "raise"),
    ("return passing through a try statement with a finally clause", "return"),
    ("__iter__ and __reversed__ for iterating over a container", "sequence-types"),
    ("__setitem__, __delitem__ and __missing__ for mapping-like classes", "sequence-types"),
    ("the << and >> operators", "shifting"),
    ("slice objects with start, stop and step", "slicings"),
    ("the __mro__ attribute and method resolution order", "specialattrs"),
    ("check whether a string starts with a prefix", "string-methods"),
    ("convert a string to upper or lower case", "string-methods"),
    ("find the position of a substring", "string-methods"),
    ("bytes literals with a b prefix", "strings"),
    ("triple-quoted strings spanning multiple lines", "strings"),
    ("adjacent string literals are concatenated", "strings"),
    ("negative indices count from the end of a sequence", "subscriptions"),
    ("the default truth value of a user-defined object", "truth"),
    ("the else clause of a try statement runs when no exception occurred", "try"),
    ("the exception variable is cleared at the end of the except clause", "try"),
    ("kinds of callable types: user-defined functions, methods, generators, coroutines", "types"),
    ("sets and frozensets as unordered collections of unique elements", "types"),
    ("what operations does a function object support", "typesfunctions"),
    ("remove and return a key with dict.pop or popitem", "typesmapping"),
    ("merge dictionaries with the | and |= operators", "typesmapping"),
    ("dictionaries preserve insertion order", "typesmapping"),
    ("setting an attribute on a method object raises AttributeError", "typesmethods"),
    ("a module's symbol table and its attributes", "typesmodules"),
    ("tuples are immutable sequences created with commas", "typesseq"),
    ("concatenating many immutable strings is quadratic", "typesseq"),
    ("remove the first item equal to a value from a list", "typesseq-mutable"),
    ("reverse the items of a list in place", "typesseq-mutable"),
    ("the unary ~ operator on integers gives -(x+1)", "unary"),
    ("while loop with an else clause", "while"),
    ("the with statement is expanded into try/finally with __enter__ and __exit__", "with"),
    ("the yield statement is equivalent to a yield expression", "yield"),
)


@dataclass(frozen=True)
class EvalQuery:
    """A question, the topic that answers it, every topic that holds the answer, and its
    split (``"dev"`` for tuning, ``"test"`` for reporting)."""

    text: str
    topic: str
    relevant: frozenset[str]
    split: Literal["dev", "test"]


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if len(p.strip()) > 40]


def relevant_topics(topics: dict[str, str], share: float = 0.5) -> dict[str, frozenset[str]]:
    """For each topic, itself plus every other topic containing at least ``share`` of its
    paragraphs (of more than 40 characters) verbatim."""
    out: dict[str, frozenset[str]] = {}
    for a, text in topics.items():
        paras = _paragraphs(text)
        rel = {a}
        if paras:
            for b, other in topics.items():
                if b != a and sum(p in other for p in paras) >= share * len(paras):
                    rel.add(b)
        out[a] = frozenset(rel)
    return out


def _split(text: str) -> Literal["dev", "test"]:
    return "dev" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "test"


def _topics(corpus: Corpus = "snapshot") -> dict[str, str]:
    """The topics, by key: the snapshot of Python :data:`CORPUS_PYTHON`'s, or the running
    interpreter's (``"interpreter"``)."""
    if corpus == "interpreter":
        from pydoc_data.topics import topics

        return dict(sorted(topics.items()))
    if corpus != "snapshot":
        raise InvalidInput(f"corpus is 'snapshot' or 'interpreter', got {corpus!r}")
    return dict(_snapshot_topics())


@cache
def _snapshot_topics() -> tuple[tuple[str, str], ...]:
    """The snapshot's topics, sorted by key (read and decompressed once per process)."""
    payload = json.loads(gzip.decompress(_SNAPSHOT.read_bytes()))
    return tuple(sorted(payload["topics"].items()))


def build_eval_set(corpus: Corpus = "snapshot") -> list[EvalQuery]:
    """:data:`QUESTIONS` with their relevant topics (computed from ``corpus``) and their
    deterministic dev/test split."""
    topics = _topics(corpus)
    rel = relevant_topics(topics)
    unknown = sorted({t for _, t in QUESTIONS} - topics.keys())
    if unknown:
        raise InvalidInput(f"questions name unknown topics {unknown}")
    return [EvalQuery(q, t, rel[t], _split(q)) for q, t in QUESTIONS]


def corpus_documents(corpus: Corpus = "snapshot") -> list[dict[str, Any]]:
    """The topics as refresh documents (id = topic key, metadata ``topic``)."""
    return [{"id": k, "text": v, "metadata": {"topic": k}} for k, v in _topics(corpus).items()]


# ---------------------------------------------------------------------------------- metrics
@dataclass(frozen=True)
class Metrics:
    """recall@k and MRR over ``n`` questions."""

    recall: float
    mrr: float
    n: int


def rank_topics(hits: Sequence[Hit]) -> list[str]:
    """Distinct topics (``_doc`` of each chunk hit) in order of first appearance."""
    out: list[str] = []
    for h in hits:
        doc = h.metadata.get("_doc", h.id)
        if doc not in out:
            out.append(str(doc))
    return out


def _score(rankings: Sequence[list[str]], queries: Sequence[EvalQuery], k: int) -> Metrics:
    hits, rr = [], []
    for ranking, q in zip(rankings, queries, strict=True):
        first = next((i for i, t in enumerate(ranking) if t in q.relevant), None)
        hits.append(1.0 if first is not None and first < k else 0.0)
        rr.append(0.0 if first is None else 1.0 / (first + 1))
    n = len(queries)
    return Metrics(statistics.fmean(hits) if n else 0.0, statistics.fmean(rr) if n else 0.0, n)


@dataclass
class _Legs:
    """Per query: the dense and the keyword hits, each leg ``candidate_pool(depth)`` deep."""

    dense: list[list[Hit]] = field(default_factory=list)
    keyword: list[list[Hit]] = field(default_factory=list)


def _legs(
    store: VectorStore,
    collection: str,
    queries: Sequence[EvalQuery],
    vectors: Any,
    depth: int,
) -> _Legs:
    legs = _Legs()
    pool = candidate_pool(depth)
    for i, q in enumerate(queries):
        legs.dense.append(store.search(collection, vectors[i], k=pool, mode="dense"))
        legs.keyword.append(store.search(collection, text=q.text, k=pool, mode="keyword"))
    return legs


def chunk_topics(hits: Sequence[Hit]) -> list[str]:
    """The topic (``_doc``) of each chunk hit, in rank order (repeats kept)."""
    return [str(h.metadata.get("_doc", h.id)) for h in hits]


@dataclass(frozen=True)
class ModeMetrics:
    """One mode on one split: ``topics`` ranks distinct topics (the primary metric),
    ``chunks`` the raw chunk hits (a relevant topic's chunk among the first ``k`` chunks)."""

    topics: Metrics
    chunks: Metrics


def evaluate_modes(
    store: VectorStore,
    collection: str,
    queries: Sequence[EvalQuery],
    embedder: Embedder,
    *,
    alpha: float = 0.5,
    k: int = K,
    depth: int = DEPTH,
) -> dict[SearchMode, ModeMetrics]:
    """recall@k and MRR of ``queries`` in each mode, through ``store.search`` (hybrid: the
    store's own fusion with ``alpha``)."""
    vectors = checked(embedder).embed([q.text for q in queries])
    out: dict[SearchMode, ModeMetrics] = {}
    modes: tuple[SearchMode, ...] = ("dense", "keyword", "hybrid")
    for mode in modes:
        topics, chunks = [], []
        for i, q in enumerate(queries):
            hits = store.search(
                collection,
                None if mode == "keyword" else vectors[i],
                text=None if mode == "dense" else q.text,
                k=depth,
                mode=mode,
                alpha=alpha,
            )
            topics.append(rank_topics(hits))
            chunks.append(chunk_topics(hits))
        out[mode] = ModeMetrics(_score(topics, queries, k), _score(chunks, queries, k))
    return out


def tune(
    store: VectorStore,
    collection: str,
    dev: Sequence[EvalQuery],
    embedder: Embedder,
    *,
    methods: Sequence[FusionMethod] = ("relative", "rrf"),
    alphas: Sequence[float] = ALPHAS,
    k: int = K,
    depth: int = DEPTH,
) -> dict[tuple[str, float], Metrics]:
    """Hybrid recall@k / MRR on ``dev`` for every fusion method and alpha, fusing the two legs
    client-side exactly as a store without native hybrid does (:func:`fuse_hits`)."""
    vectors = checked(embedder).embed([q.text for q in dev])
    legs = _legs(store, collection, dev, vectors, depth)
    grid: dict[tuple[str, float], Metrics] = {}
    for method in methods:
        for alpha in alphas:
            rankings = [
                rank_topics(fuse_hits(d, w, alpha, depth, method=method))
                for d, w in zip(legs.dense, legs.keyword, strict=True)
            ]
            grid[(method, alpha)] = _score(rankings, dev, k)
    return grid


def best(grid: dict[tuple[str, float], Metrics]) -> tuple[str, float]:
    """The (method, alpha) with the best recall, then MRR, then the alpha closest to 0.5."""
    return max(grid, key=lambda key: (grid[key].recall, grid[key].mrr, -abs(key[1] - 0.5)))


@dataclass(frozen=True)
class ModeResult:
    """A mode's metrics on the dev and test splits."""

    mode: str
    dev: ModeMetrics | None
    test: ModeMetrics


@dataclass(frozen=True)
class QualityReport:
    """One embedder on one store: the tuned fusion and the per-mode metrics."""

    embedder: str
    backend: str
    chunks: int
    method: str
    alpha: float
    results: list[ModeResult]
    index_seconds: float
    refresh: RefreshReport | None = None

    def row(self, mode: str) -> ModeResult:
        return next(r for r in self.results if r.mode == mode)


def run_quality(
    store: VectorStore,
    embedder: Embedder,
    *,
    collection: str = "pydoc_eval",
    backend: str = "",
    alpha: float | None = None,
    report_dev: bool = True,
    corpus: Corpus = "snapshot",
) -> QualityReport:
    """Index the corpus with ``embedder`` into ``collection`` (created by refresh), tune the
    fusion on the dev split (unless ``alpha`` is given) and evaluate every mode on both
    splits. Only ``alpha`` is tuned (for the fusion the store uses, :data:`DEFAULT_FUSION`):
    the hybrid rows are the store's own hybrid search with that alpha. ``report_dev=False``
    skips evaluating the dev split (only the tuning runs on it)."""
    t0 = time.perf_counter()
    report = refresh(store, collection, corpus_documents(corpus), embedder, chunker=CHUNKER)
    index_s = time.perf_counter() - t0
    queries = build_eval_set(corpus)
    dev = [q for q in queries if q.split == "dev"]
    test = [q for q in queries if q.split == "test"]
    method: str = DEFAULT_FUSION
    if alpha is None:
        grid = tune(store, collection, dev, embedder, methods=(DEFAULT_FUSION,))
        method, alpha = best(grid)
    dev_m = evaluate_modes(store, collection, dev, embedder, alpha=alpha) if report_dev else {}
    test_m = evaluate_modes(store, collection, test, embedder, alpha=alpha)
    results = [ModeResult(m, dev_m.get(m), test_m[m]) for m in ("dense", "keyword", "hybrid")]
    return QualityReport(
        embedder=f"{embedder.name}",
        backend=backend,
        chunks=store.count(collection),
        method=method,
        alpha=alpha,
        results=results,
        index_seconds=index_s,
        refresh=report,
    )


# --------------------------------------------------------------------------------------- main
@contextmanager
def _local_store() -> Iterator[VectorStore]:
    from strataml.local.lancedb_vectors import LanceDBVectorStore

    with tempfile.TemporaryDirectory(prefix="strataml-eval-") as tmp:
        store = LanceDBVectorStore(Path(tmp) / "vectors")
        try:
            yield store
        finally:
            store.close()


@contextmanager
def _pg_store() -> Iterator[VectorStore]:
    from strataml.dev.servers import start_postgres, stop
    from strataml.registry import StackContext
    from strataml_postgres import PostgresConfig, database
    from strataml_postgres.vectors import PgVectorStore

    with tempfile.TemporaryDirectory(prefix="strataml-eval-pg-") as tmp:
        handle = start_postgres(Path(tmp), durable=False)
        ctx = StackContext()
        try:
            db = database(PostgresConfig(type="postgres", url=handle.url, schema="evalq"), ctx)
            store = PgVectorStore(db)
            try:
                yield store
            finally:
                store.close()
        finally:
            ctx.close()
            stop(handle)


def _embedders(
    which: Sequence[str], corpus: Corpus
) -> Iterator[tuple[str, Callable[[], Embedder]]]:
    from strataml.embed.lsa import LSAEmbedder

    def lsa() -> Embedder:
        docs = corpus_documents(corpus)
        texts = [c.text for d in docs for c in CHUNKER.chunk(d["id"], d["text"])]
        return LSAEmbedder(dim=192).fit(texts)

    def minilm() -> Embedder:
        from strataml.embed.sentence import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder()

    table = {"lsa": lsa, "minilm": minilm}
    for name in which:
        yield name, table[name]


class _Memo:
    """An embedder remembering its vectors, so several backends share one embedding run."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.version, self.dim = inner.name, inner.version, inner.dim
        self._cache: dict[str, Any] = {}

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            for t, v in zip(todo, self.inner.embed(todo), strict=True):
                self._cache[t] = v
        return np.asarray([self._cache[t] for t in texts], dtype=np.float32).reshape(
            len(texts), self.dim
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the retrieval-quality table (markdown) for the chosen embedders and backends."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--embedders", default="lsa,minilm", help="lsa,minilm")
    parser.add_argument("--backends", default="local", help="local,pgvector")
    parser.add_argument(
        "--corpus",
        choices=("snapshot", "interpreter"),
        default="snapshot",
        help=f"the topics of Python {CORPUS_PYTHON} (shipped) or of this interpreter",
    )
    args = parser.parse_args(argv)
    stores = {"local": _local_store, "pgvector": _pg_store}
    rows = []
    models = {
        name: _Memo(make()) for name, make in _embedders(args.embedders.split(","), args.corpus)
    }
    for backend in args.backends.split(","):
        for name, emb in models.items():
            with stores[backend]() as store:
                rep = run_quality(store, emb, backend=backend, corpus=args.corpus)
            rows.append((name, rep))
            print(
                f"# {backend} {name}: {rep.chunks} chunks indexed in {rep.index_seconds:.1f} s; "
                f"tuned on dev: {rep.method} fusion, alpha={rep.alpha}",
                file=sys.stderr,
            )
    print(
        "| backend | embedder | mode | test recall@5 | test MRR | test chunk recall@5 | "
        "dev recall@5 | dev MRR |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, rep in rows:
        for r in rep.results:
            mode = f"hybrid (alpha={rep.alpha})" if r.mode == "hybrid" else r.mode
            t, d = r.test, r.dev
            assert d is not None
            print(
                f"| {rep.backend} | {name} | {mode} | {t.topics.recall:.3f} | "
                f"{t.topics.mrr:.3f} | {t.chunks.recall:.3f} | {d.topics.recall:.3f} | "
                f"{d.topics.mrr:.3f} |"
            )
    if rows:
        dense = rows[0][1].row("dense")
        dev_n = dense.dev.topics.n if dense.dev is not None else 0
        print(f"\n(test n={dense.test.topics.n}, dev n={dev_n})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
