"""Hard-negative mining: BM25 and dense rankings, positives never chosen, skip and k respected."""

from __future__ import annotations

import json

import pytest

from xqg.errors import XqgError
from xqg.train.negatives import mine_negatives, write_rows_tevatron, xquad_mining_inputs

CORPUS = [
    "the eiffel tower is in paris france",
    "paris is the capital of france and its largest city",
    "the tower of london is a castle on the thames",
    "bananas are yellow fruit rich in potassium",
    "the louvre museum in paris holds the mona lisa",
]


def test_bm25_negatives_are_the_best_lexical_non_positives():
    rows = [("where is the eiffel tower in paris", CORPUS[0], ())]
    out = mine_negatives(rows, CORPUS, method="bm25", k=2, depth=5)
    negs = out[0][2]
    assert CORPUS[0] not in negs and len(negs) == 2
    assert CORPUS[3] not in negs  # no shared term: never a *hard* negative ahead of paris/tower passages
    skipped = mine_negatives(rows, CORPUS, method="bm25", k=1, skip=1, depth=5)[0][2]
    assert skipped[0] == negs[1]  # skip drops the top non-positive


def test_mining_text_replaces_the_query_for_search():
    rows = [("أين برج إيفل", CORPUS[0], ())]  # Arabic: no lexical overlap with the English corpus
    out = mine_negatives(rows, CORPUS, method="bm25", k=1, depth=5, mining_text=["eiffel tower paris"])
    assert out[0][0] == "أين برج إيفل" and out[0][2][0] in (CORPUS[1], CORPUS[4], CORPUS[2])


def test_dense_mining_never_returns_the_positive(tiny_encoder_config):
    from xqg.models.encoder import BiEncoder

    enc = BiEncoder(tiny_encoder_config)
    rows = [(c.split()[1] + " question", c, ()) for c in CORPUS]
    out = mine_negatives(rows, CORPUS, method="dense", k=3, depth=5, encoder=enc)
    for (q, pos, negs), row in zip(out, rows, strict=True):
        assert q == row[0] and pos == row[1] and pos not in negs and len(set(negs)) == 3


def test_too_few_candidates_is_a_clear_error():
    with pytest.raises(XqgError, match="only 1 negatives left"):
        mine_negatives([("paris", CORPUS[1], ())], CORPUS[:2], method="bm25", k=2, depth=5)
    with pytest.raises(XqgError, match="needs an encoder"):
        mine_negatives([("paris", CORPUS[1], ())], CORPUS, method="dense")


def test_xquad_mining_uses_train_paragraphs_and_english_questions(tmp_path):
    from xqg.data.benchmarks.xquad import load_xquad

    rows, corpus, english = xquad_mining_inputs(["ar"])
    train_paras = {p.text for p in load_xquad(["en"], split="train").paragraphs_in("train")}
    assert set(corpus) == train_paras and len(corpus) < 240
    assert len(rows) == len(english) and all(r[1] in train_paras for r in rows)
    en_train = {q.text for q in load_xquad(["en"], split="train").all_queries()}
    assert set(english) <= en_train
    mined = mine_negatives(rows[:20], corpus, method="bm25", k=1, mining_text=english[:20])
    assert write_rows_tevatron(tmp_path / "t.jsonl", mined) == 20
    first = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert first["positive_passages"][0]["text"] == rows[0][1]
    assert first["negative_passages"][0]["text"] != rows[0][1]
