"""``xqg analyse resource-levels``: the language grouping, per-language / per-group recall@k and
precision@k on hand-built runs, zero gain for an identical system, R@kt on the PrimeQA XOR fixture
with the answer passage at a known rank, and the CLI end to end (XQuAD folders + XOR runs)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from xqg.analyse.resource_levels import (
    LANGUAGES,
    SystemScores,
    canonical_lang,
    check_exclude,
    details,
    exact_run,
    exclusion_reason,
    generated_langs,
    group_languages,
    headline,
    joshi_class,
    language_gap_test,
    precision_is_recall_over_k,
    qrels_scores,
    resource_group,
    section_markdown,
    summarise,
    xor_scores,
)
from xqg.data.benchmarks.mkqa import MKQA_LANGS
from xqg.data.benchmarks.xor_tydi import XOR_LANGS
from xqg.data.benchmarks.xquad import XQUAD_LANGS
from xqg.errors import XqgError
from xqg.render import fmt_p

# --- grouping ------------------------------------------------------------------------------------

# The classes as lang2tax.txt gives them (see the module docstring for the source), written out
# here independently of the module's table.
EXPECTED_CLASS = {
    "en": 5, "ar": 5, "de": 5, "es": 5, "ja": 5, "zh": 5, "zh_cn": 5,
    "fi": 4, "hi": 4, "ko": 4, "ru": 4, "sv": 4, "tr": 4, "vi": 4,
    "bn": 3, "el": 3, "ms": 3, "ro": 3, "th": 3,
    "km": 1, "te": 1,
}  # fmt: skip


@pytest.mark.parametrize("bench", [XQUAD_LANGS, XOR_LANGS, MKQA_LANGS], ids=["xquad", "xor-tydi", "mkqa"])
def test_grouping_covers_every_benchmark_language(bench):
    for lang in bench:
        assert joshi_class(lang) == EXPECTED_CLASS[lang], lang
        assert resource_group(lang) == ("high" if EXPECTED_CLASS[lang] >= 4 else "low")
        info = LANGUAGES[canonical_lang(lang)]
        assert info.wiki_articles > 0 and info.wiki_tokens > 0


def test_grouping_threshold_and_errors():
    assert group_languages(XQUAD_LANGS) == {
        "low": ["el", "ro", "th"],
        "high": ["ar", "de", "en", "es", "hi", "ru", "tr", "vi", "zh"],
    }
    assert group_languages(XOR_LANGS) == {"low": ["bn", "te"], "high": ["ar", "fi", "ja", "ko", "ru"]}
    assert group_languages(MKQA_LANGS)["low"] == ["km", "ms"]
    # Raising the threshold to 5 moves the class-4 languages to "low"; lowering it to 2 keeps only
    # the class-1 languages low.
    assert group_languages(XQUAD_LANGS, 5)["low"] == ["el", "hi", "ro", "ru", "th", "tr", "vi"]
    assert group_languages(XOR_LANGS, 2) == {"low": ["te"], "high": ["ar", "bn", "fi", "ja", "ko", "ru"]}
    assert resource_group(" zh_cn ", 5) == "high"
    for bad in (0, 6, True):
        with pytest.raises(XqgError, match="high_min_class"):
            resource_group("en", bad)
    with pytest.raises(XqgError, match="'sw'"):
        resource_group("sw")


# --- hand-built runs -----------------------------------------------------------------------------

QRELS = {
    "q1": {"d1": 1},
    "q2": {"d1": 1, "d2": 1, "d9": 0},  # two relevant: precision@k ≠ recall@k / k
    "q3": {"d5": 1},
    "q4": {"d2": 1},
    "q5": {"d3": 1},  # not in the run at all
}
QID_LANG = {"q1": "en", "q2": "en", "q3": "th", "q4": "te", "q5": "te"}
BASE_RUN = {
    "q1": {"d1": 0.9, "d2": 0.1},  # relevant at rank 1
    "q2": {"d3": 0.9, "d1": 0.8, "d4": 0.7, "d2": 0.6},  # relevant at ranks 2 and 4
    "q3": {"d1": 0.9, "d2": 0.8, "d5": 0.7},  # rank 3
    "q4": {"d1": 0.9, "d3": 0.8},  # not retrieved
}
KS = (1, 2, 4)
METRICS = ["recall@1", "recall@2", "recall@4", "precision@1", "precision@2", "precision@4", "mrr@10"]


def _scores(label: str, run: dict) -> SystemScores:
    return qrels_scores(label, run, QRELS, QID_LANG, KS)


def test_recall_precision_per_language_and_group_by_hand():
    s = _scores("base", BASE_RUN)
    assert precision_is_recall_over_k(s, QRELS, KS) is None  # q2 has two relevant documents
    summary = summarise([s], METRICS, n_resamples=100)
    lang = summary["per_language"]["base"]
    # en: q1 (rank 1 of 1 relevant), q2 (ranks 2, 4 of 2 relevant)
    assert lang["recall@1"]["en"] == pytest.approx((1 + 0) / 2)
    assert lang["recall@2"]["en"] == pytest.approx((1 + 0.5) / 2)
    assert lang["recall@4"]["en"] == pytest.approx((1 + 1) / 2)
    assert lang["precision@1"]["en"] == pytest.approx((1 + 0) / 2)
    assert lang["precision@2"]["en"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert lang["precision@4"]["en"] == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert lang["mrr@10"]["en"] == pytest.approx((1 + 1 / 2) / 2)
    # th: q3 at rank 3; te: q4 missed, q5 absent from the run → 0
    assert lang["recall@2"]["th"] == 0.0 and lang["recall@4"]["th"] == 1.0
    assert lang["precision@4"]["th"] == pytest.approx(1 / 4)
    assert lang["mrr@10"]["th"] == pytest.approx(1 / 3)
    assert all(lang[m]["te"] == 0.0 for m in METRICS)
    assert summary["counts"]["recall@1"] == {"en": 2, "th": 1, "te": 2}
    # Groups are macro averages over languages: low = (th + te) / 2, not the mean of its 3 queries.
    group = summary["per_group"]["base"]
    assert summary["groups"] == {"low": ["th", "te"], "high": ["en"]}
    assert group["recall@4"] == {"low": pytest.approx((1 + 0) / 2), "high": pytest.approx(1.0)}
    assert group["precision@4"]["low"] == pytest.approx((1 / 4 + 0) / 2)
    assert group["mrr@10"]["low"] == pytest.approx((1 / 3 + 0) / 2)
    assert summary["comparisons"] == {}


def test_identical_system_has_zero_gain_and_p_one():
    base, same = _scores("base", BASE_RUN), _scores("same", BASE_RUN)
    comp = summarise([base, same], METRICS, n_resamples=100)["comparisons"]["same"]
    for m in METRICS:
        for r in comp[m]["per_language"].values():
            assert r["gain"] == 0.0 and r["p"] == 1.0
        for g in ("low", "high"):
            r = comp[m]["per_group"][g]
            assert r["gain"] == 0.0 and r["p"] == 1.0 and (r["ci_low"], r["ci_high"]) == (0.0, 0.0)
        assert comp[m]["gap"]["gap_low_minus_high"] == 0.0 and comp[m]["gap"]["p"] == 1.0


def test_gains_and_tests_by_hand():
    better = dict(BASE_RUN, q3={"d5": 1.0, "d1": 0.9}, q4={"d2": 1.0})  # th and te found at rank 1
    summary = summarise([_scores("base", BASE_RUN), _scores("new", better)], METRICS, n_resamples=1000)
    c = summary["comparisons"]["new"]["recall@1"]
    assert c["per_language"]["th"]["gain"] == 1.0
    assert c["per_language"]["te"]["gain"] == pytest.approx(0.5)  # q4 found, q5 still absent
    assert c["per_language"]["en"]["gain"] == 0.0
    low, high = c["per_group"]["low"], c["per_group"]["high"]
    assert low["gain"] == pytest.approx((1 + 0.5) / 2) and high["gain"] == 0.0
    assert low["relative_gain"] is None  # baseline 0 in both low languages
    # Macro sign-flip test over the two non-zero differences, weighted 1/2 (th) and 1/4 (te): only
    # the all-plus and all-minus patterns reach |0.75| → p = 2/4, exact.
    assert low["p"] == pytest.approx(0.5) and low["exact"] is True
    # Gap over languages: gains en 0, th 1, te 0.5, two low → 3 assignments, |gap| ≥ 0.75 twice.
    gap = c["gap"]
    assert gap["gap_low_minus_high"] == pytest.approx(0.75)
    assert gap["p"] == pytest.approx(2 / 3) and gap["n_assignments"] == 3
    # At threshold 3 only te (class 1) is low: its gain 0.5 equals the high mean (0 + 1) / 2.
    sens = {
        r["high_min_class"]: r for r in summary["comparisons"]["new"]["recall@1"]["threshold_sensitivity"]
    }
    assert sens[3]["low"] == ["te"] and sens[3]["gap_low_minus_high"] == pytest.approx(0.5 - 0.5)
    assert 5 not in sens or sens[5]["low"] == sens[4]["low"]


# --- excluded languages (the control of an xQG experiment) ---------------------------------------

# Two queries per language, one relevant document each ("g-<qid>"), "x" a distractor. en is found at
# rank 1 by both systems (the control: nothing to gain); de and th go from rank 2 to rank 1; te stays
# at rank 2. recall@1 gains: en 0, de 1, th 1, te 0.
EX_QIDS = {"en": ["e1", "e2"], "de": ["d1", "d2"], "th": ["t1", "t2"], "te": ["u1", "u2"]}
EX_LANG = {q: lang for lang, qs in EX_QIDS.items() for q in qs}
EX_QRELS = {q: {f"g-{q}": 1} for q in EX_LANG}
EX_FIRST = {"base": {"en"}, "new": {"en", "de", "th"}}  # languages whose gold is at rank 1


def _ex_scores(label: str) -> SystemScores:
    run = {
        q: ({f"g-{q}": 2.0, "x": 1.0} if lang in EX_FIRST[label] else {"x": 2.0, f"g-{q}": 1.0})
        for q, lang in EX_LANG.items()
    }
    return qrels_scores(label, run, EX_QRELS, EX_LANG, (1, 2))


def test_exclude_language_changes_group_means_by_known_amount():
    systems = [_ex_scores("base"), _ex_scores("new")]
    metrics = ["recall@1", "recall@2"]
    full = summarise(systems, metrics, n_resamples=200)
    ex = summarise(systems, metrics, n_resamples=200, exclude=["EN "])  # spelling normalised
    assert full["groups"] == {"low": ["th", "te"], "high": ["en", "de"]} and full["excluded"] == []
    assert ex["groups"] == {"low": ["th", "te"], "high": ["de"]} and ex["excluded"] == ["en"]
    # Baseline high mean: (en 1 + de 0) / 2 = 0.5 with en, 0.0 without → −0.5; low is unchanged.
    assert full["per_group"]["base"]["recall@1"] == {"low": 0.0, "high": pytest.approx(0.5)}
    assert ex["per_group"]["base"]["recall@1"] == {"low": 0.0, "high": 0.0}
    # High gain: (0 + 1) / 2 = 0.5 with en, 1.0 without → +0.5; so the gap low − high goes 0 → −0.5.
    cf, ce = full["comparisons"]["new"]["recall@1"], ex["comparisons"]["new"]["recall@1"]
    assert cf["per_group"]["high"]["gain"] == pytest.approx(0.5)
    assert ce["per_group"]["high"]["gain"] == pytest.approx(1.0) and ce["per_group"]["high"]["langs"] == [
        "de"
    ]
    assert ce["per_group"]["low"]["gain"] == cf["per_group"]["low"]["gain"] == pytest.approx(0.5)
    assert cf["gap"]["gap_low_minus_high"] == pytest.approx(0.0) and cf["gap"]["n_assignments"] == 6
    # Without en: gains de 1, th 1, te 0, two low → C(3, 2) = 3 assignments with |gap| 1, 0.5, 0.5,
    # all ≥ the observed 0.5 → p = 1.
    assert ce["gap"]["gap_low_minus_high"] == pytest.approx(-0.5)
    assert ce["gap"]["n_assignments"] == 3 and ce["gap"]["p"] == pytest.approx(1.0)
    # Spearman over de, th, te: wiki-token ranks 3, 2, 1 vs gain ranks 2.5, 2.5, 1 → ρ = √3 / 2.
    assert ce["wiki_spearman"]["n_languages"] == 3
    assert ce["wiki_spearman"]["rho"] == pytest.approx(math.sqrt(3) / 2)
    assert ce["threshold_sensitivity"] and all(
        "en" not in r["low"] + r["high"] for r in ce["threshold_sensitivity"]
    )
    # Still reported per language, marked, with its own values.
    assert ex["langs"] == ["en", "de", "th", "te"]
    assert ex["per_language"]["base"]["recall@1"]["en"] == 1.0
    assert ce["per_language"]["en"] == {
        "n": 2, "baseline": 1.0, "system": 1.0, "gain": 0.0, "p": 1.0, "excluded": True
    }  # fmt: skip
    assert ce["per_language"]["de"]["excluded"] is False and ce["per_language"]["de"]["gain"] == 1.0
    md = section_markdown(ex, "test")
    assert "**Excluded: en**" in md and "| en (excluded) | high | 2 | 1.000 | +0.000" in md
    assert "high = class ≥ t, without en" in md
    full_detail = details(ex, "test")
    assert (
        "high-resource (de) +1.000 (from 0.000" in full_detail and "en left out of both groups" in full_detail
    )
    assert "high-resource (de, en) +0.500" in details(full, "test")
    # The headline: two quotable sentences with the verdict and each group's gain.
    head = headline(ex, "test")
    assert _sentences(head) <= 2 and len(head.split()) <= 60, head
    low = ", ".join(ex["groups"]["low"])
    assert f"On test recall@1, low-resource languages ({low}) gain significantly differently" in head
    assert "for 0 of 1 systems vs base (en excluded)." in head  # gap p = 1
    assert f"new +0.500/+1.000 (p {fmt_p(ce['gap']['p'])})" in head


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def test_headline_counts_the_systems_whose_gap_is_significant():
    comp = {"per_group": {"low": {"gain": 0.2}, "high": {"gain": 0.05}}, "gap": {"p": 0.01}}
    other = {"per_group": {"low": {"gain": -0.1}, "high": None}, "gap": None}
    summary = {
        "metrics": ["recall@1"],
        "baseline": "b",
        "groups": {"low": ["sw"], "high": ["de"]},
        "excluded": [],
        "comparisons": {"x": {"recall@1": comp}, "y": {"recall@1": other}},
    }
    head = headline(summary, "XQuAD test", alpha=0.05)
    assert "for 1 of 2 systems vs b." in head and _sentences(head) == 2
    assert "x +0.200/+0.050 (p 0.010), y -0.100/–." in head
    assert "for 0 of 2 systems" in headline(summary, "XQuAD test", alpha=0.001)


def test_rerender_reads_alpha_from_the_recorded_command(xquad_experiment, tmp_path):
    from xqg.analyse.common import rerender
    from xqg.analyse.resource_levels import run_analysis
    from xqg.analyse.resource_levels.render import _recorded_alpha

    assert _recorded_alpha("xqg analyse resource-levels --alpha 0.2 --out x") == 0.2
    assert _recorded_alpha("xqg analyse resource-levels --alpha=0.01") == 0.01
    assert _recorded_alpha(None) == 0.05
    systems = [f"base={xquad_experiment}", f"sys={xquad_experiment}:sys"]
    out = run_analysis(
        tmp_path / "rl", alpha=0.5, command="xqg analyse resource-levels --alpha 0.5", systems=systems,
        ks=(1, 5), rkt_ks=(), n_resamples=200,
    )  # fmt: skip
    md, js = (out / "analysis.md").read_bytes(), (out / "analysis.json").read_bytes()
    (out / "analysis.md").write_text("stale")
    rerender(out)  # same alpha → same significance marks and verdict
    assert (out / "analysis.md").read_bytes() == md and (out / "analysis.json").read_bytes() == js


def test_exclude_unknown_or_everything_is_an_error(tmp_path):
    from xqg.analyse.resource_levels import run_analysis

    assert check_exclude(["zh_cn", " ", "zh", "en"]) == ("zh", "en")
    with pytest.raises(XqgError, match="--exclude-langs: unknown language 'eng'"):
        check_exclude(["en", "eng"])
    systems = [_ex_scores("base"), _ex_scores("new")]
    with pytest.raises(XqgError, match="'xx'"):
        summarise(systems, ["recall@1"], n_resamples=10, exclude=["xx"])
    with pytest.raises(XqgError, match="leaves no language"):
        summarise(systems, ["recall@1"], n_resamples=10, exclude=["en", "de", "th", "te"])
    # Checked before any folder is read: the folder here does not exist.
    with pytest.raises(XqgError, match="unknown language 'eng'"):
        run_analysis(tmp_path / "out", systems=[f"a={tmp_path / 'nowhere'}"], exclude_langs=["eng"])


def test_exclusion_reason_from_generated_config(tmp_path):
    folder = tmp_path / "exp"
    (folder / "generated").mkdir(parents=True)
    assert generated_langs(folder / "missing") is None
    (folder / "generated" / "config.json").write_text("{not json", encoding="utf-8")
    assert generated_langs(folder) is None
    cfg = {"config": {"generator": {"langs": ["ar", "ZH-CN", "de"]}}}
    (folder / "generated" / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    assert generated_langs(folder) == ["ar", "zh", "de"]
    gen = {str(folder): generated_langs(folder)}
    reason = exclusion_reason(("en", "de"), None, gen)
    assert reason.startswith("no queries were generated in en, so en questions can gain nothing")
    assert "de was excluded by --exclude-langs although queries were generated in it" in reason
    assert exclusion_reason(("en",), "  my reason ", gen) == "my reason"
    assert "no readable generated/config.json" in exclusion_reason(("en",), None, {str(folder): None})
    assert exclusion_reason(("ko",), None, {}) == "excluded by --exclude-langs; no --exclude-reason given"


def test_language_gap_test_empty_group_and_monte_carlo():
    assert language_gap_test({"en": 0.1, "de": 0.2}, {"en": "high", "de": "high"}) is None
    gains = {f"l{i:02d}": float(i) for i in range(16)}
    groups = {k: ("low" if i < 8 else "high") for i, k in enumerate(gains)}
    exact = language_gap_test(gains, groups)
    assert exact["exact"] and exact["n_assignments"] == 12870
    assert exact["p"] == pytest.approx(2 / 12870)  # the most extreme split and its mirror image
    mc = language_gap_test(gains, groups, max_enumerate=10, n_resamples=2000)
    assert not mc["exact"] and mc["p"] == pytest.approx(exact["p"], abs=0.005)


def test_exact_run_inner_product_depth_and_ties():
    q = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    p = np.array([[3.0, 0.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.5]], dtype=np.float32)  # not unit length
    run = exact_run(["a", "b"], q, ["p0", "p1", "p2", "p3"], p, depth=2)
    assert run["a"] == {"p0": 3.0, "p1": 1.0, "p2": 1.0}  # p1 and p2 tie at the cut: both kept
    assert run["b"] == {"p1": 2.0, "p2": 2.0}
    with pytest.raises(XqgError, match="do not match"):
        exact_run(["a"], np.zeros((1, 3), np.float32), ["p0"], np.zeros((1, 2), np.float32), 1)


# --- R@kt on the PrimeQA XOR fixture -------------------------------------------------------------


@pytest.fixture(scope="module")
def xor_files(tmp_path_factory) -> dict:
    """The fixture's 100 passages + its answer passage, its Korean query with XOR-TyDi's gold answer,
    a hand-made Telugu query, and two runs that put the answer passage at known ranks."""
    from xqg.data.benchmarks import load_primeqa_xor_fixture, load_xor_tydi
    from xqg.data.corpus import write_corpus
    from xqg.data.runs import write_trec_run
    from xqg.data.xor import write_xor
    from xqg.evaluate.tokenize import word_tokenize
    from xqg.types import AnswerQuery, Passage

    root = tmp_path_factory.mktemp("rl-xor")
    fx = load_primeqa_xor_fixture()
    positive = fx.train[0].positive_passages[0]
    answer_doc = Passage("judged-1", positive.text, positive.title)
    corpus = [*fx.corpus, answer_doc]
    write_corpus(root / "corpus.jsonl", corpus)
    ko = next(a for a in load_xor_tydi("train", langs=["ko"]) if a.id == fx.query.id)
    assert ko.answers == ("Kangxi Emperor",)
    assert word_tokenize(positive.text)[:4] == ["The", "Kangxi", "Emperor", "'s"]
    before = fx.corpus[:4]  # ranks 1-4 in the baseline run; none holds the answer
    assert not any("Kangxi" in p.text for p in before)
    t_before = sum(len(word_tokenize(p.text)) for p in before)
    te_doc = fx.corpus[10]
    te_answer = " ".join(word_tokenize(te_doc.text)[:2])
    te = AnswerQuery("syn-te", "hand-made", "te", (te_answer,))
    write_xor(root / "gold.jsonl", [ko, te])
    ranked_base = [*(p.id for p in before), "judged-1", *(p.id for p in fx.corpus[4:10])]
    ranked_new = ["judged-1", *(p.id for p in before)]

    def run_of(ranked: list[str]) -> dict:
        return {
            ko.id: {d: float(100 - i) for i, d in enumerate(ranked)},
            te.id: {te_doc.id: 1.0, fx.corpus[11].id: 0.5},
        }

    write_trec_run(root / "base.trec", run_of(ranked_base))
    write_trec_run(root / "new.trec", run_of(ranked_new))
    return {"root": root, "t_before": t_before, "ko": ko.id, "te": te.id}


def test_rkt_answer_passage_at_known_rank(xor_files):
    root, t = xor_files["root"], xor_files["t_before"]
    ks = (2, 3, t + 2, t + 3)
    base, new = xor_scores(
        [("base", root / "base.trec"), ("new", root / "new.trec")],
        root / "gold.jsonl",
        root / "corpus.jsonl",
        ks,
    )
    ko, te = xor_files["ko"], xor_files["te"]
    # Baseline: the answer passage is 5th, after t tokens; "Kangxi Emperor" ends at its 3rd token.
    assert [base.per_query[f"R@{k}t"][ko] for k in ks] == [0.0, 0.0, 0.0, 1.0]
    # New run: answer passage first → hit from k = 3 on.
    assert [new.per_query[f"R@{k}t"][ko] for k in ks] == [0.0, 1.0, 1.0, 1.0]
    # Telugu: the answer is the first two tokens of the top passage in both runs.
    assert all(s.per_query[f"R@{k}t"][te] == 1.0 for s in (base, new) for k in ks)
    summary = summarise([base, new], [f"R@{k}t" for k in ks], n_resamples=100)
    assert summary["groups"] == {"low": ["te"], "high": ["ko"]}
    c = summary["comparisons"]["new"]
    assert c["R@3t"]["per_group"]["high"]["gain"] == 1.0 and c["R@3t"]["per_group"]["low"]["gain"] == 0.0
    assert c[f"R@{t + 3}t"]["per_group"]["high"]["gain"] == 0.0
    assert summary["per_group"]["base"][f"R@{t + 2}t"] == {"low": 1.0, "high": 0.0}


def test_rkt_unknown_language_and_missing_inputs(xor_files, tmp_path):
    from xqg.analyse.resource_levels import run_analysis
    from xqg.data.xor import write_xor
    from xqg.types import AnswerQuery

    root = xor_files["root"]
    write_xor(tmp_path / "sw.jsonl", [AnswerQuery("x", "q", "sw", ("a",))])
    with pytest.raises(XqgError, match="'sw' has no resource level"):
        xor_scores([("a", root / "base.trec")], tmp_path / "sw.jsonl", root / "corpus.jsonl")
    with pytest.raises(XqgError, match="--queries"):
        run_analysis(tmp_path / "out", runs=[str(root / "base.trec")])
    with pytest.raises(XqgError, match="--system"):
        run_analysis(tmp_path / "out")


# --- CLI end to end ------------------------------------------------------------------------------


def _write_vectors(folder: Path, ids: list[str], vecs: np.ndarray) -> None:
    """An embedding folder in the layout 'xqg encode' writes (one shard)."""
    from tests.test_analyse_alignment import _write_embeddings

    _write_embeddings(folder, ids, vecs)


@pytest.fixture(scope="module")
def xquad_experiment(tmp_path_factory) -> Path:
    """A fake experiment folder on real XQuAD test questions: one-hot passage vectors; every question
    scores one shared distractor 2 and its gold paragraph 1 (gold at rank 2). The fused system
    triples the gold paragraphs of the el and th questions (→ rank 1), leaving en and zh as they are."""
    from xqg.data.benchmarks.xquad import load_xquad

    bench = load_xquad(["en", "zh", "el", "th"], split="test")
    pids = [p.id for p in bench.corpus]
    col = {p: i for i, p in enumerate(pids)}
    chosen: list[str] = []
    golds: set[str] = set()
    for lang in ("en", "zh", "el", "th"):
        picked = 0
        for q in bench.queries[lang]:
            gold = next(iter(bench.qrels[q.id]))
            if gold not in golds and picked < 3:
                chosen.append(q.id)
                golds.add(gold)
                picked += 1
    distractor = next(p for p in pids if p not in golds)
    qv = np.zeros((len(chosen), len(pids)), np.float32)
    fused = np.eye(len(pids), dtype=np.float32)
    for i, qid in enumerate(chosen):
        gold = next(iter(bench.qrels[qid]))
        qv[i, col[gold]], qv[i, col[distractor]] = 1.0, 2.0
        if bench.qid_lang[qid] in ("el", "th"):
            fused[col[gold], col[gold]] = 3.0
    root = tmp_path_factory.mktemp("rl-exp") / "exp"
    _write_vectors(root / "embeddings", pids, np.eye(len(pids), dtype=np.float32))
    _write_vectors(root / "fused-sys", pids, fused)
    _write_vectors(root / "queries-test", chosen, qv)
    (root / "generated").mkdir()
    gen = {"config": {"generator": {"langs": ["zh", "el", "th"]}}}  # as 'xqg experiment' records it
    (root / "generated" / "config.json").write_text(json.dumps(gen), encoding="utf-8")
    return root


def test_cli_writes_analysis_for_both_paths(xquad_experiment, xor_files, tmp_path):
    from typer.testing import CliRunner

    from xqg.cli import app

    root, t = xor_files["root"], xor_files["t_before"]
    out = tmp_path / "rl"
    res = CliRunner().invoke(
        app,
        [
            "analyse", "resource-levels",
            "--system", f"base={xquad_experiment}", "--system", f"sys={xquad_experiment}:sys",
            "--k", "1,5", "--rkt-k", "none",
            "--run", f"base={root / 'base.trec'}", "--run", f"new={root / 'new.trec'}",
            "--queries", str(root / "gold.jsonl"), "--corpus", str(root / "corpus.jsonl"),
            "--xor-rkt-k", f"3,{t + 3}", "--n-resamples", "200", "--out", str(out),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output + repr(res.exception)
    for name in ("analysis.json", "analysis.md", "resource_levels.png", "manifest.json"):
        assert (out / name).is_file(), name
    assert (out / "resource_levels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    assert doc["name"] == "resource-levels" and doc["command"].startswith(
        "xqg analyse resource-levels --system"
    )
    xq = doc["data"]["xquad"]
    assert xq["groups"] == {"low": ["el", "th"], "high": ["en", "zh"]}
    assert xq["precision_is_recall_over_k"] == [True, True]
    for lang in ("en", "zh", "el", "th"):
        assert xq["per_language"]["base"]["recall@1"][lang] == 0.0  # gold always 2nd
        assert xq["per_language"]["base"]["recall@5"][lang] == 1.0
        assert xq["per_language"]["base"]["precision@5"][lang] == pytest.approx(0.2)
        assert xq["per_language"]["base"]["mrr@10"][lang] == 0.5
    comp = xq["comparisons"]["sys"]
    assert comp["recall@1"]["per_group"]["low"]["gain"] == 1.0
    assert comp["recall@1"]["per_group"]["high"]["gain"] == 0.0
    assert comp["recall@1"]["per_group"]["low"]["p"] == pytest.approx(2 / 2**6)  # 6 queries, exact
    assert comp["recall@1"]["gap"]["p"] == pytest.approx(2 / 6)  # C(4, 2) = 6 assignments
    assert comp["mrr@10"]["per_language"]["th"]["gain"] == 0.5
    xor = doc["data"]["xor"]
    assert xor["comparisons"]["new"]["R@3t"]["per_group"]["high"]["gain"] == 1.0
    md = (out / "analysis.md").read_text(encoding="utf-8")
    assert "XQuAD test" in md and "XOR-TyDi-format runs" in md and "![resource_levels.png]" in md
    assert "low-resource (el, th) +1.000" in md  # the details paragraph
    # Bad input: a CLI error, not a traceback.
    res = CliRunner().invoke(app, ["analyse", "resource-levels", "--out", str(tmp_path / "x"), "--k", "a"])
    assert isinstance(res.exception, XqgError) and "--k" in str(res.exception)


def test_cli_exclude_langs(xquad_experiment, tmp_path):
    from typer.testing import CliRunner

    from xqg.analyse.resource_levels import run_analysis
    from xqg.cli import app

    out = tmp_path / "rl"
    args = ["analyse", "resource-levels", "--system", f"base={xquad_experiment}"]
    args += ["--system", f"sys={xquad_experiment}:sys", "--k", "1,5", "--rkt-k", "none"]
    res = CliRunner().invoke(app, [*args, "--n-resamples", "200", "--exclude-langs", "en", "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    doc = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    assert "--exclude-langs en" in doc["command"]
    xq = doc["data"]["xquad"]
    assert xq["groups"] == {"low": ["el", "th"], "high": ["zh"]} and xq["excluded"] == ["en"]
    comp = xq["comparisons"]["sys"]["recall@1"]
    assert comp["per_language"]["en"]["excluded"] is True and comp["per_language"]["en"]["gain"] == 0.0
    assert comp["per_group"]["high"]["langs"] == ["zh"]
    # Gains zh 0, el 1, th 1 → observed gap 1; the other two assignments give −0.5 → p = 1/3.
    assert comp["gap"]["gap_low_minus_high"] == 1.0 and comp["gap"]["p"] == pytest.approx(1 / 3)
    excl = doc["data"]["exclusion"]
    assert excl["langs"] == ["en"] and excl["generated_langs"] == {str(xquad_experiment): ["zh", "el", "th"]}
    assert excl["reasons"]["XQuAD test"].startswith("no queries were generated in en")
    md = (out / "analysis.md").read_text(encoding="utf-8")
    assert "en left out of both groups (no queries were generated in en" in md
    assert "high-resource (zh) +0.000" in md and "(en excluded)" in doc["headline"]
    assert "## Excluded languages" in md and "| en (excluded) | high |" in md
    assert f"{xquad_experiment} generated queries in zh, el, th" in md
    assert "XQuAD test: 2 low vs 1 high" in md
    # A known language that is not among the analysed queries is an error, not a silent no-op.
    with pytest.raises(XqgError, match="km not among the analysed languages"):
        run_analysis(
            tmp_path / "x", systems=[f"base={xquad_experiment}"], ks=(1,), rkt_ks=(), exclude_langs=["km"]
        )
