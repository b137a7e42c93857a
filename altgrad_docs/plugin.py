"""The MkDocs plugin ``altgrad``: the whole report site from ``plugins: [search, altgrad]``.

A thin adapter between MkDocs' events and the site pipeline (:mod:`altgrad_docs.site`):

* options declared as MkDocs config options (:mod:`.site.options`): an unknown or mistyped
  one fails the build with its name and the nearest valid one; ``ALTGRAD_*`` overrides;
* ``on_config``: the theme additions, assets and Markdown extensions (:mod:`.site.bundle`);
* ``on_files``: every generated page through mkdocs-gen-files' editor
  (:func:`altgrad_docs.site.pipeline.build`, which also makes the nav when the config has
  none: :mod:`altgrad_docs.site.nav`), run pages marked as not in the nav;
* the rest keeps ``mkdocs serve --dirty`` fast and right (:mod:`.site.incremental`: which
  pages changed, the whole search index, a full rebuild when everything changed) and lets
  MkDocs convert the pages while the report figures are drawn.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority

from .site import bundle, incremental, options as site_options

log = logging.getLogger("mkdocs.plugins.altgrad")

class AltgradPlugin(BasePlugin[site_options.AltgradOptions]):
    """``plugins: - altgrad`` (options: :class:`altgrad_docs.site.options.AltgradOptions`)."""

    def __init__(self) -> None:
        self.dirty = False
        self.rebuilt: set[str] = set()
        self.options: dict[str, Any] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def load_config(self, options: dict[str, Any], config_file_path: str | None = None):
        """MkDocs' checks, with an unknown option an error (MkDocs only warns)."""
        errors, warnings = super().load_config(options, config_file_path)
        unknown, rest = site_options.unknown_as_errors(list(warnings))
        return [*errors, *unknown], rest

    # -- configuration ---------------------------------------------------------------
    def on_startup(self, *, command: str, dirty: bool) -> None:
        self.dirty = dirty

    def on_config(self, config: Any) -> Any:
        legacy = (config.extra or {}).get("altgrad")
        if legacy:
            log.info("altgrad: extra.altgrad in mkdocs.yml is deprecated --> Do: move its keys under "
                     "the plugin (plugins: - altgrad: ...); they are read as before meanwhile.")
        try:
            self.options = site_options.effective(dict(self.config), legacy)
            bundle.add_markdown_extensions(config)
        except (site_options.OptionsError, bundle.BundleError) as exc:
            raise PluginError(f"altgrad: {exc}") from None
        if config.theme.name != "material":
            log.warning("altgrad: the generated pages are made for the Material theme, not %r (the "
                        "stale-data banner, tables and admonitions need it) --> Do: set theme: {name: "
                        "material} in mkdocs.yml.", config.theme.name)
        bundle.add_theme(config)
        bundle.add_assets(config)
        templates = Path(config.config_file_path).resolve().parent / self.options["templates"]
        if templates.is_dir() and str(templates) not in [str(w) for w in config.watch]:
            config.watch.append(str(templates))
        return config

    # -- the build ---------------------------------------------------------------------
    def on_pre_build(self, *, config: Any) -> None:
        memory = incremental.memory_for(config.site_dir)
        memory.direct_assets, memory.assets = True, []
        self.rebuilt = set()

    def on_files(self, files: Any, *, config: Any) -> Any:
        from mkdocs_gen_files.editor import FilesEditor

        from .site.pipeline import build

        self._cleanup()
        self._tmp = tempfile.TemporaryDirectory(prefix="altgrad_pages_")
        with FilesEditor(files, config, self._tmp.name) as editor:
            build(config, editor.open, self.options)
        files = editor.files
        memory = incremental.memory_for(config.site_dir)
        memory.direct_assets = False
        incremental.add_assets(files, config, memory)
        if self.dirty:
            incremental.start_build(config, memory, [bundle.THEME_DIR])
        keep_run_pages_out_of_nav(files)  # the nav (site/nav.py) was made by build()
        return files

    def on_env(self, env: Any, *, config: Any, files: Any) -> Any:
        from .jinja_cache import keep_compiled
        from .site.pipeline import cache_root_of, compiled_templates, finish_drawing

        # every page's Markdown is converted; MkDocs copies the files next: the report
        # figures drawn meanwhile (a cold build) must be there now
        finish_drawing()
        if env.bytecode_cache is None:  # the theme's compiled templates, kept between builds:
            # compiling Material's ~45 templates is ~0.2 s of every build (benchmarks/site.md)
            root = Path(config.config_file_path).resolve().parent
            keep_compiled(env, compiled_templates(cache_root_of(root)) / "theme")
        if self.dirty:  # every page exists now; URLs as the search index writes them
            memory = incremental.memory_for(config.site_dir)
            memory.page_urls = [f.page.url for f in files.documentation_pages() if f.page is not None]
        return env

    def on_page_context(self, context: Any, *, page: Any, config: Any, nav: Any) -> Any:
        self.rebuilt.add(page.url)
        return context

    @event_priority(50)  # before Material's search plugin writes its index
    def on_post_build(self, *, config: Any) -> None:
        search = config.plugins.get("material/search") or config.plugins.get("search")
        if self.dirty and search is not None and hasattr(search, "search_index"):
            memory = incremental.memory_for(config.site_dir)
            incremental.finish_search_index(search, memory, self.rebuilt)
        self._cleanup()

    def on_build_error(self, *, error: Exception) -> None:
        from .site.pipeline import cancel_drawing

        cancel_drawing()
        incremental.forget_pending_assets()
        self._cleanup()

    def on_shutdown(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def keep_run_pages_out_of_nav(files: Any) -> None:
    """Run pages are linked from the Runs index, never from the nav: marked so, MkDocs does
    not list a thousand of them as pages missing from the nav."""
    from mkdocs.structure.files import InclusionLevel

    for file in files.documentation_pages():
        if file.src_uri.startswith("runs/") and file.src_uri != "runs/index.md" and file.inclusion.is_in_nav():
            file.inclusion = InclusionLevel.NOT_IN_NAV
