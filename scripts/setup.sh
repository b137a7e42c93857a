#!/usr/bin/env bash
# Set up .venv with altgrad-docs and its locked dependencies (idempotent; fast when done).
# Usage: bash scripts/setup.sh [extra ...]   e.g. bash scripts/setup.sh test bench
# Installs exactly the pins of a lock file (with their sha256 hashes, --require-hashes):
# requirements/test.lock.txt with the test or bench extra, else requirements/site.lock.txt.
# Refresh the locks with scripts/lock.sh after changing pyproject.toml.
# Says which step it is in and how far along (a first install takes minutes).
# TORCH_INDEX_URL: where the bench's CPU build of torch comes from (CI sets the PyTorch CPU
# wheel index; unset, pip's own configuration is used).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
say() { echo "setup: $*"; }
extras=$(IFS=,; echo "$*")
case ",$extras," in
  *,test,*|*,bench,*) lock=requirements/test.lock.txt ;;
  *) lock=requirements/site.lock.txt ;;
esac
stamp=".venv/.altgrad-setup-$(cat pyproject.toml "$lock" | sha256sum | cut -c1-16)-${extras:-none}"
[ -f "$stamp" ] && [ -x .venv/bin/python ] && exit 0
steps=4; case ",$extras," in *,bench,*) steps=5 ;; esac
step=0
next() { step=$((step + 1)); say "[$step/$steps] $*"; }
if [ ! -x .venv/bin/python ]; then next "creating .venv with $("$PY" --version 2>&1)"; "$PY" -m venv .venv
else next ".venv exists"; fi
total=$(grep -c '^[A-Za-z0-9]' "$lock")
next "installing the $total pinned packages of $lock (a first install takes minutes)"
# pip's own lines are counted into one line per package, "k/N name"; its errors pass through
.venv/bin/python -m pip install --require-hashes -r "$lock" 2>&1 | awk -v total="$total" '
  /^ERROR/ || /^error:/ || /^  error:/ { failed = 1 }   # from here on every line: the details pip indents
  failed { print; fflush(); next }
  /^Ignoring / { total--; next }   # a pin for another Python version (the lock is universal)
  /^(Collecting |Requirement already satisfied: |Processing )/ { n++
    if ($1 == "Collecting") name = $2; else if ($1 == "Processing") { name = $2; sub(/.*\//, "", name); sub(/-[0-9].*/, "", name) }
    else name = $4
    split(name, a, /[=<>;]/); printf "setup:   %d/%d %s\n", n, total, a[1]; fflush(); next }
  /^Installing collected packages/ { print "setup:   unpacking and installing the downloaded packages"; fflush(); next }
  /^WARNING: Location .* is ignored/ { next }   # a configured local index without that package
  /^(Successfully installed|Using cached|Downloading|Obtaining|Looking in|  )/ { next }
  { print; fflush() }'
case ",$extras," in
  # The CPU build of torch (its dependencies came from the lock): a plain 'torch'
  # requirement can pull a multi-GB CUDA build.
  *,bench,*) next "installing torch 2.13.0 (CPU build)${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}"
    .venv/bin/python -m pip install -q --no-deps ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0" ;;
esac
next "installing altgrad-docs itself (editable) and checking the environment"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
.venv/bin/python -m pip check
touch "$stamp"
say "done: .venv is ready"
