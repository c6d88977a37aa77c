"""Truncation is never silent: encode and search count, per language, the texts cut at the max
length, record the counts in their manifests and warn past a share of a language's texts."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from xqg.models.encoder import BiEncoder, TruncationCounter, TruncationWarning, truncated_mask
from xqg.types import Query


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from xqg.config import EncoderConfig

    return BiEncoder(EncoderConfig(model=str(tiny_model_dir), query_max_length=8, passage_max_length=12,
                                   query_prefix="", passage_prefix=""))  # fmt: skip


def _n_tokens(enc: BiEncoder, text: str) -> int:
    return len(enc.tokenizer(text)["input_ids"])


def test_mask_is_exactly_longer_than_max_length_and_vectors_are_unchanged(tiny):
    texts = ["fox", "The quick brown fox jumps over the lazy dog again and again and again", "dog dog"]
    lengths = [_n_tokens(tiny, t) for t in texts]
    assert tiny.truncated(texts, kind="query").tolist() == [n > 8 for n in lengths]
    assert truncated_mask(tiny.tokenizer, tiny.config, texts, kind="passage").tolist() == [
        n > 12 for n in lengths
    ]
    before = tiny.encode(texts, kind="query")
    tiny.truncated(texts, kind="query")
    assert np.array_equal(before, tiny.encode(texts, kind="query"))


def test_counter_counts_per_language_and_warns_past_the_share(tiny):
    long = "The quick brown fox jumps over the lazy dog again and again"
    counter = TruncationCounter(tiny, "query", 8, warn_share=0.4)
    counter.add([long, "fox", long, "dog"], ["sw", "sw", "ur", None])
    with pytest.warns(TruncationWarning, match=r"sw 1/2 \(50.0%\), ur 1/1"):
        out = counter.summary("queries")
    assert out["truncated"] == 2
    assert out["by_lang"] == {
        "sw": {"texts": 2, "truncated": 1, "share": 0.5},
        "und": {"texts": 1, "truncated": 0, "share": 0.0},
        "ur": {"texts": 1, "truncated": 1, "share": 1.0},
    }
    quiet = TruncationCounter(tiny, "query", 8)
    quiet.add(["fox"], ["en"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert quiet.summary()["truncated"] == 0
    assert TruncationCounter(object(), "query", 8).summary() == {"counted": False, "max_length": 8}


def test_encode_and_search_record_the_counts(tiny, tmp_path):
    from xqg.encode import encode_queries, encode_to_shards
    from xqg.index import build_index
    from xqg.search import search_queries

    long = "The quick brown fox jumps over the lazy dog again and again"
    emb, records = tmp_path / "emb", [("p0", long), ("p1", "fox"), ("p2", "dog")]
    with pytest.warns(TruncationWarning):
        encode_to_shards(records, emb, encoder=tiny, shard_size=2, show_progress=False)
    m = json.loads((emb / "manifest.json").read_text())
    assert m["counts"]["truncated"] == 1
    assert m["truncation"]["by_lang"] == {"und": {"texts": 3, "truncated": 1, "share": 0.333333}}
    assert json.loads((emb / "shard-00000.json").read_text())["truncated"] == {"und": [2, 1]}
    # A rerun reuses both shards and reports the same counts from their records.
    with pytest.warns(TruncationWarning):
        again = encode_to_shards(records, emb, encoder=tiny, shard_size=2, show_progress=False)
    assert again["counts"]["reused_shards"] == 2 and again["truncation"] == m["truncation"]

    qs = [Query("q0", long, "sw"), Query("q1", "fox", "sw"), Query("q2", "dog", "ur")]
    with pytest.warns(TruncationWarning, match="sw 1/2"):
        encode_queries(qs, tmp_path / "qemb", encoder=tiny, show_progress=False)
    qm = json.loads((tmp_path / "qemb" / "manifest.json").read_text())
    assert qm["truncation"]["by_lang"]["sw"]["truncated"] == 1 and qm["truncation"]["max_length"] == 8

    build_index(emb, tmp_path / "ix", show_progress=False)
    with pytest.warns(TruncationWarning, match="search queries"):
        search_queries(tmp_path / "ix", qs, encoder=tiny, out_dir=tmp_path / "run", show_progress=False)
    rm = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert rm["truncation"]["by_lang"]["ur"] == {"texts": 1, "truncated": 0, "share": 0.0}

    # `xqg search --max-length`: the query length recorded with the index can be overridden; the
    # long query then fits, nothing is cut, the ranking changes only where a text was cut, and the
    # run's manifest records the length used
    from xqg.config import SearchConfig

    n = _n_tokens(tiny, long)
    cfg = SearchConfig(query_max_length=n, depth=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # nothing is cut any more
        longer = search_queries(tmp_path / "ix", qs, config=cfg, out_dir=tmp_path / "run2",
                                show_progress=False)  # fmt: skip
    rm2 = json.loads((tmp_path / "run2" / "manifest.json").read_text())
    assert rm2["config"]["encoder"]["query_max_length"] == n and rm2["truncation"]["max_length"] == n
    assert rm2["truncation"]["by_lang"]["sw"]["truncated"] == 0
    short = search_queries(tmp_path / "ix", qs[1:], config=SearchConfig(depth=3), show_progress=False)
    assert [d for d, _ in longer["q1"]] == [d for d, _ in short["q1"]]  # an uncut query: the same hits


def test_encoders_without_a_tokenizer_are_not_counted(tmp_path):
    from xqg.config import EncoderConfig
    from xqg.encode import encode_to_shards

    class Fake:
        config = EncoderConfig(model="fake")

        def encode(self, texts, kind, progress=None):
            return np.ones((len(texts), 4), np.float32)

        def describe(self):
            return {"model": {"spec": "fake"}}

    m = encode_to_shards([("a", "x")], tmp_path / "e", encoder=Fake(), show_progress=False)
    assert m["truncation"] == {"counted": False, "max_length": 128} and "truncated" not in m["counts"]
