"""Retriever (xDR) training: contrastive bi-encoder fine-tuning on sentence-transformers' trainer.

The paper trains its xDR with Tevatron: InfoNCE over in-batch negatives plus sampled hard
negatives. sentence-transformers implements exactly that loss
(``MultipleNegativesRankingLoss``: softmax over the batch's passages, temperature = 1/scale) and
its gradient-cached variant (``CachedMultipleNegativesRankingLoss``, GradCache), which makes large
batches fit in small memory; its trainer brings checkpoints, resume, schedulers and logging. xqg
adds what a retrieval user needs around it:

* the training rows come from Tevatron JSONL (``Tevatron/xor-tydi``-style files) or are built from
  XQuAD **train-split** articles (a question in any language → its English paragraph; never a dev
  or test article);
* the model starts from any encoder xqg can load (the offline e5-small by default) with xqg's
  pooling, normalisation and prefixes, so the trained folder is a drop-in ``encoder.model``;
* the run folder holds ``training.json`` (config, data counts, seed), ``loss.csv`` and
  ``loss.png``, and ``checkpoints/``; a rerun resumes from the last checkpoint and ends with the
  same weights as an uninterrupted run (``tests/test_train_retriever.py``).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xqg.config import EncoderConfig
from xqg.errors import XqgError
from xqg.io import atomic_open, start_folder, unlock_folder, write_json


class RetrieverTrainConfig(BaseModel):
    """Settings of one retriever training run (YAML/TOML keys of ``xqg train-retriever -c``)."""

    model_config = ConfigDict(extra="forbid")

    encoder: EncoderConfig = EncoderConfig()
    loss: Literal["mnrl", "cached-mnrl"] = "mnrl"
    towers: Literal["shared", "separate", "frozen-passage"] = Field(
        "shared",
        description="shared: one model embeds both sides; separate: a query and a passage copy, both "
        "trained; frozen-passage: only the query copy is trained (an index of the start model stays valid)",
    )
    temperature: float = Field(0.05, gt=0, description="softmax temperature (scale = 1/temperature)")
    batch_size: int = Field(32, ge=2, description="queries per batch; every other passage is a negative")
    mini_batch_size: int = Field(8, ge=1, description="cached-mnrl: texts per forward pass (GradCache)")
    negatives: int = Field(1, ge=0, description="hard negatives per query (from the training rows)")
    learning_rate: float = Field(2e-5, gt=0)
    max_steps: int = Field(200, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = 0.01
    seed: int = 0
    save_steps: int = Field(50, ge=1)
    logging_steps: int = Field(5, ge=1)
    bf16: bool = Field(False, description="bfloat16 autocast (≈2× faster on AVX-512 BF16 CPUs and GPUs)")


TrainRow = tuple[str, str, Sequence[str]]
"""(query text, positive passage text, hard negative passage texts)."""


def xquad_training_rows(langs: Sequence[str], *, data_dir: Any = None) -> list[TrainRow]:
    """XQuAD **train-split** questions (any language) → their English paragraph, no negatives."""
    from xqg.data.benchmarks.xquad import load_xquad

    bench = load_xquad(list(langs), split="train", data_dir=data_dir)
    text = {p.id: p.text for p in bench.corpus}
    return [(q.text, text[next(iter(bench.qrels[q.id]))], ()) for q in bench.all_queries()]


def tevatron_rows(path: str | Path) -> list[TrainRow]:
    """Rows from a Tevatron training JSONL (first positive; negatives in file order)."""
    from xqg.data.tevatron import iter_tevatron_train

    return [
        (ex.query, ex.positive_passages[0].text, tuple(n.text for n in ex.negative_passages))
        for ex in iter_tevatron_train(path)
    ]


def _dataset(rows: Sequence[TrainRow], negatives: int) -> Any:
    from datasets import Dataset

    if not rows:
        raise XqgError("no training rows")
    cols: dict[str, list[str]] = {"anchor": [r[0] for r in rows], "positive": [r[1] for r in rows]}
    if negatives:
        short = [i for i, r in enumerate(rows) if len(r[2]) < negatives]
        if short:
            raise XqgError(
                f"{len(short)} training rows have fewer than {negatives} hard negatives "
                f"(e.g. row {short[0]}); mine negatives first or lower `negatives`"
            )
        for j in range(negatives):
            cols[f"negative_{j + 1}"] = [r[2][j] for r in rows]
    return Dataset.from_dict(cols)


def _tower(spec: str, encoder: EncoderConfig, max_len: int) -> list[Any]:
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from xqg.models.sources import resolve_model

    word = Transformer(str(resolve_model(spec)), max_seq_length=max_len)
    modules = [word, Pooling(word.get_embedding_dimension(), pooling_mode=encoder.pooling)]
    if encoder.normalize:
        modules.append(Normalize())
    return modules


def build_model(encoder: EncoderConfig, towers: str = "shared") -> Any:
    """A SentenceTransformer with xqg's pooling / normalisation over the resolved model folder(s).

    ``towers != "shared"`` gives a :class:`~sentence_transformers.sentence_transformer.modules.Router`
    with a ``query`` and a ``document`` route, each its own copy of the weights (the passage copy
    from ``encoder.passage_model`` when set); ``frozen-passage`` stops the passage copy's gradients.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Router

    device = None if encoder.device == "auto" else encoder.device
    if towers == "shared":
        max_len = max(encoder.query_max_length, encoder.passage_max_length)
        return SentenceTransformer(modules=_tower(encoder.model, encoder, max_len), device=device)
    query = _tower(encoder.model, encoder, encoder.query_max_length)
    passage = _tower(encoder.passage_model or encoder.model, encoder, encoder.passage_max_length)
    if towers == "frozen-passage":
        for module in passage:
            for p in module.parameters():
                p.requires_grad_(False)
    router = Router.for_query_document(query_modules=query, document_modules=passage)
    return SentenceTransformer(modules=[router], device=device)


def trained_encoder(out_dir: str | Path, encoder: EncoderConfig, towers: str) -> EncoderConfig:
    """The encoder config a training run produces (what ``encoder.json`` in the run folder holds)."""
    out = Path(out_dir).resolve()
    if towers == "shared":
        return encoder.model_copy(update={"model": str(out / "model"), "passage_model": None})
    passage = str(out / "passage-model") if towers == "separate" else (encoder.passage_model or encoder.model)
    return encoder.model_copy(update={"model": str(out / "model"), "passage_model": passage})


def _save_towers(model: Any, out: Path, towers: str) -> None:
    """Write HF model folders xqg's encoder loads: ``model/`` (query or shared), ``passage-model/``."""
    if towers == "shared":
        model.save(str(out / "model"))
        return
    router = model[0]
    router.sub_modules["query"][0].save(str(out / "model"))
    if towers == "separate":
        router.sub_modules["document"][0].save(str(out / "passage-model"))


def training_arguments(
    cfg: Any, ckpt_dir: Path, *, device: str, show_progress: bool = True, **extra: Any
) -> Any:
    """sentence-transformers trainer arguments shared by retriever training and distillation:
    seeded data order, checkpoints every ``save_steps`` (2 kept) for resume, drop-last batches,
    CPU when no accelerator is there (bf16 autocast works on both)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    from xqg.models.encoder import resolve_device

    return SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps,
        warmup_ratio=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        save_steps=cfg.save_steps,
        logging_steps=cfg.logging_steps,
        save_total_limit=2,
        report_to=[],
        dataloader_drop_last=True,
        disable_tqdm=not show_progress,
        use_cpu=resolve_device(device).type == "cpu",
        bf16=cfg.bf16,
        **extra,
    )


def _router_mapping(negatives: int) -> dict[str, str]:
    mapping = {"anchor": "query", "positive": "document"}
    mapping.update({f"negative_{j + 1}": "document" for j in range(negatives)})
    return mapping


def _checkpoint_complete(path: Path) -> bool:
    """The trainer writes ``trainer_state.json`` last, after the weights, optimizer and scheduler."""
    import json

    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return all((path / name).is_file() for name in ("optimizer.pt", "scheduler.pt"))


def _last_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest *complete* ``checkpoint-N``; newer ones a killed save left half-written are removed.

    The trainer writes a checkpoint in place, so a SIGKILL during a save leaves a folder without
    its config or state, which ``get_last_checkpoint`` would pick and the resume then crash on
    (found by scripts/crash_campaign.py).
    """
    import re
    import shutil

    if not ckpt_dir.is_dir():
        return None
    found = sorted(
        (int(m.group(1)), p)
        for p in ckpt_dir.iterdir()
        if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
    )
    for _, path in reversed(found):
        if _checkpoint_complete(path):
            return str(path)
        shutil.rmtree(path, ignore_errors=True)
    return None


CHECKPOINT_RECORD = "run.json"


def data_hash(rows: Sequence[Any]) -> str:
    """sha256 of the training rows in order (what a checkpoint's optimizer state was fitted to)."""
    import hashlib
    import json

    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, ensure_ascii=False, sort_keys=True, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def resume_point(
    ckpt_dir: Path, run_config: dict[str, Any], *, resume: bool, stale: Literal["error", "restart"] = "error"
) -> str | None:
    """The checkpoint to resume from, or None to start over — only ever one made with ``run_config``.

    Why: the trainer resumes from whatever ``checkpoint-N`` is newest, so a rerun with a new
    recipe (learning rate, steps, data) in the same folder would otherwise silently continue, or
    simply return, the old run. Checkpoints are bound to ``run_config`` by ``run.json``. Others
    (or unbound ones) raise, or with ``stale="restart"`` are deleted. Starting over (``resume``
    off) always clears the folder, so an old, higher-numbered checkpoint cannot be picked up by a
    later resume.
    """
    import shutil

    from xqg.io import config_hash, read_json, write_json

    want = config_hash(run_config)
    record = ckpt_dir / CHECKPOINT_RECORD
    last = _last_checkpoint(ckpt_dir)
    if resume and last is not None:
        got = read_json(record).get("config_hash") if record.is_file() else None
        if got == want:
            return last
        if stale == "error":
            raise XqgError(
                f"{ckpt_dir}: checkpoints were made with other settings or data (config_hash {got} ≠ "
                f"{want}); start over with --no-resume or use another output folder"
            )
    if ckpt_dir.exists():
        shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True)
    write_json(record, {"config": run_config, "config_hash": want})
    return None


def train_retriever(
    rows: Sequence[TrainRow],
    out_dir: str | Path,
    config: RetrieverTrainConfig | None = None,
    *,
    resume: bool = True,
    callbacks: Iterable[Any] = (),
    data_info: dict[str, Any] | None = None,
    stale: Literal["error", "restart"] = "error",
) -> Path:
    """Train, write ``out_dir/model`` (a model folder any xqg ``encoder.model`` accepts) and return it.

    With ``resume`` a rerun continues from the last checkpoint in ``out_dir/checkpoints`` when it
    was made with the same settings and rows; ``stale`` says what to do with one that was not
    (see :func:`resume_point`).
    """
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer import losses

    cfg = config or RetrieverTrainConfig()
    out = start_folder(out_dir)  # one writer at a time (lock released at the end)
    ckpt_dir = out / "checkpoints"
    dataset = _dataset(rows, cfg.negatives)
    model = build_model(cfg.encoder, cfg.towers)
    scale = 1.0 / cfg.temperature
    if cfg.loss == "mnrl":
        loss = losses.MultipleNegativesRankingLoss(model, scale=scale)
    else:
        loss = losses.CachedMultipleNegativesRankingLoss(
            model, scale=scale, mini_batch_size=cfg.mini_batch_size
        )
    prompts = {"anchor": cfg.encoder.query_prefix, "positive": cfg.encoder.passage_prefix}
    prompts.update({f"negative_{j + 1}": cfg.encoder.passage_prefix for j in range(cfg.negatives)})
    args = training_arguments(
        cfg,
        ckpt_dir,
        device=cfg.encoder.device,
        prompts=prompts,
        batch_sampler="no_duplicates",
        **({} if cfg.towers == "shared" else {"router_mapping": _router_mapping(cfg.negatives)}),
    )
    if len(dataset) < cfg.batch_size:
        raise XqgError(f"{len(dataset)} training rows are fewer than one batch of {cfg.batch_size}")
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=list(callbacks)
    )
    run_config = {"config": cfg.model_dump(), "data": data_hash(rows)}
    last = resume_point(ckpt_dir, run_config, resume=resume, stale=stale)
    trainer.train(resume_from_checkpoint=last)

    final = out / "model"
    _save_towers(model, out, cfg.towers)
    encoder = trained_encoder(out, cfg.encoder, cfg.towers)
    write_json(out / "encoder.json", encoder.model_dump())
    history = [h for h in trainer.state.log_history if "loss" in h]
    _write_loss(out, history)
    write_json(
        out / "training.json",
        {
            "config": cfg.model_dump(),
            "rows": len(dataset),
            "data": data_info or {},
            "resumed_from": last,
            "steps": trainer.state.global_step,
            "encoder": encoder.model_dump(),
            "loss": "InfoNCE over in-batch + hard negatives (sentence-transformers "
            f"{type(loss).__name__}, scale {scale:g})",
        },
    )
    unlock_folder(out)
    return final


def _write_loss(
    out: Path, history: list[dict[str, Any]], *, title: str = "retriever training (InfoNCE)"
) -> None:
    with atomic_open(out / "loss.csv") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "loss", "learning_rate"])
        for h in history:
            w.writerow([h.get("step"), h.get("loss"), h.get("learning_rate")])
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xqg.render import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], marker=".")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out / "loss.png", dpi=110)


def mean_loss(history_csv: str | Path, first: bool, k: int = 2) -> float:
    """Mean of the first (or last) ``k`` logged losses in ``loss.csv`` (for reports and tests)."""
    with open(history_csv, encoding="utf-8") as fh:
        vals = [float(r["loss"]) for r in csv.DictReader(fh) if r["loss"] not in ("", "None")]
    part = vals[:k] if first else vals[-k:]
    return math.fsum(part) / len(part)
