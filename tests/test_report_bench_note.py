"""The bench note: facts from the snapshot manifest and the runs' config, on every report
page when (and only when) the snapshot comes from the bench."""

import json
from pathlib import Path

import pandas as pd
import pytest

from altgrad_docs.report.bench_note import bench_note, gpt_parameters
from altgrad_docs.site.render import make_environment
from altgrad_docs.snapshot import open_snapshot

ROOT = Path(__file__).resolve().parents[1]


def test_parameter_count_is_the_torch_models():
    torch = pytest.importorskip("torch")
    from altgrad_docs.bench.model import ModelConfig, TinyGPT

    for cfg in (ModelConfig(), ModelConfig(n_layer=3, n_embd=16, vocab_size=7, block_size=9)):
        model = TinyGPT(cfg, torch.Generator().manual_seed(0))
        expected = sum(p.numel() for p in model.parameters())
        assert gpt_parameters(cfg.n_layer, cfg.n_embd, cfg.vocab_size, cfg.block_size) == expected
    assert gpt_parameters(2, 32, 13, 16) == 26_080  # docs/bench.md


def test_note_of_the_bundled_snapshot():
    snap = open_snapshot(ROOT / "data" / "bundled")
    note = bench_note(snap.manifest.get("bench"), snap.runs())
    from altgrad_docs.bench.train import RunConfig

    assert note["parameters"] == 26_080 and note["task"] == "sort 8 symbols of 12"
    assert note["steps"] == RunConfig().max_steps == 200  # the bench's step budget
    assert "FP32 master weights" in note["quantised"] and "no per-tensor scaling" in note["quantised"]
    assert "quantized: no master copy" in note["quantised"]


def test_no_note_without_the_bench_and_no_invented_shape():
    runs = pd.DataFrame({"run_id": ["a", "b"], "n_layer": [2, 4], "n_embd": [32, 32]})
    assert bench_note(None, runs) is None and bench_note({}, runs) is None
    note = bench_note({"quantised": "q"}, runs)  # runs disagree on n_layer: no size, no task claimed
    assert (note["parameters"], note["task"], note["steps"]) == (None, None, None)


def _render(**context):
    env = make_environment(ROOT / "templates")
    return env.get_template("partials/bench_note.md").render(**context)


def test_partial_branches_and_escaping():
    note = {"quantised": "weights <b>only</b>", "baseline": None, "task": "sort", "parameters": 26080,
            "n_layer": 2.0, "n_embd": 32.0, "steps": 400}
    text = _render(bench_note=note, bench_page=True)
    assert text.startswith('!!! note "What these runs simulate"')
    assert "weights &#60;b&#62;only&#60;/b&#62;" in text  # manifest text is user text
    assert "26,080-parameter GPT (2 layers, width 32) trained for 400 steps on the task" in text
    assert "Baseline" not in text and "[the bench page](../bench.md)" in text
    assert "bench page" not in _render(bench_note=note, bench_page=False)
    assert _render(bench_note=None, bench_page=True).strip() == ""
    bare = _render(bench_note={**note, "parameters": None, "quantised": None}, bench_page=False)
    assert "parameter" not in bare and "Quantisation" not in bare


def test_report_page_template_puts_the_note_under_the_title():
    from types import SimpleNamespace

    env = make_environment(ROOT / "templates")
    page = SimpleNamespace(artifacts=SimpleNamespace(figures=[], tables=[]))
    note = {"quantised": "q", "baseline": None, "task": None, "parameters": None, "n_layer": None, "n_embd": None,
            "steps": None}
    text = env.get_template("pages/report.md").render(body="# Title\nBody text.\n", page=page, bench_note=note,
                                                     bench_page=True)
    assert text.index("# Title") < text.index('!!! note "What these runs simulate"') < text.index("Body text.")
    plain = env.get_template("pages/report.md").render(body="# Title\nBody text.\n", page=page, bench_note=None,
                                                      bench_page=True)
    assert "simulate" not in plain and "# Title" in plain and "Body text." in plain
