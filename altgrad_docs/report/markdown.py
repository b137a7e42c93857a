"""Markdown building blocks: escaping user text, links, number formatting, tables.

Run names and config values are written by people and may hold ``|``, backticks,
``<script>``, brackets or newlines. In a table cell every one of them must come out as
text: HTML-significant characters become entities, Markdown punctuation becomes a numeric
character reference (which no Markdown parser treats as syntax), and newlines a space.
"""

from __future__ import annotations

import html
import math
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


def fmt_num(value: Any, digits: int = 3) -> str:
    """A number for a table: fixed decimals, '-' for missing, 'NaN'/'inf' spelled out."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) < 10 ** -digits or abs(x) >= 1e6):
        return f"{x:.{digits}g}"
    return f"{x:.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(x) else f"{100 * x:.{digits}f}%"


def fmt_int(value: Any) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(x) else str(int(x))


def table(df: pd.DataFrame) -> str:
    """A pipe table of preformatted strings (DataFrame.to_markdown, no number re-parsing).

    Cells are written as given: callers escape user text with escape_md / md_link."""
    if df.empty:
        return ""
    text = df.astype(str).to_markdown(index=False, disable_numparse=True)
    return "\n".join(line.rstrip() for line in text.splitlines())
