"""End-to-end experiment: benchmark → encode → index → search → evaluate, as one call.

Each stage writes its own folder under ``out_dir`` (with its manifest), so a finished stage is
reused on a rerun (encoding resumes shard by shard) and every number in ``results.md`` can be
traced back to the files and settings that produced it. ``xqg demo`` and ``xqg experiment``
are thin wrappers around :func:`run_experiment`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from xqg.config import ExperimentConfig
from xqg.errors import XqgError
from xqg.io import atomic_open, write_manifest
from xqg.types import Run

DEMO_CONFIG = Path(__file__).parent / "configs" / "xquad-baseline.yaml"


def packaged_config(path: str | Path) -> Path:
    """``path`` itself if it exists, else the packaged ``configs/<path>.yaml`` (``xquad-xqg``)."""
    p = Path(path)
    if p.exists():
        return p
    packaged = DEMO_CONFIG.parent / f"{p.name.removesuffix('.yaml')}.yaml"
    if p.parent == Path(".") and packaged.exists():
        return packaged
    names = ", ".join(sorted(x.stem for x in DEMO_CONFIG.parent.glob("*.yaml")))
    raise XqgError(f"{path}: no such experiment file (packaged ones: {names})")


def demo_config(path: str | Path | None = None, **overrides: Any) -> ExperimentConfig:
    """The demo's settings: the packaged ``xquad-baseline.yaml`` (or ``path``), with overrides."""
    from xqg.config import load_experiment

    return load_experiment(path or DEMO_CONFIG, {k: v for k, v in overrides.items() if v is not None})


@dataclass
class ExperimentResult:
    out_dir: Path
    table: Any  # xqg.evaluate.LanguageTable
    run: Run
    seconds: dict[str, float]


def run_experiment(
    cfg: ExperimentConfig, *, show_progress: bool = True, log: Any = print
) -> ExperimentResult:
    """Run ``cfg`` end to end and write ``results.md``/``results.json`` into ``cfg.out_dir``."""
    from xqg.data.benchmarks.xquad import build_xquad, load_xquad
    from xqg.encode import encode_corpus
    from xqg.evaluate import LanguageTable, evaluate_qrels
    from xqg.index import build_index
    from xqg.models.encoder import BiEncoder
    from xqg.search import search_queries

    if cfg.benchmark != "xquad":
        raise XqgError(f"experiment benchmark '{cfg.benchmark}' is not supported yet; use 'xquad'")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "config.yaml") as fh:
        yaml.safe_dump(cfg.model_dump(), fh, sort_keys=False, allow_unicode=True)
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    bench = load_xquad(cfg.langs, split=cfg.split)
    build_xquad(out / "benchmark", cfg.langs, split=cfg.split)
    seconds["benchmark"] = time.perf_counter() - t
    n_queries = sum(len(v) for v in bench.queries.values())
    n_langs = len(cfg.langs)
    log(f"benchmark: {len(bench.corpus)} passages, {n_queries} queries in {n_langs} languages ({cfg.split})")

    t = time.perf_counter()
    encoder = BiEncoder(cfg.encoder)
    seconds["load_model"] = time.perf_counter() - t

    t = time.perf_counter()
    encode_corpus(
        iter(bench.corpus),
        out / "embeddings",
        config=cfg.encoder,
        encoder=encoder,
        shard_size=cfg.shard_size,
        total=len(bench.corpus),
        inputs={"benchmark": str((out / "benchmark").resolve())},
        overwrite=True,
        show_progress=show_progress,
    )
    seconds["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    build_index(out / "embeddings", out / "index", cfg.index, show_progress=False)
    seconds["index"] = time.perf_counter() - t

    t = time.perf_counter()
    queries = [q for lang in cfg.langs for q in bench.queries[lang]]
    run = search_queries(
        out / "index",
        queries,
        config=cfg.search,
        encoder=encoder,
        out_dir=out / "run",
        show_progress=show_progress,
    )
    seconds["search"] = time.perf_counter() - t

    t = time.perf_counter()
    per_query = evaluate_qrels(run, bench.qrels, cfg.eval.metrics)
    table = LanguageTable.build(per_query, bench.qid_lang, langs=cfg.langs)
    table.write(out, "results")
    seconds["evaluate"] = time.perf_counter() - t

    write_manifest(
        out,
        stage="experiment",
        config=cfg.model_dump(),
        counts={"passages": len(bench.corpus), "queries": n_queries, "languages": len(cfg.langs)},
        files=["config.yaml", "results.md", "results.json"],
        extra={"seconds": seconds},
    )
    return ExperimentResult(out, table, run, seconds)


#: The demo's xQG fusion: the strategy and α chosen on XQuAD's dev split (reports/xquad-xqg).
DEMO_FUSION: dict[str, Any] = {"strategy": "mean-norm", "alpha": 0.5}


def build_augmented_index(
    out_dir: str | Path,
    generated: str | Path,
    *,
    strategy: str,
    alpha: float,
    query_max_length: int = 32,
    n: int | None = None,
    encoder: Any | None = None,
    show_progress: bool = True,
    log: Any = print,
) -> Path:
    """Fuse ``out_dir/embeddings`` with the queries of ``generated`` and index the result.

    encode-generated (query side, ``query_max_length`` tokens as the paper) → augment →
    index, into ``out_dir/generated-emb``, ``out_dir/embeddings-xqg`` and ``out_dir/index-xqg``
    (returned). ``n``: only the first n samples per language. Encoding resumes, so a rerun only
    fuses and indexes again (seconds).
    """
    from xqg.augment import augment
    from xqg.encode import EmbeddingShards, encode_generated_queries
    from xqg.index import build_index
    from xqg.models.encoder import BiEncoder

    out = Path(out_dir)
    passages = EmbeddingShards.open(out / "embeddings")
    if encoder is None:
        encoder = BiEncoder(passages.encoder_config)
    q_encoder = encoder.with_settings(query_max_length=query_max_length)
    m = encode_generated_queries(
        generated, out / "generated-emb", encoder=q_encoder, n=n, overwrite=True, show_progress=show_progress
    )
    aug = augment(
        out / "embeddings", out / "generated-emb", out / "embeddings-xqg",
        strategy=strategy, alpha=alpha, show_progress=False,
    )  # fmt: skip
    build_index(out / "embeddings-xqg", out / "index-xqg", show_progress=False)
    log(
        f"xQG index: {aug['counts']['rows']} passages fused with {m['counts']['rows']} generated queries "
        f"({strategy}, α={alpha:g}) → {out / 'index-xqg'}"
    )
    return out / "index-xqg"


def build_demo_indexes(
    out_dir: str | Path,
    generated: str | Path,
    *,
    langs: tuple[str, ...] = ("en", "ar"),
    n: int | None = None,
    encoder: Any | None = None,
    show_progress: bool = True,
    log: Any = print,
) -> tuple[Path, Path]:
    """The demo's two indexes without its search and evaluation: XQuAD passages encoded with the
    demo's settings (``out_dir/index``) and fused with ``generated`` (``out_dir/index-xqg``).

    For benchmarks and tests of the service; ``xqg demo --serve`` gets the same from the demo run.
    """
    from xqg.data.benchmarks.xquad import build_xquad, load_xquad
    from xqg.encode import encode_corpus
    from xqg.index import build_index
    from xqg.models.encoder import BiEncoder

    out = Path(out_dir)
    cfg = demo_config().encoder
    bench = load_xquad(list(langs), split="all")
    build_xquad(out / "benchmark", list(langs), split="all")
    encoder = encoder or BiEncoder(cfg)
    inputs = {"benchmark": str((out / "benchmark").resolve())}
    encode_corpus(iter(bench.corpus), out / "embeddings", config=cfg, encoder=encoder, inputs=inputs,
                  overwrite=True, show_progress=show_progress)  # fmt: skip
    build_index(out / "embeddings", out / "index", show_progress=False)
    aug = build_augmented_index(out, generated, n=n, encoder=encoder, show_progress=show_progress, log=log,
                                **DEMO_FUSION)  # fmt: skip
    return out / "index", aug
