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
  elif [ -n "${XQG_TORCH_INDEX_URL:-}" ]; then
    torch_src=(--extra-index-url "$XQG_TORCH_INDEX_URL")   # e.g. PyTorch's CPU (or CUDA) wheel index
  else
    echo "setup: no local torch wheel; set XQG_TORCH_INDEX_URL to a PyTorch wheel index to choose" \
      "the CPU build (PyPI's default torch is the multi-GB CUDA one)" >&2
    torch_src=()
  fi
  .venv/bin/pip install -q "${torch_src[@]}" "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/python -c "import torch" || { echo "setup: torch did not install" >&2; exit 1; }
# The opt-in llama.cpp generator engine (extra 'llama') compiles from source (~10 min on 2 cores, once: pip
# caches the wheel). It is built for this CPU, without AMX: a VM may list AMX in its flags while
# the kernel refuses the tile instructions (SIGILL seen here). XQG_EXTRAS picks the extras
# (default dev; XQG_EXTRAS= installs none).
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
-DCMAKE_C_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16' -DCMAKE_CXX_FLAGS='-mno-amx-tile -mno-amx-int8 -mno-amx-bf16'}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
extras="${XQG_EXTRAS-dev}"   # unset: dev (the test tools); empty: xqg alone (the demo: no Ray)
.venv/bin/pip install -q -e ".${extras:+[$extras]}" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, xqg; print(f'xqg {xqg.__version__} ready (torch {torch.__version__})')"
