"""The ONNX Runtime encoder engine: same semantics as torch, a cache keyed by the source, config selection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import TINY_TEXTS, make_tiny_model
from xqg.config import EncoderConfig, load_experiment
from xqg.errors import XqgError
from xqg.models import onnx_engine
from xqg.models.encoder import BiEncoder


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XQG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def exports(monkeypatch) -> list[str]:
    """Counts real exports (the wrapped function still runs)."""
    calls: list[str] = []
    real = onnx_engine._export

    def counting(folder, tmp, quantization):
        calls.append(folder.name)
        return real(folder, tmp, quantization)

    monkeypatch.setattr(onnx_engine, "_export", counting)
    return calls


def _export_dirs(home: Path) -> list[Path]:
    return sorted(p for p in (home / "onnx").iterdir() if p.is_dir())


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", True), ("mean", False)])
def test_float32_export_matches_torch_pooling_prefix_normalisation(
    home, tiny_encoder_config, pooling, normalize
):
    cfg = tiny_encoder_config.model_copy(update={"pooling": pooling, "normalize": normalize})
    torch_enc = BiEncoder(cfg)
    onnx_enc = BiEncoder(cfg.model_copy(update={"engine": "onnx", "onnx_quantization": "none"}))
    assert isinstance(onnx_enc.model, onnx_engine.OnnxTower)
    for kind in ("query", "passage"):  # different prefixes, padded batches of 4 in length order
        ref, got = torch_enc.encode(TINY_TEXTS, kind=kind), onnx_enc.encode(TINY_TEXTS, kind=kind)
        np.testing.assert_allclose(got, ref, atol=2e-5)
    assert not np.allclose(
        onnx_enc.encode_queries(TINY_TEXTS), onnx_enc.encode_passages(TINY_TEXTS), atol=1e-4
    )


def test_export_is_cached_reused_and_refreshed_when_the_source_changes(home, tmp_path, exports):
    src = make_tiny_model(tmp_path / "model", seed=1)
    cfg = EncoderConfig(model=str(src), batch_size=4, device="cpu", engine="onnx", onnx_quantization="none")
    first = BiEncoder(cfg)
    (folder,) = _export_dirs(home)
    onnx_file = folder / "model.onnx"
    stamp = onnx_file.stat().st_mtime_ns
    v1 = first.encode_passages(TINY_TEXTS)
    again = BiEncoder(cfg)
    assert exports == ["model"] and onnx_file.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.encode_passages(TINY_TEXTS), v1)
    info = first.describe()["engine"]
    assert info["name"] == "onnx" and info["quantization"] == "none"
    assert (
        info["exports"][0]["source_files"]["model.safetensors"]
        == onnx_engine.source_checksum(src)["model.safetensors"]
    )
    assert str(tmp_path) not in json.dumps(info)  # no machine paths in what manifests record

    # Same folder, other weights: a new export under a new key, embedding like the new weights.
    shutil.rmtree(src)
    make_tiny_model(src, seed=2)
    fresh = BiEncoder(cfg)
    assert len(exports) == 2 and len(_export_dirs(home)) == 2
    v2 = fresh.encode_passages(TINY_TEXTS)
    assert not np.allclose(v2, v1, atol=1e-3)
    ref = BiEncoder(cfg.model_copy(update={"engine": "torch"})).encode_passages(TINY_TEXTS)
    np.testing.assert_allclose(v2, ref, atol=2e-5)


def test_int8_keeps_the_ffn_down_projections_float32_and_int8_full_does_not(home, tiny_model_dir):
    import onnx

    for quantization, float_ffn in (("int8", 2), ("int8-full", 0)):  # the tiny model has 2 layers
        export = onnx_engine.ensure_onnx(str(tiny_model_dir), quantization)
        assert onnx_engine.export_info(export)["float32_nodes"] == float_ffn
        ops = {n.op_type for n in onnx.load(str(export / "model.onnx")).graph.node}
        assert "MatMulInteger" in ops and "QAttention" in ops  # the rest is int8 in both


def test_failed_export_leaves_nothing_that_looks_finished(home, tiny_model_dir, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("disk full")

    from onnxruntime.transformers import optimizer

    monkeypatch.setattr(optimizer, "optimize_model", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        onnx_engine.ensure_onnx(str(tiny_model_dir), "none")
    assert _export_dirs(home) == []  # neither a finished-looking folder nor the temporary one


def test_config_selects_the_engine_and_torch_configs_keep_their_settings(tmp_path):
    assert EncoderConfig().engine == "torch"
    # Folders made before the engine existed keep their config hash: torch dumps omit the fields.
    assert "engine" not in EncoderConfig().model_dump()
    dumped = EncoderConfig(engine="onnx", onnx_quantization="none").model_dump()
    assert dumped["engine"] == "onnx" and dumped["onnx_quantization"] == "none"
    assert EncoderConfig.model_validate(dumped) == EncoderConfig(engine="onnx", onnx_quantization="none")
    cfg_file = tmp_path / "x.yaml"
    cfg_file.write_text("benchmark: xquad\nencoder:\n  engine: onnx\n  onnx_quantization: int8\n")
    assert load_experiment(cfg_file).encoder.engine == "onnx"
    cfg_file.write_text("benchmark: xquad\nencoder:\n  engine: tensorrt\n")
    with pytest.raises(XqgError):
        load_experiment(cfg_file)


def test_onnx_engine_refuses_a_reduced_precision_dtype(home, tiny_encoder_config):
    with pytest.raises(XqgError, match="float32"):
        BiEncoder(tiny_encoder_config.model_copy(update={"engine": "onnx", "dtype": "bfloat16"}))


def test_encode_manifest_records_the_engine(home, tiny_encoder_config, tmp_path):
    from xqg.encode import encode_to_shards

    cfg = tiny_encoder_config.model_copy(update={"engine": "onnx", "onnx_quantization": "none"})
    records = [(f"q{i}", t) for i, t in enumerate(TINY_TEXTS)]
    manifest = encode_to_shards(records, tmp_path / "emb", config=cfg, kind="query", show_progress=False)
    assert manifest["engine"]["name"] == "onnx"
    assert manifest["engine"]["exports"][0]["quantization"] == "none"
    assert manifest["config"]["encoder"]["engine"] == "onnx"


# -- the real e5-small ------------------------------------------------------------------------
@pytest.mark.slow
def test_e5_int8_keeps_cosine_099_on_texts_of_several_scripts():
    from xqg.data.benchmarks.xquad import load_xquad

    bench = load_xquad(["en", "ar", "de", "hi", "ru", "th", "tr", "zh"])
    queries = TINY_TEXTS + [q.text for lang in bench.langs for q in bench.queries[lang][::60]]
    passages = [p.text for p in bench.corpus[::8]]
    cfg = EncoderConfig(device="cpu", query_max_length=64, passage_max_length=512, batch_size=16)
    torch_enc = BiEncoder(cfg)
    int8 = BiEncoder(cfg.model_copy(update={"engine": "onnx", "onnx_quantization": "int8"}))
    assert int8.describe()["engine"]["exports"][0]["probe_min_cosine"] >= 0.99
    assert _cos(int8.encode_queries(queries), torch_enc.encode_queries(queries)).min() >= 0.99
    assert _cos(int8.encode_passages(passages), torch_enc.encode_passages(passages)).min() >= 0.99
    # int8 is a real change of weights, not the float32 graph under another name
    assert _cos(int8.encode_queries(queries), torch_enc.encode_queries(queries)).min() < 0.99999
