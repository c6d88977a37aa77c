"""Query files: BEIR JSONL, Tevatron JSONL, XOR-TyDi JSONL and ``id<TAB>text`` TSV.

Formats (``fmt``):

``beir``      ``{"_id", "text"}``; the language may be a top-level ``lang`` or ``metadata.lang``
``tevatron``  ``{"query_id", "query"}`` (Tevatron train/dev files; passages are ignored here)
``xor``       ``{"id", "question", "lang"}`` (XOR-TyDi; answers are ignored here, see :mod:`xqg.data.xor`)
``tsv``       ``id<TAB>text``, no quoting; a first line that looks like a header (``id``/``qid``/
              ``query-id``/``query_id``/``_id`` then ``text``/``query``/``question``) is skipped.
              MIRACL and Mr. TyDi topic files (``.tsv``, ``.txt``, ``.gz``) are this format.
``auto``      ``.tsv``/``.txt`` → tsv; otherwise JSONL told apart by the keys of the first record

Languages are stripped of surrounding whitespace (XOR-TyDi writes ``" ar"``); ``lang=`` supplies
one for files that do not carry it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from xqg.data._jsonl import (
    PathLike,
    SeenIds,
    atomic_text_writer,
    base_name,
    check_text,
    check_tsv_cell,
    coerce_id,
    dump_line,
    get_id,
    get_text,
    iter_json_objects,
    iter_lines,
    json_type,
)
from xqg.errors import DataFormatError, XqgError
from xqg.types import Query

READ_FORMATS = ("auto", "beir", "tevatron", "xor", "tsv")
WRITE_FORMATS = ("beir", "jsonl", "tsv")

_JSONL_KEYS = {"beir": ("_id", "text"), "tevatron": ("query_id", "query"), "xor": ("id", "question")}
_HEADER_IDS = {"id", "qid", "query-id", "query_id", "_id"}
_HEADER_TEXTS = {"text", "query", "question"}


def _jsonl_variant(rec: dict, path: PathLike, line: int) -> str:
    if "_id" in rec:
        return "beir"
    if "query_id" in rec:
        return "tevatron"
    if "question" in rec:
        return "xor"
    raise DataFormatError(
        path,
        f"cannot tell the query format from keys {sorted(rec)}: expected '_id' (BEIR), "
        "'query_id' (Tevatron) or 'id'+'question' (XOR-TyDi)",
        line=line,
    )


def _lang(value: object, path: PathLike, line: int, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataFormatError(path, f"must be a string, found {json_type(value)}", line=line, field=field)
    return value.strip() or None


def iter_queries(
    path: PathLike, fmt: str = "auto", *, lang: str | None = None, check_unique: bool = True
) -> Iterator[Query]:
    """Stream queries; duplicate ids are errors because a run cannot hold two queries with one id."""
    if fmt not in READ_FORMATS:
        raise XqgError(f"unknown query format '{fmt}'; valid: {', '.join(READ_FORMATS)}")
    if fmt == "auto":
        name = base_name(path).lower()
        fmt = "tsv" if name.endswith((".tsv", ".txt")) else "jsonl"
    if fmt == "tsv":
        yield from _iter_tsv(path, lang, check_unique)
        return
    variant = None if fmt == "jsonl" else fmt
    seen: SeenIds | None = None
    for line, rec in iter_json_objects(path):
        if variant is None:
            variant = _jsonl_variant(rec, path, line)
        id_key, text_key = _JSONL_KEYS[variant]
        if seen is None:
            seen = SeenIds(path, id_key, check_unique)
        qid = get_id(rec, id_key, path, line)
        text = get_text(rec, text_key, path, line)
        q_lang = _lang(rec.get("lang"), path, line, "lang")
        if q_lang is None and isinstance(rec.get("metadata"), dict):
            q_lang = _lang(rec["metadata"].get("lang"), path, line, "metadata.lang")
        seen.add(qid, line)
        yield Query(id=qid, text=text, lang=q_lang or lang)


def _iter_tsv(path: PathLike, lang: str | None, check_unique: bool) -> Iterator[Query]:
    seen = SeenIds(path, "id", check_unique)
    first = True
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        cols = text.split("\t")
        if first:
            first = False
            if (
                len(cols) == 2
                and cols[0].strip().lower() in _HEADER_IDS
                and cols[1].strip().lower() in _HEADER_TEXTS
            ):
                continue
        if len(cols) != 2:
            raise DataFormatError(
                path, f"expected 2 tab-separated columns (id, text), found {len(cols)}", line=line
            )
        qid = coerce_id(cols[0], path, line, "id")
        q_text = check_text(cols[1], path, line, "text")
        seen.add(qid, line)
        yield Query(id=qid, text=q_text, lang=lang)


def read_queries(path: PathLike, fmt: str = "auto", *, lang: str | None = None) -> list[Query]:
    """All queries of a file in file order (query sets are small enough to hold)."""
    return list(iter_queries(path, fmt, lang=lang))


def write_queries(path: PathLike, queries: Iterable[Query], fmt: str = "beir") -> int:
    """Write queries atomically; returns the count.

    ``beir``/``jsonl`` write ``{"_id", "text", "lang"}`` (``lang`` only when known, top-level
    so :func:`iter_queries` reads it back); ``tsv`` writes ``id<TAB>text`` and drops languages.
    """
    if fmt not in WRITE_FORMATS:
        raise XqgError(f"unknown query output format '{fmt}'; valid: {', '.join(WRITE_FORMATS)}")
    n = 0
    with atomic_text_writer(path) as fh:
        for q in queries:
            if fmt == "tsv":
                fh.write(f"{check_tsv_cell(q.id, 'query id')}\t{check_tsv_cell(q.text, 'query text')}\n")
            else:
                rec: dict[str, str] = {"_id": q.id, "text": q.text}
                if q.lang is not None:
                    rec["lang"] = q.lang
                fh.write(dump_line(rec))
            n += 1
    return n


__all__ = ["READ_FORMATS", "WRITE_FORMATS", "iter_queries", "read_queries", "write_queries"]
