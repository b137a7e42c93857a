"""The site stage: snapshot -> design and analysis -> figures and tables -> templates -> pages.

:func:`build` (in :mod:`.pipeline`) is the one entry point; the ``altgrad`` MkDocs plugin
(``altgrad_docs/plugin.py``), the CLI and any second engine call it. The modules, in the order
the pipeline uses them:

* :mod:`.traces`: every run's trace for the analysis, read on every core;
* :mod:`.analysis`: asks ``altgrad_docs.analysis`` / ``report`` for each report page's
  statistics, figures and tables (cached by snapshot and code hash); the figures are drawn
  in worker processes while the pages are made (``report.drawing``);
* :mod:`.pages`, :mod:`.runchart`: the Runs table and one page per run, its history chart
  as data for the browser (vendored uPlot) plus a static SVG;
* :mod:`.artifacts`: figure and table ids, captions and download files;
* :mod:`.render`: the Jinja2 environment and the escaping filters;
* :mod:`.incremental`: what keeps ``mkdocs serve --dirty`` right and fast.
"""

from .pipeline import DataSource, SlowProgress, build, pages_for, write_pages

__all__ = ["DataSource", "SlowProgress", "build", "pages_for", "write_pages"]
