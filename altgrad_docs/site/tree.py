"""The site as plain files: every page, figure, download, asset and a config, for any engine.

``altgrad-docs render --out DIR`` writes what MkDocs would build from, with the generated
pages already generated: DIR/docs (hand-written pages, markers filled, every report and run
page with its figures and downloads, the assets), DIR/overrides (the theme overrides) and
DIR/mkdocs.yml. The pages come from :func:`altgrad_docs.site.pipeline.build`, the function
the gen-files script calls, given an ``open_file`` that writes into DIR/docs: there is one
pipeline. The rendered config needs no plugin but search, no hook and no Python of this
project, so ``mkdocs build`` (or Zensical, which reads mkdocs.yml) builds it years later.

What the tree leaves out, and why the built site is still the same:

* the ``altgrad`` plugin (and ``gen-files``, for sites made before it): its work is done;
  the pages are files now, the theme additions are in DIR/overrides, the assets in
  DIR/docs/assets, and the CSS, scripts and Markdown extensions it adds are written into
  the config (:func:`.bundle.tree_additions`); what it does for ``serve --dirty`` changes
  no output.
* ``hooks``, ``watch`` and ``exclude_docs``: the templates are not in the tree, nor scripts.
* ``extra.altgrad`` (where the data came from): replaced by ``extra.altgrad_stamp``, the
  data stamp that the pipeline computed and overrides/main.html shows on every page.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import yaml

from . import bundle
from .pipeline import build
from ..templates_dir import template_path

log = logging.getLogger("mkdocs.plugins.altgrad")

#: Written into every rendered tree; a folder without it is never emptied.
MARKER_FILE = ".altgrad-tree"
#: Config keys that exist only for the in-repo build (see the module docstring).
DROPPED_KEYS = ("hooks", "watch", "exclude_docs")
GENERATOR_PLUGINS = ("gen-files", "altgrad")
#: What a Zensical build of the tree does not do that the repository's MkDocs build does.
#: Written into the tree's ENGINES.md and logged by every ``--engine zensical`` build.
ZENSICAL_GAPS = (
    "templates/, docs/ and the snapshot are read once, when the tree is rendered: "
    "`zensical serve` shows edits to the tree only (run `altgrad-docs serve --engine zensical` "
    "again to re-render)",
    "no MkDocs plugins: the altgrad plugin's fast `mkdocs serve --dirty` does not run; it changes no page",
    "no sitemap.xml.gz (Zensical writes sitemap.xml only)",
    "`zensical serve --strict` is not supported by Zensical (`zensical build --strict` is)",
)
ENGINE_PACKAGES = ("mkdocs", "mkdocs-material", "zensical")


class TreeError(Exception):
    """The tree cannot be rendered where asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Tree:
    """A rendered tree: its folder, its config file and how many files it holds."""

    root: Path
    config_file: Path
    n_files: int


def render_tree(config_file: Path, out: Path) -> Tree:
    """Render the docs tree of the site that ``config_file`` builds into ``out``.

    The tree is rendered into a new folder beside ``out`` and takes the place of an earlier
    tree only once it is complete: a render that fails (bad data, a template error, a full
    disk) leaves the earlier tree as it was."""
    config_file, out = Path(config_file).resolve(), Path(out).resolve()
    check_folder(out)
    staging = out.parent / f".{out.name}.rendering-{os.getpid()}"
    try:
        shutil.rmtree(staging, ignore_errors=True)  # left by a render killed with this pid
        staging.mkdir(parents=True)
        (staging / MARKER_FILE).write_text("altgrad-docs render wrote this folder; it may replace it again.\n")
        _render_into(config_file, staging)
        swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    n_files = sum(1 for p in out.rglob("*") if p.is_file())
    log.info("altgrad: rendered %d files into %s", n_files, out)
    return Tree(out, out / "mkdocs.yml", n_files)


def _render_into(config_file: Path, out: Path) -> None:
    from mkdocs.config import load_config

    config = load_config(str(config_file))
    plugin = config.plugins.get("altgrad")
    if plugin is not None:  # its checked options, its theme, assets and extensions
        config = plugin.on_config(config)
    docs = out / "docs"
    copy_hand_written(config, docs)
    copy_shipped(out, docs)
    build(config, _opener(docs), getattr(plugin, "options", None))
    raw = _raw_config(config_file)
    raw["nav"] = config.nav  # as the build made it (site/nav.py: the default nav, no bench page for other data)
    custom_dir = (raw.get("theme") or {}).get("custom_dir")
    if custom_dir:  # the site's own theme files over the shipped ones
        shutil.copytree(config_file.parent / custom_dir, out / "overrides", dirs_exist_ok=True)
    tree = tree_config(bundle.tree_additions(raw), config.extra.get("altgrad_stamp"), overrides=True)
    (out / "mkdocs.yml").write_text(config_text(tree, config_file.name), encoding="utf-8")
    templates = getattr(plugin, "options", {}).get("templates", "templates")
    write_notice(out, template_path(config_file.parent / templates), config.extra.get("altgrad_stamp"))


def check_folder(out: Path) -> None:
    """``out`` is missing, empty or an earlier tree (its marker file); anything else is left
    alone."""
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_FILE).is_file():
        raise TreeError(f"{out} is not empty and holds no rendered tree ({MARKER_FILE} is "
                        "missing), so it is left alone. --> Do: pass --out a new or empty folder.")


def swap_in(new: Path, out: Path) -> None:
    """Put the complete tree ``new`` where ``out`` is (an earlier tree or an empty folder,
    checked by :func:`check_folder`), so that no page of the earlier tree lingers."""
    if not out.exists():
        new.rename(out)
        return
    old = out.parent / f".{out.name}.replaced-{os.getpid()}"
    try:
        out.rename(old)
    except OSError:  # e.g. a mount point: empty it and move the new tree's files in
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        for child in new.iterdir():
            child.rename(out / child.name)
        new.rmdir()
        return
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def copy_hand_written(config: Any, docs: Path) -> None:
    """Every file of docs_dir that MkDocs would publish (exclude_docs honoured)."""
    from mkdocs.structure.files import get_files

    for file in get_files(config):
        if file.inclusion.is_excluded():
            continue
        target = docs / file.src_uri
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file.abs_src_path, target)


def copy_shipped(out: Path, docs: Path) -> None:
    """The shipped theme additions into out/overrides; its assets into docs (a hand-written
    file of the same path stays, as in a build with the plugin)."""
    for path in bundle.theme_files():
        rel = path.relative_to(bundle.THEME_DIR)
        if rel.parts[0] == bundle.ASSETS:
            target = docs / rel
            if target.exists() or "readme" in rel.name.lower():
                continue
        else:
            target = out / "overrides" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _opener(root: Path):
    """An ``open_file`` for the pipeline that writes ``name`` under ``root``."""

    def open_file(name: str, mode: str = "r", **kwargs: Any) -> IO:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, mode, **kwargs)

    return open_file


def _raw_config(config_file: Path) -> dict[str, Any]:
    """mkdocs.yml as written, with its ``!ENV`` tags resolved (MkDocs' own loader)."""
    from mkdocs.utils import yaml_load

    with open(config_file, encoding="utf-8") as fh:
        return yaml_load(fh)


def tree_config(raw: dict[str, Any], stamp: Any, overrides: bool) -> dict[str, Any]:
    """The rendered tree's config: ``raw`` without what only the in-repo build needs."""
    tree = {k: v for k, v in raw.items() if k not in DROPPED_KEYS}
    tree["docs_dir"] = "docs"
    theme = dict(tree.get("theme") or {})
    if overrides:
        theme["custom_dir"] = "overrides"
    tree["theme"] = theme
    if "plugins" in tree:  # an empty list stays empty: no key would mean MkDocs' default search
        tree["plugins"] = [p for p in tree["plugins"] or [] if _plugin_name(p) not in GENERATOR_PLUGINS]
    extra = {k: v for k, v in (tree.get("extra") or {}).items() if k != "altgrad"}
    tree["extra"] = {**extra, "altgrad_stamp": stamp}
    return tree


def write_notice(out: Path, templates: Path | list[Path], stamp: dict[str, Any]) -> None:
    """ENGINES.md: how to build the tree with each engine, and what Zensical lacks."""
    from .render import make_environment, render

    epoch = os.environ.get("SOURCE_DATE_EPOCH", "0")  # pinned to the snapshot by the pipeline
    text = render(make_environment(templates), "tree_engines.md.j2", stamp=stamp, epoch=epoch,
                  versions=engine_versions(), gaps=ZENSICAL_GAPS)
    (out / "ENGINES.md").write_text(text, encoding="utf-8")


def engine_versions() -> list[tuple[str, str]]:
    """The installed engine packages, as (name, version)."""
    found = []
    for name in ENGINE_PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return found


def _plugin_name(entry: Any) -> str:
    return entry if isinstance(entry, str) else next(iter(entry))


def config_text(tree: dict[str, Any], source_name: str) -> str:
    head = (f"# Rendered by `altgrad-docs render` from {source_name}: every page is a file in docs/.\n"
            "# Build: `mkdocs build` or `zensical build` in this folder. Do not edit: render again.\n")
    return head + yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=100)
