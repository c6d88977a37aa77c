#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, lint included (tests/test_lint.py runs ruff).
# This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_chromium.sh   # the browser test drives Debian's chromium (apt-get when missing)
.venv/bin/pytest -q "$@"
