#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml's ranges (run after changing any dependency).
#   requirements/test.lock.txt  the tests and the bench, less torch (scripts/setup.sh test bench)
#   requirements/site.lock.txt  the site build, both engines (scripts/setup.sh, the Pages workflow)
# Both also pin setuptools (requirements/build.in), which builds the package itself.
# Both: every package pinned with its sha256 hashes (pip install --require-hashes), one
# universal resolution for Python 3.11+ on any OS. site is resolved within test's pins, so a
# package has one version in both. torch stays out of the locks (setup.sh installs
# torch==2.13.0, the CPU wheel, from find-links); its own dependencies are in test.lock.txt,
# resolved against that CPU wheel (a plain torch from the index pulls the CUDA build).
# Usage: bash scripts/lock.sh [--upgrade | --upgrade-package NAME ...]   (default: keep pins)
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
TORCH_WHEELS=${TORCH_WHEELS:-/opt/wheels}   # a folder or index page holding torch 2.13.0+cpu
tools=.cache/lock-tools
[ -x "$tools/bin/uv" ] && [ "$("$tools/bin/uv" --version | cut -d' ' -f2)" = "$UV_VERSION" ] || {
  python3 -m venv "$tools" && "$tools/bin/python" -m pip install -q "uv==$UV_VERSION"; }
compile() {
  "$tools/bin/uv" pip compile pyproject.toml requirements/build.in --universal --python-version 3.11 --generate-hashes \
    --no-emit-package torch --custom-compile-command "bash scripts/lock.sh" --quiet "$@"
}
echo "torch==2.13.0+cpu" > "$tools/torch.txt"
compile --extra test --extra zensical --extra bench --find-links "$TORCH_WHEELS" -c "$tools/torch.txt" \
  -o requirements/test.lock.txt "$@"
compile --extra zensical -c requirements/test.lock.txt -o requirements/site.lock.txt
echo "wrote requirements/test.lock.txt ($(grep -c '==' requirements/test.lock.txt) pins) and" \
     "requirements/site.lock.txt ($(grep -c '==' requirements/site.lock.txt) pins)"
