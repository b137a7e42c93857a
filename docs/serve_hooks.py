"""MkDocs hooks (``hooks:`` in mkdocs.yml) that keep rebuilds fast during ``mkdocs serve``.

A thin adapter; the logic and why it is needed are in ``altgrad_docs/site/incremental.py``.
Always: figures and table downloads go from the cache into the build without a copy into
gen-files' folder, the report figures of a cold build are drawn while MkDocs converts the
pages (waited for in ``on_env``), and the theme's compiled templates are kept between
rebuilds. With ``--dirty``: a rebuild renders only the pages whose content changed, the search index
still covers the whole site, and a change every page depends on rebuilds them all.
"""

from __future__ import annotations

from mkdocs.plugins import event_priority

from altgrad_docs.site import incremental as site_incremental, pipeline as site_pipeline
from altgrad_docs.jinja_cache import KeptBytecode

_state = {"dirty": False, "rebuilt": set()}
_theme_bytecode = KeptBytecode()


def on_startup(command, dirty):
    _state["dirty"] = dirty


def on_pre_build(config):
    memory = site_incremental.memory_for(config.site_dir)
    memory.direct_assets, memory.assets = True, []
    _state["rebuilt"] = set()


@event_priority(-50)  # after gen-files has run the pipeline
def on_files(files, config):
    memory = site_incremental.memory_for(config.site_dir)
    memory.direct_assets = False
    site_incremental.add_assets(files, config, memory)
    if _state["dirty"]:
        site_incremental.start_build(config, memory)
    return files


def on_env(env, config, files):
    # every page's Markdown is converted; MkDocs copies the files next: the report figures
    # drawn meanwhile (a cold build) must be there now
    site_pipeline.finish_drawing()
    if env.bytecode_cache is None:
        env.bytecode_cache = _theme_bytecode
    if _state["dirty"]:  # every page exists now; URLs as the search index writes them
        memory = site_incremental.memory_for(config.site_dir)
        memory.page_urls = [f.page.url for f in files.documentation_pages() if f.page is not None]
    return env


def on_page_context(context, page, config, nav):
    _state["rebuilt"].add(page.url)
    return context


@event_priority(50)  # before Material's search plugin writes its index
def on_post_build(config):
    search = config.plugins.get("material/search")
    if _state["dirty"] and search is not None:
        memory = site_incremental.memory_for(config.site_dir)
        site_incremental.finish_search_index(search, memory, _state["rebuilt"])


def on_build_error(error):
    site_pipeline.cancel_drawing()
    site_incremental.forget_pending_assets()
