"""python -m xqg.experiments.selftrain: which generated questions become self-training pairs.

The round trip itself (e5 vectors, exact ranks) is the lever study's code; here the ranks are given,
so the file needs no encoder: train-split passages only, rank <= max-rank, languages, duplicates,
the per-language cap, the written files, and the embedding cache copied from another run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xqg.errors import XqgError
from xqg.experiments import selftrain
from xqg.experiments.selftrain import Candidate, select_pairs, train_passages
from xqg.train.generator_data import read_extra_pairs
from xqg.types import Passage

CORPUS = [
    Passage("Alpha#0", "Alpha is a train article.", "Alpha"),
    Passage("Alpha#1", "Alpha has a second paragraph.", "Alpha"),
    Passage("Beta#0", "Beta is a dev article.", "Beta"),
    Passage("Gamma#0", "Gamma is a test article.", "Gamma"),
    Passage("Delta#0", "Beta is a dev article.", "Delta"),  # train article, text of a dev paragraph
]
SPLIT = {"train": ["Alpha", "Delta"], "dev": ["Beta"], "test": ["Gamma"]}


def _cands() -> list[Candidate]:
    c = Candidate
    return [
        c("Alpha#0", "de", 0, "Was ist Alpha?", 1),
        c("Alpha#0", "de", 1, "Was  ist Alpha? ", 1),  # the same question (spaces aside): a duplicate
        c("Alpha#0", "de", 2, "Wo ist Alpha?", 2),  # rank 2: out at max_rank 1
        c("Alpha#1", "de", 0, "Hat Alpha zwei?", 1),
        c("Alpha#1", "ja", 0, "アルファとは？", 1),
        c("Alpha#1", "en", 0, "What is Alpha?", 1),  # English: only when asked
        c("Alpha#1", "ja", 1, "   ", 1),  # blank
        c("Beta#0", "de", 0, "Was ist Beta?", 1),  # dev article
        c("Gamma#0", "de", 0, "Was ist Gamma?", 1),  # test article
        c("Delta#0", "de", 0, "Was ist Delta?", 1),  # text shared with a dev paragraph
        c("Alpha#1", "ja", 2, "第二は？", 3),
    ]


def test_only_train_split_passages_are_candidates() -> None:
    assert list(train_passages(CORPUS, SPLIT)) == ["Alpha#0", "Alpha#1"]
    with pytest.raises(XqgError, match="train and dev/test"):
        train_passages(CORPUS, {"train": ["Alpha", "Beta"], "dev": ["Beta"], "test": []})


def test_pairs_are_train_split_questions_within_max_rank() -> None:
    passages = train_passages(CORPUS, SPLIT)
    pairs, counts = select_pairs(_cands(), passages, langs=["de", "ja"], max_rank=1)
    got = [(p["passage_id"], p["lang"], p["question"]) for p in pairs]
    assert got == [
        ("Alpha#0", "de", "Was ist Alpha?"),
        ("Alpha#1", "de", "Hat Alpha zwei?"),
        ("Alpha#1", "ja", "アルファとは？"),
    ]
    assert counts == {
        "de": {"seen": 4, "rank_ok": 3, "duplicates": 1, "kept": 2},
        "ja": {"seen": 3, "rank_ok": 1, "duplicates": 0, "kept": 1},
    }
    assert pairs[0]["text"] == CORPUS[0].text and pairs[0]["title"] == "Alpha"
    assert pairs[0]["rank"] == 1 and pairs[0]["sample"] == 0
    # a deeper rank keeps the rank-2 and rank-3 questions; English only when asked for
    deeper, _ = select_pairs(_cands(), passages, langs=["de", "ja", "en"], max_rank=3)
    assert {(p["passage_id"], p["sample"], p["lang"]) for p in deeper} == {
        ("Alpha#0", 0, "de"), ("Alpha#0", 2, "de"), ("Alpha#1", 0, "de"),
        ("Alpha#1", 0, "ja"), ("Alpha#1", 2, "ja"), ("Alpha#1", 0, "en"),
    }  # fmt: skip
    with pytest.raises(XqgError, match="max_rank"):
        select_pairs(_cands(), passages, langs=["de"], max_rank=0)


def test_the_cap_takes_every_passage_s_first_sample_first() -> None:
    passages = train_passages(CORPUS, SPLIT)
    cands = [Candidate(pid, "de", s, f"Q{s} {pid}?", 1) for pid in passages for s in range(3)]
    pairs, counts = select_pairs(cands, passages, langs=["de"], max_rank=1, per_lang_cap=3)
    assert [(p["passage_id"], p["sample"]) for p in pairs] == [("Alpha#0", 0), ("Alpha#0", 1), ("Alpha#1", 0)]
    assert counts["de"]["kept"] == 3 and counts["de"]["rank_ok"] == 6


def _inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "manifest.json").write_text(json.dumps({"config": {"generator": {"model": "m", "n": 3}}}))
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"_id": p.id, "title": p.title, "text": p.text}) + "\n" for p in CORPUS)
    )
    split = tmp_path / "split.json"
    split.write_text(json.dumps(SPLIT))
    return gen, corpus, split


def test_the_pairs_file_and_its_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen, corpus, split = _inputs(tmp_path)
    seen: dict = {}

    def fake_round_trip(gen_dir, passages, emb_dir, **kw):
        seen.update(gen=Path(gen_dir), n=len(passages), emb=Path(emb_dir))
        return _cands(), {}

    monkeypatch.setattr(selftrain, "round_trip_candidates", fake_round_trip)
    out = tmp_path / "out" / "pairs.jsonl"
    doc = selftrain.build_pairs_file(gen, out, corpus=corpus, split=split, max_rank=1, log=None)
    assert seen == {"gen": gen, "n": 5, "emb": tmp_path / "out" / "pairs-emb"}  # ranks among all passages
    assert doc["settings"] == {"max_rank": 1, "langs": ["de", "ja"], "per_lang_cap": None}  # no en
    assert doc["output"]["pairs"] == 3 == len(out.read_text().splitlines())
    assert doc["counts"]["de"]["kept"] == 2 and doc["passages"] == {"corpus": 5, "train_split": 2}
    from xqg.io import sha256_file

    assert doc["inputs"]["corpus"] == {"path": "../corpus.jsonl", "sha256": sha256_file(corpus)}
    assert doc["output"]["sha256"] == sha256_file(out)
    text = selftrain.manifest_path(out).read_text()
    assert str(tmp_path) not in text  # no machine path
    assert not list(out.parent.glob("*.tmp*")) and sorted(p.name for p in out.parent.iterdir()) == [
        "pairs.jsonl",
        "pairs.manifest.json",
    ]
    # the trainer's loader reads it, and would refuse a held-out paragraph
    pairs = read_extra_pairs(out, {"Beta": "dev"})
    assert [(e.ref, e.lang) for e in pairs] == [("Alpha#0", "de"), ("Alpha#1", "de"), ("Alpha#1", "ja")]
    with_en = selftrain.build_pairs_file(gen, tmp_path / "en.jsonl", corpus=corpus, split=split,
                                         include_english=True, log=None)  # fmt: skip
    assert with_en["settings"]["langs"] == ["de", "ja", "en"] and with_en["counts"]["en"]["kept"] == 1
    with pytest.raises(XqgError, match="no generated queries in ko"):
        selftrain.build_pairs_file(
            gen, tmp_path / "ko.jsonl", corpus=corpus, split=split, langs=["ko"], log=None
        )


def test_the_embedding_cache_is_copied_only_from_matching_folders(tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    gen.mkdir()
    configs = selftrain.encoder_configs()
    p_cfg, q_cfg = configs
    reuse = tmp_path / "levers"

    def folder(name: str, cfg, kind: str, inputs: dict) -> Path:
        f = reuse / name
        f.mkdir(parents=True)
        (f / "config.json").write_text(json.dumps({"config_hash": selftrain._expected_hash(cfg, kind)}))
        (f / "manifest.json").write_text(json.dumps({"inputs": inputs}))
        (f / "emb-00000.npy").write_bytes(name.encode())
        return f

    folder("embeddings", p_cfg, "passage", {})
    folder(
        "generated-emb", q_cfg, "query", {"generated": "../../gen", "langs": ["de"], "n": None}
    )  # a subset
    folder("generated-emb-other", q_cfg, "query", {"generated": "../../elsewhere", "langs": None, "n": None})
    folder("generated-emb-wrong-cfg", p_cfg, "query", {"generated": "../../gen", "langs": None, "n": None})
    folder("generated-emb-all", q_cfg, "query", {"generated": "../../gen", "langs": None, "n": None})
    before = {p: p.stat().st_mtime_ns for p in reuse.rglob("*")}
    cache = tmp_path / "cache"
    copied = selftrain.seed_cache(reuse, cache, gen, configs, log=lambda _m: None)
    assert copied == {
        "embeddings": str(reuse / "embeddings"),
        "generated-emb": str(reuse / "generated-emb-all"),
    }
    assert (cache / "generated-emb" / "emb-00000.npy").read_bytes() == b"generated-emb-all"
    assert {p: p.stat().st_mtime_ns for p in reuse.rglob("*")} == before  # the source is only read
    assert selftrain.seed_cache(reuse, cache, gen, configs, log=None) == {}  # a filled cache stays


def test_the_command_line_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gen, corpus, split = _inputs(tmp_path)
    split.write_text(json.dumps({"train": ["Nothing"], "dev": [], "test": []}))
    code = selftrain.main(["--generated", str(gen), "--out", str(tmp_path / "p.jsonl"),
                           "--corpus", str(corpus), "--split", str(split)])  # fmt: skip
    assert code == 2 and "no corpus passage" in capsys.readouterr().err
