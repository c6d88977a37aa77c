"""Generator backends: one interface over seq2seq (mT5) and decoder-only (Gemma 3, Llama, …) models.

:func:`load_generator` picks the backend from the model's config (``is_encoder_decoder``) unless
:attr:`GeneratorConfig.backend` forces one. Both backends share the same front half — prompt
building, truncation, length-sorted batching and per-batch seeds — and differ in how a batch is
decoded:

* **seq2seq** runs one ``model.generate`` call per batch with ``num_return_sequences=n``:
  transformers encodes each prompt once and expands the encoder output n times, so that is
  already the efficient shape. The prompt is the paper's, fed to the tokenizer unchanged.
* **causal** uses a small sampling loop of its own (:meth:`CausalGenerator._decode_batch`), because
  ``generate`` wasted most of the time on a 2-core CPU (measured in ``bench/generate_throughput.py``):

  - ``num_return_sequences`` copies each prompt n times *before* the prefill, so the prompt was
    run n times; here it is run once and its key/value cache is copied n times;
  - the causal prompt puts the passage first, so the languages of one passage share a token
    prefix; it is run once per passage, then only the few language-specific tokens per language;
  - rows that stopped (newline or EOS) are dropped from the batch as the batch shrinks, instead of
    being carried to the longest question.

  The sampling itself uses transformers' own warpers (temperature, top-k, top-p, in
  ``generate``'s order; with top-k, applied to the k best logits only) and ``torch.multinomial``,
  so the distribution is the one ``generate`` samples from. ``tests/test_generate.py`` checks
  the decoding against ``generate`` token for token (greedy).

Determinism: a call's output depends only on its items, ``n``, ``seed`` and the config — never
on what ran before in the process — because batches are formed deterministically and each batch
draws from a generator seeded with :func:`derive_seed` ``(seed, batch index)``. That is what lets
a resumed run equal an uninterrupted one.

Why one module of ~700 lines: both backends share the front half (prompts, truncation,
batching, seeds) and the causal sampler's decode loop, top-k and shared-prefix state are one
unit that the throughput bench times as a whole; ``load_generator`` lives in ``engines.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch

from xqg.config import GeneratorConfig
from xqg.errors import XqgError
from xqg.generate.prompts import CAUSAL_STOP, clean_causal_output, get_prompt
from xqg.generate.shared_prefix import shared_prefixes
from xqg.generate.spec import adapter_fingerprint, resolved_config
from xqg.models.hardware import resolve_dtype
from xqg.types import Passage

Backend = Literal["seq2seq", "causal"]
Item = tuple[Passage, str]
Progress = Callable[[int], None]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Language used to show a prompt template in manifests (placeholders stand for title and passage).
SAMPLE_LANG = "ar"


def derive_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys, e.g. ``(config.seed, shard, batch)``.

    SeedSequence mixes the keys so that neighbouring shards or batches get unrelated streams, and
    the result does not depend on anything sampled earlier in the process.
    """
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


class Generator(Protocol):
    """What :func:`xqg.generate.run.generate_queries` needs from a backend."""

    config: GeneratorConfig

    def generate(
        self, items: Sequence[Item], n: int, seed: int, *, progress: Progress | None = None
    ) -> list[list[str]]:
        """For each ``(passage, lang)`` item, ``n`` cleaned query strings (input order)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What a manifest records about this generator."""
        ...


# -- resolution and description (no weights loaded) -------------------------------------------


def resolve_backend(config: GeneratorConfig, model_path: str | None = None) -> Backend:
    """``seq2seq`` or ``causal``: forced by ``config.backend``, else from ``is_encoder_decoder``."""
    if config.backend != "auto":
        return config.backend
    from transformers import AutoConfig

    from xqg.models.sources import resolve_model

    path = model_path or resolve_model(config.model)
    try:
        mcfg = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise XqgError(f"cannot read the config of model '{config.model}' ({path}): {e}") from e
    return "seq2seq" if getattr(mcfg, "is_encoder_decoder", False) else "causal"


def prompt_name(config: GeneratorConfig, backend: Backend) -> str:
    """``auto`` → the paper's prompt for seq2seq models, the causal prompt for decoder-only ones."""
    if config.prompt != "auto":
        return config.prompt
    return "paper" if backend == "seq2seq" else "causal"


def decoding_params(config: GeneratorConfig) -> dict[str, Any]:
    return {
        "do_sample": config.do_sample,
        "top_k": config.top_k,
        "top_p": config.top_p,
        "temperature": config.temperature,
        "max_new_tokens": config.max_new_tokens,
        "max_input_length": config.max_input_length,
    }


def _engine_label(config: GeneratorConfig, backend: Backend) -> str:
    if backend == "seq2seq":
        return "transformers.generate"
    if resolve_engine(config, backend) == "llama.cpp":
        return "llama.cpp (xqg causal sampler, shared-prefix KV cells)"
    return "xqg causal sampler (shared prefill)"


def describe_generator(config: GeneratorConfig, backend: Backend | None = None) -> dict[str, Any]:
    """The manifest's generator record, computable without loading the weights (resumed runs)."""
    from xqg.models.sources import model_info

    config = resolved_config(config)

    backend = backend or resolve_backend(config)
    name = prompt_name(config, backend)
    return {
        "backend": backend,
        "engine": _engine_label(config, backend),
        "model": model_info(config.model),
        "adapter": adapter_fingerprint(config.adapter),
        "prompt": {
            "name": name,
            "lang": SAMPLE_LANG,
            "template": get_prompt(name)(SAMPLE_LANG, "{title}", "{passage}"),
            "use_title": config.use_title,
            # causal: the query ends at the first newline or EOS after its first non-blank token.
            "stop": CAUSAL_STOP if backend == "causal" else None,
        },
        "decoding": decoding_params(config),
        "batch_size": config.batch_size,
        "dtype": resolve_dtype(config.dtype, str(_resolve_device(config.device))),
    }


# -- shared front half ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedPrompt:
    """One (passage, lang) item ready for the model: its prompt string and token ids."""

    index: int  # position in the caller's items
    group: str  # items of one group (passage) may share a prompt prefix
    prompt: str  # exactly what was tokenised
    ids: list[int]


def _resolve_device(device: str) -> torch.device:
    from xqg.models.encoder import resolve_device

    return resolve_device(device)


def ordered_groups(prepared: Sequence[PreparedPrompt]) -> list[list[PreparedPrompt]]:
    """The prompts of each group (passage), groups ordered by their longest prompt (ties: input order)."""
    groups: dict[str, list[PreparedPrompt]] = {}
    for p in prepared:
        groups.setdefault(p.group, []).append(p)
    return sorted(groups.values(), key=lambda g: (-max(len(p.ids) for p in g), g[0].index))


class HFGenerator:
    """Loads model + tokenizer (+ adapter), builds and truncates prompts, forms seeded batches."""

    backend: Backend = "causal"

    def __init__(self, config: GeneratorConfig, model_path: str | None = None) -> None:
        from xqg.models.sources import resolve_model

        self.config = config
        self.model_path = model_path or resolve_model(config.model)
        self.device = _resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, str(self.device))
        self.prompt_name = prompt_name(config, self.backend)
        self._prompt = get_prompt(self.prompt_name)
        self.tokenizer = self._load_tokenizer()
        self.model = self._load_model()
        self.pad_id = self._pad_id()

    # loading ----------------------------------------------------------------------------------
    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        # An adapter trained with a modified tokenizer (e.g. an added pad token) saves it beside itself.
        src = self.model_path
        if self.config.adapter and (Path(self.config.adapter) / "tokenizer_config.json").exists():
            src = self.config.adapter
        try:
            return AutoTokenizer.from_pretrained(src)
        except (OSError, ValueError) as e:
            raise XqgError(f"cannot load the tokenizer of '{self.config.model}' ({src}): {e}") from e

    def _auto_class(self) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def _load_model(self) -> Any:
        try:
            model = self._auto_class().from_pretrained(self.model_path, dtype=_DTYPES[self.dtype])
        except (OSError, ValueError) as e:
            raise XqgError(f"cannot load model '{self.config.model}' ({self.model_path}): {e}") from e
        self.adapter_merged = False
        if self.config.adapter:
            from peft import PeftModel

            adapter_fingerprint(self.config.adapter)  # a clear error for a folder that is not an adapter
            model = PeftModel.from_pretrained(model, self.config.adapter)
            # Merged LoRA weights cost nothing per token; unmerged ones add two small matmuls per
            # projection (measured: see docs/generation.md).
            model = model.merge_and_unload()
            self.adapter_merged = True
        return model.to(self.device).eval()

    def _pad_id(self) -> int:
        for cand in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0):
            if cand is not None:
                return int(cand)
        return 0  # pragma: no cover

    # prompts ----------------------------------------------------------------------------------
    def _encode(self, prompts: list[str]) -> list[list[int]]:
        return self.tokenizer(prompts, add_special_tokens=True, truncation=False)["input_ids"]

    def prompt_for(self, passage: Passage, lang: str, text: str | None = None) -> str:
        title = passage.title if self.config.use_title else ""
        return self._prompt(lang, title, passage.text if text is None else text)

    def prepare(self, items: Sequence[Item]) -> list[PreparedPrompt]:
        """Prompts and token ids of ``items``, each within ``max_input_length`` tokens.

        A prompt that is too long loses the end of its *passage* text — never the instruction,
        which the causal prompt puts after the passage. The cut is made at a token boundary of the
        passage (via the fast tokenizer's offsets) and re-checked, since tokens can merge across it.
        """
        limit = self.config.max_input_length
        prompts = [self.prompt_for(p, lang) for p, lang in items]
        ids = self._encode(prompts)
        out: list[PreparedPrompt] = []
        for i, ((passage, lang), prompt, tok) in enumerate(zip(items, prompts, ids, strict=True)):
            if len(tok) > limit:
                prompt, tok = self._truncate(passage, lang, len(tok) - limit)
            out.append(PreparedPrompt(i, passage.id, prompt, list(tok)))
        return out

    def _truncate(self, passage: Passage, lang: str, overflow: int) -> tuple[str, list[int]]:
        limit = self.config.max_input_length
        enc = self.tokenizer(passage.text, add_special_tokens=False, return_offsets_mapping=True)
        offsets: list[tuple[int, int]] = enc["offset_mapping"]
        keep = len(offsets) - overflow
        for _ in range(len(offsets) + 1):
            keep = max(keep, 0)
            text = passage.text[: offsets[keep - 1][1]] if keep > 0 else ""
            prompt = self.prompt_for(passage, lang, text)
            tok = self._encode([prompt])[0]
            if len(tok) <= limit:
                return prompt, tok
            if keep == 0:
                break
            keep -= max(1, len(tok) - limit)
        raise XqgError(
            f"max_input_length={limit} leaves no room for any passage text in the '{self.prompt_name}' "
            f"prompt (passage {passage.id}, lang {lang}); raise it"
        )

    # batching ---------------------------------------------------------------------------------
    def batches(self, prepared: list[PreparedPrompt], size: int | None = None) -> list[list[PreparedPrompt]]:
        """Length-sorted batches (longest first) of at most ``batch_size`` prompts.

        The items of one passage (its languages) are kept in one batch where they fit, so they can
        share a prefill; passages are ordered by their longest prompt. The order depends only on
        the items, which keeps batch composition — and thus sampling — reproducible.
        """
        ordered = ordered_groups(prepared)
        bs = size or self.config.batch_size
        out: list[list[PreparedPrompt]] = []
        cur: list[PreparedPrompt] = []
        for g in ordered:
            if cur and len(cur) + len(g) > bs:
                out.append(cur)
                cur = []
            while len(g) > bs:  # more languages than fit in a batch
                out.append(g[:bs])
                g = g[bs:]
            cur.extend(g)
        if cur:
            out.append(cur)
        return out

    def generate(
        self, items: Sequence[Item], n: int, seed: int, *, progress: Progress | None = None
    ) -> list[list[str]]:
        """For each ``(passage, lang)`` item, ``n`` cleaned queries; ``progress(k)`` after each batch."""
        if n < 1:
            raise XqgError(f"n must be at least 1, not {n}")
        if not items:
            return []
        prepared = self.prepare(items)
        results: list[list[str]] = [[] for _ in items]
        with torch.inference_mode():
            for batch, texts in self._decode_all(prepared, n, seed):
                for p, t in zip(batch, texts, strict=True):
                    results[p.index] = t
                if progress is not None:
                    progress(len(batch))
        return results

    def _decode_all(
        self, prepared: list[PreparedPrompt], n: int, seed: int
    ) -> Iterator[tuple[list[PreparedPrompt], list[list[str]]]]:
        """``(prompts, their n texts each)`` for all of ``prepared``: one seeded batch at a time."""
        for b, batch in enumerate(self.batches(prepared, self.batch_prompts(n))):
            yield batch, self._decode_batch(batch, n, derive_seed(seed, b))

    def batch_prompts(self, n: int) -> int:
        """Prompts per batch at ``n`` samples each (``config.batch_size``; engines may cap it)."""
        return self.config.batch_size

    def _decode_batch(self, batch: list[PreparedPrompt], n: int, seed: int) -> list[list[str]]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        d = describe_generator(self.config, self.backend)
        d["device"] = str(self.device)
        if self.config.adapter:
            d["adapter"]["merged"] = self.adapter_merged
        return d


# -- seq2seq (mT5) -------------------------------------------------------------------------------


class Seq2SeqGenerator(HFGenerator):
    """mT5-style models: the paper's prompt, one ``generate`` call per batch, n samples per prompt."""

    backend: Backend = "seq2seq"

    def _auto_class(self) -> Any:
        from transformers import AutoModelForSeq2SeqLM

        return AutoModelForSeq2SeqLM

    def generation_config(self, n: int) -> Any:
        """Decoding from :class:`GeneratorConfig` only — not the checkpoint's sampling defaults."""
        from transformers import GenerationConfig

        base = self.model.generation_config
        c = self.config
        return GenerationConfig(
            do_sample=c.do_sample,
            top_k=c.top_k or 0,
            top_p=c.top_p if c.top_p is not None else 1.0,
            temperature=c.temperature,
            max_new_tokens=c.max_new_tokens,
            num_return_sequences=n,
            pad_token_id=base.pad_token_id if base.pad_token_id is not None else self.pad_id,
            eos_token_id=base.eos_token_id,
            decoder_start_token_id=base.decoder_start_token_id,
            bos_token_id=base.bos_token_id,
        )

    def _decode_batch(self, batch: list[PreparedPrompt], n: int, seed: int) -> list[list[str]]:
        width = max(len(p.ids) for p in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, p in enumerate(batch):
            ids[r, : len(p.ids)] = torch.tensor(p.ids)
            mask[r, : len(p.ids)] = 1
        torch.manual_seed(seed)  # generate samples from the global generator
        out = self.model.generate(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            generation_config=self.generation_config(n),
        )
        texts = [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
        return [texts[r * n : (r + 1) * n] for r in range(len(batch))]


# -- causal (Gemma 3, Llama, …) ------------------------------------------------------------------


def stop_token_masks(
    tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two booleans over the vocabulary: tokens that end a causal query (any containing a newline,
    and EOS), and blank tokens (whitespace only, newlines included).

    Checked on each decoded token rather than fixed ids, because vocabularies have many newline
    tokens (Gemma 3: "\\n", "\\n\\n", …; byte-level BPE: "Ċ", ".Ċ").
    """
    stop = torch.zeros(vocab_size, dtype=torch.bool)
    blank = torch.zeros(vocab_size, dtype=torch.bool)
    n_tok = min(len(tokenizer), vocab_size)
    texts = tokenizer.batch_decode([[i] for i in range(n_tok)], skip_special_tokens=False)
    for i, t in enumerate(texts):
        if CAUSAL_STOP in t:
            stop[i] = True
        if not t.strip():
            blank[i] = True
    for e in eos_ids:
        if 0 <= e < vocab_size:
            stop[e] = True
    return stop, blank


class StopTokenCriteria:
    """A ``generate`` stopping criterion with the causal backend's rule (newline or EOS token).

    With :class:`SuppressStopUntilText`, it lets plain ``model.generate`` decode exactly like the
    causal backend (the naive loop in the benchmark, the equivalence test).
    """

    def __init__(self, stop: torch.Tensor) -> None:
        self.stop = stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return self.stop.to(input_ids.device)[input_ids[:, -1]]


class SuppressStopUntilText:
    """A ``generate`` logits processor: no stop token until a row has produced a non-blank token."""

    def __init__(self, stop: torch.Tensor, blank: torch.Tensor, prompt_width: int) -> None:
        self.stop, self.blank, self.prompt_width = stop, blank, prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        new = input_ids[:, self.prompt_width :]
        no_text = self.blank.to(new.device)[new].all(dim=1)
        return scores.masked_fill(no_text[:, None] & self.stop.to(scores.device)[None, :], float("-inf"))


#: Vocabulary chunk of :func:`top_k`'s first stage (fastest of 512/1024/2048 for 110 × 262k bf16).
TOPK_CHUNK = 512


def top_k(logits: torch.Tensor, k: int, chunk: int = TOPK_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest logits of each row and their token ids, ties ordered by token id.

    Exact, in two stages for large vocabularies: the max of every ``chunk`` consecutive logits,
    the ``k`` chunks with the largest maxima (they hold the ``k`` largest values), then top-k over
    those ``k · chunk`` candidates. With Gemma's 262k tokens and 110 rows, ``torch.topk`` over the
    whole row took 74 ms a step against 25 ms for the two stages (1 thread, bf16). Ties — common
    in bf16 — are ordered by token id, so the sample a seed draws does not depend on how a topk
    kernel happens to order equal values.
    """
    rows, vocab = logits.shape
    m = vocab // chunk
    if m < 4 * k:
        values, index = logits.topk(k, dim=-1)
    else:
        head = logits[:, : m * chunk].view(rows, m, chunk)
        best = head.amax(-1).topk(k, dim=-1).indices  # [rows, k] chunk numbers
        cand = head.gather(1, best[:, :, None].expand(rows, k, chunk)).reshape(rows, k * chunk)
        cidx = (best[:, :, None] * chunk + torch.arange(chunk, device=logits.device)).reshape(rows, -1)
        if m * chunk < vocab:  # the tail that fills no whole chunk is always a candidate
            tail = torch.arange(m * chunk, vocab, device=logits.device)
            cand = torch.cat([cand, logits[:, m * chunk :]], dim=1)
            cidx = torch.cat([cidx, tail.expand(rows, -1)], dim=1)
        values, j = cand.topk(k, dim=-1)
        index = cidx.gather(1, j)
    # canonical order: value descending, token id ascending among equal values
    by_id = index.argsort(dim=-1)
    values, index = values.gather(1, by_id), index.gather(1, by_id)
    by_value = values.float().argsort(dim=-1, descending=True, stable=True)
    return values.gather(1, by_value), index.gather(1, by_value)


class CausalGenerator(HFGenerator):
    """Decoder-only models: prompt → continuation up to the first newline, n samples per prompt."""

    backend: Backend = "causal"

    def __init__(self, config: GeneratorConfig, model_path: str | None = None) -> None:
        super().__init__(config, model_path)
        from transformers import (
            LogitsProcessorList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        eos = self._generation_config().eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.append(int(self.tokenizer.eos_token_id))
        vocab = self._vocab_size()
        stop, blank = stop_token_masks(self.tokenizer, vocab, eos_ids)
        self.stop_mask, self.blank_mask = stop.to(self.device), blank.to(self.device)
        c = config
        warpers: list[Any] = []  # the order generate() applies them in
        if c.temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(c.temperature))
        if c.top_k:
            warpers.append(TopKLogitsWarper(top_k=c.top_k))
        if c.top_p is not None and c.top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p=c.top_p))
        self.warpers = LogitsProcessorList(warpers)
        self._cache_kw = self._cache_argument()
        self._decoder, self._head = self._parts()
        from xqg.generate import shared_prefix

        self._shared_prefix = self.model is not None and shared_prefix.register(self.model)
        model_cfg = getattr(self.model, "config", None)
        self._softcap = getattr(model_cfg, "final_logit_softcapping", None)
        #: The attention window of sliding layers (None: no sliding layer): refilled rows must stay inside.
        self.sliding_window: int | None = getattr(model_cfg, "sliding_window", None)
        self.refill_stats: dict[str, int] = {}

    #: Whether this engine can merge new rows into live ones (``xqg.generate.refill``).
    can_refill = True

    def _decode_all(
        self, prepared: list[PreparedPrompt], n: int, seed: int
    ) -> Iterator[tuple[list[PreparedPrompt], list[list[str]]]]:
        """Continuous batching (``config.refill``) where the shared-prefix state exists, else batches."""
        if not (self.config.refill and self.can_refill and self._shared_prefix):
            yield from super()._decode_all(prepared, n, seed)
            return
        from xqg.generate import refill

        work = refill.units(ordered_groups(prepared), self.config.batch_size)
        yield from refill.decode_stream(self, work, n, derive_seed(seed, 0))

    def _parts(self) -> tuple[Any, Any]:
        """The decoder stack and the output layer of the causal LM (Llama/Gemma/Qwen-style)."""
        return self.model.get_decoder(), self.model.get_output_embeddings()

    def _generation_config(self) -> Any:
        return self.model.generation_config

    def _vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def _cache_argument(self) -> str:
        params = inspect.signature(self.model.forward).parameters
        # transformers 5.2x renamed the forward's cache argument from past_key_values to cache.
        return "cache" if "cache" in params else "past_key_values"

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """One forward over new columns ``ids``; ``mask`` covers cached + new columns (0 = padding)."""
        pos = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        out = self._decoder(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            **{self._cache_kw: cache},
        )
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = out.past_key_values
        return self._logits(out.last_hidden_state[:, -1]), new_cache

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output layer on the last position's hidden states, as the model's own forward does.

        Done here rather than with ``logits_to_keep=1``: the model then applies the output layer to
        a non-contiguous ``[rows, 1, hidden]`` slice, which torch runs as a batched matmul over a
        copy of the 262k-row weight per row (measured: 26 s of a 56 s bf16 batch of 11 prompts).
        """
        logits = self._head(hidden.contiguous())
        if self._softcap:
            logits = torch.tanh(logits.float() / self._softcap) * self._softcap
        # Kept in the model's dtype: the sampler converts only the k best values (a float copy of
        # bf16 logits over 262k tokens cost ~30 ms a step for 55 rows).
        return logits

    def _prefill(self, batch: list[PreparedPrompt], n: int) -> tuple[torch.Tensor, torch.Tensor, Any]:
        """Run the prompts once; return (first-token logits, mask, cache) with each row repeated n times.

        Stage 1 runs each group's common token prefix once (the passage, shared by its languages),
        stage 2 the rest of each prompt (the language instruction), right-aligned so that every
        row's last prompt token is in the last column; padding sits on the left of each part and
        is masked out. Position ids follow the mask, so padding does not shift positions.
        """
        dev = self.device
        groups, lcp = shared_prefixes(batch)
        keys = list(groups)
        self._group_kv = []
        wp = max(lcp.values())
        cache = None
        item_group = torch.tensor([keys.index(p.group) for p in batch], device=dev)
        pmask = torch.zeros((len(batch), 0), dtype=torch.long, device=dev)
        if wp > 0:
            pids = torch.full((len(keys), wp), self.pad_id, dtype=torch.long)
            pm = torch.zeros((len(keys), wp), dtype=torch.long)
            for g, k in enumerate(keys):
                if lcp[k]:
                    pids[g, wp - lcp[k] :] = torch.tensor(batch[groups[k][0]].ids[: lcp[k]])
                    pm[g, wp - lcp[k] :] = 1
            pids, pm = pids.to(dev), pm.to(dev)
            _, cache = self._forward(pids, pm, None)
            # each group's prefix, once (kept for the shared-prefix decode steps, see _start)
            self._group_kv = [(lay.keys, lay.values) for lay in getattr(cache, "layers", [])]
            cache.batch_select_indices(item_group)
            pmask = pm[item_group]
        suffixes = [p.ids[lcp[p.group] :] for p in batch]
        ws = max(len(s) for s in suffixes)
        sids = torch.full((len(batch), ws), self.pad_id, dtype=torch.long)
        sm = torch.zeros((len(batch), ws), dtype=torch.long)
        for r, s in enumerate(suffixes):
            sids[r, ws - len(s) :] = torch.tensor(s)
            sm[r, ws - len(s) :] = 1
        mask = torch.cat([pmask, sm.to(dev)], dim=1)
        logits, cache = self._forward(sids.to(dev), mask, cache)
        rows = torch.arange(len(batch), device=dev).repeat_interleave(n)
        cache.batch_select_indices(rows)
        self._group_of_row = item_group[rows]
        return logits[rows], mask[rows], cache

    def _sample(self, logits: torch.Tensor, gen: torch.Generator, no_text: torch.Tensor) -> torch.Tensor:
        if bool(no_text.any()):
            # A query cannot be empty: a row may not stop before its first non-blank token (base
            # models like to start the question on the next line, or after a space). Only those
            # rows are touched, in place (the logits are this step's own): with refill, new rows
            # arrive at most steps, and a full-width mask cost a copy of all rows' logits.
            rows = no_text.nonzero().squeeze(1)
            logits[rows] = logits[rows].masked_fill(self.stop_mask[None, :], float("-inf"))
        if not self.config.do_sample:
            return logits.float().argmax(-1)
        k = self.config.top_k
        if k and k < logits.shape[-1]:
            # Same distribution as generate's warpers (temperature → top-k → top-p), computed on
            # the k best logits instead of the whole vocabulary: with Gemma's 262k tokens and 40
            # rows, the full-vocabulary passes cost ~0.1 s per step on 2 CPU cores.
            values, index = top_k(logits, k)
            scores = self.warpers(None, values.float())  # top-k of k values is a no-op; ignores input_ids
            pick = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=gen)
            return index.gather(1, pick).squeeze(1)
        scores = self.warpers(None, logits.float())
        return torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=gen).squeeze(1)

    #: Finished rows leave the batch once they are this share of the live rows (0: at once).
    #: Dropping them copies the transformers cache, which costs about a decode step.
    drop_share = 0.25

    def _start(self, batch: list[PreparedPrompt], n: int) -> tuple[torch.Tensor, Any]:
        """First-token logits of every row (each prompt repeated n times) and the decoding state."""
        from xqg.generate import shared_prefix

        shared_prefix.uninstall()  # a prefill never reads another batch's shared prefixes
        logits, mask, cache = self._prefill(batch, n)
        sp = None
        if self._shared_prefix and self._group_kv:
            sp = shared_prefix.install(cache, self._group_kv, self._group_of_row, self.config.max_new_tokens)
        self._group_kv = []
        return logits, (mask, cache, sp)

    def _select(self, state: Any, keep: torch.Tensor) -> Any:
        """Keep only the live rows ``keep`` of the decoding state."""
        mask, cache, sp = state
        cache.batch_select_indices(keep)
        return mask[keep], cache, sp

    def _step(self, state: Any, nxt: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Feed each live row its sampled token; the next logits and state."""
        from xqg.generate import shared_prefix

        mask, cache, sp = state
        shared_prefix.activate(sp)
        mask = torch.cat([mask, torch.ones((len(nxt), 1), dtype=mask.dtype, device=mask.device)], dim=1)
        logits, cache = self._forward(nxt.unsqueeze(1), mask, cache)
        return logits, (mask, cache, sp)

    def _decode_batch(self, batch: list[PreparedPrompt], n: int, seed: int) -> list[list[str]]:
        """Sample ``n`` continuations of every prompt of ``batch`` (the loop both engines share)."""
        dev = self.device
        logits, state = self._start(batch, n)
        total = logits.shape[0]
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        tokens: list[list[int]] = [[] for _ in range(total)]
        active = torch.arange(total, device=dev)  # original row of each live row
        done = torch.zeros(total, dtype=torch.bool, device=dev)
        no_text = torch.ones(total, dtype=torch.bool, device=dev)
        for step in range(self.config.max_new_tokens):
            nxt = self._sample(logits, gen, no_text)
            for row, tok, d in zip(active.tolist(), nxt.tolist(), done.tolist(), strict=True):
                if not d:
                    tokens[row].append(tok)
            done |= self.stop_mask[nxt]
            no_text &= self.blank_mask[nxt]
            if bool(done.all()) or step == self.config.max_new_tokens - 1:
                break
            n_done = int(done.sum())
            if n_done and n_done >= self.drop_share * len(active):
                keep = (~done).nonzero().squeeze(1)
                state = self._select(state, keep)
                active, nxt = active[keep], nxt[keep]
                done, no_text = done[keep], no_text[keep]
            logits, state = self._step(state, nxt)
        from xqg.generate import shared_prefix

        shared_prefix.uninstall()
        return self._texts(tokens, n)

    def _texts(self, tokens: list[list[int]], n: int) -> list[list[str]]:
        """Decoded, cleaned queries, ``n`` per prompt (rows are prompt-major)."""
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        cleaned = [clean_causal_output(t) for t in texts]
        return [cleaned[r * n : (r + 1) * n] for r in range(len(tokens) // n)]


def resolve_engine(config: GeneratorConfig, backend: Backend | None = None) -> str:
    """``transformers`` or ``llama.cpp``, from ``config.engine``; checked without loading weights.

    ``auto`` is transformers: on this project's CPUs it was the faster engine once its overheads
    were removed (bf16, shared-prefix decode steps; ``docs/generation.md``), and it serves every
    model — any HF id or folder, seq2seq models (the paper's mT5), GPUs. llama.cpp runs only the
    shipped GGUF Gemma on a CPU, and only when asked for; asking for it where it cannot run is an
    error, not a silent fallback.
    """
    from xqg.generate.spec import check_llama_engine

    if config.engine != "llama.cpp":
        return "transformers"
    on_cpu = _resolve_device(config.device).type == "cpu"
    check_llama_engine(config, on_cpu=on_cpu, causal=(backend or "causal") == "causal")
    return "llama.cpp"
