"""The lever selections and the leave-one-out human-question oracle, on small known vectors."""

from __future__ import annotations

import numpy as np
import pytest

from xqg.augment import get_fusion
from xqg.experiments.augmentation import CorpusVectors, SplitVectors
from xqg.experiments.levers import (
    dedup,
    drop_outliers,
    first_n,
    fused_passages,
    mmr,
    passage_weights,
    rel_gain,
    round_trip_best,
)
from xqg.experiments.oracle import HumanQuestions, oracle_scores


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _cv(seed: int = 0, passages: int = 4, langs=("ar", "de"), n: int = 6, d: int = 8) -> CorpusVectors:
    rng = np.random.default_rng(seed)
    p = _unit(rng.normal(size=(passages, d)))
    rows, lang, sample, vecs = [], [], [], []
    for r in range(passages):
        for x in langs:
            for s in range(n):
                rows.append(r)
                lang.append(x)
                sample.append(s)
                vecs.append(_unit(p[r] + 0.8 * rng.normal(size=d)))
    g = np.array(vecs, dtype=np.float32)
    gen_row = np.array(rows)
    scores = g @ p.astype(np.float32).T
    own = scores[np.arange(len(g)), gen_row]
    rank = (scores > own[:, None]).sum(1) + 1
    return CorpusVectors(
        pids=[f"p{i}" for i in range(passages)],
        passages=p,
        gen=g,
        gen_lang=np.array(lang, dtype=object),
        gen_sample=np.array(sample),
        gen_row=gen_row,
        gen_rank=rank,
    )


def test_first_n_and_dedup_drop_exact_duplicates() -> None:
    cv = _cv()
    full = first_n(cv, 6, ["ar", "de"])
    assert full.all()
    assert first_n(cv, 2, ["ar"]).sum() == 4 * 2
    # make sample 1 of every (passage, ar) a copy of sample 0: dedup must drop exactly those
    for r in range(4):
        i0 = np.flatnonzero((cv.gen_row == r) & (cv.gen_lang == "ar") & (cv.gen_sample == 0))[0]
        i1 = np.flatnonzero((cv.gen_row == r) & (cv.gen_lang == "ar") & (cv.gen_sample == 1))[0]
        cv.gen[i1] = cv.gen[i0]
    keep = dedup(cv, full, 0.9999)
    dropped = np.flatnonzero(~keep)
    assert len(dropped) == 4
    assert set(cv.gen_sample[dropped]) == {1} and set(cv.gen_lang[dropped]) == {"ar"}
    assert dedup(cv, full, -1.0).sum() == 4  # everything is a "duplicate" of the first: one per passage


def test_mmr_and_round_trip_best_keep_k_per_passage_and_language() -> None:
    cv = _cv(1)
    full = first_n(cv, 6, ["ar", "de"])
    for keep in (mmr(cv, full, 3, 0.7), round_trip_best(cv, full, 3)):
        for r in range(4):
            for x in ("ar", "de"):
                assert keep[(cv.gen_row == r) & (cv.gen_lang == x)].sum() == 3
    # λ = 1 is pure relevance: the 3 queries closest to the passage
    rel = np.einsum("ij,ij->i", cv.gen, cv.passages.astype(np.float32)[cv.gen_row])
    keep = mmr(cv, full, 3, 1.0)
    for r in range(4):
        m = (cv.gen_row == r) & (cv.gen_lang == "ar")
        assert set(np.flatnonzero(keep & m)) == set(np.flatnonzero(m)[np.argsort(-rel[m])[:3]])
    # round-trip best prefers rank 1 queries
    keep = round_trip_best(cv, full, 1)
    m = (cv.gen_row == 0) & (cv.gen_lang == "de")
    assert cv.gen_rank[keep & m][0] == cv.gen_rank[m].min()


def test_outliers_and_weights() -> None:
    cv = _cv(2)
    full = first_n(cv, 6, ["ar", "de"])
    keep = drop_outliers(cv, full, 0.25)
    assert all(keep[cv.gen_row == r].sum() == 12 - 3 for r in range(4))
    w = passage_weights(cv, full, 0.05)
    assert all(w[cv.gen_row == r].sum() == pytest.approx(12) for r in range(4))
    # uniform weights reproduce the unweighted fusion
    a = fused_passages(cv, full, None, "mean-norm", 0.4)
    b = fused_passages(cv, full, np.ones(len(full)), "mean-norm", 0.4)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    # large τ → uniform weights
    np.testing.assert_allclose(passage_weights(cv, full, 1e6), 1.0, rtol=1e-5)


def test_oracle_leaves_the_scored_question_out_of_its_gold_passage_only() -> None:
    cv = _cv(3)
    rng = np.random.default_rng(9)
    d = cv.passages.shape[1]
    # two human questions per passage (groups g{r}a, g{r}b), each in two languages
    rows, groups, vecs = [], [], []
    for r in range(4):
        for g in ("a", "b"):
            for _ in range(2):
                rows.append(r)
                groups.append(f"g{r}{g}")
                vecs.append(_unit(cv.passages[r] + rng.normal(size=d)))
    human = HumanQuestions(np.array(vecs, dtype=np.float32), np.array(rows), np.array(groups, dtype=object))
    split = SplitVectors("dev", ["q0", "q1"], np.array(["ar", "de"], dtype=object),
                         human.vectors[[0, 6]].copy(), np.array([0, 1]))  # fmt: skip
    split_group = np.array(["g0a", "g1b"], dtype=object)
    s = oracle_scores(split, split_group, cv, human, "mean-norm", 0.5)
    fuse = get_fusion("mean-norm")
    # other passages see all their human questions
    full_sum = np.zeros_like(cv.passages)
    np.add.at(full_sum, human.row, human.vectors.astype(np.float64))
    cnt = np.bincount(human.row, minlength=4).astype(float)
    fused = fuse(cv.passages, full_sum, cnt, 0.5).astype(np.float32)
    np.testing.assert_allclose(s[0, 1:], split.vectors[0] @ fused[1:].T, rtol=1e-5)
    # the gold passage without the scored question's group (both languages)
    loo = human.group != "g0a"
    own_sum = human.vectors[loo & (human.row == 0)].astype(np.float64).sum(0)[None]
    own = fuse(cv.passages[[0]], own_sum, np.array([2.0]), 0.5).astype(np.float32)[0]
    assert s[0, 0] == pytest.approx(float(split.vectors[0] @ own), rel=1e-5)
    assert s[0, 0] < float(split.vectors[0] @ fused[0])  # its own copy no longer inflates the gold score


def test_rel_gain_skips_english() -> None:
    langs = np.array(["en", "en", "ar", "ar"], dtype=object)
    assert rel_gain(np.array([0.0, 0.0, 1.0, 0.5]), np.array([1.0, 1.0, 0.5, 0.5]), langs) == pytest.approx(
        0.5
    )


def test_side_by_side_reads_two_experiment_results(tmp_path) -> None:
    import json
    from pathlib import Path

    from xqg.experiments.levers_report import write_side_by_side

    src = Path(__file__).parents[1] / "reports" / "xquad-xqg" / "results.json"
    old = json.loads(src.read_text(encoding="utf-8"))
    new = json.loads(src.read_text(encoding="utf-8"))
    new["systems"]["tuned"]["langs"]["ar"]["values"]["mrr@10"] = 0.5
    new["systems"]["tuned"]["describe"] = "mean-norm, α=0.5, n=10"
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps(old), encoding="utf-8")
    (tmp_path / "new" / "results.json").write_text(json.dumps(new), encoding="utf-8")
    out = write_side_by_side(tmp_path / "old" / "results.json", tmp_path / "new" / "results.json",
                             tmp_path / "new" / "compare.md")  # fmt: skip
    text = out.read_text(encoding="utf-8")
    ar = next(line for line in text.splitlines() if line.startswith("| ar |"))
    assert ar.split(" | ")[2] == "0.815" and ar.split(" | ")[4] == "0.500"
    assert "| new | mean-norm, α=0.5, n=10 |" in text and "| old | mean-norm, α=0.5, n=5 |" in text


def test_a_missing_generation_folder_fails_before_any_model_loads(tmp_path) -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "xqg.experiments.levers", "xquad-xqg",
         "--generated", str(tmp_path / "nothing"), "--out", str(tmp_path / "w")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "nothing: no such folder" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "w" / "embeddings").exists()  # no model ran


def test_sentence_units_join_short_sentences_and_keep_every_word() -> None:
    from xqg.experiments.levers import sentence_units

    text = (
        "Short one. This sentence is long enough to stand alone as a unit. Tiny. "
        "Another long sentence follows it here."
    )
    units = sentence_units(text, min_chars=40)
    assert units == [
        "Short one. This sentence is long enough to stand alone as a unit.",
        "Tiny. Another long sentence follows it here.",
    ]
    assert " ".join(units).split() == text.split()
    assert sentence_units("Too short.", min_chars=40) == ["Too short."]  # a lone short passage stays whole


def test_sentence_corpus_ids_map_back_to_their_passage(tmp_path) -> None:
    import json

    from xqg.experiments.levers import sentence_parent, write_sentence_corpus
    from xqg.types import Passage

    ps = [
        Passage("Art#0", "A first sentence, long enough here. A second one, long enough as well.", "Art"),
        Passage("Art#1", "Only one sentence in this passage, long enough.", "Art"),
    ]
    counts = write_sentence_corpus(ps, tmp_path / "s.jsonl", min_chars=20)
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()]
    assert counts == {"passages": 2, "sentences": 3}
    assert [r["_id"] for r in rows] == ["Art#0#s0", "Art#0#s1", "Art#1#s0"]
    assert all(r["title"] == "Art" for r in rows)
    assert [sentence_parent(r["_id"]) for r in rows] == ["Art#0", "Art#0", "Art#1"]
    assert sentence_parent("Art#3") == "Art#3" and sentence_parent("x#sy") == "x#sy"  # not a sentence id


def test_per_sentence_queries_load_onto_their_passage_with_renumbered_samples(tmp_path) -> None:
    from tests.test_analyse_alignment import _write_embeddings
    from xqg.experiments.augmentation import _load_corpus_vectors
    from xqg.experiments.levers import sentence_parent

    rng = np.random.default_rng(1)
    p = _unit(rng.normal(size=(2, 4))).astype(np.float32)
    _write_embeddings(tmp_path / "emb", ["a", "b"], p)
    gids = ["ar:0:a#s0", "de:0:a#s0", "ar:0:a#s1", "de:0:a#s1", "ar:0:b#s0", "ar:1:b#s0"]
    g = _unit(rng.normal(size=(len(gids), 4))).astype(np.float32)
    _write_embeddings(tmp_path / "gen", gids, g)
    cv = _load_corpus_vectors(tmp_path / "emb", tmp_path / "gen", parent_of=sentence_parent)
    assert cv.gen_row.tolist() == [0, 0, 0, 0, 1, 1]
    assert cv.gen_sample.tolist() == [0, 0, 1, 1, 0, 1]  # per (passage, language), in row order
    assert first_n(cv, 1, ["ar"]).tolist() == [True, False, False, False, True, False]


def test_joined_sources_score_alone_and_together() -> None:
    from xqg.experiments.levers import extra_levers, join_sources

    a, b = _cv(seed=0, n=6), _cv(seed=1, n=3)
    b.passages = a.passages  # the same corpus
    joined, source = join_sources(a, b)
    assert len(joined.gen) == len(a.gen) + len(b.gen) and source.sum() == len(b.gen)
    levers = {lv.name: lv for lv in extra_levers("x", source, [1, 3], ["ar", "de"])}
    alone, _ = levers["x n=3"].select(joined)
    assert alone.sum() == len(b.gen) and not alone[source == 0].any()
    union, _ = levers["n=5 + x n=5"].select(joined)
    assert union[source == 0].sum() == 4 * 2 * 5 and union[source == 1].all()
    with pytest.raises(ValueError, match="different corpora"):
        c = _cv(passages=3)
        join_sources(a, c)
