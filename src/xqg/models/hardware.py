"""What the machine can run fast: bfloat16 on this CPU or GPU, for ``dtype: auto``.

Machines of one kind differ here. A CPU with AVX-512 BF16 (or AMX) multiplies bfloat16 natively:
Gemma 3 270M generation ran ~2× faster than float32 on one (``docs/generation.md``). One with only
AVX2 emulates it, and bfloat16 generation ran ~5× *slower* there. So ``auto`` reads the CPU flags
instead of assuming either.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def cpu_has_native_bf16() -> bool:
    """True when ``/proc/cpuinfo`` lists ``avx512_bf16`` or ``amx_bf16`` (False where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` → ``bfloat16`` on a CUDA device that supports it or a CPU with native bf16, else
    ``float32``; any other value is returned unchanged. ``device`` is a resolved torch device string."""
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device == "cpu":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    return "float32"
