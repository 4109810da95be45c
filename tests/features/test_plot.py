"""Plots of a feature's distribution over time: well-formed, self-contained, escaped HTML/SVG,
and PNG when matplotlib is installed (a clear error when it is not)."""

from __future__ import annotations

import datetime as dt
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from strataml.errors import InvalidInput, NotFound, Unsupported
from strataml.features.plot import plot_history, render_html
from strataml.features.stats import FeatureStats, compute_stats

SVG = "{http://www.w3.org/2000/svg}"
T0 = dt.datetime(2024, 1, 1)
EVIL = '<script>alert("x")</script>'


def _history(n: int = 6, feature: str = "x") -> list[FeatureStats]:
    rng = np.random.default_rng(0)
    out: list[FeatureStats] = []
    ref: FeatureStats | None = None
    for day in range(n):
        table = pa.table(
            {
                feature: rng.normal(day * 0.5, 1.0, 2000),
                "c": rng.choice(["web", "ios", EVIL], 2000, p=[0.5, 0.3, 0.2]),
                "t": pa.array([T0 + dt.timedelta(days=day)] * 2000),
                "n": pa.array([None if i % (day + 2) == 0 else 1.0 for i in range(2000)]),
            }
        )
        stats = compute_stats(
            table,
            reference=ref,
            view="acts",
            version=1,
            window_start=T0 + dt.timedelta(days=day),
            window_end=T0 + dt.timedelta(days=day + 1),
        )
        ref = ref or stats
        out.append(stats)
    return out


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> tuple[ET.Element, _Collect]:
    text = path.read_text(encoding="utf-8")
    root = ET.fromstring(text)  # well-formed XML (polyglot HTML)
    collected = _Collect()
    collected.feed(text)
    assert "script" not in collected.tags  # self-contained and inert
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text
    return root, collected


def test_numeric_history_page(tmp_path: Path) -> None:
    history = _history()
    out = plot_history(list(reversed(history)), "x", tmp_path / "x.html")
    assert out == tmp_path / "x.html"
    root, collected = _parse(out)
    svgs = list(root.iter(f"{SVG}svg"))
    assert len(svgs) == 3  # quantile bands, baseline vs latest bins, null rate
    titles = [t.text for t in root.iter(f"{SVG}text") if t.text]
    assert "x: quantiles and mean over time" in titles
    # two bands (p5-p95, p25-p75), one point per snapshot
    bands = list(svgs[0].iter(f"{SVG}polygon"))
    assert len(bands) == 2
    assert len(bands[0].get("points", "").split()) == 2 * len(history)
    # medians rise with the data: y (SVG, downwards) decreases over time
    median = next(svgs[0].iter(f"{SVG}polyline"))
    ys = [float(p.split(",")[1]) for p in median.get("points", "").split()]
    assert ys == sorted(ys, reverse=True)
    bars = list(svgs[1].iter(f"{SVG}rect"))
    hist = history[0].features["x"]
    assert hist.kind == "numeric"
    assert hist.histogram is not None
    assert len([b for b in bars if b.find(f"{SVG}title") is not None]) == 2 * len(
        hist.histogram.counts
    )
    assert "6 snapshot(s)" in "".join(collected.text)


def test_text_is_escaped(tmp_path: Path) -> None:
    odd = 'a<b&"c"'
    history = _history(3, feature=odd)
    for feature in (odd, "c"):
        out = plot_history(history, feature, tmp_path / "p.html", title=f"{EVIL} & more")
        text = out.read_text(encoding="utf-8")
        assert EVIL not in text
        assert "&lt;script&gt;" in text
        _, collected = _parse(out)
        assert any(EVIL in chunk for chunk in collected.text)  # shown as text, not run
    page = render_html(history, odd)
    assert odd not in page
    assert "a&lt;b&amp;&quot;c&quot;" in page


def test_categorical_timestamp_and_single_snapshot(tmp_path: Path) -> None:
    history = _history(4)
    root, _ = _parse(plot_history(history, "c", tmp_path / "c.htm"))
    svgs = list(root.iter(f"{SVG}svg"))
    assert len(svgs) == 3
    lines = list(svgs[0].iter(f"{SVG}polyline"))
    assert len(lines) == 4  # web, ios, the script-looking category, (other)
    root, _ = _parse(plot_history(history, "t", tmp_path / "t.html"))
    assert len(list(root.iter(f"{SVG}svg"))) == 1  # null rate only
    root, _ = _parse(plot_history(history[:1], "x", tmp_path / "one.html"))
    assert len(list(root.iter(f"{SVG}svg"))) == 3
    # a rising null rate is drawn
    root, _ = _parse(plot_history(history, "n", tmp_path / "n.html"))
    rate = next(list(root.iter(f"{SVG}svg"))[-1].iter(f"{SVG}polyline"))
    ys = [float(p.split(",")[1]) for p in rate.get("points", "").split()]
    assert ys == sorted(ys)  # lower null rate later -> larger y


def test_explicit_baseline_and_errors(tmp_path: Path) -> None:
    history = _history(3)
    out = plot_history(history[1:], "x", tmp_path / "b.html", baseline=history[0])
    assert out.exists()
    with pytest.raises(NotFound):
        plot_history(history, "missing", tmp_path / "m.html")
    with pytest.raises(InvalidInput):
        plot_history(history, "x", tmp_path / "x.svg")
    with pytest.raises(InvalidInput):
        plot_history(history[0], "x", tmp_path / "x.html")  # type: ignore[arg-type]
    kinds = [
        history[0],
        compute_stats(pa.table({"x": ["now", "text"]}), view="acts", version=1),
    ]
    with pytest.raises(InvalidInput, match="changes kind"):
        plot_history(kinds, "x", tmp_path / "k.html")
    assert not (tmp_path / "m.html").exists()


def test_png_with_and_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = _history(3)
    if "matplotlib" in sys.modules or _has_matplotlib():
        for feature in ("x", "c"):
            out = plot_history(history, feature, tmp_path / f"{feature}.png")
            assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importing it now fails
    with pytest.raises(Unsupported, match="pip install matplotlib"):
        plot_history(history, "x", tmp_path / "no.png")


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
