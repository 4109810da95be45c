"""Feature statistics: one streaming pass vs numpy, mergeability, sketches' error bounds, and
persistence through the FeatureStore protocol on real engines (DuckDB; PostgreSQL if present)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strataml.errors import InvalidInput, NotFound, SchemaError
from strataml.features.stats import (
    CategoricalStats,
    FeatureStats,
    NumericStats,
    OtherStats,
    StatsRepository,
    TimestampStats,
    _hash_strings,
    compute_stats,
    merge_stats,
    profile_view,
    rank_error_bound,
)
from strataml.local.duckdb_engine import DuckDBEngine
from strataml.local.duckdb_features import DuckDBFeatureStore
from strataml.models import FeatureView
from strataml.protocols import FeatureStore

QS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def _batches(table: pa.Table, sizes: Sequence[int]) -> list[pa.RecordBatch]:
    """``table`` cut into consecutive batches of the given sizes (the rest in a last one)."""
    out, offset = [], 0
    for size in sizes:
        if offset >= table.num_rows:
            break
        out.extend(table.slice(offset, size).to_batches())
        offset += size
    if offset < table.num_rows:
        out.extend(table.slice(offset).to_batches())
    return [b for b in out if b.num_rows]


def _rank_ok(data: np.ndarray, q: float, value: float, eps: float) -> bool:
    """Whether ``value`` is a valid ``q``-quantile of ``data`` up to normalized rank error
    ``eps``: its rank interval ``[#(< v), #(<= v)] / n`` meets ``[q - eps, q + eps]``."""
    s = np.sort(data)
    lo = np.searchsorted(s, value, side="left") / s.size
    hi = np.searchsorted(s, value, side="right") / s.size
    return bool(lo <= q + eps + 1e-12 and hi >= q - eps - 1e-12)


def _numeric(stats: FeatureStats, name: str) -> NumericStats:
    f = stats.features[name]
    assert isinstance(f, NumericStats)
    return f


def _categorical(stats: FeatureStats, name: str) -> CategoricalStats:
    f = stats.features[name]
    assert isinstance(f, CategoricalStats)
    return f


# ------------------------------------------------------------------------ vs numpy
def test_numeric_matches_numpy() -> None:
    rng = np.random.default_rng(7)
    n = 120_000
    x = rng.lognormal(1.0, 0.8, n)
    x[rng.random(n) < 0.01] = np.nan
    x[:3] = [np.inf, -np.inf, np.inf]
    mask = rng.random(n) < 0.05  # nulls
    table = pa.table({"x": pa.array(x, mask=mask), "i": pa.array(rng.integers(0, 8, n))})
    stats = compute_stats(_batches(table, [1000, 7, 30_000, 65_536]), ["x", "i"])
    s = _numeric(stats, "x")
    valid = x[~mask]
    finite = valid[np.isfinite(valid)]
    assert stats.row_count == n
    assert s.null_count == int(mask.sum())
    assert s.nan_count == int(np.isnan(valid).sum())
    assert s.inf_count == int(np.isinf(valid).sum())
    assert s.count == finite.size
    assert s.null_rate == pytest.approx((s.null_count + s.nan_count) / n)
    assert s.mean == pytest.approx(float(np.mean(finite)), rel=1e-12)
    assert s.std == pytest.approx(float(np.std(finite)), rel=1e-10)
    assert (s.min, s.max) == (float(finite.min()), float(finite.max()))
    eps = rank_error_bound(s.sketch.k)
    for q, v in s.quantiles.items():
        assert _rank_ok(finite, q, v, eps), (q, v)
    assert s.histogram is not None
    idx = np.searchsorted(np.asarray(s.histogram.edges), finite, side="right")
    expected = np.bincount(idx, minlength=len(s.histogram.edges) + 1)
    assert s.histogram.counts == expected.tolist()
    # equal-mass bins from the sample: every bin holds a sizeable share of the data
    assert min(s.histogram.counts) > 0.05 * s.count
    ints = _numeric(stats, "i")
    raw = table["i"].to_numpy()
    assert ints.mean == pytest.approx(float(raw.mean()), rel=1e-12)
    # few distinct values: one bin per value, plus underflow and overflow bins
    assert ints.histogram is not None
    assert ints.histogram.edges[:-1] == list(range(8))
    assert ints.histogram.counts == [0, *np.bincount(raw).tolist(), 0]


def test_mean_and_std_are_numerically_stable() -> None:
    # a large offset with a tiny spread: the naive sum-of-squares formula loses every digit
    rng = np.random.default_rng(3)
    x = 1e9 + rng.normal(0, 1e-3, 200_000)
    s = _numeric(compute_stats(pa.table({"x": x}).to_batches(max_chunksize=4096)), "x")
    assert s.std == pytest.approx(float(np.std(x)), rel=1e-6)
    assert s.mean == pytest.approx(float(np.mean(x)), rel=1e-15)


def test_small_inputs_have_exact_quantiles() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=150)
    s = _numeric(compute_stats(pa.table({"x": x}).to_batches(max_chunksize=16)), "x")
    assert s.sketch_exact
    expected = np.quantile(x, QS, method="inverted_cdf")
    assert list(s.quantiles.values()) == pytest.approx(expected.tolist(), abs=0)
    assert s.quantile(0.0) == x.min()
    assert s.quantile(1.0) == x.max()


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    n=st.integers(2_000, 40_000),
    dist=st.sampled_from(["normal", "lognormal", "ints", "sorted", "reversed", "bimodal"]),
    batch=st.integers(100, 20_000),
    seed=st.integers(0, 2**32 - 1),
)
def test_quantile_error_within_documented_bound(n: int, dist: str, batch: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    gens: dict[str, Callable[[], np.ndarray]] = {
        "normal": lambda: rng.normal(size=n),
        "lognormal": lambda: rng.lognormal(0, 2, n),
        "ints": lambda: rng.integers(0, 30, n).astype(float),
        "sorted": lambda: np.sort(rng.normal(size=n)),
        "reversed": lambda: np.sort(rng.normal(size=n))[::-1].copy(),
        "bimodal": lambda: np.concatenate(
            (rng.normal(-5, 1, n // 2), rng.normal(5, 1, n - n // 2))
        ),
    }
    x = gens[dist]()
    # a small sketch (k=50, bound 8 %) so that even these sizes compact many times
    s = _numeric(
        compute_stats(pa.table({"x": x}).to_batches(max_chunksize=batch), sketch_k=50), "x"
    )
    assert not s.sketch_exact
    eps = rank_error_bound(50)
    for q in (*QS, 0.1, 0.33, 0.9):
        v = s.quantile(q)
        assert v is not None
        assert _rank_ok(x, q, v, eps), (q, v)
    assert len(s.sketch.levels) > 1
    items, _ = s.sketch_cdf()
    assert items.size <= 3 * 50 + 2 * len(s.sketch.levels)  # bounded, whatever n is


def test_quantile_bound_at_default_size() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_t(3, 1_000_000)
    s = _numeric(compute_stats(pa.table({"x": x}).to_batches(max_chunksize=65_536)), "x")
    for q, v in s.quantiles.items():
        assert _rank_ok(x, q, v, rank_error_bound()), (q, v)


# -------------------------------------------------------------------- mergeability
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False), st.integers(-5, 5)),
        min_size=1,
        max_size=400,
    ),
    cats=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "", "d'e", "ü"]))),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_merging_any_split_equals_one_pass(
    values: list[float | None], cats: list[str | None], cuts: list[int]
) -> None:
    n = len(values)
    cat_col = (cats * (n // max(len(cats), 1) + 1))[:n] if cats else [None] * n
    table = pa.table(
        {
            "x": pa.array([None if v is None else float(v) for v in values], pa.float64()),
            "c": pa.array(cat_col, pa.string()),
            "t": pa.array(
                [
                    None if v is None else dt.datetime(2024, 1, 1) + dt.timedelta(seconds=int(v))
                    for v in values
                ],
                pa.timestamp("us"),
            ),
        }
    )
    ref = compute_stats(table)
    one = compute_stats(table, reference=ref)
    bounds = sorted({0, *(c for c in cuts if c < n), n})
    parts = [
        compute_stats(table.slice(a, b - a), reference=ref) for a, b in itertools.pairwise(bounds)
    ]
    merged = merge_stats(parts)
    assert merged.row_count == one.row_count == n
    x1, xm = _numeric(one, "x"), _numeric(merged, "x")
    for field in ("count", "null_count", "nan_count", "inf_count", "min", "max", "histogram"):
        assert getattr(xm, field) == getattr(x1, field), field
    if x1.count:
        assert xm.mean == pytest.approx(x1.mean, rel=1e-9, abs=1e-6)
        assert xm.std == pytest.approx(x1.std, rel=1e-9, abs=1e-6)
        finite = np.array([v for v in values if v is not None], dtype=float)
        eps = 0.0 if xm.sketch_exact else rank_error_bound(xm.sketch.k)
        for q, v in xm.quantiles.items():
            assert _rank_ok(finite, q, v, eps)
    else:
        assert xm.mean is None
        assert xm.quantiles == {}
    c1, cm = _categorical(one, "c"), _categorical(merged, "c")
    for field in ("count", "null_count", "null_rate", "top", "other_count", "distinct", "hll"):
        assert getattr(cm, field) == getattr(c1, field), field
    assert cm.reference_counts == c1.reference_counts
    assert merged.features["t"] == one.features["t"]


def test_batch_boundaries_do_not_change_exact_figures() -> None:
    rng = np.random.default_rng(2)
    table = pa.table({"x": rng.normal(size=30_000), "c": rng.choice(["a", "b", "c"], 30_000)})
    a = compute_stats(table.to_batches(max_chunksize=30_000))
    b = compute_stats(_batches(table, [1, 2, 3, 5000, 999]))
    xa, xb = _numeric(a, "x"), _numeric(b, "x")
    assert xa.histogram == xb.histogram  # edges come from the first values in stream order
    assert xa.mean == pytest.approx(xb.mean, rel=1e-12)
    assert (xa.count, xa.min, xa.max) == (xb.count, xb.min, xb.max)
    assert a.features["c"] == b.features["c"]


def test_merge_rejects_incompatible_parts() -> None:
    t1 = pa.table({"x": np.arange(100.0)})
    t2 = pa.table({"x": np.arange(100.0) + 1000})
    a, b = compute_stats(t1), compute_stats(t2)  # each derived its own bin edges
    with pytest.raises(InvalidInput, match="edges"):
        merge_stats([a, b])
    with pytest.raises(InvalidInput):
        merge_stats([])
    with pytest.raises(InvalidInput):
        merge_stats([a, compute_stats(pa.table({"y": [1.0]}))])
    with pytest.raises(InvalidInput):
        merge_stats([a, compute_stats(pa.table({"x": ["s"]}))])
    with pytest.raises(InvalidInput):
        merge_stats([a, a.model_copy(update={"view": "other"})])


# ------------------------------------------------------------------------ categorical
def test_top_k_counts_and_error_bound() -> None:
    rng = np.random.default_rng(4)
    n = 200_000
    ranks = rng.zipf(1.3, n)
    values = np.array([f"cat{r}" for r in ranks])
    table = pa.table({"c": values})
    s = _categorical(compute_stats(table.to_batches(max_chunksize=20_000), top_k=10), "c")
    uniq, counts = np.unique(values, return_counts=True)
    true = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
    assert s.count == n
    assert len(s.top) == 10
    assert s.top_error > 0  # more distinct values than the summary holds
    for cat, est in s.top.items():
        assert est <= true[cat] <= est + s.top_error
    heavy = sorted(true, key=lambda c: -true[c])[:5]
    assert list(s.top)[:5] == heavy
    assert s.other_count == n - sum(s.top.values())
    assert not s.distinct_exact
    assert abs(s.distinct - len(true)) <= 0.06 * len(true)


def test_merged_top_k_stays_within_its_bound() -> None:
    rng = np.random.default_rng(8)
    values = np.array([f"c{r}" for r in rng.zipf(1.5, 60_000)])
    uniq, counts = np.unique(values, return_counts=True)
    true = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
    parts = [compute_stats(pa.table({"c": chunk}), top_k=5) for chunk in np.array_split(values, 3)]
    merged = _categorical(merge_stats(parts), "c")
    assert merged.count == values.size
    assert len(merged.top) == 5
    for cat, est in merged.top.items():
        assert est <= true[cat] <= est + merged.top_error
    assert list(merged.top)[:3] == sorted(true, key=lambda c: -true[c])[:3]
    assert abs(merged.distinct - len(true)) <= 0.06 * len(true)


def test_distinct_estimate_and_exact_small_cardinality() -> None:
    many = pa.table({"c": [f"id-{i}" for i in range(60_000)]})
    s = _categorical(compute_stats(many.to_batches(max_chunksize=8192)), "c")
    assert not s.distinct_exact
    assert abs(s.distinct - 60_000) <= 0.05 * 60_000
    few = pa.table({"c": ["x", "y", None, "x", "", "z"]})
    f = _categorical(compute_stats(few), "c")
    assert f.distinct_exact
    assert f.distinct == 4
    assert f.top == {"x": 2, "": 1, "y": 1, "z": 1}
    assert f.null_count == 1
    assert f.null_rate == pytest.approx(1 / 6)


def test_string_hash_is_layout_independent() -> None:
    words = ["", "a", "ab", "ü", "a" * 300, "ba", "ab "]
    base = _hash_strings(pa.array(words))
    assert len(set(base.tolist())) == len(words)
    for variant in (
        pa.array(words, pa.large_string()),
        pa.array(words, pa.string_view()),
        pa.array(["pad", *words]).slice(1),
    ):
        assert _hash_strings(variant).tolist() == base.tolist()


def test_booleans_dictionaries_and_reference_counts() -> None:
    table = pa.table(
        {
            "b": pa.array([True, False, None, True]),
            "d": pa.array(["u", "v", "u", None]).dictionary_encode(),
        }
    )
    s = compute_stats(table)
    b = _categorical(s, "b")
    assert b.top == {"true": 2, "false": 1}
    assert b.null_count == 1
    d = _categorical(s, "d")
    assert d.top == {"u": 2, "v": 1}
    cur = compute_stats(pa.table({"b": [False] * 3, "d": ["w", "w", "u"]}), reference=s)
    assert _categorical(cur, "b").reference_counts == {"true": 0, "false": 3}
    assert _categorical(cur, "d").reference_counts == {"u": 1, "v": 0}


# ------------------------------------------------------------------ other kinds, empty
def test_arrow_type_coverage() -> None:
    from decimal import Decimal

    table = pa.table(
        {
            "dec": pa.array([Decimal("1.50"), None, Decimal("-2.25")], pa.decimal128(5, 2)),
            "f32": pa.array([1.5, 2.5, None], pa.float32()),
            "u64": pa.array([2**63, 1, 2], pa.uint64()),
            "ls": pa.array(["a", "b", "a"], pa.large_string()),
            "sv": pa.array(["a", None, "a"], pa.string_view()),
            "d64": pa.array([0, 86_400_000, None], pa.date64()),
        }
    )
    s = compute_stats(table)
    dec = _numeric(s, "dec")
    assert (dec.count, dec.min, dec.max, dec.mean) == (2, -2.25, 1.5, pytest.approx(-0.375))
    assert _numeric(s, "f32").mean == pytest.approx(2.0)
    assert _numeric(s, "u64").max == float(2**63)
    assert _categorical(s, "ls").top == {"a": 2, "b": 1}
    assert _categorical(s, "sv").top == {"a": 2}
    d64 = s.features["d64"]
    assert isinstance(d64, TimestampStats)
    assert d64.max == dt.datetime(1970, 1, 2)


def test_timestamps_and_other_types() -> None:
    t0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    table = pa.table(
        {
            "ts": pa.array([t0, None, t0 + dt.timedelta(days=3)], pa.timestamp("us", tz="+02:00")),
            "ns": pa.array([1, 2_000_000_000, None], pa.timestamp("ns")),
            "day": pa.array([dt.date(2024, 1, 2), dt.date(2023, 5, 6), None]),
            "l": pa.array([[1], None, [2, 3]]),
        }
    )
    s = compute_stats(table)
    ts = s.features["ts"]
    assert isinstance(ts, TimestampStats)
    assert ts.min == dt.datetime(2024, 3, 1, 10, 0)  # naive UTC
    assert ts.max == dt.datetime(2024, 3, 4, 10, 0)
    assert (ts.count, ts.null_count) == (2, 1)
    ns = s.features["ns"]
    assert isinstance(ns, TimestampStats)
    assert ns.max == dt.datetime(1970, 1, 1, 0, 0, 2)
    day = s.features["day"]
    assert isinstance(day, TimestampStats)
    assert (day.min, day.max) == (dt.datetime(2023, 5, 6), dt.datetime(2024, 1, 2))
    other = s.features["l"]
    assert isinstance(other, OtherStats)
    assert (other.count, other.null_count) == (2, 1)


def test_all_null_columns() -> None:
    table = pa.table(
        {
            "f": pa.array([None] * 5, pa.float64()),
            "s": pa.array([None] * 5, pa.string()),
            "n": pa.nulls(5),
        }
    )
    s = compute_stats(table.to_batches(max_chunksize=2))
    f = _numeric(s, "f")
    assert (f.count, f.null_count, f.null_rate) == (0, 5, 1.0)
    assert f.mean is f.std is f.min is f.max is None
    assert f.quantiles == {}
    assert f.histogram is None
    assert f.quantile(0.5) is None
    c = _categorical(s, "s")
    assert (c.count, c.null_rate, c.distinct, c.top) == (0, 1.0, 0, {})
    assert isinstance(s.features["n"], OtherStats)
    assert s.features["n"].null_rate == 1.0


def test_empty_input_gives_documented_empty_stats() -> None:
    schema = pa.schema([("x", pa.float64()), ("c", pa.string())])
    reader = pa.RecordBatchReader.from_batches(schema, iter([]))
    s = compute_stats(reader)
    assert s.empty
    assert s.row_count == 0
    x = _numeric(s, "x")
    assert (x.count, x.null_rate, x.mean, x.histogram) == (0, None, None, None)
    assert _categorical(s, "c").null_rate is None
    # with a reference, the histogram exists with zero counts (comparable, and mergeable)
    ref = compute_stats(pa.table({"x": np.arange(50.0), "c": ["a"] * 50}))
    empty = compute_stats(pa.RecordBatchReader.from_batches(schema, iter([])), reference=ref)
    hist = _numeric(empty, "x").histogram
    assert hist is not None
    assert sum(hist.counts) == 0
    assert (
        merge_stats(
            [empty, compute_stats(pa.table({"x": np.arange(50.0), "c": ["a"] * 50}), reference=ref)]
        ).row_count
        == 50
    )


def test_json_round_trip() -> None:
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "x": rng.normal(size=5000),
            "c": rng.choice(["a", "b", 'q"uote'], 5000),
            "t": pa.array([dt.datetime(2024, 1, 1)] * 5000),
            "e": pa.array([None] * 5000, pa.float64()),
        }
    )
    s = compute_stats(table, view="v", version=2, window_start=dt.datetime(2024, 1, 1))
    again = FeatureStats.model_validate_json(s.model_dump_json())
    assert again == s
    assert _numeric(again, "x").quantile(0.5) == _numeric(s, "x").quantile(0.5)


def test_bad_arguments_are_typed_errors() -> None:
    table = pa.table({"x": [1.0, 2.0]})
    for kwargs in (
        {"bins": 0},
        {"top_k": True},
        {"quantiles": [1.5]},
        {"quantiles": "0.5"},
        {"sketch_k": 2},
        {"reference": {"x": 1}},
        {"window_start": "2024-01-01"},
    ):
        with pytest.raises(InvalidInput):
            compute_stats(table, **kwargs)
    with pytest.raises(InvalidInput, match="not in the data"):
        compute_stats(table, ["x", "y"])
    with pytest.raises(InvalidInput, match="twice"):
        compute_stats(table, ["x", "x"])
    with pytest.raises(InvalidInput):
        compute_stats(table, "x")
    with pytest.raises(InvalidInput):
        compute_stats(42)
    with pytest.raises(NotFound):
        compute_stats(table).feature("nope")


# ---------------------------------------------------------------------- persistence
T0 = dt.datetime(2024, 1, 1)


def _source(n: int = 6000, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": rng.integers(0, 50, n),
            "ts": pa.array(
                [T0 + dt.timedelta(minutes=10 * i) for i in range(n)], pa.timestamp("us")
            ),
            "x": rng.normal(size=n) + np.arange(n) / n,
            "c": rng.choice(["a", "b", "it's", '"q"'], n),
        }
    )


def _view(
    store: FeatureStore, version: int = 1, sql: str = "SELECT id, ts, x, c FROM src"
) -> FeatureView:
    return store.register(FeatureView(name="acts", sql=sql, entities=("id",), version=version))


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBFeatureStore]:
    engine = DuckDBEngine(tmp_path / "f.duckdb", threads=1)
    store = DuckDBFeatureStore(engine)
    yield store
    store.close()
    engine.close()


def _persistence_round_trip(store: FeatureStore) -> None:
    store.load("src", _source())
    _view(store)
    repo = StatsRepository(store)
    assert repo.history("acts") == []  # nothing saved yet (no table yet)
    assert repo.latest("acts") is None
    saved = []
    for day in range(4):
        s = profile_view(
            store, "acts", start=T0 + dt.timedelta(days=day), end=T0 + dt.timedelta(days=day + 1)
        )
        repo.save(s)
        saved.append(s)
    _view(store, version=2, sql="SELECT id, ts, x * 2 AS x, c FROM src")
    v2 = profile_view(store, "acts", start=T0, end=T0 + dt.timedelta(days=1))
    assert v2.version == 2
    repo.save(v2)
    history = repo.history("acts", version=1)
    assert history == saved  # exact round trip, oldest first
    assert [h.version for h in repo.history("acts")] == [1, 1, 1, 1, 2]
    assert repo.latest("acts") == v2
    assert repo.latest("acts", version=1) == saved[-1]
    only_x = repo.history("acts", version=1, feature="x")
    assert [list(h.features) for h in only_x] == [["x"]] * 4
    assert only_x[0].features["x"] == saved[0].features["x"]
    assert repo.history("acts", feature="nope") == []
    assert repo.history("other") == []
    # a category with quotes made it through JSON and the engine unchanged
    c = repo.latest("acts", version=1, feature="c")
    assert c is not None
    assert "it's" in _categorical(c, "c").top
    # bad input: typed, raised before anything is written
    with pytest.raises(InvalidInput):
        repo.save(compute_stats(pa.table({"x": [1.0]})))  # no view/version
    with pytest.raises(InvalidInput):
        repo.history("")
    with pytest.raises(InvalidInput):
        repo.history("acts", version="1")  # type: ignore[arg-type]
    assert len(repo.history("acts")) == 5


def test_persistence_round_trip_on_duckdb(duck: DuckDBFeatureStore) -> None:
    _persistence_round_trip(duck)


def test_corrupt_rows_are_schema_errors(duck: DuckDBFeatureStore) -> None:
    duck.load("src", _source(200))
    _view(duck)
    repo = StatsRepository(duck)
    repo.save(profile_view(duck, "acts"))
    duck.sql(f"UPDATE {repo.table} SET stats = '{{\"kind\": \"numeric\"}}' WHERE feature = 'x'")
    with pytest.raises(SchemaError, match="'x'"):
        repo.history("acts")


def test_profile_view_equals_stats_of_the_window(duck: DuckDBFeatureStore) -> None:
    src = _source()
    duck.load("src", src)
    _view(duck)
    start, end = T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)
    s = profile_view(duck, "acts", start=start, end=end, bins=5, top_k=3, batch_size=100)
    ts = src["ts"].to_numpy()
    rows = src.filter(pa.array((ts >= np.datetime64(start)) & (ts < np.datetime64(end))))
    direct = compute_stats(rows, ["x", "c"], bins=5, top_k=3)
    assert (s.view, s.version, s.window_start, s.window_end) == ("acts", 1, start, end)
    assert s.row_count == rows.num_rows == 144
    assert list(s.features) == ["x", "c"]
    assert _numeric(s, "x").mean == pytest.approx(_numeric(direct, "x").mean, rel=1e-12)
    assert _numeric(s, "x").count == _numeric(direct, "x").count
    assert s.features["c"] == direct.features["c"]
    empty = profile_view(duck, "acts", start=T0 - dt.timedelta(days=9), end=T0)
    assert empty.empty
    with pytest.raises(NotFound):
        profile_view(duck, "nope")


# ------------------------------------------------------------ PostgreSQL (optional)
@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("strataml_postgres")
    from strataml.dev.servers import start_postgres, stop
    from strataml.errors import ConfigError

    try:
        handle = start_postgres(tmp_path_factory.mktemp("pg"), durable=False)
    except ConfigError as exc:  # no PostgreSQL binaries on this machine
        pytest.skip(f"PostgreSQL is not available: {exc}")
    yield handle.url
    stop(handle)


def test_persistence_round_trip_on_postgres(pg_url: str) -> None:
    import uuid

    from strataml.registry import StackContext
    from strataml_postgres import PostgresConfig, database
    from strataml_postgres.features import PostgresFeatureStore

    ctx = StackContext()
    try:
        db = database(
            PostgresConfig(type="postgres", url=pg_url, schema=f"t_{uuid.uuid4().hex[:10]}"), ctx
        )
        store = PostgresFeatureStore(db)
        assert store.dialect != "duckdb"  # the SQL really is transpiled
        _persistence_round_trip(store)
        store.close()
    finally:
        ctx.close()
