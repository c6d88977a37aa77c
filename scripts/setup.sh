#!/usr/bin/env bash
# Create .venv and install xqg with its test tools. torch is installed first, pinned to the CPU
# build that ships on this kind of machine (pip finds it via /opt/wheels); installing the rest
# afterwards keeps pip from replacing it with a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
    torch_src=(--find-links /opt/wheels)        # this kind of machine: the CPU wheel is on disk
  else
    torch_src=(--index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple)
  fi
  .venv/bin/pip install -q "${torch_src[@]}" "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/python -c "import torch" || { echo "setup: torch did not install" >&2; exit 1; }
.venv/bin/pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, xqg; print(f'xqg {xqg.__version__} ready (torch {torch.__version__})')"
