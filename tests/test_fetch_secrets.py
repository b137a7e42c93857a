"""Credentials never stored (issue #12): a key inside WANDB_BASE_URL (http://user:KEY@host)
reaches neither manifest.json, nor a run_url, nor the output of the fetch."""

from __future__ import annotations

import numpy as np
import pytest

from altgrad_docs.runs import RunRecord, public_url, run_row
from benchmarks.synthetic import synthetic_records
from tests.conftest import run_cli, wandb_env
from tests.fake_wandb import ENTITY

SECRET = "SeCrEtKeY0123456789"


@pytest.mark.parametrize("url, expected", [
    (f"http://user:{SECRET}@127.0.0.1:8080/x?y=1#z", "http://127.0.0.1:8080/x?y=1#z"),
    (f"https://{SECRET}@api.wandb.ai", "https://api.wandb.ai"),
    (f"http://u:{SECRET}@[::1]:9/a", "http://[::1]:9/a"),
    (f"http://u:{SECRET}@host:notaport/", "http://host:notaport/"),
    (f"http://u:p@w{SECRET}@h/x", "http://h/x"),
    ("https://wandb.ai/e/p/runs/a?u=me@x", "https://wandb.ai/e/p/runs/a?u=me@x"),
    ("https://api.wandb.ai", "https://api.wandb.ai"), ("", ""), ("not a url", "not a url"),
])
def test_public_url(url, expected):
    assert public_url(url) == expected


def test_run_row_strips_the_run_url():
    record = RunRecord(meta={"run_id": "r1", "url": f"http://u:{SECRET}@h/e/p/runs/r1"})
    assert run_row(record)["run_url"] == "http://h/e/p/runs/r1"


def test_fetch_with_a_key_in_the_base_url_stores_none(fake_wandb, tmp_path):
    records = list(synthetic_records(2, 10, 4, np.random.default_rng(0), entity=ENTITY))
    server = fake_wandb(records)
    url = server.url.replace("http://", f"http://user:{SECRET}@")
    env = wandb_env(tmp_path / "w", url, WANDB__GRAPHQL_RETRY_MAX="1")
    done = run_cli(["fetch", "--project", f"{ENTITY}/altgrad", "--out", str(tmp_path / "snap"),
                    "--timeout", "5"], env)
    assert done.returncode == 0, done.stderr
    assert SECRET not in done.stdout + done.stderr
    files = [p for p in (tmp_path / "snap").rglob("*") if p.is_file()]
    assert len(files) >= 4 and not [p for p in files if SECRET.encode() in p.read_bytes()]
    manifest = (tmp_path / "snap" / "manifest.json").read_text()
    assert f'"base_url": "{server.url}"' in manifest
