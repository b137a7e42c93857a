"""How every figure looks: colour-blind-safe colours, line styles, one legend per figure,
facets per experimental setting, and the stall rule a panel title states.

Colours are the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), which stays
distinguishable under the common colour-vision deficiencies; the two optimizers also differ
by line style, so a grey-scale print or a reader who cannot tell the hues apart still can.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

import pandas as pd

from altgrad_docs.analysis.scorecard import MANIFOLD, STANDARD
from altgrad_docs.formats import FORMATS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Okabe-Ito: orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, black.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
OPTIMIZER_COLORS = {STANDARD: "#0072B2", MANIFOLD: "#D55E00"}
#: AdamW solid, ManifoldAdamW dash-dot; the 16-bit baseline is grey and dashed.
OPTIMIZER_STYLES = {STANDARD: "-", MANIFOLD: "-."}
BASELINE_COLOR = "0.45"
BASELINE_STYLE = "--"
#: Formats get the palette in registry order, yellow last (it is faint on white).
FORMAT_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
FORMAT_DASHES = ("-", "--", "-.", ":")
#: Width a figure legend allows per column (labels such as "ManifoldAdamW (median, min-max)").
LEGEND_ENTRY_INCHES = 2.3
#: Log axes spanning up to this many decades label their minor ticks at 2 and 5.
MINOR_LABEL_DECADES = 3
#: The minor ticks of a short log axis (x a power of ten); the only ones drawn, all labelled.
LABELLED_MINOR = (2.0, 5.0)
#: The run-table column that names one combination of experimental factors.
SETTING = "setting"
#: Widest figure, inches: a figure in the content column at 1280 px is shown about 750 px wide
#: (7.8 in at 96 dpi), so it is shown at its drawn size and 7 pt text reads 9.3 px.
MAX_FIGURE_WIDTH = 7.8
#: Most panels in one figure; a design with more settings gets a figure per setting.
MAX_PANELS = 12


def format_colors(formats: Sequence[str]) -> dict[str, str]:
    """One palette colour per format; a baseline format is grey; the palette repeats past 8."""
    out, i = {}, 0
    for f in formats:
        if f in FORMATS or f not in ("BF16", "FP16", "FP32"):
            out[f] = FORMAT_PALETTE[i % len(FORMAT_PALETTE)]
            i += 1
        else:
            out[f] = BASELINE_COLOR
    return out


def optimizer_style(optimizer: str) -> tuple[str, str]:
    """(colour, line style) of an optimizer; unknown optimizers are black and dotted."""
    return OPTIMIZER_COLORS.get(optimizer, "#000000"), OPTIMIZER_STYLES.get(optimizer, ":")


def axes_legend(ax: Axes, **kw) -> None:
    """The legend of a single-axes figure, outside the data (right of the axes)."""
    unique = _unique_labels([ax])
    if unique:
        ax.legend(list(unique.values()), list(unique), fontsize=7, frameon=False, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kw)


def figure_legend(fig: Figure, ncols: int = 4) -> None:
    """One legend for the whole figure, below the panels: every distinct label of every
    panel once (first handle wins), and no legend left inside a panel."""
    for ax in fig.axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    seen = _unique_labels(fig.axes)
    if seen:  # as many columns as fit the figure's width (about LEGEND_ENTRY_INCHES each)
        fit = max(1, int(fig.get_figwidth() // LEGEND_ENTRY_INCHES))
        fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=min(ncols, len(seen), fit),
                   fontsize=8, frameon=False)


def _unique_labels(axes) -> dict[str, object]:
    """label -> first handle over ``axes``, in drawing order (matplotlib's hidden labels skipped)."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label and not label.startswith("_"):
                seen.setdefault(label, handle)
    return seen


def share_limits(axes: Sequence[Axes]) -> None:
    """The same x and y limits on every panel that drew data (the union of their limits),
    so that panels put side by side compare at a glance; log axes keep plain tick labels."""
    drawn = [ax for ax in axes if ax.lines or ax.collections]
    if len(drawn) < 2:
        return
    for get, set_ in (("get_xlim", "set_xlim"), ("get_ylim", "set_ylim")):
        lows, highs = zip(*(getattr(ax, get)() for ax in drawn))
        for ax in drawn:
            getattr(ax, set_)(min(lows), max(highs))
    for ax in drawn:
        if ax.get_yscale() == "log":
            plain_log_ticks(ax)


def plain_log_ticks(ax: Axes) -> None:
    """Tick labels of a log y axis as plain numbers (0.05, 0.1, 0.5), not 5x10^-2 (plain text
    is also much quicker to lay out than mathtext); on an axis spanning at most
    ``MINOR_LABEL_DECADES`` decades the minor ticks at 2 and 5 x a power of ten are labelled
    too (an axis spanning less than a decade has no other labels).

    Minor ticks are placed only where they carry a label (2 and 5 x a power of ten on a short
    axis, none on a long one): matplotlib lays out every tick, labelled or not, and the eight
    unlabelled minor ticks per decade of a five-decade axis cost more than the rest of its
    panel (measured: about a quarter of the report figures' drawing time)."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    low, high = ax.get_ylim()
    few = low > 0 and math.log10(high / low) <= MINOR_LABEL_DECADES
    ax.yaxis.set_minor_locator(LogLocator(subs=LABELLED_MINOR) if few else NullLocator())
    ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label))


def _minor_label(v: float, _pos=None) -> str:
    """The label of a minor log tick: the value at 2 and 5 x a power of ten, else nothing."""
    import math

    lead = round(v / 10 ** math.floor(math.log10(v)), 6) if v > 0 else 0
    return f"{v:g}" if lead in LABELLED_MINOR else ""


def settings_of(table: pd.DataFrame) -> list[str] | None:
    """The distinct experimental settings of a table in first-seen order, or None when it
    has no ``setting`` column or only one value (then figures pool, as there is nothing
    to separate)."""
    if SETTING not in table.columns:
        return None
    values = list(dict.fromkeys(str(v) for v in table[SETTING].dropna()))
    return values if len(values) > 1 else None


def facets(table: pd.DataFrame) -> Iterator[tuple[str | None, pd.DataFrame]]:
    """(setting, rows of that setting) for each setting, or (None, table) once when the
    table has no more than one setting."""
    settings = settings_of(table)
    if settings is None:
        yield None, table
        return
    column = table[SETTING].astype("string")
    for s in settings:
        yield s, table[(column == s).fillna(False).to_numpy()]


def facet_title(name: str, setting: str | None) -> str:
    return name if setting is None else f"{name} · {setting}"


def stall_rule(fmt: str) -> list[str]:
    """The update sizes round-to-nearest loses in ``fmt``, one line per range of |w|.

    In the normal range the spacing grows with |w|, so the lost updates are a band
    2^-(M+2) .. 2^-(M+1) of |w|; below the smallest normal value the spacing is the constant
    subnormal step (the smallest positive value), so the threshold there is absolute, half
    that step. For the low-exponent formats most weights lie in that range (E1M6's smallest
    normal is 2), which is why both lines are stated. E0M7 has one absolute rule."""
    if fmt not in FORMATS:
        return []
    f = FORMATS[fmt]
    half_step = _pow2(f.min_positive / 2)
    if f.min_normal is None:
        return [f"all |w|: |update| < {half_step} (absolute)"]
    lo, hi = 2.0 ** -(f.man_bits + 2), 2.0 ** -(f.man_bits + 1)
    lines = [f"|w| ≥ {_pow2(f.min_normal)}: |update| < {100 * lo:.3g}–{100 * hi:.3g}% of |w|"]
    if f.has_subnormals:
        lines.append(f"|w| < {_pow2(f.min_normal)} (subnormal): |update| < {half_step}")
    return lines


def _pow2(x: float) -> str:
    import math

    e = math.log2(x)
    return f"2^{int(e)}" if e == int(e) else f"{x:.3g}"
