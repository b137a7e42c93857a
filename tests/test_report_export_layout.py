"""save_figure lays a figure out once and draws it once per format, with the bytes a plain
savefig gives (matplotlib internals are used for that: this is the test that they still work)."""

import io

import matplotlib
import numpy as np
import pytest
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from altgrad_docs.report import export
from altgrad_docs.report.figure_style import figure_legend, plain_log_ticks


class DrawCounter(Artist):
    """An invisible artist that counts how often the figure is drawn (with or without output)."""

    def __init__(self):
        super().__init__()
        self.draws = 0

    def draw(self, renderer):
        self.draws += 1


def _figure() -> tuple[Figure, DrawCounter]:
    """Two constrained-layout panels, a log axis with plain labels, a figure legend, and a
    minus sign and ≤ (outside Latin-1, so the PDF font subsets matter)."""
    fig = Figure(figsize=(6.8, 2.6), layout="constrained")
    axes = fig.subplots(1, 2)
    x = np.linspace(-50, 0, 200)
    axes[0].plot(x, np.exp(x / 10) + 0.01, label="rate ≤ 1")
    axes[0].set_yscale("log")
    plain_log_ticks(axes[0])
    axes[1].plot(x, np.sin(x / 5), label="sine")
    axes[1].set_xlabel("steps before failure")
    figure_legend(fig)
    counter = DrawCounter()
    fig.add_artist(counter)
    return fig, counter


def _plain_savefig(ext: str) -> bytes:
    fig, _ = _figure()
    buf = io.BytesIO()
    with matplotlib.rc_context(export.RC):
        fig.savefig(buf, format=ext, metadata=export.METADATA[ext])
    return buf.getvalue()


@pytest.mark.parametrize("formats", [("svg", "pdf"), ("pdf", "svg")])
def test_same_bytes_as_savefig_and_one_draw_per_format(tmp_path, formats):
    fig, counter = _figure()
    paths = export.save_figure(fig, tmp_path / "f", formats)
    assert counter.draws == len(formats)  # a plain savefig of an engine-laid-out figure draws twice
    # the second format reuses the first one's layout; the first is exactly a plain savefig
    assert paths[formats[0]].read_bytes() == _plain_savefig(formats[0])
    assert fig.get_layout_engine() is not None  # the figure keeps its engine


def test_reused_layout_is_the_layout_of_the_first_format(tmp_path):
    """SVG then PDF: the PDF is drawn at the SVG's layout, the same as a plain savefig of both
    with the engine removed after the first."""
    fig, _ = _figure()
    paths = export.save_figure(fig, tmp_path / "f", ("svg", "pdf"))
    ref, _ = _figure()
    with matplotlib.rc_context(export.RC):
        ref.savefig(io.BytesIO(), format="svg", metadata=export.METADATA["svg"])
        ref.set_layout_engine("none")
        buf = io.BytesIO()
        ref.savefig(buf, format="pdf", metadata=export.METADATA["pdf"])
    assert paths["pdf"].read_bytes() == buf.getvalue()


def test_pdf_embeds_one_truetype_font_for_latin_and_symbols(tmp_path):
    fig, _ = _figure()
    pdf = export.save_figure(fig, tmp_path / "f", ("pdf",))["pdf"].read_bytes()
    assert pdf.count(b"/FontFile2") == 1  # Type 42: the TrueType program is embedded, once
    assert pdf.count(b"/Subtype /Type3") == 0
