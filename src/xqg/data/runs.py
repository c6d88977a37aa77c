"""Retrieval runs: TREC run files and a JSONL layout.

Rank order (both writers, and :func:`ranked`): score descending, ties broken by doc id
ascending (plain string order). Tie-breaking by id rather than by insertion order makes the
written file a function of the scores alone, so two machines that compute the same scores write
byte-identical runs even if their search returned tied documents in different orders.

Queries are written in the order of the ``run`` mapping.

TREC: ``qid Q0 docid rank score tag``, rank 1-based, score written with ``repr(float)`` so it
reads back exactly. JSONL: one line per query, ``{"qid", "docids": [...], "scores": [...]}``
in rank order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from xqg.data._jsonl import (
    PathLike,
    atomic_text_writer,
    coerce_id,
    dump_line,
    get_id,
    iter_json_objects,
    iter_lines,
    json_type,
)
from xqg.errors import DataFormatError, XqgError
from xqg.types import Run


def ranked(run_for_query: Mapping[str, float]) -> list[tuple[str, float]]:
    """One query's ``{docid: score}`` as ``[(docid, score), ...]`` best first, ties by docid."""
    return sorted(run_for_query.items(), key=lambda kv: (-kv[1], kv[0]))


def _check_ids(qid: str, docid: str) -> None:
    if len(qid.split()) != 1 or len(docid.split()) != 1:
        raise XqgError(
            f"cannot write ({qid!r}, {docid!r}) to a TREC run: ids contain whitespace or are empty"
        )


def write_trec_run(path: PathLike, run: Run, tag: str = "xqg", *, depth: int | None = None) -> int:
    """Write a TREC run atomically (at most ``depth`` documents per query); returns lines written."""
    if len(tag.split()) != 1:
        raise XqgError(f"run tag {tag!r} must be one word")
    n = 0
    with atomic_text_writer(path) as fh:
        for qid, docs in run.items():
            for rank, (docid, score) in enumerate(ranked(docs)[:depth], start=1):
                _check_ids(qid, docid)
                fh.write(f"{qid} Q0 {docid} {rank} {float(score)!r} {tag}\n")
                n += 1
    return n


def _score(text: str, path: PathLike, line: int, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(path, f"must be a number, found {text!r}", line=line, field=field) from None
    if math.isnan(value):
        raise DataFormatError(path, "is NaN", line=line, field=field)
    return value


def read_trec_run(path: PathLike) -> Run:
    """Read a TREC run. The rank column is checked to be an integer but order comes from scores."""
    run: Run = {}
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        cols = text.split()
        if len(cols) != 6:
            raise DataFormatError(
                path,
                f"expected 6 whitespace-separated columns (qid Q0 docid rank score tag), found {len(cols)}",
                line=line,
            )
        qid, _, docid, rank, score, _tag = cols
        if not rank.lstrip("+-").isdigit():
            raise DataFormatError(path, f"must be an integer, found {rank!r}", line=line, field="rank")
        docs = run.setdefault(qid, {})
        if docid in docs:
            raise DataFormatError(
                path, f"document '{docid}' listed twice for query '{qid}'", line=line, field="docid"
            )
        docs[docid] = _score(score, path, line, "score")
    return run


def write_jsonl_run(path: PathLike, run: Run, *, depth: int | None = None) -> int:
    """Write one JSON line per query with ranked ``docids`` and ``scores``; returns queries written."""
    n = 0
    with atomic_text_writer(path) as fh:
        for qid, docs in run.items():
            top = ranked(docs)[:depth]
            fh.write(
                dump_line({"qid": qid, "docids": [d for d, _ in top], "scores": [float(s) for _, s in top]})
            )
            n += 1
    return n


def read_jsonl_run(path: PathLike) -> Run:
    """Read :func:`write_jsonl_run` output; lengths, types and duplicates are checked per line."""
    run: Run = {}
    for line, rec in iter_json_objects(path):
        qid = get_id(rec, "qid", path, line)
        if qid in run:
            raise DataFormatError(
                path, f"duplicate id '{qid}' (seen earlier in the file)", line=line, field="qid"
            )
        lists = {}
        for key in ("docids", "scores"):
            if key not in rec:
                raise DataFormatError(path, "missing", line=line, field=key)
            if not isinstance(rec[key], list):
                raise DataFormatError(
                    path, f"must be an array, found {json_type(rec[key])}", line=line, field=key
                )
            lists[key] = rec[key]
        if len(lists["docids"]) != len(lists["scores"]):
            raise DataFormatError(
                path,
                f"{len(lists['docids'])} docids but {len(lists['scores'])} scores",
                line=line,
                field="scores",
            )
        run[qid] = _fast_ranking(lists["docids"], lists["scores"]) or _checked_ranking(
            lists["docids"], lists["scores"], path, line
        )
    return run


def _fast_ranking(docids: list, scores: list) -> dict[str, float] | None:
    """The ranking when every id is a non-blank string, every score a float (not NaN) and no id
    repeats — what :func:`write_jsonl_run` writes; else None, and :func:`_checked_ranking`
    finds and reports the problem. The checks run as C-level ``map`` loops, not Python ones."""
    if not set(map(type, docids)) <= {str} or not all(map(str.strip, docids)):
        return None
    if not set(map(type, scores)) <= {float} or any(map(math.isnan, scores)):
        return None
    docs = dict(zip(docids, scores, strict=True))
    return docs if len(docs) == len(docids) else None


def _checked_ranking(docids: list, scores: list, path: PathLike, line: int) -> dict[str, float]:
    docs: dict[str, float] = {}
    for i, (raw_doc, score) in enumerate(zip(docids, scores, strict=True)):
        docid = coerce_id(raw_doc, path, line, f"docids[{i}]")
        if isinstance(score, bool) or not isinstance(score, int | float) or math.isnan(score):
            raise DataFormatError(
                path, f"must be a number, found {json_type(score)}", line=line, field=f"scores[{i}]"
            )
        if docid in docs:
            raise DataFormatError(path, f"document '{docid}' listed twice", line=line, field=f"docids[{i}]")
        docs[docid] = float(score)
    return docs


def read_run(path: PathLike) -> Run:
    """A run from a search folder (its ``run.jsonl``), a ``.jsonl`` run or a TREC run file."""
    path = Path(path)
    if path.is_dir():
        path = path / "run.jsonl"
    if not path.exists():
        raise XqgError(f"{path}: run file not found")
    return read_jsonl_run(path) if path.suffix == ".jsonl" else read_trec_run(path)


__all__ = ["ranked", "read_jsonl_run", "read_run", "read_trec_run", "write_jsonl_run", "write_trec_run"]
