"""What a user gets: the wheel, installed in a fresh venv, makes a site with `altgrad-docs new`
in an empty folder that `mkdocs build --strict` builds at once, complete.

The venv is made with ``python -m venv``; its packages are exactly the site lock's
(``requirements/site.lock.txt``, ``--require-hashes``: what ``scripts/setup.sh`` installs for a
site), then the wheel from the wheel file alone (``--no-index --no-deps``), and ``pip check``
holds the wheel's declared dependencies against them: a dependency missing from
pyproject.toml or from the lock fails here. The package, its templates, theme, assets, demo
data and entry points all come from the wheel, and nothing from this checkout is on the
path. (The install takes ~30 s on a quiet machine: ``--no-compile``, the modules are compiled
as the builds import them.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.site_fixtures import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(base / "dist"), str(REPO)], check=True, capture_output=True, timeout=300)
    env = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    py = env / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(py)]
    locked = subprocess.run([*pip, "install", "-q", "--no-compile", "--require-hashes", "-r",
                             str(REPO / "requirements" / "site.lock.txt")],
                            capture_output=True, text=True, timeout=900, env=_clean_env())
    assert locked.returncode == 0, locked.stderr[-3000:]
    subprocess.run([*pip, "install", "-q", "--no-index", "--no-deps", "--find-links", str(base / "dist"),
                    "altgrad-docs"], check=True, capture_output=True, timeout=300, env=_clean_env())
    checked = subprocess.run([*pip, "check"], capture_output=True, text=True, timeout=300, env=_clean_env())
    assert checked.returncode == 0, checked.stdout + checked.stderr  # the lock satisfies the wheel
    return env


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("ALTGRAD_", "PYTHON", "SOURCE_DATE"))}


def _run(venv: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = _clean_env()
    env.update(MPLBACKEND="Agg", NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true",
               PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_installed_package_makes_a_site_that_builds(venv, tmp_path):
    where = _run(venv, ["python", "-c", "import altgrad_docs; print(altgrad_docs.__file__)"], tmp_path)
    assert where.stdout.startswith(str(venv)), where  # the wheel's package, not the checkout's
    made = _run(venv, ["altgrad-docs", "new", "study"], tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    site = tmp_path / "study"
    built = _run(venv, ["python", "-m", "mkdocs", "build", "--strict"], site)
    assert built.returncode == 0, built.stderr[-3000:]
    out = site / "site"
    home = (out / "index.html").read_text()
    assert "Headline findings" in home and "24 runs in the snapshot" in home
    assert 'id="altgrad-stamp"' in home and "built by altgrad-docs" in home
    nav = home.split("md-nav--primary", 1)[1].split("md-sidebar--secondary", 1)[0]
    assert 'href="runs/"' in nav and not re.search(r'href="runs/[^"]+/"', nav)
    report = (out / "failure-modes" / "index.html").read_text()
    figures = re.findall(r'<img[^>]+src="(figures/fig-[^"]+\.svg)"', report)
    assert figures and all((out / "failure-modes" / f).is_file() for f in figures)
    runs = sorted(p.parent.name for p in (out / "runs").glob("*/index.html"))
    assert len(runs) == 24
    run = (out / "runs" / runs[0] / "index.html").read_text()
    assert 'data-src="figures/fig-history.json"' in run and (out / "runs" / runs[0] / "figures" / "fig-history.json").is_file()
    assert "assets/javascripts/runcharts.js" in run and (out / "assets/vendor/uplot/uPlot.iife.min.js").is_file()
    for page in (home, report, run):  # no Markdown left unconverted
        text = re.sub(r"<(code|pre)>.*?</\1>", "", page, flags=re.S)
        assert "!!! " not in text and "{: " not in text and "](" not in text

    # the same site with a mistyped option fails, naming it
    config = site / "mkdocs.yml"
    config.write_text(config.read_text().replace("snapshot: data/snapshot", "snapshot: data/snapshot\n      metrc: loss"))
    failed = _run(venv, ["python", "-m", "mkdocs", "build", "--strict"], site)
    assert failed.returncode == 1 and "'metrc'" in failed.stderr and "did you mean 'metric'" in failed.stderr

    # render and Zensical's route work from the installed package in a folder of its own
    rendered = _run(venv, ["altgrad-docs", "render", "--out", str(tmp_path / "tree"), "-f", str(config.with_name("x.yml"))], site)
    assert rendered.returncode == 2  # a missing config is a one-line error
    config.write_text(config.read_text().replace("\n      metrc: loss", ""))
    rendered = _run(venv, ["altgrad-docs", "render", "--out", str(tmp_path / "tree")], site)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert (tmp_path / "tree" / "overrides" / "main.html").is_file()
    tree_nav = yaml.safe_load((tmp_path / "tree" / "mkdocs.yml").read_text())["nav"]  # the site has none:
    assert tree_nav[0] == "index.md" and "runs/index.md" in tree_nav  # the plugin's default nav, in the tree
    assert not [p for p in tree_nav if p.startswith("runs/") and p != "runs/index.md"] and "bench.md" not in tree_nav
    assert (tmp_path / "tree" / "docs" / "assets" / "javascripts" / "runcharts.js").is_file()

    # and Zensical, from the installed package (the site lock brings it)
    zen = _run(venv, ["altgrad-docs", "build", "--engine", "zensical", "--strict", "--tree", str(tmp_path / "zt"),
                      "-d", str(tmp_path / "zsite")], site)
    assert zen.returncode == 0, zen.stderr[-3000:]
    zhome = (tmp_path / "zsite" / "index.html").read_text()
    assert 'id="altgrad-stamp"' in zhome and "24 runs in the snapshot" in zhome
    assert len(list((tmp_path / "zsite" / "runs").glob("*/index.html"))) == 24


def test_the_installed_cli_makes_sites_from_a_snapshot_and_offline_runs(venv, tmp_path, upstream_runs):
    """The other data sources of `new`, from the installed package (their builds are the
    checkout's tests/test_scaffold.py: the same code)."""
    made = _run(venv, ["altgrad-docs", "new", "a", "--snapshot", str(tmp_path / "a" / "x")], tmp_path)
    assert made.returncode == 2 and "Traceback" not in made.stderr and not (tmp_path / "a").exists()
    made = _run(venv, ["altgrad-docs", "new", "b", "--offline-dir", str(upstream_runs / "runner" / "wandb"),
                       "--checkpoints", str(upstream_runs / "runner" / "checkpoints-runner")], tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    made = _run(venv, ["altgrad-docs", "new", "c", "--snapshot", str(tmp_path / "b" / "data" / "snapshot")], tmp_path)
    assert made.returncode == 0, made.stderr[-3000:]
    assert (tmp_path / "c" / "data" / "snapshot" / "manifest.json").read_bytes() == \
        (tmp_path / "b" / "data" / "snapshot" / "manifest.json").read_bytes()

