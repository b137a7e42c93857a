"""Where the Jinja2 templates live: ``templates/`` at the top of the source checkout.

One definition for every module that renders a template (reports, the bench's failure
report). The site itself reads ``templates/`` beside its ``mkdocs.yml``.
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE_DIR = Path(__file__).resolve().parents[1] / "templates"


def template_dir(override: str | Path | None = None) -> Path:
    """The folder to load templates from; errors say why it is missing and what to do."""
    folder = Path(override) if override is not None else TEMPLATE_DIR
    if not folder.is_dir():
        raise FileNotFoundError(
            f"template folder {folder} not found: altgrad-docs renders from the templates/ "
            "folder of its source checkout. --> Install from a checkout with: pip install -e ."
        )
    return folder
