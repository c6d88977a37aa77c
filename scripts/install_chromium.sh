#!/usr/bin/env bash
# Install Debian's chromium for the browser test (tests/test_serve_live.py) when it is missing.
# Playwright drives this system browser: Playwright's own browser download needs the internet.
# Never fails the caller: without a browser that one test skips and says why.
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo -n)
fi
if command -v apt-get >/dev/null 2>&1 \
  && "${sudo[@]}" apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null; then
  echo "chromium installed for the browser test: $(command -v chromium)"
else
  echo "warning: could not install chromium with apt-get; the browser test will be skipped" >&2
fi
exit 0
