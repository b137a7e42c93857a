"""altgrad-docs: FP8-training experiments logged to W&B, as a citable report site.

The public API (fixed by the original plan)::

    from altgrad_docs import ExperimentDataLoader, FormatComparator, FailureAnalyzer, ReportGenerator

Names are imported on first use, so ``import altgrad_docs`` stays cheap (no pandas, no wandb).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = ["ExperimentDataLoader", "FormatComparator", "FailureAnalyzer", "ReportGenerator"]


def _version() -> str:
    """The version of the installed distribution: the one number, set in pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("altgrad-docs")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        found = re.search(r'(?m)^version = "([^"]+)"', pyproject.read_text()) if pyproject.is_file() else None
        return found.group(1) if found else "0+unknown"


__version__ = _version()

_HOME = {
    "ExperimentDataLoader": "altgrad_docs.data_loader",
    "FormatComparator": "altgrad_docs.analysis.comparisons",
    "FailureAnalyzer": "altgrad_docs.analysis.failures",
    "ReportGenerator": "altgrad_docs.report.generator",
}

if TYPE_CHECKING:  # pragma: no cover
    from altgrad_docs.analysis.comparisons import FormatComparator
    from altgrad_docs.analysis.failures import FailureAnalyzer
    from altgrad_docs.data_loader import ExperimentDataLoader
    from altgrad_docs.report.generator import ReportGenerator


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(f"module 'altgrad_docs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
