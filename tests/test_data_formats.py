"""Round-trips and format detection for every reader/writer in xqg.data."""

from __future__ import annotations

import gzip
import inspect
import json
from pathlib import Path

import pytest

from xqg.data import (
    TrainExample,
    count_corpus,
    detect_corpus_format,
    iter_corpus,
    iter_queries,
    iter_tevatron_train,
    ranked,
    read_corpus,
    read_jsonl_run,
    read_qrels,
    read_queries,
    read_trec_run,
    read_xor,
    write_corpus,
    write_jsonl_run,
    write_qrels,
    write_queries,
    write_tevatron_train,
    write_trec_run,
    write_xor,
)
from xqg.errors import DataFormatError, XqgError
from xqg.paths import data_root
from xqg.types import AnswerQuery, Passage, Query

PASSAGES = [
    Passage(id="d1", text="The Kangxi Emperor reigned 61 years.", title="Kangxi Emperor"),
    Passage(id="d2", text='Text with "quotes", a\ttab-free line and ünïcödé 中文.', title=""),
    Passage(id="42", text="Numeric id passage.", title="Numbers"),
]
QUERIES = [
    Query(id="q1", text="Who reigned longest?", lang="en"),
    Query(id="q2", text="누가 가장 오래 통치했나?", lang="ko"),
    Query(id="q3", text="no language", lang=None),
]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --- corpus -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus.jsonl.gz", "corpus.parquet"])
def test_corpus_roundtrip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    fmt = "parquet" if name.endswith(".parquet") else "jsonl"
    assert write_corpus(path, iter(PASSAGES), fmt=fmt) == 3
    assert list(iter_corpus(path)) == PASSAGES
    assert count_corpus(path) == 3


def test_corpus_jsonl_writes_beir_keys(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    write_corpus(path, PASSAGES)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first == {"_id": "d1", "title": "Kangxi Emperor", "text": "The Kangxi Emperor reigned 61 years."}
    assert detect_corpus_format(path) == "beir"


def test_corpus_tevatron_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    write_corpus(path, PASSAGES, fmt="tevatron")
    assert detect_corpus_format(path) == "tevatron"
    assert list(iter_corpus(path)) == PASSAGES
    assert list(iter_corpus(path, "tevatron")) == PASSAGES


def test_corpus_parquet_small_batches(tmp_path: Path) -> None:
    passages = [Passage(id=str(i), text=f"passage {i}", title=f"t{i}") for i in range(25)]
    path = tmp_path / "c.parquet"
    write_corpus(path, passages, fmt="parquet", batch_size=4)
    assert list(iter_corpus(path, batch_size=3)) == passages
    assert count_corpus(path) == 25


def test_corpus_gzip_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_corpus(a, PASSAGES)
    write_corpus(b, PASSAGES)
    assert a.read_bytes() == b.read_bytes()
    assert gzip.decompress(a.read_bytes()).decode("utf-8").count("\n") == 3


def test_corpus_pyserini(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "psgs.jsonl",
        [
            json.dumps({"id": "15094739", "contents": "John Sawbridge\tLondon in 1775."}),
            json.dumps({"id": 7, "contents": "no title here"}),
        ],
    )
    assert detect_corpus_format(path) == "pyserini"
    assert list(iter_corpus(path)) == [
        Passage(id="15094739", text="London in 1775.", title="John Sawbridge"),
        Passage(id="7", text="no title here", title=""),
    ]


def test_corpus_plain_id_title_text(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"id": 1, "title": None, "text": "x"})])
    assert detect_corpus_format(path) == "plain"
    assert list(iter_corpus(path)) == [Passage(id="1", text="x", title="")]


def test_corpus_dpr_tsv_with_csv_quotes(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "psgs_w100.tsv",
        [
            "id\ttext\ttitle",
            '1\t"He had the ""de facto"" power."\tKangxi Emperor',
            "2\tplain text\tAaron",
        ],
    )
    assert detect_corpus_format(path) == "dpr"
    assert list(iter_corpus(path)) == [
        Passage(id="1", text='He had the "de facto" power.', title="Kangxi Emperor"),
        Passage(id="2", text="plain text", title="Aaron"),
    ]
    assert count_corpus(path) == 2


def test_corpus_dpr_tsv_header_order_and_gz(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv.gz"
    path.write_bytes(gzip.compress(b"id\ttitle\ttext\n5\tT\tbody\n"))
    assert list(iter_corpus(path)) == [Passage(id="5", text="body", title="T")]


def test_corpus_allow_empty(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [json.dumps({"_id": "a", "text": "  "})])
    assert list(iter_corpus(path, allow_empty=True)) == [Passage(id="a", text="  ", title="")]


def test_corpus_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"_id": "a", "text": "x"}\r\n\r\n{"_id": "b", "text": "y"}\r\n')
    assert [p.id for p in iter_corpus(path)] == ["a", "b"]


def test_corpus_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(XqgError, match="unknown corpus format"):
        list(iter_corpus(tmp_path / "x.jsonl", "nope"))


def test_iter_corpus_is_lazy(tmp_path: Path) -> None:
    """Good records come out before a bad line late in the file is even read."""
    lines = [json.dumps({"_id": str(i), "text": f"t{i}"}) for i in range(5)] + ["{broken"]
    path = write_lines(tmp_path / "corpus.jsonl", lines)
    gen = iter_corpus(path)
    assert inspect.isgenerator(gen)
    got = [next(gen) for _ in range(5)]
    assert [p.id for p in got] == ["0", "1", "2", "3", "4"]
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl:6:"):
        next(gen)


def test_iter_corpus_does_not_open_until_iterated(tmp_path: Path) -> None:
    gen = iter_corpus(tmp_path / "missing.jsonl")  # no error yet: nothing read
    with pytest.raises(FileNotFoundError):
        next(gen)


def test_write_corpus_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    write_corpus(path, PASSAGES)
    before = path.read_bytes()

    def boom():
        yield PASSAGES[0]
        raise RuntimeError("encoder died")

    with pytest.raises(RuntimeError):
        write_corpus(path, boom())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.jsonl"]


def test_pyserini_fixture_corpus() -> None:
    path = data_root() / "primeqa_xor_fixture" / "psgs_w100_pyserini_100.jsonl"
    if not path.exists():
        pytest.skip("shared data not available")
    passages = read_corpus(path)
    assert len(passages) == 100
    assert passages[0] == Passage(id="15094739", text=passages[0].text, title="John Sawbridge")
    assert passages[0].text.startswith("London in 1775")


# --- queries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["queries.jsonl", "queries.jsonl.gz"])
def test_queries_beir_roundtrip(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_queries(path, QUERIES) == 3
    assert read_queries(path) == QUERIES
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    assert "lang" not in json.loads(raw.splitlines()[2])  # unknown language is left out, not null


def test_queries_tsv_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "queries.tsv"
    write_queries(path, QUERIES, fmt="tsv")
    assert read_queries(path, lang="xx") == [Query(q.id, q.text, "xx") for q in QUERIES]


def test_queries_tsv_header_skipped(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.tsv", ["query_id\tquery", "1\thello"])
    assert read_queries(path) == [Query("1", "hello")]


def test_queries_beir_metadata_lang_and_int_ids(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "queries.jsonl",
        [
            json.dumps({"_id": 1, "text": "a", "metadata": {"lang": "de"}}),
            json.dumps({"_id": "2", "text": "b", "lang": " ar"}),
        ],
    )
    assert read_queries(path) == [Query("1", "a", "de"), Query("2", "b", "ar")]


def test_queries_tevatron_and_xor_detection(tmp_path: Path) -> None:
    tev = write_lines(
        tmp_path / "dev.jsonl", [json.dumps({"query_id": 3, "query": "q", "positive_passages": []})]
    )
    assert read_queries(tev) == [Query("3", "q")]
    xor = write_lines(
        tmp_path / "xor.jsonl", [json.dumps({"id": "-1", "question": "q?", "answers": ["a"], "lang": " ar"})]
    )
    assert read_queries(xor) == [Query("-1", "q?", "ar")]


def test_queries_real_topics() -> None:
    root = data_root() / "miracl_mrtydi_topics" / "topics"
    if not root.exists():
        pytest.skip("shared data not available")
    miracl = read_queries(root / "topics.miracl-v1.0-ar-dev.tsv", lang="ar")
    assert miracl[0].id == "0" and miracl[0].lang == "ar"
    mrtydi = list(iter_queries(root / "topics.mrtydi-v1.1-te.test.txt.gz"))
    assert len(mrtydi) > 100 and all(q.text.strip() for q in mrtydi)


# --- qrels --------------------------------------------------------------------------------------

QRELS = {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}


@pytest.mark.parametrize("fmt", ["beir", "trec"])
def test_qrels_roundtrip(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"qrels.{fmt}"
    assert write_qrels(path, QRELS, fmt=fmt) == 3
    assert read_qrels(path) == QRELS
    assert read_qrels(path, fmt) == QRELS


def test_qrels_beir_header(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    write_qrels(path, QRELS)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "query-id\tcorpus-id\tscore"


def test_qrels_exact_duplicate_ignored(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.trec", ["1 0 a 1", "1 0 a 1"])
    assert read_qrels(path) == {"1": {"a": 1}}


def test_qrels_real_miracl() -> None:
    path = data_root() / "miracl_mrtydi_topics" / "qrels" / "qrels.miracl-v1.0-te-dev.tsv"
    if not path.exists():
        pytest.skip("shared data not available")
    qrels = read_qrels(path)
    assert sum(len(d) for d in qrels.values()) == 1606
    assert qrels["2"]["259006#0"] == 1


# --- runs ---------------------------------------------------------------------------------------

RUN = {"q2": {"b": 0.5, "a": 0.5, "c": 1.25}, "q1": {"x": -1.0, "y": 3.0000000000000004}}


def test_ranked_ties_by_docid() -> None:
    assert ranked(RUN["q2"]) == [("c", 1.25), ("a", 0.5), ("b", 0.5)]


def test_trec_run_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    assert write_trec_run(path, RUN, tag="bm25") == 5
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["q2 Q0 c 1 1.25 bm25", "q2 Q0 a 2 0.5 bm25", "q2 Q0 b 3 0.5 bm25"]
    assert read_trec_run(path) == RUN


def test_trec_run_depth(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    write_trec_run(path, RUN, depth=1)
    assert read_trec_run(path) == {"q2": {"c": 1.25}, "q1": {"y": 3.0000000000000004}}


def test_trec_run_refuses_whitespace_ids(tmp_path: Path) -> None:
    with pytest.raises(XqgError, match="whitespace"):
        write_trec_run(tmp_path / "r.trec", {"q 1": {"d": 1.0}})


def test_jsonl_run_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    assert write_jsonl_run(path, RUN) == 2
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert first == {"qid": "q2", "docids": ["c", "a", "b"], "scores": [1.25, 0.5, 0.5]}
    assert read_jsonl_run(path) == RUN


# --- Tevatron train and XOR ---------------------------------------------------------------------


def test_tevatron_train_roundtrip(tmp_path: Path) -> None:
    examples = [
        TrainExample("q1", "who?", (PASSAGES[0],), (PASSAGES[1], PASSAGES[2])),
        TrainExample("q2", "what?", (PASSAGES[2],), ()),
    ]
    path = tmp_path / "train.jsonl.gz"
    assert write_tevatron_train(path, examples) == 2
    assert list(iter_tevatron_train(path)) == examples
    # the same file is also a Tevatron query file
    assert [q.id for q in iter_queries(path)] == ["q1", "q2"]


def test_xor_roundtrip_and_lang_strip(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "xor.jsonl",
        [
            json.dumps(
                {"id": "-1", "question": "س؟", "answers": ["A", "A"], "lang": " ar", "split": "train"}
            ),
            json.dumps({"id": 7, "question": "q", "answers": [], "lang": "te"}),
        ],
    )
    got = read_xor(path)
    assert got == [AnswerQuery("-1", "س؟", "ar", ("A", "A")), AnswerQuery("7", "q", "te", ())]
    out = tmp_path / "out.jsonl"
    write_xor(out, got, split="dev")
    assert read_xor(out) == got
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["split"] == "dev"
