"""Relevance judgements: BEIR TSV and TREC qrels.

``beir``  ``query-id<TAB>corpus-id<TAB>score``, with (or without) that header line
``trec``  ``qid iter docid rel`` split on any whitespace (the ``iter`` column, ``0`` or ``Q0``, is
          ignored); MIRACL's ``.tsv`` qrels are this format despite the extension
``auto``  decided by the first non-blank line: 3 tab-separated columns → beir, 4 columns → trec

Scores must be integers (graded relevance; ≤ 0 means not relevant). A (query, doc) pair judged
twice with different scores is an error; an exact repeat is harmless and ignored.
"""

from __future__ import annotations

import re

from xqg.data._jsonl import PathLike, atomic_text_writer, check_tsv_cell, iter_lines
from xqg.errors import DataFormatError, XqgError
from xqg.types import Qrels

FORMATS = ("auto", "beir", "trec")
_INT = re.compile(r"[+-]?\d+")
_BEIR_HEADER = ("query-id", "corpus-id", "score")


def _split(text: str, fmt: str) -> list[str]:
    return text.split("\t") if fmt == "beir" else text.split()


def read_qrels(path: PathLike, fmt: str = "auto") -> Qrels:
    """Read judgements into ``{qid: {docid: rel}}`` (files are small; this one is not streamed)."""
    if fmt not in FORMATS:
        raise XqgError(f"unknown qrels format '{fmt}'; valid: {', '.join(FORMATS)}")
    qrels: Qrels = {}
    first = True
    for line, text in iter_lines(path):
        if not text.strip():
            continue
        if fmt == "auto":
            if len(text.split("\t")) == 3:
                fmt = "beir"
            elif len(text.split()) == 4:
                fmt = "trec"
            else:
                raise DataFormatError(
                    path,
                    "cannot tell the qrels format: expected 3 tab-separated columns (BEIR) "
                    "or 4 whitespace-separated columns (TREC)",
                    line=line,
                )
        cols = _split(text, fmt)
        if first:
            first = False
            if fmt == "beir" and tuple(c.strip().lower() for c in cols) == _BEIR_HEADER:
                continue
        if fmt == "beir":
            if len(cols) != 3:
                raise DataFormatError(
                    path,
                    f"expected 3 tab-separated columns (query-id, corpus-id, score), found {len(cols)}",
                    line=line,
                )
            qid, docid, score = (c.strip() for c in cols)
            fields = ("query-id", "corpus-id", "score")
        else:
            if len(cols) != 4:
                raise DataFormatError(
                    path,
                    f"expected 4 whitespace-separated columns (qid iter docid rel), found {len(cols)}",
                    line=line,
                )
            qid, _, docid, score = cols
            fields = ("qid", "docid", "rel")
        if not qid:
            raise DataFormatError(path, "id is empty", line=line, field=fields[0])
        if not docid:
            raise DataFormatError(path, "id is empty", line=line, field=fields[1])
        if not _INT.fullmatch(score):
            raise DataFormatError(path, f"must be an integer, found {score!r}", line=line, field=fields[2])
        rel = int(score)
        docs = qrels.setdefault(qid, {})
        if docid in docs and docs[docid] != rel:
            raise DataFormatError(
                path,
                f"({qid}, {docid}) judged twice with different scores ({docs[docid]} and {rel})",
                line=line,
                field=fields[2],
            )
        docs[docid] = rel
    return qrels


def write_qrels(path: PathLike, qrels: Qrels, fmt: str = "beir") -> int:
    """Write judgements atomically in ``qrels`` order; returns the number of lines (pairs).

    ``beir`` writes the header BEIR's loader expects; ``trec`` writes ``qid 0 docid rel``.
    """
    if fmt not in ("beir", "trec"):
        raise XqgError(f"unknown qrels output format '{fmt}'; valid: beir, trec")
    n = 0
    with atomic_text_writer(path) as fh:
        if fmt == "beir":
            fh.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in qrels.items():
            for docid, rel in docs.items():
                if fmt == "beir":
                    fh.write(
                        f"{check_tsv_cell(qid, 'query id')}\t{check_tsv_cell(docid, 'doc id')}\t{int(rel)}\n"
                    )
                else:
                    if len(qid.split()) != 1 or len(docid.split()) != 1:
                        raise XqgError(
                            f"cannot write ({qid!r}, {docid!r}) to TREC qrels: ids contain whitespace"
                        )
                    fh.write(f"{qid} 0 {docid} {int(rel)}\n")
                n += 1
    return n


__all__ = ["FORMATS", "read_qrels", "write_qrels"]
