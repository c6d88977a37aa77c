"""Cross-lingual knowledge distillation (``xqg distill``): make a retriever's query tower multilingual.

The make-multilingual recipe (Reimers & Gurevych 2020; DR.DECR does it for retrieval): a student
is trained so that ``student(x_X) ≈ teacher(x_en)`` and ``student(x_en) ≈ teacher(x_en)`` (mean
squared error) on parallel sentences, where ``x_X`` is the translation of ``x_en``. Teacher and
student may start from the same weights (self-distillation, the default) or differ.

Why only the query tower: passages in XOR-style retrieval are English, where the teacher is
already good. The result keeps the teacher as its *passage* tower (``EncoderConfig.passage_model``),
so an index built with the teacher stays valid, and English queries are pinned to where they
were by the ``student(en) → teacher(en)`` term — the distilled model can only move non-English
queries, toward their English translations. The word-embedding matrix (250k × d, most of e5's
weights) is frozen by default: it keeps steps cheap on a CPU and keeps rare-token rows that the
parallel data never touches from drifting.

Parallel data (never an XQuAD dev/test article, never the held-out halves used for evaluation):

* ``xquad`` — XQuAD **train-split** questions: question *i* in language X and in English;
* ``tatoeba`` — the even-numbered lines of each Tatoeba pair file (odd lines are held out);
* ``ntrex`` — NTREX lines 1–1000 (lines 1001–1997, later documents, are held out);

(the splits are :mod:`xqg.data.bitext`'s, shared with the held-out evaluation)
* ``xor`` — XOR-TyDi train questions and their human English translations.

Before/after quality is bitext retrieval on the held-out halves (:mod:`xqg.evaluate.bitext`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xqg.config import EncoderConfig
from xqg.data.bitext import (  # noqa: F401 - re-exported: their old import path
    NTREX_TRAIN_LINES,
    bitext_half,
    ntrex_halves,
    tatoeba_halves,
)
from xqg.errors import XqgError
from xqg.io import start_folder, unlock_folder, write_json
from xqg.languages import TATOEBA_CODES, XOR_LANGS, XQUAD_QUERY_LANGS  # noqa: F401 - TATOEBA_CODES re-exported

Source = Literal["xquad", "tatoeba", "ntrex", "xor"]


class DistillConfig(BaseModel):
    """Settings of one distillation run (YAML/TOML keys of ``xqg distill -c``)."""

    model_config = ConfigDict(extra="forbid")

    teacher: EncoderConfig = EncoderConfig(query_max_length=64)
    student: str | None = Field(None, description="student's starting weights; None = the teacher's")
    sources: list[Source] = ["xquad", "tatoeba", "ntrex", "xor"]
    langs: list[str] = Field(
        sorted(set(XQUAD_QUERY_LANGS) | set(XOR_LANGS)),
        description="non-English languages to pair with English",
    )
    max_pairs: int | None = Field(
        None, ge=1, description="cap per (source, language), first rows in file order; None = all"
    )
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(2e-5, gt=0)
    max_steps: int = Field(200, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = 0.01
    freeze_embeddings: bool = Field(True, description="keep the word-embedding matrix fixed")
    loss: Literal["mse", "mse+rank"] = Field(
        "mse",
        description="mse: make-multilingual MSE; mse+rank: plus KL between the teacher's and the "
        "student's score distributions over the XQuAD train-split English paragraphs",
    )
    rank_weight: float = Field(1.0, ge=0, description="weight of the KL term (mse+rank)")
    rank_temperature: float = Field(0.02, gt=0, description="softmax temperature of the scores (mse+rank)")
    bf16: bool = Field(False, description="bfloat16 autocast (≈2× faster on AVX-512 BF16 CPUs and GPUs)")
    seed: int = 0
    save_steps: int = Field(50, ge=1)
    logging_steps: int = Field(5, ge=1)


Pair = tuple[str, str, str, str]
"""(source, language, English sentence, its translation)."""


def parallel_pairs(
    sources: Sequence[str], langs: Sequence[str], *, max_pairs: int | None = None, data_dir: Any = None
) -> list[Pair]:
    """The training pairs of ``sources`` × ``langs`` (languages a source lacks are skipped)."""
    out: list[Pair] = []
    for source in sources:
        for lang in langs:
            pairs = _source_pairs(source, lang, data_dir)
            pairs = [(en, xx) for en, xx in pairs if en.strip() and xx.strip()]
            out.extend((source, lang, en, xx) for en, xx in pairs[:max_pairs])
    if not out:
        raise XqgError(f"no parallel training pairs for sources {list(sources)} × languages {list(langs)}")
    return out


def _source_pairs(source: str, lang: str, data_dir: Any) -> list[tuple[str, str]]:
    if source == "xquad":
        if lang not in XQUAD_QUERY_LANGS:
            return []
        from xqg.data.benchmarks.xquad import load_xquad

        bench = load_xquad(["en", lang], split="train", data_dir=data_dir)
        by_lang: dict[str, dict[str, str]] = {"en": {}, lang: {}}
        for q in bench.all_queries():
            by_lang[q.lang][_squad_id(q.id, q.lang)] = q.text
        return [(by_lang["en"][k], by_lang[lang][k]) for k in by_lang["en"] if k in by_lang[lang]]
    if source in ("tatoeba", "ntrex"):
        return bitext_half(source, lang, "train", data_dir)
    if source == "xor":
        if lang not in XOR_LANGS:
            return []
        from xqg.data.benchmarks.xor_tydi import load_xor_translations

        xor_dir = None if data_dir is None else Path(data_dir) / "xor_tydi"
        return [(en, xx) for xx, en in load_xor_translations(lang, "train", xor_dir, drop_empty=True)]
    raise XqgError(f"unknown parallel source '{source}'; choose from xquad, tatoeba, ntrex, xor")


def _squad_id(qid: str, lang: str) -> str:
    """The language-independent part of an XQuAD query id (questions are parallel by SQuAD id)."""
    suffix = f"-{lang}"
    return qid[: -len(suffix)] if qid.endswith(suffix) else qid


def distilled_encoder(out_dir: str | Path, teacher: EncoderConfig) -> EncoderConfig:
    """The encoder a distillation run produces: student query tower, the teacher's passage tower."""
    return teacher.model_copy(
        update={
            "model": str((Path(out_dir) / "model").resolve()),
            "passage_model": teacher.passage_model or teacher.model,
        }
    )


def distill(
    out_dir: str | Path,
    config: DistillConfig | None = None,
    *,
    pairs: Sequence[Pair] | None = None,
    resume: bool = True,
    callbacks: Iterable[Any] = (),
    data_dir: Any = None,
    bitext_eval: bool = True,
    show_progress: bool = True,
    stale: Literal["error", "restart"] = "error",
) -> EncoderConfig:
    """Distil, write ``out_dir/model`` + ``encoder.json`` and return the resulting encoder config.

    ``out_dir`` also gets ``training.json``, ``loss.csv``/``loss.png`` and, with ``bitext_eval``,
    ``bitext.json``/``bitext.md``: Tatoeba/NTREX held-out retrieval accuracy, both directions,
    for the teacher (before) and the distilled encoder (after).
    """
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer import losses

    from xqg.models.encoder import BiEncoder
    from xqg.train.retriever import _write_loss, build_model, data_hash, resume_point, training_arguments

    cfg = config or DistillConfig()
    out = start_folder(out_dir)  # one writer at a time (lock released at the end)
    rows = list(pairs) if pairs is not None else parallel_pairs(
        cfg.sources, cfg.langs, max_pairs=cfg.max_pairs, data_dir=data_dir
    )  # fmt: skip
    if len(rows) < cfg.batch_size:
        raise XqgError(f"{len(rows)} parallel pairs are fewer than one batch of {cfg.batch_size}")

    # Teacher targets: each distinct English sentence embedded once, query side (prefix, max length).
    teacher = BiEncoder(cfg.teacher)
    english = list(dict.fromkeys(r[2] for r in rows))
    t_vecs = teacher.encode_queries(english)
    row_of = {s: i for i, s in enumerate(english)}
    before = _bitext(teacher, cfg.langs, data_dir) if bitext_eval else None
    del teacher

    dataset = Dataset.from_dict(
        {
            "english": [r[2] for r in rows],
            "non_english": [r[3] for r in rows],
            "label": [t_vecs[row_of[r[2]]].tolist() for r in rows],
        }
    )
    student_cfg = cfg.teacher.model_copy(
        update={"model": cfg.student or cfg.teacher.model, "passage_model": None,
                "passage_max_length": cfg.teacher.query_max_length}
    )  # fmt: skip
    model = build_model(student_cfg)
    if cfg.freeze_embeddings:
        for p in model[0].model.get_input_embeddings().parameters():
            p.requires_grad_(False)
    if cfg.loss == "mse+rank":
        loss, n_rank = _rank_loss(model, cfg, data_dir)
    else:
        loss, n_rank = losses.MSELoss(model), 0
    ckpt_dir = out / "checkpoints"
    prefix = cfg.teacher.query_prefix
    args = training_arguments(
        cfg,
        ckpt_dir,
        device=cfg.teacher.device,
        show_progress=show_progress,
        prompts={"english": prefix, "non_english": prefix},
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=list(callbacks)
    )
    run_config = {"config": cfg.model_dump(), "data": data_hash(rows)}
    last = resume_point(ckpt_dir, run_config, resume=resume, stale=stale)
    trainer.train(resume_from_checkpoint=last)
    model.save(str(out / "model"))
    history = [h for h in trainer.state.log_history if "loss" in h]
    _write_loss(out, history, title="distillation (MSE to the teacher's English embedding)")

    result = distilled_encoder(out, cfg.teacher)
    write_json(out / "encoder.json", result.model_dump())
    counts: dict[str, int] = {}
    for source, lang, _, _ in rows:
        counts[f"{source}:{lang}"] = counts.get(f"{source}:{lang}", 0) + 1
    info: dict[str, Any] = {
        "config": cfg.model_dump(),
        "pairs": len(rows),
        "pairs_by_source_lang": counts,
        "english_targets": len(english),
        "resumed_from": last,
        "steps": trainer.state.global_step,
        "encoder": result.model_dump(),
        "loss": "MSE(student(X), teacher(en)) + MSE(student(en), teacher(en)) "
        "(sentence-transformers MSELoss)"
        + (
            f" + {cfg.rank_weight} × KL(teacher(en) ‖ student(·)) of softmax(q·P/{cfg.rank_temperature}) "
            f"over {n_rank} XQuAD train-split paragraphs (xqg RankDistillLoss)"
            if cfg.loss == "mse+rank"
            else ""
        ),
    }
    write_json(out / "training.json", info)
    if bitext_eval:
        del model, trainer
        after = _bitext(BiEncoder(result), cfg.langs, data_dir)
        from xqg.evaluate.bitext import write_bitext_report

        write_bitext_report(out, {"teacher": before, "distilled": after})
    unlock_folder(out)
    return result


def _rank_loss(model: Any, cfg: DistillConfig, data_dir: Any) -> tuple[Any, int]:
    """RankDistillLoss over the XQuAD **train-split** English paragraphs (never a dev/test one),
    embedded once by the teacher's passage tower."""
    import torch

    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.models.encoder import BiEncoder
    from xqg.train.losses import RankDistillLoss

    bench = load_xquad(["en"], split="train", data_dir=data_dir)
    texts = [p.text for p in bench.paragraphs_in("train")]
    vecs = BiEncoder(cfg.teacher).encode(texts, kind="passage")
    loss = RankDistillLoss(model, torch.from_numpy(vecs), weight=cfg.rank_weight,
                           temperature=cfg.rank_temperature)  # fmt: skip
    return loss, len(texts)


def _bitext(encoder: Any, langs: Sequence[str], data_dir: Any) -> dict[str, Any]:
    from xqg.evaluate.bitext import heldout_bitext

    return heldout_bitext(encoder, langs, data_dir=data_dir)
