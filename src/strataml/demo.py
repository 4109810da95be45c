"""``strataml demo``: all five stages end to end on one stack.

1. ingest a synthetic clickstream (schema-flexible, idempotent batches)
2. sync it into the feature store and define a versioned SQL feature view
3. build a point-in-time correct training set and store it as a versioned dataset
4. train a small model on sharded scans of that dataset
5. materialize the latest features to the online store and serve them (p50/p99)
6. chunk and embed Python's own documentation, then search it: dense, keyword and hybrid

The code uses only the protocols, so it runs unchanged on any profile.
"""

from __future__ import annotations

import datetime as dt
import gc
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import strataml
from strataml.embed import LSAEmbedder, chunk_text
from strataml.models import FeatureView

__all__ = ["DemoResult", "run_demo"]

VIEW_SQL = """
WITH daily AS (
    SELECT user_id,
           date_trunc('day', _event_time) AS day,
           count(*) FILTER (WHERE action = 'view') AS views,
           count(*) FILTER (WHERE action = 'click') AS clicks,
           count(*) FILTER (WHERE action = 'cart') AS carts,
           count(*) FILTER (WHERE action = 'purchase') AS purchases,
           sum(CASE WHEN action = 'purchase' THEN price ELSE 0 END) AS spend
    FROM events
    GROUP BY user_id, date_trunc('day', _event_time)
)
SELECT d.user_id,
       d.day + INTERVAL 1 DAY AS ts,
       CAST(sum(w.views) AS BIGINT) AS views_7d,
       CAST(sum(w.clicks) AS BIGINT) AS clicks_7d,
       CAST(sum(w.carts) AS BIGINT) AS carts_7d,
       CAST(sum(w.purchases) AS BIGINT) AS purchases_7d,
       CAST(sum(w.spend) AS DOUBLE) AS spend_7d,
       count(*) AS active_days_7d
FROM daily AS d
JOIN daily AS w
  ON w.user_id = d.user_id AND w.day > d.day - INTERVAL 7 DAY AND w.day <= d.day
GROUP BY d.user_id, d.day
"""

QUERIES = [
    ("how does the else clause of a for loop work", "for"),
    ("catch an exception with try, except and finally", "try"),
    ("context manager __enter__ and __exit__ methods", "with"),
    ("anonymous inline function expression", "lambda"),
    ("when are default parameter values evaluated in a def", "function"),
    ("the yield statement inside a function body", "yield"),
    ("resolution of names and binding in code blocks", "naming"),
    ("operator precedence table from lowest to highest", "operator-summary"),
]

DAYS = 28
#: the clickstream covers the 28 days before today (UTC), so online TTLs are meaningful now
START = dt.datetime.combine(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=DAYS), dt.time())
ACTIONS = np.array(["view", "click", "cart", "purchase"])


@dataclass
class DemoResult:
    """What the demo measured (also used by tests)."""

    profile: str
    figures: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _step(console: Console, title: str) -> Iterator[None]:
    console.rule(f"[bold cyan]{title}")
    t0 = time.perf_counter()
    yield
    console.print(f"[dim]   {time.perf_counter() - t0:.2f} s[/]")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("   {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def make_clickstream(n_users: int, n_events: int, seed: int = 7) -> list[dict[str, Any]]:
    """Synthetic events: users have a latent propensity that drives clicks and purchases;
    some events carry extra fields (a campaign, a nested geo object): schema-flexible input."""
    rng = np.random.default_rng(seed)
    propensity = rng.beta(1.2, 6.0, n_users)
    # engaged users are both more active and more likely to buy
    activity = 0.2 + propensity
    users = rng.choice(n_users, size=n_events, p=activity / activity.sum())
    seconds = np.sort(rng.uniform(0, DAYS * 86_400, n_events))
    p = propensity[users]
    probs = np.stack([1 - p, 0.6 * p, 0.25 * p, 0.15 * p], axis=1)
    probs /= probs.sum(axis=1, keepdims=True)
    cum = probs.cumsum(axis=1)
    actions = ACTIONS[(rng.random(n_events)[:, None] > cum).sum(axis=1)]
    prices = np.round(rng.gamma(2.0, 20.0, n_events), 2)
    items = rng.integers(0, 5_000, n_events)
    devices = np.array(["web", "ios", "android"])[rng.integers(0, 3, n_events)]
    events: list[dict[str, Any]] = []
    for i in range(n_events):
        e: dict[str, Any] = {
            "event_id": f"e{i:08d}",
            "user_id": int(users[i]),
            "item_id": int(items[i]),
            "action": str(actions[i]),
            "price": float(prices[i]),
            "device": str(devices[i]),
            "ts": (START + dt.timedelta(seconds=float(seconds[i]))).isoformat(),
        }
        if i % 10 == 0:
            e["campaign"] = f"c{i % 7}"
        if i % 25 == 0:
            e["geo"] = {"country": ["DE", "FR", "US", "IN"][i % 4], "city_id": i % 100}
        events.append(e)
    return events


def make_labels(
    events: list[dict[str, Any]], n_users: int, n_labels: int, seed: int = 11
) -> pa.Table:
    """(user, timestamp, purchased in the next 24 h) -- the label is in the future of ts."""
    rng = np.random.default_rng(seed)
    purchases: dict[int, list[float]] = {}
    for e in events:
        if e["action"] == "purchase":
            t = (dt.datetime.fromisoformat(e["ts"]) - START).total_seconds()
            purchases.setdefault(e["user_id"], []).append(t)
    sorted_p = {u: np.array(sorted(ts)) for u, ts in purchases.items()}
    users = rng.integers(0, n_users, n_labels)
    secs = rng.uniform(8 * 86_400, (DAYS - 1) * 86_400, n_labels)
    labels = []
    for u, s in zip(users, secs, strict=True):
        arr = sorted_p.get(int(u))
        hit = arr is not None and bool(
            np.searchsorted(arr, s + 86_400, "right") > np.searchsorted(arr, s, "right")
        )
        labels.append(int(hit))
    return pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "ts": pa.array(
                [START + dt.timedelta(seconds=float(s)) for s in secs], pa.timestamp("us")
            ),
            "label": pa.array(labels, pa.int8()),
        }
    )


def _percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = sorted(s * 1000 for s in samples_s)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return p50, p99


def run_demo(
    profile: str = "local",
    *,
    data_dir: str | Path | None = None,
    quick: bool = False,
    console: Console | None = None,
) -> DemoResult:
    """Run every stage on ``profile``; data goes to ``data_dir`` (a temp dir by default)."""
    console = console or Console()
    if data_dir is None:
        with tempfile.TemporaryDirectory(prefix="strataml-demo-") as tmp:
            return _run(profile, Path(tmp), quick, console)
    return _run(profile, Path(data_dir), quick, console)


def _run(profile: str, data_dir: Path, quick: bool, console: Console) -> DemoResult:
    n_users, n_events, n_labels = (500, 20_000, 10_000) if quick else (2_000, 100_000, 20_000)
    result = DemoResult(profile=profile)
    fig = result.figures
    t_all = time.perf_counter()
    with strataml.open(profile, data_dir=data_dir) as stack:
        console.print(
            f"[bold]strataml demo[/] on profile [green]{stack.profile.name}[/] "
            f"({', '.join(f'{r}={b}' for r, b in stack.backends().items())}); data in {data_dir}"
        )

        # ------------------------------------------------------------------ 1. ingestion
        with _step(console, "1. Ingestion: a clickstream into an IngestStore"):
            events = make_clickstream(n_users, n_events)
            stack.ingest.drop("events")
            t0 = time.perf_counter()
            written = duplicates = 0
            with _progress(console) as bar:
                task = bar.add_task("write_batch", total=len(events))
                for i in range(0, len(events), 5_000):
                    res = stack.ingest.write_batch(
                        "events", events[i : i + 5_000], key_field="event_id", time_field="ts"
                    )
                    written += res.written
                    duplicates += res.duplicates
                    bar.advance(task, 5_000)
            secs = time.perf_counter() - t0
            retry = stack.ingest.write_batch(
                "events", events[:5_000], key_field="event_id", time_field="ts"
            )
            fig["ingest_records_per_s"] = written / secs
            console.print(
                f"   {written:,} events ({n_users:,} users, {DAYS} days) in {secs:.2f} s "
                f"= [bold]{written / secs:,.0f} records/s[/]; "
                f"retried batch: {retry.written} written, {retry.duplicates:,} duplicates skipped"
            )
            console.print(
                f"   stream count = {stack.ingest.count('events'):,}; some events carry "
                "extra fields (campaign, nested geo) -- no migration needed"
            )

        # --------------------------------------------------------- 2. feature engineering
        with _step(console, "2. Feature engineering: SQL feature view over the events"):
            loaded = stack.sync("events")
            again = stack.sync("events")
            console.print(
                f"   synced {loaded:,} rows into the feature store "
                f"(second sync: {again} new rows -- exactly once)"
            )
            view = stack.features.register(
                FeatureView(
                    name="user_activity_7d",
                    version=1,
                    entities=("user_id",),
                    timestamp="ts",
                    sql=VIEW_SQL,
                    ttl=dt.timedelta(days=3),
                    owner="demo",
                    description="7-day activity counts per user, as of the end of each day",
                )
            )
            console.print(
                f"   registered [bold]{view.ref}[/] features={list(view.features or ())} "
                f"fingerprint={view.fingerprint[:12]}"
            )
            labels = make_labels(events, n_users, n_labels)
            t0 = time.perf_counter()
            train = stack.features.historical(labels, ["user_activity_7d:*"])
            pit_s = time.perf_counter() - t0
            fig["pit_rows"] = train.num_rows
            fig["pit_seconds"] = pit_s
            coverage = 1 - train.column("views_7d").null_count / max(1, train.num_rows)
            console.print(
                f"   point-in-time join: {train.num_rows:,} label rows x "
                f"{len(view.features or ())} "
                f"features in {pit_s:.2f} s; {coverage:.0%} rows have features at their time "
                "(never from the future; older than the 3-day TTL -> null)"
            )

        # ------------------------------------------------------------- 3. batch training
        with _step(console, "3. Batch training: versioned dataset, sharded Arrow scans"):
            snapshot = stack.training.write("purchase_training", train)
            feats = list(view.features or ())
            console.print(f"   dataset snapshot [bold]{snapshot}[/] ({train.num_rows:,} rows)")
            auc, rows_per_s = _train(stack, snapshot, feats)
            fig["auc"] = auc
            fig["scan_rows_per_s"] = rows_per_s
            console.print(
                f"   SGD logistic regression trained on shards 0-3 of 5, "
                f"holdout shard 4: [bold]AUC {auc:.3f}[/]; scans at {rows_per_s:,.0f} rows/s"
            )

        # ------------------------------------------------------------ 4. feature serving
        with _step(console, "4. Feature serving: materialize offline -> online, then serve"):
            report = stack.materialize(view)
            console.print(
                f"   materialized {report.entities_written:,} entities into "
                f"{report.online_view!r} in {report.seconds:.2f} s"
            )
            rng = np.random.default_rng(3)
            keys = [{"user_id": int(u)} for u in rng.integers(0, n_users, 20_000)]
            # the definition the model was trained with; the skew guard checks every row
            server = stack.feature_server([view])
            server.get(keys[0])
            samples = []
            gc.collect()
            for k in keys:
                t0 = time.perf_counter()
                server.get(k)
                samples.append(time.perf_counter() - t0)
            p50, p99 = _percentiles(samples)
            many = []
            for i in range(0, 20_000, 100):
                t0 = time.perf_counter()
                server.get_many(keys[i : i + 100])
                many.append(time.perf_counter() - t0)
            m50, m99 = _percentiles(many)
            fig.update(get_p50_ms=p50, get_p99_ms=p99, get_many_p50_ms=m50, get_many_p99_ms=m99)
            sample = server.get({"user_id": 1})
            console.print(f"   get(user_id=1) -> {sample}")
            console.print(
                f"   get: p50 [bold]{p50 * 1000:.1f} µs[/], p99 [bold]{p99 * 1000:.1f} µs[/] "
                f"(20,000 lookups); get_many(100): p50 {m50:.2f} ms, p99 {m99:.2f} ms"
            )

        # ---------------------------------------------------------- 5. embedding retrieval
        with _step(console, "5. Embedding retrieval: Python's docs, dense / keyword / hybrid"):
            fig.update(_search(stack, console, quick))

    fig["total_seconds"] = time.perf_counter() - t_all
    _summary(console, result)
    return result


def _train(stack: Any, snapshot: str, feats: list[str]) -> tuple[float, float]:
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    def xy(batch: pa.RecordBatch) -> tuple[Any, Any]:
        cols = [
            np.nan_to_num(batch.column(f).to_numpy(zero_copy_only=False).astype("float64"))
            for f in feats
        ]
        x = np.log1p(np.clip(np.column_stack(cols), 0, None))
        return x, batch.column("label").to_numpy(zero_copy_only=False)

    name = snapshot.split("@")[0]
    t0 = time.perf_counter()
    scanned = sum(b.num_rows for b in stack.training.scan(name, snapshot=snapshot))
    scan_s = time.perf_counter() - t0
    scaler = StandardScaler()
    for i in range(4):
        for batch in stack.training.scan(name, snapshot=snapshot, shard=(i, 5), batch_size=4096):
            scaler.partial_fit(xy(batch)[0])
    # averaged SGD: stable on streamed batches; positives are rare, so weight them up
    model = SGDClassifier(
        loss="log_loss", alpha=1e-3, class_weight={0: 1.0, 1: 10.0}, average=True, random_state=0
    )
    for _epoch in range(5):
        for i in range(4):
            for batch in stack.training.scan(
                name, snapshot=snapshot, shard=(i, 5), batch_size=4096
            ):
                x, y = xy(batch)
                model.partial_fit(scaler.transform(x), y, classes=np.array([0, 1]))
    xs, ys = [], []
    for batch in stack.training.scan(name, snapshot=snapshot, shard=(4, 5)):
        x, y = xy(batch)
        xs.append(scaler.transform(x))
        ys.append(y)
    proba = model.predict_proba(np.vstack(xs))[:, 1]
    auc = float(roc_auc_score(np.concatenate(ys), proba))
    return auc, scanned / max(scan_s, 1e-9)


def _search(stack: Any, console: Console, quick: bool) -> dict[str, Any]:
    from pydoc_data.topics import topics

    chunks = [
        c
        for name, text in sorted(topics.items())
        for c in chunk_text(name, text, size=1000, overlap=150)
    ]
    texts = [c.text for c in chunks]
    embedder = LSAEmbedder(dim=128 if quick else 192).fit(texts)
    vectors = stack.vectors
    vectors.drop_collection("python_docs")
    vectors.create_collection(
        "python_docs",
        dim=embedder.dim,
        metric="cosine",
        metadata={"embedder": embedder.name, "embedder_version": embedder.version},
    )
    with _progress(console) as bar:
        task = bar.add_task("embed + upsert", total=len(chunks))
        for i in range(0, len(chunks), 256):
            part = chunks[i : i + 256]
            matrix = embedder.embed([c.text for c in part])
            vectors.upsert(
                "python_docs",
                [
                    {
                        "id": c.id,
                        "vector": matrix[j],
                        "text": c.text,
                        "metadata": {"topic": c.doc_id, "position": c.position},
                    }
                    for j, c in enumerate(part)
                ],
            )
            bar.advance(task, len(part))
    console.print(
        f"   {len(topics)} topics -> {len(chunks)} chunks, embedded with {embedder.name} "
        f"(dim {embedder.dim}) into collection python_docs ({vectors.count('python_docs')} vectors)"
    )
    hits_at3 = {"dense": 0, "keyword": 0, "hybrid": 0}
    latencies: list[float] = []
    table = Table(
        title="rank of the expected topic among the top 3 chunks (- = missed)",
        show_header=True,
        header_style="bold",
        box=None,
        padding=(0, 1),
    )
    table.add_column("query", max_width=44, no_wrap=True, overflow="ellipsis")
    table.add_column("expected")
    for mode in hits_at3:
        table.add_column(mode, justify="center")
    for query, expected in QUERIES:
        qv = embedder.embed([query])[0]
        row = [query, expected]
        for mode in hits_at3:
            t0 = time.perf_counter()
            hits = vectors.search(
                "python_docs",
                None if mode == "keyword" else qv,
                text=None if mode == "dense" else query,
                k=3,
                mode=mode,  # type: ignore[arg-type]
            )
            latencies.append(time.perf_counter() - t0)
            got = [str(h.metadata.get("topic")) for h in hits]
            ok = expected in got
            hits_at3[mode] += ok
            row.append(f"[green]{got.index(expected) + 1}[/]" if ok else "[red]-[/]")
        table.add_row(*row)
    console.print(table)
    flt = vectors.search(
        "python_docs",
        embedder.embed(["loop over items"])[0],
        k=3,
        filter={"topic": {"$in": ["for", "while"]}, "position": {"$lte": 1}},
    )
    console.print(
        "   filtered dense search {topic in \\[for, while], position <= 1}: "
        + ", ".join(f"{h.id} ({h.score:.3f})" for h in flt)
    )
    p50, p99 = _percentiles(latencies)
    n = len(QUERIES)
    console.print(
        "   hit@3: "
        + ", ".join(f"{m} {v}/{n}" for m, v in hits_at3.items())
        + f"; search p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    return {
        "chunks": len(chunks),
        **{f"hit3_{m}": v for m, v in hits_at3.items()},
        "search_p50_ms": p50,
    }


def _summary(console: Console, result: DemoResult) -> None:
    f = result.figures
    table = Table(title="strataml demo: all five stages", show_header=True, header_style="bold")
    table.add_column("stage")
    table.add_column("result")
    table.add_row("ingestion", f"{f['ingest_records_per_s']:,.0f} records/s, idempotent retries")
    table.add_row(
        "feature engineering",
        f"point-in-time join of {f['pit_rows']:,} labels in {f['pit_seconds']:.2f} s",
    )
    table.add_row("batch training", f"AUC {f['auc']:.3f}, scans {f['scan_rows_per_s']:,.0f} rows/s")
    table.add_row(
        "feature serving",
        f"get p50 {f['get_p50_ms'] * 1000:.1f} µs / p99 {f['get_p99_ms'] * 1000:.1f} µs",
    )
    table.add_row(
        "embedding retrieval",
        f"hit@3 dense {f['hit3_dense']}, keyword {f['hit3_keyword']}, hybrid {f['hit3_hybrid']} "
        f"of {len(QUERIES)}",
    )
    console.print(table)
    console.print(f"[bold green]done[/] in {f['total_seconds']:.1f} s")
