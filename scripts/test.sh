#!/usr/bin/env bash
# One command for a fresh machine: install everything the tests need, then run them all.
# Installs Debian's chromium for the browser tests and git for the scaffold tests (needs root
# or sudo on a fresh machine).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ] || ! command -v git > /dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium git
fi
bash scripts/setup.sh test bench
export NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true MPLBACKEND=Agg
exec .venv/bin/python -m pytest -q "$@"
