"""``xqg encode | index | search | evaluate | augment | benchmark``: the pipeline's top-level stages.

Thin: each command parses its flags, calls the Python API and prints one summary. Registered on the
root ``xqg`` group by :mod:`xqg.cli`; heavy imports (torch, faiss) happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from xqg.common_cli import (
    Benchmark,
    BenchmarkSplit,
    ConfigOpt,
    EncoderDtype,
    EvalEngine,
    ExecutorOpt,
    IndexMetric,
    InputFormat,
    Kind,
    ModelOpt,
    Pooling,
    QueryFormat,
    RayAddressOpt,
    Strategy,
    WorkersOpt,
    ray_options,
    settings,
    settings_keys,
    split_list,
)
from xqg.errors import XqgError

ENCODE_KEYS = {
    "model": "encoder.model",
    "pooling": "encoder.pooling",
    "normalize": "encoder.normalize",
    "query_prefix": "encoder.query_prefix",
    "passage_prefix": "encoder.passage_prefix",
    "max_length": ("encoder.passage_max_length", "encoder.query_max_length"),  # by --kind
    "use_title": "encoder.use_title",
    "batch_size": "encoder.batch_size",
    "dtype": "encoder.dtype",
    "device": "encoder.device",
    "shard_size": "shard_size",
}
INDEX_KEYS = {"factory": "index.factory", "metric": "index.metric", "per_shard": "index.per_shard"}
SEARCH_KEYS = {"depth": "search.depth", "params": "search.params", "max_length": "search.query_max_length"}
DEFAULT_METRICS = ("mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "ndcg@10")


@settings_keys("experiment", ENCODE_KEYS)
def encode(
    inputs: Annotated[
        Path, typer.Argument(help="corpus (BEIR/Tevatron/Pyserini JSONL, DPR TSV, Parquet) or queries")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder for the shards")],
    config: ConfigOpt = None,
    kind: Annotated[Kind, typer.Option(help="passage: a corpus; query: a queries file")] = "passage",
    fmt: Annotated[InputFormat, typer.Option("--format", help="input format (xor: queries only)")] = "auto",
    model: ModelOpt = None,
    pooling: Annotated[Pooling | None, typer.Option()] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize")] = None,
    query_prefix: Annotated[str | None, typer.Option()] = None,
    passage_prefix: Annotated[str | None, typer.Option()] = None,
    max_length: Annotated[
        int | None, typer.Option(help="max tokens for this kind of text (passage / query)")
    ] = None,
    use_title: Annotated[bool | None, typer.Option("--title/--no-title")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    dtype: Annotated[EncoderDtype | None, typer.Option()] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:1 | mps")] = None,
    shard_size: Annotated[int | None, typer.Option(help="rows per .npy shard")] = None,
    overwrite: Annotated[bool, typer.Option(help="discard a folder made with other settings")] = False,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Encode a corpus (or queries) into resumable .npy shards with a manifest."""
    from xqg.encode import encode_to_shards

    length_key = "encoder.query_max_length" if kind == "query" else "encoder.passage_max_length"
    exp = settings("experiment", config, {**ENCODE_KEYS, "max_length": length_key}, locals())
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
    else:  # the parser allows no other --kind
        raise AssertionError(kind)
    manifest = encode_to_shards(
        records,
        out,
        config=enc,
        kind=kind,  # type: ignore[arg-type]
        shard_size=exp.shard_size,
        total=total,
        inputs={"path": str(inputs.resolve()), "format": fmt},
        overwrite=overwrite,
        backend=executor,
        ray=ray_options(ray_address, workers),
    )
    c = manifest["counts"]
    what = "queries" if kind == "query" else "passages"
    typer.echo(f"{c['rows']} {what} → {c['shards']} shard(s) in {out} (reused {c['reused_shards']})")


def augment(
    passages: Annotated[Path, typer.Argument(help="passage embedding folder ('xqg encode')")],
    queries: Annotated[Path, typer.Argument(help="generated-query embeddings ('xqg queries encode')")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    strategy: Annotated[
        Strategy, typer.Option(help="paper: (1-α)·p + α·Σq; mean: α·mean(q); -norm: unit rows")
    ] = "paper",
    alpha: Annotated[float, typer.Option(help="weight of the generated queries (paper: 0.01)")] = 0.01,
    langs: Annotated[
        str | None, typer.Option(help="only queries in these languages", show_default="all")
    ] = None,
    n: Annotated[
        int | None, typer.Option(help="only the first n samples per language", show_default="all")
    ] = None,
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
        langs=split_list(langs),
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


@settings_keys("experiment", INDEX_KEYS)
def index(
    embeddings: Annotated[Path | None, typer.Argument(help="folder written by 'xqg encode'")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o")] = None,
    config: ConfigOpt = None,
    factory: Annotated[str | None, typer.Option(help="faiss index_factory string; Flat = exact")] = None,
    metric: Annotated[IndexMetric | None, typer.Option(help="inner product or L2 distance")] = None,
    per_shard: Annotated[bool | None, typer.Option("--per-shard/--single")] = None,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="print the memory and disk the index needs; build nothing")
    ] = False,
    rows: Annotated[
        int | None, typer.Option(help="--estimate: corpus size", show_default="the folder's")
    ] = None,
    dim: Annotated[
        int | None, typer.Option(help="--estimate: vector dimension", show_default="the folder's")
    ] = None,
    shard_rows: Annotated[int | None, typer.Option(help="--estimate: vectors per embedding shard")] = None,
) -> None:
    """Build a FAISS index (exact inner product by default) from embedding shards, or --estimate
    what one would need (memory, disk) for a corpus size before building it."""
    from xqg.index import build_index, estimate_index

    exp = settings("experiment", config, INDEX_KEYS, locals())
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


@settings_keys("experiment", SEARCH_KEYS)
def search(
    index_dir: Annotated[Path, typer.Argument(help="folder written by 'xqg index'")],
    queries: Annotated[Path, typer.Argument(help="queries file (BEIR queries.jsonl, TSV, XOR-TyDi JSONL)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for run.trec / run.jsonl")],
    config: ConfigOpt = None,
    depth: Annotated[int | None, typer.Option(help="hits per query")] = None,
    params: Annotated[
        str | None, typer.Option(help="faiss search parameters: 'efSearch=128' (HNSW), 'nprobe=32' (IVF)")
    ] = None,
    fmt: Annotated[QueryFormat, typer.Option("--format", help="queries format")] = "auto",
    max_length: Annotated[
        int | None, typer.Option(help="query tokens, overriding the length recorded with the index")
    ] = None,
) -> None:
    """Search an index with queries encoded by the index's own encoder settings."""
    from xqg.data.queries import read_queries
    from xqg.search import search_queries

    exp = settings("experiment", config, SEARCH_KEYS, locals())
    qs = read_queries(queries, fmt=fmt)
    run = search_queries(index_dir, qs, config=exp.search, out_dir=out)
    typer.echo(f"{len(run)} queries searched → {out}/run.trec, {out}/run.jsonl")


def benchmark(
    name: Annotated[Benchmark, typer.Argument(help="which benchmark")],
    out: Annotated[Path, typer.Option("--out", "-o")],
    langs: Annotated[str | None, typer.Option(help="comma-separated languages", show_default="all")] = None,
    split: Annotated[
        BenchmarkSplit | None, typer.Option(help="xquad: any; xor-tydi: dev | train; xnli: dev | test")
    ] = None,
    corpus: Annotated[Path | None, typer.Option(help="xor-tydi: the English corpus to record")] = None,
) -> None:
    """Build a benchmark's files (BEIR layout + manifest) from the shared data folder."""
    from xqg.data.benchmarks import build_benchmark

    opts: dict[str, Any] = {}
    if langs:
        opts["langs"] = split_list(langs)
    if split:
        opts["split"] = split
    if corpus:
        opts["corpus"] = corpus
    path = build_benchmark(name, out, **opts)
    typer.echo(f"benchmark '{name}' written to {path}")


def evaluate(
    run: Annotated[Path, typer.Argument(help="search folder, run.jsonl or TREC run file")],
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="mrr@10, recall@k, precision@k, ndcg@k, r@kt, r@2kt, … (repeatable)",
            show_default=",".join(DEFAULT_METRICS),
        ),
    ] = None,
    qrels: Annotated[Path | None, typer.Option(help="qrels (BEIR TSV or TREC)")] = None,
    queries: Annotated[Path | None, typer.Option(help="queries file whose 'lang' groups the table")] = None,
    answers: Annotated[Path | None, typer.Option(help="XOR-TyDi XOR-Retrieve JSONL gold (for R@kt)")] = None,
    corpus: Annotated[Path | None, typer.Option(help="corpus the run retrieved from (for R@kt)")] = None,
    baseline: Annotated[Path | None, typer.Option(help="a second run: adds Δ and p-value columns")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="folder for the .md/.json tables")] = None,
    engine: Annotated[
        EvalEngine, typer.Option(help="qrels metrics by numpy, or by ranx (the oracle; same numbers, slower)")
    ] = "numpy",
) -> None:
    """Score a run per language (qrels metrics as ranx computes them, R@kt as the official XOR script)."""
    from xqg.data.qrels import read_qrels
    from xqg.data.queries import read_queries
    from xqg.data.xor import read_xor
    from xqg.evaluate.report import evaluate_run, read_run

    metrics = metric or list(DEFAULT_METRICS)
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


COMMANDS = (encode, index, search, evaluate, augment, benchmark)
