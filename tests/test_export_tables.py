"""The table writers (csv module, hand-written booktabs) against pandas, the reference.

report.export writes CSV and LaTeX without pandas' writers (its ``to_latex`` renders through
Styler and Jinja2, ~9 ms a table); the bytes must stay what pandas writes, so these tests
build random small frames and compare with ``to_csv`` / ``to_latex`` called here directly.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from altgrad_docs.report import export

#: Text that exercises quoting, formula neutralising and LaTeX escaping.
TEXT = st.text(alphabet=st.sampled_from(list("ab Z09.,\"'\n\r\t=+-@&%$#_{}~^\\é")), max_size=8)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.1, 1e16, 1e-5, -0.0, 123456.5])
COLUMNS = st.one_of(
    st.lists(TEXT, min_size=1, max_size=5),
    st.lists(TEXT | st.none(), min_size=1, max_size=5),
    st.lists(st.integers(-10**12, 10**12), min_size=1, max_size=5),
    st.lists(FLOATS, min_size=1, max_size=5),
    st.lists(FLOATS | st.none(), min_size=1, max_size=5),
    st.lists(st.booleans(), min_size=1, max_size=5),
    st.lists(TEXT | st.integers(-5, 5) | st.none() | st.just(math.nan), min_size=1, max_size=5),
)


@st.composite
def frames(draw) -> pd.DataFrame:
    n_rows = draw(st.integers(1, 5))
    names = draw(st.lists(TEXT, min_size=1, max_size=4, unique=True))
    data = {}
    for name in names:
        values = draw(COLUMNS)
        data[name] = (values * n_rows)[:n_rows]
    df = pd.DataFrame(data)
    if draw(st.booleans()):  # nullable integers as the run table has them
        df["n"] = pd.array(draw(st.lists(st.integers(0, 9) | st.none(), min_size=n_rows, max_size=n_rows)),
                           dtype="Int64")
    return df


def reference_csv(df: pd.DataFrame) -> str:
    """What table_csv wrote through pandas: its code before the csv-module writer, kept in
    export as the path for frames that writer leaves out."""
    return export._table_csv_pandas(df)


def reference_latex(df: pd.DataFrame, caption, label, digits: int = 4) -> str:
    """What table_latex wrote through pandas' Styler: its code before the hand-written writer,
    kept in export for the frames the writer leaves out."""
    return export._table_latex_pandas(df, caption, label, digits)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(frames())
def test_table_csv_is_pandas_to_csv(df):
    assert export.table_csv(df) == reference_csv(df)


@PROPERTY
@given(frames(), st.sampled_from([None, "", "Run summary (last logged values).", "a & b_1"]),
       st.sampled_from([None, "", "tab-x", "tab-run-summary"]))
def test_table_latex_is_pandas_to_latex(df, caption, label):
    assert export.table_latex(df, caption, label) == reference_latex(df, caption, label)


@PROPERTY
@given(TEXT)
def test_latex_escape_is_pandas_escape(text):
    from pandas.io.formats.style_render import _escape_latex

    assert export.latex_escape(text) == _escape_latex(text)


def test_text_and_number_frames_take_the_fast_writers(monkeypatch):
    """The frames the site writes (text, int, float, None/NaN, nullable ints) never fall
    back to pandas: the speed is real, not only the bytes. (Missing text in a "str" column
    shows as "nan" in LaTeX: what pandas' map gave the old writer, kept byte for byte.)"""
    def no_pandas(*args, **kwargs):
        raise AssertionError("fell back to pandas")

    monkeypatch.setattr(export, "_table_csv_pandas", no_pandas)
    monkeypatch.setattr(export, "_table_latex_pandas", no_pandas)
    df = pd.DataFrame({"run": ["=a", None, "b_c"], "loss": [1.5, np.nan, 1e-7], "steps": [1, 2, 3],
                       "flag": [True, False, True], "n": pd.array([1, None, 3], dtype="Int64")})
    assert export.table_csv(df) == 'run,loss,steps,flag,n\n\'=a,1.5,1,True,1\n,,2,False,\nb_c,1e-07,3,True,3\n'
    assert export.table_latex(df, "cap", "tab-y") == (
        "\\begin{table}\n\\caption{cap}\n\\label{tab-y}\n\\begin{tabular}{lllll}\n\\toprule\n"
        "run & loss & steps & flag & n \\\\\n\\midrule\n=a & 1.5 & 1 & True & 1 \\\\\n"
        "nan & -- & 2 & False &  \\\\\nb\\_c & 1e-07 & 3 & True & 3 \\\\\n\\bottomrule\n\\end{tabular}\n\\end{table}\n")


@pytest.mark.parametrize("df", [
    pd.DataFrame({"when": pd.to_datetime(["2026-01-01", None])}),  # dates: pandas formats them
    pd.DataFrame({"a": pd.Series([1, None], dtype=object)}),  # pandas' map infers float64 here
    pd.DataFrame({"a": pd.Series([], dtype="float64")}),  # no rows: pandas picks the alignment
    pd.DataFrame({("a", "b"): [1.0]}),
])
def test_other_frames_go_through_pandas(df):
    assert export.table_csv(df) == reference_csv(df)
    assert export.table_latex(df, "c", "tab-z") == reference_latex(df, "c", "tab-z")


def test_columns_writers_match_a_text_frame():
    keys, values = ["b_key", "=x", "a"], ["1.0", "{\"n\": 2}", "-3"]
    df = pd.DataFrame({"key": keys, "value": values})
    assert export.columns_csv(["key", "value"], [keys, values]) == reference_csv(df)
    assert export.columns_latex(["key", "value"], [keys, values], "Run config.", "tab-config") == \
        reference_latex(df, "Run config.", "tab-config")
