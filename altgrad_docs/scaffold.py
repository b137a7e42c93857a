"""``altgrad-docs new DIR``: a new report site that builds at once with ``mkdocs build --strict``.

Writes a minimal ``mkdocs.yml`` (the ``altgrad`` plugin and where its data come from;
``site_url`` from the git remote when there is one), ``docs/index.md`` with the findings,
data and design markers, the GitHub workflows (a strict build of every push; a Pages
deploy), Dependabot, ``.gitignore``, ``requirements.txt`` (the generator, pinned) and a README,
all rendered from ``templates/scaffold/``. The data:

* default: the demo snapshot shipped in the package (24 runs of the bundled bench);
* ``--snapshot PATH``: a copy of that snapshot;
* ``--offline-dir DIR``: the offline W&B runs there, read into a snapshot;
* ``--project ENTITY/PROJECT``: no copy; the site fetches the project at build time.

A folder that exists and holds anything is refused: nothing of the user's is overwritten.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .templates_dir import template_dir

DEMO_SNAPSHOT = Path(__file__).resolve().parent / "demo" / "snapshot"
#: The major version of each GitHub action the workflows use (Dependabot keeps them current).
ACTIONS = {"checkout": "v7", "setup_python": "v7", "cache": "v6", "configure_pages": "v6",
           "upload_pages_artifact": "v5", "deploy_pages": "v5"}
#: (template under templates/scaffold, file written in the new site)
FILES = (("mkdocs.yml.j2", "mkdocs.yml"), ("index.md.j2", "docs/index.md"), ("README.md.j2", "README.md"),
         ("gitignore.j2", ".gitignore"), ("requirements.txt.j2", "requirements.txt"),
         ("dependabot.yml.j2", ".github/dependabot.yml"),
         ("workflows/tests.yml.j2", ".github/workflows/tests.yml"),
         ("workflows/pages.yml.j2", ".github/workflows/pages.yml"))
_REMOTE = re.compile(r"github\.com[:/]+(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")


class ScaffoldError(Exception):
    """The site cannot be made where or as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class NewSite:
    root: Path
    files: list[str]
    data_note: str


def new_site(target: Path, *, project: str | None = None, snapshot: Path | None = None,
             offline_dir: Path | None = None, checkpoints: Path | None = None,
             site_name: str | None = None, version: str = "0") -> NewSite:
    """Make the site in ``target`` (a new or empty folder)."""
    from .site.options import PROJECT

    target = Path(target).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} exists and is not an empty folder; nothing was written. --> Do: "
                            "pass a new or empty folder to `altgrad-docs new`.")
    if project is not None and not PROJECT.match(project):
        raise ScaffoldError(f"--project {project!r} is not ENTITY/PROJECT. --> Do: e.g. --project my-entity/my-study.")
    existed = target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        data_note = write_data(target, project, snapshot, offline_dir, checkpoints)
        context = {"site_name": site_name or target.name.replace("-", " ").replace("_", " ").strip() or "Report",
                   "site_url": pages_url(target), "project": project, "version": version,
                   "data_note": data_note, "actions": ACTIONS}
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir() / "scaffold")),
                                 undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                                 trim_blocks=True, lstrip_blocks=True, autoescape=False)
        env.filters["yaml"] = json.dumps  # a JSON string is a YAML string
        for template, name in FILES:
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(env.get_template(template).render(**context), encoding="utf-8")
    except BaseException:  # leave nothing half made: the folder as it was (absent, or empty)
        for child in list(target.iterdir()) if existed else []:
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink()
        if not existed:
            shutil.rmtree(target, ignore_errors=True)
        raise
    return NewSite(target, [name for _, name in FILES], data_note)


def write_data(target: Path, project: str | None, snapshot: Path | None, offline_dir: Path | None,
               checkpoints: Path | None) -> str:
    """Put the site's data in place; a sentence for the README and mkdocs.yml saying what it is."""
    from .snapshot import SnapshotError, open_snapshot

    out = target / "data" / "snapshot"
    if project:
        return f"The runs come from the W&B project {project}, fetched when the site is built"
    if offline_dir is not None:
        from .fetch import fetch_offline

        result = fetch_offline(offline_dir, out, checkpoints)
        return f"The runs are the {result.n_runs} offline W&B runs read from {Path(offline_dir).name}/"
    source = Path(snapshot) if snapshot is not None else DEMO_SNAPSHOT
    try:
        snap = open_snapshot(source)
    except SnapshotError as exc:
        raise ScaffoldError(f"{exc}") from None
    shutil.copytree(snap.path, out)
    if snapshot is None:
        return (f"The runs are a demo: {snap.manifest['n_runs']} runs of altgrad-docs' small training "
                "bench; replace data/snapshot with your own (see below)")
    return f"The runs are the snapshot {snap.short_hash} ({snap.manifest['n_runs']} runs) copied from {source.name}/"


def pages_url(folder: Path) -> str | None:
    """The GitHub Pages address of the repository ``folder`` is in, from its ``origin``."""
    try:
        url = subprocess.run(["git", "-C", str(folder), "remote", "get-url", "origin"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    match = _REMOTE.search(url)
    if not match:
        return None
    owner, repo = match["owner"], match["repo"]
    if repo.lower() == f"{owner.lower()}.github.io":
        return f"https://{owner.lower()}.github.io/"
    return f"https://{owner.lower()}.github.io/{repo}/"
