"""Drift between two windows of a feature view: PSI and Kolmogorov-Smirnov per feature.

:func:`drift` compares two :class:`~strataml.features.stats.FeatureStats` (a baseline and a
current window) feature by feature:

* **PSI** (population stability index) ``sum((q - p) * ln(q / p))`` over bins, with each share
  smoothed as ``(c / n + eps) / (1 + bins * eps)`` (``eps = 1e-4``) so empty bins stay finite.
  Numeric: the baseline's histogram bins; exact when the current stats were computed with the
  baseline as ``reference`` (same edges; :func:`features_drift` does that), otherwise the
  current counts are read off its quantile sketch (``psi_exact=False``). Categorical: the
  baseline's top-k categories plus one "other" bin; exact with ``reference`` counts or when
  both top-k lists are complete.
* **KS** (numeric only): ``sup |F_baseline - F_current|``, computed from the two quantile
  sketches' CDFs at every point they hold. While a sketch still holds all its values (fewer
  than ``sketch_k``) its CDF is the empirical one and the statistic is exact (``ks_exact``);
  otherwise it is within ``ks_error_bound`` = ``rank_error_bound(k_base) +
  rank_error_bound(k_cur)`` (4 % with the defaults) of the exact two-sample statistic. For
  raw samples use :func:`ks_statistic`. The p-value is the asymptotic Kolmogorov distribution at
  ``(sqrt(en) + 0.12 + 0.11 / sqrt(en)) * D`` with ``en = n m / (n + m)`` (Stephens'
  correction; ``scipy.special.kolmogorov`` when SciPy is installed, else the series, which
  agree to ~1e-12). For a sketched statistic the p-value is that of ``D - ks_error_bound``: an
  upper bound of the exact test's p-value (the sketch error must not look significant). With
  millions of rows any real difference is "significant": thresholds apply to the statistic,
  the p-value is informational.
* **null rate**: the absolute change in the share of null (or NaN) values.

Each metric at or above its ``warn``/``alert`` threshold (:class:`DriftThresholds`) sets the
feature's status; the worst wins. A feature only in the baseline is an ``alert`` (the model
still expects it), one only in the current stats a ``warn``; a feature whose kind changed
(numeric <-> categorical) is an ``alert``. ``report.drifted`` is true when any feature alerts.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from strataml._time import to_utc_naive, utcnow
from strataml.errors import InvalidInput, NotFound, StrataError
from strataml.features.stats import (
    DEFAULT_QUANTILES,
    CategoricalStats,
    FeatureStats,
    NumericStats,
    StatsRepository,
    profile_view,
    rank_error_bound,
)
from strataml.models import FeatureView
from strataml.protocols import FeatureStore

__all__ = [
    "DriftConfig",
    "DriftReport",
    "DriftThresholds",
    "FeatureDrift",
    "ThresholdOverride",
    "Window",
    "drift",
    "features_drift",
    "kolmogorov_sf",
    "ks_pvalue",
    "ks_statistic",
    "parse_window",
    "psi",
    "run_drift_cli",
]

#: An event-time window ``[start, end)``; ``None`` leaves that side open.
Window = tuple[dt.datetime | None, dt.datetime | None]
Status = Literal["ok", "warn", "alert"]
_RANK = {"ok": 0, "warn": 1, "alert": 2}
PSI_EPS = 1e-4


# ----------------------------------------------------------------------------- config
class DriftThresholds(BaseModel):
    """When a metric sets ``warn`` or ``alert`` (a value at or above the threshold).

    Defaults: PSI 0.1 / 0.25 (the usual "moderate" / "significant shift"), KS 0.1 / 0.2, null
    rate change 0.05 / 0.2 (absolute). Errors: :class:`pydantic.ValidationError` for negative
    values or ``warn > alert``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi_warn: float = Field(default=0.1, ge=0)
    psi_alert: float = Field(default=0.25, ge=0)
    ks_warn: float = Field(default=0.1, ge=0, le=1)
    ks_alert: float = Field(default=0.2, ge=0, le=1)
    null_rate_warn: float = Field(default=0.05, ge=0, le=1)
    null_rate_alert: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> DriftThresholds:
        for metric in ("psi", "ks", "null_rate"):
            if getattr(self, f"{metric}_warn") > getattr(self, f"{metric}_alert"):
                raise ValueError(f"{metric}_warn must not exceed {metric}_alert")
        return self


class ThresholdOverride(BaseModel):
    """Per-feature overrides of some thresholds (the rest come from the enclosing config)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi_warn: float | None = Field(default=None, ge=0)
    psi_alert: float | None = Field(default=None, ge=0)
    ks_warn: float | None = Field(default=None, ge=0, le=1)
    ks_alert: float | None = Field(default=None, ge=0, le=1)
    null_rate_warn: float | None = Field(default=None, ge=0, le=1)
    null_rate_alert: float | None = Field(default=None, ge=0, le=1)


class DriftConfig(DriftThresholds):
    """The ``[drift]`` table of a profile: default thresholds, how stats are binned, and
    per-feature overrides keyed ``"view:feature"`` or ``"feature"`` (the former wins)::

        [drift]
        psi_alert = 0.3
        bins = 10
        top_k = 20

        [drift.features."user_activity_7d:clicks"]
        psi_alert = 0.5
    """

    bins: int = Field(default=10, ge=1)
    top_k: int = Field(default=20, ge=1)
    features: dict[str, ThresholdOverride] = Field(default_factory=dict)

    def thresholds_for(self, view: str | None, feature: str) -> DriftThresholds:
        """The thresholds for one feature: overrides applied over the defaults."""
        base = {k: getattr(self, k) for k in DriftThresholds.model_fields}
        for key in (feature, f"{view}:{feature}"):
            override = self.features.get(key)
            if override is not None:
                base.update(override.model_dump(exclude_none=True))
        try:
            return DriftThresholds(**base)
        except ValidationError as exc:
            raise InvalidInput(f"drift thresholds for {view}:{feature}: {exc}") from exc


# ----------------------------------------------------------------------------- results
class FeatureDrift(BaseModel):
    """Drift of one feature. ``presence`` says which side has it; metrics are ``None`` when
    they do not apply (categorical KS, timestamps, a side without values). ``reasons`` lists
    each threshold crossed; ``new_categories`` maps categories frequent now but not among the
    baseline's top-k (never seen at all when the baseline's top-k was complete) to their
    share of the current window."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature: str
    kind: str | None
    status: Status
    presence: Literal["both", "baseline_only", "current_only"] = "both"
    psi: float | None = None
    psi_exact: bool = True
    ks: float | None = None
    ks_pvalue: float | None = None
    ks_exact: bool = True
    ks_error_bound: float = 0.0
    null_rate_baseline: float | None = None
    null_rate_current: float | None = None
    new_categories: dict[str, float] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)


class DriftReport(BaseModel):
    """Per-feature drift between a baseline and a current window (JSON round-trips)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    view: str | None
    baseline_version: int | None
    current_version: int | None
    baseline_window: Window
    current_window: Window
    baseline_rows: int
    current_rows: int
    computed_at: dt.datetime
    features: dict[str, FeatureDrift]

    @property
    def status(self) -> Status:
        """The worst feature status (``ok`` when there are no features)."""
        worst: Status = "ok"
        for f in self.features.values():
            if _RANK[f.status] > _RANK[worst]:
                worst = f.status
        return worst

    @property
    def drifted(self) -> bool:
        """Whether any feature is at ``alert``."""
        return self.status == "alert"

    @property
    def alerts(self) -> list[str]:
        return [n for n, f in self.features.items() if f.status == "alert"]

    @property
    def warnings(self) -> list[str]:
        return [n for n, f in self.features.items() if f.status == "warn"]

    def summary(self) -> str:
        """A plain-text table, one line per feature, then the verdict."""
        head = f"{'feature':<24} {'kind':<11} {'status':<6} {'psi':>8} {'ks':>7} {'p':>9} "
        lines = [head + f"{'null%':>13}  notes"]
        for f in self.features.values():
            nulls = (
                f"{_pct(f.null_rate_baseline)}->{_pct(f.null_rate_current)}"
                if f.presence == "both"
                else "-"
            )
            notes = "; ".join(f.reasons)
            if f.new_categories:
                shown = ", ".join(list(f.new_categories)[:3])
                notes = "; ".join(x for x in (notes, f"new categories: {shown}") if x)
            lines.append(
                f"{f.feature:<24} {f.kind or '-':<11} {f.status:<6} {_num(f.psi, 8)} "
                f"{_num(f.ks, 7)} {_num(f.ks_pvalue, 9, 'g')} {nulls:>13}  {notes}"
            )
        lines.append(
            f"{self.view or 'stats'}: {len(self.alerts)} alert(s), {len(self.warnings)} warning(s) "
            f"over {len(self.features)} feature(s); baseline {self.baseline_rows} rows, "
            f"current {self.current_rows} rows"
        )
        return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _num(v: float | None, width: int, spec: str = ".4f") -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}{'.3' if spec == 'g' else ''}{spec}}"


# ----------------------------------------------------------------------------- metrics
def psi(expected: Any, actual: Any, *, eps: float = PSI_EPS) -> float:
    """Population stability index of ``actual`` counts against ``expected`` counts (same bins).

    Shares are smoothed as ``(c / n + eps) / (1 + bins * eps)``. Errors: :class:`InvalidInput`
    for different lengths, negative counts or an empty side.
    """
    p = np.asarray(expected, dtype=float)
    q = np.asarray(actual, dtype=float)
    if p.shape != q.shape or p.ndim != 1 or not p.size:
        raise InvalidInput("psi: expected and actual must be equally long, non-empty counts")
    if (p < 0).any() or (q < 0).any() or p.sum() <= 0 or q.sum() <= 0:
        raise InvalidInput("psi: counts must be non-negative with a positive total")
    ps = (p / p.sum() + eps) / (1 + p.size * eps)
    qs = (q / q.sum() + eps) / (1 + q.size * eps)
    return float(np.sum((qs - ps) * np.log(qs / ps)))


def ks_statistic(a: Any, b: Any) -> float:
    """The exact two-sample Kolmogorov-Smirnov statistic of two raw samples (NaNs dropped)."""
    x = np.sort(np.asarray(a, dtype=float))
    y = np.sort(np.asarray(b, dtype=float))
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if not x.size or not y.size:
        raise InvalidInput("ks_statistic: both samples need at least one value")
    return _ks_weighted(x, np.arange(1, x.size + 1.0), y, np.arange(1, y.size + 1.0))


def _ks_weighted(xa: np.ndarray, ca: np.ndarray, xb: np.ndarray, cb: np.ndarray) -> float:
    """``sup |Fa - Fb|`` for step CDFs given as sorted points and cumulative weights."""
    points = np.concatenate((xa, xb))
    fa = _step(xa, ca, points)
    fb = _step(xb, cb, points)
    return float(np.max(np.abs(fa - fb)))


def _step(items: np.ndarray, cum: np.ndarray, at: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(items, at, side="right")
    result: np.ndarray = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0) / cum[-1]
    return result


def kolmogorov_sf(x: float) -> float:
    """The Kolmogorov distribution's survival function ``Q(x) = P(K > x)``:
    ``scipy.special.kolmogorov`` when SciPy is installed, else the series (Jacobi theta form
    below 1.18, the alternating series above)."""
    try:
        from scipy.special import kolmogorov  # type: ignore[import-untyped]
    except ImportError:
        return _kolmogorov_series(x)
    return float(kolmogorov(x))


def _kolmogorov_series(x: float) -> float:
    if x <= 0:
        return 1.0
    if x < 1.18:
        y = math.exp(-(math.pi**2) / (8 * x * x))
        cdf = math.sqrt(2 * math.pi) / x * sum(y ** ((2 * j - 1) ** 2) for j in range(1, 6))
        return min(1.0, max(0.0, 1.0 - cdf))
    total = 0.0
    for j in range(1, 101):
        term = 2.0 * (-1) ** (j - 1) * math.exp(-2.0 * j * j * x * x)
        total += term
        if abs(term) < 1e-18:
            break
    return min(1.0, max(0.0, total))


def ks_pvalue(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of a two-sample KS statistic ``d`` for sizes ``n``, ``m``
    (Stephens' small-sample correction)."""
    if n <= 0 or m <= 0:
        raise InvalidInput("ks_pvalue: both sample sizes must be positive")
    en = math.sqrt(n * m / (n + m))
    return kolmogorov_sf((en + 0.12 + 0.11 / en) * d)


# ------------------------------------------------------------------------------- drift
def _status(value: float | None, warn: float, alert: float, label: str, out: list[str]) -> Status:
    if value is None:
        return "ok"
    if value >= alert:
        out.append(f"{label} {value:.3g} >= {alert:g}")
        return "alert"
    if value >= warn:
        out.append(f"{label} {value:.3g} >= {warn:g}")
        return "warn"
    return "ok"


def _worst(*statuses: Status) -> Status:
    return max(statuses, key=lambda s: _RANK[s])


def _numeric_psi(base: NumericStats, cur: NumericStats) -> tuple[float | None, bool]:
    hist = base.histogram
    if hist is None or base.count == 0 or cur.count == 0:
        return None, True
    if cur.histogram is not None and cur.histogram.edges == hist.edges:
        return psi(hist.counts, cur.histogram.counts), True
    items, cum = cur.sketch_cdf()
    idx = np.searchsorted(items, np.asarray(hist.edges, dtype=float), side="left")
    below = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
    masses = np.diff(np.concatenate(([0.0], below, [cum[-1]])))
    return psi(hist.counts, masses), cur.sketch_exact


def _numeric_ks(base: NumericStats, cur: NumericStats) -> dict[str, Any]:
    if base.count == 0 or cur.count == 0:
        return {}
    d = _ks_weighted(*base.sketch_cdf(), *cur.sketch_cdf())
    bound = sum(0.0 if s.sketch_exact else rank_error_bound(s.sketch.k) for s in (base, cur))
    return {
        "ks": d,
        "ks_pvalue": ks_pvalue(max(0.0, d - bound), base.count, cur.count),
        "ks_exact": bound == 0.0,
        "ks_error_bound": bound,
    }


def _categorical_psi(
    base: CategoricalStats, cur: CategoricalStats
) -> tuple[float | None, bool, dict[str, float]]:
    new = {c: n / cur.count for c, n in cur.top.items() if c not in base.top and cur.count}
    if base.count == 0 or cur.count == 0:
        return None, True, new
    cats = list(base.top)
    refs = cur.reference_counts
    if refs is not None and all(c in refs for c in cats):
        counts = [refs[c] for c in cats]
        exact = True
    else:
        counts = [cur.top.get(c, 0) for c in cats]
        exact = cur.top_error == 0 and cur.other_count == 0
    expected = [*base.top.values(), base.other_count]
    actual = [*counts, cur.count - sum(counts)]
    return psi(expected, actual), exact and base.top_error == 0, new


def _compare(name: str, base: Any, cur: Any, limits: DriftThresholds) -> FeatureDrift:
    if base is None or cur is None:
        present = cur if base is None else base
        status: Status = "warn" if base is None else "alert"
        return FeatureDrift(
            feature=name,
            kind=present.kind,
            status=status,
            presence="current_only" if base is None else "baseline_only",
            reasons=["new feature" if base is None else "feature missing from current window"],
            thresholds=limits,
        )
    reasons: list[str] = []
    if base.kind != cur.kind:
        return FeatureDrift(
            feature=name,
            kind=cur.kind,
            status="alert",
            reasons=[f"kind changed from {base.kind} to {cur.kind}"],
            null_rate_baseline=base.null_rate,
            null_rate_current=cur.null_rate,
            thresholds=limits,
        )
    fields: dict[str, Any] = {}
    if isinstance(base, NumericStats):
        fields["psi"], fields["psi_exact"] = _numeric_psi(base, cur)
        fields.update(_numeric_ks(base, cur))
    elif isinstance(base, CategoricalStats):
        fields["psi"], fields["psi_exact"], fields["new_categories"] = _categorical_psi(base, cur)
    delta = (
        None
        if base.null_rate is None or cur.null_rate is None
        else abs(cur.null_rate - base.null_rate)
    )
    status = _worst(
        _status(fields.get("psi"), limits.psi_warn, limits.psi_alert, "psi", reasons),
        _status(fields.get("ks"), limits.ks_warn, limits.ks_alert, "ks", reasons),
        _status(delta, limits.null_rate_warn, limits.null_rate_alert, "null rate change", reasons),
    )
    return FeatureDrift(
        feature=name,
        kind=cur.kind,
        status=status,
        null_rate_baseline=base.null_rate,
        null_rate_current=cur.null_rate,
        reasons=reasons,
        thresholds=limits,
        **fields,
    )


def drift(
    baseline: FeatureStats,
    current: FeatureStats,
    *,
    thresholds: DriftThresholds | None = None,
) -> DriftReport:
    """Compare ``current`` with ``baseline``, feature by feature (see the module docs).

    ``thresholds`` may be a :class:`DriftConfig` (per-feature overrides apply). Features are
    reported in baseline order, then those only in ``current``. Errors
    (:class:`InvalidInput`): arguments that are not :class:`FeatureStats`, or a window with no
    rows (nothing to compare: widen it, or check the pipeline that should fill it).
    """
    if not isinstance(baseline, FeatureStats) or not isinstance(current, FeatureStats):
        raise InvalidInput("drift() compares two FeatureStats (baseline, current)")
    if thresholds is None:
        thresholds = DriftThresholds()
    if not isinstance(thresholds, DriftThresholds):
        raise InvalidInput(f"thresholds must be DriftThresholds, not {type(thresholds).__name__}")
    for label, stats in (("baseline", baseline), ("current", current)):
        if stats.empty:
            window = f"[{stats.window_start}, {stats.window_end})"
            raise InvalidInput(f"drift: the {label} window {window} of {stats.view} has no rows")
    view = baseline.view or current.view
    names = list(dict.fromkeys([*baseline.features, *current.features]))
    results = {}
    for name in names:
        limits = (
            thresholds.thresholds_for(view, name)
            if isinstance(thresholds, DriftConfig)
            else thresholds
        )
        results[name] = _compare(
            name, baseline.features.get(name), current.features.get(name), limits
        )
    return DriftReport(
        view=view,
        baseline_version=baseline.version,
        current_version=current.version,
        baseline_window=(baseline.window_start, baseline.window_end),
        current_window=(current.window_start, current.window_end),
        baseline_rows=baseline.row_count,
        current_rows=current.row_count,
        computed_at=utcnow(),
        features=results,
    )


# ----------------------------------------------------------------------- from a store
def _window(value: Any, label: str) -> Window:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(v is None or isinstance(v, dt.datetime) for v in value)
    ):
        raise InvalidInput(
            f"{label} must be a (start, end) tuple of datetimes or None, FeatureStats"
            + (" or 'latest-stats'" if label == "baseline" else "")
        )
    return value[0], value[1]


def features_drift(
    feature_store: FeatureStore,
    view: str | FeatureView,
    *,
    baseline: Window | FeatureStats | Literal["latest-stats"],
    current: Window | FeatureStats,
    version: int | None = None,
    thresholds: DriftThresholds | None = None,
    repository: StatsRepository | None = None,
    save: bool = False,
) -> DriftReport:
    """Drift of a view between two windows of its data (or saved stats).

    ``baseline``: a ``(start, end)`` event-time window (``None`` for an open side), stats
    computed earlier, or ``"latest-stats"`` (the newest stats saved for this view version in
    ``repository``, default ``StatsRepository(feature_store)``). ``current``: a window or
    stats. A current window is profiled with the baseline as reference, so histograms share
    bins and PSI is exact. ``save=True`` stores the stats computed here in the repository.
    ``thresholds`` (a :class:`DriftConfig` also gives ``bins``/``top_k``) default to
    :class:`DriftThresholds`.

    Errors: :class:`NotFound` (unknown view/version; no saved stats for ``"latest-stats"``),
    :class:`InvalidInput` (bad windows, an empty window), plus those of the feature store.
    """
    if isinstance(view, FeatureView):
        fv = view
    elif isinstance(view, str):
        fv = feature_store.get_view(view, version)
    else:
        raise InvalidInput(f"view must be a name or a FeatureView, not {type(view).__name__}")
    repo = repository or StatsRepository(feature_store)
    config = thresholds if isinstance(thresholds, DriftConfig) else DriftConfig()
    opts: dict[str, Any] = {
        "bins": config.bins,
        "top_k": config.top_k,
        "quantiles": DEFAULT_QUANTILES,
    }
    computed: list[FeatureStats] = []
    if isinstance(baseline, FeatureStats):
        base = baseline
    elif baseline == "latest-stats":
        found = repo.latest(fv.name, fv.version)
        if found is None:
            raise NotFound(
                f"no saved stats for feature view {fv.ref} in {repo.table}; save some first "
                "(StatsRepository.save(profile_view(...))) or pass a baseline window"
            )
        base = found
    else:
        start, end = _window(baseline, "baseline")
        base = profile_view(feature_store, fv, start=start, end=end, **opts)
        computed.append(base)
    if isinstance(current, FeatureStats):
        cur = current
    else:
        start, end = _window(current, "current")
        cur = profile_view(feature_store, fv, start=start, end=end, reference=base, **opts)
        computed.append(cur)
    if save:
        for stats in computed:
            repo.save(stats)
    return drift(base, cur, thresholds=thresholds)


# ---------------------------------------------------------------------------------- CLI
_RELATIVE = re.compile(r"^(?:now)?-(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _instant(text: str, now: dt.datetime) -> dt.datetime | None:
    text = text.strip()
    if not text:
        return None
    if text == "now":
        return now
    rel = _RELATIVE.match(text)
    if rel:
        try:
            return now - dt.timedelta(**{_UNITS[rel[2]]: float(rel[1])})
        except OverflowError as exc:  # before year 1, or beyond what a timedelta holds
            raise InvalidInput(f"{text!r} is too far in the past") from exc
    try:
        return to_utc_naive(dt.datetime.fromisoformat(text))
    except ValueError:
        raise InvalidInput(f"{text!r} is not a time") from None


def parse_window(spec: str, *, now: dt.datetime | None = None) -> Window:
    """A window from the command line: ``START:END`` or ``START..END``; each side an ISO-8601
    date/time (naive = UTC), ``now``, a relative ``-7d`` / ``now-12h`` (units s, m, h, d, w),
    or empty for an open side. ``START:END`` is split at the one colon where both sides parse
    (ISO times contain colons; use ``..`` when that is ambiguous). Errors: :class:`InvalidInput`.
    """
    if not isinstance(spec, str):
        raise InvalidInput("a window is a string like 2024-01-01:2024-02-01")
    now = to_utc_naive(now) if now is not None else utcnow()
    if ".." in spec:
        parts = spec.split("..")
        if len(parts) != 2:
            raise InvalidInput(f"window {spec!r}: expected START..END")
        found: list[Window] = [(_instant(parts[0], now), _instant(parts[1], now))]
    else:
        found = []
        for i in (i for i, ch in enumerate(spec) if ch == ":"):
            try:
                found.append((_instant(spec[:i], now), _instant(spec[i + 1 :], now)))
            except InvalidInput:
                continue
    if len(found) != 1:
        why = "is ambiguous" if found else "does not parse"
        raise InvalidInput(
            f"window {spec!r} {why}: use START..END or START:END with ISO dates/times, 'now' "
            "or relative times like -7d (an empty side is open)"
        )
    start, end = found[0]
    if start is not None and end is not None and start >= end:
        raise InvalidInput(f"window {spec!r}: start {start} is not before end {end}")
    return start, end


def run_drift_cli(
    features: FeatureStore,
    view: str,
    *,
    baseline: str,
    current: str,
    version: int | None = None,
    config: DriftConfig | Mapping[str, Any] | None = None,
    fail_on: Literal["alert", "warn"] = "alert",
    as_json: bool = False,
    save: bool = False,
    now: dt.datetime | None = None,
    echo: Callable[[str], None] | None = None,
    echo_err: Callable[[str], None] | None = None,
) -> int:
    """``strataml drift VIEW --baseline START:END --current START:END``: print the report and
    return the exit code: ``0`` no feature at ``fail_on`` (default ``alert``) or worse, ``1``
    drift (a scheduler can trigger retraining on it), ``2`` an error (bad arguments, unknown
    view, empty window, backend failure), its message printed to ``echo_err``.

    ``baseline`` may also be ``latest-stats``. ``config`` is the profile's ``[drift]`` table
    (a :class:`DriftConfig` or its raw mapping). ``as_json`` prints the report as JSON.
    """
    out = echo or (lambda line: print(line))
    err = echo_err or (lambda line: print(line, file=sys.stderr))
    try:
        if fail_on not in ("alert", "warn"):
            raise InvalidInput(f"fail_on must be 'alert' or 'warn', not {fail_on!r}")
        try:
            cfg = (
                config
                if isinstance(config, DriftConfig)
                else DriftConfig.model_validate(dict(config or {}))
            )
        except ValidationError as exc:
            raise InvalidInput(f"invalid [drift] configuration: {exc}") from exc
        base: Window | Literal["latest-stats"] = (
            "latest-stats"
            if baseline.strip() == "latest-stats"
            else parse_window(baseline, now=now)
        )
        report = features_drift(
            features,
            view,
            baseline=base,
            current=parse_window(current, now=now),
            version=version,
            thresholds=cfg,
            save=save,
        )
    except StrataError as exc:
        err(f"error: {exc}")
        return 2
    if as_json:
        out(json.dumps(json.loads(report.model_dump_json()), indent=2))
    else:
        out(report.summary())
    return 1 if _RANK[report.status] >= _RANK[fail_on] else 0
