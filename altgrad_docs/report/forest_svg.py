"""The home page's headline figure: each family comparison's effect with its 95% interval.

Layout only (pixel positions of the findings' own numbers); the SVG markup is the template
``templates/partials/findings_figure.md``. Fragile comparisons are drawn hollow and marked,
robust ones filled; the others grey. Every comparison of the family is a row, in table order.
"""

from __future__ import annotations

import math
from typing import Any

from altgrad_docs.analysis import digits

WIDTH, LABEL, ROW, TOP, BOTTOM = 760, 300, 18, 12, 34
STYLE = {"holds": "holds", "fragile": "fragile", "consistent": "consistent", "excludes_zero": "consistent"}


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / 4)) if span > 0 else 1.0
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= 6:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def forest(f: Any) -> dict[str, Any] | None:
    """Rows and axis of the figure (None when the family is empty)."""
    members = [c for c in f.members() if math.isfinite(c.low) and math.isfinite(c.high)]
    if not members:
        return None
    lo = min(min(c.low for c in members), 0.0)
    hi = max(max(c.high for c in members), 0.0)
    pad = 0.05 * (hi - lo or 1.0)
    lo, hi = lo - pad, hi + pad
    plot = WIDTH - LABEL - 20

    def x(v: float) -> int:
        return round(LABEL + (v - lo) / (hi - lo) * plot)

    rows = [{"label": f"{c.format}{' · ' + c.setting if c.setting else ''}", "y": TOP + i * ROW + ROW // 2,
             "x_low": x(c.low), "x_high": x(c.high), "x_mean": x(c.mean), "kind": STYLE.get(c.branch, "unclear"),
             "text": c.text, "fragile": c.branch == "fragile"} for i, c in enumerate(members)]
    height = TOP + len(rows) * ROW + BOTTOM
    values = _ticks(lo, hi)
    step = values[1] - values[0] if len(values) > 1 else 1.0
    places = max(0, -math.floor(math.log10(step)))  # the tick step's own digit
    ticks = [{"x": x(t), "text": "0" if t == 0 else f"{t:.{places}f}".replace("-", digits.MINUS)} for t in values]
    return {"rows": rows, "width": WIDTH, "height": height, "x0": x(0.0), "axis_y": TOP + len(rows) * ROW,
            "label_x": LABEL - 8, "ticks": ticks, "metric": f.family.metric}
