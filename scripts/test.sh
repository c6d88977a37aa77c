#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, lint included (tests/test_lint.py runs ruff).
# This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
# the tests also cover the optional llama.cpp generator engine (compiles once, ~10 min on 2 cores)
XQG_EXTRAS=dev,llama bash scripts/setup.sh
bash scripts/install_chromium.sh   # the browser test drives Debian's chromium (apt-get when missing)
.venv/bin/pytest -q "$@"
