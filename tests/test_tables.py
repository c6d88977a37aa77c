"""Per-language tables: macro/micro rows, None handling, baseline columns, Markdown/JSON output."""

from __future__ import annotations

import json

import pytest

from xqg.errors import XqgError
from xqg.evaluate.significance import macro_paired_test, paired_test
from xqg.evaluate.tables import LanguageTable

QID_LANG = {"j1": "ja", "j2": "ja", "j3": "ja", "k1": "ko"}
SYSTEM = {
    "mrr@10": {"j1": 1.0, "j2": 0.5, "j3": 0.0, "k1": 0.25},
    "R@2kt": {"j1": 1.0, "j2": None, "j3": 0.0, "k1": 1.0},  # j2: yes/no only
}
BASELINE = {
    "mrr@10": {"j1": 0.5, "j2": 0.5, "j3": 0.0, "k1": 0.25},
    "R@2kt": {"j1": 0.0, "j2": None, "j3": 0.0, "k1": 0.0},
}


def row(table, label):
    return next(r for r in table.rows if r.label == label)


def test_rows_means_counts_and_macro_vs_micro():
    t = LanguageTable.build(SYSTEM, QID_LANG, micro=True)
    assert [r.label for r in t.rows] == ["ja", "ko", "avg", "micro"]
    ja, ko, avg, micro = t.rows
    assert ja.n == {"mrr@10": 3, "R@2kt": 2} and ko.n == {"mrr@10": 1, "R@2kt": 1}
    assert ja.values["mrr@10"] == pytest.approx(0.5) and ko.values["mrr@10"] == 0.25
    assert ja.values["R@2kt"] == 0.5  # None left out: 1 of 2
    # Macro: mean of language means; micro: mean of all queries.
    assert avg.values["mrr@10"] == pytest.approx((0.5 + 0.25) / 2)
    assert micro.values["mrr@10"] == pytest.approx(1.75 / 4)
    assert avg.values["R@2kt"] == pytest.approx(0.75) and micro.values["R@2kt"] == pytest.approx(2 / 3)
    assert avg.n == {"mrr@10": 4, "R@2kt": 3}


def test_language_order_and_empty_languages():
    t = LanguageTable.build(SYSTEM, QID_LANG, langs=["ko", "fi", "ja"])
    assert [r.label for r in t.rows] == ["ko", "fi", "ja", "avg"]
    fi = row(t, "fi")
    assert fi.n == {"mrr@10": 0, "R@2kt": 0} and fi.values["mrr@10"] is None
    # fi does not drag the macro average down.
    assert row(t, "avg").values["mrr@10"] == pytest.approx(0.375)
    with pytest.raises(XqgError, match="'ko'.*not in langs"):
        LanguageTable.build(SYSTEM, QID_LANG, langs=["ja"])
    with pytest.raises(XqgError, match="no language: 'x'"):
        LanguageTable.build({"m": {"x": 1.0}}, QID_LANG)


def test_baseline_columns_match_significance_module():
    t = LanguageTable.build(SYSTEM, QID_LANG, baseline=BASELINE, micro=True, n_resamples=1000, seed=3)
    ja = row(t, "ja")
    assert ja.delta["mrr@10"] == pytest.approx(0.5 / 3)
    expected = paired_test(
        {q: SYSTEM["mrr@10"][q] for q in ("j1", "j2", "j3")},
        {q: BASELINE["mrr@10"][q] for q in ("j1", "j2", "j3")},
        method="permutation",
        n_resamples=1000,
        seed=3,
    )
    assert ja.p["mrr@10"] == expected.p_permutation == 1.0  # one non-zero difference: 2 of 2 patterns
    avg = row(t, "avg")
    sys_r = {q: v for q, v in SYSTEM["R@2kt"].items() if v is not None}
    base_r = {q: v for q, v in BASELINE["R@2kt"].items() if v is not None}
    macro = macro_paired_test(sys_r, base_r, QID_LANG, n_resamples=1000, seed=3)
    assert avg.delta["R@2kt"] == pytest.approx(macro.delta) == pytest.approx((0.5 + 1.0) / 2)
    assert avg.p["R@2kt"] == macro.p_permutation
    micro = row(t, "micro")
    assert micro.delta["R@2kt"] == pytest.approx(2 / 3)
    assert (
        micro.p["R@2kt"]
        == paired_test(sys_r, base_r, method="permutation", n_resamples=1000, seed=3).p_permutation
    )

    tt = LanguageTable.build(SYSTEM, QID_LANG, baseline=BASELINE, test="ttest")
    assert row(tt, "avg").p["mrr@10"] is None  # no t-test for a macro average
    assert row(tt, "ja").p["mrr@10"] == pytest.approx(
        paired_test({"j1": 1.0, "j2": 0.5, "j3": 0.0}, {"j1": 0.5, "j2": 0.5, "j3": 0.0}).p_ttest
    )


def test_baseline_must_cover_the_same_queries():
    bad = {"mrr@10": {"j1": 0.5, "j2": 0.5, "k1": 0.25}, "R@2kt": BASELINE["R@2kt"]}
    with pytest.raises(XqgError, match=r"mrr@10.*only in a: 'j3'"):
        LanguageTable.build(SYSTEM, QID_LANG, baseline=bad)
    with pytest.raises(XqgError, match="baseline lacks metric"):
        LanguageTable.build(SYSTEM, QID_LANG, baseline={"mrr@10": BASELINE["mrr@10"]})


def test_markdown_rendering():
    t = LanguageTable.build({"mrr@10": SYSTEM["mrr@10"]}, QID_LANG, title="Dev")
    md = t.to_markdown(digits=2)
    lines = md.splitlines()
    assert lines[0] == "**Dev**"
    assert lines[2] == "| lang | n | mrr@10 |"
    assert lines[3] == "|---|---:|---:|"
    assert lines[4] == "| ja | 3 | 0.50 |"
    assert lines[6] == "| avg | 4 | 0.38 |"
    assert "macro average" in md

    # Different counts per metric → one n column per metric; Δ and p columns with a baseline.
    t2 = LanguageTable.build(SYSTEM, QID_LANG, baseline=BASELINE, langs=["ja", "ko", "fi"], scale=100)
    md2 = t2.to_markdown(digits=1)
    assert (
        "| lang | n (mrr@10) | n (R@2kt) | mrr@10 | Δ mrr@10 | p mrr@10 | p(t) mrr@10 "
        "| R@2kt | Δ R@2kt | p R@2kt | p(t) R@2kt |" in md2
    )
    assert "| fi | 0 | 0 | – | – | – | – | – | – | – | – |" in md2
    # ja, mrr@10: differences (0.5, 0, 0) → t = 1, df = 2 → p = 0.423.
    # ja, R@2kt: differences (1, 0) → t = 1, df = 1 → p = 0.5.
    assert "| ja | 3 | 2 | 50.0 | +16.7 | 1.0 | 0.4 | 50.0 | +50.0 | 1.0 | 0.5 |" in md2
    ja = row(t2, "ja")
    assert ja.p_ttest["mrr@10"] == pytest.approx(0.42264973, abs=1e-6)
    assert row(t2, "avg").p_ttest["mrr@10"] is None  # no t-test for a macro average
    assert "values × 100" in md2


def test_tiny_p_values_are_floored_in_markdown():
    a = {f"q{i}": 1.0 for i in range(30)}
    b = {f"q{i}": 0.0 for i in range(30)}
    lang = dict.fromkeys(a, "ja")
    t = LanguageTable.build({"m": a}, lang, baseline={"m": b})
    assert "<0.001" in t.to_markdown(digits=3)


def test_to_dict_and_write(tmp_path):
    t = LanguageTable.build(SYSTEM, QID_LANG, baseline=BASELINE, langs=["ja", "ko", "fi"], n_resamples=100)
    d = t.to_dict()
    assert d["average"] == "macro" and d["compared"] is True and d["test"] == "permutation"
    assert [r["lang"] for r in d["rows"]] == ["ja", "ko", "fi", "avg"]
    assert d["rows"][2]["values"] == {"mrr@10": None, "R@2kt": None}
    md_path, json_path = t.write(tmp_path / "out", "dev_table")
    assert md_path.read_text(encoding="utf-8") == t.to_markdown()
    assert json.loads(json_path.read_text(encoding="utf-8")) == json.loads(json.dumps(d))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dev_table.json", "dev_table.md"]
    with pytest.raises(XqgError, match="plain file stem"):
        t.write(tmp_path, "../escape")
