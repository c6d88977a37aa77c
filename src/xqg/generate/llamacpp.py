"""The llama.cpp engine for the offline causal generator (Gemma 3 270M from its shipped GGUF).

Why a second engine: on a 2-core CPU the transformers path spends most of a decode step outside
the matrix products (per-op overhead over 18 layers, a key/value cache copied for every row, and
float32 weights dequantised from the Q4_K_M file). llama.cpp runs the GGUF's own quantised weights
with fused CPU kernels, and its unified key/value cache lets every sample of every language of a
passage *share the passage's cells*: the prefix is computed once and never copied.

What stays the same as the transformers engine, by construction (this class subclasses it):

* the prompts, their truncation and the length-sorted batches (the HF tokenizer of the rebuilt
  folder makes the token ids, so llama.cpp sees exactly the ids transformers sees);
* the sampler: the logits llama.cpp returns go through the same ``_sample`` (temperature →
  top-k → top-p warpers, ``torch.multinomial`` with a generator seeded per batch) and the same
  stop rule (newline or EOS after the first non-blank token);
* the LoRA adapter: exported once to a GGUF adapter (:func:`xqg.models.gguf.export_lora_gguf`) and
  applied by llama.cpp at scale ``alpha / r``, as peft does.

What differs is arithmetic only: llama.cpp multiplies with the quantised weights (activations
rounded to 8 bits inside its dot products) where transformers uses their float32 dequantisation.
``bench/generate_throughput.py`` measures the quality effect (in-language rate, round trip).

Layout of one batch in the cache: the rows of prompt ``r`` are sequences ``r·n … r·n+n-1``. A
passage's shared prefix is decoded once with the sequence ids of all its rows; each prompt's
language suffix once with the ids of its ``n`` rows; then every decode step feeds one token per
live row. Cells of finished rows are released at once.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xqg.config import GeneratorConfig
from xqg.errors import XqgError
from xqg.generate.backends import CausalGenerator, PreparedPrompt, shared_prefixes

#: llama.cpp's limit on distinct sequences in one context (LLAMA_MAX_SEQ).
MAX_SEQ = 256


def llama_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _quiet(level: int, text: bytes, user_data: Any) -> None:
    """llama.cpp's log sink: errors only (its loader prints hundreds of lines per model)."""
    if level == 4:  # GGML_LOG_LEVEL_ERROR
        import sys

        sys.stderr.write(text.decode("utf-8", "replace"))


def _lib() -> Any:
    try:
        import llama_cpp.llama_cpp as lib
    except ImportError as e:
        from xqg.generate.spec import LLAMA_INSTALL_HINT

        raise XqgError(LLAMA_INSTALL_HINT) from e
    lib.llama_log_set(_quiet, None)
    return lib


def lora_gguf(adapter: str) -> Path:
    """The GGUF form of a PEFT adapter, exported once into ``xqg_home()`` keyed by its checksums."""
    from xqg.generate.backends import adapter_fingerprint
    from xqg.io import config_hash
    from xqg.models.gguf import export_lora_gguf
    from xqg.paths import xqg_home

    fp = adapter_fingerprint(adapter)
    assert fp is not None
    out = xqg_home() / "models" / "gguf" / f"lora-{config_hash(fp['sha256'])[:16]}.gguf"
    if not out.exists():
        export_lora_gguf(adapter, out)
    return out


class LlamaCppGenerator(CausalGenerator):
    """:class:`CausalGenerator` with llama.cpp doing the forward passes (CPU, GGUF models)."""

    drop_share = 0.0  # releasing a finished row's cells costs nothing here
    engine = "llama.cpp"

    def __init__(self, config: GeneratorConfig, model_path: str | None = None, gguf: str | None = None):
        from xqg.models.gguf import gemma_gguf_path

        self.gguf_path = Path(gguf) if gguf else gemma_gguf_path()
        self._ctx: Any = None
        self._ctx_cells = 0
        self._batch: Any = None
        self._batch_cap = 0  # the token batch outlives contexts: freed only when it must grow
        super().__init__(config, model_path)

    # loading ----------------------------------------------------------------------------------
    def _load_model(self) -> Any:
        lib = _lib()
        self.lib = lib
        if self.device.type != "cpu":
            raise XqgError(f"the llama.cpp engine runs on the CPU here, not on '{self.device}'")
        lib.llama_backend_init()
        mparams = lib.llama_model_default_params()
        model = lib.llama_model_load_from_file(str(self.gguf_path).encode(), mparams)
        if not model:
            raise XqgError(f"{self.gguf_path}: llama.cpp could not load this GGUF")
        self.vocab = lib.llama_model_get_vocab(model)
        self.n_vocab = int(lib.llama_vocab_n_tokens(self.vocab))
        self.adapter_merged = False
        self._lora = None
        if self.config.adapter:
            path = lora_gguf(self.config.adapter)
            self._lora = lib.llama_adapter_lora_init(model, str(path).encode())
            if not self._lora:
                raise XqgError(f"{path}: llama.cpp could not load this LoRA adapter")
            self.lora_path = path
        return model

    def _generation_config(self) -> Any:
        from transformers import GenerationConfig

        return GenerationConfig.from_pretrained(self.model_path)

    def _vocab_size(self) -> int:
        return self.n_vocab

    def _cache_argument(self) -> str:
        return ""

    def _parts(self) -> tuple[Any, Any]:
        return None, None

    def threads(self) -> int:
        return max(1, torch.get_num_threads())

    def _context(self, cells: int) -> Any:
        """A context with room for ``cells`` key/value cells (reused while big enough)."""
        lib = self.lib
        if self._ctx is not None and cells <= self._ctx_cells:
            return self._ctx
        if self._ctx is not None:
            lib.llama_free(self._ctx)
        n_ctx = max(2048, -(-cells // 1024) * 1024)
        p = lib.llama_context_default_params()
        p.n_ctx = n_ctx
        p.n_batch = n_ctx
        p.n_ubatch = 512
        p.n_seq_max = MAX_SEQ
        p.n_threads = p.n_threads_batch = self.threads()
        p.kv_unified = True  # one cell can belong to many sequences: the shared prefix
        p.swa_full = True
        p.no_perf = True
        ctx = lib.llama_init_from_model(self.model, p)
        if not ctx:
            raise XqgError(f"llama.cpp could not create a context of {n_ctx} cells")
        if self._lora is not None:
            arr = (lib.llama_adapter_lora_p_ctypes * 1)(self._lora)
            scales = (ctypes.c_float * 1)(1.0)
            if lib.llama_set_adapters_lora(ctx, arr, 1, scales) != 0:
                raise XqgError(f"{self.lora_path}: llama.cpp refused the LoRA adapter")
        self._ctx, self._ctx_cells = ctx, n_ctx
        return ctx

    def _llama_batch(self, n_tokens: int) -> Any:
        lib = self.lib
        if n_tokens > self._batch_cap:
            if self._batch_cap:
                lib.llama_batch_free(self._batch)
            self._batch = lib.llama_batch_init(n_tokens, 0, MAX_SEQ)
            self._batch_cap = n_tokens
        return self._batch

    # decoding ---------------------------------------------------------------------------------
    def _run(self, toks: list[tuple[int, int, list[int], bool]]) -> torch.Tensor:
        """Decode ``(token, pos, seq_ids, wants_logits)`` entries; the logits rows, in order."""
        lib = self.lib
        b = self._llama_batch(len(toks))
        n_out = 0
        for i, (tok, pos, seqs, want) in enumerate(toks):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = len(seqs)
            row = b.seq_id[i]
            for j, s in enumerate(seqs):
                row[j] = s
            b.logits[i] = 1 if want else 0
            n_out += bool(want)
        b.n_tokens = len(toks)
        rc = lib.llama_decode(self._ctx, b)
        if rc != 0:
            raise XqgError(f"llama.cpp decode failed (code {rc}) on a batch of {len(toks)} tokens")
        ptr = lib.llama_get_logits(self._ctx)
        arr = np.ctypeslib.as_array(ptr, shape=(n_out, self.n_vocab))
        return torch.from_numpy(arr)  # valid until the next decode: sampled before then

    #: Rows of a llama.cpp context are not merged mid-decode: each batch runs to its end.
    can_refill = False

    def batch_prompts(self, n: int) -> int:
        """At most ``MAX_SEQ`` rows: the default batch (132 prompts × 5) is more than one context holds."""
        return max(1, min(self.config.batch_size, MAX_SEQ // n))

    def _start(self, batch: list[PreparedPrompt], n: int) -> tuple[torch.Tensor, Any]:
        rows = len(batch) * n
        if rows > MAX_SEQ:
            raise XqgError(f"batch_size × n = {rows} rows exceeds llama.cpp's {MAX_SEQ} sequences")
        groups, lcp = shared_prefixes(batch)
        cells = sum(lcp.values()) + sum(len(p.ids) - lcp[p.group] for p in batch)
        cells += rows * self.config.max_new_tokens
        ctx = self._context(cells)
        self.lib.llama_memory_clear(self.lib.llama_get_memory(ctx), True)
        toks: list[tuple[int, int, list[int], bool]] = []
        for key, members in groups.items():
            seqs = [r * n + j for r in members for j in range(n)]
            ids = batch[members[0]].ids
            toks.extend((ids[t], t, seqs, False) for t in range(lcp[key]))
        for r, p in enumerate(batch):
            seqs = list(range(r * n, r * n + n))
            start = lcp[p.group]
            toks.extend((p.ids[t], t, seqs, t == len(p.ids) - 1) for t in range(start, len(p.ids)))
        logits = self._run(toks)
        reps = torch.arange(len(batch)).repeat_interleave(n)
        state = {"seq": list(range(rows)), "pos": [len(batch[r // n].ids) for r in range(rows)]}
        return logits[reps], state

    def _select(self, state: Any, keep: torch.Tensor) -> Any:
        keep_l = set(keep.tolist())
        mem = self.lib.llama_get_memory(self._ctx)
        seq, pos = state["seq"], state["pos"]
        for i, s in enumerate(seq):
            if i not in keep_l:
                self.lib.llama_memory_seq_rm(mem, s, -1, -1)
        idx = sorted(keep_l)
        return {"seq": [seq[i] for i in idx], "pos": [pos[i] for i in idx]}

    def _step(self, state: Any, nxt: torch.Tensor) -> tuple[torch.Tensor, Any]:
        seq, pos = state["seq"], state["pos"]
        toks = [(int(t), p, [s], True) for t, p, s in zip(nxt.tolist(), pos, seq, strict=True)]
        logits = self._run(toks)
        return logits, {"seq": seq, "pos": [p + 1 for p in pos]}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["gguf"] = self.gguf_path.name
        return d

    def __del__(self) -> None:  # pragma: no cover - process teardown
        try:
            if self._ctx is not None:
                self.lib.llama_free(self._ctx)
        except Exception:
            pass
