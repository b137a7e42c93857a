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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from ..report import export

#: What a figure is published as (report.export writes them byte-reproducibly).
FIGURE_FORMATS = ("svg", "pdf")


@dataclass
class FigureArtifact:
    """One published figure: its files (already on disk, in the figure cache)."""

    id: str
    caption: str
    files: dict[str, Path]
    alt: str = ""
    number: int = 0
    #: one of several figures shown in one place as tabs (one per setting): the place's id
    #: (where the report template puts it) and this figure's tab label
    group: str = ""
    tab: str = ""
    #: relative Markdown link to the table that holds the figure's numbers ("" = none)
    table_link: str = ""


#: A table of text columns, header -> cells: written without a DataFrame.
TextColumns = dict[str, list[str]]


@dataclass
class TableArtifact:
    """One published table: the raw frame (for CSV/LaTeX) and the display cells (Markup).

    ``data`` may be a function making the frame: the downloads are cached, so a warm build
    never needs it (200 small frames cost ~0.3 s at 100 runs). Or text columns
    (:data:`TextColumns`): a run page's key/value tables, written straight from their lists
    on a cold build (a DataFrame each cost ~0.5 ms, 2,000 of them at 1,000 runs)."""

    id: str
    caption: str
    data: pd.DataFrame | Callable[[], pd.DataFrame] | TextColumns
    header: list[str]
    rows: list[list[Any]]
    number: int = 0
    css_class: str = ""
    collapsed: bool = False  # values folded under the caption (shown in the text above)
    files: dict[str, Path] = field(default_factory=dict)  # tables/<id>.csv|.tex -> cached file

    def frame(self) -> pd.DataFrame:
        if isinstance(self.data, dict):
            return pd.DataFrame(self.data)
        if callable(self.data):
            self.data = self.data()
        return self.data


@dataclass
class PageArtifacts:
    """Figures and tables of one page, numbered in the order they are added."""

    figures: list[FigureArtifact] = field(default_factory=list)
    tables: list[TableArtifact] = field(default_factory=list)
    #: other downloads beside the page: name (e.g. "logs/console.txt") -> cached file
    files: dict[str, Path] = field(default_factory=dict)

    def add_figure(self, fig: FigureArtifact) -> FigureArtifact:
        fig.number = len(self.figures) + 1
        self.figures.append(fig)
        return fig

    def add_table(self, table: TableArtifact) -> TableArtifact:
        table.number = len(self.tables) + 1
        self.tables.append(table)
        return table


def table(
    id: str, caption: str, data: pd.DataFrame | Callable[[], pd.DataFrame] | TextColumns, header: Sequence[str],
    rows: list[list[Any]], css_class: str = "", collapsed: bool = False,
) -> TableArtifact:
    return TableArtifact(id, caption, data, list(header), rows, css_class=css_class, collapsed=collapsed)


def table_files(t: TableArtifact, only_names: bool = False) -> dict[str, str]:
    """The download files of a table: relative name -> text (report.export writes them)."""
    if only_names:
        return {f"tables/{t.id}.csv": "", f"tables/{t.id}.tex": ""}
    if isinstance(t.data, dict) and all(t.data.values()):  # text columns: their frame's bytes, sooner
        # (no rows: through pandas, whose alignment for an empty frame is "r")
        header, columns = list(t.data), list(t.data.values())
        return {
            f"tables/{t.id}.csv": export.columns_csv(header, columns),
            f"tables/{t.id}.tex": export.columns_latex(header, columns, t.caption, t.id),
        }
    return {
        f"tables/{t.id}.csv": export.table_csv(t.frame()),
        f"tables/{t.id}.tex": export.table_latex(t.frame(), t.caption, t.id),
    }
