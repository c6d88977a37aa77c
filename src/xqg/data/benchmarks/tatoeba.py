"""Tatoeba bitext test sets (LASER): sentence pairs xx↔English for 112 languages.

Files are ``v1/tatoeba.<xxx>-eng.<xxx>`` and ``v1/tatoeba.<xxx>-eng.eng``, line-aligned, with
ISO 639-3 codes. Most languages have 1,000 pairs but 40 have fewer (Telugu 234, the smallest
104), so code must not assume 1,000.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from xqg.data._jsonl import PathLike, atomic_text_writer, describe_inputs, read_aligned_lines, source_file
from xqg.errors import XqgError
from xqg.io import write_manifest
from xqg.paths import data_root

_NAME = re.compile(r"tatoeba\.([a-z]{3})-eng\.eng")


def _root(data_dir: PathLike | None) -> Path:
    return Path(data_dir) if data_dir is not None else data_root() / "tatoeba" / "v1"


def tatoeba_languages(data_dir: PathLike | None = None) -> list[str]:
    """ISO 639-3 codes with both sides present, sorted."""
    root = _root(data_dir)
    if not root.is_dir():
        raise XqgError(
            f"Tatoeba data not found at {root}; set XQG_DATA to the folder holding the shared data sets"
        )
    langs = []
    for p in root.iterdir():
        m = _NAME.fullmatch(p.name)
        if m and (root / f"tatoeba.{m[1]}-eng.{m[1]}").is_file():
            langs.append(m[1])
    return sorted(langs)


def load_tatoeba(lang3: str, data_dir: PathLike | None = None) -> tuple[list[str], list[str]]:
    """``(xx sentences, English sentences)``, line-aligned (``data_dir`` is the ``v1`` folder)."""
    root = _root(data_dir)
    if not re.fullmatch(r"[a-z]{3}", lang3) or not (root / f"tatoeba.{lang3}-eng.{lang3}").is_file():
        raise XqgError(f"no Tatoeba set for '{lang3}'; valid: {' '.join(tatoeba_languages(data_dir))}")
    xx = source_file(root, f"tatoeba.{lang3}-eng.{lang3}", what=f"Tatoeba {lang3}")
    en = source_file(root, f"tatoeba.{lang3}-eng.eng", what=f"Tatoeba {lang3}-eng English side")
    return read_aligned_lines(xx, en)


def build_tatoeba(
    out_dir: PathLike, langs: Sequence[str] | str | None = None, data_dir: PathLike | None = None
) -> Path:
    """Copy the chosen language pairs (default all) as ``<xxx>.txt``/``<xxx>.eng.txt`` + manifest."""
    langs = (
        tatoeba_languages(data_dir) if langs is None else ([langs] if isinstance(langs, str) else list(langs))
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    counts: dict[str, int] = {}
    sources: list[Path] = []
    for lang in langs:
        xx, en = load_tatoeba(lang, data_dir)
        for name, lines in ((f"{lang}.txt", xx), (f"{lang}.eng.txt", en)):
            with atomic_text_writer(out / name) as fh:
                fh.writelines(f"{t}\n" for t in lines)
            files.append(name)
        counts[f"pairs.{lang}"] = len(xx)
        root = _root(data_dir)
        sources += [root / f"tatoeba.{lang}-eng.{lang}", root / f"tatoeba.{lang}-eng.eng"]
    counts["languages"] = len(langs)
    write_manifest(
        out,
        stage="benchmark",
        config={"benchmark": "tatoeba", "langs": list(langs)},
        counts=counts,
        files=files,
        inputs=describe_inputs(sources),
    )
    return out


__all__ = ["build_tatoeba", "load_tatoeba", "tatoeba_languages"]
