"""Fusion of passage and generated-query vectors: the paper's formula pinned by hand computation,
matching by id (never by position), selection of languages and samples, and rejections."""

from __future__ import annotations

import numpy as np
import pytest

from xqg.augment import FUSIONS, augment
from xqg.config import EncoderConfig, IndexConfig
from xqg.encode import EmbeddingShards, encode_to_shards, generated_query_id
from xqg.errors import ManifestError, XqgError
from xqg.index import build_index
from xqg.search import Searcher, search_vectors


class TableEncoder:
    """An 'encoder' that looks texts up in a dict of vectors: exact, known inputs for fusion."""

    def __init__(self, vectors: dict[str, np.ndarray], model: str = "m") -> None:
        self.vectors = vectors
        self.config = EncoderConfig(model=model)

    def encode(self, texts, kind, progress=None):
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def describe(self):
        return {"model": {"spec": self.config.model}}


def write(tmp_path, name, rows, kind, shard_size=2, model="m"):
    """rows: list of (id, vector) → an embedding folder written by the real shard writer."""
    vecs = {rid: v for rid, v in rows}
    enc = TableEncoder(vecs, model)
    out = tmp_path / name
    encode_to_shards([(rid, rid) for rid, _ in rows], out, encoder=enc, kind=kind, shard_size=shard_size,
                     show_progress=False)  # fmt: skip
    return out


P = {
    "p1": np.array([1.0, 0.0, 0.0, 0.0]),
    "p2": np.array([0.0, 1.0, 0.0, 0.0]),
    "p3": np.array([0.0, 0.0, 1.0, 0.0]),
}
Q = {  # (lang, sample, passage) → vector
    ("ar", 0, "p1"): np.array([0.5, 0.5, 0.0, 0.0]),
    ("ar", 1, "p1"): np.array([0.0, 0.0, 0.0, 2.0]),
    ("ko", 0, "p1"): np.array([1.0, 1.0, 1.0, 1.0]),
    ("ar", 0, "p2"): np.array([0.0, 0.0, 3.0, 0.0]),
    ("ko", 0, "p3"): np.array([-1.0, 0.0, 0.0, 0.0]),
    ("ko", 1, "p3"): np.array([0.0, -1.0, 0.0, 0.0]),
}


@pytest.fixture()
def folders(tmp_path):
    pdir = write(tmp_path, "passages", list(P.items()), "passage")
    # Queries deliberately in an order unrelated to the passages' order, across several shards.
    rows = [(generated_query_id(*k), v) for k, v in reversed(list(Q.items()))]
    qdir = write(tmp_path, "queries", rows, "query", shard_size=4)
    return pdir, qdir


def fused(out) -> dict[str, np.ndarray]:
    ids, emb = EmbeddingShards.open(out).load()
    return dict(zip(ids, emb, strict=True))


def test_paper_fusion_equals_hand_computation(tmp_path, folders):
    pdir, qdir = folders
    m = augment(pdir, qdir, tmp_path / "aug", strategy="paper", alpha=0.01, show_progress=False)
    got = fused(tmp_path / "aug")
    # p1: 0.99·[1,0,0,0] + 0.01·([.5,.5,0,0] + [0,0,0,2] + [1,1,1,1]) = [1.005, 0.015, 0.01, 0.03]
    np.testing.assert_allclose(got["p1"], [1.005, 0.015, 0.01, 0.03], atol=1e-7)
    # p2: 0.99·[0,1,0,0] + 0.01·[0,0,3,0] = [0, 0.99, 0.03, 0]
    np.testing.assert_allclose(got["p2"], [0.0, 0.99, 0.03, 0.0], atol=1e-7)
    # p3: 0.99·[0,0,1,0] + 0.01·([-1,0,0,0] + [0,-1,0,0]) = [-0.01, -0.01, 0.99, 0]
    np.testing.assert_allclose(got["p3"], [-0.01, -0.01, 0.99, 0.0], atol=1e-7)
    assert m["counts"]["queries_used"] == 6 and m["counts"]["passages_without_queries"] == 0
    assert m["queries_per_language"] == {"ar": 3, "ko": 3}
    assert EmbeddingShards.open(tmp_path / "aug").ids() == ["p1", "p2", "p3"]  # passage order kept


def test_chunked_reads_of_query_shards_give_the_same_fusion(tmp_path, folders, monkeypatch):
    import xqg.augment as aug

    pdir, qdir = folders
    augment(pdir, qdir, tmp_path / "whole", strategy="paper", alpha=0.3, show_progress=False)
    monkeypatch.setattr(aug, "_CHUNK", 1)  # one query row copied out of the memory map at a time
    augment(pdir, qdir, tmp_path / "rows", strategy="paper", alpha=0.3, show_progress=False)
    whole, rows = fused(tmp_path / "whole"), fused(tmp_path / "rows")
    for pid in P:
        np.testing.assert_allclose(rows[pid], whole[pid], atol=1e-7)


def test_mean_and_normalised_variants(tmp_path, folders):
    pdir, qdir = folders
    augment(pdir, qdir, tmp_path / "mean", strategy="mean", alpha=0.5, show_progress=False)
    got = fused(tmp_path / "mean")
    q_mean = (Q[("ar", 0, "p1")] + Q[("ar", 1, "p1")] + Q[("ko", 0, "p1")]) / 3
    np.testing.assert_allclose(got["p1"], 0.5 * P["p1"] + 0.5 * q_mean, atol=1e-6)
    augment(pdir, qdir, tmp_path / "norm", strategy="mean-norm", alpha=0.5, show_progress=False)
    got_n = fused(tmp_path / "norm")
    np.testing.assert_allclose(np.linalg.norm(np.stack(list(got_n.values())), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(got_n["p1"], got["p1"] / np.linalg.norm(got["p1"]), atol=1e-6)


def test_choose_languages_and_samples_without_reencoding(tmp_path, folders):
    pdir, qdir = folders
    augment(pdir, qdir, tmp_path / "ar1", langs=["ar"], n=1, alpha=0.1, show_progress=False)
    got = fused(tmp_path / "ar1")
    np.testing.assert_allclose(got["p1"], 0.9 * P["p1"] + 0.1 * Q[("ar", 0, "p1")], atol=1e-6)
    np.testing.assert_allclose(got["p3"], 0.9 * P["p3"], atol=1e-6)  # no ar query for p3: empty sum
    with pytest.raises(ManifestError, match="no selected generated queries"):
        augment(pdir, qdir, tmp_path / "strict", langs=["ar"], require_all=True, show_progress=False)


def test_unknown_passage_ids_and_other_encoders_are_rejected(tmp_path, folders):
    pdir, _ = folders
    stray = write(tmp_path, "stray", [(generated_query_id("ar", 0, "p9"), np.ones(4))], "query")
    with pytest.raises(ManifestError, match="not in the passage embeddings.*p9"):
        augment(pdir, stray, tmp_path / "x", show_progress=False)
    other = write(tmp_path, "other", [(generated_query_id("ar", 0, "p1"), np.ones(4))], "query", model="z")
    with pytest.raises(ManifestError, match="different encoders"):
        augment(pdir, other, tmp_path / "y", show_progress=False)
    with pytest.raises(XqgError, match="paper, mean"):
        augment(pdir, other, tmp_path / "z", strategy="max", show_progress=False)
    assert set(FUSIONS) == {"paper", "mean", "paper-norm", "mean-norm"}


def test_fused_folder_indexes_and_searches(tmp_path, folders):
    pdir, qdir = folders
    augment(pdir, qdir, tmp_path / "aug", alpha=0.01, show_progress=False)
    build_index(tmp_path / "aug", tmp_path / "ix", IndexConfig(), show_progress=False)
    run = search_vectors(
        Searcher(tmp_path / "ix"), ["q"], np.array([[0.0, 0.0, 0.0, 1.0]], np.float32), depth=3
    )
    assert next(iter(run["q"])) == "p1"  # only p1 gained weight on the 4th axis (its ar/ko queries)


def test_cli_generated_queries_to_fused_index(tmp_path, tiny_model_dir):
    """generation folder → xqg encode-generated (query side, like the passages) → xqg augment → index
    (the commands run in this process through the CLI's entry point: tests.conftest.run_xqg)."""
    import json

    from tests.conftest import run_xqg
    from xqg.generate.store import write_shard
    from xqg.io import write_manifest
    from xqg.types import GeneratedQuery

    corpus = tmp_path / "corpus.jsonl"
    texts = {"d1": "river city bridge", "d2": "music school festival", "d3": "king war island"}
    corpus.write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in texts.items()))
    gen = tmp_path / "gen"
    for lang in ("ar", "ko"):
        write_shard(gen, lang, 0, [GeneratedQuery(pid, lang, s, f"{t} {lang} {s}") for pid, t in texts.items()
                                   for s in range(2)])  # fmt: skip
    write_manifest(gen, stage="generate", config={}, counts={"rows": 12})

    def xqg(*args):
        res = run_xqg(*args)
        assert res.returncode == 0, res.stderr
        return res.stdout

    xqg(
        "encode", str(corpus), "--out", str(tmp_path / "p"), "--model", str(tiny_model_dir), "--device", "cpu"
    )
    out = xqg("encode-generated", str(gen), "--out", str(tmp_path / "q"), "--like", str(tmp_path / "p"))
    assert "12 generated queries" in out
    q = EmbeddingShards.open(tmp_path / "q")
    assert q.manifest["kind"] == "query" and q.manifest["max_length"] == 32
    assert q.encoder_config.model == str(tiny_model_dir)
    out = xqg("augment", str(tmp_path / "p"), str(tmp_path / "q"), "--out", str(tmp_path / "a"),
              "--alpha", "0.01", "--langs", "ko", "--n", "1")  # fmt: skip
    assert "3 fused passages" in out and "3 queries" in out
    xqg("index", str(tmp_path / "a"), "--out", str(tmp_path / "ix"))
    assert Searcher(tmp_path / "ix").ntotal == 3

    # Lean storage: per-(passage, language) sums fuse the same, and refuse --n they cannot honour.
    out = xqg("encode-generated", str(gen), "--out", str(tmp_path / "qs"), "--like", str(tmp_path / "p"),
              "--storage", "sums")  # fmt: skip
    assert "12 generated queries (sums)" in out
    counts = json.loads((tmp_path / "qs" / "manifest.json").read_text())["counts"]
    # 3 passages × 2 languages; no generated query is cut at 32 tokens
    assert counts == {"rows": 6, "shards": 1, "reused_shards": 0, "queries": 12, "truncated": 0}
    cmd = ["augment", str(tmp_path / "p"), str(tmp_path / "qs"), "--out", str(tmp_path / "as"), "--n", "1"]
    res = run_xqg(*cmd)
    assert res.returncode == 2 and "the first 1 cannot be selected" in res.stderr
    xqg("augment", str(tmp_path / "p"), str(tmp_path / "qs"), "--out", str(tmp_path / "as"), "--langs", "ko")
    xqg("augment", str(tmp_path / "p"), str(tmp_path / "q"), "--out", str(tmp_path / "a2"), "--langs", "ko")
    sums, rows = (EmbeddingShards.open(tmp_path / d).load()[1] for d in ("as", "a2"))
    np.testing.assert_allclose(sums, rows, atol=1e-6)


def test_tune_alpha_picks_the_best_dev_setting_and_records_the_grid(folders):
    from xqg.augment import tune_alpha

    pdir, qdir = folders
    # Dev query [0,0,1,1], relevant p1. Paper fusion scores: p1 = 4α, p2 = 3α, p3 = 1-α,
    # so p1 ranks first only for α > 0.2: MRR@10 is 0.5 at α ∈ {0, 0.1} and 1.0 at α = 0.3.
    res = tune_alpha(
        pdir, qdir, np.array([[0.0, 0.0, 1.0, 1.0]]), ["d1"], {"d1": {"p1": 1}},
        strategies=["paper"], alphas=[0.0, 0.1, 0.3, 0.5],
    )  # fmt: skip
    assert [g["mrr@10"] for g in res["grid"]] == [0.5, 0.5, 1.0, 1.0]
    assert res["best"] == {"strategy": "paper", "alpha": 0.3, "mrr@10": 1.0}  # ties → smaller α
