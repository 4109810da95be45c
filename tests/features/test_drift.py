"""Drift: PSI and KS against hand-computed values and known distributions, statuses from
thresholds, features_drift over a real DuckDB feature store, and the CLI entry point."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from strataml.errors import InvalidInput, NotFound
from strataml.features.drift import (
    DriftConfig,
    DriftReport,
    DriftThresholds,
    _kolmogorov_series,
    drift,
    features_drift,
    kolmogorov_sf,
    ks_pvalue,
    ks_statistic,
    parse_window,
    psi,
    run_drift_cli,
)
from strataml.features.stats import FeatureStats, StatsRepository, compute_stats, profile_view
from strataml.local.duckdb_engine import DuckDBEngine
from strataml.local.duckdb_features import DuckDBFeatureStore
from strataml.models import FeatureView


def _stats(
    seed: int, n: int, *, shift: float = 0.0, probs: tuple[float, ...] = (0.5, 0.3, 0.2), **kw: Any
) -> FeatureStats:
    rng = np.random.default_rng(seed)
    cats = ["a", "b", "c", "d"][: len(probs)]
    return compute_stats(
        pa.table({"x": rng.normal(shift, 1.0, n), "c": rng.choice(cats, n, p=list(probs))}), **kw
    )


# ------------------------------------------------------------------------------ metrics
def test_psi_matches_hand_computation() -> None:
    eps = 1e-4
    p = [(0.5 + eps) / (1 + 2 * eps), (0.5 + eps) / (1 + 2 * eps)]
    q = [(0.9 + eps) / (1 + 2 * eps), (0.1 + eps) / (1 + 2 * eps)]
    expected = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert psi([50, 50], [90, 10]) == pytest.approx(expected, rel=1e-12)
    # unsmoothed: 0.4 ln(0.9 / 0.5) + 0.4 ln(0.5 / 0.1) = 0.8789; smoothing shaves a little
    assert psi([50, 50], [90, 10]) == pytest.approx(0.8789, abs=1e-3)
    assert psi([3, 5, 0], [6, 10, 0]) == pytest.approx(0.0, abs=1e-15)
    # an empty bin stays finite thanks to the smoothing
    assert math.isfinite(psi([10, 0], [0, 10]))
    for bad in (([1, 2], [1]), ([], []), ([-1, 2], [1, 2]), ([0, 0], [1, 1])):
        with pytest.raises(InvalidInput):
            psi(*bad)


def test_ks_statistic_by_hand_and_vs_scipy() -> None:
    # F_a steps at 1,2,3 (thirds); F_b at 2,3,4,5 (quarters). At x=1: |1/3 - 0| = 1/3;
    # x=2: |2/3 - 1/4| = 5/12; x=3: |1 - 1/2| = 1/2; x=4: |1 - 3/4| = 1/4 -> D = 1/2
    assert ks_statistic([1, 2, 3], [2, 3, 4, 5]) == pytest.approx(0.5)
    assert ks_statistic([1.0, 2.0], [1.0, 2.0]) == 0.0
    with pytest.raises(InvalidInput):
        ks_statistic([], [1.0])
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=3000), rng.normal(0.1, 1.2, 2000)
    assert ks_statistic(a, b) == pytest.approx(scipy_stats.ks_2samp(a, b).statistic, abs=1e-15)


def test_kolmogorov_distribution_with_and_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    # reference values of Q(x) = P(K > x) (Kolmogorov 1933 tables)
    known = {0.5: 0.9639452436648751, 1.0: 0.26999967167735456, 1.36: 0.0494859}
    for x, q in known.items():
        assert _kolmogorov_series(x) == pytest.approx(q, abs=5e-6)
    assert _kolmogorov_series(0.0) == 1.0
    assert _kolmogorov_series(10.0) == pytest.approx(0.0, abs=1e-80)
    special = pytest.importorskip("scipy.special")
    for x in np.linspace(0.05, 3.5, 70):
        assert _kolmogorov_series(float(x)) == pytest.approx(
            float(special.kolmogorov(x)), abs=1e-12
        )
    with_scipy = kolmogorov_sf(1.1)
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # import now raises ImportError
    assert kolmogorov_sf(1.1) == pytest.approx(with_scipy, abs=1e-12)
    # Stephens-corrected p-value: D = 1.36 / sqrt(en) is roughly the 5 % critical value
    n = m = 2000
    en = math.sqrt(n * m / (n + m))
    assert ks_pvalue(1.36 / en, n, m) == pytest.approx(0.05, abs=0.005)
    with pytest.raises(InvalidInput):
        ks_pvalue(0.1, 0, 5)


# ------------------------------------------------------------------ known distributions
def test_identical_distributions_are_ok() -> None:
    base = _stats(1, 50_000)
    same = _stats(2, 40_000, reference=base)
    report = drift(base, same)
    assert not report.drifted
    assert report.status == "ok"
    x, c = report.features["x"], report.features["c"]
    assert x.psi is not None and x.psi < 0.01
    assert x.psi_exact
    assert x.ks is not None and x.ks < 0.03
    assert not x.ks_exact
    assert x.ks_pvalue is not None and x.ks_pvalue > 0.05
    assert c.psi is not None and c.psi < 0.01
    assert c.psi_exact
    assert c.new_categories == {}


def test_shifted_distribution_alerts() -> None:
    base = _stats(1, 50_000)
    shifted = _stats(3, 50_000, shift=1.0, probs=(0.1, 0.2, 0.7), reference=base)
    report = drift(base, shifted)
    assert report.drifted
    assert report.alerts == ["x", "c"]
    x = report.features["x"]
    assert x.status == "alert"
    assert x.psi is not None and x.psi > 0.25
    # N(0,1) vs N(1,1): KS = 2 * Phi(0.5) - 1 = 0.3829
    assert x.ks == pytest.approx(0.3829, abs=x.ks_error_bound + 0.01)
    assert x.ks_pvalue is not None and x.ks_pvalue < 1e-6
    assert any("psi" in r for r in x.reasons)
    assert any("ks" in r for r in x.reasons)


def test_sketch_ks_is_exact_for_small_samples_and_bounded_otherwise() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=150), rng.normal(0.3, 1, 120)
    small = drift(compute_stats(pa.table({"x": a})), compute_stats(pa.table({"x": b})))
    assert small.features["x"].ks_exact
    assert small.features["x"].ks == pytest.approx(ks_statistic(a, b), abs=1e-15)
    big_a, big_b = rng.normal(size=200_000), rng.normal(0.05, 1, 150_000)
    big = drift(compute_stats(pa.table({"x": big_a})), compute_stats(pa.table({"x": big_b})))
    f = big.features["x"]
    assert not f.ks_exact
    assert f.ks_error_bound == pytest.approx(0.04)
    assert f.ks is not None
    assert abs(f.ks - ks_statistic(big_a, big_b)) <= f.ks_error_bound


def test_psi_without_reference_is_approximate_but_close() -> None:
    base = _stats(1, 50_000)
    shifted_ref = _stats(4, 50_000, shift=0.5, reference=base)
    shifted_own = _stats(4, 50_000, shift=0.5)  # own bin edges: counts read off the sketch
    exact = drift(base, shifted_ref).features["x"]
    approx = drift(base, shifted_own).features["x"]
    assert exact.psi_exact
    assert not approx.psi_exact
    assert approx.psi == pytest.approx(exact.psi, abs=0.03)


def test_new_categories_are_flagged() -> None:
    base = compute_stats(pa.table({"c": ["a"] * 60 + ["b"] * 40}))
    cur = compute_stats(pa.table({"c": ["a"] * 50 + ["b"] * 30 + ["new"] * 20}), reference=base)
    f = drift(base, cur).features["c"]
    assert f.new_categories == {"new": 0.2}
    assert f.status == "alert"  # 20 % moved into the baseline's (empty) "other" bin
    assert f.psi is not None and f.psi > 0.25
    assert f.psi_exact


def test_null_rate_changes_and_all_null_windows() -> None:
    base = compute_stats(pa.table({"x": pa.array([1.0, 2.0, 3.0, 4.0] * 25)}))
    more_nulls = compute_stats(
        pa.table({"x": pa.array([1.0, 2.0, 3.0, None] * 25)}), reference=base
    )
    f = drift(base, more_nulls).features["x"]
    assert f.null_rate_current == pytest.approx(0.25)
    assert f.status == "alert"
    assert any("null rate" in r for r in f.reasons)
    all_null = compute_stats(pa.table({"x": pa.array([None] * 10, pa.float64())}), reference=base)
    g = drift(base, all_null).features["x"]
    assert g.psi is None
    assert g.ks is None
    assert g.status == "alert"


def test_features_that_appear_disappear_or_change_kind() -> None:
    base = compute_stats(pa.table({"x": [1.0, 2.0], "gone": [1, 2], "k": [1.0, 2.0]}))
    cur = compute_stats(pa.table({"x": [1.0, 2.0], "k": ["u", "v"], "new": [3, 4]}))
    report = drift(base, cur)
    assert list(report.features) == ["x", "gone", "k", "new"]
    assert report.features["gone"].presence == "baseline_only"
    assert report.features["gone"].status == "alert"
    assert report.features["new"].presence == "current_only"
    assert report.features["new"].status == "warn"
    assert report.features["k"].status == "alert"
    assert "kind changed" in report.features["k"].reasons[0]
    assert report.features["x"].status == "ok"
    assert report.alerts == ["gone", "k"]
    assert report.warnings == ["new"]


def test_empty_windows_are_refused() -> None:
    schema = pa.schema([("x", pa.float64())])
    empty = compute_stats(pa.RecordBatchReader.from_batches(schema, iter([])))
    full = compute_stats(pa.table({"x": [1.0]}))
    with pytest.raises(InvalidInput, match="current window"):
        drift(full, empty)
    with pytest.raises(InvalidInput, match="baseline window"):
        drift(empty, full)
    with pytest.raises(InvalidInput):
        drift(full, {"x": 1})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        drift(full, full, thresholds={"psi_alert": 1})  # type: ignore[arg-type]


def test_thresholds_config_and_overrides() -> None:
    with pytest.raises(ValidationError):
        DriftThresholds(psi_warn=0.5, psi_alert=0.1)
    with pytest.raises(ValidationError):
        DriftThresholds(ks_alert=-1)
    with pytest.raises(ValidationError):
        DriftConfig.model_validate({"psi_alert": 0.3, "unknown": 1})
    cfg = DriftConfig.model_validate(
        {
            "psi_warn": 0.05,
            "psi_alert": 0.5,
            "features": {
                "x": {"psi_alert": 5.0, "ks_alert": 1.0, "ks_warn": 1.0},
                "v:x": {"psi_warn": 4.0},
            },
        }
    )
    t = cfg.thresholds_for("v", "x")
    assert (t.psi_warn, t.psi_alert, t.ks_alert) == (4.0, 5.0, 1.0)
    assert cfg.thresholds_for("w", "x").psi_warn == 0.05
    assert cfg.thresholds_for("v", "y") == DriftThresholds(psi_warn=0.05, psi_alert=0.5)
    with pytest.raises(InvalidInput):
        DriftConfig.model_validate({"features": {"x": {"psi_warn": 9.0}}}).thresholds_for("v", "x")
    base = _stats(1, 20_000)
    shifted = _stats(3, 20_000, shift=1.0, reference=base).model_copy(update={"view": "v"})
    base = base.model_copy(update={"view": "v"})
    assert drift(base, shifted).features["x"].status == "alert"
    assert drift(base, shifted, thresholds=cfg).features["x"].status == "ok"
    assert drift(base, shifted, thresholds=cfg).features["x"].thresholds.psi_alert == 5.0


def test_report_round_trips_and_summarises() -> None:
    base = _stats(1, 5000)
    report = drift(base, _stats(3, 5000, shift=1.0, reference=base))
    again = DriftReport.model_validate_json(report.model_dump_json())
    assert again == report
    text = report.summary()
    assert "x" in text.splitlines()[1]
    assert "alert" in text
    assert text.splitlines()[-1].startswith("stats: 1 alert(s)")


# ------------------------------------------------------------------- from a feature store
T0 = dt.datetime(2024, 1, 1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBFeatureStore]:
    engine = DuckDBEngine(tmp_path / "f.duckdb", threads=1)
    s = DuckDBFeatureStore(engine)
    rng = np.random.default_rng(0)
    n = 14 * 24 * 6  # two weeks, every 10 minutes
    ts = [T0 + dt.timedelta(minutes=10 * i) for i in range(n)]
    second_week = np.arange(n) >= n // 2
    s.load(
        "events",
        pa.table(
            {
                "id": rng.integers(0, 30, n),
                "ts": pa.array(ts, pa.timestamp("us")),
                "x": rng.normal(0, 1, n) + 2.0 * second_week,
                "stable": rng.normal(5, 2, n),
                "c": rng.choice(["web", "ios", "android"], n),
            }
        ),
    )
    s.register(
        FeatureView(name="acts", sql="SELECT id, ts, x, stable, c FROM events", entities=("id",))
    )
    yield s
    s.close()
    engine.close()


def test_features_drift_between_windows(store: DuckDBFeatureStore) -> None:
    same = features_drift(
        store, "acts", baseline=(T0, T0 + 3 * DAY), current=(T0 + 3 * DAY, T0 + 6 * DAY)
    )
    assert not same.drifted
    assert same.features["x"].psi_exact
    moved = features_drift(store, "acts", baseline=(T0, T0 + 7 * DAY), current=(T0 + 7 * DAY, None))
    assert moved.drifted
    assert moved.alerts == ["x"]
    assert moved.features["stable"].status == "ok"
    assert moved.current_window == (T0 + 7 * DAY, None)
    assert (moved.view, moved.baseline_version) == ("acts", 1)
    with pytest.raises(InvalidInput, match="no rows"):
        features_drift(store, "acts", baseline=(T0, T0 + DAY), current=(T0 + 99 * DAY, None))
    with pytest.raises(InvalidInput):
        features_drift(store, "acts", baseline=(T0,), current=(T0, None))  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        features_drift(store, "nope", baseline=(None, None), current=(None, None))


def test_latest_stats_baseline_and_saving(store: DuckDBFeatureStore) -> None:
    repo = StatsRepository(store)
    with pytest.raises(NotFound, match="no saved stats"):
        features_drift(store, "acts", baseline="latest-stats", current=(T0, None))
    repo.save(profile_view(store, "acts", start=T0, end=T0 + 7 * DAY))
    report = features_drift(
        store, "acts", baseline="latest-stats", current=(T0 + 7 * DAY, None), save=True
    )
    assert report.alerts == ["x"]
    assert report.baseline_window == (T0, T0 + 7 * DAY)
    history = repo.history("acts")
    assert len(history) == 2
    assert history[-1].window_start == T0 + 7 * DAY


def test_parse_window() -> None:
    now = dt.datetime(2024, 5, 10, 12, 0)
    assert parse_window("2024-01-01:2024-02-01", now=now) == (
        dt.datetime(2024, 1, 1),
        dt.datetime(2024, 2, 1),
    )
    assert parse_window("2024-01-01T06:30:00:2024-01-02T00:00", now=now) == (
        dt.datetime(2024, 1, 1, 6, 30),
        dt.datetime(2024, 1, 2),
    )
    assert parse_window("2024-01-01T00:00+02:00..2024-01-02", now=now)[0] == dt.datetime(
        2023, 12, 31, 22
    )
    assert parse_window("-7d:now", now=now) == (now - dt.timedelta(days=7), now)
    assert parse_window("now-36h..", now=now) == (now - dt.timedelta(hours=36), None)
    assert parse_window(":2024-01-01", now=now) == (None, dt.datetime(2024, 1, 1))
    assert parse_window(":", now=now) == (None, None)
    for bad in ("2024-02-01:2024-01-01", "yesterday:today", "a..b..c", "2024-01-01", "-7x:"):
        with pytest.raises(InvalidInput):
            parse_window(bad, now=now)
    with pytest.raises(InvalidInput, match="does not parse"):
        parse_window("2024-01-01T10:2024-13-02", now=now)


def test_cli_exit_codes(store: DuckDBFeatureStore) -> None:
    out: list[str] = []
    err: list[str] = []

    def run(**kw: object) -> int:
        out.clear()
        err.clear()
        return run_drift_cli(store, "acts", echo=out.append, echo_err=err.append, **kw)  # type: ignore[arg-type]

    assert run(baseline="2024-01-01:2024-01-04", current="2024-01-04..2024-01-07") == 0
    assert "0 alert(s)" in out[-1]
    assert run(baseline="2024-01-01:2024-01-08", current="2024-01-08:") == 1
    assert "x" in "\n".join(out)
    assert run(baseline="2024-01-01:2024-01-08", current="2024-01-08:", as_json=True) == 1
    doc = json.loads(out[0])
    assert doc["features"]["x"]["status"] == "alert"
    # per-feature overrides from the profile's [drift] table silence the alert
    quiet = {"features": {"x": {"psi_alert": 100, "psi_warn": 100, "ks_alert": 1, "ks_warn": 1}}}
    assert run(baseline="2024-01-01:2024-01-08", current="2024-01-08:", config=quiet) == 0
    # fail on warnings too
    warn_only = {"features": {"x": {"psi_alert": 100, "ks_alert": 1, "ks_warn": 1}}}
    assert run(baseline="2024-01-01:2024-01-08", current="2024-01-08:", config=warn_only) == 0
    assert (
        run(
            baseline="2024-01-01:2024-01-08",
            current="2024-01-08:",
            config=warn_only,
            fail_on="warn",
        )
        == 1
    )
    # errors: message on stderr, exit 2, nothing raised
    assert run(baseline="nonsense", current="2024-01-08:") == 2
    assert err and err[0].startswith("error:")
    assert run(baseline="latest-stats", current="2024-01-08:") == 2
    assert "no saved stats" in err[0]
    assert run(baseline=":", current="2030-01-01:") == 2
    assert run(baseline=":", current=":", config={"psi_alert": "high"}) == 2
    assert run(baseline=":", current=":", fail_on="never") == 2
    assert run_drift_cli(store, "missing", baseline=":", current=":", echo_err=err.append) == 2
