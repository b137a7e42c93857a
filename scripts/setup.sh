#!/usr/bin/env bash
# Set up .venv with altgrad-docs and its dependencies (idempotent; fast when already done).
# Usage: bash scripts/setup.sh [extra ...]   e.g. bash scripts/setup.sh test bench
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=$(IFS=,; echo "$*")
stamp=".venv/.altgrad-setup-$(cat pyproject.toml | sha256sum | cut -c1-16)-${extras:-none}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  case ",$extras," in
    # The CPU build of torch: a plain 'torch' requirement can pull a multi-GB CUDA build.
    *,bench,*) .venv/bin/python -m pip install -q "torch==2.13.0" ;;
  esac
  .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
