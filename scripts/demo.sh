#!/usr/bin/env bash
# Set up (idempotent) and run the offline end-to-end demo on XQuAD. This is the README's demo command.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/xqg demo "$@"
