"""Data layer: streaming readers and atomic writers for corpora, queries, qrels, runs and
training files, plus benchmark builders (:mod:`xqg.data.benchmarks`).

Malformed input always raises :class:`~xqg.errors.DataFormatError` naming the file, the 1-based
line and the field, so a user can fix the file without reading xqg's code. See ``docs/data.md``.
"""

from xqg.data.corpus import (
    count_corpus,
    detect_corpus_format,
    iter_corpus,
    passages_by_id,
    read_corpus,
    write_corpus,
)
from xqg.data.qrels import read_qrels, write_qrels
from xqg.data.queries import iter_queries, read_queries, write_queries
from xqg.data.runs import ranked, read_jsonl_run, read_run, read_trec_run, write_jsonl_run, write_trec_run
from xqg.data.tevatron import TrainExample, iter_tevatron_train, write_tevatron_train
from xqg.data.xor import iter_xor, read_xor, write_xor

__all__ = [
    "TrainExample",
    "count_corpus",
    "detect_corpus_format",
    "iter_corpus",
    "iter_queries",
    "iter_tevatron_train",
    "iter_xor",
    "passages_by_id",
    "ranked",
    "read_corpus",
    "read_jsonl_run",
    "read_qrels",
    "read_queries",
    "read_run",
    "read_trec_run",
    "read_xor",
    "write_corpus",
    "write_jsonl_run",
    "write_qrels",
    "write_queries",
    "write_tevatron_train",
    "write_trec_run",
    "write_xor",
]
