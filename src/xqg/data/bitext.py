"""Parallel sentences split once into a training half and a held-out half (no stage picks its own).

``xqg distill`` trains on the first half; held-out bitext accuracy
(:mod:`xqg.evaluate.bitext`) is measured on the second, so the two can never overlap:

* Tatoeba — even-numbered lines (0, 2, …) train, odd lines are held out;
* NTREX-128 — lines 1–1000 train, lines 1001–1997 (later documents) are held out.

Pairs are ``(English sentence, its translation)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xqg.languages import NTREX_CODES, TATOEBA_CODES

NTREX_TRAIN_LINES = 1000

Pairs = list[tuple[str, str]]


def tatoeba_halves(code: str, data_dir: Any = None) -> tuple[Pairs, Pairs]:
    """``(train, held-out)`` (English, X) pairs of Tatoeba file ``code`` (ISO 639-3, e.g. ``cmn``)."""
    from xqg.data.benchmarks.tatoeba import load_tatoeba

    tdir = None if data_dir is None else Path(data_dir) / "tatoeba" / "v1"
    xx, en = load_tatoeba(code, tdir)
    pairs = list(zip(en, xx, strict=True))
    return pairs[0::2], pairs[1::2]


def ntrex_halves(lang: str, data_dir: Any = None) -> tuple[Pairs, Pairs]:
    """``(train, held-out)`` (English, X) pairs: lines 1–1000 train, the later documents held out."""
    from xqg.data.benchmarks.ntrex import load_ntrex

    ndir = None if data_dir is None else Path(data_dir) / "ntrex" / "NTREX-128"
    en, xx = load_ntrex(lang, ndir)
    pairs = list(zip(en, xx, strict=True))
    return pairs[:NTREX_TRAIN_LINES], pairs[NTREX_TRAIN_LINES:]


def bitext_sources(lang: str) -> list[str]:
    """The parallel corpora (``tatoeba``, ``ntrex``) that have ``lang`` (ISO 639-1), in that order."""
    return [s for s, codes in (("tatoeba", TATOEBA_CODES), ("ntrex", NTREX_CODES)) if lang in codes]


def bitext_half(source: str, lang: str, half: str, data_dir: Any = None) -> Pairs:
    """One half (``train`` or ``heldout``) of ``source``'s pairs for ``lang``; ``[]`` if it lacks ``lang``."""
    if half not in ("train", "heldout"):
        raise ValueError(f"half must be 'train' or 'heldout', got {half!r}")
    i = 0 if half == "train" else 1
    if source == "tatoeba":
        return tatoeba_halves(TATOEBA_CODES[lang], data_dir)[i] if lang in TATOEBA_CODES else []
    if source == "ntrex":
        return ntrex_halves(lang, data_dir)[i] if lang in NTREX_CODES else []
    raise ValueError(f"unknown bitext source {source!r}; choose tatoeba or ntrex")


__all__ = ["NTREX_TRAIN_LINES", "bitext_half", "bitext_sources", "ntrex_halves", "tatoeba_halves"]
