"""Compute side of the misspellings analysis: what is compared, the evaluation sets, encoding,
corrupting, searching and scoring, and :func:`compute`, which returns a :class:`MisspellingsResult`
(its ``data`` is the analysis' plain data)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import ModelSpec, SystemSpec, load_vectors
from xqg.analyse.noise import (
    corrupt_queries,
    describe_languages,
    noise_report,
    parse_weights,
)
from xqg.config import EncoderConfig
from xqg.errors import XqgError
from xqg.io import atomic_path
from xqg.progress import progress_bar
from xqg.types import Passage, Qrels, Query

NAME = "misspellings"
QUESTION = (
    "How robust is cross-lingual dense retrieval to misspelt queries, in English conversation memory "
    "(LoCoMo: question → evidence turn) and in non-English queries (XQuAD languages), and does "
    "cross-lingual fine-tuning or augmentation change that?"
)
METRICS: tuple[str, ...] = ("mrr@10", "recall@10")
BENCHMARKS: tuple[str, ...] = ("locomo", "xquad")
DEFAULT_RATES: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3)
DEPTH = 10
#: Settings that change how texts are batched or where they run, not the vectors (up to float noise).
_RUNTIME = ("batch_size", "device", "threads")
_PASSAGE_ONLY = ("passage_model", "passage_prefix", "passage_max_length", "use_title", "title_sep")
_QUERY_ONLY = ("query_prefix", "query_max_length")


# ----------------------------------------------------------------------------------------------
# What is compared.


@dataclass
class Entry:
    """One compared system: how its queries are encoded and where its passages come from."""

    label: str
    kind: str  # "model" | "system"
    query_config: EncoderConfig
    model: ModelSpec | None = None
    system: SystemSpec | None = None

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "query_encoder": self.query_config.model_dump()}
        if self.model is not None:
            d["passages"] = f"encoded with {self.model.passage_model or self.model.model}"
        if self.system is not None:
            d["passages"] = str(self.system.passage_dir())
            d["folder"] = str(self.system.folder)
            d["system"] = self.system.system
        return d


@dataclass
class EvalSet:
    """A benchmark ready to search: corpus, queries (with languages), qrels and reporting groups.

    ``groups`` name sets of query ids whose means are reported (e.g. one per language, and
    ``non-en``); they may overlap.
    """

    name: str
    corpus: list[Passage]
    queries: list[Query]
    qrels: Qrels
    groups: dict[str, list[str]]
    info: dict[str, Any] = field(default_factory=dict)


def _sample(ids: Sequence[str], max_queries: int | None, seed: int) -> list[str]:
    """At most ``max_queries`` of ``ids``, seeded, kept in their original order."""
    if max_queries is None or max_queries >= len(ids):
        return list(ids)
    if max_queries < 1:
        raise XqgError("--max-queries must be at least 1")
    keep = np.random.Generator(np.random.PCG64(seed)).choice(len(ids), size=max_queries, replace=False)
    return [ids[i] for i in sorted(keep)]


def locomo_eval_set(
    *, max_queries: int | None = None, seed: int = 0, path: str | Path | None = None
) -> EvalSet:
    """LoCoMo (all 5,882 turns as corpus); groups ``all`` and ``category-<n>`` (LoCoMo's own ids)."""
    from xqg.data.benchmarks.locomo import load_locomo

    bench = load_locomo(path)
    keep = _sample([q.id for q in bench.queries], max_queries, seed)
    sub = bench.subset(keep)
    groups: dict[str, list[str]] = {"all": list(keep)}
    for cat in sorted(set(sub.query_category.values())):
        groups[f"category-{cat}"] = [q for q in keep if sub.query_category[q] == cat]
    info = {
        "loader_counts": bench.counts,
        "skipped_questions": bench.skipped,
        "evidence_issues": [
            {"query": i.query_id, "raw": i.raw, "kind": i.kind, "resolved": list(i.resolved)}
            for i in bench.issues
        ],
    }
    return EvalSet("locomo", sub.corpus, sub.queries, sub.qrels, groups, info)


def xquad_eval_set(
    langs: Sequence[str] | None = None,
    *,
    split: str = "test",
    max_queries: int | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
) -> EvalSet:
    """XQuAD ``split`` questions in ``langs`` (default all 12) over the 240 English paragraphs.

    ``max_queries`` samples that many *questions* (SQuAD ids) and keeps them in every language,
    so languages stay comparable. Groups: each language, ``non-en`` (all non-English questions;
    languages have equal counts, so this is also the macro average) and ``all``.
    """
    from xqg.data.benchmarks.xquad import load_xquad

    bench = load_xquad(langs, split, data_dir)
    squad_ids = list(dict.fromkeys(q.id.rsplit("-", 1)[0] for q in bench.all_queries()))
    keep = set(_sample(squad_ids, max_queries, seed))
    queries = [q for q in bench.all_queries() if q.id.rsplit("-", 1)[0] in keep]
    groups: dict[str, list[str]] = {lang: [q.id for q in queries if q.lang == lang] for lang in bench.langs}
    non_en = [q.id for q in queries if q.lang != "en"]
    if non_en and len(bench.langs) > 1:
        groups["non-en"] = non_en
    groups["all"] = [q.id for q in queries]
    qrels = {q.id: bench.qrels[q.id] for q in queries}
    info = {"split": split, "langs": list(bench.langs), "questions_per_language": len(keep)}
    return EvalSet("xquad", bench.corpus, queries, qrels, groups, info)


# ----------------------------------------------------------------------------------------------
# Encoding with reuse.


def _key(cfg: EncoderConfig, drop: Sequence[str]) -> str:
    d = {k: v for k, v in cfg.model_dump().items() if k not in (*_RUNTIME, *drop)}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


#: The EncoderConfig fields BiEncoder.with_settings may change without reloading weights.
_TEXT_SETTINGS = (
    "query_prefix",
    "passage_prefix",
    "query_max_length",
    "passage_max_length",
    "use_title",
    "title_sep",
    "batch_size",
    "normalize",
)


class _Encoders:
    """Loads each set of weights once; text settings (lengths, prefixes) are cheap views."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[Any, ...], Any] = {}

    def get(self, cfg: EncoderConfig) -> Any:
        from xqg.models.encoder import BiEncoder

        weights = (cfg.model, cfg.passage_model, cfg.pooling, cfg.dtype, cfg.device, cfg.threads)
        if weights not in self._loaded:
            self._loaded[weights] = BiEncoder(cfg)
        base = self._loaded[weights]
        text = {k: getattr(cfg, k) for k in _TEXT_SETTINGS}
        return base.with_settings(**text)


def _weights_fingerprint(spec: str) -> str:
    """Name, size and mtime of a model folder's weight files: a retrained model saved to the same
    folder must not be served stale cached vectors."""
    from xqg.models.sources import resolve_model

    path = Path(resolve_model(spec))
    if not path.is_dir():
        return spec
    files = sorted(f for f in path.iterdir() if f.suffix in (".safetensors", ".bin", ".pt", ".json"))
    return spec + "".join(f"|{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def _encode_passages(
    encoders: _Encoders, cfg: EncoderConfig, corpus: list[Passage], cache_dir: Path | None, what: str
) -> np.ndarray:
    """Corpus vectors for ``cfg``, from ``cache_dir`` when an identical encoding is there."""
    digest = hashlib.sha256()
    for p in corpus:
        digest.update(f"{p.id}\x00{p.title}\x00{p.text}\x01".encode())
    digest.update(_weights_fingerprint(cfg.passage_model or cfg.model).encode())
    key = f"{_key(cfg, _QUERY_ONLY)}-{digest.hexdigest()[:16]}"
    path = cache_dir / f"passages-{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        vecs = np.load(path, allow_pickle=False)
        if vecs.shape[0] == len(corpus):
            return vecs
    enc = encoders.get(cfg)
    bar = progress_bar(total=len(corpus), desc=f"encode {what} passages", unit="p")
    vecs = enc.encode_passages(corpus, progress=bar.update)
    bar.close()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, vecs, allow_pickle=False)
    return vecs


def _system_passages(spec: SystemSpec, es: EvalSet) -> tuple[list[str], np.ndarray]:
    ids, vecs = load_vectors(spec.passage_dir())
    have = set(ids)
    missing = sorted({d for rel in es.qrels.values() for d in rel} - have)
    if missing:
        raise XqgError(
            f"{spec.label}: {spec.passage_dir()} lacks {len(missing)} judged {es.name} passage(s), "
            f"e.g. {missing[:3]}; is it an XQuAD experiment folder?"
        )
    return ids, vecs


# ----------------------------------------------------------------------------------------------
# The analysis.


@dataclass
class MisspellingsResult:
    """Everything computed: per-query metric values, corrupted texts and noise reports."""

    rates: list[float]
    per_query: dict[tuple[str, str, float], dict[str, dict[str, float]]]
    """(benchmark, label, rate) → {metric: {query id: value}}."""
    corrupted: dict[tuple[str, float], dict[str, str]]
    """(benchmark, rate) → {query id: corrupted text}."""
    means: dict[str, dict[str, dict[str, dict[str, list[float]]]]]
    """benchmark → label → group → metric → mean per rate."""
    data: dict[str, Any]
    folder: Path | None = None


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def _stderr(values: Sequence[float]) -> float:
    if len(values) < 2:
        return float("nan")
    return float(np.std(np.asarray(values, dtype=np.float64), ddof=1) / math.sqrt(len(values)))


def _none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def validate_rates(rates: Sequence[float]) -> list[float]:
    """Sorted unique rates in [0, 1], with 0 added: relative degradation needs the clean run."""
    out = set()
    for r in rates:
        r = float(r)
        if not (0.0 <= r <= 1.0) or not math.isfinite(r):
            raise XqgError(f"noise rates must be in [0, 1], got {r}")
        out.add(r)
    out.add(0.0)
    return sorted(out)


def build_entries(
    models: Sequence[ModelSpec],
    systems: Sequence[SystemSpec],
    *,
    split: str = "test",
    base_config: EncoderConfig | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
) -> list[Entry]:
    """Entries in command-line order: models first, then systems; labels must be unique.

    ``base_config`` supplies the text settings of ``--model`` encoders (lengths, prefixes, dtype);
    a system's query encoder is the one recorded in ``FOLDER/queries-<split>/`` with ``dtype`` and
    ``batch_size`` overridden when given (they change speed, not which weights run).
    """
    from xqg.encode import EmbeddingShards

    base = base_config or EncoderConfig()
    runtime: dict[str, Any] = {}
    if dtype is not None:
        runtime["dtype"] = dtype
    if batch_size is not None:
        runtime["batch_size"] = batch_size
    entries: list[Entry] = []
    for m in models:
        cfg = base.model_copy(update={"model": m.model, "passage_model": m.passage_model, **runtime})
        entries.append(Entry(m.label, "model", cfg, model=m))
    for s in systems:
        s.passage_dir()  # fail early, naming the label
        qdir = s.query_dir(split)
        try:
            cfg = EmbeddingShards.open(qdir).encoder_config
        except XqgError as e:
            raise XqgError(f"{s.label}: cannot read the query encoder of {qdir}: {e}") from e
        entries.append(Entry(s.label, "system", cfg.model_copy(update=runtime), system=s))
    labels = [e.label for e in entries]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise XqgError(f"labels must be unique; repeated: {', '.join(dup)}")
    if not entries:
        raise XqgError("nothing to compare: give at least one --model or --system")
    return entries


def _aggregate(
    per_query: dict[tuple[str, str, float], dict[str, dict[str, float]]],
    eval_sets: Sequence[EvalSet],
    applies: dict[str, list[str]],
    rates: list[float],
) -> tuple[dict[str, Any], dict[str, Any]]:
    means: dict[str, Any] = {}
    stderr: dict[str, Any] = {}
    for es in eval_sets:
        means[es.name], stderr[es.name] = {}, {}
        for label in applies[es.name]:
            means[es.name][label], stderr[es.name][label] = {}, {}
            for group, ids in es.groups.items():
                m: dict[str, list[float]] = {}
                s: dict[str, list[float]] = {}
                for metric in METRICS:
                    vals = [[per_query[(es.name, label, r)][metric][q] for q in ids] for r in rates]
                    m[metric] = [_mean(v) for v in vals]
                    s[metric] = [_stderr(v) for v in vals]
                means[es.name][label][group] = m
                stderr[es.name][label][group] = s
    return means, stderr


def _reference(es_name: str, entries: Sequence[Entry], applies: dict[str, list[str]]) -> str:
    """XQuAD: the first --system (the natural un-augmented baseline); otherwise the first entry."""
    labels = applies[es_name]
    if es_name == "xquad":
        systems = [e.label for e in entries if e.kind == "system" and e.label in labels]
        if systems:
            return systems[0]
    return labels[0]


def _nearest(rates: list[float], target: float) -> float:
    noisy = [r for r in rates if r > 0] or rates
    return min(noisy, key=lambda r: (abs(r - target), r))


def _analysis_data(
    entries: Sequence[Entry],
    eval_sets: Sequence[EvalSet],
    applies: dict[str, list[str]],
    rates: list[float],
    means: dict[str, Any],
    stderr: dict[str, Any],
    noise: dict[str, Any],
    seed: int,
    weights: dict[str, float],
    headline_rate: float,
) -> dict[str, Any]:
    relative: dict[str, Any] = {}
    gap: dict[str, Any] = {}
    references = {es.name: _reference(es.name, entries, applies) for es in eval_sets}
    for es in eval_sets:
        relative[es.name], gap[es.name] = {}, {}
        ref = references[es.name]
        for label in applies[es.name]:
            relative[es.name][label] = {}
            if label != ref:
                gap[es.name][label] = {}
            for group in es.groups:
                rel_m, gap_m = {}, {}
                for metric in METRICS:
                    vals = means[es.name][label][group][metric]
                    base = vals[0]
                    rel_m[metric] = [_none(v / base) if base > 0 else None for v in vals]
                    ref_vals = means[es.name][ref][group][metric]
                    gap_m[metric] = [_none(a - b) for a, b in zip(vals, ref_vals, strict=True)]
                relative[es.name][label][group] = rel_m
                if label != ref:
                    gap[es.name][label][group] = gap_m
    langs = sorted({q.lang for es in eval_sets for q in es.queries if q.lang})
    h = _nearest(rates, headline_rate)
    return {
        "rates": rates,
        "seed": seed,
        "metrics": list(METRICS),
        "depth": DEPTH,
        "edit_weights": weights,
        "headline_rate": h,
        "entries": {e.label: e.describe() for e in entries},
        "applies": applies,
        "reference": references,
        "means": _jsonable(means),
        "stderr": _jsonable(stderr),
        "relative": relative,
        "gap_to_reference": gap,
        "noise": noise,
        "noise_model": describe_languages(langs),
        "benchmarks": {
            es.name: {"queries": len(es.queries), "passages": len(es.corpus), **es.info} for es in eval_sets
        },
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return _none(obj)
    return obj


def _headline_group(es_name: str, groups: Sequence[str]) -> str:
    if es_name == "xquad" and "non-en" in groups:
        return "non-en"
    return "all"


def _drop_differences(
    per_query: dict[tuple[str, str, float], dict[str, dict[str, float]]],
    eval_sets: Sequence[EvalSet],
    applies: dict[str, list[str]],
    references: dict[str, str],
    rates: list[float],
    h: float,
) -> dict[str, Any]:
    """Per benchmark and system ≠ reference: the mean paired difference of the absolute drop
    ``metric(0) − metric(h)`` (system − reference) over the headline group, with its standard
    error (queries are the pairing unit: both systems saw the same misspelt query)."""
    out: dict[str, Any] = {}
    for es in eval_sets:
        ref = references[es.name]
        group = _headline_group(es.name, list(es.groups))
        ids = es.groups[group]
        out[es.name] = {}
        for label in applies[es.name]:
            if label == ref:
                continue
            out[es.name][label] = {"group": group, "rate": h}
            for metric in METRICS:
                v0 = {lab: per_query[(es.name, lab, 0.0)][metric] for lab in (label, ref)}
                vh = {lab: per_query[(es.name, lab, h)][metric] for lab in (label, ref)}
                diffs = [(v0[label][q] - vh[label][q]) - (v0[ref][q] - vh[ref][q]) for q in ids]
                out[es.name][label][metric] = {"mean": _none(_mean(diffs)), "stderr": _none(_stderr(diffs))}
    return out


def compute(
    entries: Sequence[Entry],
    eval_sets: Sequence[EvalSet],
    *,
    rates: Sequence[float] = DEFAULT_RATES,
    seed: int = 0,
    weights: dict[str, float] | None = None,
    headline_rate: float = 0.1,
    cache_dir: str | Path | None = None,
) -> MisspellingsResult:
    """Corrupt, encode, search and score every (benchmark, entry, rate): the plain data and runs.

    Systems (``kind="system"``)
    only run on XQuAD; a benchmark no entry applies to is an error. ``cache_dir``: where clean
    LoCoMo corpus vectors are kept between runs (None = not cached).
    """
    rates = validate_rates(rates)
    w = parse_weights(weights)
    from xqg.evaluate.metrics import evaluate_qrels
    from xqg.search import top_k_run

    cache = Path(cache_dir) if cache_dir is not None else None
    encoders = _Encoders()
    per_query: dict[tuple[str, str, float], dict[str, dict[str, float]]] = {}
    corrupted: dict[tuple[str, float], dict[str, str]] = {}
    noise: dict[str, dict[str, dict[str, Any]]] = {}
    applies: dict[str, list[str]] = {}

    for es in eval_sets:
        ents = [e for e in entries if e.kind == "model" or es.name == "xquad"]
        if not ents:
            raise XqgError(
                f"no system applies to {es.name}: it needs a --model (systems hold XQuAD vectors only)"
            )
        applies[es.name] = [e.label for e in ents]
        qids = [q.id for q in es.queries]
        if len(set(qids)) != len(qids):
            raise XqgError(f"{es.name}: duplicate query ids")
        # The same corrupted text for every system at a rate (seeded per query id).
        texts: dict[float, list[str]] = {}
        noise[es.name] = {}
        for rate in rates:
            cs = corrupt_queries(es.queries, rate, seed, weights=w)
            texts[rate] = [c.text for c in cs]
            corrupted[(es.name, rate)] = dict(zip(qids, texts[rate], strict=True))
            by_id = dict(zip(qids, cs, strict=True))
            noise[es.name][f"{rate:g}"] = {
                g: noise_report([by_id[q] for q in ids], examples=3) for g, ids in es.groups.items()
            }
        qvec_cache: dict[tuple[str, float], np.ndarray] = {}
        for e in ents:
            if e.kind == "model":
                docids = [p.id for p in es.corpus]
                pvecs = _encode_passages(
                    encoders, e.query_config, es.corpus, cache if es.name == "locomo" else None, e.label
                )
            else:
                assert e.system is not None
                docids, pvecs = _system_passages(e.system, es)
            qkey = _key(e.query_config, _PASSAGE_ONLY)
            for rate in rates:
                if (qkey, rate) not in qvec_cache:
                    enc = encoders.get(e.query_config)
                    bar = progress_bar(total=len(qids), desc=f"{es.name} {e.label} rate {rate:g}", unit="q")
                    qvec_cache[(qkey, rate)] = enc.encode_queries(texts[rate], progress=bar.update)
                    bar.close()
                qv = qvec_cache[(qkey, rate)]
                if qv.shape[1] != pvecs.shape[1]:
                    raise XqgError(
                        f"{e.label}: query vectors have dimension {qv.shape[1]}, passages {pvecs.shape[1]}"
                    )
                run = {}
                for start in range(0, len(qids), 512):
                    sl = slice(start, start + 512)
                    run.update(top_k_run(qids[sl], qv[sl] @ pvecs.T, docids, DEPTH))
                per_query[(es.name, e.label, rate)] = evaluate_qrels(run, es.qrels, METRICS)

    means, stderr = _aggregate(per_query, eval_sets, applies, rates)
    data = _analysis_data(entries, eval_sets, applies, rates, means, stderr, noise, seed, w, headline_rate)
    data["drop_difference"] = _drop_differences(
        per_query, eval_sets, applies, data["reference"], rates, data["headline_rate"]
    )
    return MisspellingsResult(rates, per_query, corrupted, means, data)
