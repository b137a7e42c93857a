"""The run page's chart data (JSON for the browser) and its static SVG fallback."""

import json

import numpy as np
import pandas as pd

from altgrad_docs.site import runchart


def test_downsample_keeps_extremes_and_drops_non_finite():
    x = np.arange(10_000)
    y = np.sin(x / 500.0)
    y[4321] = 50.0  # a spike that stride decimation would miss
    y[100] = np.nan
    sx, sy = runchart.downsample(x, y, 500)
    assert len(sx) == 500 and np.all(np.diff(sx) > 0)
    assert 4321 in sx.tolist() and sy.max() == 50.0
    assert 100 not in sx.tolist() and np.isfinite(sy).all()
    small_x, small_y = runchart.downsample(x[:10], y[:10], 500)
    assert small_x.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_chart_data_shares_x_per_panel_and_keeps_log_values_positive():
    history = pd.DataFrame({
        "_step": [0, 1, 2, 3],
        "loss": [4.0, 3.0, np.nan, np.nan],
        "val_loss": [np.nan, 3.5, np.nan, np.nan],
        "bit_stall_rate": [0.5, 0.0, 0.25, 0.125],  # old unprefixed name
    })
    data = runchart.chart_data(history)
    loss, grad, rates = data["panels"]
    assert loss["x"] == [0, 1] and [s["name"] for s in loss["series"]] == ["loss", "val_loss"]
    assert loss["series"][0]["y"] == [4.0, 3.0] and loss["series"][1]["y"] == [None, 3.5]
    assert grad["x"] == [] and grad["series"] == []
    assert rates["log"] and rates["x"] == [0, 2, 3]
    assert rates["series"] == [{"name": "bit_stall_rate", "y": [0.5, 0.25, 0.125]}]
    assert data["collapse"] == 2
    assert json.loads(runchart.chart_json(data)) == data
    assert runchart.chart_json(data) == runchart.chart_json(runchart.chart_data(history))


def test_svg_fallback_draws_lines_and_says_what_is_missing():
    history = pd.DataFrame({"_step": np.arange(1000), "loss": np.linspace(5, 1, 1000)})
    svg = runchart.chart_svg(runchart.chart_data(history)).decode()
    assert svg.startswith("<svg") and svg.count("<polyline") == 1
    points = svg.split('<polyline points="')[1].split('"')[0].split()
    assert len(points) == runchart.SVG_POINTS
    assert svg.count("not logged") == 2  # gradient norm and rates
    assert "crimson" not in svg  # no collapse


def test_svg_fallback_escapes_series_names():
    data = {"collapse": None, "panels": [{"id": "loss", "label": "a<b&c", "log": False, "x": [0, 1],
                                          "series": [{"name": "<script>", "y": [1.0, 2.0]}]}]}
    svg = runchart.chart_svg(data).decode()
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&lt;b&amp;c" in svg
