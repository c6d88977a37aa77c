"""MKQA dev subset (MIA 2022): 1,758 questions parallel over 12 languages.

The questions are read straight out of ``mkqa_dev.zip`` (no unpacking). Each record's id is
``"{numeric id}_{lang}"``; the numeric part links translations, and it is what :func:`load_mkqa`
keys by (as a string, e.g. ``"-4767536963343233422"``). Language codes are MKQA's own, so
Simplified Chinese is ``zh_cn``. In a flat query set the id is ``"{numeric id}-{lang}"``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

from xqg.data._jsonl import PathLike, describe_inputs, get_text, iter_json_objects, source_file
from xqg.data.queries import write_queries
from xqg.errors import DataFormatError, XqgError
from xqg.io import write_manifest
from xqg.languages import MKQA_LANGS
from xqg.paths import data_root
from xqg.types import Query

MKQA_ZIP = "mkqa_dev.zip"


def _zip_path(data_dir: PathLike | None) -> Path:
    root = Path(data_dir) if data_dir is not None else data_root() / "mkqa"
    return source_file(root, MKQA_ZIP, what="MKQA dev")


def _langs(langs: Sequence[str] | str | None) -> tuple[str, ...]:
    if langs is None:
        return MKQA_LANGS
    if isinstance(langs, str):
        langs = [langs]
    for lang in langs:
        if lang not in MKQA_LANGS:
            raise XqgError(f"MKQA dev has no language '{lang}'; valid: {' '.join(MKQA_LANGS)}")
    return tuple(dict.fromkeys(langs))


def load_mkqa(
    langs: Sequence[str] | str | None = None, data_dir: PathLike | None = None
) -> dict[str, dict[str, str]]:
    """``{lang: {numeric id: question}}`` for ``langs`` (default all 12), in file order.

    Fails unless every language has exactly the same ids, since callers pair questions by id.
    """
    zpath = _zip_path(data_dir)
    out: dict[str, dict[str, str]] = {}
    with zipfile.ZipFile(zpath) as zf:
        for lang in _langs(langs):
            member = f"mkqa_dev/mkqa-{lang}.jsonl"
            shown = f"{zpath}/{member}"
            try:
                stream = zf.open(member)
            except KeyError:
                raise DataFormatError(zpath, f"has no member {member}") from None
            questions: dict[str, str] = {}
            with stream:
                for line, rec in iter_json_objects(shown, stream=stream):
                    raw_id = get_text(rec, "id", shown, line)
                    suffix = f"_{lang}"
                    if not raw_id.endswith(suffix):
                        raise DataFormatError(
                            shown, f"id {raw_id!r} does not end in '{suffix}'", line=line, field="id"
                        )
                    qid = raw_id[: -len(suffix)]
                    if qid in questions:
                        raise DataFormatError(shown, f"duplicate id '{qid}'", line=line, field="id")
                    questions[qid] = get_text(rec, "question", shown, line)
            out[lang] = questions
    first = next(iter(out))
    for lang, qs in out.items():
        if qs.keys() != out[first].keys():
            raise XqgError(
                f"{zpath}: MKQA {lang} and {first} do not have the same question ids; not parallel"
            )
    return out


def build_mkqa(
    out_dir: PathLike, langs: Sequence[str] | str | None = None, data_dir: PathLike | None = None
) -> Path:
    """Write MKQA's questions as one BEIR ``queries.jsonl`` (ids ``"{id}-{lang}"``) plus manifest."""
    data = load_mkqa(langs, data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n = write_queries(
        out / "queries.jsonl",
        (
            Query(id=f"{qid}-{lang}", text=text, lang=lang)
            for lang, qs in data.items()
            for qid, text in qs.items()
        ),
    )
    counts = {"queries": n, "ids": len(next(iter(data.values())))}
    write_manifest(
        out,
        stage="benchmark",
        config={"benchmark": "mkqa", "langs": list(data)},
        counts=counts,
        files=["queries.jsonl"],
        inputs=describe_inputs([_zip_path(data_dir)]),
        extra={"ids": {"query": "{mkqa numeric id}-{lang}"}, "evaluation": "parallel questions; no qrels"},
    )
    return out


__all__ = ["MKQA_LANGS", "build_mkqa", "load_mkqa"]
