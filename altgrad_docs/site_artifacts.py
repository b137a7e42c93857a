"""Figures and tables as the site publishes them: stable id, numbered caption, downloads.

The id scheme (documented on the How-to-cite page): every figure id starts with ``fig-``,
every table id with ``tab-``, followed by a name fixed in the code (never a position), e.g.
``fig-loss-curves`` or ``tab-format-facts``. The id is the HTML anchor on its page and the
file name of its downloads, which sit beside the page::

    <page>/#<id>                      the figure or table on its page
    <page>/figures/<id>.svg | .pdf    a figure, vector, as drawn on the page
    <page>/tables/<id>.csv | .tex     a table, raw values (CSV) and LaTeX booktabs

Numbers ("Figure 2", "Table 1") count per page in reading order; the ids do not change
when a figure is added before them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import pandas as pd
from matplotlib.figure import Figure as MplFigure

FIGURE_FORMATS = ("svg", "pdf")
#: Matplotlib settings that make SVG/PDF bytes depend on the figure only.
_SAVE_METADATA = {"svg": {"Date": None, "Creator": None}, "pdf": {"CreationDate": None, "Creator": None}}


@dataclass
class FigureArtifact:
    """One published figure: its files (already on disk, in the figure cache)."""

    id: str
    caption: str
    files: dict[str, Path]
    alt: str = ""
    number: int = 0


@dataclass
class TableArtifact:
    """One published table: the raw frame (for CSV/LaTeX) and the display cells (Markup)."""

    id: str
    caption: str
    data: pd.DataFrame
    header: list[str]
    rows: list[list[Any]]
    number: int = 0
    css_class: str = ""


@dataclass
class PageArtifacts:
    """Figures and tables of one page, numbered in the order they are added."""

    figures: list[FigureArtifact] = field(default_factory=list)
    tables: list[TableArtifact] = field(default_factory=list)

    def add_figure(self, fig: FigureArtifact) -> FigureArtifact:
        fig.number = len(self.figures) + 1
        self.figures.append(fig)
        return fig

    def add_table(self, table: TableArtifact) -> TableArtifact:
        table.number = len(self.tables) + 1
        self.tables.append(table)
        return table


def save_figure(fig: MplFigure, stem: Path) -> dict[str, Path]:
    """Write ``fig`` as SVG and PDF next to ``stem``, byte-reproducibly. Returns the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in FIGURE_FORMATS:
        path = stem.with_suffix(f".{ext}")
        buf = io.BytesIO()
        with matplotlib.rc_context({"svg.hashsalt": "altgrad-docs"}):  # stable SVG ids
            fig.savefig(buf, format=ext, metadata=_SAVE_METADATA[ext])
        tmp = path.with_suffix(f".{ext}.tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
        paths[ext] = path
    return paths


def table_csv(data: pd.DataFrame) -> str:
    return data.to_csv(index=False, lineterminator="\n")


def table_latex(data: pd.DataFrame, caption: str, label: str) -> str:
    """A LaTeX booktabs table (\\toprule/\\midrule/\\bottomrule), text escaped for LaTeX."""
    shown = data.copy()
    for col in shown.columns:
        if shown[col].dtype.kind == "f":
            shown[col] = shown[col].map(lambda x: "NaN" if pd.isna(x) else f"{x:.6g}")
        else:
            shown[col] = shown[col].map(lambda x: "" if x is None or x is pd.NA else str(x))
    return shown.to_latex(index=False, escape=True, caption=caption, label=label) + ""


def table(
    id: str, caption: str, data: pd.DataFrame, header: Sequence[str], rows: list[list[Any]],
    css_class: str = "",
) -> TableArtifact:
    return TableArtifact(id, caption, data, list(header), rows, css_class=css_class)


def table_files(t: TableArtifact) -> dict[str, str]:
    """The download files of a table: relative name -> text."""
    return {
        f"tables/{t.id}.csv": table_csv(t.data),
        f"tables/{t.id}.tex": table_latex(t.data, t.caption, t.id),
    }
