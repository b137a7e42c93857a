#!/usr/bin/env bash
# Set up .venv with altgrad-docs and its locked dependencies (idempotent; fast when done).
# Usage: bash scripts/setup.sh [extra ...]   e.g. bash scripts/setup.sh test bench
# Installs exactly the pins of a lock file (with their sha256 hashes, --require-hashes):
# requirements/test.lock.txt with the test or bench extra, else requirements/site.lock.txt.
# Refresh the locks with scripts/lock.sh after changing pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=$(IFS=,; echo "$*")
case ",$extras," in
  *,test,*|*,bench,*) lock=requirements/test.lock.txt ;;
  *) lock=requirements/site.lock.txt ;;
esac
stamp=".venv/.altgrad-setup-$(cat pyproject.toml "$lock" | sha256sum | cut -c1-16)-${extras:-none}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --require-hashes -r "$lock"
  case ",$extras," in
    # The CPU build of torch (its dependencies came from the lock): a plain 'torch'
    # requirement can pull a multi-GB CUDA build.
    *,bench,*) .venv/bin/python -m pip install -q "torch==2.13.0" ;;
  esac
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  .venv/bin/python -m pip check
  touch "$stamp"
fi
