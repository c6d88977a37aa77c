"""Benchmark builders: each turns a shared data set into a folder with a ``manifest.json``.

Every builder also has an in-memory loader (``load_*``) for code that does not want files.
:func:`build_benchmark` is the entry point the CLI uses, so an unknown name or option becomes
an :class:`~xqg.errors.XqgError` the CLI can print, not a traceback.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xqg.data.benchmarks.mkqa import MKQA_LANGS, build_mkqa, load_mkqa
from xqg.data.benchmarks.ntrex import NTREX_CODES, build_ntrex, load_ntrex, ntrex_languages
from xqg.data.benchmarks.tatoeba import build_tatoeba, load_tatoeba, tatoeba_languages
from xqg.data.benchmarks.xnli import XNLI_LANGS, build_xnli, load_xnli, read_xnli
from xqg.data.benchmarks.xor_tydi import (
    XOR_LANGS,
    XorFixture,
    build_xor_tydi,
    load_primeqa_xor_fixture,
    load_xor_translations,
    load_xor_tydi,
)
from xqg.data.benchmarks.xquad import (
    XQUAD_LANGS,
    XQUAD_SEED,
    XQuADBenchmark,
    build_xquad,
    load_xquad,
    make_xquad_split,
    xquad_split,
)
from xqg.errors import XqgError

BENCHMARKS: dict[str, Callable[..., Path]] = {
    "xquad": build_xquad,
    "xor-tydi": build_xor_tydi,
    "mkqa": build_mkqa,
    "tatoeba": build_tatoeba,
    "ntrex": build_ntrex,
    "xnli": build_xnli,
}


def build_benchmark(name: str, out_dir: str | Path, **opts: Any) -> Path:
    """Build benchmark ``name`` into ``out_dir`` with builder options ``opts``; returns the folder."""
    builder = BENCHMARKS.get(name)
    if builder is None:
        raise XqgError(f"unknown benchmark '{name}'; valid: {', '.join(sorted(BENCHMARKS))}")
    sig = inspect.signature(builder)
    try:
        sig.bind(out_dir, **opts)
    except TypeError:
        valid = [p for p in sig.parameters if p != "out_dir"]
        raise XqgError(
            f"bad options {sorted(opts)} for benchmark '{name}'; it accepts: {', '.join(valid)}"
        ) from None
    return builder(out_dir, **opts)


__all__ = [
    "BENCHMARKS",
    "MKQA_LANGS",
    "NTREX_CODES",
    "XNLI_LANGS",
    "XOR_LANGS",
    "XQUAD_LANGS",
    "XQUAD_SEED",
    "XQuADBenchmark",
    "XorFixture",
    "build_benchmark",
    "build_mkqa",
    "build_ntrex",
    "build_tatoeba",
    "build_xnli",
    "build_xor_tydi",
    "build_xquad",
    "load_mkqa",
    "load_ntrex",
    "load_primeqa_xor_fixture",
    "load_tatoeba",
    "load_xnli",
    "load_xor_translations",
    "load_xor_tydi",
    "load_xquad",
    "make_xquad_split",
    "ntrex_languages",
    "read_xnli",
    "tatoeba_languages",
    "xquad_split",
]
