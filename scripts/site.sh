#!/usr/bin/env bash
# One command for a fresh machine: set up, then build or serve the site on the bundled data.
# Usage: bash scripts/site.sh [serve|build] [mkdocs options ...]   (default: serve)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmd=${1:-serve}; shift || true
export NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true
# serve --dirty: a rebuild renders only the pages whose content changed (docs/serve_hooks.py)
if [ "$cmd" = serve ]; then set -- --dirty "$@"; fi
exec .venv/bin/mkdocs "$cmd" "$@"
