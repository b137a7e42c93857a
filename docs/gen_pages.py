"""mkdocs-gen-files script: every generated page comes from one function of the package.

The pipeline (load snapshot -> analyse -> figures -> templates -> pages) and its caching
live in the altgrad_docs/site/ package (pipeline.py); the data source is `extra.altgrad` in mkdocs.yml.
"""

import mkdocs_gen_files

from altgrad_docs.site import build

build(mkdocs_gen_files.config, mkdocs_gen_files.open)
