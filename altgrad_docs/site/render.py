"""Templates -> Markdown for the site: the Jinja2 environment and the escaping rules.

Run names, config values and every other string that comes from the data are user text.
The environment escapes *every* ``{{ expression }}`` for Markdown by default (``finalize``):
ASCII punctuation that Markdown or HTML could read as markup becomes a numeric character
reference, so ``<img src=x onerror=alert(1)>`` or ``[x](javascript:...)`` or a ``|`` in a
table cell render as the characters they are. The output is also safe inside a quoted HTML
attribute. Trusted Markdown (our own partials, links we build) is passed as ``Markup``;
the filters below are the only ways to make it:

* ``url``      -- a path segment (run id) percent-encoded for a link target;
* ``ext_url``  -- an absolute http(s) URL, percent-encoded where Markdown would stop; else ""
* ``num``      -- a number formatted for a table cell (``NaN`` and ``inf`` spelled out);
* ``sig``      -- a number for page text: 3 significant digits, a real minus sign (U+2212);
* ``frac``     -- a proportion of n < 10 items as "k/n" (``p | frac(n)``), else as ``sig``;
* ``trusted``  -- Markdown the project itself produced (e.g. ReportGenerator output).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import pandas as pd
from markupsafe import Markup

from ..jinja_cache import keep_compiled
from ..report.markdown import fmt_fraction, fmt_sig, interval_kind, metric_name

#: Characters that are written as &#N; in user text (letters, digits, space, . , - / % stay).
_SPECIAL = set("\\`*_{}[]()<>#+!|&\"'~=:;^$@?")


def md_text(value: Any) -> Markup:
    """User text as inert Markdown/HTML: punctuation as character references, one line. A
    space at either end stays (one), so a separator such as ``"; "`` keeps its space."""
    raw = str(value)
    text = " ".join(raw.split())
    if raw[:1].isspace():
        text = " " + text
    if raw[-1:].isspace() and text != " ":
        text += " "
    return Markup("".join(f"&#{ord(c)};" if c in _SPECIAL else c for c in text))


def _finalize(value: Any) -> Any:
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    if isinstance(value, float):
        return fmt_num(value)
    return md_text(value)


def url_segment(value: Any) -> Markup:
    """One path segment of a relative link (a run id), percent-encoded."""
    return Markup(quote(str(value), safe=""))


def ext_url(value: Any) -> Markup:
    """An absolute http(s) URL safe inside a Markdown link target; "" for anything else."""
    url = str(value or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return Markup("")
    return Markup(quote(url, safe="/:?#&=%+@~.,;!*-_"))


def fmt_num(value: Any, digits: int = 4) -> Markup:
    """A number for a table cell: 4 significant digits, NaN/inf spelled, "" for missing."""
    if value is None or value is pd.NA:
        return Markup("")
    try:
        x = float(value)
    except (TypeError, ValueError):
        return md_text(value)
    if math.isnan(x):
        return Markup("NaN")
    if math.isinf(x):
        return Markup("inf" if x > 0 else "&#45;inf")
    if x == int(x) and abs(x) < 1e15:
        return Markup(str(int(x)))
    return Markup(f"{x:.{digits}g}")


def fence(value: Any, lang: str = "text") -> Markup:
    """Text as a fenced code block (shown verbatim), fenced longer than any backtick run in it."""
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return Markup(f"{ticks}{lang}\n{text}\n{ticks}")


def plain_title(value: Any) -> str:
    """A page title for front matter: letters, digits and ``._-`` only, JSON-quoted."""
    return json.dumps(re.sub(r"[^A-Za-z0-9._ -]", "_", str(value)))


def dash(value: Any) -> Any:
    """"-" for a missing value (None, NaN, NA, ""), else the value (escaped as usual)."""
    if value is None or value is pd.NA or value == "" or (isinstance(value, float) and math.isnan(value)):
        return Markup("-")
    return value


def trusted(value: Any) -> Markup:
    """Markdown produced by this project (never user text), passed through as is."""
    return Markup(str(value))


def make_environment(template_dir: Path | list[Path], compiled: Path | None = None) -> jinja2.Environment:
    """The one Jinja2 environment of the site, over ``templates/`` (pages/ and partials/): one
    folder or a search path (the site's own folder first, then the shipped templates);
    compiled templates kept in memory and, given a folder ``compiled``, there too."""
    folders = template_dir if isinstance(template_dir, list) else [template_dir]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in folders]),
        autoescape=True,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )
    env.filters.update(url=url_segment, ext_url=ext_url, num=fmt_num, trusted=trusted, text=md_text,
                       fence=fence, title=plain_title, dash=dash, interval_kind=interval_kind,
                       sig=lambda v, digits=3: Markup(fmt_sig(v, digits)),
                       frac=lambda p, n, digits=3: Markup(fmt_fraction(p, n, digits)),
                       metric_label=metric_name)
    return keep_compiled(env, compiled)


def render(env: jinja2.Environment, template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)
