"""The grid report from synthetic per-query values: every cell and language is in the table,
significance marks follow the permutation test, resource groups and xQG-on-top Δs are the means."""

from __future__ import annotations

import json

import numpy as np

from xqg.evaluate.tables import LanguageTable
from xqg.experiments.grid import GridConfig
from xqg.experiments.grid_report import write_grid_report

LANGS = ["en", "ar", "el", "zh"]


def _values(rng, shift: dict[str, float]):
    qid_lang, vals = {}, {}
    for lang in LANGS:
        for i in range(60):
            qid = f"{lang}{i}"
            qid_lang[qid] = lang
            vals[qid] = float(np.clip(rng.uniform(0.3, 0.9) + shift.get(lang, 0.0), 0, 1))
    return {"mrr@10": vals}, qid_lang


def test_grid_report_tables_marks_and_groups(tmp_path):
    rng = np.random.default_rng(0)
    base, qid_lang = _values(rng, {})
    same = {"mrr@10": dict(base["mrr@10"])}
    up = {
        "mrr@10": {q: min(1.0, v + (0.1 if qid_lang[q] == "ar" else 0.0)) for q, v in base["mrr@10"].items()}
    }
    kw = {"langs": LANGS, "baseline": base, "n_resamples": 2000}
    cells = {
        "base": LanguageTable.build(base, qid_lang, **kw),
        "base+xQG": LanguageTable.build(up, qid_lang, **kw),
    }
    effect = {"base": LanguageTable.build(up, qid_lang, langs=LANGS, baseline=same, n_resamples=2000)}
    summary = {
        "name": "t",
        "langs": LANGS,
        "metric": "mrr@10",
        "xqg_settings": {"base": "mean-norm α=0.5"},
        "config": GridConfig().model_dump(),
        "runs": {},
    }
    write_grid_report(tmp_path, summary, cells, effect, tmp_path)
    md = (tmp_path / "results.md").read_text()
    ar_row = next(line for line in md.splitlines() if line.startswith("| ar |"))
    assert "↑" in ar_row.split("|")[3] and "↑" not in ar_row.split("|")[2]  # only base+xQG gains on ar
    el_row = next(line for line in md.splitlines() if line.startswith("| el |"))
    assert "↑" not in el_row
    assert "Significant xQG gains (of the non-English languages): base 1" in md
    # resource groups: ar and zh are high (class 5), el low; the xQG-on-top Δ of "high" is (0.1 + 0)/2
    group_row = next(line for line in md.splitlines() if line.startswith("| base+xQG |"))
    assert "+0.050" in group_row
    assert (tmp_path / "grid_delta.png").stat().st_size > 0 and (
        tmp_path / "xqg_on_top.png"
    ).stat().st_size > 0
    assert json.loads((tmp_path / "results.json").read_text())["name"] == "t"
