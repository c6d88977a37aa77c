"""The XNLI experiment end to end with the tiny model on the real XNLI files (two languages): xQG
cells pending without a finished generation, then filled from an oracle generation, tuned on dev."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("datasets")

from xqg.config import AugmentExperimentConfig, EncoderConfig  # noqa: E402
from xqg.data.benchmarks.xnli import load_xnli, read_xnli  # noqa: E402
from xqg.experiments.xnli import XnliConfig, XnliDistill, run_xnli_experiment, xnli_dev_pairs  # noqa: E402
from xqg.generate import store  # noqa: E402
from xqg.io import write_manifest  # noqa: E402
from xqg.paths import data_root  # noqa: E402
from xqg.train.distill import DistillConfig  # noqa: E402
from xqg.types import GeneratedQuery  # noqa: E402

pytestmark = pytest.mark.skipif(not (data_root() / "xnli" / "test-en.tsv").is_file(), reason="no XNLI data")


# ~30 s of CPU (encodes ~20k texts twice with the tiny model): not in the fast subset
slow = pytest.mark.slow


def _oracle_generation(path, lang="fr"):
    """ "Generated" queries: each premise's entailment hypothesis in ``lang`` (dev and test)."""
    rows = []
    for split in ("dev", "test"):
        b = load_xnli([lang], split, "entailment")
        rows += [GeneratedQuery(next(iter(b.qrels[q.id])), lang, 0, q.text) for q in b.queries[lang]]
    store.write_shard(path, lang, 0, rows)
    write_manifest(
        path,
        stage=store.STAGE,
        config={
            "generator": {
                "model": "oracle: XNLI entailment hypotheses",
                "adapter": None,
                "langs": [lang],
                "n": 1,
            }
        },
        counts={"queries": len(rows)},
        files=[store.shard_name(lang, 0), store.shard_meta_name(lang, 0)],
    )
    return path


def test_dev_pairs_are_parallel_seeded_and_never_test():
    pairs = xnli_dev_pairs(["en", "fr", "sw"], 50)
    assert len(pairs) == 100 and {p[1] for p in pairs} == {"fr", "sw"}
    assert pairs == xnli_dev_pairs(["en", "fr", "sw"], 50)
    dev = read_xnli("dev", ["fr"])
    allowed = set(dev.parallel_sentences("fr"))
    assert all((en, xx) in allowed for _, lang, en, xx in pairs if lang == "fr")
    test_en = {t for row in read_xnli("test").rows["en"] for t in row}
    assert not any(en in test_en for _, _, en, _ in pairs)


@slow
def test_experiment_pending_then_with_xqg(tmp_path, tiny_model_dir):
    enc = EncoderConfig(
        model=str(tiny_model_dir), device="cpu", query_max_length=32, passage_max_length=32, batch_size=256
    )
    recipe = DistillConfig(
        teacher=EncoderConfig(query_max_length=32, batch_size=64),
        sources=[],
        langs=["ar"],
        batch_size=4,
        max_steps=2,
        logging_steps=1,
        save_steps=100,
        loss="mse",
    )
    cfg = XnliConfig(
        out_dir=str(tmp_path / "run"),
        langs=["en", "fr"],
        encoder=enc,
        generated=str(tmp_path / "gen"),
        augment=AugmentExperimentConfig(
            strategies=["mean-norm"], alphas=[0.0, 0.3], variants=[], rkt=[], metrics=["mrr@10", "recall@1"]
        ),
        distill={"xnli": XnliDistill(xnli_pairs=8, config=recipe)},
    )
    logs: list[str] = []
    res = run_xnli_experiment(cfg, report_dir=tmp_path / "rep", show_progress=False, log=logs.append)
    s = res.summary
    assert s["generated"]["status"] == "pending" and "pending" in json.dumps(s["generated"])
    assert set(s["tables"]) == {"base", "base+distill:xnli"}
    assert "pending" in (tmp_path / "rep" / "analysis.md").read_text()
    rows = {r["lang"]: r for r in s["tables"]["base"]["hypothesis"]["rows"]}
    assert rows["fr"]["n"]["mrr@10"] == 5010 and rows["en"]["n"]["mrr@10"] == 5010
    prem = {r["lang"] for r in s["tables"]["base"]["premise"]["rows"]}
    assert prem == {"fr", "avg"}
    assert s["distill"]["xnli"]["pairs"] == 8

    _oracle_generation(tmp_path / "gen")
    logs.clear()
    res = run_xnli_experiment(cfg, report_dir=tmp_path / "rep", show_progress=False, log=logs.append)
    s = res.summary
    assert any("reusing" in m for m in logs)  # the distilled model is not trained again
    assert set(s["tables"]) == {"base", "base+xQG", "base+distill:xnli", "base+distill:xnli+xQG"}
    # tuned on dev: the grid holds dev scores only, and α = 0 is a candidate
    grid = s["dev_grids"]["base"]
    assert {g["alpha"] for g in grid} == {0.0, 0.3}
    # the oracle (each premise's own entailment hypothesis) must help entailment retrieval in fr
    eff = {r["lang"]: r for r in s["xqg_effect"]["base"]["rows"]}
    assert s["xqg_settings"]["base"]["spec"]["alpha"] == 0.3 and eff["fr"]["delta"]["mrr@10"] > 0
    md = (tmp_path / "rep" / "analysis.md").read_text()
    assert "base+distill+xQG" in md and "| fr |" in md and (tmp_path / "rep" / "xnli-grid.png").is_file()
    doc = json.loads((tmp_path / "rep" / "analysis.json").read_text())
    assert doc["question"].startswith("To what extent")
    # the answer a reader can quote: two sentences, the four cells' key figures
    import re

    answer = doc["headline"]
    assert len(re.findall(r"[.!?](?:\s|$)", answer)) == 2 and len(answer.split()) <= 60, answer
    base = {r["lang"]: r for r in s["tables"]["base"]["hypothesis"]["rows"]}["avg"]["values"]["mrr@10"]
    assert f"from {base:.3f}" in answer and f"{eff['avg']['delta']['mrr@10']:+.3f} on base" in answer
