#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, lint included (tests/test_lint.py runs ruff).
# This is the README's test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pytest -q "$@"
