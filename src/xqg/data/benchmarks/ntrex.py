"""NTREX-128 news test set: 1,997 English sentences with human translations.

The shared copy has the XOR languages only. NTREX names languages with ISO 639-3 codes (Arabic
is ``arb``, Modern Standard Arabic); :func:`load_ntrex` also accepts the ISO 639-1 codes the
rest of xqg uses. The English side is ``newstest2019-src.eng.txt`` (the source the translators
worked from, not the ``eng-GB``/``eng-US`` references). The files have Windows line endings,
which are stripped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xqg.data._jsonl import PathLike, atomic_text_writer, describe_inputs, read_aligned_lines, source_file
from xqg.errors import XqgError
from xqg.io import write_manifest
from xqg.languages import NTREX_CODES
from xqg.paths import data_root

_SRC = "newstest2019-src.eng.txt"


def _root(data_dir: PathLike | None) -> Path:
    return Path(data_dir) if data_dir is not None else data_root() / "ntrex" / "NTREX-128"


def ntrex_languages(data_dir: PathLike | None = None) -> list[str]:
    """NTREX codes of the translations present (excluding the English references), sorted."""
    root = _root(data_dir)
    if not root.is_dir():
        raise XqgError(
            f"NTREX data not found at {root}; set XQG_DATA to the folder holding the shared data sets"
        )
    codes = [p.name[len("newstest2019-ref.") : -len(".txt")] for p in root.glob("newstest2019-ref.*.txt")]
    return sorted(c for c in codes if not c.startswith("eng"))


def _code(lang: str, data_dir: PathLike | None) -> str:
    code = NTREX_CODES.get(lang, lang)
    if not (_root(data_dir) / f"newstest2019-ref.{code}.txt").is_file():
        valid = " ".join(sorted(NTREX_CODES)) + " (or " + " ".join(ntrex_languages(data_dir)) + ")"
        raise XqgError(f"no NTREX translation for '{lang}'; valid: {valid}")
    return code


def load_ntrex(lang: str, data_dir: PathLike | None = None) -> tuple[list[str], list[str]]:
    """``(English sentences, translations into lang)``, line-aligned; ``lang`` is ISO 639-1 or NTREX."""
    code = _code(lang, data_dir)
    root = _root(data_dir)
    en = source_file(root, _SRC, what="NTREX English source")
    xx = source_file(root, f"newstest2019-ref.{code}.txt", what=f"NTREX {code}")
    return read_aligned_lines(en, xx)


def build_ntrex(
    out_dir: PathLike, langs: Sequence[str] | str | None = None, data_dir: PathLike | None = None
) -> Path:
    """Write ``en.txt`` and ``<iso639-1 or NTREX code>.txt`` per language (default all 7) + manifest."""
    langs = list(NTREX_CODES) if langs is None else ([langs] if isinstance(langs, str) else list(langs))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ["en.txt"]
    counts: dict[str, int] = {}
    root = _root(data_dir)
    sources = [root / _SRC]
    en: list[str] = []
    for lang in langs:
        en, xx = load_ntrex(lang, data_dir)
        with atomic_text_writer(out / f"{lang}.txt") as fh:
            fh.writelines(f"{t}\n" for t in xx)
        files.append(f"{lang}.txt")
        counts[f"sentences.{lang}"] = len(xx)
        sources.append(root / f"newstest2019-ref.{_code(lang, data_dir)}.txt")
    if not en:
        en = load_ntrex(next(iter(NTREX_CODES)), data_dir)[0]
    with atomic_text_writer(out / "en.txt") as fh:
        fh.writelines(f"{t}\n" for t in en)
    counts["sentences"] = len(en)
    write_manifest(
        out,
        stage="benchmark",
        config={"benchmark": "ntrex", "langs": list(langs)},
        counts=counts,
        files=files,
        inputs=describe_inputs(sources),
    )
    return out


__all__ = ["NTREX_CODES", "build_ntrex", "load_ntrex", "ntrex_languages"]
