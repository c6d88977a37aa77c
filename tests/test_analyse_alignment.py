"""`xqg analyse alignment`: cosines with known answers, scale invariance, the paired comparison, and
the command end to end on a tiny synthetic experiment folder."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xqg.analyse.alignment import AlignmentResult, compare, cosine_alignment, load_system
from xqg.analyse.common import SystemSpec
from xqg.config import EncoderConfig
from xqg.encode import shard_names, write_embedding_shard
from xqg.errors import XqgError
from xqg.io import write_manifest


def test_identical_query_and_gold_passage_have_cosine_one():
    rng = np.random.default_rng(0)
    passages = rng.standard_normal((7, 24)).astype(np.float32) * rng.uniform(0.1, 5, (7, 1)).astype(
        np.float32
    )
    gold = np.array([3, 0, 6, 6, 2])
    res = cosine_alignment(passages[gold], passages, gold)
    np.testing.assert_allclose(res.gold_cos, 1.0, rtol=0, atol=1e-12)
    assert np.all(res.gold_cos <= 1.0)
    assert np.all(res.margin > 0) and res.cos_hit.all()
    assert list(res.langs) == ["all"] * 5


def test_hand_built_three_passage_example():
    # p0 = (0, 2): length 2; p1 = (3, 4): length 5; p2 = (-1, 0).
    passages = np.array([[0.0, 2.0], [3.0, 4.0], [-1.0, 0.0]])
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [4.0, 3.0]])
    gold = np.array([1, 2, 0])
    res = cosine_alignment(queries, passages, gold, ["a", "a", "b"], qids=["q1", "q2", "q3"])
    # q1: cos to p0, p1, p2 = 0, 0.6, -1 → gold 0.6, best wrong p0 (0), margin 0.6.
    # q2: cos = 1, 0.8, 0 → gold p2 = 0, best wrong p0 (1), margin -1.
    # q3 = (4,3)/5: cos = 0.6, 0.96, -0.8 → gold p0 = 0.6, best wrong p1 (0.96), margin -0.36.
    np.testing.assert_allclose(res.gold_cos, [0.6, 0.0, 0.6], atol=1e-12)
    np.testing.assert_allclose(res.best_wrong_cos, [0.0, 1.0, 0.96], atol=1e-12)
    assert res.best_wrong_row.tolist() == [0, 0, 1]
    np.testing.assert_allclose(res.margin, [0.6, -1.0, -0.36], atol=1e-12)
    assert res.cos_hit.tolist() == [True, False, False]
    # Raw inner products: q1 → (0, 3, -1) hit; q2 → (2, 4, 0) miss; q3 → (6, 24, -4) miss.
    assert res.ip_hit.tolist() == [True, False, False]
    s = res.summary()
    assert s["by_lang"]["a"]["n"] == 2 and s["by_lang"]["b"]["n"] == 1
    assert s["by_lang"]["a"]["recall_at_1"] == pytest.approx(0.5)
    assert s["by_lang"]["a"]["margin_mean"] == pytest.approx(-0.2)
    assert s["by_lang"]["a"]["margin_median"] == pytest.approx(-0.2)
    assert s["by_lang"]["b"]["best_wrong_cos_mean"] == pytest.approx(0.96)
    # Macro = mean over languages, not over questions.
    assert s["macro"]["margin_mean"] == pytest.approx((-0.2 + -0.36) / 2)
    assert s["macro"]["recall_at_1"] == pytest.approx(0.25)
    # z-margin: margin / std of the question's 3 cosines.
    np.testing.assert_allclose(res.margin_z[0], 0.6 / np.std([0.0, 0.6, -1.0]), atol=1e-12)


def test_cosine_and_inner_product_top1_differ_for_long_passages():
    # The long passage wins the inner product but points further away.
    passages = np.array([[1.0, 0.0], [10.0, 10.0]])
    res = cosine_alignment(np.array([[1.0, 0.1]]), passages, np.array([0]))
    assert res.cos_hit.tolist() == [True]
    assert res.ip_hit.tolist() == [False]


def test_scaling_passages_does_not_change_cosines():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((40, 16))
    p = rng.standard_normal((9, 16))
    gold = rng.integers(0, 9, 40)
    a = cosine_alignment(q, p, gold)
    b = cosine_alignment(q * 3.0, p * rng.uniform(0.01, 100, (9, 1)), gold)
    for name in ("gold_cos", "best_wrong_cos", "margin", "margin_z"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-12)
    assert a.best_wrong_row.tolist() == b.best_wrong_row.tolist()


def test_bad_inputs_raise_xqg_errors():
    p = np.eye(3)
    with pytest.raises(XqgError, match="dimension"):
        cosine_alignment(np.ones((2, 4)), p, np.array([0, 1]))
    with pytest.raises(XqgError, match="gold rows"):
        cosine_alignment(np.ones((2, 3)), p, np.array([0, 3]))
    with pytest.raises(XqgError, match="at least 2 passages"):
        cosine_alignment(np.ones((1, 3)), p[:1], np.array([0]))


def _result(margin: np.ndarray, langs: list[str]) -> AlignmentResult:
    n = margin.size
    return AlignmentResult(
        gold_cos=0.5 + margin,
        best_wrong_cos=np.full(n, 0.5),
        best_wrong_row=np.zeros(n, dtype=np.int64),
        ip_hit=margin > 0,
        langs=np.array(langs, dtype=object),
        cos_std=np.ones(n),
        qids=[f"q{i}" for i in range(n)],
    )


def test_compare_reports_the_margin_delta_and_a_significant_paired_test():
    rng = np.random.default_rng(2)
    langs = ["x"] * 30 + ["y"] * 30
    base = rng.normal(0.0, 0.05, 60)
    ref = _result(base, langs)
    better = _result(base + 0.02 + rng.normal(0, 0.002, 60), langs)
    same = _result(base.copy(), langs)
    c = compare(better, ref, n_resamples=2000)
    assert c["macro"]["delta_margin_mean"] == pytest.approx(0.02, abs=0.002)
    assert c["by_lang"]["x"]["delta_gold_cos_mean"] == pytest.approx(
        better.gold_cos[:30].mean() - ref.gold_cos[:30].mean()
    )
    assert c["macro"]["margin_test"]["p_permutation"] < 0.01
    assert c["by_lang"]["y"]["margin_test"]["p_ttest"] < 0.01
    c0 = compare(same, ref, n_resamples=2000)
    assert c0["macro"]["delta_margin_mean"] == 0.0
    assert c0["macro"]["margin_test"]["p_permutation"] == 1.0


# -- a tiny experiment-like folder ---------------------------------------------------------------


def _write_embeddings(folder: Path, ids: list[str], vecs: np.ndarray) -> None:
    """An embedding folder in the layout `xqg encode` / `xqg augment` leave (one shard)."""
    folder.mkdir(parents=True)
    write_embedding_shard(folder, 0, ids, vecs, "test")
    (folder / "ids.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    emb, id_file, _ = shard_names(0)
    write_manifest(
        folder,
        stage="encode",
        config={"synthetic": True, "encoder": EncoderConfig(model="synthetic").model_dump()},
        counts={"rows": len(ids), "shards": 1},
        files=["ids.txt", emb, id_file],
        extra={
            "dim": int(vecs.shape[1]),
            "id_file": "ids.txt",
            "shards": [{"emb": emb, "ids": id_file, "rows": len(ids)}],
        },
    )


@pytest.fixture()
def experiment(tmp_path: Path) -> dict:
    """6 passages, 2 languages × 12 questions; 'fused' pulls each passage towards its questions."""
    from xqg.data.qrels import write_qrels
    from xqg.data.queries import write_queries
    from xqg.types import Query

    rng = np.random.default_rng(3)
    d, n_pass = 16, 6
    pids = [f"Art#{i}" for i in range(n_pass)]
    passages = rng.standard_normal((n_pass, d))
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    qids, gold, qvecs, queries = [], [], [], []
    for lang, noise in (("en", 0.3), ("xx", 0.9)):
        for j in range(12):
            g = j % n_pass
            v = passages[g] + noise * rng.standard_normal(d) / math.sqrt(d)
            qid = f"s{j}-{lang}"
            qids.append(qid)
            gold.append(g)
            qvecs.append(v / np.linalg.norm(v))
            queries.append(Query(qid, f"question {j}", lang))
    qvecs_arr = np.array(qvecs, dtype=np.float32)
    gold_arr = np.array(gold)
    fused = passages.copy()
    for g in range(n_pass):
        fused[g] = passages[g] + 2.0 * qvecs_arr[gold_arr == g].sum(axis=0)  # raw: not unit length
    root = tmp_path / "exp"
    _write_embeddings(root / "embeddings", pids, passages.astype(np.float32))
    _write_embeddings(root / "fused-better", pids, fused.astype(np.float32))
    _write_embeddings(root / "queries-test", qids, qvecs_arr)
    bench = root / "benchmark"
    write_queries(bench / "queries.jsonl", queries)
    write_qrels(bench / "qrels" / "test.tsv", {q: {pids[g]: 1} for q, g in zip(qids, gold, strict=True)})
    write_manifest(bench, stage="benchmark", config={}, counts={}, extra={"qrels_file": "qrels/test.tsv"})
    return {"root": root, "passages": passages, "fused": fused, "queries": qvecs_arr, "gold": gold_arr}


def test_load_system_reads_the_folder_and_filters_languages(experiment):
    root = experiment["root"]
    res = load_system(SystemSpec.parse(f"b={root}:better"), "test", ["xx"])
    assert len(res.qids) == 12 and set(res.langs) == {"xx"}
    q, p, g = experiment["queries"][12:], experiment["fused"], experiment["gold"][12:]
    expected = np.einsum("ij,ij->i", q, p[g]) / (np.linalg.norm(q, axis=1) * np.linalg.norm(p[g], axis=1))
    np.testing.assert_allclose(res.gold_cos, expected, atol=1e-6)
    with pytest.raises(XqgError, match="no passage vectors"):
        load_system(SystemSpec.parse(f"b={root}:missing"))


def test_cli_writes_the_analysis_folder(experiment, tmp_path):
    from xqg.cli import app

    root, out = experiment["root"], tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["analyse", "alignment", "--system", f"base={root}", "--system", f"fused={root}:better",
         "--out", str(out), "--bins", "10", "--resamples", "500"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("analysis.json", "analysis.md", "gold_cos.png", "margin.png", "manifest.json"):
        assert (out / name).is_file(), name
    assert (out / "gold_cos.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "analysis.json").read_text())
    data = doc["data"]
    assert data["reference"] == "base" and data["langs"] == ["en", "xx"]
    # The plain passages are unit vectors; the raw fused ones are not, and cosine ignores that.
    assert data["systems"]["base"]["passage_norm"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert data["systems"]["fused"]["passage_norm"]["min"] > 1.5
    q, p, g = experiment["queries"], experiment["passages"], experiment["gold"]
    cos = (q @ p.T) / np.linalg.norm(p, axis=1)
    en_gold = cos[np.arange(12), g[:12]]
    assert data["systems"]["base"]["by_lang"]["en"]["gold_cos_mean"] == pytest.approx(
        en_gold.mean(), abs=1e-6
    )
    wrong = cos.copy()
    wrong[np.arange(24), g] = -np.inf
    r1 = np.mean(cos[np.arange(24), g] > wrong.max(axis=1))
    assert data["systems"]["base"]["macro"]["n"] == 24
    by_lang = data["systems"]["base"]["by_lang"]
    assert (by_lang["en"]["recall_at_1"] + by_lang["xx"]["recall_at_1"]) / 2 == pytest.approx(r1)
    # Δ gold cosine per language, computed here straight from the vectors.
    comp = data["comparisons"]["fused"]
    f = experiment["fused"]
    fused_gold = np.einsum("ij,ij->i", q, f[g]) / np.linalg.norm(f[g], axis=1)
    base_gold = cos[np.arange(24), g]
    for lang, rows in (("en", slice(0, 12)), ("xx", slice(12, 24))):
        expected = fused_gold[rows].mean() - base_gold[rows].mean()
        assert comp["by_lang"][lang]["delta_gold_cos_mean"] == pytest.approx(expected, abs=1e-6)
    # The noisy language's questions dominate what fusion adds, so it gains the most.
    assert comp["by_lang"]["xx"]["delta_gold_cos_mean"] > comp["by_lang"]["en"]["delta_gold_cos_mean"]
    assert comp["macro"]["margin_test"]["n_resamples"] == 500
    assert sum(data["histograms"]["counts"]["fused"]["xx"]["margin"]) == 12
    assert doc["headline"].startswith("Macro over 2 languages, the margin between gold and best wrong cosine")
    md = (out / "analysis.md").read_text()
    assert doc["headline"] in md and "--system base=" in md and "![margin.png](margin.png)" in md
    # The exhaustive per-statistic line moved from the headline into the body's details.
    assert "**Details.** Macro over 2 languages, base → fused: gold cosine rises" in md


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def test_headline_is_two_quotable_sentences_with_the_margins(experiment, tmp_path):
    from xqg.analyse.alignment import run_alignment
    from xqg.analyse.common import rerender

    root = experiment["root"]
    specs = [SystemSpec.parse(f"base={root}"), SystemSpec.parse(f"fused={root}:better")]
    out = run_alignment(specs, tmp_path / "a", bins=10, n_resamples=200, command="xqg analyse alignment …")
    doc = json.loads((out / "analysis.json").read_text())
    data, head = doc["data"], doc["headline"]
    assert _sentences(head) <= 2 and len(head.split()) <= 60, head
    ref, fused = data["systems"]["base"]["macro"], data["systems"]["fused"]["macro"]
    ups = sum(d["delta_margin_mean"] > 0 for d in data["comparisons"]["fused"]["by_lang"].values())
    assert f"base's {ref['margin_mean']:.4f} to fused {fused['margin_mean']:.4f} (higher in {ups}/2" in head
    assert f"{ref['gold_cos_mean']:.3f} → {fused['gold_cos_mean']:.3f}" in head
    assert data["headline"] == head
    # Rendering the folder again from its data alone gives the same files (manifest: new checksums).
    md, js = (out / "analysis.md").read_bytes(), (out / "analysis.json").read_bytes()
    (out / "analysis.md").write_text("stale")
    rerender(out)
    assert (out / "analysis.md").read_bytes() == md and (out / "analysis.json").read_bytes() == js
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["n_resamples"] == 200 and manifest["counts"]["questions"] == 24
    assert manifest["files"]["analysis.md"]["bytes"] == len(md)


def test_cli_bad_input_exits_2(experiment, tmp_path, monkeypatch, capsys):
    from xqg.cli import main

    argv = ["xqg", "analyse", "alignment", "--system", "nolabel", "--out", str(tmp_path / "o")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "LABEL=FOLDER" in capsys.readouterr().err
    argv = ["xqg", "analyse", "alignment", "--system", f"a={experiment['root']}", "--split", "dev",
            "--out", str(tmp_path / "o")]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "no dev query vectors" in capsys.readouterr().err
