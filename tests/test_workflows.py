"""The GitHub workflows: each action at its current major (the scaffold's table, the one
place to change; Dependabot proposes the next), one concurrency group for every Pages deploy,
deploys built from the configured data source, and torch for the bench from the CPU index."""

from __future__ import annotations

import re

import yaml

from altgrad_docs.scaffold import ACTIONS
from tests.site_fixtures import REPO

WORKFLOWS = REPO / ".github" / "workflows"
SCAFFOLD = REPO / "templates" / "scaffold" / "workflows"


def _uses(text: str) -> set[str]:
    return set(re.findall(r"uses:\s*(actions/[\w-]+@[^\s{}]+)", text))


def test_every_action_is_at_its_current_major():
    expected = {f"actions/{name.replace('_', '-')}@{major}" for name, major in ACTIONS.items()}
    repo = set().union(*(_uses(p.read_text()) for p in WORKFLOWS.glob("*.yml")))
    assert repo == expected
    rendered = set().union(*(_uses(re.sub(r"\{\{ actions\.(\w+) \}\}", lambda m: ACTIONS[m.group(1)], p.read_text()))
                             for p in SCAFFOLD.glob("*.j2")))
    assert rendered == expected


def test_dependabot_keeps_actions_and_pip_current():
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in config["updates"]} == {"github-actions", "pip"}


def test_pages_deploys_share_one_group_and_the_configured_data_source():
    (only,) = [p for p in WORKFLOWS.glob("*.yml") if "deploy-pages" in p.read_text()]
    flow = yaml.safe_load(only.read_text())
    assert "'pages'" in flow["concurrency"]["group"] and flow["concurrency"]["cancel-in-progress"] is False
    assert flow["env"]["ALTGRAD_WANDB_PROJECT"] == "${{ vars.ALTGRAD_WANDB_PROJECT }}"
    build = next(s for s in flow["jobs"]["build"]["steps"] if "altgrad-docs build" in s.get("run", ""))
    assert build["env"]["WANDB_API_KEY"] == "${{ secrets.WANDB_API_KEY }}" and "SITE_URL" in build["env"]
    assert "site_url: !ENV [SITE_URL, null]" in (REPO / "mkdocs.yml").read_text()


def test_the_bench_torch_comes_from_the_cpu_index_in_ci_only():
    tests = yaml.safe_load((WORKFLOWS / "tests.yml").read_text())
    assert tests["jobs"]["test"]["env"]["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert '--index-url "$TORCH_INDEX_URL"' in setup and "download.pytorch.org" not in setup
