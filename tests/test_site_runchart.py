"""The run page's chart data (JSON for the browser) and its static SVG fallback."""

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
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


ROUNDING_CASES = [0.0, -0.0, 0.30000000000000004, 123456.5, 1234565.0, 1.2345650000000001, 9.999995e-5,
                  999999.5, 1e22, 1e23, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                  -1.7976931348623157e308, 1 / 3, -2 / 3, 7e-3, 1e16 + 2,
                  56063.95, 3.806485e-08, -8.449325e-12, 0.1248035]  # ties of the 7th digit in the text


@settings(max_examples=500, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(ROUNDING_CASES), max_size=50))
def test_round_significant_is_float_of_the_6g_text_bit_for_bit(values):
    v = np.array(values, dtype=np.float64)
    got = runchart.round_significant(v, 6)
    want = np.array([float(f"{x:.6g}") if np.isfinite(x) else x for x in values], dtype=np.float64)
    assert np.array_equal(got.view(np.int64), want.view(np.int64)) or np.array_equal(got, want, equal_nan=True)
    assert [repr(x) for x in got.tolist()] == [repr(x) for x in want.tolist()]


def test_short_values_stay_short_in_json():
    assert runchart.chart_json({"y": runchart._short(np.array([0.1 + 0.2, np.nan, np.inf, 1 / 3, 2.0]))}) == \
        b'{"y":[0.3,null,null,0.333333,2.0]}'


def test_chart_data_of_unsorted_repeated_steps_keeps_the_last_value():
    history = pd.DataFrame({"_step": [2, 0, 2, 1], "loss": [1.0, 2.0, 3.0, 4.0], "val_loss": [np.nan, 5.0, np.nan, 6.0]})
    loss = runchart.chart_data(history)["panels"][0]
    assert loss["x"] == [0, 1, 2]
    assert loss["series"] == [{"name": "loss", "y": [2.0, 4.0, 3.0]}, {"name": "val_loss", "y": [5.0, 6.0, None]}]
