"""The ```python examples of the README and docs/ run, so they cannot go stale.

Each markdown file is one test: its ```python blocks run in order in ONE namespace (later blocks
use names from earlier ones), in a fresh working directory, on the embedded ``local`` profile.
Most docs show fragments that assume a ``stack``, an ``events`` batch, ``labels`` etc.; the
PRELUDES below define exactly those names, on small synthetic data, before the file's first block.

A block that cannot run here is marked in the markdown on the line right before its fence::

    <!-- docs-test: skip: needs a PostgreSQL server -->

and is skipped with that reason. A later block that reads a name only a skipped block defines
skips the rest of the file, naming the skipped block.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import linecache
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    p
    for p in sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
    if "```python" in p.read_text()
]
_FENCE = re.compile(r"^```python\s*$")
_SKIP = re.compile(r"^<!--\s*docs-test:\s*skip:\s*(?P<reason>.+?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One ```python block: its first code line (1-based), source and skip reason (if marked)."""

    line: int
    source: str
    skip: str | None


def extract_blocks(text: str) -> list[Block]:
    """The ```python blocks of a markdown text, in order, with their skip markers."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            marker = _SKIP.match(lines[i - 1]) if i > 0 else None
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            source = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append(Block(i + 2, source, marker.group("reason") if marker else None))
            i = end
        i += 1
    return blocks


def _bound_names(tree: ast.AST) -> set[str]:
    """Names a block binds (assignments, imports, defs, loop targets, with-as)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _loaded_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def run_block(source: str, filename: str, ns: dict[str, Any]) -> None:
    """Execute ``source`` in ``ns``; top-level ``await`` runs on a fresh event loop."""
    # like IPython: keep the source findable, for code that reads it (e.g. @transform)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, ns)
    if inspect.iscoroutine(result):
        asyncio.run(result)


# --------------------------------------------------------------------------- shared setup code
_DATA = """
import datetime as dt
import numpy as np
import pyarrow as pa
import strataml

_rng = np.random.default_rng(7)
_start = dt.datetime(2026, 10, 1)
_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
# users 1..42: one event every 30 minutes from 2026-10-01 to 2026-11-25 (the docs' dates),
# then one per user in the last hour (so the online rows are live whatever today's date)
_times = [_start + dt.timedelta(minutes=30 * i) for i in range(2_640)]
_users = [int(u) for u in _rng.integers(1, 43, len(_times))]
_times += [_now - dt.timedelta(minutes=u) for u in range(1, 43)]
_users += list(range(1, 43))
events = [
    {"event_id": f"e{i}", "user_id": u, "ts": t, "action": "click" if i % 3 else "view",
     "amount": float(_rng.gamma(2.0, 10.0))}
    for i, (u, t) in enumerate(zip(_users, _times, strict=True))
]
labels = pa.table({
    "user_id": pa.array([1, 2, 3, 42], pa.int64()),
    "ts": pa.array([dt.datetime(2026, 11, 20)] * 4, pa.timestamp("us")),
    "label": [1, 0, 1, 0],
})
t0, t1 = dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1)
"""

_STACK = """
stack = strataml.open("local")
"""

# the same events as a feature-store table (``ts`` a timestamp column)
_EVENTS_TABLE = """
with strataml.open("local") as _stack:
    _stack.features.load("events", pa.Table.from_pylist(events))
"""

_VECTORS = """
def _unit(seed, dim=384):
    x = np.random.default_rng(seed).standard_normal(dim)
    return (x / np.linalg.norm(x)).tolist()

v, qv = _unit(1), _unit(2)
query_vector = qv
"""

_VIEW = """
with strataml.open("local") as _stack:
    _stack.features.register(strataml.FeatureView(
        name="user_activity_7d", entities=("user_id",), timestamp="ts",
        sql=\"\"\"SELECT user_id, ts, count(*) OVER w AS clicks_7d, sum(amount) OVER w AS spend_7d
                 FROM events WINDOW w AS (PARTITION BY user_id ORDER BY ts
                     RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW)\"\"\"))
"""

PRELUDES: dict[str, str] = {
    "README.md": _DATA + _VECTORS,
    "docs/drift.md": _DATA + _EVENTS_TABLE + _VIEW + _STACK,
    "docs/feature-platform.md": _DATA
    + _EVENTS_TABLE
    + """
labels = labels.append_column("basket_value", pa.array([130.0, 20.0, 99.5, 101.0]))
with strataml.open("local") as _stack:
    _stack.features.load("profiles", pa.table({
        "user_id": pa.array(range(1, 41), pa.int64()),
        "ts": pa.array([_start] * 40, pa.timestamp("us")),
        "country": ["fr", "de", "us", "br"] * 10,
    }))
    _stack.features.register(strataml.FeatureView(
        name="user_profile", entities=("user_id",), timestamp="ts",
        sql="SELECT user_id, ts, country FROM profiles"))
""",
    "docs/profiles.md": """
import strataml
from pathlib import Path
Path("my-stack.toml").write_text('[online]\\ntype = "lmdb"\\npath = "{data_dir}/online.lmdb"\\n')
""",
    "docs/stages/features.md": _DATA
    + _EVENTS_TABLE
    + _STACK
    + """
from strataml import FeatureView
for _version in (1, 2):
    stack.features.register(FeatureView(
        name="other", version=_version, entities=("user_id",), timestamp="ts",
        sql=f"SELECT user_id, ts, amount * {_version} AS feature FROM events"))
""",
    "docs/stages/ingest.md": _DATA + _STACK + "cursor = None\nretention_cutoff = t0\n",
    "docs/stages/online.md": _DATA
    + _STACK
    + """
table = pa.table({
    "user_id": pa.array([1, 2, 42], pa.int64()),
    "ts": pa.array([_now] * 3, pa.timestamp("us")),
    "clicks_7d": [5, 1, 3],
})
""",
    "docs/stages/training.md": _DATA
    + _STACK
    + """
table = pa.table({"f1": _rng.standard_normal(1_000), "f2": _rng.standard_normal(1_000),
                  "label": pa.array([i % 2 if i % 10 else None for i in range(1_000)], pa.int64())})
rank, world_size = 0, 2
""",
    "docs/stages/vectors.md": _DATA
    + _STACK
    + _VECTORS
    + """
_topics = ["refund", "shipping", "invoice", "password", "warranty", "delivery"]
documents = [
    {"id": f"kb{i}", "text": f"How the {t} process works, step {i}. " * 3 +
     f"Contact support about your {t} or {_topics[(i + 1) % 6]} question.",
     "metadata": {"lang": "en" if i % 4 else "de", "year": 2020 + i % 6}}
    for i, t in enumerate(_topics + _topics[:2])   # fewer than k=10: recall is exact
]
# enough distinct text for a 384-dimensional LSA: the documents plus 500 random paragraphs
_syl = "ka lo mi ne su ta ri po ve da fu gi ho ja ke ly mo nu pe qi ra se ti vo wa xe yu zo ba ce"
_vocab = [a + b for a in _syl.split() for b in _syl.split()]
corpus_texts = [d["text"] for d in documents] + [
    " ".join(_rng.choice(_vocab, 40)) for _ in range(500)
]
""",
}


def _check_xfail_tables(ns: dict[str, Any], rel: str) -> None:
    """A contract class defined by an example may only xfail tests that exist (the plugin's
    check, which pytest would apply to the class if it collected it)."""
    from strataml.testing._base import ContractBase
    from strataml.testing.plugin import check_xfail_table

    for value in list(ns.values()):
        if isinstance(value, type) and issubclass(value, ContractBase) and value.xfail:
            try:
                check_xfail_table(value, value.xfail)
            except pytest.UsageError as exc:
                raise AssertionError(f"{rel}: {exc}") from exc


def _close_stacks(ns: dict[str, Any]) -> None:
    from strataml import Stack

    for value in ns.values():
        if isinstance(value, Stack):
            value.close()


@pytest.mark.parametrize("doc", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_doc_examples(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rel = str(doc.relative_to(ROOT))
    blocks = extract_blocks(doc.read_text())
    for name in [k for k in os.environ if k.startswith("STRATAML_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": f"docs_{doc.stem}"}
    skipped: list[str] = []
    ran = 0
    # names bound only by skipped blocks -> the block that binds them and its reason
    missing: dict[str, str] = {}
    try:
        # the examples print (reports, summaries): keep the test output quiet
        with contextlib.redirect_stdout(io.StringIO()):
            run_block(PRELUDES.get(rel, ""), f"<prelude {rel}>", ns)
            for block in blocks:
                where = f"{rel}:{block.line}"
                tree = ast.parse(block.source, where)
                if block.skip is not None:
                    skipped.append(f"{where}: {block.skip}")
                    for name in _bound_names(tree) - set(ns):
                        missing.setdefault(name, f"{where} ({block.skip})")
                    continue
                needs = sorted(n for n in _loaded_names(tree) - _bound_names(tree) if n in missing)
                if needs:
                    skipped.append(
                        f"{where} and after: use {', '.join(needs)} from skipped "
                        f"{missing[needs[0]]}"
                    )
                    break
                try:
                    run_block(block.source, where, ns)
                    ran += 1
                except Exception as exc:
                    raise AssertionError(f"example at {where} failed: {exc!r}") from exc
                for name in _bound_names(tree):
                    missing.pop(name, None)
        _check_xfail_tables(ns, rel)
    finally:
        _close_stacks(ns)
    if skipped:
        pytest.skip(f"{ran} of {len(blocks)} examples ran; skipped " + "; ".join(skipped))
