"""The CLI end to end with the real offline model: encode → index → search → evaluate (R@kt too),
error exits, and the XQuAD baseline regression against independently measured numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_rkt import _official_evaluate_top_k_hit, _official_macro
from xqg.data.benchmarks import load_primeqa_xor_fixture, load_xor_tydi
from xqg.data.corpus import write_corpus
from xqg.data.runs import ranked, read_jsonl_run
from xqg.data.xor import write_xor
from xqg.evaluate.tokenize import word_tokenize
from xqg.types import AnswerQuery


def xqg(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "xqg", *args],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "XQG_PROGRESS": "0"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"xqg {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def xor_fixture(tmp_path_factory) -> dict[str, Path]:
    """PrimeQA's XOR fixture: 100 Wikipedia passages + the 6 judged passages of its one query,
    the real XOR-TyDi gold for that query, and 20 real dev questions in other languages."""
    root = tmp_path_factory.mktemp("xor")
    fx = load_primeqa_xor_fixture()
    judged = [*fx.train[0].positive_passages, *fx.train[0].negative_passages]
    corpus = list(fx.corpus) + [p.__class__(f"judged-{p.id}", p.text, p.title) for p in judged]
    write_corpus(root / "corpus.jsonl", corpus)
    train_gold = {a.id: a for a in load_xor_tydi("train", langs=["ko"])}
    dev = load_xor_tydi("dev")
    gold: list[AnswerQuery] = [train_gold[fx.query.id]]
    for lang in ("ar", "fi", "ja", "ru"):
        gold += [a for a in dev if a.lang == lang][:5]
    write_xor(root / "gold.jsonl", gold)
    return {"root": root, "corpus": root / "corpus.jsonl", "gold": root / "gold.jsonl"}


@pytest.mark.slow  # encodes with the real e5-small model
def test_cli_chain_and_rkt_equal_the_official_script(xor_fixture):
    root = xor_fixture["root"]
    out = xqg("encode", str(xor_fixture["corpus"]), "--out", str(root / "emb"), "--shard-size", "40").stdout
    assert "106 passages → 3 shard(s)" in out
    xqg("index", str(root / "emb"), "--out", str(root / "index"), "--per-shard")
    xqg("search", str(root / "index"), str(xor_fixture["gold"]), "--out", str(root / "run"), "--depth", "50")
    gold_file, corpus_file = str(xor_fixture["gold"]), str(xor_fixture["corpus"])
    res = xqg(
        "evaluate", str(root / "run"), "--metric", "r@kt", "--metric", "r@100t",
        "--answers", gold_file, "--corpus", corpus_file, "--out", str(root / "eval"),
    )  # fmt: skip
    assert "R@2kt" in res.stdout
    table = json.loads((root / "eval" / "rkt.json").read_text())
    # Reference: the official script's function on predictions built from the same run + corpus.
    texts = {json.loads(line)["_id"]: json.loads(line)["text"] for line in xor_fixture["corpus"].open()}
    gold = {json.loads(line)["id"]: json.loads(line) for line in xor_fixture["gold"].open()}
    run = read_jsonl_run(root / "run" / "run.jsonl")
    preds = [
        {"id": qid, "lang": gold[qid]["lang"], "ctxs": [texts[d] for d, _ in ranked(hits)]}
        for qid, hits in run.items()
    ]
    answers = {qid: g["answers"] for qid, g in gold.items()}
    for k, name in [(100, "R@100t"), (2000, "R@2kt"), (5000, "R@5kt")]:
        per_lang, macro = _official_macro(_official_evaluate_top_k_hit(preds, answers, k, word_tokenize))
        rows = {r["lang"]: r for r in table["rows"]}
        for lang, value in per_lang.items():
            assert rows[lang]["values"][name] == pytest.approx(value, abs=1e-9), (name, lang)
        assert rows["avg"]["values"][name] == pytest.approx(macro, abs=1e-9)
    # The Korean query's answer passage (Kangxi Emperor) is in the corpus: found within 2,000 tokens.
    assert {r["lang"]: r for r in table["rows"]}["ko"]["values"]["R@2kt"] == 100.0


def test_bad_input_exits_non_zero_naming_file_line_and_field(tmp_path):
    bad = tmp_path / "corpus.jsonl"
    bad.write_text('{"_id": "a", "text": "fine"}\n{"_id": "b"}\n', encoding="utf-8")
    res = xqg("encode", str(bad), "--out", str(tmp_path / "emb"), check=False)
    assert res.returncode == 2
    assert "corpus.jsonl:2: field 'text'" in res.stderr
    assert not (tmp_path / "emb" / "manifest.json").exists()
    res = xqg("benchmark", "nope", "--out", str(tmp_path / "b"), check=False)
    assert res.returncode == 2 and "xquad" in res.stderr
    res = xqg("evaluate", str(tmp_path / "missing.trec"), check=False)
    assert res.returncode == 2 and "missing.trec" in res.stderr


def test_benchmark_command_builds_xquad_split(tmp_path):
    xqg("benchmark", "xquad", "--out", str(tmp_path / "xq"), "--langs", "en,ar", "--split", "test")
    manifest = json.loads((tmp_path / "xq" / "manifest.json").read_text())
    assert manifest["counts"]["passages"] == 240
    assert sum(1 for _ in (tmp_path / "xq" / "corpus.jsonl").open()) == 240


@pytest.mark.slow
def test_xquad_baseline_matches_measured_values(tmp_path):
    """The demo's settings on en + ar reproduce the independently measured MRR@10 within the
    0.002 the README claims (the real e5-small model, so ``slow``)."""
    from xqg.pipeline import demo_config, run_experiment

    cfg = demo_config(out_dir=str(tmp_path / "exp"), langs=["en", "ar"])
    result = run_experiment(cfg, show_progress=False, log=lambda *_: None)
    rows = {r["lang"]: r["values"] for r in result.table.to_dict()["rows"]}
    assert rows["en"]["mrr@10"] == pytest.approx(0.959, abs=0.002)
    assert rows["ar"]["mrr@10"] == pytest.approx(0.752, abs=0.002)
    assert rows["en"]["recall@1"] == pytest.approx(0.931, abs=0.002)
    for name in ("config.yaml", "results.md", "results.json", "manifest.json"):
        assert (tmp_path / "exp" / name).exists()
    assert (tmp_path / "exp" / "run" / "run.trec").exists()
