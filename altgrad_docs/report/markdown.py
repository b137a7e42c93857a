"""Markdown building blocks: escaping user text, links, number formatting, tables.

Run names and config values are written by people and may hold ``|``, backticks,
``<script>``, brackets or newlines. In a table cell every one of them must come out as
text: HTML-significant characters become entities, Markdown punctuation becomes a numeric
character reference (which no Markdown parser treats as syntax), and newlines a space.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

import pandas as pd

_MD_ENTITIES = {
    "|": "&#124;", "`": "&#96;", "\\": "&#92;", "*": "&#42;", "_": "&#95;",
    "[": "&#91;", "]": "&#93;", "#": "&#35;", "~": "&#126;", "!": "&#33;", "$": "&#36;",
}


def escape_md(text: Any) -> str:
    """User text as literal text in Markdown (table cells, headings, link texts)."""
    s = "" if text is None else str(text)
    s = html.escape(s, quote=False)
    s = "".join(_MD_ENTITIES.get(c, c) for c in s)
    return " ".join(s.replace("\r\n", "\n").replace("\r", "\n").split("\n")).strip()


def safe_url(url: Any) -> str:
    """A URL safe inside ``[text](url)``: http(s) or relative only, odd characters quoted."""
    s = "" if url is None else str(url).strip()
    if not s:
        return ""
    scheme = urlsplit(s).scheme.lower()
    if scheme and scheme not in ("http", "https"):
        return ""  # javascript:, data:, file: ... are dropped
    return quote(s, safe="/:?#=&%~.-_+@!$,;")


def md_link(text: Any, url: Any) -> str:
    """``[text](url)`` with both escaped; the plain escaped text when the URL is unusable."""
    target = safe_url(url)
    label = escape_md(text) or target
    return f"[{label}]({target})" if target else label


RunLink = Callable[[Mapping[str, Any]], str]


def wandb_link(row: Mapping[str, Any]) -> str:
    """Default run link: the run name linked to its W&B page (reports outside the site)."""
    name = row.get("name") or row.get("run_id")
    return md_link(name, row.get("run_url"))


def _as_float(value: Any) -> float | None:
    """``value`` as a float, None when it is not a number at all (text, None, a list)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt_num(value: Any, digits: int = 3) -> str:
    """A number for a table: fixed decimals, '-' for missing, 'NaN'/'inf' spelled out."""
    x = _as_float(value)
    if x is None:
        return "-"
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 1e6):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    x = _as_float(value)
    if x is None:
        return "-"
    return "-" if math.isnan(x) else f"{100 * x:.{digits}f}%"


def fmt_int(value: Any) -> str:
    x = _as_float(value)
    if x is None:
        return "-"
    return "-" if not math.isfinite(x) else str(int(x))


def table(df: pd.DataFrame) -> str:
    """A pipe table of preformatted strings (DataFrame.to_markdown, no number re-parsing).

    Cells are written as given: callers escape user text with escape_md / md_link."""
    if df.empty:
        return ""
    text = df.astype(str).to_markdown(index=False, disable_numparse=True)
    return "\n".join(line.rstrip() for line in text.splitlines())


#: The minus sign of page text (U+2212); CSV and LaTeX downloads keep ASCII '-'.
MINUS = "\u2212"
#: Below this many pairs (or runs) a probability is shown as the fraction it is, k/n.
FRACTION_BELOW = 10


def fmt_sig(value: Any, digits: int = 3, minus: str = MINUS) -> str:
    """A number for page text: ``digits`` significant digits (trailing zeros kept: 0.0500),
    integers in full, a real minus sign, never "-0" or "-0.00" (a value that rounds to zero
    is "0"), "—" for missing, "NaN" / "inf" spelled out. ``minus="-"`` for downloads."""
    x = _as_float(value)
    if x is None:
        return "—"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else f"{minus}inf"
    if x == int(x) and abs(x) < 1e15:
        text = str(abs(int(x)))
    elif abs(x) >= 10**digits and abs(x) < 1e15:
        text = f"{abs(x):.0f}"
    else:
        text = f"{abs(x):#.{digits}g}".rstrip(".")
        if "e" in text:
            mantissa, exp = text.split("e")
            text = f"{mantissa.rstrip('.')}e{int(exp)}"
    if float(text) == 0:
        return "0"
    return (minus if x < 0 else "") + text.replace("-", minus)


def fmt_fraction(p: Any, n: Any, digits: int = 3) -> str:
    """A proportion over n items as "k/n" when n < ``FRACTION_BELOW`` and p * n is a whole
    number (P(improve) 0.5556 of 9 pairs is 5/9), else as a number (``fmt_sig``)."""
    try:
        x, count = float(p), int(n)
    except (TypeError, ValueError):
        return fmt_sig(p, digits)
    k = x * count
    if 0 < count < FRACTION_BELOW and math.isfinite(k) and abs(k - round(k)) < 1e-9:
        return f"{int(round(k))}/{count}"
    return fmt_sig(x, digits)


def interval_kind(low: Any, high: Any) -> str:
    """Which way a confidence interval reads: "none" (no interval, e.g. n < 2), "zero"
    (zero width: every pair gave the same delta, so the t interval says nothing about
    spread) or "range". Templates branch on it (reports/_numbers.md.j2)."""
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        return "none"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "none"
    return "zero" if lo == hi else "range"


def fmt_fixed(value: Any, decimals: int = 2, minus: str = MINUS) -> str:
    """A number with fixed decimals (heatmap cells, aligned columns): a real minus sign, and
    a value that rounds to zero is "0.00", never "-0.00" (float noise like -1e-17 included)."""
    x = _as_float(value)
    if x is None:
        return "—"
    if not math.isfinite(x):
        return fmt_sig(x, minus=minus)
    text = f"{abs(x):.{decimals}f}"
    return text if float(text) == 0 or x > 0 else minus + text


def fmt_measured(value: Any, digits: int = 3) -> str:
    """A measured value (a loss, a delta) for page text: like ``fmt_sig`` but a whole number
    keeps its significant zeros (3.00, not 3: a loss of 3 nats was measured to 3 digits too);
    a missing value (None, NaN) is "—"."""
    x = _as_float(value)
    if x is None:
        return "—"
    if math.isnan(x):
        return "—"
    if not math.isfinite(x) or x == 0 or x != int(x) or abs(x) >= 10**digits:
        return fmt_sig(x, digits)
    return (MINUS if x < 0 else "") + f"{abs(x):#.{digits}g}".rstrip(".")


def setting_slug(setting: str) -> str:
    """A setting label as a stable id part: 'learning_rate=0.001' -> 'learning-rate-0-001'
    (figure ids, and the anchor of a setting's section: ``setting-<slug>``)."""
    return re.sub(r"[^a-z0-9]+", "-", setting.lower()).strip("-") or "all"


#: Where a report template places a figure (``{{ figure("fig-forest") }}``): an HTML comment,
#: invisible in any Markdown renderer; the site's report page (templates/pages/report.md)
#: puts the figure there and lists the figures no template placed at the end.
FIGURE_MARK = "<!-- altgrad-figure: "
FIGURE_MARK_END = " -->"


def figure_mark(fig_id: str) -> str:
    """The placeholder of one figure in a report's Markdown (see ``FIGURE_MARK``)."""
    return f"{FIGURE_MARK}{escape_md(fig_id)}{FIGURE_MARK_END}"


#: The run table's loss columns by what they mean: every page names them alike.
METRIC_NAMES = {"final_loss": "final train loss", "final_val_loss": "final validation loss"}


def metric_name(metric: str) -> str:
    """How every table, sentence and page names a metric column: final_val_loss -> final
    validation loss, final_loss -> final train loss; a logged key keeps its spelling
    (final_eval/f1_micro -> final eval/f1_micro). The ``metric_label`` filter of both
    template environments."""
    if metric in METRIC_NAMES:
        return METRIC_NAMES[metric]
    if not metric.startswith("final_"):
        return metric.replace("_", " ")
    return "final " + metric.removeprefix("final_")
