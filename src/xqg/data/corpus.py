"""Passage corpora: streaming readers for the common formats, and writers.

A corpus (psgs_w100 has 21M passages) never has to fit in memory: :func:`iter_corpus` is a
generator that reads one line (or one Parquet record batch) at a time. The only thing it keeps
is the set of ids seen so far, to reject duplicates; pass ``check_unique=False`` to drop even that.

Formats (``fmt``):

``beir``      JSONL, ``{"_id", "title", "text"}`` (BEIR ``corpus.jsonl``)
``tevatron``  JSONL, ``{"docid", "title", "text"}``
``pyserini``  JSONL, ``{"id", "contents"}``; ``contents`` is ``title<TAB>text`` (as in PrimeQA's
              psgs_w100 conversion); contents without a tab are all text and the title is empty
``plain``     JSONL, ``{"id", "title", "text"}`` (the Parquet column names)
``dpr``       DPR ``psgs_w100.tsv``: ``id<TAB>text<TAB>title`` with CSV quoting and a header line
``parquet``   columns ``id``, ``text`` and optionally ``title``
``jsonl``     any of the JSONL variants, told apart by the keys of the first record
``auto``      by extension (``.parquet``, ``.tsv`` → dpr, otherwise JSONL) and then by keys

``.gz`` is accepted for the text formats. ``title`` is optional everywhere (missing/null → "").
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from xqg.data._jsonl import (
    PathLike,
    SeenIds,
    atomic_text_writer,
    base_name,
    check_text,
    coerce_id,
    dump_line,
    get_id,
    get_optional_str,
    get_text,
    iter_json_objects,
    iter_lines,
)
from xqg.errors import DataFormatError, XqgError
from xqg.io import atomic_path
from xqg.types import Passage

# format → (id key, text key) for the JSONL variants
_JSONL_KEYS: dict[str, tuple[str, str]] = {
    "beir": ("_id", "text"),
    "tevatron": ("docid", "text"),
    "pyserini": ("id", "contents"),
    "plain": ("id", "text"),
}
READ_FORMATS = ("auto", "jsonl", *_JSONL_KEYS, "dpr", "tsv", "parquet")
WRITE_FORMATS = ("jsonl", "beir", "tevatron", "parquet")

_DPR_HEADER = ("id", "text", "title")


def _format_from_extension(path: PathLike) -> str:
    name = base_name(path).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".tsv"):
        return "dpr"
    return "jsonl"


def _jsonl_variant(rec: dict, path: PathLike, line: int) -> str:
    """Which JSONL corpus flavour a record is, judged by its keys."""
    if "_id" in rec:
        return "beir"
    if "docid" in rec:
        return "tevatron"
    if "contents" in rec:
        return "pyserini"
    if "id" in rec and "text" in rec:
        return "plain"
    raise DataFormatError(
        path,
        f"cannot tell the corpus format from keys {sorted(rec)}: expected '_id' (BEIR), "
        "'docid' (Tevatron), 'id'+'contents' (Pyserini) or 'id'+'text'",
        line=line,
    )


def detect_corpus_format(path: PathLike) -> str:
    """The concrete format ``fmt="auto"`` would use (reads at most the first record)."""
    fmt = _format_from_extension(path)
    if fmt != "jsonl":
        return fmt
    for line, rec in iter_json_objects(path):
        return _jsonl_variant(rec, path, line)
    raise DataFormatError(path, "empty corpus file: no records to detect the format from")


def iter_corpus(
    path: PathLike,
    fmt: str = "auto",
    *,
    allow_empty: bool = False,
    check_unique: bool = True,
    batch_size: int = 8192,
) -> Iterator[Passage]:
    """Stream passages from ``path``; stops with :class:`DataFormatError` at the first bad record.

    Records before a bad one are yielded first, so a consumer that writes as it reads keeps its
    work. ``allow_empty`` admits passages whose text is empty or whitespace (some corpora keep
    them as placeholders); by default they are errors because they encode to nothing.
    """
    if fmt not in READ_FORMATS:
        raise XqgError(f"unknown corpus format '{fmt}'; valid: {', '.join(READ_FORMATS)}")
    if fmt == "auto":
        fmt = _format_from_extension(path)
    if fmt == "tsv":
        fmt = "dpr"
    if fmt == "parquet":
        yield from _iter_parquet(path, allow_empty, check_unique, batch_size)
    elif fmt == "dpr":
        yield from _iter_dpr(path, allow_empty, check_unique)
    else:
        yield from _iter_jsonl(path, None if fmt == "jsonl" else fmt, allow_empty, check_unique)


def _iter_jsonl(
    path: PathLike, variant: str | None, allow_empty: bool, check_unique: bool
) -> Iterator[Passage]:
    seen: SeenIds | None = None
    for line, rec in iter_json_objects(path):
        if variant is None:
            variant = _jsonl_variant(rec, path, line)
        id_key, text_key = _JSONL_KEYS[variant]
        if seen is None:
            seen = SeenIds(path, id_key, check_unique)
        pid = get_id(rec, id_key, path, line)
        if variant == "pyserini":
            contents = get_text(rec, text_key, path, line, allow_empty=allow_empty)
            title, sep, text = contents.partition("\t")
            if not sep:
                title, text = "", contents
            check_text(text, path, line, text_key, allow_empty=allow_empty)
        else:
            text = get_text(rec, text_key, path, line, allow_empty=allow_empty)
            title = get_optional_str(rec, "title", path, line)
        seen.add(pid, line)
        yield Passage(id=pid, text=text, title=title)


def _raise_csv_field_limit() -> None:
    """The csv module refuses fields over 128 KiB by default; long passages are legitimate."""
    if csv.field_size_limit() < 2**31 - 1:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _iter_dpr(path: PathLike, allow_empty: bool, check_unique: bool) -> Iterator[Passage]:
    """DPR TSV: read with the csv module because DPR writes CSV-style quotes (``"..."" ..."``)."""
    _raise_csv_field_limit()
    lines = (text for _, text in iter_lines(path, keep_ends=True))
    reader = csv.reader(lines, delimiter="\t", quotechar='"')
    columns = {name: i for i, name in enumerate(_DPR_HEADER)}
    width = len(_DPR_HEADER)
    seen = SeenIds(path, "id", check_unique)
    first = True
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataFormatError(path, f"malformed TSV: {exc}", line=start) from None
        if not row:
            continue
        if first:
            first = False
            names = [c.strip().lower() for c in row]
            if "id" in names and "text" in names:
                columns = {name: i for i, name in enumerate(names)}
                width = len(names)
                continue
        if len(row) != width:
            hint = ""
            if reader.line_num > start:
                hint = f" (the record runs on to line {reader.line_num}: an unbalanced '\"'?)"
            raise DataFormatError(
                path,
                f"expected {width} tab-separated columns (id, text, title), found {len(row)}{hint}",
                line=start,
            )
        pid = coerce_id(row[columns["id"]], path, start, "id")
        text = check_text(row[columns["text"]], path, start, "text", allow_empty=allow_empty)
        title = row[columns["title"]] if "title" in columns else ""
        seen.add(pid, start)
        yield Passage(id=pid, text=text, title=title)


def _iter_parquet(
    path: PathLike, allow_empty: bool, check_unique: bool, batch_size: int
) -> Iterator[Passage]:
    """Parquet is read one record batch at a time; "line" in errors is the 1-based row number."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # a damaged footer's names
        raise DataFormatError(path, f"not a readable Parquet file ({exc})") from None
    names = set(pf.schema_arrow.names)
    for required in ("id", "text"):
        if required not in names:
            raise DataFormatError(path, f"missing column (columns: {sorted(names)})", field=required)
    cols = ["id", "text"] + (["title"] if "title" in names else [])
    seen = SeenIds(path, "id", check_unique)
    row = 0
    batches = pf.iter_batches(batch_size=batch_size, columns=cols)
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            data = batch.to_pydict()
        except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:  # damaged pages
            raise DataFormatError(path, f"not a readable Parquet file ({exc})", line=row + 1) from None
        titles = data.get("title") or [None] * batch.num_rows
        for raw_id, text, title in zip(data["id"], data["text"], titles, strict=True):
            row += 1
            pid = coerce_id(raw_id, path, row, "id")
            check_text(text, path, row, "text", allow_empty=allow_empty)
            if title is not None and not isinstance(title, str):
                raise DataFormatError(path, "must be a string", line=row, field="title")
            seen.add(pid, row)
            yield Passage(id=pid, text=text, title=title or "")


def read_corpus(path: PathLike, fmt: str = "auto", **kwargs: Any) -> list[Passage]:
    """All passages in a list: only for corpora known to be small (fixtures, XQuAD)."""
    return list(iter_corpus(path, fmt, **kwargs))


def write_corpus(
    path: PathLike, passages: Iterable[Passage], fmt: str = "jsonl", *, batch_size: int = 8192
) -> int:
    """Write passages atomically and return how many were written.

    ``jsonl``/``beir`` write BEIR keys (``_id``, ``title``, ``text``), the most widely read
    layout; ``tevatron`` writes ``docid``; ``parquet`` writes columns id/title/text in row
    groups of ``batch_size``. ``passages`` may be a generator: nothing is materialised.
    """
    if fmt not in WRITE_FORMATS:
        raise XqgError(f"unknown corpus output format '{fmt}'; valid: {', '.join(WRITE_FORMATS)}")
    if fmt == "parquet":
        return _write_parquet(path, passages, batch_size)
    id_key = "docid" if fmt == "tevatron" else "_id"
    n = 0
    with atomic_text_writer(path) as fh:
        for p in passages:
            fh.write(dump_line({id_key: p.id, "title": p.title, "text": p.text}))
            n += 1
    return n


def _write_parquet(path: PathLike, passages: Iterable[Passage], batch_size: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("title", pa.string()), ("text", pa.string())])
    n = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, schema) as writer:
            buf: list[Passage] = []

            def flush() -> None:
                writer.write_batch(
                    pa.record_batch(
                        [
                            pa.array([p.id for p in buf], pa.string()),
                            pa.array([p.title for p in buf], pa.string()),
                            pa.array([p.text for p in buf], pa.string()),
                        ],
                        schema=schema,
                    )
                )
                buf.clear()

            for p in passages:
                buf.append(p)
                n += 1
                if len(buf) >= batch_size:
                    flush()
            if buf or n == 0:
                flush()
    return n


def count_corpus(path: PathLike, fmt: str = "auto") -> int:
    """Number of passages. Parquet answers from its metadata; other formats are read (and thus
    validated) in full, but without the duplicate and empty-text checks, so counting costs no
    memory and counts what is there."""
    if fmt == "parquet" or (fmt == "auto" and _format_from_extension(path) == "parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(path, f"not a readable Parquet file ({exc})") from None
    return sum(1 for _ in iter_corpus(path, fmt, check_unique=False, allow_empty=True))


def passages_by_id(path: PathLike, wanted: Iterable[str], fmt: str = "auto") -> dict[str, Passage]:
    """The passages of ``path`` whose id is in ``wanted``, streaming the corpus once, so a corpus
    far larger than memory is read to pick the few passages a run retrieved."""
    wanted = set(wanted)
    return {p.id: p for p in iter_corpus(path, fmt, check_unique=False) if p.id in wanted}


__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "count_corpus",
    "detect_corpus_format",
    "iter_corpus",
    "passages_by_id",
    "read_corpus",
    "write_corpus",
]
