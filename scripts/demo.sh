#!/usr/bin/env bash
# Set up (idempotent) and run the offline end-to-end demo on XQuAD. This is the README's demo command.
set -euo pipefail
cd "$(dirname "$0")/.."
XQG_EXTRAS="${XQG_EXTRAS-}" bash scripts/setup.sh   # xqg alone: the demo needs neither Ray nor the test tools
.venv/bin/xqg demo "$@"
