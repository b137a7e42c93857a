"""The three reports (and the formats page) against golden Markdown on the tiny fixture.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_report_generator.py`` and read the diff.
"""

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from altgrad_docs.analysis.comparisons import layer_stall_frame
from altgrad_docs.analysis.curves import collect_traces
from altgrad_docs.analysis.failures import failure_table
from altgrad_docs.report import context
from altgrad_docs.report.generator import REPORT_TEMPLATES, ReportGenerator, resolve_timestamp
from altgrad_docs.report.markdown import wandb_link
from altgrad_docs.runs import RUN_COLUMNS
from tests import design_data as D
from tests.analysis_data import SPEC, histories, runs

GOLDEN = Path(__file__).parent / "golden"
STAMP = "2026-01-01T00:00:00+00:00"


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from the golden file"


@pytest.fixture()
def gen(tmp_path):
    return ReportGenerator(tmp_path / "reports", generated_at=STAMP)


def _failures(df):
    return failure_table(df, collect_traces(histories()))


# -- numbers each golden must hold, computed here by hand from the fixtures' literal values ------

def _sig3(x: float) -> str:
    """3 significant digits, trailing zeros kept, a real minus: written out here, not fmt_sig."""
    text = f"{abs(x):#.3g}".rstrip(".")
    return ("\u2212" if x < 0 else "") + text


def _val(fmt: str, manifold: bool, seed: int) -> float:
    return next(v for _, f, m, s, state, v, _ in SPEC if (f, m, s) == (fmt, manifold, seed) and state == "finished")


def _t_interval(deltas) -> tuple[float, float]:
    d = np.asarray(deltas, dtype=float)
    half = st.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean() - half, d.mean() + half


#: E5M2 paired deltas ManifoldAdamW - AdamW by seed (train = val + 0.1 cancels in a difference)
E5M2_DELTAS = [_val("E5M2", True, s) - _val("E5M2", False, s) for s in (1, 2, 3)]


def test_format_comparison_golden(gen):
    df = runs()
    text = gen.render_format_comparison(df, "E5M2", failures=_failures(df))
    _check_golden("format_comparison.md", text)
    lo, hi = _t_interval(E5M2_DELTAS)
    two = (f"{v:.2f}".replace("-", "\u2212") for v in (np.mean(E5M2_DELTAS), lo, hi))  # half-width 0.19: 2 decimals
    assert "| {} [{}, {}] ".format(*two) in text  # -0.12 [-0.31, 0.07]
    adamw_train = np.median([_val("E5M2", False, s) + 0.1 for s in (1, 2, 3)])  # final_loss: the API default
    assert f"| E5M2     | {_sig3(adamw_train)} (3) " in text
    ci = st.binomtest(1, 2).proportion_ci(method="exact")  # E7M0 per condition: r10 crashed of 2, r13 failed of 2
    for opt in ("AdamW        ", "ManifoldAdamW"):
        assert f"| E7M0     | {opt} | 1/2 [{100 * ci.low:.0f}%, {100 * ci.high:.0f}%] " in text


def test_failure_modes_golden(gen):
    df = runs()
    text = gen.render_failure_modes(_failures(df), runs_df=df)
    _check_golden("failure_modes.md", text)
    steps = [c for *_, c in SPEC if c is not None]  # 40, 60
    assert f"- Detection step: median {np.median(steps):g}, range [{min(steps)}, {max(steps)}] (n = 2)." in text


def test_manifold_comparison_golden(gen):
    layers = layer_stall_frame(collect_traces(histories()), runs())
    text = gen.render_manifold_comparison(runs(), layers=layers)
    _check_golden("manifold_comparison.md", text)
    medians = [np.median([_val("E5M2", m, s) for s in (1, 2, 3)]) for m in (False, True)]  # val loss: 3.10, 3.00
    assert f"| E5M2     | {_sig3(medians[0])} (3) " in text and f" | {_sig3(medians[1])} (3) " in text
    lo, hi = _t_interval(E5M2_DELTAS)  # half-width 0.19: every difference to 2 decimals
    assert "| " + ", ".join(f"{d:.2f}".replace("-", "\u2212") for d in E5M2_DELTAS) + " " in text


def _sweep_pages(gen):
    df = D.table(D.sweep_specs())
    fc = context.format_comparison(df, "E4M3", wandb_link, metric="final_val_loss")
    mc = context.manifold_comparison(df, None, wandb_link, "final_val_loss")
    return (gen.render_template(REPORT_TEMPLATES["format_comparison"], fc),
            gen.render_template(REPORT_TEMPLATES["manifold_comparison"], mc))


def test_sweep_golden_pages_keep_the_learning_rates_apart(gen):
    """The design study: a learning-rate sweep with opposite effects per level, train and val
    loss ranking the formats differently. Both deltas with their own intervals, never pooled."""
    fc, mc = _sweep_pages(gen)
    _check_golden("format_comparison_sweep.md", fc)
    _check_golden("manifold_comparison_sweep.md", mc)
    for lr in (0.001, 0.01):
        deltas = [D.DELTA[lr][s] for s in (1, 2, 3, 4)]
        lo, hi = _t_interval(deltas)
        three = (f"{v:.3f}".replace("-", "\u2212") for v in (np.mean(deltas), lo, hi))  # half-width 0.026: 3 decimals
        cell = "| {} [{}, {}] ".format(*three)
        assert cell in fc and cell in mc, lr
    pooled = np.mean([D.DELTA[lr][s] for lr in D.DELTA for s in (1, 2, 3, 4)])  # -0.05: exists at neither lr
    assert f" {_sig3(pooled)} [" not in fc + mc
    assert "is **E4M3** with ManifoldAdamW at learning&#95;rate=0.01" in fc  # by val; train would name E5M2


def test_manifold_comparison_says_when_no_layer_metrics(gen):
    empty = layer_stall_frame({}, runs())
    assert "No run logged per-layer metrics (`<family>/<parameter>` keys" in gen.render_manifold_comparison(
        runs(), layers=empty)
    assert "Per-layer metrics by layer type" not in gen.render_manifold_comparison(runs())


def test_formats_page_golden(gen):
    _check_golden("formats.md", gen.render_formats())


def test_generate_writes_files_and_returns_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gen = ReportGenerator(generated_at=STAMP)
    assert (tmp_path / "reports").is_dir()
    df = runs()
    paths = [gen.generate_format_comparison(df, "E5M2"),
             gen.generate_failure_modes(_failures(df), runs_df=df),
             gen.generate_manifold_comparison(df, output_name="m.md")]
    assert [Path(p).name for p in paths] == ["format_comparison.md", "failure_modes.md", "m.md"]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths)
    assert Path(paths[0]).read_text() == gen.render_format_comparison(df, "E5M2")


@pytest.mark.parametrize("method", ["render_format_comparison", "render_failure_modes", "render_manifold_comparison"])
def test_empty_input_gives_a_no_data_section(gen, method):
    text = getattr(gen, method)(pd.DataFrame(columns=list(RUN_COLUMNS)))
    assert "## No data" in text and STAMP in text
    lines = text.splitlines()
    for i, line in enumerate(lines[1:], 1):  # every heading stands apart from the paragraph above it
        if line.startswith("#"):
            assert lines[i - 1] == "", (method, line)


def test_only_killed_runs_is_no_data(gen):
    df = runs()
    df = df[df["state"] == "killed"]
    assert "## No data" in gen.render_format_comparison(df)


def test_plan_sections_are_present(gen):
    df = runs()
    fc = gen.render_format_comparison(df, "E5M2")
    for heading in ("# FP8 Format Comparison Report", "## Executive summary", "## Results", "## Rankings",
                    "## Failure analysis", "## Conclusions"):
        assert heading in fc
    fm = gen.render_failure_modes(_failures(df), runs_df=df)
    for heading in ("# FP8 Failure Mode Documentation", "## Summary", "## Per-format detail",
                    "## E7M0: no mantissa bits", "## Failure mode classification",
                    "## Prevention recommendations"):
        assert heading in fm
    mc = gen.render_manifold_comparison(df)
    for heading in ("## What is compared", "## Results", "## Statistical comparison", "## Every comparison",
                    "## Compared where each is at its best", "## Failures of the two optimizers", "## Conclusions"):
        assert heading in mc


def test_hostile_run_name_is_text_in_tables(gen):
    text = gen.render_format_comparison(runs(), "E5M2")
    assert "<script>" not in text and "alert(1)" in text
    row = next(line for line in text.splitlines() if "alert(1)" in line and "| finished" in line)
    assert row.count("|") == 10  # 9 cells of the per-run table: the name's pipe did not split a cell
    card = next(line for line in text.splitlines() if "[r01](" in line and line.startswith("| E5M2"))
    assert card.count("|") == 12  # 11 scorecard cells (no unpaired P(improve)), the last one listing the runs by id
    assert "alert(1)" not in card
    assert "`" not in row and "&lt;script&gt;" in row and "&#124;" in row
    assert "new]" in row  # the newline became a space inside the same cell


def test_figures_and_run_link_are_used(gen):
    figs = [{"id": "fig-loss", "caption": "Loss | curves", "src": "figures/loss.svg"}]
    text = gen.render_format_comparison(runs(), "E5M2", figures=figs,
                                        run_link=lambda r: f"[{r['run_id']}](../runs/{r['run_id']}/)")
    assert '<a id="fig-loss"></a>' in text and "![Loss &#124; curves](figures/loss.svg)" in text
    assert "*Figure 1: Loss &#124; curves*" in text and "[r01](../runs/r01/)" in text


def test_timestamp_never_reads_the_clock(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert resolve_timestamp(None).startswith("not recorded")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert resolve_timestamp(None) == "1970-01-01T00:00:00+00:00"
    assert resolve_timestamp("2026-02-03T00:00:00Z") == "2026-02-03T00:00:00Z"


def test_same_data_same_bytes(tmp_path):
    a = ReportGenerator(tmp_path / "a", generated_at=STAMP).generate_manifold_comparison(runs())
    b = ReportGenerator(tmp_path / "b", generated_at=STAMP).generate_manifold_comparison(runs())
    assert Path(a).read_bytes() == Path(b).read_bytes()


HOSTILE_FORMAT = "E9M9 $x$ <script>|`y`\n[z](javascript:alert(1))"


def test_hostile_config_values_are_text_in_every_report(gen):
    df = runs()
    df["format"] = df["format"].replace("E7M0", HOSTILE_FORMAT)
    failures = _failures(df)
    failures["reason"] = "NaN <b>bold</b> | `code`\nsecond line"
    texts = [gen.render_format_comparison(df, failures=failures), gen.render_failure_modes(failures, runs_df=df),
             gen.render_manifold_comparison(df)]
    for text in texts:
        assert "<script>" not in text and "<b>" not in text and "](javascript" not in text
        assert "`y`" not in text and "`code`" not in text
        for line in text.splitlines():
            if line.startswith("|") and "E9M9" in line:
                assert "&#124;" in line and "&lt;script&gt;" in line
    header = next(line for line in texts[1].splitlines() if line.startswith("| format"))
    row = next(line for line in texts[1].splitlines() if line.startswith("| E9M9"))
    assert row.count("|") == header.count("|")  # no pipe in the values split a cell
    assert "### E9M9 &#36;x&#36; &lt;script&gt;&#124;&#96;y&#96; &#91;z&#93;(javascript:alert(1))" in texts[1]


def test_md_link_drops_unsafe_urls():
    from altgrad_docs.report.markdown import md_link

    assert md_link("x", "javascript:alert(1)") == "x"
    assert md_link("a]b", "https://wandb.ai/e/p/runs/a b") == "[a&#93;b](https://wandb.ai/e/p/runs/a%20b)"
    assert md_link("r", "../runs/r1/") == "[r](../runs/r1/)"
    assert md_link("r", "https://x/(y)") == "[r](https://x/%28y%29)"


def test_the_plans_narrower_frames_render(gen):
    """get_manifold_comparison_runs has no status/name; the plan's failure_df has 4 columns."""
    df = runs()
    manifold = df[df["format"] == "E5M2"][["optimizer", "manifold_aware", "run_id", "final_loss", "best_loss",
                                           "bit_stall_final", "format", "seed", "state", "run_url"]]
    text = gen.render_manifold_comparison(manifold)
    assert "Metric: final_loss (nats" in text  # no val_loss column in this frame
    assert "| E5M2     | 3 pairs " in text and "No data" not in text
    plan_failures = pd.DataFrame({"format": ["E7M0"], "collapse_step": [412], "reason": ["NaN/Inf loss"],
                                  "last_good_loss": [6.91]})
    text = gen.render_failure_modes(plan_failures)
    row = next(line for line in text.splitlines() if line.startswith("| E7M0"))
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "E7M0", "-", "-", "-", "-", "412", "NaN/Inf loss", "6.910", "-", "overflow", "none"]  # no history: no onset
    assert "| overflow | 1 | E7M0 |" in text  # the history column classifies nothing here: not shown
    minimal = df[["format", "run_id", "run_url", "state", "steps", "final_loss", "best_loss", "bit_stall_final",
                  "overflow_final"]]
    text = gen.render_format_comparison(minimal)
    assert "**E5M2**" in text and "| E7M0     | AdamW       | 2/4 [" in text  # rates per condition


def test_sweet_spot_without_finished_runs_is_said(gen):
    assert "The sweet spot given, E3M4, has no finished run" in gen.render_format_comparison(runs(), "E3M4")
    df = runs()
    df = df[df["format"] == "BF16"]
    assert "No 8-bit format has a finished run" in gen.render_format_comparison(df)


def test_extra_stamp_is_shown(gen):
    text = gen.render_formats(extra={"stamp": "snapshot `abc123`"})
    assert text.splitlines()[2] == f"*Generated: {STAMP}* · snapshot `abc123`"  # trusted text from the site


def test_reports_render_as_text_through_python_markdown(gen):
    """What MkDocs does with the Markdown: hostile values must stay text in the HTML."""
    import markdown

    df = runs()
    df["format"] = df["format"].replace("E7M0", HOSTILE_FORMAT)
    failures = _failures(df)
    failures["reason"] = "x <img src=x onerror=alert(1)> | `y`"
    pages = []
    for text in (gen.render_format_comparison(df, failures=failures), gen.render_failure_modes(failures, runs_df=df),
                 gen.render_manifold_comparison(df)):
        html = markdown.markdown(text, extensions=["tables", "attr_list"])
        pages.append(html)
        assert "<script" not in html and "<img" not in html and "<code>" not in html
        assert 'href="javascript' not in html
        for table in html.split("<table>")[1:]:
            body = table.split("</table>")[0]
            header_cells = len(re.findall(r"<th[ >]", body.split("</thead>")[0]))
            for row in body.split("<tbody>")[1].split("<tr>")[1:]:
                assert len(re.findall(r"<td[ >]", row)) == header_cells
    # a format outside the registry is left out of the comparisons (issue #20) but named where
    # the failures are listed: escaped there
    html = "".join(pages)
    assert "&lt;script&gt;" in html and "E9M9 $x$" in html.replace("&#36;", "$")


@pytest.mark.parametrize("mode,text", [
    ("divergence", "- **Divergence** (the loss rose above its starting value"),
    ("stagnation", "- **Stagnation** (no improvement while the bit stall stays above the threshold)"),
])
def test_trainer_stopped_modes_get_their_recommendation(gen, mode, text):
    failures = pd.DataFrame({"format": ["E4M3"], "collapse_step": [51], "reason": ["stopped"],
                             "last_good_loss": [2.5], "history_mode": [mode]})
    out = gen.render_failure_modes(failures)
    assert text in out and f"| {mode} | 1 | E4M3 |" in out  # the plan heuristic classifies nothing: no column
    other = "stagnation" if mode == "divergence" else "divergence"
    assert f"**{other.capitalize()}**" not in out
