"""Write figures and tables for the page and for papers, byte-reproducibly.

Figures go out as SVG (the page), PDF and PNG (papers) with fixed metadata: no dates, a
fixed creator, a fixed SVG hash salt, so the same data give the same bytes. Drawing is
cached by content hash: :func:`render_cached` skips the plot function when a figure with
the same key (its data, the function's name, the code and library versions) was written.
Tables go out as CSV and LaTeX booktabs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
from functools import lru_cache
from pathlib import Path
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # matplotlib is imported when a figure is saved, not when the site starts
    from matplotlib.figure import Figure

FORMATS = ("svg", "pdf", "png")
CREATOR = "altgrad-docs"
METADATA = {
    "svg": {"Date": None, "Creator": CREATOR},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": CREATOR, "Producer": CREATOR},
    "png": {"Software": CREATOR},
}
RC = {"svg.hashsalt": CREATOR, "svg.fonttype": "path", "pdf.fonttype": 42, "savefig.dpi": 150,
      # matplotlib 3.11 sizes the PDF backend's font subsets by ps.fonttype (its default 3: 256
      # characters each), so one character past Latin-1 (the minus sign, ≤, Δ) embedded a
      # second copy of the font; 42 keeps one subset per font (measured: 0.3 s a figure)
      "ps.fonttype": 42}
#: A linear axis shows data up to this magnitude: matplotlib's margins and ticks overflow
#: near the float limit (a loss of 1e308: "ValueError: arange"); beyond, the axis is cut here.
AXIS_LIMIT = 1e306


def save_figure(fig: Figure, stem: str | Path, formats: Iterable[str] = FORMATS) -> dict[str, Path]:
    """Write ``fig`` as ``stem.svg`` / ``.pdf`` / ``.png`` (atomically); returns the paths.

    The figure is laid out once (:func:`lay_out`, as the first format's savefig would) and
    then drawn once per format with no layout engine: with an engine set, savefig draws the
    whole figure once more (without output) before drawing it into the file, and
    constrained layout costs about a third of each save of a many-panel figure."""
    import matplotlib

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    formats = tuple(formats)
    out = {}
    engine = fig.get_layout_engine()
    try:
        with matplotlib.rc_context(RC):
            keep_in_range(fig)
            if formats:
                lay_out(fig, formats[0])
            for ext in formats:
                buf = io.BytesIO()
                fig.savefig(buf, format=ext, metadata=METADATA[ext])
                fig.set_layout_engine(None)  # None, not "none": that placeholder still pre-draws
                path = stem.parent / f"{stem.name}.{ext}"
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(buf.getvalue())
                tmp.replace(path)
                out[ext] = path
    finally:
        fig.set_layout_engine(engine)
    return out


def keep_in_range(fig: Figure) -> None:
    """Cut every autoscaled linear axis whose data pass :data:`AXIS_LIMIT` at that limit,
    and say so in the panel: the values beyond are left out, never a crash."""
    for ax in fig.axes:
        cut = False
        for name, lim in (("x", ax.dataLim.intervalx), ("y", ax.dataLim.intervaly)):
            lo, hi = (float(v) for v in lim)
            scaled = getattr(ax, f"get_autoscale{name}_on")()
            if (not scaled or getattr(ax, f"get_{name}scale")() != "linear"
                    or not (np.isfinite(lo) and np.isfinite(hi)) or max(abs(lo), abs(hi)) <= AXIS_LIMIT):
                continue
            lo, hi = (float(np.clip(v, -AXIS_LIMIT, AXIS_LIMIT)) for v in (lo, hi))
            getattr(ax, f"set_{name}lim")(lo - abs(lo) * 0.1 if lo == hi else lo, hi)
            cut = True
        if cut:
            ax.text(0.99, 0.01, f"values beyond \u00b1{AXIS_LIMIT:.0e} not shown", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="0.3")


def lay_out(fig: Figure, ext: str) -> None:
    """Run ``fig``'s layout engine as ``savefig(format=ext)`` would (that format's canvas and
    dpi, so the positions and the bytes are the same), then remove the engine.

    Uses matplotlib internals (tested with 3.11: tests/test_report_export_layout.py compares
    the bytes with a plain savefig); where they are missing, savefig lays the figure out itself."""
    import matplotlib

    engine = fig.get_layout_engine()
    switch = getattr(fig.canvas, "_switch_canvas_and_return_print_method", None)
    if engine is None or switch is None or not hasattr(fig, "_cm_set"):
        return
    with switch(ext):
        dpi = getattr(fig.canvas, "fixed_dpi", None) or matplotlib.rcParams["savefig.dpi"]
        with fig._cm_set(dpi=dpi):
            engine.execute(fig)
    fig.set_layout_engine(None)


def _feed(h: "hashlib._Hash", obj: Any) -> None:
    if isinstance(obj, np.ndarray):
        h.update(f"nd{obj.dtype}{obj.shape}".encode())
        if obj.dtype.kind in "biufcmM":
            h.update(np.ascontiguousarray(obj).tobytes())
        else:  # objects: hash their text, never their addresses
            h.update("\x1f".join(map(repr, obj.ravel().tolist())).encode())
    elif isinstance(obj, pd.DataFrame):
        h.update(b"df" + json.dumps([str(c) for c in obj.columns]).encode())
        for col in obj.columns:
            values = obj[col]
            _feed(h, values.to_numpy() if values.dtype.kind in "biufcmM" else values.astype(object).to_numpy())
    elif isinstance(obj, pd.Series):
        _feed(h, obj.to_frame())
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            h.update(b"k" + str(key).encode())
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"l{len(obj)}".encode())
        for item in obj:
            _feed(h, item)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        h.update(type(obj).__qualname__.encode())
        _feed(h, vars(obj))
    else:
        h.update(repr(obj).encode())


@lru_cache(maxsize=1)
def code_version() -> str:
    """sha256 of the analysis and report sources: a figure drawn by older code is stale."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in sorted([*(root / "analysis").glob("*.py"), *(root / "report").glob("*.py")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def content_key(*parts: Any) -> str:
    """sha256 of arrays, frames, dicts, dataclasses and plain values, with the matplotlib
    version and the drawing code's version (both change the bytes)."""
    h = hashlib.sha256(f"matplotlib {version('matplotlib')} code {code_version()}".encode())
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def digest(*parts: Any) -> str:
    """sha256 of ``parts`` as :func:`content_key` feeds them: a stand-in for large data that
    many keys share (every run's trace), so that it is hashed once, not once per figure."""
    h = hashlib.sha256(b"digest")
    for part in parts:
        _feed(h, part)
    return h.hexdigest()


def render_cached(draw: Callable[[], Figure], key_parts: Iterable[Any], stem: str | Path,
                  cache_dir: str | Path, formats: Iterable[str] = FORMATS) -> dict[str, Path]:
    """Files of a figure at ``stem``: copied from ``cache_dir`` when a figure with the same
    content key exists, else drawn by ``draw()`` (which returns a Figure) and cached.
    Many figures at once, drawn on every core: :func:`report.drawing.render_many`."""
    formats = tuple(formats)
    cached = cached_stem(getattr(draw, "__qualname__", repr(draw)), key_parts, cache_dir, formats)
    if not is_cached(cached, formats):
        save_figure(draw(), cached, formats)
    return copy_cached(cached, stem, formats)


def cached_stem(name: str, key_parts: Iterable[Any], cache_dir: str | Path, formats: tuple[str, ...]) -> Path:
    """Where the figure ``name`` drawn from ``key_parts`` lives in ``cache_dir``."""
    key = content_key(name, list(key_parts), formats)
    return Path(cache_dir) / key[:2] / key


def is_cached(cached: Path, formats: Iterable[str]) -> bool:
    return all((cached.parent / f"{cached.name}.{ext}").is_file() for ext in formats)


def copy_cached(cached: Path, stem: str | Path, formats: Iterable[str]) -> dict[str, Path]:
    """Copy a cached figure's files to ``stem.<ext>``; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = {}
    for ext in formats:
        out[ext] = stem.parent / f"{stem.name}.{ext}"
        shutil.copyfile(cached.parent / f"{cached.name}.{ext}", out[ext])
    return out


#: A text cell starting with one of these is run as a formula by spreadsheets (OWASP "CSV
#: injection": a run named ``=HYPERLINK(...)``); such cells get a leading ``'``.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def csv_cell(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text that would start a formula is prefixed
    with ``'``; numbers, and text that is just a number ("-0.5"), stay as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def table_csv(df: pd.DataFrame) -> str:
    """CSV with '\\n' line ends and full float precision; text cells and headers neutralised
    against formula injection (:func:`csv_cell`).

    The same bytes as pandas' ``to_csv(index=False, lineterminator="\\n")`` of the neutralised
    frame (tests/test_export_tables.py checks it), written with the csv module: pandas' writer
    costs ~2 ms a table, 4,000 run-page tables cost 7 s on a cold build."""
    columns = _csv_columns(df)
    if columns is None:
        return _table_csv_pandas(df)
    return columns_csv([str(c) for c in df.columns], columns)


def columns_csv(header: Sequence[str], columns: Sequence[Sequence[Any]]) -> str:
    """CSV of ``columns`` (cells as the csv module writes them: None -> empty); headers and
    text cells neutralised (:func:`csv_cell`). What :func:`table_csv` writes for a frame
    whose columns hold these values (text columns: str or None)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows(zip(*[[csv_cell(v) for v in col] for col in columns]))
    return buf.getvalue()


def _csv_columns(df: pd.DataFrame) -> list[list[Any]] | None:
    """Each column's cells as pandas' to_csv writes them (NA -> ""), or None for a frame
    this writer does not cover (then pandas writes it)."""
    if not _plain_columns(df):
        return None
    columns = []
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        kind = s.dtype.kind if isinstance(s.dtype, np.dtype) else ""
        if kind == "f":  # pandas: values.astype(str), NaN -> na_rep
            cells = s.to_numpy().astype(str)
            cells[np.isnan(s.to_numpy())] = ""
            columns.append(cells.tolist())
        elif kind and kind in "iub":
            columns.append(s.tolist())
        elif kind == "O" or isinstance(s.dtype, pd.StringDtype):
            values, missing = s.tolist(), s.isna().tolist()
            if not all(isinstance(v, str) for v, na in zip(values, missing) if not na):
                return None  # pandas' map would infer a numeric column from these
            columns.append(["" if na else v for v, na in zip(values, missing)])
        elif pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            values, missing = s.tolist(), s.isna().tolist()  # masked Int64/boolean: NA -> ""
            columns.append(["" if na else v for v, na in zip(values, missing)])
        else:
            return None
    return columns


def _plain_columns(df: pd.DataFrame) -> bool:
    """Flat, unique, text column labels and at least one column: what the fast writers cover."""
    return (df.shape[1] > 0 and not isinstance(df.columns, pd.MultiIndex) and df.columns.is_unique
            and all(isinstance(c, str) for c in df.columns))


def _table_csv_pandas(df: pd.DataFrame) -> str:
    """:func:`table_csv` through pandas, for the frames the csv-module writer leaves out."""
    out = df.copy()
    for col in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].map(csv_cell)
    out.columns = [csv_cell(str(c)) for c in out.columns]
    return out.to_csv(index=False, lineterminator="\n")


def table_latex(df: pd.DataFrame, caption: str | None = None, label: str | None = None, digits: int = 4) -> str:
    """LaTeX booktabs (\\toprule/\\midrule/\\bottomrule); text escaped for LaTeX.

    The same bytes as pandas' ``to_latex(index=False, escape=True, ...)`` of the shown frame
    (floats with ``digits`` significant digits, NaN as "--", None as empty), written here:
    pandas renders through Styler and Jinja2, ~9 ms a table (18 s for 2,000 run pages)."""
    shown = [_latex_cells(df.iloc[:, i], digits) for i in range(df.shape[1])] if _plain_columns(df) else [None]
    if not len(df) or any(col is None for col in shown):  # no rows: pandas picks the alignment
        return _table_latex_pandas(df, caption, label, digits)
    return columns_latex([str(c) for c in df.columns], shown, caption, label)


def _latex_cells(s: pd.Series, digits: int) -> list[str] | None:
    """A column's cells as :func:`table_latex` shows them (None: a column type left to pandas)."""
    if pd.api.types.is_float_dtype(s.dtype):
        return ["--" if pd.isna(x) else f"{x:.{digits}g}" for x in s.tolist()]
    if (isinstance(s.dtype, np.dtype) and s.dtype.kind in "iubO" or isinstance(s.dtype, pd.StringDtype)
            or pd.api.types.is_integer_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
        # as pandas' map hands them over: the "str" dtype's missing value is NaN, shown "nan"
        return ["" if x is None or x is pd.NA else str(x) for x in s.tolist()]
    return None


def columns_latex(header: Sequence[str], columns: Sequence[Sequence[str]], caption: str | None = None,
                  label: str | None = None) -> str:
    """LaTeX booktabs of text ``columns`` (escaped here), left-aligned, in a ``table`` with
    caption and label when given: what :func:`table_latex` writes for a frame of text."""
    lines = []
    if caption or label:
        lines.append("\\begin{table}")
        if caption:
            lines.append(f"\\caption{{{caption}}}")
        if label:
            lines.append(f"\\label{{{label}}}")
    lines += [f"\\begin{{tabular}}{{{'l' * len(header)}}}", "\\toprule",
              " & ".join(latex_escape(h) for h in header) + " \\\\", "\\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + " \\\\" for row in zip(*columns)]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption or label:
        lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


#: LaTeX for the characters that are special in text; a space after \, ~ or ^ is kept by
#: ``\space`` (their macros would swallow it). Pandas' ``escape="latex"`` writes the same.
_LATEX = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
          "~": r"\textasciitilde ", "^": r"\textasciicircum ", "\\": r"\textbackslash "}
_LATEX_SPECIAL = re.compile(r"[\\~^] |[&%$#_{}~^\\]")


def latex_escape(text: str) -> str:
    """``text`` safe in LaTeX text mode: & % $ # _ { } ~ ^ \\ escaped."""
    return _LATEX_SPECIAL.sub(lambda m: _LATEX[m[0][0]] + ("\\space " if len(m[0]) > 1 else ""), text)


def _table_latex_pandas(df: pd.DataFrame, caption: str | None, label: str | None, digits: int) -> str:
    """:func:`table_latex` through pandas' Styler, for the frames the writer above leaves out."""
    shown = df.copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda x: "--" if pd.isna(x) else f"{x:.{digits}g}")
        else:
            shown[col] = shown[col].map(lambda x: "" if x is None or x is pd.NA else str(x))
    return shown.to_latex(index=False, escape=True, caption=caption, label=label)


def export_table(df: pd.DataFrame, stem: str | Path, caption: str | None = None) -> dict[str, Path]:
    """Write ``stem.csv`` and ``stem.tex``; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {"csv": stem.parent / f"{stem.name}.csv", "tex": stem.parent / f"{stem.name}.tex"}
    paths["csv"].write_text(table_csv(df), encoding="utf-8")
    paths["tex"].write_text(table_latex(df, caption, stem.name), encoding="utf-8")
    return paths
