"""Curves downsampled for drawing (MinMaxLTTB, ``Trace.plot``) look like the full data; the old
300 strided points did not; the failure classification reads every logged row."""

import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from altgrad_docs.analysis.curves import PLOT_POINTS, downsample_index, make_trace, plot_points
from altgrad_docs.analysis.failures import classify_trace
from altgrad_docs.analysis.loss_replay import last_best_step, smoothed
from altgrad_docs.report import export
from altgrad_docs.report import figures as F

N_STEPS = 10_000
SPIKE_AT, SPIKE = 6543, 25.0
#: Mean absolute pixel difference from the full-data drawing, as a fraction of the full
#: drawing's own ink (its mean absolute difference from empty axes). Measured: MinMaxLTTB to
#: PLOT_POINTS 0.09 (the envelope is drawn exactly; what differs is the anti-aliased shading
#: inside the noise band), 300 strided points 0.78 (the band and the spike are gone), 1,020
#: strided points 0.52. 0.15 leaves room for other freetype/Agg versions and still fails any
#: strided sampling of this curve by a factor 3 or more.
MAX_CHANGE = 0.15


@pytest.fixture(scope="module")
def noisy():
    """A 10,000-step loss: decay, Gaussian noise, one spike (one Generator, seeded)."""
    rng = np.random.default_rng(0)
    steps = np.arange(N_STEPS)
    loss = 2 + 8 * np.exp(-steps / 1500) + rng.normal(0, 0.15, N_STEPS)
    loss[SPIKE_AT] = SPIKE
    return steps, loss


def _pixels(steps, values) -> np.ndarray:
    """One report panel's line (3.4 x 2.6 in, the thin per-run line width) as grey levels
    0-255, drawn by Agg at the site's dpi."""
    dpi = export.RC["savefig.dpi"]
    fig = Figure(figsize=(3.4, 2.6), dpi=dpi)
    ax = fig.add_axes((0.15, 0.15, 0.8, 0.8))
    ax.plot(steps, values, lw=0.6, color="black")
    ax.set_xlim(0, N_STEPS)
    ax.set_ylim(0, SPIKE + 1)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    return mpimg.imread(buf)[..., :3].mean(axis=2) * 255


def _change(full: np.ndarray, other: np.ndarray, blank: np.ndarray) -> float:
    return float(np.abs(full - other).mean() / np.abs(full - blank).mean())


def test_downsampled_curve_draws_like_the_full_one_and_strided_does_not(noisy):
    steps, loss = noisy
    s, v = make_trace("r", pd.DataFrame({"_step": steps, "loss": loss})).plot_curve("loss")
    assert len(s) == PLOT_POINTS and s.dtype == np.int32 and v.dtype == np.float32
    full, blank = _pixels(steps, loss), _pixels([], [])
    assert _change(full, _pixels(s, v), blank) < MAX_CHANGE
    idx = downsample_index(N_STEPS, 300)  # what the figures drew before
    assert _change(full, _pixels(steps[idx], loss[idx]), blank) > MAX_CHANGE


def test_the_spike_survives_downsampling(noisy):
    steps, loss = noisy
    trace = make_trace("r", pd.DataFrame({"_step": steps, "loss": loss}))
    s, v = trace.plot_curve("loss")
    assert v.max() == SPIKE and s[v.argmax()] == SPIKE_AT
    assert trace.curve("loss")[1].max() < SPIKE / 2  # the strided curve (medians) lost it


def test_the_loss_panel_draws_the_spike(noisy):
    steps, loss = noisy
    runs = pd.DataFrame({"run_id": ["r"], "format": ["E4M3"], "optimizer": ["AdamW"]})
    ax = F.plot_loss_curves({"r": make_trace("r", pd.DataFrame({"_step": steps, "loss": loss}))}, runs, "E4M3")
    thin = [ln for ln in ax.lines if ln.get_linewidth() == 0.6]
    assert len(thin) == 1 and len(thin[0].get_xdata()) == PLOT_POINTS and max(thin[0].get_ydata()) == SPIKE


def test_two_points_per_pixel_column_of_a_panel():
    """PLOT_POINTS covers the widest axes of a report panel grid at the site's dpi twice, and
    is no more than twice the panel's own width."""
    steps = np.arange(2000)
    runs = pd.DataFrame({"run_id": ["r"], "format": ["E4M3"], "optimizer": ["AdamW"]})
    tr = {"r": make_trace("r", pd.DataFrame({"_step": steps, "loss": 3 + np.cos(steps / 50.0)}))}
    fig = F.panel_grid(["E4M3"], lambda f, ax: F.plot_loss_curves(tr, runs, f, ax=ax))
    dpi = export.RC["savefig.dpi"]
    fig.savefig(io.BytesIO(), format="png", dpi=dpi)  # runs the layout
    columns = fig.axes[0].get_position().width * fig.get_figwidth() * dpi
    assert 2 * columns <= PLOT_POINTS <= 2 * fig.get_figwidth() * dpi


def test_short_histories_are_drawn_from_every_row_as_before():
    steps = np.arange(40)
    loss = np.linspace(3, 1, 40)
    loss[5] = np.nan  # not logged
    trace = make_trace("r", pd.DataFrame({"_step": steps, "loss": loss}))
    assert trace.plot == {}  # the strided curve holds every row: no second copy
    s, v = trace.plot_curve("loss")
    assert s.tolist() == [i for i in range(40) if i != 5] and v.dtype == np.float64


def test_plot_points_are_compact_unless_float32_cannot_hold_them():
    steps = np.arange(5000)
    s, v = plot_points(steps, np.linspace(1, 2, 5000))
    assert (s.dtype, v.dtype, len(s)) == (np.int32, np.float32, PLOT_POINTS)
    huge = np.linspace(1, 2, 5000)
    huge[100], huge[200] = 1e39, 1e-40  # beyond float32; a rate a log axis still shows
    s, v = plot_points(steps, huge)
    assert v.dtype == np.float64 and 1e39 in v and 1e-40 in v


def test_replay_matches_the_monitor_loop_with_even_and_uneven_rows():
    rng = np.random.default_rng(3)
    for steps in (np.arange(0, 3000, 5), np.cumsum(rng.integers(1, 6, 800))):
        loss = 1 + 4 * np.exp(-steps / 700.0) + rng.normal(0, 0.05, len(steps))
        ema, expected = [float(loss[0])], [float(loss[0])]
        for i in range(1, len(steps)):
            a = 0.9 ** float(steps[i] - steps[i - 1])
            ema.append(a * ema[-1] + (1 - a) * float(loss[i]))
        np.testing.assert_allclose(smoothed(steps, loss), ema, rtol=1e-12)
        best, at = np.inf, None
        for step, e in zip(steps, ema):
            if e < best * 0.98:
                best, at = e, int(step)
        assert last_best_step(steps, loss) == at


def test_classification_reads_every_row_not_the_strided_curve():
    """The loss summary replays the monitor on all 3,000 rows, and an underflow spike between
    two of the 300 strided points still makes a collapsed run's mode."""
    rng = np.random.default_rng(5)
    steps = np.arange(3000)
    loss = 1 + 4 * np.exp(-steps / 900.0) + rng.normal(0, 0.05, 3000)
    trace = make_trace("r", pd.DataFrame({"_step": steps, "loss": loss}))
    assert trace.summarised and trace.finite.end == 2999
    assert trace.finite.best_at == last_best_step(steps, loss)
    assert trace.finite.best_at != last_best_step(*trace.curve("loss"))  # the strided replay differs here
    underflow = np.zeros(3000)
    underflow[1001] = 0.8
    crashed = make_trace("c", pd.DataFrame({"_step": steps, "loss": np.r_[np.ones(2999), np.nan],
                                            "quantization/underflow_rate": underflow}))
    assert 1001 not in crashed.curve("quantization/underflow_rate")[0]
    assert classify_trace(crashed)["history_mode"] == "underflow"
