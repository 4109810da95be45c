"""A feature's distribution over time, as a self-contained HTML page (inline SVG) or a PNG.

:func:`plot_history` draws, from a stats history (:meth:`StatsRepository.history
<strataml.features.stats.StatsRepository.history>`):

* numeric features: the p5-p95 and p25-p75 quantile bands, the median and the mean over
  ``computed_at``; then the share of values per bin of the baseline's histogram, baseline vs
  latest (the bins PSI uses);
* categorical features: the share of the most frequent categories (and "other") over time;
  then their shares, baseline vs latest;
* every kind: the null rate over time, and a table of the latest figures.

The HTML has no scripts and no external resources; every text (feature names, category
values, view names) is escaped. The page is also well-formed XML. PNG output needs matplotlib
(an optional dependency); without it :class:`~strataml.errors.Unsupported` says so.
"""

from __future__ import annotations

import datetime as dt
import html
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from strataml.errors import InvalidInput, NotFound, Unsupported
from strataml.features.stats import (
    CategoricalStats,
    FeatureStats,
    NumericStats,
    TimestampStats,
)

__all__ = ["plot_history", "render_html"]

_BANDS = (0.05, 0.25, 0.5, 0.75, 0.95)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_W, _H = 760, 300
_L, _R, _T, _B = 64, 150, 30, 76
_MAX_CATEGORIES = 8


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


@dataclass
class _Series:
    """Points over time for one feature: stats in time order with the feature present."""

    times: list[dt.datetime]
    stats: list[Any]
    history: list[FeatureStats]


def _series(history: Sequence[FeatureStats], feature: str) -> _Series:
    """The snapshots holding ``feature``, in time order. A snapshot's time is the end of its
    window when every snapshot has one (backfilled windows profiled at once plot where their
    data is), otherwise ``computed_at``."""
    if isinstance(history, FeatureStats) or not all(isinstance(h, FeatureStats) for h in history):
        raise InvalidInput("plot_history takes a sequence of FeatureStats")
    kept = [h for h in history if feature in h.features]
    if not kept:
        raise NotFound(f"no stats for feature {feature!r} in the history")
    kinds = {h.features[feature].kind for h in kept}
    if len(kinds) > 1:
        raise InvalidInput(f"feature {feature!r} changes kind over the history: {sorted(kinds)}")
    by_window = all(h.window_end is not None for h in kept)

    def when(h: FeatureStats) -> dt.datetime:
        return h.window_end if by_window and h.window_end is not None else h.computed_at

    kept.sort(key=lambda h: (when(h), h.computed_at))
    return _Series([when(h) for h in kept], [h.features[feature] for h in kept], kept)


# ------------------------------------------------------------------------------- SVG kit
class _Chart:
    """One SVG panel with linear axes; time on x when given datetimes."""

    def __init__(self, title: str, xs: Sequence[float], ys: Sequence[float]) -> None:
        self.title = title
        self.parts: list[str] = []
        self.legend: list[tuple[str, str, str]] = []
        lo_x, hi_x = (min(xs), max(xs)) if xs else (0.0, 1.0)
        if hi_x == lo_x:
            lo_x, hi_x = lo_x - 0.5, hi_x + 0.5
        lo_y, hi_y = (min(ys), max(ys)) if ys else (0.0, 1.0)
        pad = (hi_y - lo_y) * 0.05 or (abs(hi_y) * 0.05 or 1.0)
        self.x0, self.x1 = lo_x, hi_x
        self.y0, self.y1 = lo_y - pad, hi_y + pad
        if lo_y >= 0 > self.y0:  # shares, rates: no negative axis
            self.y0 = 0.0

    def x(self, v: float) -> float:
        return _L + (v - self.x0) / (self.x1 - self.x0) * (_W - _L - _R)

    def y(self, v: float) -> float:
        return _T + (1 - (v - self.y0) / (self.y1 - self.y0)) * (_H - _T - _B)

    def polyline(
        self, pts: Sequence[tuple[float, float]], color: str, label: str, dash: str = ""
    ) -> None:
        coords = " ".join(f"{self.x(a):.2f},{self.y(b):.2f}" for a, b in pts)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{extra}/>'
        )
        for a, b in pts:
            self.parts.append(
                f'<circle cx="{self.x(a):.2f}" cy="{self.y(b):.2f}" r="2.5" fill="{color}"/>'
            )
        self.legend.append((color, label, "line"))

    def band(
        self,
        xs: Sequence[float],
        lo: Sequence[float],
        hi: Sequence[float],
        color: str,
        label: str,
        opacity: float,
    ) -> None:
        upper = [f"{self.x(a):.2f},{self.y(b):.2f}" for a, b in zip(xs, hi, strict=True)]
        lower = [f"{self.x(a):.2f},{self.y(b):.2f}" for a, b in zip(xs, lo, strict=True)]
        if len(xs) == 1:  # a single point: a short vertical bar
            x = self.x(xs[0])
            upper = [f"{x - 4:.2f},{self.y(hi[0]):.2f}", f"{x + 4:.2f},{self.y(hi[0]):.2f}"]
            lower = [f"{x - 4:.2f},{self.y(lo[0]):.2f}", f"{x + 4:.2f},{self.y(lo[0]):.2f}"]
        points = " ".join(upper + lower[::-1])
        self.parts.append(
            f'<polygon points="{points}" fill="{color}" fill-opacity="{opacity}" stroke="none"/>'
        )
        self.legend.append((color, label, f"band:{opacity}"))

    def bars(
        self, labels: Sequence[str], groups: Sequence[tuple[str, str, Sequence[float]]]
    ) -> None:
        """Grouped bars: one slot per label, one bar per group ``(name, color, values)``."""
        n = max(len(labels), 1)
        slot = (_W - _L - _R) / n
        width = slot * 0.8 / max(len(groups), 1)
        for gi, (name, color, values) in enumerate(groups):
            for i, v in enumerate(values):
                x = _L + i * slot + slot * 0.1 + gi * width
                y = self.y(max(v, 0.0))
                h = self.y(max(self.y0, 0.0)) - y
                self.parts.append(
                    f'<rect x="{x:.2f}" y="{y:.2f}" width="{width:.2f}" height="{max(h, 0):.2f}" '
                    f'fill="{color}"><title>{_e(name)} {_e(labels[i])}: {v:.4g}</title></rect>'
                )
            self.legend.append((color, name, "box"))
        for i, label in enumerate(labels):
            x = _L + (i + 0.5) * slot
            short = label if len(label) <= 18 else label[:17] + "…"
            y = _H - _B + 12
            self.parts.append(
                f'<text x="{x:.2f}" y="{y}" font-size="10" text-anchor="end" '
                f'transform="rotate(-30 {x:.2f} {y})">{_e(short)}<title>{_e(label)}</title></text>'
            )

    def svg(self, x_labels: Sequence[tuple[float, str]] = ()) -> str:
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(self.title)}">',
            f'<text x="{_L}" y="18" font-size="14" font-weight="bold">{_e(self.title)}</text>',
            f'<line x1="{_L}" y1="{_H - _B}" x2="{_W - _R}" y2="{_H - _B}" stroke="#444"/>',
            f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{_H - _B}" stroke="#444"/>',
        ]
        for i in range(5):
            v = self.y0 + (self.y1 - self.y0) * i / 4
            y = self.y(v)
            out.append(
                f'<line x1="{_L}" y1="{y:.2f}" x2="{_W - _R}" y2="{y:.2f}" stroke="#ddd"/>'
                f'<text x="{_L - 6}" y="{y + 4:.2f}" font-size="10" text-anchor="end">'
                f"{_e(_fmt(v))}</text>"
            )
        for v, label in x_labels:
            out.append(
                f'<text x="{self.x(v):.2f}" y="{_H - _B + 14}" font-size="10" '
                f'text-anchor="middle">{_e(label)}</text>'
            )
        out.extend(self.parts)
        for i, (color, label, style) in enumerate(self.legend):
            y = _T + 4 + i * 16
            x = _W - _R + 12
            if style.startswith("band"):
                out.append(
                    f'<rect x="{x}" y="{y - 6}" width="16" height="10" fill="{color}" '
                    f'fill-opacity="{style.split(":")[1]}"/>'
                )
            elif style == "box":
                out.append(f'<rect x="{x}" y="{y - 6}" width="16" height="10" fill="{color}"/>')
            else:
                out.append(
                    f'<line x1="{x}" y1="{y - 1}" x2="{x + 16}" y2="{y - 1}" stroke="{color}" '
                    'stroke-width="2"/>'
                )
            short = label if len(label) <= 18 else label[:17] + "…"
            out.append(f'<text x="{x + 22}" y="{y + 3}" font-size="11">{_e(short)}</text>')
        out.append("</svg>")
        return "\n".join(out)


def _time_axis(times: Sequence[dt.datetime]) -> tuple[list[float], list[tuple[float, str]]]:
    xs = [t.timestamp() if t.tzinfo else t.replace(tzinfo=dt.UTC).timestamp() for t in times]
    span = max(xs) - min(xs)
    fmt = "%Y-%m-%d" if span > 2 * 86_400 else "%m-%d %H:%M" if span > 120 else "%H:%M:%S.%f"
    picks = sorted({0, len(xs) // 2, len(xs) - 1})
    return xs, [(xs[i], times[i].strftime(fmt)) for i in picks]


# --------------------------------------------------------------------------- the data
def _numeric_bands(s: _Series) -> tuple[list[dt.datetime], dict[float, list[float]], list[float]]:
    times: list[dt.datetime] = []
    bands: dict[float, list[float]] = {q: [] for q in _BANDS}
    means: list[float] = []
    for t, st in zip(s.times, s.stats, strict=True):
        if st.count == 0 or st.mean is None:
            continue
        times.append(t)
        for q in _BANDS:
            v = st.quantile(q)
            bands[q].append(float(v if v is not None else st.mean))
        means.append(float(st.mean))
    return times, bands, means


def _shares_on(edges: list[float], stats: NumericStats) -> list[float]:
    """Share of ``stats``' values per bin of ``edges`` (exact when its histogram uses them)."""
    if stats.count == 0:
        return [0.0] * (len(edges) + 1)
    if stats.histogram is not None and stats.histogram.edges == edges:
        counts = np.asarray(stats.histogram.counts, dtype=float)
    else:
        items, cum = stats.sketch_cdf()
        idx = np.searchsorted(items, np.asarray(edges, dtype=float), side="left")
        below = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
        counts = np.diff(np.concatenate(([0.0], below, [cum[-1]])))
    return [float(c) for c in counts / max(counts.sum(), 1.0)]


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    labels = [f"< {_fmt(edges[0])}"]
    labels += [f"[{_fmt(a)}, {_fmt(b)})" for a, b in itertools.pairwise(edges)]
    labels.append(f">= {_fmt(edges[-1])}")
    if len(edges) >= 2 and edges[-1] == np.nextafter(edges[-2], np.inf):
        # one bin per distinct value: the last value's bin holds exactly that value
        labels[-2:] = [f"= {_fmt(edges[-2])}", f"> {_fmt(edges[-2])}"]
    return labels


def _categories(s: _Series, base: CategoricalStats) -> list[str]:
    latest = s.stats[-1]
    ranked = list(dict.fromkeys([*latest.top, *base.top]))
    return ranked[:_MAX_CATEGORIES]


def _cat_shares(st: CategoricalStats, cats: Sequence[str]) -> list[float]:
    if st.count == 0:
        return [0.0] * (len(cats) + 1)
    refs = st.reference_counts or {}
    counts = [refs.get(c, st.top.get(c, 0)) for c in cats]
    return [c / st.count for c in counts] + [max(st.count - sum(counts), 0) / st.count]


# ------------------------------------------------------------------------------ panels
def _panels(s: _Series, feature: str, baseline: FeatureStats | None) -> list[str]:
    kind = s.stats[0].kind
    base_stats = baseline.features.get(feature) if baseline is not None else None
    if base_stats is None or base_stats.kind != kind:
        base_stats = s.stats[0]
    latest = s.stats[-1]
    out: list[str] = []
    if kind == "numeric":
        times, bands, means = _numeric_bands(s)
        if times:
            xs, ticks = _time_axis(times)
            chart = _Chart(
                f"{feature}: quantiles and mean over time",
                xs,
                [*bands[0.05], *bands[0.95], *means],
            )
            chart.band(xs, bands[0.05], bands[0.95], _PALETTE[0], "p5-p95", 0.18)
            chart.band(xs, bands[0.25], bands[0.75], _PALETTE[0], "p25-p75", 0.4)
            chart.polyline(list(zip(xs, bands[0.5], strict=True)), _PALETTE[0], "median")
            chart.polyline(list(zip(xs, means, strict=True)), _PALETTE[1], "mean", dash="6 4")
            out.append(chart.svg(ticks))
        hist = base_stats.histogram if isinstance(base_stats, NumericStats) else None
        if hist is not None and isinstance(base_stats, NumericStats):
            b = _shares_on(hist.edges, base_stats)
            c = _shares_on(hist.edges, latest)
            chart = _Chart(f"{feature}: share per bin, baseline vs latest", [], [0.0, *b, *c])
            chart.bars(
                _bin_labels(hist.edges),
                [("baseline", "#999999", b), ("latest", _PALETTE[0], c)],
            )
            out.append(chart.svg())
    elif kind == "categorical" and isinstance(base_stats, CategoricalStats):
        cats = _categories(s, base_stats)
        names = [*cats, "(other)"]
        xs, ticks = _time_axis(s.times)
        series = [_cat_shares(st, cats) for st in s.stats]
        chart = _Chart(f"{feature}: category shares over time", xs, [0.0, *np.ravel(series)])
        for i, name in enumerate(names):
            chart.polyline(
                [(x, row[i]) for x, row in zip(xs, series, strict=True)],
                _PALETTE[i % len(_PALETTE)],
                name,
            )
        out.append(chart.svg(ticks))
        b, c = _cat_shares(base_stats, cats), _cat_shares(latest, cats)
        chart = _Chart(f"{feature}: shares, baseline vs latest", [], [0.0, *b, *c])
        chart.bars(names, [("baseline", "#999999", b), ("latest", _PALETTE[0], c)])
        out.append(chart.svg())
    xs, ticks = _time_axis(s.times)
    rates = [st.null_rate or 0.0 for st in s.stats]
    chart = _Chart(f"{feature}: null rate over time", xs, [0.0, *rates])
    chart.polyline(list(zip(xs, rates, strict=True)), _PALETTE[3], "null rate")
    out.append(chart.svg(ticks))
    return out


def _table(s: _Series) -> str:
    st = s.stats[-1]
    rows: list[tuple[str, str]] = [
        ("computed at", s.times[-1].isoformat(sep=" ")),
        ("kind", st.kind),
        ("type", st.type),
        ("count", str(st.count)),
        ("null rate", _fmt(st.null_rate)),
    ]
    if isinstance(st, NumericStats):
        rows += [(k, _fmt(getattr(st, k))) for k in ("mean", "std", "min", "max")]
        rows += [(f"p{100 * q:g}", _fmt(v)) for q, v in st.quantiles.items()]
    elif isinstance(st, CategoricalStats):
        rows.append(("distinct", f"{st.distinct}{'' if st.distinct_exact else ' (estimate)'}"))
        rows += [(f"top: {k}", str(v)) for k, v in list(st.top.items())[:10]]
    elif isinstance(st, TimestampStats):
        rows += [("min", str(st.min)), ("max", str(st.max))]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_html(
    history: Sequence[FeatureStats],
    feature: str,
    *,
    baseline: FeatureStats | None = None,
    title: str | None = None,
) -> str:
    """The HTML page :func:`plot_history` writes (see there)."""
    s = _series(history, feature)
    view = s.history[-1].view
    heading = title or (f"{view}: {feature}" if view else feature)
    panels = "\n".join(f"<figure>{svg}</figure>" for svg in _panels(s, feature, baseline))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8"/>'
        f"<title>{_e(heading)}</title>"
        "<style>body{font-family:sans-serif;margin:24px}figure{margin:12px 0}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;"
        "text-align:left}</style></head>\n"
        f"<body><h1>{_e(heading)}</h1>\n"
        f"<p>{len(s.stats)} snapshot(s) from {_e(s.times[0])} to {_e(s.times[-1])}</p>\n"
        f"{panels}\n{_table(s)}\n</body></html>\n"
    )


def plot_history(
    stats_history: Sequence[FeatureStats],
    feature: str,
    path: str | Path,
    *,
    baseline: FeatureStats | None = None,
    title: str | None = None,
) -> Path:
    """Write a plot of ``feature``'s distribution over ``stats_history`` to ``path``:
    ``.html``/``.htm`` for a self-contained page (inline SVG), ``.png`` for an image (needs
    matplotlib). ``baseline`` is what the latest histogram is compared with (default: the
    oldest stats). Returns the path written.

    Errors: :class:`NotFound` (the feature is in no stats), :class:`InvalidInput` (another
    suffix, not a sequence of FeatureStats, a feature that changes kind),
    :class:`Unsupported` (PNG without matplotlib).
    """
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix in (".html", ".htm"):
        text = render_html(stats_history, feature, baseline=baseline, title=title)
        out.write_text(text, encoding="utf-8")
        return out
    if suffix == ".png":
        _png(_series(stats_history, feature), feature, out, baseline, title)
        return out
    raise InvalidInput(f"plot_history writes .html or .png files, not {out.name!r}")


def _png(
    s: _Series, feature: str, out: Path, baseline: FeatureStats | None, title: str | None
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise Unsupported(
            "PNG plots need matplotlib (pip install matplotlib); or write an .html file, "
            "which needs nothing"
        ) from exc
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7))
    try:
        kind = s.stats[0].kind
        view = s.history[-1].view
        fig.suptitle(title or (f"{view}: {feature}" if view else feature))
        if kind == "numeric":
            times, bands, means = _numeric_bands(s)
            top.fill_between(times, bands[0.05], bands[0.95], alpha=0.18, label="p5-p95")
            top.fill_between(times, bands[0.25], bands[0.75], alpha=0.4, label="p25-p75")
            top.plot(times, bands[0.5], marker="o", label="median")
            top.plot(times, means, linestyle="--", label="mean")
            base = baseline.features.get(feature) if baseline is not None else None
            ref = base if isinstance(base, NumericStats) else s.stats[0]
            if ref.histogram is not None:
                labels = _bin_labels(ref.histogram.edges)
                pos = np.arange(len(labels))
                bottom.bar(pos - 0.2, _shares_on(ref.histogram.edges, ref), 0.4, label="baseline")
                bottom.bar(
                    pos + 0.2, _shares_on(ref.histogram.edges, s.stats[-1]), 0.4, label="latest"
                )
                bottom.set_xticks(pos, labels, rotation=30, fontsize=7)
        else:
            top.plot(s.times, [st.null_rate or 0.0 for st in s.stats], label="null rate")
            if kind == "categorical":
                base = baseline.features.get(feature) if baseline is not None else None
                ref_c = base if isinstance(base, CategoricalStats) else s.stats[0]
                cats = _categories(s, ref_c)
                names = [*cats, "(other)"]
                pos = np.arange(len(names))
                bottom.bar(pos - 0.2, _cat_shares(ref_c, cats), 0.4, label="baseline")
                bottom.bar(pos + 0.2, _cat_shares(s.stats[-1], cats), 0.4, label="latest")
                bottom.set_xticks(pos, names, rotation=30, fontsize=7)
        top.legend(loc="upper left", fontsize=8)
        if bottom.has_data():
            bottom.legend(loc="upper right", fontsize=8)
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
