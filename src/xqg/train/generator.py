"""Fine-tune a question generator (Gemma 3 270M with LoRA by default; mT5/T5 the paper's way).

Why a hand-written loop rather than the HF Trainer: on CPU most of a causal-LM training step went
to the output layer (262k-word vocabulary) at *every* position, although only the question tokens
carry a loss. Batches here are **left-padded** so every question ends at the last position, and
the model is called with ``logits_to_keep=K`` (K = longest question + 1): logits are computed for
the last K positions only. That needs control over batching and the loss, which a short loop
gives directly; checkpoint and resume are then implemented here too:

* a checkpoint (every ``save_every`` steps, and when stopping) is a folder
  ``checkpoints/step-NNNNNN/`` holding the trainable weights (``trainable.safetensors``), the
  optimizer state (``optimizer.pt``: tensors and numbers only, loaded with ``weights_only=True``),
  the torch RNG states (``rng.safetensors``) and ``state.json`` (step, examples consumed, seconds,
  loss history length). The learning-rate schedule is a pure function of the step, so it needs no
  state. Data position = examples consumed, in the fixed order of ``data/train.jsonl``.
* ``resume=True`` loads the newest complete checkpoint and continues; an uninterrupted run and an
  interrupted-then-resumed run with the same seed give the same weights (tested).

Stopping: after ``max_steps`` steps or once ``max_minutes`` of training time are spent
(checked after every step), the run saves a checkpoint, the final adapter/model, ``loss.csv``,
``loss.png`` and ``training.json``. A LoRA adapter is saved as safetensors, in bfloat16 when float32
would exceed ``adapter_max_mb`` (the committed adapter must stay ≤ 20 MB).

Input format (causal): ``causal_prompt(lang, title, source) + " " + question + <eos>``; the loss is on
the question tokens and the eos only. Prompt and question are tokenised separately and
concatenated, so generation from the bare prompt sees exactly the training prompt tokens;
``clean_causal_output`` still cuts at a newline, which the model never learns to emit before eos.
Seq2seq (mT5/T5): input ``paper_prompt(lang, title, source)`` truncated to ``max_source_tokens``
(the paper: 128), labels = the question + eos.
"""

from __future__ import annotations

import csv
import math
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from xqg.config import _Strict, load_config_file, parse_config
from xqg.errors import XqgError
from xqg.generate.prompts import causal_prompt, paper_prompt
from xqg.io import (
    atomic_open,
    atomic_path,
    config_hash,
    environment,
    read_json,
    start_folder,
    unlock_folder,
    write_json,
)
from xqg.models.sources import GEMMA_MODEL, model_info, resolve_model
from xqg.progress import progress_bar
from xqg.train.generator_data import (
    DATA_MANIFEST,
    DEV_FILE,
    TRAIN_FILE,
    XQUAD_TARGET_LANGS,
    GenExample,
    build_generator_data,
    read_examples,
    write_generator_data,
)

#: Linear layers LoRA adapts when ``lora_targets`` is "auto": every attention and MLP projection
#: (Llama/Gemma names, then T5/mT5 names); only the names present in the model are used.
AUTO_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
AUTO_LORA_TARGETS_T5 = ("q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo")
#: Config fields that may change when resuming (they control how long/how often, not what is learnt).
RUN_CONTROL_FIELDS = frozenset(
    {"max_steps", "max_minutes", "save_every", "eval_every", "log_every", "threads"}
)
CHECKPOINTS = "checkpoints"
ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
EXPORT_FILES = ("adapter_config.json", "adapter_model.safetensors")
EXPORT_EXTRA = ("training.json", "loss.csv", "loss.png")


class GenTrainConfig(_Strict):
    """Settings of ``xqg train-generator``. Defaults: the CPU recipe for Gemma 3 270M + LoRA.

    For the paper's mT5 recipe on a GPU see :meth:`paper_mt5`.
    """

    model: str = Field(GEMMA_MODEL, description="HF id, local folder, or 'gguf:gemma-3-270m'")
    backend: Literal["auto", "causal", "seq2seq"] = "auto"
    method: Literal["lora", "full"] = "lora"
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: list[str] | Literal["auto"] = "auto"
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(20, ge=0)
    schedule: Literal["constant", "linear", "cosine"] = Field(
        "linear", description="after warm-up; linear/cosine decay to 10% over max_steps"
    )
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    max_steps: int = Field(1000, ge=1)
    max_minutes: float | None = Field(None, gt=0, description="stop cleanly and save when spent")
    max_source_tokens: int = Field(320, ge=8, description="causal: passage tokens; seq2seq: input tokens")
    max_target_tokens: int = Field(48, ge=4)
    logits: Literal["targets", "all"] = Field(
        "targets", description="causal: compute logits only for the question positions (fast) or all"
    )
    packing: bool = Field(True, description="causal: pack a batch into rows, shared passages computed once")
    max_row_tokens: int = Field(1536, ge=64, description="packing: longest row (attention is quadratic)")
    seed: int = 0
    save_every: int = Field(50, ge=1)
    keep_checkpoints: int = Field(2, ge=1)
    eval_every: int = Field(50, ge=1)
    log_every: int = Field(10, ge=1)
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: str = Field("auto", description="'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1'")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads on CPU")
    adapter_max_mb: float = Field(20.0, gt=0)
    # data
    xquad_langs: list[str] = list(XQUAD_TARGET_LANGS)
    xor_langs: list[str] = ["ar", "bn", "fi", "ja", "ko", "ru", "te"]
    include_english: bool = False
    per_lang: int | None = Field(None, ge=1, description="examples per language per epoch")
    xor_share: float = Field(0.5, ge=0, le=1)
    epochs: int = Field(3, ge=1, description="epochs of data written; the stream wraps if exceeded")
    dev_per_lang: int = Field(8, ge=0)
    group_size: int = Field(
        8, ge=1, description="consecutive XQuAD pairs sharing a paragraph (what packing shares)"
    )

    @classmethod
    def paper_mt5(cls, model: str = "google/mt5-base", **kw: Any) -> GenTrainConfig:
        """The paper's recipe: mT5, full fine-tuning, lr 1e-4, 128 input tokens (needs a GPU)."""
        base: dict[str, Any] = {
            "model": model,
            "backend": "seq2seq",
            "method": "full",
            "lr": 1e-4,
            "max_source_tokens": 128,
            "max_target_tokens": 64,
            "schedule": "constant",
            "warmup_steps": 0,
        }
        base.update(kw)
        return cls(**base)


def load_gen_train_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> GenTrainConfig:
    """A config file (YAML/TOML, keys of :class:`GenTrainConfig`) plus non-None overrides."""
    data: dict[str, Any] = load_config_file(path) if path is not None else {}
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return parse_config(GenTrainConfig, data, str(path) if path else "command line")


# --- batching -----------------------------------------------------------------------------------


@dataclass
class Batch:
    """Model inputs plus ``labels`` (-100 = no loss; ``labels[b, t]`` is the token at ``t``).

    ``keep`` (causal only): ``keep[b, t]`` is True where the logits at position ``t`` are needed, i.e.
    where ``labels[b, t + 1]`` is a target token; ``None`` for seq2seq.
    """

    inputs: dict[str, Any]
    labels: Any
    keep: Any
    n_targets: int

    def to(self, device: Any) -> Batch:
        inputs = {k: v.to(device) for k, v in self.inputs.items()}
        keep = None if self.keep is None else self.keep.to(device)
        return Batch(inputs, self.labels.to(device), keep, self.n_targets)


def _truncate_chars(tokenizer: Any, text: str, max_tokens: int) -> str:
    """Cut ``text`` at a token boundary so it has at most ``max_tokens`` tokens (original characters)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    if len(enc["input_ids"]) <= max_tokens:
        return text
    return text[: enc["offset_mapping"][max_tokens - 1][1]]


def causal_ids(tokenizer: Any, ex: GenExample, cfg: GenTrainConfig) -> tuple[list[int], list[int]]:
    """(prompt ids with BOS, target ids ending in EOS) for one example, both truncated per config."""
    source = _truncate_chars(tokenizer, ex.source, cfg.max_source_tokens)
    prompt = tokenizer(causal_prompt(ex.lang, ex.title, source), add_special_tokens=True)["input_ids"]
    target = tokenizer(" " + ex.target, add_special_tokens=False)["input_ids"][: cfg.max_target_tokens - 1]
    return list(prompt), [*target, tokenizer.eos_token_id]


def _keep_mask(labels: Any) -> Any:
    import torch

    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def collate_causal(tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig) -> Batch:
    """Left-pad so every target ends at the last position; labels only on target tokens.

    ``position_ids`` count from the first real token, so a left-padded example is computed exactly
    as it would be alone. (Without packing, left padding keeps the needed logits in one block at
    the end; with the boolean ``keep`` mask the position does not matter, but the layout is kept
    because it is also what batched generation uses.)
    """
    import torch

    pairs = [causal_ids(tokenizer, ex, cfg) for ex in examples]
    length = max(len(p) + len(t) for p, t in pairs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.full((len(pairs), length), pad, dtype=torch.long)
    mask = torch.zeros((len(pairs), length), dtype=torch.long)
    labels = torch.full((len(pairs), length), -100, dtype=torch.long)
    for i, (p, t) in enumerate(pairs):
        seq = p + t
        ids[i, length - len(seq) :] = torch.tensor(seq)
        mask[i, length - len(seq) :] = 1
        labels[i, length - len(t) :] = torch.tensor(t)
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    inputs = {"input_ids": ids, "attention_mask": mask, "position_ids": position_ids}
    return Batch(
        inputs=inputs, labels=labels, keep=_keep_mask(labels), n_targets=sum(len(t) for _, t in pairs)
    )


def collate_packed(
    tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig, dtype: Any = None
) -> Batch:
    """Pack a batch into few rows that compute each shared passage once (prefix sharing).

    Examples with the same source share their prompt's token prefix (``<bos>Passage: …``, up to
    where the prompts differ, at most all but the last prompt token). A row holds, per source,
    that prefix once and then each example's own suffix (rest of the prompt + question + eos).
    A 4-D additive attention mask lets a prefix token see the earlier tokens of its prefix and a
    suffix token see its prefix plus the earlier tokens of its own suffix; ``position_ids``
    continue from the prefix, so every example is computed exactly as if alone (tested), while an
    XQuAD passage asked about in 8 languages costs one passage forward instead of eight.

    Source groups are put into rows of at most ``cfg.max_row_tokens`` tokens (a larger group gets
    a row of its own), because attention over a row is quadratic in its length: a batch of 16
    unrelated passages in one row would cost more than padding them. Rows are right-padded;
    padding tokens see only themselves and carry no loss.
    """
    import torch

    dtype = dtype or torch.float32
    groups: dict[tuple[str, str], list[tuple[list[int], list[int]]]] = {}
    for ex in examples:
        groups.setdefault((ex.source, ex.title), []).append(causal_ids(tokenizer, ex, cfg))
    # one group → (ids, positions, labels, segment ids: -1 = shared prefix, k = k-th suffix)
    packed: list[tuple[list[int], list[int], list[int], list[int]]] = []
    for members in groups.values():
        prompts = [p for p, _ in members]
        c = min(len(p) for p in prompts) - 1  # every suffix keeps >= 1 prompt token
        for p in prompts[1:]:
            c = next((k for k in range(c) if p[k] != prompts[0][k]), c)
        ids, pos, lab, seg = prompts[0][:c], list(range(c)), [-100] * c, [-1] * c
        for k, (p, t) in enumerate(members):
            suffix = p[c:] + t
            ids = ids + suffix
            pos += list(range(c, c + len(suffix)))
            lab += [-100] * (len(p) - c) + t
            seg += [k] * len(suffix)
        packed.append((ids, pos, lab, seg))
    rows: list[list[int]] = []  # group indices per row, first fit in batch order
    sizes: list[int] = []
    for g, (ids, *_rest) in enumerate(packed):
        for r, size in enumerate(sizes):
            if size + len(ids) <= cfg.max_row_tokens:
                rows[r].append(g)
                sizes[r] += len(ids)
                break
        else:
            rows.append([g])
            sizes.append(len(ids))
    n = max(sizes)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), n), pad, dtype=torch.long)
    position_ids = torch.zeros((len(rows), n), dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    mask = torch.full((len(rows), 1, n, n), torch.finfo(dtype).min, dtype=dtype)
    idx = torch.arange(n)
    for r, members in enumerate(rows):
        grp = torch.full((n,), -1, dtype=torch.long)  # -1 = padding
        seg = torch.full((n,), -2, dtype=torch.long)
        at = 0
        for g in members:
            ids, pos, lab, sg = packed[g]
            sl = slice(at, at + len(ids))
            input_ids[r, sl] = torch.tensor(ids)
            position_ids[r, sl] = torch.tensor(pos)
            labels[r, sl] = torch.tensor(lab)
            grp[sl] = g
            seg[sl] = torch.tensor(sg)
            at += len(ids)
        allowed = (
            (grp[:, None] == grp[None, :])
            & (grp[:, None] >= 0)
            & ((seg[None, :] == -1) | (seg[:, None] == seg[None, :]))
            & (idx[None, :] <= idx[:, None])
        )
        allowed |= torch.eye(n, dtype=torch.bool)  # padding attends to itself: no empty softmax rows
        mask[r, 0].masked_fill_(allowed, 0.0)
    inputs = {"input_ids": input_ids, "attention_mask": mask, "position_ids": position_ids}
    return Batch(inputs=inputs, labels=labels, keep=_keep_mask(labels), n_targets=int((labels != -100).sum()))


def collate_seq2seq(tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig) -> Batch:
    """The paper's input (``paper_prompt``, truncated to ``max_source_tokens``) → question labels."""
    enc = tokenizer(
        [paper_prompt(e.lang, e.title, e.source) for e in examples],
        max_length=cfg.max_source_tokens,
        truncation=True,
        padding=True,
        return_tensors="pt",
    )
    tgt = tokenizer(
        [e.target for e in examples],
        max_length=cfg.max_target_tokens,
        truncation=True,
        padding=True,
        return_tensors="pt",
    )
    labels = tgt["input_ids"].masked_fill(tgt["attention_mask"] == 0, -100)
    inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    return Batch(inputs=inputs, labels=labels, keep=None, n_targets=int((labels != -100).sum()))


def make_batch(tokenizer: Any, examples: Sequence[GenExample], cfg: GenTrainConfig, backend: str) -> Batch:
    """The configured batch layout: seq2seq, packed causal (default) or left-padded causal."""
    if backend == "seq2seq":
        return collate_seq2seq(tokenizer, examples, cfg)
    if cfg.packing:
        import torch

        return collate_packed(tokenizer, examples, cfg, torch.bfloat16 if cfg.dtype == "bfloat16" else None)
    return collate_causal(tokenizer, examples, cfg)


def batch_loss(model: Any, batch: Batch, backend: str, logits: str = "targets") -> Any:
    """Mean cross-entropy over the target tokens of ``batch`` (the quantity training minimises).

    Causal: with ``logits="targets"`` the model computes logits only at the positions in
    ``batch.keep`` (transformers' boolean ``logits_to_keep``), i.e. one vocabulary projection per
    question token instead of one per input token; ``"all"`` computes them everywhere (the slow
    reference: same value).
    """
    import torch
    import torch.nn.functional as F

    if backend == "seq2seq":
        return model(**batch.inputs, labels=batch.labels).loss
    targets = batch.labels[:, 1:][batch.keep[:, :-1]]
    if logits == "targets":
        out = model(**batch.inputs, logits_to_keep=batch.keep, use_cache=False)
        lg = out.logits.reshape(-1, out.logits.shape[-1])
    else:
        out = model(**batch.inputs, use_cache=False)
        lg = out.logits[:, :-1][batch.keep[:, :-1]]
    return F.cross_entropy(lg.float(), targets.to(torch.long))


# --- model --------------------------------------------------------------------------------------


def _device(spec: str) -> Any:
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def _backend(cfg: GenTrainConfig, model_dir: str) -> str:
    if cfg.backend != "auto":
        return cfg.backend
    from transformers import AutoConfig

    return (
        "seq2seq" if getattr(AutoConfig.from_pretrained(model_dir), "is_encoder_decoder", False) else "causal"
    )


def lora_target_names(model: Any, targets: list[str] | str) -> list[str]:
    """The LoRA target module names: the configured list, or every attention/MLP projection present."""
    import torch

    if targets != "auto":
        return list(targets)
    present = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    names = [t for t in (*AUTO_LORA_TARGETS, *AUTO_LORA_TARGETS_T5) if t in present]
    if not names:
        raise XqgError(f"no attention/MLP projections found to adapt; linear layers: {sorted(present)}")
    return names


def load_model(cfg: GenTrainConfig, device: Any) -> tuple[Any, Any, str, str]:
    """(model ready to train, tokenizer, backend, resolved model folder)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    model_dir = resolve_model(cfg.model)
    backend = _backend(cfg, model_dir)
    dtype = torch.bfloat16 if cfg.dtype == "bfloat16" else torch.float32
    cls = AutoModelForSeq2SeqLM if backend == "seq2seq" else AutoModelForCausalLM
    kw: dict[str, Any] = {"dtype": dtype}
    if backend == "causal":
        kw["attn_implementation"] = "eager"  # Gemma 3's recommended training attention; exact with padding
    model = cls.from_pretrained(model_dir, **kw)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if backend == "causal" and tokenizer.eos_token_id is None:
        raise XqgError(f"{cfg.model}: the tokenizer has no eos token to end questions with")
    if cfg.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        lcfg = LoraConfig(
            task_type=TaskType.SEQ_2_SEQ_LM if backend == "seq2seq" else TaskType.CAUSAL_LM,
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=lora_target_names(model, cfg.lora_targets),
        )
        model = get_peft_model(model, lcfg)
    model.to(device)
    model.train()
    return model, tokenizer, backend, model_dir


def trainable_state(model: Any) -> dict[str, Any]:
    """The trainable tensors by name (LoRA weights, or every weight for full fine-tuning)."""
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable_state(model: Any, state: dict[str, Any]) -> None:
    import torch

    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in state]
    if missing:
        raise XqgError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {missing[0]}")
    with torch.no_grad():
        for n, t in state.items():
            params[n].copy_(t.to(params[n].dtype))


# --- schedule, checkpoints, curves ------------------------------------------------------------------


def lr_at(cfg: GenTrainConfig, step: int) -> float:
    """Learning rate for (0-based) ``step``: linear warm-up, then constant/linear/cosine to 10%."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    frac = min(1.0, (step - cfg.warmup_steps) / span)
    if cfg.schedule == "linear":
        return cfg.lr * (1.0 - 0.9 * frac)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))


def _learnt_config(cfg: GenTrainConfig) -> dict[str, Any]:
    """The config minus run-control fields: what must match for a resume to be the same run."""
    return {k: v for k, v in cfg.model_dump().items() if k not in RUN_CONTROL_FIELDS}


def _checkpoints(out: Path) -> list[Path]:
    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    # Complete ones only: a kill while an old one was being removed leaves a partial folder.
    files = ("state.json", "trainable.safetensors", "optimizer.pt", "rng.safetensors")
    return sorted(p for p in root.glob("step-*") if all((p / f).is_file() for f in files))


def _save_checkpoint(out: Path, model: Any, optimizer: Any, state: dict[str, Any], keep: int) -> Path:
    """Write a checkpoint folder atomically (temporary sibling renamed), then prune old ones."""
    import torch
    from safetensors.torch import save_file

    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state['step']:06d}"
    tmp = root / f".tmp-step-{state['step']:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(
        {k: v.contiguous().cpu() for k, v in trainable_state(model).items()}, tmp / "trainable.safetensors"
    )
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            rng[f"cuda{i}"] = s
    save_file(rng, tmp / "rng.safetensors")
    write_json(tmp / "state.json", state)
    # Replacing a checkpoint of the same step (the final save after a resume): move the old one
    # aside in one rename, so a kill never leaves a half-deleted folder under the final name.
    trash = root / f".old-step-{state['step']:06d}"
    shutil.rmtree(trash, ignore_errors=True)
    if final.exists():
        os.replace(final, trash)
    os.replace(tmp, final)
    shutil.rmtree(trash, ignore_errors=True)
    for old in _checkpoints(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    complete = _checkpoints(out)
    for partial in [*root.glob("step-*"), *root.glob(".tmp-step-*"), *root.glob(".old-step-*")]:
        if partial not in complete:  # left by a kill during an earlier save or prune
            shutil.rmtree(partial, ignore_errors=True)
    return final


def _load_checkpoint(ckpt: Path, model: Any, optimizer: Any) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    load_trainable_state(model, load_file(ckpt / "trainable.safetensors"))
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True, map_location="cpu"))
    rng = load_file(ckpt / "rng.safetensors")
    torch.set_rng_state(rng["cpu"])
    if torch.cuda.is_available():
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    return read_json(ckpt / "state.json")


LOSS_FIELDS = ("step", "train_loss", "val_loss", "lr", "seconds")


def write_loss_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with atomic_open(path) as fh:
        w = csv.DictWriter(fh, fieldnames=LOSS_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in LOSS_FIELDS})


def read_loss_csv(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append(
                {
                    "step": int(r["step"]),
                    "train_loss": float(r["train_loss"]) if r["train_loss"] else None,
                    "val_loss": float(r["val_loss"]) if r["val_loss"] else None,
                    "lr": float(r["lr"]) if r["lr"] else None,
                    "seconds": float(r["seconds"]) if r["seconds"] else None,
                }
            )
    return rows


def plot_loss(path: Path, rows: Sequence[dict[str, Any]], title: str = "generator training") -> None:
    """Training loss (raw and a 20-step moving average) and validation loss against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tr = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
    va = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if tr:
        xs, ys = zip(*tr, strict=True)
        ax.plot(xs, ys, color="tab:blue", alpha=0.3, lw=0.8, label="train (per step)")
        w = 20
        avg = [
            sum(ys[max(0, i - w + 1) : i + 1]) / len(ys[max(0, i - w + 1) : i + 1]) for i in range(len(ys))
        ]
        ax.plot(xs, avg, color="tab:blue", lw=1.6, label=f"train ({w}-step mean)")
    if va:
        xs, ys = zip(*va, strict=True)
        ax.plot(xs, ys, "o-", color="tab:orange", lw=1.6, label="validation (XQuAD dev)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy per question token")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_adapter(
    state: dict[str, Any], adapter_config: dict[str, Any] | None, dest: Path, max_mb: float
) -> dict[str, Any]:
    """Save PEFT adapter weights as ``adapter_model.safetensors`` (+ config), bfloat16 if float32 is too big.

    ``state`` uses PEFT's saved key names (``get_peft_model_state_dict``). Returns what was written.
    """
    import torch
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    n_bytes = sum(t.numel() * 4 for t in state.values())
    dtype = torch.float32 if n_bytes <= max_mb * 1e6 * 0.98 else torch.bfloat16
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()}
    with atomic_path(dest / "adapter_model.safetensors") as tmp:
        save_file(tensors, tmp, metadata={"format": "pt"})
    if adapter_config is not None:
        write_json(dest / "adapter_config.json", adapter_config)
    size = (dest / "adapter_model.safetensors").stat().st_size
    if size > max_mb * 1e6:
        raise XqgError(
            f"adapter is {size / 1e6:.1f} MB even in bfloat16 (> {max_mb} MB); use a smaller lora_r"
        )
    return {"dtype": str(dtype).removeprefix("torch."), "bytes": size, "tensors": len(tensors)}


def _peft_adapter_state(
    model: Any, cfg: GenTrainConfig, weights: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(PEFT-named adapter tensors, adapter_config.json content) of a PeftModel.

    ``base_model_name_or_path`` is the xqg model spec (e.g. ``gguf:gemma-3-270m``) rather than this
    machine's cache path, so a committed adapter names its base portably.
    """
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model) if weights else {}
    pcfg = model.peft_config["default"].to_dict()
    pcfg = {k: (sorted(v) if isinstance(v, set) else v) for k, v in pcfg.items()}
    pcfg["base_model_name_or_path"] = cfg.model
    return state, pcfg


# --- training -----------------------------------------------------------------------------------


def _prepare_data(
    cfg: GenTrainConfig, out: Path, resume: bool
) -> tuple[list[GenExample], list[GenExample], dict]:
    data_dir = out / "data"
    if resume and (data_dir / DATA_MANIFEST).exists():
        return (
            read_examples(data_dir / TRAIN_FILE),
            read_examples(data_dir / DEV_FILE),
            read_json(data_dir / DATA_MANIFEST),
        )
    data = build_generator_data(
        xquad_langs=cfg.xquad_langs,
        xor_langs=cfg.xor_langs,
        include_english=cfg.include_english,
        per_lang=cfg.per_lang,
        xor_share=cfg.xor_share,
        epochs=cfg.epochs,
        dev_per_lang=cfg.dev_per_lang,
        group_size=cfg.group_size,
        seed=cfg.seed,
    )
    manifest = write_generator_data(data, data_dir)
    return data.train, data.dev, manifest


def _evaluate(
    model: Any, tokenizer: Any, dev: Sequence[GenExample], cfg: GenTrainConfig, backend: str, device: Any
) -> float | None:
    """Token-weighted mean cross-entropy of the question tokens over the dev pairs (no dropout)."""
    import torch

    if not dev:
        return None
    dev = sorted(dev, key=lambda e: (e.source, e.lang))  # same-passage pairs share a packed prefix
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(dev), cfg.batch_size):
            b = make_batch(tokenizer, dev[i : i + cfg.batch_size], cfg, backend)
            b = b.to(device)
            loss = batch_loss(model, b, backend, cfg.logits)
            total += float(loss) * b.n_targets
            count += b.n_targets
    model.train()
    return total / max(count, 1)


def train_generator(
    config: GenTrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    train_examples: Sequence[GenExample] | None = None,
    dev_examples: Sequence[GenExample] | None = None,
    log: Callable[[str], None] | None = print,
    show_progress: bool = True,
) -> Path:
    """Train and return ``out_dir``; see the module docstring for the layout and guarantees.

    ``train_examples``/``dev_examples`` replace the built XQuAD/XOR data (tests, custom data); they
    are still written to ``out_dir/data`` so the run records what it saw.
    """
    import torch

    cfg = config
    out = Path(out_dir)
    say = log or (lambda _m: None)
    saved_cfg_path = out / "train_config.json"
    if resume and saved_cfg_path.exists():
        saved = read_json(saved_cfg_path)
        if config_hash(_learnt_config(GenTrainConfig(**saved))) != config_hash(_learnt_config(cfg)):
            diff = sorted(k for k, v in _learnt_config(cfg).items() if saved.get(k) != v)
            raise XqgError(f"{out}: cannot resume with different settings (changed: {', '.join(diff)})")
    elif not resume and _checkpoints(out):
        raise XqgError(
            f"{out} already holds a training run; pass resume=True (--resume) or use another folder"
        )
    start_folder(out)  # one writer at a time (lock released at the end)
    write_json(saved_cfg_path, cfg.model_dump())

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    if train_examples is not None:
        train = list(train_examples)
        dev = list(dev_examples or [])
        from xqg.train.generator_data import GeneratorData, _counts

        data_manifest = write_generator_data(
            GeneratorData(
                train, dev, {"config": "custom examples", "train": _counts(train), "dev": _counts(dev)}
            ),
            out / "data",
        )
    else:
        train, dev, data_manifest = _prepare_data(cfg, out, resume)
    if not train:
        raise XqgError("no training examples")

    t_load = time.perf_counter()
    model, tokenizer, backend, model_dir = load_model(cfg, device)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    say(
        f"model {cfg.model} ({backend}, {cfg.method}) loaded in {time.perf_counter() - t_load:.1f}s "
        f"on {device}; trainable {n_trainable:,} of {n_total:,} parameters; "
        f"{len(train):,} training examples, {len(dev)} dev"
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, consumed, seconds = 0, 0, 0.0
    rows: list[dict[str, Any]] = []
    ckpts = _checkpoints(out)
    if resume and ckpts:
        st = _load_checkpoint(ckpts[-1], model, optimizer)
        step, consumed, seconds = int(st["step"]), int(st["consumed"]), float(st["seconds"])
        rows = [r for r in read_loss_csv(out / "loss.csv") if r["step"] <= step]
        say(f"resumed from {ckpts[-1].name}: step {step}, {consumed:,} examples seen, {seconds / 60:.1f} min")

    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    stop_reason = "max_steps"
    start_step = step
    t0 = time.perf_counter()
    seconds_at_start = seconds
    bar = progress_bar(total=cfg.max_steps, desc="train-generator", unit="step", disable=not show_progress)
    bar.update(step)

    def state_dict() -> dict[str, Any]:
        return {"step": step, "consumed": consumed, "seconds": round(seconds, 3), "rows": len(rows)}

    def checkpoint() -> None:
        write_loss_csv(out / "loss.csv", rows)
        ck = _save_checkpoint(out, model, optimizer, state_dict(), cfg.keep_checkpoints)
        if cfg.method == "lora":  # lets export_adapter turn a checkpoint into an adapter folder
            write_json(ck / "adapter_config.json", _peft_adapter_state(model, cfg, weights=False)[1])

    recent: list[float] = []
    while step < cfg.max_steps:
        if budget is not None and seconds >= budget:
            stop_reason = "max_minutes"
            break
        lr = lr_at(cfg, step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for _ in range(cfg.grad_accum):
            exs = [train[(consumed + i) % len(train)] for i in range(cfg.batch_size)]
            consumed += cfg.batch_size
            b = make_batch(tokenizer, exs, cfg, backend)
            b = b.to(device)
            loss = batch_loss(model, b, backend, cfg.logits)
            (loss / cfg.grad_accum).backward()
            step_loss += float(loss.detach()) / cfg.grad_accum
        if not math.isfinite(step_loss):
            raise XqgError(f"training loss became {step_loss} at step {step + 1}; lower lr")
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        step += 1
        seconds = seconds_at_start + (time.perf_counter() - t0)
        row: dict[str, Any] = {
            "step": step,
            "train_loss": round(step_loss, 5),
            "val_loss": None,
            "lr": lr,
            "seconds": round(seconds, 2),
        }
        rows.append(row)
        recent = [*recent[-(cfg.log_every - 1) :], step_loss] if cfg.log_every > 1 else [step_loss]
        bar.update(1)
        bar.set_postfix(loss=f"{step_loss:.3f}")
        if step % cfg.eval_every == 0 and dev:
            t_e = time.perf_counter()
            row["val_loss"] = round(_evaluate(model, tokenizer, dev, cfg, backend, device) or 0.0, 5)
            say(f"step {step}: validation loss {row['val_loss']:.4f} ({time.perf_counter() - t_e:.0f}s)")
        if step % cfg.log_every == 0:
            rate = (seconds - seconds_at_start) / max(1, step - start_step)
            say(
                f"step {step}/{cfg.max_steps}: loss {sum(recent) / len(recent):.4f} "
                f"(mean of last {len(recent)}), lr {lr:.2e}, {rate:.2f} s/step, "
                f"{seconds / 60:.1f} min, {consumed:,} examples"
            )
        if step % cfg.save_every == 0:
            checkpoint()
            plot_loss(out / "loss.png", rows)
            _write_training_json(
                out, cfg, data_manifest, model_dir, rows, state_dict(), "running", None, backend
            )
    bar.close()

    if step > 0 and (not rows or rows[-1]["val_loss"] is None) and dev:
        rows[-1]["val_loss"] = round(_evaluate(model, tokenizer, dev, cfg, backend, device) or 0.0, 5)
    checkpoint()
    plot_loss(out / "loss.png", rows)
    final = _save_final(out, model, tokenizer, cfg, backend)
    _write_training_json(out, cfg, data_manifest, model_dir, rows, state_dict(), stop_reason, final, backend)
    say(f"stopped ({stop_reason}) at step {step} after {seconds / 60:.1f} min; saved to {out}")
    unlock_folder(out)
    return out


def _save_final(out: Path, model: Any, tokenizer: Any, cfg: GenTrainConfig, backend: str) -> dict[str, Any]:
    if cfg.method == "lora":
        state, pcfg = _peft_adapter_state(model, cfg)
        info = save_adapter(state, pcfg, out / ADAPTER_DIR, cfg.adapter_max_mb)
        return {"kind": "lora-adapter", "path": ADAPTER_DIR, **info}
    dest = out / MODEL_DIR
    tmp = out / f".tmp-{MODEL_DIR}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return {"kind": "full-model", "path": MODEL_DIR, "backend": backend}


def _machine() -> dict[str, Any]:
    import torch

    m: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return m


def _write_training_json(
    out: Path,
    cfg: GenTrainConfig,
    data_manifest: dict[str, Any],
    model_dir: str,
    rows: Sequence[dict[str, Any]],
    state: dict[str, Any],
    status: str,
    final: dict[str, Any] | None,
    backend: str = "causal",
) -> None:
    train_losses = [r["train_loss"] for r in rows if r.get("train_loss") is not None]
    vals = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    tail = train_losses[-20:]
    try:
        source = model_info(cfg.model) if Path(model_dir).exists() else {"spec": cfg.model}
    except Exception:  # noqa: BLE001 - provenance is best effort, never a reason to lose a run
        source = {"spec": cfg.model, "resolved": model_dir}
    doc = {
        "status": status,
        "config": cfg.model_dump(),
        "config_hash": config_hash(_learnt_config(cfg)),
        "base_model": source,
        "prompt": "causal_prompt(lang, title, source) + ' ' + question + <eos>"
        if backend == "causal"
        else "paper_prompt(lang, title, source) -> question",
        "steps": state["step"],
        "examples_seen": state["consumed"],
        "seconds": state["seconds"],
        "seconds_per_step": round(state["seconds"] / state["step"], 3) if state["step"] else None,
        "final_train_loss_mean20": round(sum(tail) / len(tail), 5) if tail else None,
        "first_train_loss": train_losses[0] if train_losses else None,
        "val_losses": [{"step": s, "loss": v} for s, v in vals],
        "final_val_loss": vals[-1][1] if vals else None,
        "data": data_manifest,
        "output": final,
        "machine": _machine(),
        "environment": environment(),
    }
    write_json(out / "training.json", doc)


# --- export -------------------------------------------------------------------------------------


def export_adapter(run_dir: str | Path, dest: str | Path, *, max_mb: float = 20.0) -> Path:
    """Copy a run's LoRA adapter + ``training.json`` + ``loss.csv``/``loss.png`` to ``dest``, size-checked.

    ``run_dir`` is a finished (or time-budget-stopped) run folder; if it has no final ``adapter/``
    (the process died), the newest checkpoint's weights are exported instead and the copied
    ``training.json`` says so.
    """
    from safetensors.torch import load_file

    run = Path(run_dir)
    dest = Path(dest)
    adapter = run / ADAPTER_DIR
    if (adapter / "adapter_model.safetensors").exists():
        state = load_file(adapter / "adapter_model.safetensors")
        pcfg = read_json(adapter / "adapter_config.json")
        source = str(adapter)
    else:
        ckpts = _checkpoints(run)
        if not ckpts:
            raise XqgError(f"{run}: no adapter/ and no checkpoint to export; is this a train-generator run?")
        if not (ckpts[-1] / "adapter_config.json").exists():
            raise XqgError(f"{ckpts[-1]}: not a LoRA checkpoint (full fine-tuning has no adapter to export)")
        raw = load_file(ckpts[-1] / "trainable.safetensors")
        state = {_peft_key(k): v for k, v in raw.items()}
        pcfg = read_json(ckpts[-1] / "adapter_config.json")
        source = str(ckpts[-1])
    info = save_adapter(state, pcfg, dest, max_mb)
    for name in EXPORT_EXTRA:
        if (run / name).exists():
            if name == "training.json":
                doc = read_json(run / name)
                doc["exported"] = {"from": source, **info}
                write_json(dest / name, doc)
            else:
                with atomic_path(dest / name) as tmp:
                    shutil.copyfile(run / name, tmp)
    for f in dest.iterdir():  # atomic writes create 0600 files; assets are meant to be shared
        if f.is_file():
            f.chmod(0o644)
    return dest


def _peft_key(name: str) -> str:
    """Parameter name in a PeftModel → the key PEFT saves (adapter name dropped)."""
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


__all__ = [
    "GenTrainConfig",
    "batch_loss",
    "collate_causal",
    "collate_seq2seq",
    "export_adapter",
    "load_gen_train_config",
    "lr_at",
    "plot_loss",
    "save_adapter",
    "train_generator",
]
