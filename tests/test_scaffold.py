"""`altgrad-docs new DIR`: the files of a new site, its data, and that it builds at once."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from altgrad_docs.cli import main
from altgrad_docs.scaffold import ScaffoldError, new_site, pages_url
from altgrad_docs.snapshot import open_snapshot
from tests.site_fixtures import build_fixture_snapshot, mkdocs_env


def _config(root) -> dict:
    return yaml.safe_load((root / "mkdocs.yml").read_text())


def test_a_folder_with_anything_in_it_is_refused(tmp_path, capsys):
    (tmp_path / "notes.md").write_text("mine")
    assert main(["new", str(tmp_path)]) == 2
    assert "is not an empty folder; nothing was written" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.md"] and (tmp_path / "notes.md").read_text() == "mine"


def test_the_default_site_holds_the_demo_data_and_its_files(tmp_path):
    site = new_site(tmp_path / "my_study", version="9.9")
    root = site.root
    assert sorted(site.files) == sorted(
        ["mkdocs.yml", "docs/index.md", "README.md", ".gitignore", "requirements.txt", ".github/dependabot.yml",
         ".github/workflows/tests.yml", ".github/workflows/pages.yml"])
    config = _config(root)
    assert config["site_name"] == "my study" and "site_url" not in config
    assert config["plugins"] == ["search", {"altgrad": {"snapshot": "data/snapshot"}}]
    assert config["theme"]["name"] == "material"
    assert open_snapshot(root / "data" / "snapshot").manifest["n_runs"] == 24
    assert (root / "requirements.txt").read_text().splitlines()[-1] == "altgrad-docs==9.9"
    assert "<!-- altgrad:findings -->" in (root / "docs" / "index.md").read_text()
    pages = yaml.safe_load((root / ".github" / "workflows" / "pages.yml").read_text())
    assert pages["concurrency"]["group"] == "pages"
    steps = [s.get("uses", "") for s in pages["jobs"]["build"]["steps"]] + [
        s.get("uses", "") for s in pages["jobs"]["deploy"]["steps"]]
    assert "actions/checkout@v7" in steps and "actions/deploy-pages@v5" in steps
    assert "${{ secrets.WANDB_API_KEY }}" in (root / ".github" / "workflows" / "pages.yml").read_text()
    dependabot = yaml.safe_load((root / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in dependabot["updates"]} == {"github-actions", "pip"}


def test_a_project_site_names_the_project_and_copies_no_data(tmp_path):
    root = new_site(tmp_path / "s", project="my-entity/my-study").root
    assert _config(root)["plugins"][1] == {"altgrad": {"wandb_project": "my-entity/my-study",
                                                       "wandb_snapshot": "data/wandb"}}
    assert not (root / "data").exists()
    with pytest.raises(ScaffoldError, match="not ENTITY/PROJECT"):
        new_site(tmp_path / "t", project="my-study")
    assert not (tmp_path / "t").exists()
    (tmp_path / "empty").mkdir()  # a failure leaves an empty folder the user made as it was
    with pytest.raises(ScaffoldError, match="no snapshot|not a snapshot|manifest"):
        new_site(tmp_path / "empty", snapshot=tmp_path / "missing")
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


@pytest.mark.parametrize("remote, url", [
    ("git@github.com:Some-One/fp8-study.git", "https://some-one.github.io/fp8-study/"),
    ("https://github.com/some-one/some-one.github.io", "https://some-one.github.io/"),
    ("https://gitlab.com/x/y.git", None),
])
def test_site_url_comes_from_the_git_remote(tmp_path, remote, url):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    (tmp_path / "site").mkdir()
    assert pages_url(tmp_path / "site") == url


def _build(root, cache) -> subprocess.CompletedProcess:
    env = mkdocs_env(root, cache)
    del env["ALTGRAD_SNAPSHOT"]
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_site_from_a_snapshot_builds_at_once(tmp_path):
    snapshot = build_fixture_snapshot(tmp_path / "snap")
    root = new_site(tmp_path / "s", snapshot=snapshot).root
    assert open_snapshot(root / "data" / "snapshot").sha256 == open_snapshot(snapshot).sha256
    result = _build(root, tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "9 runs in the snapshot" in (root / "site" / "index.html").read_text()


@pytest.mark.slow
def test_a_site_from_offline_runs_builds_at_once(tmp_path, upstream_runs):
    root = new_site(tmp_path / "s", offline_dir=upstream_runs / "runner" / "wandb",
                    checkpoints=upstream_runs / "runner" / "checkpoints-runner").root
    snap = open_snapshot(root / "data" / "snapshot")
    assert snap.manifest["n_runs"] == 4
    result = _build(root, tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "4 runs in the snapshot" in (root / "site" / "index.html").read_text()


@pytest.mark.slow
def test_a_project_site_builds_from_w_and_b_at_once(tmp_path, fake_wandb):
    """`new --project`: the first strict build fetches the project (the fake W&B on loopback)."""
    from tests.conftest import wandb_env
    from tests.fake_wandb import ENTITY
    from tests.site_fixtures import fixture_records

    server = fake_wandb(fixture_records(), project="study")
    root = new_site(tmp_path / "s", project=f"{ENTITY}/study").root
    env = wandb_env(tmp_path / "wandb", server.url, MPLBACKEND="Agg", NO_MKDOCS_2_WARNING="1",
                    ALTGRAD_CACHE_DIR=str(tmp_path / "cache"))
    env = {k: v for k, v in env.items() if not k.startswith(("ALTGRAD_SNAPSHOT", "ALTGRAD_WANDB", "SOURCE_DATE"))}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert open_snapshot(root / "data" / "wandb").manifest["n_runs"] == 9
    assert "9 runs in the snapshot" in (root / "site" / "index.html").read_text()



def test_the_shipped_demo_snapshot_is_in_this_versions_schema():
    """A site made by `new` reads its demo data without a migration on every build, with every
    file's sha256 in the manifest (scripts/make_demo.py writes it; run it after a schema bump)."""
    from altgrad_docs.runs import SCHEMA_VERSION
    from altgrad_docs.scaffold import DEMO_SNAPSHOT
    from altgrad_docs.snapshot import open_snapshot

    demo = open_snapshot(DEMO_SNAPSHOT)
    assert demo.version == SCHEMA_VERSION and demo.manifest["files"] and len(demo.run_ids) == 24
    demo.verify()
