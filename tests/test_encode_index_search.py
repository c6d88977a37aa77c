"""Sharded encoding (resume, crash safety), FAISS index building and exact sharded search."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xqg.config import IndexConfig
from xqg.encode import EmbeddingShards, encode_corpus, encode_to_shards
from xqg.errors import ManifestError, XqgError
from xqg.index import build_index
from xqg.search import Searcher, search_queries, search_vectors
from xqg.types import Passage, Query

WORDS = "river city treaty music school war king bridge island festival church language".split()


def synthetic_corpus(n: int, seed: int = 0) -> list[Passage]:
    rng = np.random.default_rng(seed)
    return [Passage(f"doc{i}", " ".join(rng.choice(WORDS, size=int(rng.integers(3, 20))))) for i in range(n)]


def test_shards_manifest_and_roundtrip(tmp_path, tiny_encoder_config):
    corpus = synthetic_corpus(23)
    m = encode_corpus(
        iter(corpus), tmp_path / "emb", config=tiny_encoder_config, shard_size=10, show_progress=False
    )
    assert m["counts"] == {"rows": 23, "shards": 3, "reused_shards": 0, "truncated": 0}
    assert m["kind"] == "passage" and m["prefix"] == "passage: " and m["pooling"] == "mean"
    assert m["dim"] == 32 and m["dtype"] == "float32" and m["normalize"] is True
    assert set(m["files"]) == {"ids.txt"} | {
        f"{k}-0000{i}.{e}" for i in range(3) for k, e in [("emb", "npy"), ("ids", "txt")]
    }
    shards = EmbeddingShards.open(tmp_path / "emb", verify=True)
    ids, emb = shards.load()
    assert ids == [p.id for p in corpus] and emb.shape == (23, 32)
    # The .npy files are plain arrays (no pickle) and memory-map.
    arr = np.load(tmp_path / "emb" / "emb-00000.npy", mmap_mode="r", allow_pickle=False)
    assert isinstance(arr, np.memmap) and arr.shape == (10, 32)


def test_rerun_reuses_finished_shards_and_recomputes_damaged_ones(tmp_path, tiny_encoder_config):
    corpus = synthetic_corpus(25)
    out = tmp_path / "emb"
    encode_corpus(iter(corpus), out, config=tiny_encoder_config, shard_size=10, show_progress=False)
    first = {p.name: p.read_bytes() for p in out.glob("emb-*.npy")}
    m = encode_corpus(iter(corpus), out, config=tiny_encoder_config, shard_size=10, show_progress=False)
    assert m["counts"]["reused_shards"] == 3
    # Corrupt one shard: it must be redone, giving the same bytes.
    (out / "emb-00001.npy").write_bytes(b"garbage")
    m = encode_corpus(iter(corpus), out, config=tiny_encoder_config, shard_size=10, show_progress=False)
    assert m["counts"]["reused_shards"] == 2
    assert {p.name: p.read_bytes() for p in out.glob("emb-*.npy")} == first
    # Changed input ids in a shard → that shard is recomputed, not silently reused.
    corpus[12] = Passage("other", corpus[12].text)
    m = encode_corpus(iter(corpus), out, config=tiny_encoder_config, shard_size=10, show_progress=False)
    assert m["counts"]["reused_shards"] == 2
    assert EmbeddingShards.open(out).ids()[12] == "other"


def test_other_settings_in_same_folder_are_refused(tmp_path, tiny_encoder_config):
    out = tmp_path / "emb"
    encode_corpus(iter(synthetic_corpus(5)), out, config=tiny_encoder_config, show_progress=False)
    other = tiny_encoder_config.model_copy(update={"pooling": "cls"})
    with pytest.raises(ManifestError, match="other settings"):
        encode_corpus(iter(synthetic_corpus(5)), out, config=other, show_progress=False)
    m = encode_corpus(iter(synthetic_corpus(5)), out, config=other, overwrite=True, show_progress=False)
    assert m["pooling"] == "cls"


def test_duplicate_ids_are_an_error(tmp_path, tiny_encoder_config):
    with pytest.raises(XqgError, match="duplicate id 'a'"):
        encode_to_shards(
            [("a", "x"), ("a", "y")], tmp_path / "e", config=tiny_encoder_config, show_progress=False
        )


@pytest.mark.slow  # ~23 s of subprocesses; the fast subset keeps test_one_kill_of_encode_resumes_identically
def test_kill_9_mid_encode_then_rerun_equals_uninterrupted(tmp_path, tiny_model_dir):
    """A real SIGKILL in the middle of `xqg encode`; the rerun must give byte-identical shards."""
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w", encoding="utf-8") as fh:
        for p in synthetic_corpus(3000, seed=1):  # 20 shards of 150
            fh.write(json.dumps({"_id": p.id, "title": "", "text": p.text}) + "\n")
    args = [sys.executable, "-m", "xqg", "encode", str(corpus), "--model", str(tiny_model_dir),
            "--shard-size", "150", "--batch-size", "16", "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "XQG_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    crashed = tmp_path / "crashed"
    proc = subprocess.Popen([*args, "--out", str(crashed)], env=env)
    deadline = time.time() + 120
    while not (crashed / "shard-00002.json").exists():
        assert proc.poll() is None, "encode ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (crashed / "manifest.json").exists()
    done_before = len(list(crashed.glob("shard-*.json")))
    assert done_before < 20
    rerun = subprocess.run(
        [*args, "--out", str(crashed)], env=env, capture_output=True, text=True, check=True
    )
    assert f"reused {done_before}" in rerun.stdout
    clean = tmp_path / "clean"
    subprocess.run([*args, "--out", str(clean)], env=env, check=True, capture_output=True)
    names = sorted(p.name for p in clean.iterdir() if p.name != "manifest.json")
    assert names == sorted(p.name for p in crashed.iterdir() if p.name != "manifest.json")
    for name in names:
        if name.endswith((".npy", ".txt")):
            assert (clean / name).read_bytes() == (crashed / name).read_bytes(), name
    assert not list(crashed.glob(".*.tmp"))


def _random_embeddings(tmp_path: Path, n: int, dim: int, shard_size: int, seed: int = 0) -> Path:
    """Embedding folder from random vectors, written through the real shard writer."""
    rng = np.random.default_rng(seed)
    return embeddings_of(tmp_path / f"emb-{n}-{shard_size}", rng.standard_normal((n, dim)).astype(np.float32),
                         shard_size)  # fmt: skip


def embeddings_of(out: Path, vecs: np.ndarray, shard_size: int) -> Path:
    """Embedding folder of the rows of ``vecs`` (ids ``d0``, ``d1``, …) through the real shard writer."""

    class FixedEncoder:
        def __init__(self, config):
            self.config = config

        def encode(self, texts, kind, progress=None):
            return vecs[[int(t) for t in texts]]

        def describe(self):
            return {"model": {"spec": "random"}}

    from xqg.config import EncoderConfig

    enc = FixedEncoder(EncoderConfig(model="random"))
    encode_to_shards(((f"d{i}", str(i)) for i in range(len(vecs))), out, encoder=enc, shard_size=shard_size,
                     show_progress=False)  # fmt: skip
    return out


def test_sharded_search_equals_one_index_and_brute_force(tmp_path):
    emb = _random_embeddings(tmp_path, 500, 16, shard_size=120)
    single = build_index(emb, tmp_path / "one", IndexConfig(), show_progress=False)
    multi = build_index(emb, tmp_path / "many", IndexConfig(per_shard=True), show_progress=False)
    assert single["counts"]["parts"] == 1 and multi["counts"]["parts"] == 5
    q = np.random.default_rng(1).standard_normal((40, 16)).astype(np.float32)
    qids = [f"q{i}" for i in range(40)]
    run1 = search_vectors(Searcher(tmp_path / "one"), qids, q, depth=25)
    run2 = search_vectors(Searcher(tmp_path / "many"), qids, q, depth=25)
    assert run1 == run2
    assert [list(v) for v in run1.values()] == [list(v) for v in run2.values()]  # same rank order
    _, x = EmbeddingShards.open(emb).load()
    top = np.argsort(-(q @ x.T), axis=1)[:, :25]
    assert [list(run1[qid]) for qid in qids] == [[f"d{j}" for j in row] for row in top]


def test_memory_mapped_flat_shards_give_the_same_results(tmp_path):
    emb = _random_embeddings(tmp_path, 300, 16, shard_size=100)
    build_index(emb, tmp_path / "ix", IndexConfig(per_shard=True), show_progress=False)
    q = np.random.default_rng(2).standard_normal((20, 16)).astype(np.float32)
    qids = [f"q{i}" for i in range(20)]
    mapped = Searcher(tmp_path / "ix", mmap=True)
    assert all(index.ntotal == 100 for index, _ in mapped.parts)
    assert search_vectors(mapped, qids, q, depth=15) == search_vectors(
        Searcher(tmp_path / "ix"), qids, q, depth=15
    )


def test_l2_metric_ranks_nearest_first(tmp_path):
    emb = _random_embeddings(tmp_path, 200, 8, shard_size=64)
    build_index(emb, tmp_path / "l2", IndexConfig(metric="l2", per_shard=True), show_progress=False)
    _, x = EmbeddingShards.open(emb).load()
    q = x[:5] + 0.01
    run = search_vectors(Searcher(tmp_path / "l2"), [f"q{i}" for i in range(5)], q, depth=3)
    assert [next(iter(run[f"q{i}"])) for i in range(5)] == [f"d{i}" for i in range(5)]


def test_depth_larger_than_corpus_and_bad_factory(tmp_path):
    emb = _random_embeddings(tmp_path, 7, 4, shard_size=3)
    build_index(emb, tmp_path / "ix", IndexConfig(per_shard=True), show_progress=False)
    run = search_vectors(Searcher(tmp_path / "ix"), ["q"], np.ones((1, 4), np.float32), depth=100)
    assert len(run["q"]) == 7
    with pytest.raises(XqgError, match="NoSuchIndex"):
        build_index(emb, tmp_path / "bad", IndexConfig(factory="NoSuchIndex"), show_progress=False)


def test_hnsw_search_parameters_are_applied_and_bad_ones_refused(tmp_path):
    emb = _random_embeddings(tmp_path, 500, 16, shard_size=200)
    build_index(emb, tmp_path / "hnsw", IndexConfig(factory="HNSW8"), show_progress=False)
    _, x = EmbeddingShards.open(emb).load()
    q = np.random.default_rng(3).standard_normal((30, 16)).astype(np.float32)
    exact = np.argsort(-(q @ x.T), axis=1)[:, :10]
    found = {}
    for ef in (1, 256):
        s = Searcher(tmp_path / "hnsw", params=f"efSearch={ef}")
        assert s.parts[0][0].hnsw.efSearch == ef
        hits = s.search(q, 10)
        found[ef] = np.mean(
            [len({f"d{j}" for j in e} & set(h)) / 10 for e, h in zip(exact, hits.docids, strict=True)]
        )
    assert found[256] > 0.95 and found[256] > found[1]
    with pytest.raises(XqgError, match="nprobe"):
        Searcher(tmp_path / "hnsw", params="nprobe=abc")


def test_search_queries_writes_runs_with_index_encoder(tmp_path, tiny_encoder_config):
    corpus = synthetic_corpus(30)
    encode_corpus(iter(corpus), tmp_path / "emb", config=tiny_encoder_config, show_progress=False)
    build_index(tmp_path / "emb", tmp_path / "ix", show_progress=False)
    queries = [Query("q1", corpus[3].text, "en"), Query("q2", corpus[7].text, "en")]
    run = search_queries(tmp_path / "ix", queries, out_dir=tmp_path / "run", show_progress=False)
    assert set(run) == {"q1", "q2"} and all(len(v) == 30 for v in run.values())
    lines = (tmp_path / "run" / "run.trec").read_text().splitlines()
    assert len(lines) == 60 and lines[0].split()[0] == "q1" and lines[0].split()[3] == "1"
    assert (tmp_path / "run" / "manifest.json").exists()
