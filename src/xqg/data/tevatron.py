"""Tevatron training JSONL: one query with its positive and (hard) negative passages per line.

``{"query_id", "query", "positive_passages": [{"docid", "title", "text"}, ...],
"negative_passages": [...]}``. Passages become :class:`~xqg.types.Passage` (``docid`` → ``id``)
so training code sees the same type as the corpus readers produce. Every example needs at least
one positive (a contrastive loss has nothing to pull towards otherwise); negatives may be empty
(in-batch negatives only). Query ids are not required to be unique: Tevatron files may repeat a
query with different negative groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from xqg.data._jsonl import (
    PathLike,
    atomic_text_writer,
    dump_line,
    get_id,
    get_optional_str,
    get_text,
    iter_json_objects,
    json_type,
)
from xqg.errors import DataFormatError
from xqg.types import Passage


@dataclass(frozen=True, slots=True)
class TrainExample:
    """One Tevatron training record."""

    query_id: str
    query: str
    positive_passages: tuple[Passage, ...]
    negative_passages: tuple[Passage, ...] = ()


def _passages(rec: dict, key: str, path: PathLike, line: int, *, need_one: bool) -> tuple[Passage, ...]:
    if key not in rec:
        raise DataFormatError(path, "missing", line=line, field=key)
    items = rec[key]
    if not isinstance(items, list):
        raise DataFormatError(path, f"must be an array, found {json_type(items)}", line=line, field=key)
    if need_one and not items:
        raise DataFormatError(path, "is empty: every example needs a positive passage", line=line, field=key)
    out = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise DataFormatError(
                path, f"expected an object, found {json_type(item)}", line=line, field=where
            )
        out.append(
            Passage(
                id=get_id(item, "docid", path, line, field=f"{where}.docid"),
                text=get_text(item, "text", path, line, field=f"{where}.text"),
                title=get_optional_str(item, "title", path, line, field=f"{where}.title"),
            )
        )
    return tuple(out)


def iter_tevatron_train(path: PathLike) -> Iterator[TrainExample]:
    """Stream training examples, validating every passage of every line."""
    for line, rec in iter_json_objects(path):
        yield TrainExample(
            query_id=get_id(rec, "query_id", path, line),
            query=get_text(rec, "query", path, line),
            positive_passages=_passages(rec, "positive_passages", path, line, need_one=True),
            negative_passages=_passages(rec, "negative_passages", path, line, need_one=False),
        )


def _passage_json(p: Passage) -> dict[str, str]:
    return {"docid": p.id, "title": p.title, "text": p.text}


def write_tevatron_train(path: PathLike, examples: Iterable[TrainExample]) -> int:
    """Write examples atomically in Tevatron's layout; returns the count."""
    n = 0
    with atomic_text_writer(path) as fh:
        for ex in examples:
            fh.write(
                dump_line(
                    {
                        "query_id": ex.query_id,
                        "query": ex.query,
                        "positive_passages": [_passage_json(p) for p in ex.positive_passages],
                        "negative_passages": [_passage_json(p) for p in ex.negative_passages],
                    }
                )
            )
            n += 1
    return n


__all__ = ["TrainExample", "iter_tevatron_train", "write_tevatron_train"]
