"""altgrad-docs: a citable report site of FP8-training runs logged to Weights & Biases.

    altgrad-docs new DIR [--project ENTITY/PROJECT | --snapshot PATH | --offline-dir DIR]
    altgrad-docs fetch --project ENTITY/PROJECT --out DIR [--states ...] [--per-page N] [--workers N]
    altgrad-docs fetch --offline-dir wandb [--checkpoints checkpoints] --out DIR
    altgrad-docs snapshot info DIR
    altgrad-docs bench ...            (the demo experiment; arguments go to altgrad_docs.bench.cli)
    altgrad-docs render --out DIR     (the docs tree as plain files, for any engine)
    altgrad-docs build|serve [--engine mkdocs|zensical] ...   (other options go to the engine)

Errors print one line on stderr (what failed, and what to do) and exit with status 2. A fetch
stopped by SIGINT or SIGTERM leaves the previous snapshot and no temporary folder, and exits
with 128 + the signal number (130, 143).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
from collections import Counter
from importlib import import_module
from typing import Callable, Sequence

from .runs import DEFAULT_STATES, STATES

FRONT_DOOR = ("build", "serve")


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="altgrad-docs", description=__doc__.split("\n")[0],
                                     epilog="`altgrad-docs COMMAND --help` tells more about a command.")
    parser.add_argument("--version", action="version", version=f"altgrad-docs {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = sub.add_parser("new", help="make a new site in DIR that builds at once (demo data)")
    new.add_argument("dir", metavar="DIR", help="a new or empty folder")
    data = new.add_mutually_exclusive_group()
    data.add_argument("--project", metavar="ENTITY/PROJECT", help="a W&B project, fetched at build time")
    data.add_argument("--snapshot", metavar="PATH", help="a snapshot folder, copied into the site")
    data.add_argument("--offline-dir", metavar="DIR", help="a wandb/ folder of offline runs, read into the site")
    new.add_argument("--checkpoints", metavar="DIR", help="with --offline-dir: checkpoints/ with failure_reports")
    new.add_argument("--name", help="the site's name (default: from DIR)")

    fetch = sub.add_parser("fetch", help="fetch runs into a snapshot folder")
    where = fetch.add_mutually_exclusive_group(required=True)
    where.add_argument("--project", metavar="ENTITY/PROJECT", help="a W&B project")
    where.add_argument("--offline-dir", metavar="PATH", help="a wandb/ folder of offline runs")
    fetch.add_argument("--checkpoints", metavar="DIR", help="checkpoints/ with failure_reports")
    fetch.add_argument("--out", required=True, metavar="DIR", help="snapshot folder to write")
    fetch.add_argument("--states", nargs="+", choices=STATES, default=list(DEFAULT_STATES),
                       help="run states to fetch (default: finished crashed failed)")
    fetch.add_argument("--per-page", type=int, default=200, help="runs per listing request")
    fetch.add_argument("--workers", type=int, default=16, help="concurrent history downloads (default 16)")
    fetch.add_argument("--timeout", type=int, default=None, help="HTTP timeout in seconds")
    fetch.add_argument("--filters", type=json.loads, default=None, metavar="JSON",
                       help='the study\'s W&B filter, sent to the server, e.g. \'{"config.learning_rate": 0.001}\'')

    snap = sub.add_parser("snapshot", help="what a snapshot folder holds (snapshot info DIR)")
    snap_sub = snap.add_subparsers(dest="snapshot_command", required=True)
    info = snap_sub.add_parser("info", help="print what a snapshot holds")
    info.add_argument("dir")
    upgrade = snap_sub.add_parser("upgrade", help="write a snapshot of an older schema in this one, "
                                  "in place (its files checked first)")
    upgrade.add_argument("dir")

    bench = sub.add_parser("bench", help="train the demo FP8 experiment (the bundled data)",
                           add_help=False)
    bench.add_argument("args", nargs=argparse.REMAINDER)

    render = sub.add_parser("render", help="write the docs tree as plain files, for any engine")
    render.add_argument("--out", required=True, metavar="DIR", help="folder to write (new, empty, "
                        "or a previous render)")
    render.add_argument("-f", "--config-file", default="mkdocs.yml", help="the site's mkdocs.yml")
    sub.add_parser("build", help="build the site (MkDocs, or --engine zensical)",
                   add_help=False)
    sub.add_parser("serve", help="serve the site while you edit it (mkdocs serve --dirty)",
                   add_help=False)
    return parser


def _fetch(args: argparse.Namespace) -> int:
    """One fetch. From W&B, the start-up objects (pandas, pyarrow, wandb: never garbage) are
    frozen out of the garbage collector before the first history download: the collections
    that decoding every run's history sets off then do not scan them again and again (0.2 to
    0.4 s of a 100-run live-rows fetch, benchmarks/fetch.md)."""
    from . import fetch

    if args.offline_dir:
        result = fetch.fetch_offline(args.offline_dir, args.out, args.checkpoints)
    else:
        result = fetch.fetch_project(args.project, args.out, states=args.states,
                                     per_page=args.per_page, workers=args.workers,
                                     timeout=args.timeout, checkpoints=args.checkpoints, filters=args.filters,
                                     before_downloads=gc.freeze)
    if not result.changed:
        print(f"nothing changed: {result.reused} runs reused; {result.snapshot.path} re-stamped "
              f"in {result.seconds:.1f} s; sha256 {result.snapshot.short_hash}")
        return 0
    skipped = f"; {result.skipped} left out (see the warnings above)" if result.skipped else ""
    print(f"wrote {result.snapshot.path}: {result.n_runs} runs ({result.fetched} fetched, "
          f"{result.reused} reused unchanged{skipped}) in {result.seconds:.1f} s; "
          f"sha256 {result.snapshot.short_hash}")
    return 0


def _fetch_command(args: argparse.Namespace, run: Callable[[argparse.Namespace], int]) -> int:
    """``run(args)`` with any OS error (disk full, a read-only folder, a file that cannot be
    read) as one line naming the path, the cause and the fix; the snapshot writer has left
    the previous snapshot as it was (it swaps a new one in only when complete)."""
    from .outdirs import os_error_line

    try:
        return run(args)
    except OSError as exc:
        raise FetchOSError(os_error_line(exc, args.out, "fetching into",
                                         f"the previous snapshot at {args.out} is unchanged")) from None


class FetchOSError(Exception):
    """An OS error during a fetch, as its one line."""


def _info(args: argparse.Namespace) -> int:
    from .snapshot import SCHEMA_VERSION, open_snapshot

    snap = open_snapshot(args.dir)
    snap.verify()  # the sha256 printed is that of the files as they are
    m = snap.manifest
    states = Counter(snap.runs(columns=["state"])["state"].tolist())
    print(f"snapshot   {snap.path}")
    print(f"source     {json.dumps(m.get('source'), sort_keys=True)}")
    print(f"fetched_at {m.get('fetched_at')}")
    print(f"runs       {m.get('n_runs')} ({', '.join(f'{k} {v}' for k, v in sorted(states.items()))})")
    print(f"versions   {', '.join(f'{k} {v}' for k, v in sorted(m.get('versions', {}).items()))}")
    print(f"schema     {snap.version}" + ("" if snap.version == SCHEMA_VERSION else
                                                  f" (this version writes {SCHEMA_VERSION}: snapshot upgrade)"))
    print(f"sha256     {snap.sha256} ({len(snap.files)} files checked)")
    return 0


def _upgrade(args: argparse.Namespace) -> int:
    from .snapshot import upgrade_snapshot

    before, snap = upgrade_snapshot(args.dir)
    print(f"{snap.path}: schema {before} -> {snap.version}; sha256 {snap.short_hash}"
          if before != snap.version else f"{snap.path}: schema {snap.version} already; nothing to do")
    return 0


def _render(args: argparse.Namespace) -> int:
    from .outdirs import check_render_output
    from .site.tree import render_tree

    check_render_output(args.config_file, args.out)
    tree = render_tree(args.config_file, args.out)
    print(f"wrote {tree.n_files} files into {tree.root}; build with `mkdocs build` or "
          f"`zensical build` there (see {tree.root / 'ENGINES.md'})")
    return 0


def _new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import __version__
    from .scaffold import new_site

    site = new_site(Path(args.dir), project=args.project, snapshot=args.snapshot, offline_dir=args.offline_dir,
                    checkpoints=args.checkpoints, site_name=args.name, version=__version__)
    print(f"made {site.root}: {', '.join(site.files)}. {site.data_note}.\n"
          f"Next: cd {args.dir} && altgrad-docs serve   (or: mkdocs build --strict)")
    return 0


def _render_command(args: argparse.Namespace) -> int:
    from mkdocs.exceptions import MkDocsException

    from .outdirs import OutputRefused, os_error_line
    from .site.tree import TreeError

    try:
        return _render(args)
    except (TreeError, MkDocsException, OutputRefused) as exc:  # a plugin error, a bad or missing config
        print(f"altgrad-docs: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"altgrad-docs: error: {os_error_line(exc, args.out, 'rendering into')}",
              file=sys.stderr)
        return 2


def _front_door(action: str, argv: Sequence[str]) -> int:
    """``build`` / ``serve``: the engine's exit status; its own errors are its to print."""
    from mkdocs.exceptions import PluginError

    from .site import engines
    from .site.tree import TreeError

    logging.basicConfig(level=logging.INFO, format="altgrad-docs: %(levelname)s: %(message)s")
    try:
        return engines.run(engines.parse(action, argv))
    except (engines.EngineError, TreeError, PluginError) as exc:
        print(f"altgrad-docs: error: {exc}", file=sys.stderr)
        return 2


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a fetch: unwinds like Ctrl-C, so every ``finally`` and
    ``except BaseException`` on the way (the snapshot writer's temp folder, the private
    TMPDIR) cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, _frame: object) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup short
        signal.signal(sig, signal.SIG_IGN)
    raise Interrupted(signum)


def _fetch_guarded(args: argparse.Namespace) -> int:
    """:func:`_fetch` with SIGINT/SIGTERM turned into :class:`Interrupted` and wandb's temp
    files in a private TMPDIR that is removed on the way out (or by the next fetch)."""
    from .tempdirs import private_tmpdir

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    with private_tmpdir():
        return _fetch(args)


def _exit_without_wandb_teardown(code: int) -> None:
    """End the process now, skipping wandb's exit hook.

    After a failed W&B request, wandb's atexit teardown joins its wandb-core helper, which
    may still be retrying that request against the failing server: seen in CI as a process
    that had printed its error and then did not exit for over 90 s. Nothing is left to save
    (the previous snapshot was never touched), and wandb-core watches this process's pid
    (``--pid``) and stops by itself when it is gone. After a W&B fetch that finished, the
    snapshot is written and closed and the client logged no run, so the teardown (which
    finishes runs and waits for their uploads) has nothing to do but costs about 0.3 s of a
    2 to 4 s re-fetch (benchmarks/fetch.md): the fetch ends here too.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    as_program = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # everything after "bench" belongs to the bench, --help too
        return int(import_module("altgrad_docs.bench.cli").main(argv[1:]) or 0)
    if argv[:1] and argv[0] in FRONT_DOOR:  # the rest is the front door's and the engine's
        return _front_door(argv[0], argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="altgrad-docs: %(levelname)s: %(message)s")
    from .scaffold import ScaffoldError
    from .snapshot import SnapshotError
    from .sources.offline import OfflineRunError

    wandb_errors: tuple[type[BaseException], ...] = ()
    if args.command == "fetch" and args.project:
        from .sources.wandb_api import WandbSourceError

        wandb_errors = (WandbSourceError,)
    errors = (SnapshotError, OfflineRunError, FetchOSError, ScaffoldError, *wandb_errors)
    try:
        if args.command == "fetch" and as_program and wandb_errors:
            _exit_without_wandb_teardown(_fetch_command(args, _fetch_guarded))
        if args.command == "fetch":
            return _fetch_command(args, _fetch_guarded if as_program else _fetch)
        if args.command == "render":
            return _render_command(args)
        if args.command == "new":
            return _new(args)
        return _upgrade(args) if args.snapshot_command == "upgrade" else _info(args)
    except errors as exc:
        print(f"altgrad-docs: error: {exc}", file=sys.stderr)
        if as_program and wandb_errors:  # a W&B fetch that failed: nothing left to save
            _exit_without_wandb_teardown(2)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"altgrad-docs: error: interrupted by {signal.Signals(signum).name}; the previous "
              "snapshot is unchanged. --> Do: run the fetch again.", file=sys.stderr)
        if as_program and wandb_errors:
            _exit_without_wandb_teardown(128 + signum)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
