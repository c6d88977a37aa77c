"""``xqg queries generate | report | filter | encode``: the generated queries of the method, from
writing them to the query vectors ``xqg augment`` fuses.

Registered as the ``queries`` group by :mod:`xqg.cli` (the old flat names ``generate``,
``generate-report``, ``filter-queries`` and ``encode-generated`` stay as hidden aliases).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xqg.common_cli import (
    Arch,
    ConfigOpt,
    CorpusFormat,
    ExecutorOpt,
    GeneratorDtype,
    GeneratorEngine,
    ModelOpt,
    Prompt,
    RayAddressOpt,
    Storage,
    SumBy,
    SumDtype,
    WorkersOpt,
    fail,
    ray_options,
    settings,
    settings_keys,
    split_list,
)

GENERATE_KEYS = {
    "model": "generator.model",
    "adapter": "generator.adapter",
    "arch": "generator.backend",
    "engine": "generator.engine",
    "prompt": "generator.prompt",
    "langs": "generator.langs",
    "n": "generator.n",
    "top_k": "generator.top_k",
    "top_p": "generator.top_p",
    "temperature": "generator.temperature",
    "max_new_tokens": "generator.max_new_tokens",
    "max_input_length": "generator.max_input_length",
    "batch_size": "generator.batch_size",
    "refill": "generator.refill",
    "seed": "generator.seed",
    "dtype": "generator.dtype",
    "device": "generator.device",
}


@settings_keys("experiment", GENERATE_KEYS)
def generate(
    corpus: Annotated[Path, typer.Argument(help="corpus (BEIR/Tevatron/Pyserini JSONL, DPR TSV, Parquet)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder for the query shards")],
    config: ConfigOpt = None,
    fmt: Annotated[CorpusFormat, typer.Option("--format", help="corpus format")] = "auto",
    model: Annotated[
        str | None, typer.Option(help="gguf:gemma-3-270m, local folder, or HF id (mT5 or causal LM)")
    ] = None,
    adapter: Annotated[str | None, typer.Option(help="LoRA adapter folder, builtin, or none")] = None,
    arch: Annotated[Arch | None, typer.Option(help="model kind")] = None,
    engine: Annotated[
        GeneratorEngine | None, typer.Option(help="auto = transformers; llama.cpp: Gemma GGUF")
    ] = None,
    prompt: Annotated[Prompt | None, typer.Option(help="auto: paper for seq2seq, causal otherwise")] = None,
    langs: Annotated[
        str | None, typer.Option(help="target languages, comma-separated: ISO 639-1/639-3 or BCP-47")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="queries per passage and language")] = None,
    top_k: Annotated[int | None, typer.Option()] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_new_tokens: Annotated[int | None, typer.Option()] = None,
    max_input_length: Annotated[int | None, typer.Option(help="prompt tokens (passage cut first)")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="prompts per batch (each gives n queries; with refill: live rows / n)")
    ] = None,
    refill: Annotated[
        bool | None,
        typer.Option(
            "--refill/--no-refill", help="continuous batching: finished rows refilled from the next passages"
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    dtype: Annotated[GeneratorDtype | None, typer.Option(help="auto: bf16 where native")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:1 | mps")] = None,
    shard_size: Annotated[int, typer.Option(help="passages per output shard")] = 1000,
    limit: Annotated[
        int | None, typer.Option(help="only the first N passages (quick looks)", show_default="all")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (1 suits a busy shared CPU)")] = None,
    overwrite: Annotated[bool, typer.Option(help="discard a folder made with other settings")] = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Generate n queries per passage in each target language: resumable Parquet shards + manifest."""
    from itertools import islice

    from xqg.data.corpus import count_corpus, iter_corpus
    from xqg.generate.spec import check_generator

    exp = settings("experiment", config, GENERATE_KEYS, {**locals(), "langs": split_list(langs)})
    if limit is not None and limit < 1:
        fail("--limit must be at least 1")
    # Everything that can be checked without weights fails here, before torch is even imported.
    check_generator(exp.generator)
    total = count_corpus(corpus, fmt=fmt)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from xqg.generate.run import generate_queries

    passages = iter_corpus(corpus, fmt=fmt)
    if limit is not None:
        total = min(total, limit)
        passages = islice(passages, limit)
    manifest = generate_queries(
        passages,
        out,
        exp.generator,
        shard_size=shard_size,
        total=total,
        overwrite=overwrite,
        inputs={"path": str(corpus.resolve()), "format": fmt, "limit": limit},
        backend=executor,
        ray=ray_options(ray_address, workers),
    )
    c = manifest["counts"]
    typer.echo(
        f"{c['queries']} queries ({c['passages']} passages × {c['languages']} languages × "
        f"{manifest['n']}) → {c['shards']} shard(s) in {out} (reused {c['reused_shards']})"
    )


def encode_generated(
    generated: Annotated[Path, typer.Argument(help="folder written by 'xqg queries generate'")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    like: Annotated[Path, typer.Option(help="passage embedding folder whose encoder to use (same model)")],
    max_length: Annotated[int, typer.Option(help="query max tokens (the paper: 32)")] = 32,
    langs: Annotated[str | None, typer.Option(help="only these languages", show_default="all")] = None,
    n: Annotated[
        int | None, typer.Option(help="only the first n samples per language", show_default="all")
    ] = None,
    shard_size: Annotated[int, typer.Option()] = 50_000,
    overwrite: Annotated[bool, typer.Option()] = False,
    storage: Annotated[
        Storage, typer.Option(help="int8: with a per-row scale; sums: no --n selection later")
    ] = "float32",
    sum_by: Annotated[
        SumBy, typer.Option(help="--storage sums: per language, or per passage (no --langs later)")
    ] = "language",
    sum_dtype: Annotated[SumDtype, typer.Option(help="--storage sums: the sums' dtype")] = "float32",
) -> None:
    """Encode generated queries with the query side of the encoder that embedded the passages."""
    from xqg.encode import EmbeddingShards, encode_generated_queries
    from xqg.query_store import QueryStorage

    form = QueryStorage(storage, sum_by, sum_dtype)
    enc = EmbeddingShards.open(like).encoder_config.model_copy(update={"query_max_length": max_length})
    m = encode_generated_queries(generated, out, config=enc, langs=split_list(langs), n=n,
                                 shard_size=shard_size, overwrite=overwrite, storage=form)  # fmt: skip
    c = m["counts"]
    typer.echo(
        f"{c.get('queries', c['rows'])} generated queries ({storage}) → {c['shards']} shard(s) in {out}"
    )


def _round_trip_inputs(
    corpus: Path | None, index_dir: Path | None, model: str | None, needed: bool
) -> tuple[Any, Any]:
    """(passages, encoder) for the round-trip check: a corpus encoded by --model, or an --index folder."""
    if index_dir is not None and model is not None:
        fail("give --index (its own encoder is used) or --model, not both")
    if not needed:
        return None, None
    if index_dir is None and corpus is None:
        fail("the round-trip check needs --corpus (or --index)")
    passages = None
    if index_dir is None:
        from xqg.data.corpus import read_corpus

        passages = read_corpus(corpus)
    encoder = None
    if model is not None:
        from xqg.config import EncoderConfig
        from xqg.models.encoder import BiEncoder

        encoder = BiEncoder(EncoderConfig(model=model))
    return passages, encoder


def generate_report(
    gen_dir: Annotated[Path, typer.Argument(help="folder of generated queries ('xqg queries generate')")],
    corpus: Annotated[Path | None, typer.Option(help="the corpus the queries were generated from")] = None,
    index_dir: Annotated[Path | None, typer.Option("--index", help="search this index instead")] = None,
    model: ModelOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="report folder", show_default="GEN_DIR/quality")
    ] = None,
    round_trip_depth: Annotated[
        int, typer.Option("--round-trip-depth", "--depth", help="round trip: own passage within this rank")
    ] = 10,
    round_trip: Annotated[bool, typer.Option("--round-trip/--no-round-trip")] = True,
    langs: Annotated[str | None, typer.Option(help="comma-separated languages", show_default="all")] = None,
    n: Annotated[
        int | None, typer.Option(help="only the first n samples per passage", show_default="all")
    ] = None,
) -> None:
    """Per-language quality of generated queries: language, duplicates, distinct-n, length, round trip."""
    from xqg.generate.quality import quality_report

    passages, encoder = _round_trip_inputs(corpus, index_dir, model, round_trip)
    report = quality_report(
        gen_dir,
        passages,
        encoder=encoder,
        index_dir=index_dir,
        depth=round_trip_depth,
        round_trip=round_trip,
        langs=split_list(langs),
        n=n,
        out_dir=out or gen_dir / "quality",
        show_progress=True,
    )
    typer.echo(report.to_markdown())
    typer.echo(f"written to {report.out_dir}")


def filter_queries_cmd(
    gen_dir: Annotated[Path, typer.Argument(help="folder of generated queries ('xqg queries generate')")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for the kept queries")],
    corpus: Annotated[Path | None, typer.Option(help="the corpus the queries were generated from")] = None,
    index_dir: Annotated[Path | None, typer.Option("--index", help="search this index instead")] = None,
    model: ModelOpt = None,
    lang_check: Annotated[bool, typer.Option("--lang-check/--no-lang-check")] = True,
    round_trip_depth: Annotated[int, typer.Option(help="keep if own passage ranks ≤ this; 0 = off")] = 10,
    drop_duplicates: Annotated[bool, typer.Option("--drop-duplicates/--keep-duplicates")] = False,
) -> None:
    """Keep only generated queries in the requested language whose own passage they retrieve."""
    from xqg.generate.quality import filter_queries

    depth = round_trip_depth or None
    passages, encoder = _round_trip_inputs(corpus, index_dir, model, depth is not None)
    m = filter_queries(
        gen_dir,
        passages,
        out,
        lang_check=lang_check,
        round_trip_depth=depth,
        drop_duplicates=drop_duplicates,
        encoder=encoder,
        index_dir=index_dir,
        show_progress=True,
    )
    for lang, c in m["filter"]["per_lang"].items():
        reasons = ", ".join(f"{k[len('failed_') :]} {v}" for k, v in c.items() if k.startswith("failed_"))
        typer.echo(f"{lang}: kept {c['kept']}/{c['input']} (failed: {reasons})")
    typer.echo(f"{m['counts']['queries']} queries kept, {m['counts']['dropped']} dropped → {out}")


#: name in the group → (command, its old top-level name)
COMMANDS = {
    "generate": (generate, "generate"),
    "report": (generate_report, "generate-report"),
    "filter": (filter_queries_cmd, "filter-queries"),
    "encode": (encode_generated, "encode-generated"),
}
