"""The AltGrad trainer's own classification runs (issue #22): ``fp8_format: "none"`` is the BF16
baseline, the configs hold no seed, so the two runs of each condition are replicates (not
duplicates of seed 42) and the optimizer comparison is unpaired (Welch)."""

from __future__ import annotations

import html
import re

import pytest

from altgrad_docs.analysis import scorecard as sc
from altgrad_docs.analysis.design import infer_design
from altgrad_docs.fetch import fetch_offline
from tests.site_fixtures import run_mkdocs_build


@pytest.fixture(scope="module")
def snapshot(upstream_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("classification") / "snapshot"
    return fetch_offline(upstream_runs / "classification" / "wandb", out, progress=False).snapshot


def test_classification_design(snapshot):
    runs = snapshot.runs()
    assert len(runs) == 12 and runs["seed"].isna().all()
    design = infer_design(runs)
    assert design.baseline == "BF16" and design.warnings == []
    assert design.seeded is False and design.paired is False
    assert design.cells[["format", "optimizer", "n", "n_duplicates"]].values.tolist() == [
        ["E5M2", "AdamW", 2, 0], ["E5M2", "ManifoldAdamW", 2, 0], ["E7M0", "AdamW", 2, 0],
        ["E7M0", "ManifoldAdamW", 2, 0], ["BF16", "AdamW", 2, 0], ["BF16", "ManifoldAdamW", 2, 0]]
    assert design.duplicates.empty and design.thin.empty and design.factors == {}
    assert design.assumed_baseline == {"label": "BF16", "n": 4, "because": ['fp8_format "none"']}
    assert runs.set_index("run_id")["use_fp8"].groupby(runs.set_index("run_id")["format"]).all().to_dict() == {
        "BF16": False, "E5M2": True, "E7M0": True}
    mc = sc.manifold_comparison(design.study(runs), None, design.factor_names, paired=design.paired)
    assert mc["format"].tolist() == ["E5M2", "E7M0", "BF16"]
    assert mc["design"].tolist() == ["unpaired"] * 3 and mc["n_pairs"].tolist() == [0, 0, 0]
    assert all(d == [] for d in mc["duplicated_seeds"])


def _text(path) -> str:
    html = path.read_text(encoding="utf-8")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", "", html, flags=re.S)))


@pytest.mark.slow
def test_classification_site_says_unpaired(snapshot, tmp_path):
    result = run_mkdocs_build(snapshot.path, tmp_path / "site", tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    methods = _text(tmp_path / "site" / "methods" / "index.html")
    assert "baseline BF16" in methods and "Duplicates (same seed" not in methods
    assert not re.search(r"\bNONE\b", methods) and "Fewer than 2 paired seeds" not in methods
    assert ("No seeds: the runs' configs record no seed, so runs of one condition are replicates told apart by "
            "their run id, not duplicates; pairing by seed is impossible, and the ManifoldAdamW vs AdamW "
            "comparison is unpaired (Welch's t interval") in methods
    assert ("Baseline precision assumed: 4 runs without an 8-bit format (fp8_format \"none\") record no "
            "precision in their config; they are labelled BF16") in html.unescape(methods)
    manifold = _text(tmp_path / "site" / "manifold-vs-adamw" / "index.html")
    assert "The comparison is unpaired: the runs' configs record no seed" in manifold
    assert "The comparison is paired" not in manifold and "Paired difference" not in manifold
    assert "Unpaired difference in final" in manifold
