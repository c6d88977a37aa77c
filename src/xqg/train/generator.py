"""Fine-tune a question generator (Gemma 3 270M with LoRA by default; mT5/T5 the paper's way).

Training runs on ``transformers.Trainer``: the ``GeneratorTrainer`` that
:func:`~xqg.train.generator_trainer.generator_trainer` builds overrides ``compute_loss``
with :func:`~xqg.train.generator_batch.batch_loss`, which applies the output layer only at the
positions whose next token is a label. On CPU most of a plain causal-LM step went to that layer
(Gemma's vocabulary has 262,144 words) at *every* position, although only the question tokens
carry a loss (docs/generator-training.md has the figures). The batches are built by the collators
of :mod:`xqg.train.generator_batch` (packed rows sharing each passage by default).

What the trainer is given, so a run means what the home-made loop of earlier versions meant:

* the data is the fixed stream ``data/train.jsonl`` read in order (sequential sampler), wrapping
  round when ``max_steps × batch_size × grad_accum`` exceeds it; one "epoch" of the trainer is the
  whole run;
* AdamW on the trainable weights (one group, ``weight_decay`` on all) and :func:`lr_at` as the
  schedule (linear warm-up, then constant/linear/cosine towards 10%: a pure function of the step);
* the loss of a micro-batch is the mean over its target tokens, divided by ``grad_accum``;
* ``checkpoints/checkpoint-N/`` (every ``save_every`` steps and at the end; ``keep_checkpoints``
  kept) hold the trainer's own state: adapter or model weights (safetensors), optimizer and
  scheduler state, RNG states (loaded with ``weights_only=True``) and ``trainer_state.json``, whose
  ``log_history`` carries the per-step rows of ``loss.csv``. ``resume=True`` continues from the
  newest complete one (the trainer writes ``trainer_state.json`` last; incomplete folders a kill
  left are removed), skipping the consumed batches and restoring the RNG states, so an interrupted
  and resumed run ends with the weights of an uninterrupted one (tested, and by
  ``scripts/crash_campaign.py --stages train-generator``).

Continuing and self-training: ``init_adapter`` (a PEFT LoRA folder, or ``"builtin"`` for the
shipped adapter) starts from that adapter's weights (``PeftModel.from_pretrained(...,
is_trainable=True)``) instead of a fresh LoRA; its shape (``lora_r``, ``lora_alpha``,
``lora_dropout``) must be the config's, and ``training.json`` records its files' sha256
(``init_adapter``). ``extra_pairs`` (a JSONL file, e.g. from ``python -m xqg.experiments.selftrain``)
adds generated pairs to each epoch's mix, ``extra_share`` of them relative to the XQuAD pairs
(:mod:`xqg.train.generator_data`). Both are checked before any model loads.

Stopping: after ``max_steps`` steps or once ``max_minutes`` of training time are spent (checked
after every step, across resumes), the run evaluates, saves a checkpoint, the final adapter/model,
``loss.csv``, ``loss.png`` and ``training.json``. A LoRA adapter is saved as safetensors, in
bfloat16 when float32 would exceed ``adapter_max_mb`` (the committed adapter must stay ≤ 20 MB).

Input format (causal): ``causal_prompt(lang, title, source) + " " + question + <eos>``; the loss is on
the question tokens and the eos only. Seq2seq (mT5/T5): input ``paper_prompt(lang, title, source)``
truncated to ``max_source_tokens`` (the paper: 128), labels = the question + eos; every decoder
position is a label position, so the model's own loss is used (no ``Seq2SeqTrainer`` needed: the
dev loss is teacher-forced, nothing is generated during training).
"""

from __future__ import annotations

import csv
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from xqg.config import _Strict, load_config_file, parse_config
from xqg.errors import DataFormatError, XqgError
from xqg.io import (
    atomic_open,
    atomic_path,
    config_hash,
    environment,
    read_json,
    sha256_file,
    start_folder,
    unlock_folder,
    write_json,
)
from xqg.models.sources import (
    BUILTIN_ADAPTER,
    GEMMA_MODEL,
    is_gemma_spec,
    model_info,
    resolve_adapter,
    resolve_model,
)
from xqg.render import save_figure
from xqg.train.generator_batch import (  # noqa: F401 - re-exported: their old import path
    batch_loss,
    causal_ids,
    collate_causal,
    collate_packed,
    collate_seq2seq,
    make_batch,
    n_targets,
)
from xqg.train.generator_data import (
    DATA_MANIFEST,
    DEV_FILE,
    TRAIN_FILE,
    XQUAD_TARGET_LANGS,
    GenExample,
    build_generator_data,
    held_out_passages,
    read_examples,
    read_extra_pairs,
    write_generator_data,
)
from xqg.train.generator_trainer import (  # noqa: F401 - lr_at re-exported: its old import path
    CHECKPOINTS,
    LOSS_FIELDS,
    _checkpoints,
    _device,
    _loss_rows,
    _remove_partial_checkpoints,
    generator_trainer,
    lr_at,
    training_arguments,
)

#: Linear layers LoRA adapts when ``lora_targets`` is "auto": every attention and MLP projection
#: (Llama/Gemma names, then T5/mT5 names); only the names present in the model are used.
AUTO_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
AUTO_LORA_TARGETS_T5 = ("q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo")
#: Config fields that may change when resuming (they control how long/how often, not what is learnt).
RUN_CONTROL_FIELDS = frozenset(
    {"max_steps", "max_minutes", "save_every", "eval_every", "log_every", "threads"}
)
#: Fields added later: left out of the config hash while unset, so older runs keep their hash.
OPTIONAL_FIELDS = frozenset({"init_adapter", "extra_pairs", "extra_share"})
#: The files of an init adapter whose sha256 ``training.json`` records (those present).
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
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
    # continuing / self-training
    init_adapter: str | None = Field(
        None, description="LoRA folder to continue from ('builtin': the shipped adapter); none: fresh"
    )
    extra_pairs: str | None = Field(
        None, description="JSONL of extra pairs {passage_id, title, text, lang, question} (self-training)"
    )
    extra_share: float | None = Field(
        None, ge=0, description="extra pairs per epoch relative to the XQuAD pairs; none: all of them"
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


# --- model --------------------------------------------------------------------------------------


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


def init_adapter_dir(cfg: GenTrainConfig) -> Path | None:
    """The folder ``cfg.init_adapter`` names (``"builtin"``: the shipped one), checked to be a PEFT
    adapter folder; ``None`` (also for ``"none"``) when training starts from a fresh LoRA. Loads
    no model."""
    if cfg.init_adapter is None or cfg.init_adapter.strip().lower() == "none":
        return None
    if cfg.method != "lora":
        raise XqgError(
            f"init_adapter {cfg.init_adapter!r} continues a LoRA adapter; method is {cfg.method!r}"
        )
    resolved = resolve_adapter(cfg.init_adapter, cfg.model)
    if resolved is None:
        if cfg.init_adapter == BUILTIN_ADAPTER and not is_gemma_spec(cfg.model):
            raise XqgError(f"init_adapter 'builtin' is the adapter of {GEMMA_MODEL}, not of {cfg.model}")
        raise XqgError(f"init_adapter {cfg.init_adapter!r}: no adapter there")
    path = Path(resolved).expanduser()
    if not path.is_dir():
        raise XqgError(f"init_adapter {path}: no such folder")
    if not (path / "adapter_config.json").is_file():
        raise XqgError(f"init_adapter {path}: no adapter_config.json (not a PEFT LoRA adapter folder)")
    return path


def check_init_adapter(cfg: GenTrainConfig) -> dict[str, Any] | None:
    """Validate ``cfg.init_adapter`` and describe it for ``training.json`` (files' sha256, the shape
    and, if it has one, its own ``training.json`` summary); ``None`` without one.

    The adapter's shape is fixed by its weights, so ``lora_r``/``lora_alpha``/``lora_dropout`` must
    equal its ``adapter_config.json`` (the record would otherwise describe another adapter).
    """
    path = init_adapter_dir(cfg)
    if path is None:
        return None
    conf_path = path / "adapter_config.json"
    try:
        pcfg = read_json(conf_path)
    except ValueError as exc:
        raise DataFormatError(conf_path, f"invalid JSON ({exc})") from None
    if not isinstance(pcfg, dict) or str(pcfg.get("peft_type", "")).upper() != "LORA":
        raise DataFormatError(conf_path, "not a LoRA adapter config", field="peft_type")
    if not any((path / f).is_file() for f in ADAPTER_FILES[1:]):
        raise XqgError(f"init_adapter {path}: no adapter_model.safetensors (or .bin) with its weights")
    mine = {"r": cfg.lora_r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout}
    differ = {k: pcfg.get(k) for k, v in mine.items() if pcfg.get(k) is not None and pcfg.get(k) != v}
    if differ:
        want = ", ".join(f"{'lora_r' if k == 'r' else k}: {v}" for k, v in differ.items())
        raise XqgError(f"init_adapter {path} has another shape than the config; set {want}")
    info: dict[str, Any] = {
        "spec": cfg.init_adapter,
        "base_model": pcfg.get("base_model_name_or_path"),
        "r": pcfg.get("r"),
        "lora_alpha": pcfg.get("lora_alpha"),
        "target_modules": pcfg.get("target_modules"),
        "sha256": {f: sha256_file(path / f) for f in ADAPTER_FILES if (path / f).is_file()},
    }
    # an exported adapter holds its training.json; a run's adapter/ folder has it one level up
    for doc in (path / "training.json", path.parent / "training.json"):
        if doc.is_file() and (doc.parent == path or path.name == ADAPTER_DIR):
            parent = read_json(doc)
            info["training"] = {k: parent.get(k) for k in ("config_hash", "steps", "final_val_loss")}
            break
    return info


def check_inputs(cfg: GenTrainConfig, custom_data: bool = False) -> dict[str, Any] | None:
    """Everything a run reads besides the model, checked before any model loads: the init adapter
    (returned: its ``training.json`` record) and every line of ``extra_pairs``."""
    init = check_init_adapter(cfg)
    if cfg.extra_pairs is not None:
        if custom_data:
            raise XqgError(
                "extra_pairs joins the built XQuAD/XOR data; it cannot be mixed into custom examples"
            )
        read_extra_pairs(cfg.extra_pairs, held_out_passages())
    elif cfg.extra_share is not None:
        raise XqgError("extra_share is the share of extra_pairs; give extra_pairs too")
    return init


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
    init = init_adapter_dir(cfg)
    if init is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(init), is_trainable=True)
    elif cfg.method == "lora":
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


# --- curves, adapter files ---------------------------------------------------------------------


def _learnt_config(cfg: GenTrainConfig) -> dict[str, Any]:
    """The config minus run-control fields (and unset optional ones): what must match for a resume
    to be the same run."""
    return {
        k: v
        for k, v in cfg.model_dump().items()
        if k not in RUN_CONTROL_FIELDS and not (k in OPTIONAL_FIELDS and v is None)
    }


def write_loss_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with atomic_open(path) as fh:
        w = csv.DictWriter(fh, fieldnames=LOSS_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in LOSS_FIELDS})


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
    save_figure(fig, path, dpi=100)


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
        extra_pairs=cfg.extra_pairs,
        extra_share=cfg.extra_share,
    )
    manifest = write_generator_data(data, data_dir)
    return data.train, data.dev, manifest


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
    old_loop = sorted((out / CHECKPOINTS).glob("step-*"))
    if resume and saved_cfg_path.exists():
        saved = read_json(saved_cfg_path)
        if config_hash(_learnt_config(GenTrainConfig(**saved))) != config_hash(_learnt_config(cfg)):
            diff = sorted(k for k, v in _learnt_config(cfg).items() if saved.get(k) != v)
            raise XqgError(f"{out}: cannot resume with different settings (changed: {', '.join(diff)})")
        if old_loop:
            raise XqgError(f"{old_loop[-1]}: a checkpoint of xqg's pre-Trainer loop; it cannot be resumed")
    elif not resume and (_checkpoints(out) or old_loop):
        raise XqgError(
            f"{out} already holds a training run; pass resume=True (--resume) or use another folder"
        )
    init_info = check_inputs(cfg, custom_data=train_examples is not None)
    start_folder(out)  # one writer at a time (lock released at the end)
    _remove_partial_checkpoints(out)
    write_json(saved_cfg_path, cfg.model_dump())

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the LoRA initialisation
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

    ckpts = _checkpoints(out) if resume else []
    last = ckpts[-1] if ckpts else None
    steps, spent = cfg.max_steps, False
    if last is not None:
        state = read_json(last / "trainer_state.json")
        rows = _loss_rows(state["log_history"])
        seconds = rows[-1]["seconds"] if rows else 0.0
        spent = bool(cfg.max_minutes and seconds >= cfg.max_minutes * 60)
        if spent:  # the time budget is used up: load the checkpoint, train no further step
            steps = min(steps, int(state["global_step"]))
        say(f"resuming from {last.name}: step {state['global_step']}, {seconds / 60:.1f} min")

    t_load = time.perf_counter()
    device = _device(cfg.device)
    model, tokenizer, backend, model_dir = load_model(cfg, device)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_total = sum(p.numel() for p in model.parameters())
    say(
        f"model {cfg.model} ({backend}, {cfg.method}) loaded in {time.perf_counter() - t_load:.1f}s "
        f"on {device}; trainable {n_trainable:,} of {n_total:,} parameters; "
        f"{len(train):,} training examples, {len(dev)} dev"
    )

    def record(state: Any, status: str, final: dict[str, Any] | None) -> None:
        rows = _loss_rows(state.log_history)
        write_loss_csv(out / "loss.csv", rows)
        plot_loss(out / "loss.png", rows)
        summary = {
            "step": state.global_step,
            "consumed": state.global_step * cfg.batch_size * cfg.grad_accum,
            "seconds": rows[-1]["seconds"] if rows else 0.0,
            "resumed_from": last.name if last is not None else None,
        }
        _write_training_json(
            out, cfg, data_manifest, model_dir, rows, summary, status, final, backend, init_info
        )

    trainer = generator_trainer(
        model,
        training_arguments(cfg, out, steps, bool(dev), show_progress),
        cfg=cfg,
        tokenizer=tokenizer,
        backend=backend,
        train=train,
        dev=dev,
        steps=steps,
        say=say,
        on_save=lambda state: record(state, "running", None),
    )
    trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
    state = trainer.state
    stop_reason = "max_minutes" if spent else trainer.stop_reason
    final = _save_final(out, trainer.model, tokenizer, cfg, backend)
    record(state, stop_reason, final)
    say(f"stopped ({stop_reason}) at step {state.global_step}; saved to {out}")
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
    init_adapter: dict[str, Any] | None = None,
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
        "trainer": "transformers.Trainer subclass GeneratorTrainer (xqg.train.generator_trainer)",
        "resumed_from": state.get("resumed_from"),
        "init_adapter": init_adapter,
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
    if not (adapter / "adapter_model.safetensors").exists():
        ckpts = _checkpoints(run)
        if not ckpts:
            raise XqgError(f"{run}: no adapter/ and no checkpoint to export; is this a train-generator run?")
        adapter = ckpts[-1]
        if not (adapter / "adapter_model.safetensors").exists():
            raise XqgError(f"{adapter}: not a LoRA checkpoint (full fine-tuning has no adapter to export)")
    state = load_file(adapter / "adapter_model.safetensors")
    pcfg = read_json(adapter / "adapter_config.json")
    if (run / "train_config.json").exists():  # the xqg model spec, not this machine's path
        pcfg["base_model_name_or_path"] = read_json(run / "train_config.json")["model"]
    info = save_adapter(state, pcfg, dest, max_mb)
    for name in EXPORT_EXTRA:
        if (run / name).exists():
            if name == "training.json":
                doc = read_json(run / name)
                doc["exported"] = {"from": str(adapter), **info}
                write_json(dest / name, doc)
            else:
                with atomic_path(dest / name) as tmp:
                    shutil.copyfile(run / name, tmp)
    for f in dest.iterdir():  # atomic writes create 0600 files; assets are meant to be shared
        if f.is_file():
            f.chmod(0o644)
    return dest


__all__ = [
    "GenTrainConfig",
    "batch_loss",
    "check_inputs",
    "collate_causal",
    "collate_packed",
    "collate_seq2seq",
    "export_adapter",
    "generator_trainer",
    "load_gen_train_config",
    "lr_at",
    "plot_loss",
    "save_adapter",
    "train_generator",
]
