"""The training × distillation × xQG grid on XQuAD (issue 4): how much does xQG add on top of
a trained and/or distilled retriever, and for which languages?

Models (each a run folder under ``out_dir/models/``, reused when its config is unchanged):

* ``base`` — the starting encoder, untrained (the reference every cell is tested against);
* ``zero-shot`` — contrastively fine-tuned on XQuAD **train-split** questions in English only;
* ``cross-lingual`` — the same on the train-split questions of the target (non-English) languages;
* ``<model>+distill`` — ``xqg distill`` applied to that model: its query tower is pulled so that a
  non-English sentence lands on the English teacher embedding (teacher = the model itself).

Each model is evaluated by the xQG experiment (:mod:`xqg.experiments.augmentation`) without and with
generated-query fusion (the fusion's strategy and α chosen on dev for *that* model), on the test
split, so the grid is {zero-shot, cross-lingual} × {distill no/yes} × {xQG no/yes}, plus the
untrained base with and without distillation as reference rows. Significance is a paired
permutation test per language against the untrained baseline, and separately xQG-on vs xQG-off
within each model (the research question).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xqg.config import EncoderConfig, ExperimentConfig
from xqg.errors import XqgError
from xqg.io import read_json, sha256_file, write_json
from xqg.languages import XQUAD_QUERY_LANGS
from xqg.train.distill import DistillConfig
from xqg.train.retriever import RetrieverTrainConfig

STAGE = "experiment-grid"


class GridConfig(BaseModel):
    """The grid's settings (``configs/xquad-grid.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "xquad-grid"
    experiment: str = Field("xquad-xqg", description="packaged experiment name or file each cell runs")
    out_dir: str = "runs/xquad-grid"
    generated: str | None = Field(None, description="an `xqg generate` folder; None = the experiment's")
    eval_dtype: Literal["float32", "bfloat16"] = Field(
        "bfloat16", description="encoder dtype for evaluation (3× faster on AVX-512 BF16 CPUs)"
    )
    zero_shot_langs: list[str] = ["en"]
    cross_lingual_langs: list[str] = list(XQUAD_QUERY_LANGS)
    train: RetrieverTrainConfig = RetrieverTrainConfig()
    mining: Literal["none", "bm25", "dense"] = Field(
        "dense", description="hard negatives for training, mined among train-split paragraphs"
    )
    mining_skip: int = Field(0, ge=0)
    train_passage_max_length: int = Field(
        256, ge=8, description="passages are cut here during training only (evaluation uses the experiment's)"
    )
    distill: DistillConfig = DistillConfig()
    models: list[str] = [
        "base", "base+distill", "zero-shot", "zero-shot+distill", "cross-lingual", "cross-lingual+distill",
    ]  # fmt: skip
    metric: str = "mrr@10"


@dataclass
class GridResult:
    out_dir: Path
    report_dir: Path
    summary: dict[str, Any]


def slug(model: str) -> str:
    return model.replace("+", "-")


def _reusable(run_dir: Path, config: BaseModel) -> EncoderConfig | None:
    """A finished run folder made with exactly ``config`` → its encoder; else None (train again).

    The recorded config is read back through ``config``'s model first, so a setting added to xqg
    after the run (recorded nowhere, its default meaning what the run did) does not count as a
    difference; a setting that no longer exists does.
    """
    from pydantic import ValidationError

    enc, info = run_dir / "encoder.json", run_dir / "training.json"
    if not (enc.is_file() and info.is_file()):
        return None
    try:
        recorded = type(config).model_validate(read_json(info).get("config") or {})
    except ValidationError:
        return None
    if recorded.model_dump() != config.model_dump():
        return None
    return EncoderConfig(**read_json(enc))


_WEIGHT_FILES = (".safetensors", ".bin", ".json")


def model_fingerprint(enc: EncoderConfig) -> dict[str, Any]:
    """What identifies the weights an encoder config loads: sha256 of each weight/config file of a
    local model folder (query and passage tower), or the name itself for packaged/hub models.

    Why: evaluation folders are keyed by the encoder *config* (the model path), and a grid model
    retrained in place (a new distillation recipe) keeps its path — without this, the old folder's
    query embeddings would be reused for the new weights.
    """
    out: dict[str, Any] = {}
    for role, name in (("query", enc.model), ("passage", enc.passage_model)):
        if name is None:
            continue
        folder = Path(name)
        if folder.is_dir():
            files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _WEIGHT_FILES)
            out[role] = {str(p.relative_to(folder)): sha256_file(p) for p in files}
        else:
            out[role] = name
    return out


def _fresh_eval_dir(eval_dir: Path, enc: EncoderConfig, log: Callable[[str], Any]) -> dict[str, Any]:
    """Empty ``eval_dir`` when it was made with other weights than ``enc`` loads; return the
    fingerprint to record once the evaluation finishes.

    A folder without a record (made before records existed) counts as stale when any weight file is
    newer than the folder's newest file.
    """
    import shutil

    fp = model_fingerprint(enc)
    if not eval_dir.exists():
        return fp
    record = eval_dir / "model-fingerprint.json"
    if record.is_file():
        stale = read_json(record) != fp
    else:
        newest = max((p.stat().st_mtime for p in eval_dir.rglob("*") if p.is_file()), default=0.0)
        weights = [Path(n) for n in (enc.model, enc.passage_model) if n is not None and Path(n).is_dir()]
        stale = any(p.stat().st_mtime > newest for w in weights for p in w.rglob("*") if p.is_file())
    if stale:
        log(f"{eval_dir}: made with other weights than {enc.model}; evaluating again")
        shutil.rmtree(eval_dir)
    return fp


def _train(
    grid: GridConfig, name: str, langs: list[str], start: EncoderConfig, out: Path, log: Callable[[str], Any]
) -> EncoderConfig:
    from xqg.models.encoder import BiEncoder
    from xqg.train.negatives import mine_negatives, xquad_mining_inputs
    from xqg.train.retriever import train_retriever

    negatives = grid.train.negatives if grid.mining != "none" else 0
    enc = start.model_copy(update={"passage_max_length": grid.train_passage_max_length})
    cfg = grid.train.model_copy(update={"encoder": enc, "negatives": negatives})
    run_dir = out / "models" / slug(name)
    done = _reusable(run_dir, cfg)
    if done is not None:
        log(f"{name}: reusing {run_dir}")
        return done
    rows, corpus, english = xquad_mining_inputs(langs)
    if negatives:
        encoder = (
            BiEncoder(start.model_copy(update={"dtype": grid.eval_dtype})) if grid.mining == "dense" else None
        )
        rows = mine_negatives(rows, corpus, method=grid.mining, k=negatives, skip=grid.mining_skip,
                              mining_text=english, encoder=encoder)  # fmt: skip
        del encoder
    log(f"{name}: training on {len(rows)} XQuAD train-split rows ({', '.join(langs)}) → {run_dir}")
    info = {"xquad_train_split": langs, "mining": grid.mining, "mining_skip": grid.mining_skip,
            "mining_text": "the English question"}  # fmt: skip
    # stale checkpoints (another recipe in this folder) are cleared: the grid owns its folders
    train_retriever(rows, run_dir, cfg, data_info=info, stale="restart")
    return EncoderConfig(**read_json(run_dir / "encoder.json"))


def _distill(
    grid: GridConfig, name: str, teacher: EncoderConfig, out: Path, log: Callable[[str], Any]
) -> EncoderConfig:
    from xqg.train.distill import distill

    # The model comes from the cell; how the teacher's targets are encoded (length, batch) from the
    # grid's distill.teacher settings, in float32 (targets are computed once, precision is cheap).
    t = grid.distill.teacher
    teacher = teacher.model_copy(
        update={"dtype": "float32", "batch_size": t.batch_size, "query_max_length": t.query_max_length}
    )
    cfg = grid.distill.model_copy(update={"teacher": teacher})
    run_dir = out / "models" / slug(name)
    done = _reusable(run_dir, cfg)
    if done is not None:
        log(f"{name}: reusing {run_dir}")
        return done
    log(f"{name}: distilling {teacher.model} → {run_dir}")
    return distill(run_dir, cfg, stale="restart")


def _models(
    grid: GridConfig, start: EncoderConfig, out: Path, log: Callable[[str], Any]
) -> dict[str, EncoderConfig]:
    encoders: dict[str, EncoderConfig] = {"base": start}
    for name in grid.models:
        if name == "base":
            continue
        first, _, extra = name.partition("+")
        if extra not in ("", "distill"):
            raise XqgError(f"grid model '{name}': only '+distill' can follow a model name")
        if first not in encoders:
            if first == "zero-shot":
                encoders[first] = _train(grid, first, grid.zero_shot_langs, start, out, log)
            elif first == "cross-lingual":
                encoders[first] = _train(grid, first, grid.cross_lingual_langs, start, out, log)
            else:
                raise XqgError(
                    f"grid model '{name}': unknown model '{first}' (base, zero-shot, cross-lingual)"
                )
        if extra:
            encoders[name] = _distill(grid, name, encoders[first], out, log)
    return {name: encoders[name] for name in grid.models}


def load_grid_config(path_or_name: str | Path) -> GridConfig:
    from xqg.config import load_config_file, parse_config
    from xqg.pipeline import packaged_config

    path = Path(path_or_name)
    if not path.exists():
        path = packaged_config(str(path_or_name))
    return parse_config(GridConfig, load_config_file(path), str(path))


def _experiment_config(name: str) -> ExperimentConfig:
    from xqg.config import load_experiment
    from xqg.pipeline import packaged_config

    path = Path(name)
    return load_experiment(path if path.exists() else packaged_config(name))


def run_grid(
    grid: GridConfig,
    *,
    report_dir: str | Path | None = None,
    log: Callable[[str], Any] = print,
    show_progress: bool = True,
    command: str | None = None,
) -> GridResult:
    """Train/distil every model of the grid (or reuse it), evaluate each with and without xQG,
    and write the grid report (Markdown, JSON, PNG)."""
    from xqg.evaluate.tables import LanguageTable
    from xqg.experiments.augmentation import run_augmentation_experiment
    from xqg.experiments.grid_report import write_grid_report

    base = _experiment_config(grid.experiment)
    if base.augment is None:
        raise XqgError(f"experiment '{grid.experiment}' has no augment section")
    out = Path(grid.out_dir)
    rep = Path(report_dir) if report_dir is not None else out / "report"
    t0 = time.perf_counter()
    encoders = _models(grid, base.encoder, out, log)
    seconds = {"models": time.perf_counter() - t0}

    generated = grid.generated or base.augment.generated
    if generated is None:
        raise XqgError("the grid needs generated queries: set `generated:` (an `xqg generate` folder)")
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name, enc in encoders.items():
        cfg = base.model_copy(
            update={
                "name": f"{grid.name}:{name}",
                "out_dir": str(out / "eval" / slug(name)),
                "encoder": enc.model_copy(
                    update={
                        "dtype": grid.eval_dtype,
                        "query_max_length": base.encoder.query_max_length,
                        "passage_max_length": base.encoder.passage_max_length,
                        "batch_size": base.encoder.batch_size,
                    }
                ),
                "augment": base.augment.model_copy(update={"generated": generated, "variants": []}),
            }
        )
        eval_dir = out / "eval" / slug(name)
        fingerprint = _fresh_eval_dir(eval_dir, enc, log)
        log(f"evaluating {name} ({enc.model}) with and without xQG")
        results[name] = run_augmentation_experiment(
            cfg, report_dir=eval_dir / "report", show_progress=show_progress, log=log
        )
        write_json(eval_dir / "model-fingerprint.json", fingerprint)
    seconds["evaluate"] = time.perf_counter() - t0

    langs = list(base.langs)
    reference = results["base"] if "base" in results else next(iter(results.values()))
    qid_lang = reference.qid_lang or {}
    ref_values = reference.values["baseline"]  # type: ignore[index]
    cells: dict[str, LanguageTable] = {}
    xqg_effect: dict[str, LanguageTable] = {}
    for name, res in results.items():
        values = res.values or {}
        for xqg, system in (("", "baseline"), ("+xQG", "tuned")):
            cells[name + xqg] = LanguageTable.build(
                values[system], qid_lang, langs=langs, baseline=ref_values,
                title=f"{name}{xqg} vs untrained baseline",
            )  # fmt: skip
        xqg_effect[name] = LanguageTable.build(
            values["tuned"], qid_lang, langs=langs, baseline=values["baseline"],
            title=f"{name}: xQG on vs off",
        )  # fmt: skip
    summary = {
        "name": grid.name,
        "config": grid.model_dump(),
        "langs": langs,
        "metric": grid.metric,
        "encoders": {name: enc.model_dump() for name, enc in encoders.items()},
        "xqg_settings": {name: r.summary["systems"]["tuned"]["describe"] for name, r in results.items()},
        "cells": {name: t.to_dict() for name, t in cells.items()},
        "xqg_effect": {name: t.to_dict() for name, t in xqg_effect.items()},
        "runs": {name: str((out / "models" / slug(name)).resolve()) for name in encoders if name != "base"},
        "seconds": seconds,
    }
    write_grid_report(rep, summary, cells, xqg_effect, out, command=command)
    write_json(out / "grid.json", {k: v for k, v in summary.items() if k not in ("cells", "xqg_effect")})
    return GridResult(out, rep, summary)
