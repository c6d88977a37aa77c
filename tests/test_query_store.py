"""Lean storage of generated-query vectors: float16, int8 with a per-row scale, and per-(passage,
language) sums — written by the real shard writer, read back by ``augment``, compared with the
float32 fusion, and refused where a selection cannot be honoured."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from xqg.augment import augment, query_sums
from xqg.config import EncoderConfig
from xqg.encode import EmbeddingShards, encode_to_shards, generated_query_id
from xqg.errors import ManifestError, XqgError
from xqg.query_store import QueryStorage, quantize_int8

DIM = 16
LANGS = ("ar", "ko", "te")
SAMPLES = 3


class TableEncoder:
    """Looks texts up in a dict of vectors: exact, known inputs."""

    def __init__(self, vectors):
        self.vectors = vectors
        self.config = EncoderConfig(model="m")

    def encode(self, texts, kind, progress=None):
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def describe(self):
        return {"model": {"spec": "m"}}


def write(path, rows, kind, storage=None, shard_size=7, **kw):
    vecs = dict(rows)
    return encode_to_shards([(rid, rid) for rid, _ in rows], path, encoder=TableEncoder(vecs), kind=kind,
                            shard_size=shard_size, show_progress=False, storage=storage, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("qstore")
    rng = np.random.default_rng(3)
    pids = [f"p{i:02d}" for i in range(20)]
    p = rng.standard_normal((len(pids), DIM)).astype(np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    write(root / "passages", list(zip(pids, p, strict=True)), "passage", shard_size=8)
    # languages first, then passages, then samples (as encode-generated streams them); p19 has no
    # te queries and only one ko query. Shards of 7 rows cut (passage, language) groups in two.
    rows = []
    for lang in LANGS:
        for pid in pids:
            n = {("te", "p19"): 0, ("ko", "p19"): 1}.get((lang, pid), SAMPLES)
            for s in range(n):
                v = rng.standard_normal(DIM).astype(np.float32)
                rows.append((generated_query_id(lang, s, pid), v / np.linalg.norm(v)))
    return root, rows


def folder(data, storage: QueryStorage):
    root, rows = data
    name = f"q-{storage.form}-{storage.sum_by}-{storage.sum_dtype}"
    if not (root / name / "manifest.json").exists():
        write(root / name, rows, "query", storage=storage)
    return root / "passages", root / name


def sums_of(data, storage, **sel):
    ids, _, q_sum, q_count = query_sums(*folder(data, storage), **sel)
    return ids, q_sum, q_count


def test_float32_default_keeps_the_bytes_and_config_hash_of_before(tmp_path, data):
    _, rows = data
    write(tmp_path / "none", rows, "query")
    m = write(tmp_path / "f32", rows, "query", storage=QueryStorage("float32"))
    cfg = json.loads((tmp_path / "f32" / "config.json").read_text())
    assert "storage" not in cfg["config"]  # the hash existing float32 folders were bound to
    assert cfg == json.loads((tmp_path / "none" / "config.json").read_text())
    buf = io.BytesIO()
    np.save(buf, np.stack([v for _, v in rows[:7]]).astype(np.float32), allow_pickle=False)
    assert (tmp_path / "f32" / "emb-00000.npy").read_bytes() == buf.getvalue()
    assert sorted(p.name for p in (tmp_path / "f32").iterdir()) == sorted(
        p.name for p in (tmp_path / "none").iterdir()
    )
    assert m["storage"] == {"form": "float32", "dtype": "float32"} and m["dtype"] == "float32"


def test_int8_rows_decode_within_half_a_step():
    v = np.random.default_rng(0).standard_normal((50, DIM)).astype(np.float32)
    v[3] = 0.0  # an all-zero row must survive
    q, scale = quantize_int8(v)
    assert q.dtype == np.int8 and scale.dtype == np.float32 and scale.shape == (50,)
    err = np.abs(q.astype(np.float64) * scale[:, None] - v)
    assert np.all(err <= scale[:, None] / 2 + 1e-7)
    assert np.all(np.abs(q).max(axis=1)[np.arange(50) != 3] == 127)  # the full range is used
    assert not q[3].any()


@pytest.mark.parametrize(
    ("storage", "atol"),
    [
        (QueryStorage("float16"), 2e-3),
        (QueryStorage("int8"), 2e-2),
        (QueryStorage("sums"), 1e-5),
        (QueryStorage("sums", sum_dtype="float16"), 2e-2),
        (QueryStorage("sums", sum_by="passage"), 1e-5),
    ],
    ids=["float16", "int8", "sums", "sums-f16", "sums-passage"],
)
def test_every_form_gives_the_float32_sums_and_counts(data, storage, atol):
    ids, ref_sum, ref_count = sums_of(data, QueryStorage())
    got_ids, got_sum, got_count = sums_of(data, storage)
    assert got_ids == ids
    np.testing.assert_array_equal(got_count, ref_count)  # same queries, counted alike
    assert ref_count[-1] == SAMPLES + 1  # p19: ar 3, ko 1, te 0
    np.testing.assert_allclose(got_sum, ref_sum, atol=atol)
    assert not np.array_equal(got_sum, ref_sum) or storage.form == "sums"  # lossy forms do differ


def test_lean_forms_take_fewer_bytes(data):
    sizes = {}
    for st in (QueryStorage(), QueryStorage("float16"), QueryStorage("int8"), QueryStorage("sums")):
        _, q = folder(data, st)
        sizes[st.form] = sum(np.load(f, mmap_mode="r").nbytes for f in q.glob("*.npy"))  # data, no headers
    assert sizes["float16"] == sizes["float32"] / 2
    assert sizes["int8"] == sizes["float32"] / 4 + 175 * 4  # + one float32 scale per row
    # 177 queries in 59 (passage, language) groups, some cut in two by the 7-row shards
    assert sizes["sums"] < 0.5 * sizes["float32"]


def test_sums_by_language_honour_a_language_selection(data):
    _, ref_sum, ref_count = sums_of(data, QueryStorage(), langs=["ar", "te"])
    _, got_sum, got_count = sums_of(data, QueryStorage("sums"), langs=["ar", "te"])
    np.testing.assert_array_equal(got_count, ref_count)
    np.testing.assert_allclose(got_sum, ref_sum, atol=1e-5)


def test_sums_refuse_what_they_cannot_honour(tmp_path, data):
    pdir, sdir = folder(data, QueryStorage("sums"))
    with pytest.raises(XqgError, match=r"sums of up to 3 samples per language, so the first 2 cannot be"):
        augment(pdir, sdir, tmp_path / "a", n=2, show_progress=False)
    m = augment(pdir, sdir, tmp_path / "b", n=3, strategy="mean", alpha=0.5, show_progress=False)  # = all
    ref = augment(pdir, folder(data, QueryStorage())[1], tmp_path / "c", n=3, strategy="mean", alpha=0.5,
                  show_progress=False)  # fmt: skip
    assert m["queries_per_language"] == ref["queries_per_language"] == {"ar": 60, "ko": 58, "te": 57}
    assert m["counts"]["queries_used"] == ref["counts"]["queries_used"] == 175
    sums, rows = (EmbeddingShards.open(tmp_path / d).load()[1] for d in ("b", "c"))
    np.testing.assert_allclose(sums, rows, atol=1e-6)
    assert m["query_storage"]["form"] == "sums" and ref["query_storage"]["form"] == "float32"

    pdir, pass_dir = folder(data, QueryStorage("sums", sum_by="passage"))
    with pytest.raises(XqgError, match=r"one sum per passage over ar, ko, te, so languages ko cannot be"):
        augment(pdir, pass_dir, tmp_path / "d", langs=["ar", "te"], show_progress=False)
    m = augment(pdir, pass_dir, tmp_path / "e", langs=["ar", "ko", "te", "xx"], show_progress=False)
    assert m["queries_per_language"] == {"all": 175}


def test_sums_are_not_read_as_vectors_and_int8_reads_as_float32(data):
    _, sdir = folder(data, QueryStorage("sums"))
    with pytest.raises(ManifestError, match="sums of generated-query vectors, not one vector per query"):
        EmbeddingShards.open(sdir).load()
    _, idir = folder(data, QueryStorage("int8"))
    ids, vecs = EmbeddingShards.open(idir).load()
    _, rows = data
    assert ids == [rid for rid, _ in rows] and vecs.dtype == np.float32
    np.testing.assert_allclose(vecs, np.stack([v for _, v in rows]), atol=0.01)


def test_lean_folders_resume_and_refuse_other_forms(tmp_path, data):
    _, rows = data
    first = write(tmp_path / "q", rows, "query", storage=QueryStorage("sums"))
    again = write(tmp_path / "q", rows, "query", storage=QueryStorage("sums"))
    assert again["counts"]["reused_shards"] == again["counts"]["shards"] == first["counts"]["shards"]
    assert again["counts"]["queries"] == len(rows) and again["storage"]["max_samples"] == SAMPLES
    (tmp_path / "q" / "count-00001.npy").write_bytes(b"damaged")
    again = write(tmp_path / "q", rows, "query", storage=QueryStorage("sums"))
    assert again["counts"]["reused_shards"] == first["counts"]["shards"] - 1  # only the damaged one redone
    with pytest.raises(ManifestError, match="made with other settings"):
        write(tmp_path / "q", rows, "query", storage=QueryStorage("int8"))


def test_a_missing_or_damaged_count_file_is_named(tmp_path, data):
    _, rows = data
    pdir = folder(data, QueryStorage())[0]
    write(tmp_path / "q", rows, "query", storage=QueryStorage("sums"))
    (tmp_path / "q" / "count-00002.npy").unlink()
    # caught when the folder is opened (checked against its manifest), or when the array is read
    with pytest.raises(ManifestError, match=r"count-00002\.npy: (listed in the manifest but missing|cannot)"):
        augment(pdir, tmp_path / "q", tmp_path / "a", show_progress=False)
    (tmp_path / "q" / "count-00002.npy").write_bytes(b"not numpy")
    with pytest.raises(ManifestError, match=r"count-00002\.npy: (9 bytes, \d+ in .*manifest|cannot read)"):
        augment(pdir, tmp_path / "q", tmp_path / "a", show_progress=False)


def test_bad_forms_are_refused_with_the_valid_ones():
    with pytest.raises(XqgError, match="unknown query storage form 'bf16'; choose one of: float32, float16"):
        QueryStorage("bf16")
    with pytest.raises(XqgError, match="sum_by"):
        QueryStorage("sums", sum_by="sample")
    with pytest.raises(XqgError, match="for generated queries, not passages"):
        encode_to_shards([("a", "a")], "/nonexistent", kind="passage", storage=QueryStorage("int8"))
