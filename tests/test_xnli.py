"""XNLI loader on the real files (issue 15): counts, parallelism, premises, the test label join."""

from __future__ import annotations

import json

import pytest

from xqg.data.benchmarks import build_benchmark
from xqg.data.benchmarks.xnli import (
    GRADES,
    XNLI_LANGS,
    hypothesis_query_id,
    load_xnli,
    premise_id,
    read_xnli,
)
from xqg.errors import DataFormatError, XqgError
from xqg.paths import data_root

ROOT = data_root() / "xnli"
pytestmark = pytest.mark.skipif(not (ROOT / "test-en.tsv").is_file(), reason="shared XNLI data not present")


@pytest.fixture(scope="module")
def splits():
    return {s: read_xnli(s) for s in ("dev", "test")}


@pytest.mark.parametrize(("split", "rows", "premises"), [("dev", 2490, 830), ("test", 5010, 1670)])
def test_rows_and_premises(splits, split, rows, premises):
    data = splits[split]
    assert sorted(data.rows) == sorted(XNLI_LANGS)
    assert all(len(data.rows[lang]) == rows for lang in XNLI_LANGS)
    assert len(data.labels) == rows and data.n_premises == premises
    assert len(set(data.premises("en"))) == premises  # the English corpus has no repeats


@pytest.mark.parametrize("split", ["dev", "test"])
def test_rows_parallel_across_languages(splits, split):
    data = splits[split]
    en_groups = [r // 3 for r in range(len(data.labels))]
    for lang in XNLI_LANGS:
        rows = data.rows[lang]
        # premise group structure is the English one: row i's premise is its group's premise
        assert all(rows[i][0] == rows[g * 3][0] for i, g in enumerate(en_groups)), lang
        # translated premises differ from English (a shuffled or English file would not)
        if lang != "en":
            same = sum(a[0] == b[0] for a, b in zip(rows, data.rows["en"], strict=True))
            assert same < 0.05 * len(rows), lang


def test_label_join_matches_dev_own_labels(splits):
    """Test labels come from the English labels file joined by row position; the same join on dev
    (English labels onto every language's rows) must equal each language's own label column."""
    from xqg.data.benchmarks import xnli as mod

    root = ROOT.resolve()
    en_labels = mod._read_lang(root, "dev", "en")[1]
    for lang in XNLI_LANGS:
        own = mod._read_lang(root, "dev", lang)[1]
        assert own == en_labels, lang
    test = splits["test"]
    assert sorted(set(test.labels)) == sorted(GRADES)
    assert all(sorted(test.labels[i : i + 3]) == sorted(GRADES) for i in range(0, len(test.labels), 3))
    # the labels file's text is test-en.tsv's, row by row
    with open(ROOT / "test-en.labels.jsonl", encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    assert [(d["premise"].strip(), d["hypothesis"].strip()) for d in docs] == list(test.rows["en"])


def test_tasks_graded_entailment_and_bitext():
    b = load_xnli(["en", "fr"], split="dev")
    assert len(b.corpus) == 830 and len(b.queries["fr"]) == 2490
    q = b.queries["fr"][0]
    assert q.id == hypothesis_query_id("dev", 0, "fr")
    assert b.qrels[q.id] == {premise_id("dev", 0): GRADES[b.qid_label[q.id]]}
    assert sorted(set(v for d in b.qrels.values() for v in d.values())) == [1, 2]
    ent = load_xnli(["fr"], split="test", task="entailment")
    assert len(ent.queries["fr"]) == 1670 and set(ent.qid_label.values()) == {"entailment"}
    bt = load_xnli(["en", "sw"], split="test", task="premise")
    assert bt.langs == ("sw",) and len(bt.queries["sw"]) == 1670
    assert bt.qrels["test-p0007-sw"] == {"test-p0007": 1}
    with pytest.raises(XqgError, match="no language 'ja'"):
        load_xnli(["ja"])
    assert load_xnli(["swa"], split="dev").langs == ("sw",)  # ISO 639-3 code standardised


def test_build_writes_every_task(tmp_path):
    out = build_benchmark("xnli", tmp_path / "x", langs=["en", "ur"], split="dev")
    m = json.loads((out / "manifest.json").read_text())
    c = m["counts"]
    assert c["passages"] == 830 and c["queries"] == 2 * 2490 and c["qrels.entailment"] == 2 * 830
    assert c["queries.premise"] == 830  # English has no premise query
    assert "test-en.labels.jsonl" not in m["inputs"]


def test_bad_file_names_the_line(tmp_path):
    d = tmp_path / "xnli"
    d.mkdir()
    for lang in ("en", "de"):
        (d / f"dev-{lang}.tsv").write_text("p\th\tentailment\n" * 2490, encoding="utf-8")
    with pytest.raises(DataFormatError, match="dev-en.tsv:1: a premise without one hypothesis"):
        read_xnli("dev", ["de"], data_dir=d)
    (d / "dev-en.tsv").write_text("p\th\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"dev-en.tsv:1: 2 tab-separated fields, expected 3"):
        read_xnli("dev", ["de"], data_dir=d)
