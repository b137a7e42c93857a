"""One front door for the site: ``altgrad-docs build|serve [--engine mkdocs|zensical]``.

MkDocs (the default) builds from the repository as it always has: gen-files runs the
pipeline inside the build, and ``serve`` re-renders pages on every edit. Zensical runs no
gen-files script and no hook, so for it the pipeline first renders the plain docs tree
(:mod:`.tree`), and Zensical builds that. What the Zensical route lacks is listed in
:data:`.tree.ZENSICAL_GAPS`; the rendered tree carries the list in ENGINES.md and the front
door logs it on every Zensical build, so the difference is never silent.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

log = logging.getLogger("mkdocs.plugins.altgrad")

ENGINES = ("mkdocs", "zensical")

@dataclass(frozen=True)
class FrontDoor:
    """What the user asked for: engine, action, config, tree folder, engine arguments."""

    engine: str
    action: str
    config_file: Path
    tree: Path
    site_dir: Path
    extra: list[str]


def parse(action: str, argv: Sequence[str]) -> FrontDoor:
    """Our options; every other argument goes to the engine unchanged."""
    parser = argparse.ArgumentParser(
        prog=f"altgrad-docs {action}",
        description=f"{action} the site with MkDocs (default) or Zensical; other options go to the engine")
    parser.add_argument("--engine", choices=ENGINES, default="mkdocs")
    parser.add_argument("-f", "--config-file", default="mkdocs.yml", type=Path)
    parser.add_argument("-d", "--site-dir", type=Path, default=None,
                        help="where the built site goes (default: site/ beside the config)")
    parser.add_argument("--tree", type=Path, default=None,
                        help="zensical: where the docs tree is rendered (default .cache/altgrad-tree)")
    args, extra = parser.parse_known_args(list(argv))
    root = args.config_file.resolve().parent
    tree = args.tree or root / ".cache" / "altgrad-tree"
    site_dir = args.site_dir or root / "site"
    return FrontDoor(args.engine, action, args.config_file, tree, site_dir, extra)


def mkdocs_command(door: FrontDoor) -> list[str]:
    command = [sys.executable, "-m", "mkdocs", door.action, "-f", str(door.config_file)]
    if door.action == "build":
        command += ["--site-dir", str(door.site_dir)]
    if door.action == "serve" and "--dirty" not in door.extra and "--no-dirty" not in door.extra:
        command.append("--dirty")  # a rebuild renders only the pages whose content changed
    return command + door.extra


def zensical_command(door: FrontDoor) -> list[str]:
    return [sys.executable, "-m", "zensical", door.action, "-f", str(door.tree / "mkdocs.yml"),
            *door.extra]


def engine_env() -> dict[str, str]:
    return {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}


def run(door: FrontDoor) -> int:
    """Build or serve; the engine's exit status."""
    if door.engine == "mkdocs":
        return call(mkdocs_command(door), env=engine_env())
    require_zensical()
    from .tree import ZENSICAL_GAPS, render_tree

    render_tree(door.config_file, door.tree)
    for gap in ZENSICAL_GAPS:
        log.warning("altgrad: Zensical lacks: %s (see %s)", gap, door.tree / "ENGINES.md")
    code = call(zensical_command(door), cwd=door.tree, env=engine_env())
    if code == 0 and door.action == "build":
        publish(door.tree / "site", door.site_dir)
    return code


def call(command: list[str], **kwargs: Any) -> int:
    """Run the engine and return its exit status; SIGINT and SIGTERM sent to this process
    (Ctrl-C, or ``kill`` of the front door's pid) are passed on to the engine, so that a
    stopped ``altgrad-docs serve`` leaves no ``mkdocs serve`` holding the port. An engine
    ended by a signal gives 128 + its number, as a shell reports it."""
    child = subprocess.Popen(command, **kwargs)

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def require_zensical() -> None:
    """Zensical is an optional extra: say how to get it."""
    try:
        import zensical  # noqa: F401
    except ImportError as exc:
        raise EngineError("Zensical is not installed in this environment. --> Do: "
                          "bash scripts/setup.sh zensical (or pip install -e '.[zensical]').") from exc


def publish(built: Path, site_dir: Path) -> None:
    """Zensical keeps its site inside the project folder: copy it where the user asked."""
    if site_dir.resolve() == built.resolve():
        return
    if site_dir.exists():
        shutil.rmtree(site_dir)
    shutil.copytree(built, site_dir)
    log.info("altgrad: Zensical site written to %s", site_dir)


class EngineError(Exception):
    """The engine cannot run (the message says what to do)."""
