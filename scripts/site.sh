#!/usr/bin/env bash
# One command for a fresh machine: set up, then build or serve the site on the bundled data.
# Usage: bash scripts/site.sh [serve|build] [--engine mkdocs|zensical] [engine options ...]
# (default: serve). It is the front door, `altgrad-docs build|serve`; serve with MkDocs runs
# `mkdocs serve --dirty`: a rebuild renders only the pages whose content changed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmd=${1:-serve}; shift || true
exec .venv/bin/altgrad-docs "$cmd" "$@"
