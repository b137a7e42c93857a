"""Where the Jinja2 templates live: ``templates/`` at the top of the source checkout.

One definition for every module that renders a template (reports, the bench's failure
report, the site). A non-editable install has no checkout: there the same files ship as
``altgrad_docs/_templates`` (``pyproject.toml`` maps the folder into the package). A site
may hold its own ``templates/`` folder beside its ``mkdocs.yml``: a file there replaces the
shipped file of the same name, file by file (:func:`template_path`).
"""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1] / "templates"
_INSTALLED = Path(__file__).resolve().parent / "_templates"
TEMPLATE_DIR = _CHECKOUT if _CHECKOUT.is_dir() or not _INSTALLED.is_dir() else _INSTALLED


def template_dir(override: str | Path | None = None) -> Path:
    """The folder to load templates from; errors say why it is missing and what to do."""
    folder = Path(override) if override is not None else TEMPLATE_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"template folder {folder} not found: altgrad-docs renders from the templates/ "
            "folder of its source checkout, or the copy a package install ships. --> Reinstall "
            "with: pip install altgrad-docs (or pip install -e . in a checkout)"
        )
    return folder


def template_path(user: str | Path | list[Path] | None = None) -> list[Path]:
    """The folders templates are looked up in, first match wins: the site's own folder (when
    it exists; a missing one is no error, a new site has none), then the shipped templates."""
    if isinstance(user, list):
        return user
    shipped = template_dir()
    folders = [Path(user)] if user is not None and Path(user).is_dir() else []
    return folders + [shipped] if not folders or folders[0].resolve() != shipped.resolve() else folders
