"""Malformed input: every reader stops with a DataFormatError naming file, line and field."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from xqg.data import (
    iter_corpus,
    iter_tevatron_train,
    read_jsonl_run,
    read_qrels,
    read_queries,
    read_trec_run,
    read_xor,
)
from xqg.errors import DataFormatError, XqgError

GOOD = json.dumps({"_id": "a", "title": "T", "text": "fine"})
GOOD2 = json.dumps({"_id": "b", "title": "T", "text": "also fine"})


def write_bytes(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in lines))
    return path


def raises_at(fn: Callable[[], Any], pattern: str) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        fn()
    assert re.search(pattern, str(info.value)), str(info.value)
    return info.value


# --- corpus JSONL -------------------------------------------------------------------------------

CORPUS_CASES = {
    "bad json": ("{_id: 'c'", r"corpus\.jsonl:3: invalid JSON"),
    "not an object": ('["c", "text"]', r"corpus\.jsonl:3: expected a JSON object, found array"),
    "missing text": (json.dumps({"_id": "c", "title": "T"}), r"corpus\.jsonl:3: field 'text': missing"),
    "missing id": (json.dumps({"id": "c", "text": "x"}), r"corpus\.jsonl:3: field '_id': missing"),
    "float id": (json.dumps({"_id": 1.5, "text": "x"}), r"corpus\.jsonl:3: field '_id': .*string or integer"),
    "bool id": (json.dumps({"_id": True, "text": "x"}), r"corpus\.jsonl:3: field '_id': .*found boolean"),
    "null id": (json.dumps({"_id": None, "text": "x"}), r"corpus\.jsonl:3: field '_id': .*found null"),
    "blank id": (json.dumps({"_id": " ", "text": "x"}), r"corpus\.jsonl:3: field '_id': id is empty"),
    "text not str": (json.dumps({"_id": "c", "text": 5}), r"corpus\.jsonl:3: field 'text': must be a string"),
    "title not str": (
        json.dumps({"_id": "c", "title": ["x"], "text": "x"}),
        r"corpus\.jsonl:3: field 'title': must be a string",
    ),
    "empty text": (json.dumps({"_id": "c", "text": ""}), r"corpus\.jsonl:3: field 'text': is empty"),
    "whitespace text": (
        json.dumps({"_id": "c", "text": " \t\n "}),
        r"corpus\.jsonl:3: field 'text': is empty",
    ),
    "duplicate id": (
        json.dumps({"_id": "a", "text": "again"}),
        r"corpus\.jsonl:3: field '_id': duplicate id 'a'",
    ),
    "invalid utf-8": (b'{"_id": "c", "text": "caf\xe9"}', r"corpus\.jsonl:3: invalid UTF-8"),
}


@pytest.mark.parametrize("case", list(CORPUS_CASES))
def test_corpus_jsonl_errors(tmp_path: Path, case: str) -> None:
    bad, pattern = CORPUS_CASES[case]
    path = write_bytes(tmp_path / "corpus.jsonl", [GOOD, GOOD2, bad, GOOD])
    err = raises_at(lambda: list(iter_corpus(path)), pattern)
    assert err.path == str(path) and err.line == 3


def test_error_attributes_name_the_field(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "corpus.jsonl", [GOOD, json.dumps({"_id": "c"})])
    with pytest.raises(DataFormatError) as info:
        list(iter_corpus(path))
    assert (info.value.line, info.value.field) == (2, "text")


def test_corpus_gz_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl.gz"
    path.write_bytes(gzip.compress(GOOD.encode() + b'\n{"_id": "c", "text": "\xff"}\n'))
    raises_at(lambda: list(iter_corpus(path)), r"corpus\.jsonl\.gz:2: invalid UTF-8")


def test_corpus_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl.gz"
    path.write_bytes(b"plain text, not gzip\n")
    raises_at(lambda: list(iter_corpus(path)), r"corpus\.jsonl\.gz:1: cannot read compressed data")


def test_corpus_allow_empty_still_rejects_wrong_type(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "corpus.jsonl", [GOOD, json.dumps({"_id": "c", "text": None})])
    raises_at(
        lambda: list(iter_corpus(path, allow_empty=True)), r"corpus\.jsonl:2: field 'text': must be a string"
    )


def test_corpus_duplicates_can_be_allowed(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "corpus.jsonl", [GOOD, GOOD])
    assert len(list(iter_corpus(path, check_unique=False))) == 2


def test_corpus_undetectable_keys(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "corpus.jsonl", [json.dumps({"doc": "x", "body": "y"})])
    raises_at(lambda: list(iter_corpus(path)), r"corpus\.jsonl:1: cannot tell the corpus format")


def test_corpus_pyserini_empty_text(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "psgs.jsonl", [json.dumps({"id": "1", "contents": "Title\t  "})])
    raises_at(lambda: list(iter_corpus(path)), r"psgs\.jsonl:1: field 'contents': is empty")


# --- corpus TSV and Parquet -------------------------------------------------------------------


def test_dpr_tsv_wrong_columns(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "psgs.tsv", ["id\ttext\ttitle", "1\ttext\tT", "2\tonly two"])
    raises_at(lambda: list(iter_corpus(path)), r"psgs\.tsv:3: expected 3 tab-separated columns .*found 2")


def test_dpr_tsv_empty_text_and_duplicate(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "psgs.tsv", ["id\ttext\ttitle", "1\ttext\tT", "2\t \tT"])
    raises_at(lambda: list(iter_corpus(path)), r"psgs\.tsv:3: field 'text': is empty")
    path = write_bytes(tmp_path / "psgs.tsv", ["id\ttext\ttitle", "1\ttext\tT", "1\tagain\tT"])
    raises_at(lambda: list(iter_corpus(path)), r"psgs\.tsv:3: field 'id': duplicate id '1'")


def test_dpr_tsv_invalid_utf8(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "psgs.tsv", ["id\ttext\ttitle", "1\ttext\tT", b"2\tna\xefve\tT"])
    raises_at(lambda: list(iter_corpus(path)), r"psgs\.tsv:3: invalid UTF-8")


def test_dpr_tsv_unbalanced_quote(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "psgs.tsv", ["id\ttext\ttitle", '1\t"open quote\tT', "2\tx\ty"])
    raises_at(lambda: list(iter_corpus(path)), r"psgs\.tsv:2: expected 3 .*unbalanced")


def test_parquet_errors(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "title": ["", ""], "text": ["x", None]}), path)
    raises_at(
        lambda: list(iter_corpus(path)), r"corpus\.parquet:2: field 'text': must be a string, found null"
    )
    pq.write_table(pa.table({"id": ["a"], "body": ["x"]}), path)
    raises_at(lambda: list(iter_corpus(path)), r"corpus\.parquet: field 'text': missing column")
    pq.write_table(pa.table({"id": [1, 1], "text": ["x", "y"]}), path)
    raises_at(lambda: list(iter_corpus(path)), r"corpus\.parquet:2: field 'id': duplicate id '1'")
    path.write_text("not parquet")
    raises_at(lambda: list(iter_corpus(path)), r"corpus\.parquet: not a readable Parquet file")


# --- queries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        (
            [json.dumps({"_id": "1", "text": "a"}), json.dumps({"_id": "2"})],
            r"queries\.jsonl:2: field 'text': missing",
        ),
        (
            [json.dumps({"_id": "1", "text": "a"}), json.dumps({"_id": "1", "text": "b"})],
            r":2: field '_id': duplicate",
        ),
        ([json.dumps({"_id": [1], "text": "a"})], r"queries\.jsonl:1: field '_id': .*string or integer"),
        ([json.dumps({"_id": "1", "text": "  "})], r"queries\.jsonl:1: field 'text': is empty"),
        (
            [json.dumps({"_id": "1", "text": "a", "lang": 3})],
            r"queries\.jsonl:1: field 'lang': must be a string",
        ),
        (
            [json.dumps({"_id": "1", "text": "a", "metadata": {"lang": 3}})],
            r"queries\.jsonl:1: field 'metadata\.lang': must be a string",
        ),
    ],
)
def test_queries_jsonl_errors(tmp_path: Path, lines: list[str], pattern: str) -> None:
    path = write_bytes(tmp_path / "queries.jsonl", lines)
    raises_at(lambda: read_queries(path), pattern)


def test_queries_tsv_errors(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "queries.tsv", ["1\ta", "2\tb\textra"])
    raises_at(lambda: read_queries(path), r"queries\.tsv:2: expected 2 tab-separated columns .*found 3")
    path = write_bytes(tmp_path / "queries.tsv", ["1\ta", "1\tb"])
    raises_at(lambda: read_queries(path), r"queries\.tsv:2: field 'id': duplicate id '1'")
    path = write_bytes(tmp_path / "queries.tsv", ["1\ta", "2\t "])
    raises_at(lambda: read_queries(path), r"queries\.tsv:2: field 'text': is empty")
    path = write_bytes(tmp_path / "queries.tsv", ["1\ta", b"2\t\xc3("])
    raises_at(lambda: read_queries(path), r"queries\.tsv:2: invalid UTF-8")


# --- qrels --------------------------------------------------------------------------------------


def test_qrels_score_not_int(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "test.tsv", ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2\t0.5"])
    raises_at(lambda: read_qrels(path), r"test\.tsv:3: field 'score': must be an integer, found '0\.5'")
    path = write_bytes(tmp_path / "qrels.txt", ["q1 0 d1 1", "q1 0 d2 yes"])
    raises_at(lambda: read_qrels(path), r"qrels\.txt:2: field 'rel': must be an integer")


def test_qrels_wrong_columns(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "test.tsv", ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q1\td2"])
    raises_at(lambda: read_qrels(path), r"test\.tsv:3: expected 3 tab-separated columns")
    path = write_bytes(tmp_path / "qrels.txt", ["q1 0 d1 1", "q1 0 d2 1 extra"])
    raises_at(lambda: read_qrels(path), r"qrels\.txt:2: expected 4 whitespace-separated columns")
    path = write_bytes(tmp_path / "odd.txt", ["just two"])
    raises_at(lambda: read_qrels(path), r"odd\.txt:1: cannot tell the qrels format")


def test_qrels_conflicting_duplicate(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "qrels.txt", ["q1 0 d1 1", "q1 0 d1 2"])
    raises_at(lambda: read_qrels(path), r"qrels\.txt:2: field 'rel': \(q1, d1\) judged twice")


# --- runs ---------------------------------------------------------------------------------------


def test_trec_run_errors(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "run.trec", ["q1 Q0 d1 1 2.5 t", "q1 Q0 d2 2 2.0"])
    raises_at(lambda: read_trec_run(path), r"run\.trec:2: expected 6 whitespace-separated columns")
    path = write_bytes(tmp_path / "run.trec", ["q1 Q0 d1 1 2.5 t", "q1 Q0 d2 2 high t"])
    raises_at(lambda: read_trec_run(path), r"run\.trec:2: field 'score': must be a number")
    path = write_bytes(tmp_path / "run.trec", ["q1 Q0 d1 1 2.5 t", "q1 Q0 d1 2 1.0 t"])
    raises_at(lambda: read_trec_run(path), r"run\.trec:2: field 'docid': .*listed twice")
    path = write_bytes(tmp_path / "run.trec", ["q1 Q0 d1 one 2.5 t"])
    raises_at(lambda: read_trec_run(path), r"run\.trec:1: field 'rank': must be an integer")


def test_jsonl_run_errors(tmp_path: Path) -> None:
    ok = json.dumps({"qid": "q1", "docids": ["a"], "scores": [1.0]})
    cases = [
        (
            json.dumps({"qid": "q2", "docids": ["a", "b"], "scores": [1.0]}),
            r"run\.jsonl:2: field 'scores': 2 docids",
        ),
        (
            json.dumps({"qid": "q2", "docids": "a", "scores": [1.0]}),
            r"run\.jsonl:2: field 'docids': must be an array",
        ),
        (json.dumps({"qid": "q2", "docids": ["a"], "scores": ["1"]}), r"run\.jsonl:2: field 'scores\[0\]'"),
        (
            json.dumps({"qid": "q1", "docids": ["a"], "scores": [1.0]}),
            r"run\.jsonl:2: field 'qid': duplicate id",
        ),
        (json.dumps({"docids": ["a"], "scores": [1.0]}), r"run\.jsonl:2: field 'qid': missing"),
    ]
    for bad, pattern in cases:
        path = write_bytes(tmp_path / "run.jsonl", [ok, bad])
        raises_at(lambda path=path: read_jsonl_run(path), pattern)


# --- Tevatron train and XOR ---------------------------------------------------------------------


def _example(**over: Any) -> str:
    rec = {
        "query_id": "1",
        "query": "q",
        "positive_passages": [{"docid": "p", "title": "", "text": "pos"}],
        "negative_passages": [{"docid": "n", "title": "", "text": "neg"}],
    }
    rec.update(over)
    return json.dumps(rec)


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        (_example(positive_passages=[]), r"train\.jsonl:2: field 'positive_passages': is empty"),
        (
            _example(positive_passages=[{"docid": "p"}]),
            r"train\.jsonl:2: field 'positive_passages\[0\]\.text': missing",
        ),
        (
            _example(negative_passages=["n"]),
            r"train\.jsonl:2: field 'negative_passages\[0\]': expected an object",
        ),
        (
            _example(negative_passages=[{"docid": 1.5, "text": "x"}]),
            r"train\.jsonl:2: field 'negative_passages\[0\]\.docid'",
        ),
        (_example(query=""), r"train\.jsonl:2: field 'query': is empty"),
        (json.dumps({"query_id": "1", "query": "q"}), r"train\.jsonl:2: field 'positive_passages': missing"),
    ],
)
def test_tevatron_train_errors(tmp_path: Path, bad: str, pattern: str) -> None:
    path = write_bytes(tmp_path / "train.jsonl", [_example(), bad])
    raises_at(lambda: list(iter_tevatron_train(path)), pattern)


@pytest.mark.parametrize(
    ("bad", "pattern"),
    [
        (
            {"id": "2", "question": "q", "answers": "a", "lang": "ar"},
            r"xor\.jsonl:2: field 'answers': must be an array",
        ),
        ({"id": "2", "question": "q", "answers": [1], "lang": "ar"}, r"xor\.jsonl:2: field 'answers\[0\]'"),
        ({"id": "2", "question": "q", "answers": []}, r"xor\.jsonl:2: field 'lang': missing"),
        ({"id": "1", "question": "q", "answers": [], "lang": "ar"}, r"xor\.jsonl:2: field 'id': duplicate"),
        (
            {"id": "2", "question": " ", "answers": [], "lang": "ar"},
            r"xor\.jsonl:2: field 'question': is empty",
        ),
    ],
)
def test_xor_errors(tmp_path: Path, bad: dict[str, Any], pattern: str) -> None:
    good = json.dumps({"id": "1", "question": "q", "answers": ["a"], "lang": " ar"})
    path = write_bytes(tmp_path / "xor.jsonl", [good, json.dumps(bad)])
    raises_at(lambda: read_xor(path), pattern)


def test_unknown_formats_are_xqg_errors(tmp_path: Path) -> None:
    with pytest.raises(XqgError):
        read_qrels(tmp_path / "x", fmt="csv")
    with pytest.raises(XqgError):
        read_queries(tmp_path / "x", fmt="csv")
