"""What lets ``mkdocs serve --dirty`` rebuild only what changed, and still be right.

MkDocs' dirty build renders a page again only when its source file is newer than its
output. Three things stand in the way with this site, each handled here:

1. gen-files writes every generated file afresh into a new temporary folder, so each one
   looks new. :class:`StableWriter` gives a page whose bytes are those of this process's
   previous build that build's mtime back. Figures and table downloads already are files
   in the cache: with the plugin active they are not copied into the generated pages' folder at all
   (1,200 copies were a second of every rebuild at 200 runs) but added to MkDocs' files
   straight from the cache (:func:`add_assets`), keeping the cache files' older mtimes.
2. Material's search plugin, in a dirty build, merges the previous index as if exactly one
   page had changed (it drops the entries under the first rebuilt page's URL, so a rebuilt
   home page drops everything). :func:`merge_search_entries` keeps one entry list per page.
3. Some changes reach every page without changing its source: mkdocs.yml (nav, theme,
   extensions), the theme overrides, the data stamp of a new snapshot.
   :func:`build_fingerprint` covers them; when it changes, the plugin empties the site folder
   and the build is a full one.

The state lives per site folder for the life of the process (the ``mkdocs serve``
process); a fresh process always starts with a full build.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Iterable

OpenFile = Callable[..., IO]
Entry = dict[str, Any]


@dataclass
class SiteMemory:
    """What one site folder's previous build in this process wrote."""

    written: dict[str, str] = field(default_factory=dict)  # name -> identity of its content
    mtimes: dict[str, int] = field(default_factory=dict)   # name -> mtime_ns given then
    fingerprint: str | None = None
    search: dict[str, list[Entry]] = field(default_factory=dict)  # page URL -> its entries
    page_urls: list[str] = field(default_factory=list)
    direct_assets: bool = False  # set by the plugin for the length of one build
    assets: list[tuple[str, Path]] = field(default_factory=list)  # (site path, cache file)
    pending: set[Path] = field(default_factory=set)  # cache files still being drawn


_MEMORY: dict[str, SiteMemory] = {}


def memory_for(site_dir: str | os.PathLike[str]) -> SiteMemory:
    return _MEMORY.setdefault(os.path.abspath(site_dir), SiteMemory())


def forget_pending_assets() -> None:
    """After a failed build: the next build starts without the half-collected assets."""
    for memory in _MEMORY.values():
        memory.direct_assets, memory.assets, memory.pending = False, [], set()


@dataclass
class StableWriter:
    """Writes generated files through ``open_file`` so that unchanged ones look unchanged."""

    open_file: OpenFile
    memory: SiteMemory

    def text(self, name: str, text: str) -> None:
        data = text.encode("utf-8")
        identity = hashlib.sha256(data).hexdigest()
        with self.open_file(name, "wb") as fh:
            fh.write(data)
            path = fh.name
        if self.memory.written.get(name) == identity and name in self.memory.mtimes:
            mtime = self.memory.mtimes[name]
            os.utime(path, ns=(mtime, mtime))
        else:
            self.memory.written[name] = identity
            self.memory.mtimes[name] = os.stat(path).st_mtime_ns

    def copy(self, name: str, source: Path) -> None:
        """A cached file: handed to the plugin when it is active, else copied into the build."""
        if self.memory.direct_assets:
            self.memory.assets.append((name, source))
            return
        with self.open_file(name, "wb") as fh, open(source, "rb") as src:
            shutil.copyfileobj(src, fh)


def _identity(path: Path) -> str:
    stat = os.stat(path)
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


def add_assets(files: Any, config: Any, memory: SiteMemory) -> None:
    """Add the build's cached figures and tables to MkDocs' files, read from the cache.

    A site path that now names another cache file than in the previous build is added by
    content, which MkDocs always copies: the new file may be older than the site's copy.
    """
    from mkdocs.structure.files import File

    for name, source in memory.assets:
        if Path(source) in memory.pending:  # drawn while MkDocs converts the pages: newer
            files.append(File.generated(config, name, abs_src_path=str(source)))  # than any copy
            memory.written.pop(name, None)  # the next build takes it as it is then
            continue
        identity = _identity(source)
        if memory.written.get(name, identity) == identity:
            files.append(File.generated(config, name, abs_src_path=str(source)))
        else:
            files.append(File.generated(config, name, content=source.read_bytes()))
        memory.written[name] = identity
    memory.assets, memory.pending = [], set()


def build_fingerprint(config_file: Path, theme_dirs: Iterable[Path], stamp: Any) -> str:
    """A hash of what every page depends on beyond its own source file."""
    digest = hashlib.sha256(config_file.read_bytes())
    for folder in theme_dirs:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update(repr(stamp).encode())
    return digest.hexdigest()


def page_of(location: str) -> str:
    """The page URL of a search entry's location (``runs/x/#history`` -> ``runs/x/``)."""
    return location.split("#", 1)[0]


def merge_search_entries(
    previous: dict[str, list[Entry]], built: list[Entry], rebuilt: set[str], page_urls: list[str]
) -> tuple[list[Entry], dict[str, list[Entry]]]:
    """The whole index after a dirty build, and the per-page memory for the next one.

    ``built`` holds the entries of the pages rendered in this build (``rebuilt``, by URL; a
    rebuilt page may have none, e.g. when excluded from search); every other page keeps its
    entries from ``previous``. Pages no longer in ``page_urls`` are dropped. The index lists
    pages in ``page_urls`` order, so it does not depend on what was rebuilt.
    """
    fresh: dict[str, list[Entry]] = {}
    for entry in built:
        fresh.setdefault(page_of(entry["location"]), []).append(entry)
    pages = {url: entries for url, entries in previous.items() if url not in rebuilt} | fresh
    kept = {url: pages[url] for url in page_urls if url in pages}
    return [entry for url in page_urls for entry in kept.get(url, [])], kept


def start_build(config: Any, memory: SiteMemory, shipped_theme: Iterable[Path] = ()) -> None:
    """After the pages are generated: empty the site folder if every page must be rebuilt
    (the first build in this process, or a new fingerprint). ``shipped_theme``: theme folders
    the plugin adds (their files count like the site's own custom_dir)."""
    from mkdocs.utils import clean_directory

    theme_dirs = [Path(config.theme.custom_dir)] if config.theme.custom_dir else []
    theme_dirs += [Path(d) for d in shipped_theme]
    fingerprint = build_fingerprint(Path(config.config_file_path), theme_dirs,
                                    config.extra.get("altgrad_stamp"))
    if fingerprint == memory.fingerprint:
        return
    if memory.fingerprint is not None:
        logging.getLogger("mkdocs.plugins.altgrad").info(
            "altgrad: mkdocs.yml, the theme overrides or the snapshot changed: rebuilding every page")
    clean_directory(config.site_dir)
    memory.fingerprint, memory.search = fingerprint, {}


def finish_search_index(search_plugin: Any, memory: SiteMemory, rebuilt: set[str]) -> None:
    """Before Material writes its index: make it the whole site's, not this build's pages."""
    index = search_plugin.search_index
    index.entries, memory.search = merge_search_entries(
        memory.search, index.entries, rebuilt, memory.page_urls)
    search_plugin.search_index_prev = None  # so Material does not merge a second time
