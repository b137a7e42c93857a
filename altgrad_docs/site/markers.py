"""Hand-written pages with markers, and a home page that always carries the findings.

A hand-written page (a Markdown file at the top of ``docs/``) may hold markers, each replaced
by the partial template of its name when the site is built:

* ``<!-- altgrad:findings -->``  the headline findings (``partials/findings.md``)
* ``<!-- altgrad:data -->``      what the snapshot holds (``partials/data.md``)
* ``<!-- altgrad:design -->``    the study's design, as inferred or set (``partials/design.md``)
* ``<!-- altgrad:bibtex -->``    the BibTeX entry of the snapshot (``partials/bibtex.md``)
* ``<!-- altgrad:statistics -->`` / ``<!-- altgrad:family -->``  the data's size and the one
  family of comparisons with its wording rules, for Methods (``partials/statistics.md``,
  ``partials/family.md``; numbers from the findings, analysis/findings.py)

Without a findings marker anywhere, the home page still gets its findings: they are added at
the end of ``docs/index.md``, or, with no ``index.md`` at all, a home page is generated from
``pages/home.md`` (title, findings, data, design).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .incremental import StableWriter
from .render import render

MARKER = re.compile(r"<!--\s*altgrad:([a-z_]+)\s*-->")
FINDINGS = "<!-- altgrad:findings -->"


def fill_markers(env: Any, docs_dir: Path, context: dict[str, Any], writer: StableWriter,
                 site_name: str = "") -> None:
    """Write every top-level page with markers filled, and the home page's findings."""
    pages = {path.name: path.read_text(encoding="utf-8") for path in sorted(docs_dir.glob("*.md"))}
    has_findings = any(MARKER.search(text) and "findings" in _names(text) for text in pages.values())
    if not has_findings:
        if "index.md" in pages:
            pages["index.md"] = pages["index.md"].rstrip("\n") + "\n\n" + render(env, "partials/home_findings.md")
        else:
            pages["index.md"] = render(env, "pages/home.md", site_name=site_name)
    for name, text in pages.items():
        if not MARKER.search(text):
            continue
        filled = MARKER.sub(lambda m: render(env, f"partials/{m.group(1)}.md", **context), text)
        writer.text(name, filled)


def _names(text: str) -> set[str]:
    return {m.group(1) for m in MARKER.finditer(text)}
