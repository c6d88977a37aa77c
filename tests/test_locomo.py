"""LoCoMo loader on the real release: counts, repaired evidence, skipped questions, bad files."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from xqg.data.benchmarks.locomo import load_locomo
from xqg.errors import DataFormatError, XqgError
from xqg.paths import data_root

LOCOMO = data_root() / "locomo" / "locomo10.json"
pytestmark = pytest.mark.skipif(not LOCOMO.is_file(), reason="LoCoMo data not available")

SKIPPED_EMPTY = {"conv-26:q30", "conv-26:q46", "conv-50:q39", "conv-50:q42"}


@pytest.fixture(scope="module")
def bench():
    return load_locomo()


def test_counts(bench):
    c = bench.counts
    assert len(bench.conversations) == c["conversations"] == 10
    assert len(bench.corpus) == c["turns"] == 5882
    assert len({p.id for p in bench.corpus}) == 5882
    assert c["questions"] == 1986 and c["turns_with_caption"] == 1226 and c["sessions"] == 272
    assert set(bench.skipped) == SKIPPED_EMPTY and c["questions_skipped"] == 4
    assert len(bench.queries) == len(bench.qrels) == c["questions_kept"] == 1986 - 4
    assert all(q.lang == "en" for q in bench.queries)
    # every judged turn exists, and belongs to the question's own conversation
    ids = {p.id for p in bench.corpus}
    for qid, rel in bench.qrels.items():
        assert rel and set(rel) <= ids
        assert {bench.turn_conversation[d] for d in rel} == {bench.query_conversation[qid]}
    assert Counter(bench.query_category.values()) == {4: 841, 5: 446, 2: 321, 1: 282, 3: 96 - 4}


def test_evidence_repairs_are_counted(bench):
    c = bench.counts
    assert (c["evidence_split"], c["evidence_canonicalised"]) == (4, 2)
    assert (c["evidence_malformed"], c["evidence_missing"]) == (1, 2)
    assert bench.qrels["conv-26:q37"] == {"conv-26:D8:6": 1, "conv-26:D9:17": 1}  # "D8:6; D9:17"
    assert "conv-43:D11:26" in bench.qrels["conv-43:q18"]  # "D:11:26"
    assert bench.qrels["conv-50:q69"] == {"conv-50:D30:5": 1}  # "D30:05"
    assert bench.qrels["conv-42:q88"] == {"conv-42:D1:18": 1, "conv-42:D1:20": 1}  # "D" dropped
    missing = {(i.query_id, i.raw) for i in bench.issues if i.kind == "missing"}
    assert missing == {("conv-42:q58", "D10:19"), ("conv-47:q38", "D4:36")}


def test_without_repair_more_questions_are_skipped():
    strict = load_locomo(repair=False)
    assert strict.counts["questions_skipped"] == 9
    assert set(strict.skipped) == SKIPPED_EMPTY | {
        "conv-26:q37",
        "conv-49:q31",
        "conv-49:q38",
        "conv-49:q46",
        "conv-50:q69",
    }


def test_turn_text_and_captions(bench):
    by_id = {p.id: p for p in bench.corpus}
    assert by_id["conv-26:D1:3"].text == (
        "Caroline: I went to a LGBTQ support group yesterday and it was so powerful."
    )
    assert by_id["conv-26:D1:5"].text.endswith(
        "[shares a photo of a dog walking past a wall with a painting of a woman]"
    )
    plain = {p.id: p for p in load_locomo(captions=False).corpus}
    assert "[shares" not in plain["conv-26:D1:5"].text and plain["conv-26:D1:5"].text.startswith("Caroline: ")


def test_subset_keeps_corpus(bench):
    sub = bench.subset(["conv-26:q0", "conv-26:q2"])
    assert [q.id for q in sub.queries] == ["conv-26:q0", "conv-26:q2"]
    assert sub.corpus is bench.corpus and set(sub.qrels) == {"conv-26:q0", "conv-26:q2"}
    assert sub.qrels["conv-26:q2"] == {"conv-26:D1:9": 1, "conv-26:D1:11": 1}
    with pytest.raises(XqgError, match="no question"):
        bench.subset(["conv-26:q9999"])


def test_bad_files_name_the_field(tmp_path):
    conv = {
        "sample_id": "c1",
        "conversation": {
            "speaker_a": "A",
            "speaker_b": "B",
            "session_1": [{"speaker": "A", "dia_id": "D1:1", "text": "hi"}],
        },
        "qa": [{"question": "what?", "evidence": "D1:1", "category": 1}],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([conv]), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.json.*\[0\]\.qa\[0\]\.evidence"):
        load_locomo(path)
    conv["qa"][0]["evidence"] = ["D1:1"]
    conv["conversation"]["session_1"].append({"speaker": "B", "dia_id": "D1:1", "text": "again"})
    path.write_text(json.dumps([conv]), encoding="utf-8")
    with pytest.raises(DataFormatError, match="duplicate turn id"):
        load_locomo(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match="invalid JSON"):
        load_locomo(path)
    with pytest.raises(XqgError, match="not found"):
        load_locomo(tmp_path / "missing.json")
