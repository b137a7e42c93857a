"""CSV downloads are safe to open in a spreadsheet (issue #12: OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from altgrad_docs.report.export import csv_cell, table_csv


@pytest.mark.parametrize("value, expected", [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
    ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("-0.5", "-0.5"), ("+3", "+3"), ("-inf", "-inf"), ("plain", "plain"), ("a=b", "a=b"), ("", ""),
    (-1.5, -1.5), (None, None),
])
def test_csv_cell(value, expected):
    assert csv_cell(value) == expected


def test_table_csv_neutralises_text_and_headers_keeps_numbers():
    df = pd.DataFrame({
        "name": ["=cmd|' /C calc'!A0", "ok", "-x"],
        "=header": ["a", "b", "c"],
        "loss": [-1.5, np.nan, 2.0],
        "steps": pd.array([-3, 4, None], dtype="Int64"),
        "flag": [True, False, True],
    })
    rows = list(csv.reader(io.StringIO(table_csv(df))))
    assert rows[0] == ["name", "'=header", "loss", "steps", "flag"]
    assert rows[1] == ["'=cmd|' /C calc'!A0", "a", "-1.5", "-3", "True"]
    assert rows[2] == ["ok", "b", "", "4", "False"]
    assert rows[3] == ["'-x", "c", "2.0", "", "True"]
    assert df["name"].iloc[0].startswith("=")  # the caller's frame is left alone
