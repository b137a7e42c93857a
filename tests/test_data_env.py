"""The test sandbox for in-process wandb: nothing of it outlives the test."""

import os
import tempfile

from altgrad_docs.sources.wandb_api import bound_retries
from tests.conftest import process_env, wandb_env


def test_process_env_puts_back_what_the_code_under_test_changed(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")  # the user's: hidden inside, back after
    monkeypatch.delenv("WANDB_SILENT", raising=False)
    before, cached = dict(os.environ), tempfile.tempdir
    with process_env(wandb_env(tmp_path / "w", "http://127.0.0.1:9")):
        assert os.environ["TMPDIR"] == str(tmp_path / "w") and "WANDB_MODE" not in os.environ
        assert os.environ["WANDB_BASE_URL"] == "http://127.0.0.1:9"
        assert tempfile.gettempdir() == str(tmp_path / "w")
        bound_retries()  # sets WANDB_SILENT and retry caps in os.environ, as connect() does
        os.environ["WANDB_SERVICE"] = "token"  # as wandb does when it starts wandb-core
    assert dict(os.environ) == before
    assert tempfile.tempdir == cached


def test_live_wandb_is_pointed_at_the_fake_server(live_wandb):
    assert os.environ["WANDB_BASE_URL"] == live_wandb.url
    assert os.environ["WANDB__GRAPHQL_RETRY_MAX"] == "1"
