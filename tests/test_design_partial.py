"""Each branch of templates/partials/design.md (the design on the home page and Methods),
rendered with the site's own Jinja2 environment from a design of hand-built runs."""

from __future__ import annotations

import html

import design_data as D
from altgrad_docs.analysis.design import DesignOptions, infer_design, identical_conditions
from altgrad_docs.report.context import design_context
from altgrad_docs.site.render import make_environment, render
from tests.site_fixtures import REPO


def _render(design) -> str:
    text = render(make_environment(REPO / "templates"), "partials/design.md", results={"design": design_context(design)})
    return " ".join(html.unescape(text).replace("**", "").split())  # the Markdown, bold markers dropped


def test_no_factor_balanced_nothing_left_out_and_identical_formats():
    specs = [s for s in D.sweep_specs(formats=("E4M3", "E5M2"), seeds=(1, 2)) if s["lr"] == 0.01]
    d = infer_design(D.table(specs))
    d.identical = identical_conditions(d.runs, {s["run_id"]: f"{s['manifold']}{s['seed']}" for s in specs})
    text = _render(d)
    assert "Factors: none besides format and optimizer: no other config key differs between runs of one " \
           "format and optimizer. A condition is format × optimizer (4 conditions)" in text
    assert "Constants (one value in every run): batch_size = 32, learning_rate = 0.01, max_steps = 100." in text
    assert "Balanced: every condition has 2 runs." in text
    assert "Identical conditions: E4M3 and E5M2 gave bit-identical histories" in text
    assert "Runs left out: none." in text
    assert "Unbalanced" not in text and "Duplicates" not in text and "different lengths" not in text


def test_explicit_factors_ignored_keys_train_metric_and_lengths_across_formats():
    specs = D.sweep_specs(formats=("E4M3", "E5M2"), seeds=(1, 2))
    for s in specs:
        if s["format"] == "E5M2":
            s["steps"], s["config"] = 50, {"max_steps": 50, "dropout": 0.1}
    d = infer_design(D.table(specs), DesignOptions(factors=("learning_rate",), ignore=("dropout",),
                                                   metric="final_loss"))
    text = _render(d)
    assert "Factors (set by the altgrad plugin's factors option): learning_rate (0.001, 0.01)." in text
    assert "Primary metric: final train loss (set by the altgrad plugin's metric option), lower is better" in text
    assert "ignored by the altgrad plugin's ignore option: dropout." in text
    assert "Formats of different lengths compared with each other at learning_rate=0.001: the formats' finished " \
           "runs trained 50, 100 steps (max_steps 50, 100)" in text
