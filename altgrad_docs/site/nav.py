"""The site's nav when mkdocs.yml has none: the home page, the reports and the Runs index,
then the hand-written pages; never the run pages (linked from the Runs index: a thousand of
them in the nav would slow every page), and the bench page only for data the bench made.

One rule for every way a site is built: the ``altgrad`` plugin's build and the rendered tree
(``altgrad-docs render``, ``--engine zensical``) both get their nav from :func:`site_nav`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..report.bench_note import bench_nav

#: The generated pages listed in a nav made here, in this order, after the home page.
NAV_PAGES = ("format-comparison/index.md", "failure-modes/index.md", "manifold-vs-adamw/index.md",
             "formats/index.md", "runs/index.md")


def default_nav(pages: Iterable[str]) -> list[str]:
    """Home, the reports and the Runs index, then the hand-written pages; no run pages.
    ``pages``: every page's path in the docs (``runs/index.md``, ``cite.md`` ...)."""
    pages = list(dict.fromkeys(pages))
    generated = [p for p in NAV_PAGES if p in pages]
    hand = [p for p in pages if p != "index.md" and p not in generated and not p.startswith("runs/")]
    return (["index.md"] if "index.md" in pages else []) + generated + hand


def site_nav(nav: Any, docs_dir: Path, generated: Iterable[str], from_bench: bool) -> Any:
    """The nav of mkdocs.yml, or :func:`default_nav` of the hand-written pages under
    ``docs_dir`` and the ``generated`` ones (the home page is always there: one is generated
    without ``index.md``); without its bench entries when the bench did not make the data."""
    if nav is None:
        hand = sorted(p.relative_to(docs_dir).as_posix() for p in docs_dir.rglob("*.md")) if docs_dir.is_dir() else []
        nav = default_nav(["index.md", *hand, *generated])
    return bench_nav(nav, from_bench)
