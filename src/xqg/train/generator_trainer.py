"""The generator's trainer: ``transformers.Trainer`` with a loss computed at label positions only.

:func:`generator_trainer` builds a ``GeneratorTrainer`` whose ``compute_loss`` is
:func:`~xqg.train.generator_batch.batch_loss` (the output layer applied only where the next token is
a label), whose optimizer is AdamW over the trainable weights and whose schedule is :func:`lr_at`,
over the training stream read in order; a ``StepRecorder`` callback keeps one row per step
(``step, train_loss, val_loss, lr, seconds``) in the trainer state, so the rows travel with the
checkpoints and a resumed run continues its curve. :mod:`xqg.train.generator` drives it.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xqg.errors import XqgError
from xqg.train.generator_batch import batch_loss, make_batch, n_targets
from xqg.train.generator_data import GenExample

if TYPE_CHECKING:
    from xqg.train.generator import GenTrainConfig

CHECKPOINTS = "checkpoints"
LOSS_FIELDS = ("step", "train_loss", "val_loss", "lr", "seconds")
#: Files every complete trainer checkpoint has besides its weights (trainer_state.json comes last).
CHECKPOINT_FILES = ("optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json")
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors")


def _device(spec: str) -> Any:
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


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


def training_arguments(cfg: GenTrainConfig, out: Path, steps: int, dev: bool, show_progress: bool) -> Any:
    """The trainer's arguments for a generator run of ``steps`` steps (checkpoints under ``out``)."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out / CHECKPOINTS),
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        max_steps=steps,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm or 0.0,
        seed=cfg.seed,
        train_sampling_strategy="sequential",  # the stream's order is the data: groups share passages
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=cfg.keep_checkpoints,
        eval_strategy="steps" if dev else "no",
        eval_steps=cfg.eval_every,
        logging_strategy="no",  # rows are recorded per step by the step recorder
        report_to="none",
        disable_tqdm=not show_progress,
        use_cpu=_device(cfg.device).type == "cpu",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_pin_memory=False,
    )


# --- checkpoints ------------------------------------------------------------------------------------


def _checkpoints(out: Path) -> list[Path]:
    """The complete trainer checkpoints of a run, oldest first.

    The trainer writes a checkpoint in place, weights first and ``trainer_state.json`` last, so a
    folder whose state file parses and whose other files exist is complete; a SIGKILL during a save
    or a prune leaves one that is not (found by scripts/crash_campaign.py for the old loop).
    """
    from xqg.train.retriever import _checkpoint_complete

    root = out / CHECKPOINTS
    if not root.is_dir():
        return []
    found = sorted(
        (int(m.group(1)), p)
        for p in root.iterdir()
        if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
    )
    return [
        p
        for _, p in found
        if _checkpoint_complete(p)
        and all((p / f).is_file() for f in CHECKPOINT_FILES)
        and any((p / f).is_file() for f in WEIGHT_FILES)
    ]


def _remove_partial_checkpoints(out: Path) -> None:
    complete = set(_checkpoints(out))
    for p in (out / CHECKPOINTS).glob("checkpoint-*"):
        if p not in complete:
            shutil.rmtree(p, ignore_errors=True)


def _loss_rows(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-step rows (``LOSS_FIELDS``) xqg adds to the trainer's ``log_history``."""
    return [h for h in log_history if set(h) == set(LOSS_FIELDS)]


class _Stream:
    """The training stream as a map-style dataset: item ``i`` is ``examples[i % len(examples)]``."""

    def __init__(self, examples: Sequence[GenExample], length: int) -> None:
        self.examples, self.length = list(examples), length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> GenExample:
        return self.examples[i % len(self.examples)]


def _evaluate(
    model: Any, tokenizer: Any, dev: Sequence[GenExample], cfg: GenTrainConfig, backend: str, device: Any
) -> float | None:
    """Token-weighted mean cross-entropy of the question tokens over the dev pairs (no dropout)."""
    import torch

    if not dev:
        return None
    dev = sorted(dev, key=lambda e: (e.source, e.lang))  # same-passage pairs share a packed prefix
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(dev), cfg.batch_size):
            b = make_batch(tokenizer, dev[i : i + cfg.batch_size], cfg, backend)
            b = {k: v.to(device) for k, v in b.items()}
            total += float(batch_loss(model, b, backend, cfg.logits)) * n_targets(b)
            count += n_targets(b)
    model.train(was_training)
    return total / max(count, 1)


def generator_trainer(
    model: Any,
    args: Any,
    *,
    cfg: GenTrainConfig,
    tokenizer: Any,
    backend: str,
    train: Sequence[GenExample],
    dev: Sequence[GenExample],
    steps: int,
    say: Callable[[str], None],
    on_save: Callable[[Any], None],
) -> Any:
    """A ``GeneratorTrainer`` over the first ``steps`` batches of the stream, with its step recorder.

    ``on_save(state)`` runs after each checkpoint (it writes the curves and a "running"
    ``training.json``).
    """
    from transformers import Trainer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    class GeneratorTrainer(Trainer):
        """``transformers.Trainer`` with the generator's loss, optimizer, schedule and dev loss."""

        # compute_loss returns a micro-batch mean: the trainer divides it by grad_accum.
        loss_is_scaled_for_ga = False

        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.step_loss = 0.0
            self.stop_reason = "max_steps"

        def create_optimizer(self, model: Any = None) -> Any:
            import torch

            if self.optimizer is None:
                params = [p for p in self.model.parameters() if p.requires_grad]
                self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
            return self.optimizer

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            from torch.optim.lr_scheduler import LambdaLR

            if self.lr_scheduler is None:
                opt = optimizer or self.optimizer
                self.lr_scheduler = LambdaLR(opt, lambda step: lr_at(cfg, step) / cfg.lr)
                self._created_lr_scheduler = True
            return self.lr_scheduler

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            loss = batch_loss(model, inputs, backend, cfg.logits)
            return (loss, None) if return_outputs else loss

        def floating_point_ops(self, inputs: dict[str, Any]) -> int:
            # Not recorded by xqg; the default walks every module of the model at every micro-batch
            # (PreTrainedModel.num_parameters): ~1 ms of a ~20 ms step of the tiny test model.
            return 0

        def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.step_loss += float(loss)  # already divided by grad_accum
            return loss

        def evaluate(
            self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
        ) -> dict[str, float]:
            t = time.perf_counter()
            val = _evaluate(self.model, tokenizer, dev, cfg, backend, self.args.device)
            metrics = {f"{metric_key_prefix}_loss": val}
            rows = _loss_rows(self.state.log_history)
            if val is not None and rows and rows[-1]["step"] == self.state.global_step:
                rows[-1]["val_loss"] = round(val, 5)
                secs = time.perf_counter() - t
                say(f"step {self.state.global_step}: validation loss {val:.4f} ({secs:.0f}s)")
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    class StepRecorder(TrainerCallback):
        """One ``loss.csv`` row per step in the trainer state; progress lines; the time budget."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            rows = _loss_rows(state.log_history)
            self.t0, self.start_step = time.perf_counter(), state.global_step
            self.seconds0 = rows[-1]["seconds"] if rows else 0.0
            self.recent: list[float] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            step, loss = state.global_step, trainer.step_loss
            trainer.step_loss = 0.0
            if not math.isfinite(loss):
                raise XqgError(f"training loss became {loss} at step {step}; lower lr")
            seconds = self.seconds0 + (time.perf_counter() - self.t0)
            lr = lr_at(cfg, step - 1)
            row = {
                "step": step,
                "train_loss": round(loss, 5),
                "val_loss": None,
                "lr": lr,
                "seconds": round(seconds, 2),
            }
            state.log_history.append(row)
            self.recent = [*self.recent[-(cfg.log_every - 1) :], loss] if cfg.log_every > 1 else [loss]
            if step % cfg.log_every == 0:
                rate = (seconds - self.seconds0) / max(1, step - self.start_step)
                say(
                    f"step {step}/{cfg.max_steps}: loss {sum(self.recent) / len(self.recent):.4f} "
                    f"(mean of last {len(self.recent)}), lr {lr:.2e}, {rate:.2f} s/step, "
                    f"{seconds / 60:.1f} min, {step * cfg.batch_size * cfg.grad_accum:,} examples"
                )
            if cfg.max_minutes and seconds >= cfg.max_minutes * 60 and step < state.max_steps:
                trainer.stop_reason = "max_minutes"
                control.should_training_stop = control.should_save = True
                control.should_evaluate = bool(dev)

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            (ckpt / "training_args.bin").unlink(missing_ok=True)  # a pickle, never read back
            on_save(state)

    trainer = GeneratorTrainer(
        model=model,
        args=args,
        train_dataset=_Stream(train, steps * cfg.batch_size * cfg.grad_accum),
        eval_dataset=list(dev) or None,
        data_collator=lambda exs: make_batch(tokenizer, exs, cfg, backend),
        callbacks=[StepRecorder()],
    )
    trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict to stdout
    return trainer
