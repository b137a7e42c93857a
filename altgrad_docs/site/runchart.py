"""A run page's history chart as data: a compact JSON file for the browser, a small SVG fallback.

The run page draws its history in the browser (``docs/assets/javascripts/runcharts.js`` on the
vendored uPlot: hover values, zoom, series toggles, one x-axis across panels). What the page
needs from Python is the data, downsampled, and a static picture for readers without
JavaScript. Both cost milliseconds; the three-panel matplotlib SVG + PDF that run pages had
before cost about a second a run, which made a cold build of 1,000 runs 30x a warm one.

Downsampling is MinMaxLTTB (``tsdownsample``): per series at most ``max_points`` points that
keep each bucket's extremes, so a spike or a collapse is never smoothed away.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from ..analysis.curves import collapse_step, metric_column
from ..runs import METRIC_ALIASES

#: Points per series in the JSON (browser) and in the static SVG fallback.
CHART_POINTS = 1000
SVG_POINTS = 150


@dataclass(frozen=True)
class Panel:
    id: str
    label: str
    log: bool
    keys: tuple[str, ...]


PANELS = (
    Panel("loss", "loss (nats)", False, ("loss", "val_loss")),
    Panel("grad", "gradient norm", False, ("grad_norm",)),
    Panel("rates", "rate (log)", True, ("quantization/bit_stall_rate", "quantization/overflow_rate",
                                        "quantization/underflow_rate")),
)
#: History columns read for the chart: the panels' keys and their old unprefixed names.
HISTORY_KEYS = tuple(dict.fromkeys(n for p in PANELS for k in p.keys for n in METRIC_ALIASES.get(k, (k,))))


def downsample(x: np.ndarray, y: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """The finite points of (x, y), at most ``n_out`` of them (MinMaxLTTB), in x order."""
    keep = np.isfinite(y) & np.isfinite(x)
    x, y = np.asarray(x)[keep], np.asarray(y, dtype=np.float64)[keep]
    if len(y) <= n_out:
        return x, y
    from tsdownsample import MinMaxLTTBDownsampler

    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    idx = MinMaxLTTBDownsampler().downsample(x.astype(np.float64), y, n_out=n_out).astype(np.int64)
    return x[idx], y[idx]


def _short(values: np.ndarray) -> list[float | None]:
    """Six significant digits are plenty for a chart and halve the file (None: not finite)."""
    values = np.asarray(values, dtype=np.float64)
    out = round_significant(values, 6).tolist()
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        out[i] = None
    return out


#: 10.0 ** k is exact up to here, so a quotient or product by it is correctly rounded.
_EXACT_POW10 = 22


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``float(f"{v:.{digits}g}")`` for every value, vectorised (non-finite values kept).

    ``v * 10**k`` rounded to an integer ``r``, then ``r / 10**k``: one correctly rounded
    division of exact numbers, i.e. the double nearest the decimal, as ``float()`` of the
    text gives it. Values whose scaled form lies within 1e-6 of a half (the product's
    rounding could flip the tie) or that need a power of ten beyond 1e22 are formatted one
    by one, so the result is the same bit for bit (a Python loop costs ~2 us a value).
    Up to 9 digits: the scaled value's rounding error must stay far below the 1e-6 margin."""
    if not 1 <= digits <= 9:
        raise ValueError(f"round_significant: {digits} digits --> Do: ask for 1 to 9")
    out = np.array(values, dtype=np.float64)
    nz = np.flatnonzero(np.isfinite(out) & (out != 0))
    x = out[nz]
    k = digits - 1 - np.floor(np.log10(np.abs(x))).astype(np.int64)
    p = 10.0 ** np.minimum(np.abs(k), _EXACT_POW10)
    up = k >= 0
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        scaled = np.where(up, x * p, x / p)
        r = np.round(scaled)
        rounded = np.where(up, r / p, r * p)
    frac = np.abs(scaled - np.trunc(scaled))
    slow = np.flatnonzero((np.abs(k) > _EXACT_POW10) | (np.abs(frac - 0.5) < 1e-6) | ~np.isfinite(rounded))
    rounded[slow] = [float(f"{v:.{digits}g}") for v in x[slow].tolist()]
    out[nz] = rounded
    return out


def _aligned(kept: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The sorted union of the series' x, and each series' y on it (NaN where it has no
    point; of a step given twice, the last value)."""
    if not kept:
        return np.zeros(0, np.int64), {}
    rising = all(np.all(x[1:] > x[:-1]) for x, _ in kept.values())  # a tidy history's steps
    if not rising:
        kept = {key: _last_per_x(x, y) for key, (x, y) in kept.items()}
    xs = np.sort(np.concatenate([x for x, _ in kept.values()]))
    xs = xs[np.concatenate(([True], xs[1:] != xs[:-1]))]
    ys = {}
    for key, (x, y) in kept.items():
        if len(x) == len(xs):  # on every x of the panel
            ys[key] = y
            continue
        full = np.full(len(xs), np.nan)
        full[np.searchsorted(xs, x)] = y
        ys[key] = full
    return xs, ys


def _last_per_x(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) sorted by x, one point per x: the last one given (as a dict of them keeps)."""
    last, first_of_reversed = np.unique(x[::-1], return_index=True)
    return last, y[::-1][first_of_reversed]


def chart_data(history: pd.DataFrame, n_out: int = CHART_POINTS) -> dict:
    """Per panel: a shared x (steps) and one y column per logged series (None = no point).

    Log panels keep only values > 0. ``collapse`` is the step where the loss stopped being
    finite (``analysis.curves.collapse_step``), or None.
    """
    steps = history["_step"].to_numpy(dtype=np.int64) if "_step" in history else np.zeros(0, np.int64)
    panels = []
    for panel in PANELS:
        kept = {}
        for key in panel.keys:
            values = metric_column(history, key)  # reads old unprefixed names too
            if values is None:
                continue
            if panel.log:
                values = np.where(values > 0, values, np.nan)
            x, y = downsample(steps, values, n_out)
            if len(y):
                kept[key] = (x, y)
        xs, ys = _aligned(kept)
        series = [{"name": key.removeprefix("quantization/"), "y": _short(y)} for key, y in ys.items()]
        panels.append({"id": panel.id, "label": panel.label, "log": panel.log, "x": xs.tolist(), "series": series})
    loss, val = metric_column(history, "loss"), metric_column(history, "val_loss")
    return {"panels": panels, "collapse": collapse_step(steps, loss, val)}


def chart_json(data: dict) -> bytes:
    """The browser's data file: compact, key order fixed, so the same data give the same bytes."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


#: The SVG fallback: panel size in px, margins, series colours (uPlot's in runcharts.js too).
_W, _H, _M = 300, 180, 34
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c")


def chart_svg(data: dict) -> bytes:
    """Three small panels of polylines: what a reader without JavaScript sees."""
    parts = []
    for i, panel in enumerate(data["panels"]):
        parts.append(_svg_panel(panel, i * _W, data["collapse"]))
    width = _W * len(data["panels"])
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_H}" '
            f'viewBox="0 0 {width} {_H}" font-family="sans-serif" font-size="10">'
            f'<rect width="{width}" height="{_H}" fill="#fff"/>{"".join(parts)}</svg>').encode()


def _svg_panel(panel: dict, left: int, collapse: int | None) -> str:
    x0, x1, y0, y1 = left + _M, left + _W - 8, _H - 22, 14
    out = [f'<rect x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}" fill="none" stroke="#999"/>',
           f'<text x="{(x0 + x1) / 2:.0f}" y="{y1 - 3}" text-anchor="middle">{escape(panel["label"])}</text>']
    xs = np.asarray(panel["x"], dtype=np.float64)
    ys = [np.array(s["y"], dtype=np.float64) for s in panel["series"]]  # None -> NaN
    finite = np.concatenate([y[np.isfinite(y)] for y in ys]) if ys else np.zeros(0)
    if not len(xs) or not len(finite):
        out.append(f'<text x="{(x0 + x1) / 2:.0f}" y="{(y0 + y1) / 2:.0f}" text-anchor="middle">not logged</text>')
        return "".join(out)
    tf = np.log10 if panel["log"] else (lambda v: v)
    lo, hi = float(tf(finite.min())), float(tf(finite.max()))
    xmin, xmax = float(xs.min()), float(xs.max())

    def px(x: np.ndarray) -> np.ndarray:
        return x0 + (x - xmin) / ((xmax - xmin) or 1.0) * (x1 - x0)

    def py(y: np.ndarray) -> np.ndarray:  # in halves (exact): -1e308..1e308 spans no Inf
        return y0 - (tf(y) / 2 - lo / 2) / ((hi / 2 - lo / 2) or 0.5) * (y0 - y1)

    for j, (series, y) in enumerate(zip(panel["series"], ys)):
        ok = np.isfinite(y)
        sx, sy = downsample(xs[ok], y[ok], SVG_POINTS)
        # one %-format of all points: half the CPU of an f-string per point, the same text
        xy = np.stack([px(sx.astype(np.float64)), py(sy)], axis=1).ravel().tolist()
        points = ("%.1f,%.1f " * len(sx))[:-1] % tuple(xy)
        color = COLORS[j % len(COLORS)]
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1"/>')
        out.append(f'<text x="{x1 - 4}" y="{y1 + 12 + 11 * j}" text-anchor="end" fill="{color}">'
                   f'{escape(series["name"])}</text>')
    if collapse is not None and xmin <= collapse <= xmax:
        cx = float(px(np.array([float(collapse)]))[0])
        out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y1}" y2="{y0}" stroke="crimson" stroke-dasharray="3,2"/>')
    fmt = (lambda v: f"{10 ** v:.3g}") if panel["log"] else (lambda v: f"{v:.4g}")
    out += [f'<text x="{x0 - 3}" y="{y1 + 8}" text-anchor="end">{fmt(hi)}</text>',
            f'<text x="{x0 - 3}" y="{y0}" text-anchor="end">{fmt(lo)}</text>',
            f'<text x="{x0}" y="{_H - 8}">{xmin:.0f}</text>',
            f'<text x="{x1}" y="{_H - 8}" text-anchor="end">step {xmax:.0f}</text>']
    return "".join(out)
