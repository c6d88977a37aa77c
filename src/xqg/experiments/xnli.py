"""XNLI as a cross-lingual retrieval benchmark (issue 15): baselines, distillation on its parallel
text, xQG on top, and the grid {base, base+distill} × {without, with xQG}.

Stages (folders under ``out_dir``; a finished one is reused on rerun):

``benchmark-{dev,test}/`` (``xqg benchmark xnli``) and ``premises.jsonl`` (the 2,500 English dev
and test premises, what ``xqg generate`` writes queries for) → ``embeddings/`` (the premises,
passage side) → ``models/<distill run>/`` (:func:`xqg.train.distill.distill` on XNLI **dev**
parallel sentences, alone or with the sources the XQuAD grid uses) → ``eval/<model>/queries-*``
(hypotheses and premises of both splits, query side) and ``eval/<model>/generated-emb/`` → the
report (``results.json``, ``analysis.md``/``analysis.json`` for ``xqg report``, tables, a plot).

**Tuning is on dev only.** The fusion strategy and α are chosen per model by macro MRR@10 of the
hypothesis task on dev, over the dev corpus (830 premises); test (1,670 premises) is scored once.
The distillation recipe is fixed in the config before any test number is seen.

Scoring reuses :mod:`xqg.experiments.augmentation` (corpus/split vectors, the fusion grid and
``tune``); metrics come from gold ranks (each query has one relevant premise) and tables and
paired permutation tests from :class:`~xqg.evaluate.tables.LanguageTable`.

Why ~620 lines: the stages of one experiment (benchmark, premises, distillation, generation,
encoding, tuning, scoring) share one config and one folder layout; the report's rendering is
in ``xnli_report.py``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from xqg.config import AugmentExperimentConfig, EncoderConfig
from xqg.data.benchmarks.xnli import XNLI_LANGS, build_xnli, load_xnli, read_xnli
from xqg.errors import XqgError
from xqg.experiments.augmentation import CorpusVectors, SplitVectors, describe, tune, variant_grid
from xqg.train.distill import DistillConfig

STAGE = "experiment-xnli"
#: Tatoeba file codes of the XNLI languages that :data:`xqg.train.distill.TATOEBA_CODES` lacks.
EXTRA_TATOEBA = {"bg": "bul", "fr": "fra", "sw": "swh", "ur": "urd"}
#: Joshi et al. (2020) classes of the XNLI languages xqg's resource table does not list yet
#: (``lang2tax.txt``: French 5 "winner", Bulgarian and Urdu 3 "rising stars", Swahili 2 "hopefuls").
EXTRA_JOSHI = {"fr": 5, "bg": 3, "ur": 3, "sw": 2}
#: (split, task) query sets encoded per model. Dev is only for choosing the fusion, on the hypothesis
#: task, so it is encoded only for the grid's models and only once there are generated queries.
TEST_SETS = (("test", "hypothesis"), ("test", "premise"))
DEV_SET = ("dev", "hypothesis")
TASK_NAMES = {
    "hypothesis": "hypothesis → English premise (graded)",
    "entailment": "entailment hypothesis → English premise",
    "premise": "premise → English premise (bitext)",
}


class XnliDistill(BaseModel):
    """One distillation run: XNLI dev pairs (capped per language) plus ``config.sources``."""

    model_config = ConfigDict(extra="forbid")

    xnli_pairs: int | None = Field(300, ge=1, description="XNLI dev pairs per language (seeded sample)")
    config: DistillConfig = DistillConfig(sources=[])


def _default_augment() -> AugmentExperimentConfig:
    return AugmentExperimentConfig(
        variants=[], rkt=[], metrics=["mrr@10", "recall@1", "recall@10", "ndcg@10"]
    )


class XnliConfig(BaseModel):
    """The experiment's settings (``configs/xnli-grid.yaml``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "xnli-grid"
    out_dir: str = "runs/xnli"
    langs: list[str] = list(XNLI_LANGS)
    encoder: EncoderConfig = EncoderConfig(query_max_length=128, passage_max_length=256)
    generated: str | None = Field(
        None, description="`xqg generate` folder over premises.jsonl; None = pending"
    )
    n: int = Field(1, ge=1, description="generated queries per premise and language to fuse")
    augment: AugmentExperimentConfig = Field(default_factory=_default_augment)
    distill: dict[str, XnliDistill] = {"xnli": XnliDistill()}
    grid_distill: str = Field("xnli", description="the distill run that is the grid's base+distill")
    test_every: int = Field(
        1,
        ge=1,
        description="score the queries of every k-th test premise only (corpus stays all 1,670); 1 = all",
    )
    tatoeba_pairs: int | None = Field(
        None, ge=1, description="held-out Tatoeba pairs per language; None = all"
    )
    seed: int = 0


# --- data --------------------------------------------------------------------------------------


def xnli_dev_pairs(
    langs: Sequence[str], per_lang: int | None, seed: int = 0
) -> list[tuple[str, str, str, str]]:
    """``(source, lang, English, X)`` distillation pairs from XNLI **dev** (premises and hypotheses).

    Each language gets its own seeded sample of ``per_lang`` of its 3,320 pairs (830 premises +
    2,490 hypotheses), so the languages together cover more distinct English sentences.
    """
    data = read_xnli("dev", [x for x in langs if x != "en"])
    out = []
    for lang in langs:
        if lang == "en":
            continue
        pairs = data.parallel_sentences(lang)
        if per_lang is not None and per_lang < len(pairs):
            pairs = random.Random(f"xnli-dev-{seed}-{lang}").sample(pairs, per_lang)
        out.extend(("xnli", lang, en, xx) for en, xx in pairs)
    return out


def write_premises(out: Path) -> Path:
    """``premises.jsonl``: the English dev then test premises (ids ``dev-p…``/``test-p…``)."""
    from xqg.data.corpus import write_corpus

    path = out / "premises.jsonl"
    if not path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        corpus = [p for split in ("dev", "test") for p in load_xnli(["en"], split).corpus]
        write_corpus(path, corpus)
    return path


# --- models ------------------------------------------------------------------------------------


def _distill_model(
    name: str,
    spec: XnliDistill,
    teacher: EncoderConfig,
    cfg: XnliConfig,
    out: Path,
    log: Callable[[str], Any],
) -> tuple[EncoderConfig, dict[str, Any]]:
    """Distil (or reuse) one run; returns its encoder and what it was trained on."""
    from xqg.io import read_json, write_json
    from xqg.train.distill import distill, parallel_pairs
    from xqg.train.retriever import data_hash

    langs = [x for x in cfg.langs if x != "en"]
    # The model is the cell's; how its targets are encoded (length, batch) comes from the run's
    # teacher settings, in float32 as in the XQuAD grid (targets are computed once).
    t = spec.config.teacher
    teacher = teacher.model_copy(
        update={"dtype": "float32", "batch_size": t.batch_size, "query_max_length": t.query_max_length}
    )
    dcfg = spec.config.model_copy(update={"teacher": teacher})
    pairs = xnli_dev_pairs(langs, spec.xnli_pairs, cfg.seed)
    if dcfg.sources:
        pairs += parallel_pairs(dcfg.sources, dcfg.langs, max_pairs=dcfg.max_pairs)
    counts: dict[str, int] = {}
    for source, lang, _, _ in pairs:
        counts[f"{source}:{lang}"] = counts.get(f"{source}:{lang}", 0) + 1
    record = {"xnli": spec.model_dump(), "config": dcfg.model_dump(), "data": data_hash(pairs)}
    run_dir = out / "models" / name
    info = {
        "pairs": len(pairs),
        "english_targets": len({p[2] for p in pairs}),
        "pairs_by_source_lang": counts,
        "steps": dcfg.max_steps,
        "batch_size": dcfg.batch_size,
        "run_dir": str(run_dir),
    }
    rec_path = run_dir / "xnli-distill.json"
    if (
        rec_path.is_file()
        and (run_dir / "encoder.json").is_file()
        and read_json(rec_path).get("record") == record
    ):
        log(f"distill {name}: reusing {run_dir}")
        info.update(read_json(rec_path).get("info", {}))
        return EncoderConfig(**read_json(run_dir / "encoder.json")), info
    log(f"distill {name}: {len(pairs)} pairs, {dcfg.max_steps} steps × {dcfg.batch_size} → {run_dir}")
    t = time.perf_counter()
    enc = distill(run_dir, dcfg, pairs=pairs, bitext_eval=False, stale="restart")
    info["seconds"] = time.perf_counter() - t
    write_json(rec_path, {"record": record, "info": info})
    return enc, info


def eval_encoder(model: EncoderConfig, cfg: XnliConfig) -> EncoderConfig:
    """A model's encoder with the experiment's evaluation settings (lengths, dtype, batch)."""
    e = cfg.encoder
    keep = ("query_max_length", "passage_max_length", "dtype", "batch_size", "threads")
    return model.model_copy(update={k: getattr(e, k) for k in keep})


# --- vectors -----------------------------------------------------------------------------------


@dataclass
class Vectors:
    """Everything scored for one model: premise vectors, its generated-query vectors, its queries."""

    pids: list[str]
    passages: np.ndarray
    queries: dict[tuple[str, str], tuple[list[str], np.ndarray]]  # (split, task) → ids, vectors
    gen: tuple[list[str], np.ndarray] | None


def _encode_model(
    name: str, enc: EncoderConfig, cfg: XnliConfig, out: Path, show_progress: bool, with_xqg: bool
) -> dict[str, float]:
    """Encode a model's test queries into ``eval/<name>/``; ``with_xqg``: also its dev hypotheses
    and the generated queries (the model is in the xQG grid and generation has finished)."""
    from xqg.encode import encode_generated_queries, encode_queries
    from xqg.models.encoder import BiEncoder

    seconds: dict[str, float] = {}
    encoder = BiEncoder(eval_encoder(enc, cfg))
    folder = out / "eval" / name
    t = time.perf_counter()
    for split, task in (*TEST_SETS, DEV_SET) if with_xqg else TEST_SETS:
        encode_queries(
            selected_queries(cfg, split, task),
            folder / query_folder(cfg, split, task),
            encoder=encoder,
            show_progress=show_progress,
        )
    seconds["encode_queries"] = time.perf_counter() - t
    gen = _generated_dir(cfg)
    if with_xqg and gen is not None:
        t = time.perf_counter()
        q_encoder = encoder.with_settings(query_max_length=cfg.augment.query_max_length)
        encode_generated_queries(
            gen,
            folder / "generated-emb",
            encoder=q_encoder,
            langs=_gen_langs(cfg),
            n=cfg.n,
            show_progress=show_progress,
        )
        seconds["encode_generated"] = time.perf_counter() - t
    return seconds


def _premise_index(pid: str) -> int:
    return int(pid.rsplit("-p", 1)[1])


def selected_queries(cfg: XnliConfig, split: str, task: str) -> list[Any]:
    """The task's queries of ``split``; on test only those of every ``test_every``-th premise."""
    b = load_xnli(cfg.langs, split, task)
    qs = b.all_queries()
    if split != "test" or cfg.test_every == 1:
        return qs
    return [q for q in qs if _premise_index(next(iter(b.qrels[q.id]))) % cfg.test_every == 0]


def query_folder(cfg: XnliConfig, split: str, task: str) -> str:
    every = f"-every{cfg.test_every}" if split == "test" and cfg.test_every > 1 else ""
    return f"queries-{split}-{task}{every}"


def _gen_langs(cfg: XnliConfig) -> list[str]:
    return [x for x in cfg.langs if x != "en"]


def _generated_dir(cfg: XnliConfig) -> Path | None:
    """The generation folder when it is finished with every language and ``n``; else None (pending)."""
    from xqg.experiments.augmentation import _check_generated

    if cfg.generated is None or not Path(cfg.generated).is_dir():
        return None
    try:
        _check_generated(Path(cfg.generated), _gen_langs(cfg), cfg.n)
    except XqgError:
        return None
    return Path(cfg.generated)


def _load_vectors(name: str, cfg: XnliConfig, out: Path) -> Vectors:
    from xqg.encode import EmbeddingShards

    pids, p = EmbeddingShards.open(out / "embeddings").load()
    folder = out / "eval" / name
    queries = {}
    for split, task in (*TEST_SETS, DEV_SET):
        if not (folder / query_folder(cfg, split, task) / "manifest.json").is_file():
            continue
        ids, v = EmbeddingShards.open(folder / query_folder(cfg, split, task)).load()
        queries[(split, task)] = (ids, np.ascontiguousarray(v, dtype=np.float32))
    gen = None
    if (folder / "generated-emb" / "manifest.json").is_file():
        gen = EmbeddingShards.open(folder / "generated-emb").load()
    return Vectors(pids=pids, passages=p, queries=queries, gen=gen)


def corpus_vectors(v: Vectors, split: str) -> CorpusVectors:
    """The split's premises (ids ``{split}-p…``) with the generated queries written for them."""
    from xqg.encode import parse_generated_id
    from xqg.search import exact_ranks

    rows = [i for i, pid in enumerate(v.pids) if pid.startswith(f"{split}-")]
    pids = [v.pids[i] for i in rows]
    p = np.asarray(v.passages[rows], dtype=np.float64)
    row_of = {pid: i for i, pid in enumerate(pids)}
    d = p.shape[1]
    lang, sample, grow, keep = [], [], [], []
    if v.gen is not None:
        for j, gid in enumerate(v.gen[0]):
            g_lang, g_sample, pid = parse_generated_id(gid)
            if pid in row_of:
                lang.append(g_lang), sample.append(g_sample), grow.append(row_of[pid]), keep.append(j)
    g = np.ascontiguousarray(v.gen[1][keep], dtype=np.float32) if keep else np.zeros((0, d), np.float32)
    gen_row = np.array(grow, dtype=np.int64)
    return CorpusVectors(
        pids=pids,
        passages=p,
        gen=g,
        gen_lang=np.array(lang, dtype=object),
        gen_sample=np.array(sample, dtype=np.int64),
        gen_row=gen_row,
        gen_rank=exact_ranks(g, p.astype(np.float32), gen_row) if keep else np.zeros(0, np.int64),
    )


def split_vectors(v: Vectors, split: str, task: str, cv: CorpusVectors, langs: Sequence[str]) -> SplitVectors:
    """One task's queries of ``split`` (``entailment`` = the entailment hypotheses' rows)."""
    b = load_xnli(langs, split, task)
    ids, vecs = v.queries[(split, "premise" if task == "premise" else "hypothesis")]
    index = {q: i for i, q in enumerate(ids)}
    row_of = {pid: i for i, pid in enumerate(cv.pids)}
    qs = [q for q in b.all_queries() if q.id in index]
    return SplitVectors(
        name=f"{split}:{task}",
        qids=[q.id for q in qs],
        langs=np.array([q.lang for q in qs], dtype=object),
        vectors=vecs[np.array([index[q.id] for q in qs], dtype=np.int64)],
        gold=np.array([row_of[next(iter(b.qrels[q.id]))] for q in qs], dtype=np.int64),
    )


def per_query(
    cv: CorpusVectors, sv: SplitVectors, spec: dict[str, Any], metrics: Sequence[str]
) -> dict[str, Any]:
    """``{metric: {qid: value}}`` of system ``spec`` (baseline or fusion) from exact gold ranks."""
    from xqg.evaluate.metrics import metrics_from_ranks
    from xqg.search import exact_ranks

    if spec["kind"] == "baseline":
        p = cv.passages.astype(np.float32)
    else:
        p = cv.fused(spec["strategy"], spec["alpha"], cv.select(n=spec.get("n")))
    ranks = exact_ranks(sv.vectors, p, sv.gold)
    return metrics_from_ranks(dict(zip(sv.qids, ranks.tolist(), strict=True)), metrics)


# --- bitext ------------------------------------------------------------------------------------


def tatoeba_heldout(enc: EncoderConfig, cfg: XnliConfig) -> dict[str, Any]:
    """Top-1 bitext accuracy on Tatoeba's held-out (odd) lines for every non-English XNLI language."""
    from xqg.evaluate.bitext import bitext_accuracy
    from xqg.models.encoder import BiEncoder
    from xqg.train.distill import TATOEBA_CODES, tatoeba_halves

    encoder = BiEncoder(eval_encoder(enc, cfg))
    out = {}
    for lang in _gen_langs(cfg):
        code = TATOEBA_CODES.get(lang) or EXTRA_TATOEBA.get(lang)
        if code is None:
            continue
        pairs = tatoeba_halves(code)[1][: cfg.tatoeba_pairs]
        en = encoder.encode_queries([p[0] for p in pairs])
        xx = encoder.encode_queries([p[1] for p in pairs])
        out[lang] = bitext_accuracy(xx, en)
    return out


def tatoeba_cached(folder: Path, enc: EncoderConfig, cfg: XnliConfig) -> dict[str, Any]:
    """:func:`tatoeba_heldout`, kept in ``folder/tatoeba-<pairs>.json`` (the model folder's weights
    are fixed once distilled; a retrained model gets a new evaluation folder's file removed with it)."""
    from xqg.io import read_json, write_json

    path = folder / f"tatoeba-{cfg.tatoeba_pairs or 'all'}.json"
    if path.is_file():
        return read_json(path)
    result = tatoeba_heldout(enc, cfg)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, result)
    return result


# --- the experiment ----------------------------------------------------------------------------


def resource_group(lang: str) -> str:
    """``low``/``high`` by Joshi class (≥ 4 is high), from xqg's table or :data:`EXTRA_JOSHI`."""
    from xqg.analyse import resource_levels as rl

    try:
        return rl.resource_group(lang)
    except XqgError:
        if lang not in EXTRA_JOSHI:
            raise
        return "high" if EXTRA_JOSHI[lang] >= rl.DEFAULT_HIGH_MIN_CLASS else "low"


@dataclass
class XnliResult:
    out_dir: Path
    report_dir: Path
    summary: dict[str, Any]


def run_xnli_experiment(
    cfg: XnliConfig,
    *,
    report_dir: str | Path | None = None,
    log: Callable[[str], Any] = print,
    show_progress: bool = True,
    command: str | None = None,
    models_only: bool = False,
) -> XnliResult:
    """Run every stage (reusing finished ones) and write the report; xQG cells are marked pending
    while ``cfg.generated`` is not a finished generation folder."""
    from xqg.encode import encode_corpus
    from xqg.evaluate.tables import LanguageTable
    from xqg.experiments.xnli_report import write_xnli_report
    from xqg.io import write_json
    from xqg.models.encoder import BiEncoder

    out = Path(cfg.out_dir)
    rep = Path(report_dir) if report_dir is not None else out / "report"
    langs = list(cfg.langs)
    a = cfg.augment
    metric, metrics = a.tune_metric, list(a.metrics)
    seconds: dict[str, Any] = {}

    t = time.perf_counter()
    for split in ("dev", "test"):
        build_xnli(out / f"benchmark-{split}", langs, split)
    premises = write_premises(out)
    seconds["benchmark"] = time.perf_counter() - t

    t = time.perf_counter()
    base = cfg.encoder
    from xqg.data.corpus import iter_corpus

    encode_corpus(
        iter_corpus(premises),
        out / "embeddings",
        encoder=BiEncoder(eval_encoder(base, cfg)),
        total=2500,
        inputs={"premises": str(premises.resolve())},
        show_progress=show_progress,
    )
    seconds["encode_premises"] = time.perf_counter() - t

    models: dict[str, EncoderConfig] = {"base": base}
    distill_info: dict[str, Any] = {}
    for name, spec in cfg.distill.items():
        models[f"base+distill:{name}"], distill_info[name] = _distill_model(name, spec, base, cfg, out, log)
    if cfg.grid_distill not in cfg.distill:
        raise XqgError(
            f"grid_distill '{cfg.grid_distill}' is not one of the distill runs {list(cfg.distill)}"
        )
    if models_only:
        return XnliResult(out, rep, {"distill": distill_info})

    gen_dir = _generated_dir(cfg)
    log(
        "xQG: " + (f"fusing {gen_dir}" if gen_dir else f"pending (no finished generation at {cfg.generated})")
    )
    grid_models = ("base", f"base+distill:{cfg.grid_distill}")
    values: dict[str, dict[str, Any]] = {}  # system → task → per-query values (test)
    chosen: dict[str, Any] = {}
    bitext: dict[str, Any] = {}
    for name, enc in models.items():
        slug = name.replace("+", "-").replace(":", "-")
        with_xqg = gen_dir is not None and name in grid_models
        seconds[f"encode:{name}"] = _encode_model(slug, enc, cfg, out, show_progress, with_xqg)
        t = time.perf_counter()
        v = _load_vectors(slug, cfg, out)
        cv = {s: corpus_vectors(v, s) for s in ("dev", "test")}
        sv = {("test", task): split_vectors(v, "test", task, cv["test"], langs) for task in TASK_NAMES}
        values[name] = {
            task: per_query(cv["test"], sv[("test", task)], {"kind": "baseline"}, metrics)
            for task in TASK_NAMES
        }
        if with_xqg and len(cv["dev"].gen_row):
            dev = split_vectors(v, *DEV_SET, cv["dev"], langs)
            spec, grid = tune(cv["dev"], dev, variant_grid("tuned", a, cfg.n), metric)
            chosen[name] = {"spec": spec, "describe": describe(spec), "dev_grid": grid}
            values[f"{name}+xQG"] = {
                task: per_query(cv["test"], sv[("test", task)], spec, metrics) for task in TASK_NAMES
            }
            log(f"dev: {name}+xQG → {describe(spec)}")
        seconds[f"score:{name}"] = time.perf_counter() - t
        t = time.perf_counter()
        bitext[name] = tatoeba_cached(out / "eval" / slug, enc, cfg)
        seconds[f"tatoeba:{name}"] = time.perf_counter() - t

    t = time.perf_counter()
    qid_lang = {task: load_xnli(langs, "test", task).qid_lang for task in TASK_NAMES}
    ref = values["base"]
    tables: dict[str, dict[str, LanguageTable]] = {}
    for system, by_task in values.items():
        tables[system] = {
            task: LanguageTable.build(
                vals,
                qid_lang[task],
                langs=[x for x in langs if x in set(qid_lang[task].values())],
                baseline=None if system == "base" else ref[task],
                test=a.significance,
                title=f"{system}: {TASK_NAMES[task]}",
            )
            for task, vals in by_task.items()
        }
    xqg_effect = {}
    for name in models:
        if f"{name}+xQG" in values:
            xqg_effect[name] = LanguageTable.build(
                values[f"{name}+xQG"]["hypothesis"],
                qid_lang["hypothesis"],
                langs=langs,
                baseline=values[name]["hypothesis"],
                test=a.significance,
                title=f"{name}: xQG on vs off",
            )
    groups = _group_tests(values, qid_lang["hypothesis"], langs, metric, models)
    seconds["tables"] = time.perf_counter() - t

    summary = {
        "name": cfg.name,
        "metric": metric,
        "metrics": metrics,
        "langs": langs,
        "config": cfg.model_dump(),
        "grid_distill": f"base+distill:{cfg.grid_distill}",
        "generated": _generated_info(gen_dir, cfg),
        "xqg_settings": chosen
        and {k: {"spec": c["spec"], "describe": c["describe"]} for k, c in chosen.items()},
        "dev_grids": {k: c["dev_grid"] for k, c in chosen.items()},
        "tables": {s: {task: t.to_dict() for task, t in by.items()} for s, by in tables.items()},
        "xqg_effect": {k: t.to_dict() for k, t in xqg_effect.items()},
        "groups": groups,
        "resource_groups": {x: resource_group(x) for x in langs if x != "en"},
        "distill": distill_info,
        "tatoeba": bitext,
        "seconds": seconds,
        "corpus": {"dev": 830, "test": 1670},
        "test_every": cfg.test_every,
    }
    write_xnli_report(rep, summary, command=command)
    write_json(out / "xnli.json", {k: v for k, v in summary.items() if k != "tables"})
    return XnliResult(out, rep, summary)


def _generated_info(gen_dir: Path | None, cfg: XnliConfig) -> dict[str, Any]:
    if gen_dir is None:
        return {"status": "pending", "folder": cfg.generated, "n": cfg.n}
    from xqg.generate import store
    from xqg.io import read_manifest

    m = read_manifest(gen_dir, stage=store.STAGE)
    g = m.get("config", {}).get("generator", {})
    return {
        "status": "done",
        "folder": str(gen_dir),
        "n": cfg.n,
        "model": g.get("model"),
        "adapter": g.get("adapter"),
        "langs": g.get("langs"),
        "dtype": g.get("dtype"),
        "counts": m.get("counts"),
        # wall time from the folder itself: its first file (config.json) to its manifest, written last
        "seconds": _folder_seconds(gen_dir),
    }


def _folder_seconds(folder: Path) -> float | None:
    times = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()]
    return max(times) - min(times) if len(times) > 1 else None


def _group_tests(
    values: dict[str, dict[str, Any]],
    qid_lang: dict[str, str],
    langs: Sequence[str],
    metric: str,
    models: dict[str, EncoderConfig],
) -> dict[str, Any]:
    """Macro Δ and paired test of each cell (vs base) and of xQG (vs the same model) per resource group."""
    from xqg.evaluate.significance import macro_paired_test

    pairs = [(s, "base") for s in values if s != "base"]
    pairs += [(f"{m}+xQG", m) for m in models if f"{m}+xQG" in values]
    out: dict[str, Any] = {}
    for group in ("low", "high"):
        members = {x for x in langs if x != "en" and resource_group(x) == group}
        scored = values["base"]["hypothesis"][metric]
        sel = {q: lang for q, lang in qid_lang.items() if lang in members and q in scored}
        if not sel:
            continue
        rows = {}
        for system, ref in pairs:
            a = {q: values[system]["hypothesis"][metric][q] for q in sel}
            b = {q: values[ref]["hypothesis"][metric][q] for q in sel}
            r = macro_paired_test(a, b, sel, confidence=None)
            rows[f"{system} vs {ref}"] = {
                "system": r.mean_a,
                "reference": r.mean_b,
                "delta": r.delta,
                "p": r.p_permutation,
            }
        out[group] = {"langs": sorted(members), "tests": rows}
    return out
