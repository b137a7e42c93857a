"""What the generated pages need from the site around them, shipped in the package.

* the theme additions (``altgrad_docs/theme/``: ``main.html`` with the stale-data banner and
  the data stamp, ``partials/altgrad-stamp.html``), put in the theme's search path after the
  site's own ``custom_dir`` (a ``main.html`` there replaces ours);
* the assets under ``altgrad_docs/theme/assets/`` (the site's CSS, the tables' and run
  charts' JavaScript, the vendored uPlot): MkDocs copies a theme folder's static files, and
  a file of the same path in ``docs/`` replaces the shipped one;
* the stylesheets and scripts every page loads (added to ``extra_css``/``extra_javascript``
  when the config does not list them);
* the Markdown extensions the templates write for (added when missing; one that cannot be
  imported is an error that names it).

Used by the plugin (:mod:`altgrad_docs.plugin`) and by the rendered docs tree (:mod:`.tree`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

THEME_DIR = Path(__file__).resolve().parents[1] / "theme"
ASSETS = "assets"
EXTRA_CSS = ("assets/stylesheets/altgrad.css",)
# runcharts.js loads the vendored uPlot (assets/vendor/uplot/) only on pages with a run chart.
EXTRA_JAVASCRIPT = ("assets/javascripts/tables.js", "assets/javascripts/runcharts.js")
#: (extension, its options when the config names it without any, the package it comes from)
MARKDOWN_EXTENSIONS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("tables", {}, "Markdown"),
    ("attr_list", {}, "Markdown"),
    ("md_in_html", {}, "Markdown"),
    ("admonition", {}, "Markdown"),
    ("footnotes", {}, "Markdown"),
    ("pymdownx.details", {}, "pymdown-extensions"),
    ("pymdownx.superfences", {}, "pymdown-extensions"),
    ("toc", {"permalink": True}, "Markdown"),
)


class BundleError(Exception):
    """Something the pages need is missing (the message names it and how to get it)."""


def add_theme(config: Any) -> None:
    """Our theme folder right after the site's custom_dir (or first without one)."""
    dirs = config.theme.dirs
    if str(THEME_DIR) not in dirs:
        dirs.insert(1 if config.theme.custom_dir else 0, str(THEME_DIR))


def add_assets(config: Any) -> None:
    """The site's CSS and scripts, each once, after what the config lists."""
    from mkdocs.config.config_options import ExtraScriptValue

    for css in EXTRA_CSS:
        if css not in [str(x) for x in config.extra_css]:
            config.extra_css.append(css)
    for js in EXTRA_JAVASCRIPT:
        if js not in [str(x) for x in config.extra_javascript]:
            config.extra_javascript.append(ExtraScriptValue(js))


def add_markdown_extensions(config: Any) -> list[str]:
    """Add the extensions the pages use that the config lacks; the names added."""
    added = []
    for name, options, package in MARKDOWN_EXTENSIONS:
        module = name if "." in name else f"markdown.extensions.{name}"
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise BundleError(f"the generated pages need the Markdown extension {name}, which cannot "
                              f"be imported ({exc}) --> Do: pip install {package}.") from None
        if name not in config.markdown_extensions:
            config.markdown_extensions.append(name)
            added.append(name)
        if options and not config.mdx_configs.get(name):
            config.mdx_configs[name] = dict(options)
    return added


def theme_files() -> list[Path]:
    """Every file of the shipped theme folder (the dirty build's fingerprint covers them)."""
    return sorted(p for p in THEME_DIR.rglob("*") if p.is_file())


def tree_additions(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a config as written) with what the plugin adds at build time written out, for
    a docs tree built without the plugin."""
    out = dict(raw)
    out["extra_css"] = list(raw.get("extra_css") or []) + [
        c for c in EXTRA_CSS if c not in (raw.get("extra_css") or [])]
    listed = [x if isinstance(x, str) else x.get("path") for x in raw.get("extra_javascript") or []]
    out["extra_javascript"] = list(raw.get("extra_javascript") or []) + [
        j for j in EXTRA_JAVASCRIPT if j not in listed]
    exts = list(raw.get("markdown_extensions") or [])
    names = [e if isinstance(e, str) else next(iter(e)) for e in exts]
    for name, options, _ in MARKDOWN_EXTENSIONS:
        if name not in names:
            exts.append({name: options} if options else name)
    out["markdown_extensions"] = exts
    return out
