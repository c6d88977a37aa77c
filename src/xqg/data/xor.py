"""XOR-TyDi XOR-Retrieve JSONL: ``{"id", "question", "answers", "lang", "split"}`` per line.

These questions are judged by whether a retrieved English passage contains an answer string,
not by qrels, so they become :class:`~xqg.types.AnswerQuery`. ``lang`` is stripped: the
released train file writes Arabic as ``" ar"`` (with a leading space) on every Arabic row.
``answers`` may be empty (the MIA test file ships without answers); answers are kept exactly
as released, including repeats (``["Portland", "Portland"]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from xqg.data._jsonl import (
    PathLike,
    SeenIds,
    atomic_text_writer,
    dump_line,
    get_id,
    get_text,
    iter_json_objects,
    json_type,
)
from xqg.errors import DataFormatError
from xqg.types import AnswerQuery


def iter_xor(path: PathLike) -> Iterator[AnswerQuery]:
    """Stream XOR-TyDi questions; ids must be unique within the file."""
    seen = SeenIds(path, "id")
    for line, rec in iter_json_objects(path):
        qid = get_id(rec, "id", path, line)
        question = get_text(rec, "question", path, line)
        lang = get_text(rec, "lang", path, line).strip()
        if "answers" not in rec:
            raise DataFormatError(path, "missing", line=line, field="answers")
        answers = rec["answers"]
        if not isinstance(answers, list):
            raise DataFormatError(
                path, f"must be an array, found {json_type(answers)}", line=line, field="answers"
            )
        for i, a in enumerate(answers):
            if not isinstance(a, str):
                raise DataFormatError(
                    path, f"must be a string, found {json_type(a)}", line=line, field=f"answers[{i}]"
                )
        seen.add(qid, line)
        yield AnswerQuery(id=qid, text=question, lang=lang, answers=tuple(answers))


def read_xor(path: PathLike) -> list[AnswerQuery]:
    """All questions of an XOR-TyDi file, in file order."""
    return list(iter_xor(path))


def write_xor(path: PathLike, queries: Iterable[AnswerQuery], split: str | None = None) -> int:
    """Write XOR-TyDi JSONL atomically (``split`` is recorded per line when given)."""
    n = 0
    with atomic_text_writer(path) as fh:
        for q in queries:
            rec: dict[str, object] = {
                "id": q.id,
                "question": q.text,
                "answers": list(q.answers),
                "lang": q.lang,
            }
            if split is not None:
                rec["split"] = split
            fh.write(dump_line(rec))
            n += 1
    return n


__all__ = ["iter_xor", "read_xor", "write_xor"]
