"""Run by tests/test_site_incremental.py in a fresh process: what ``mkdocs serve --dirty``
does on each change, in-process (one config load and one dirty build per change).

    python dirty_serve_driver.py PROJECT DIRTY_SITE CLEAN_SITE OUT_JSON

Builds PROJECT (a copy of the site's sources) dirty into DIRTY_SITE; appends a sentence
to a report template and rebuilds; appends one to the run-page template and rebuilds;
then builds the edited project clean into CLEAN_SITE. Writes the mtimes of DIRTY_SITE's
files after each build to OUT_JSON.
"""

import json
import sys
from pathlib import Path

from mkdocs.commands.build import build
from mkdocs.config import load_config

SERVE_URL = "http://127.0.0.1:8000/"
EDITS = [("templates/reports/format_comparison.md.j2", "Report edit marker."),
         ("templates/pages/run.md", "Run page edit marker.")]


def mtimes(site: Path) -> dict[str, int]:
    return {p.relative_to(site).as_posix(): p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}


def main() -> None:
    project, dirty_site, clean_site, out = map(Path, sys.argv[1:5])
    config = load_config(str(project / "mkdocs.yml"), site_dir=str(dirty_site))
    config.plugins.on_startup(command="serve", dirty=True)
    build(config, serve_url=SERVE_URL, dirty=True)
    seen = [mtimes(dirty_site)]
    for template, sentence in EDITS:
        with open(project / template, "a", encoding="utf-8") as fh:
            fh.write(f"\n\n{sentence}\n")
        build(load_config(str(project / "mkdocs.yml"), site_dir=str(dirty_site)), serve_url=SERVE_URL, dirty=True)
        seen.append(mtimes(dirty_site))
    clean = load_config(str(project / "mkdocs.yml"), site_dir=str(clean_site))
    clean.plugins.on_startup(command="build", dirty=False)
    build(clean, serve_url=SERVE_URL)
    out.write_text(json.dumps(seen))


if __name__ == "__main__":
    main()
