"""The paper's experiment, reproduced on XQuAD: plain passage vectors vs passages fused with
generated queries, per language, with significance, α and n ablations and beyond-paper variants.

Stages (each a folder under ``out_dir`` with its manifest; a finished one is reused on rerun):

``benchmark/`` → ``embeddings/`` (the 240 English paragraphs) → ``generated/`` (``xqg generate``,
or an existing folder named in the config) → ``generated-emb/`` (query side, max length 32 as in
the paper) → ``queries-emb/`` (the dev and eval-split questions) → ``fused-*/`` + ``index-*/``
(the headline systems through real FAISS indexes) → ``report/`` (Markdown, JSON, PNG).

**Tuning is on dev only.** Every system except the fixed paper setting (α = 0.01) picks its
parameters (fusion strategy, α, round-trip depth, multi-vector weight) by macro MRR@10 on the
dev split's questions; the eval split (test) is scored once per chosen system. The α and n
curves on test are drawn *after* selection, as analysis, and say so.

**Systems.** ``baseline`` (passage vectors), ``paper`` (``(1-α)·p + α·Σq`` at α = 0.01, all
languages, all n samples), ``tuned`` (strategy and α from dev), and the variants:

* ``round-trip`` — only generated queries whose own passage ranks ≤ depth when the query searches
  the plain passage index (no labels involved: the generated query and its source passage);
* ``same-lang`` — a question in language L is searched against passages fused with the queries
  generated *in L* only (one fused index per language; English questions see plain passages
  under ``mean`` and ``(1-α)·p`` under ``paper``, a rescaling that changes no ranking);
* ``same-lang+round-trip`` — both;
* ``multivector`` — the generated queries kept as extra vectors of their passage:
  ``score = (1-β)·q·p + β·max_i q·g_i``.

Grids and curves score in memory (exact inner product over 240 passages, ties by corpus row as
:class:`~xqg.search.Searcher`); the three headline systems are also built as ``xqg augment`` →
``xqg index`` folders and searched with FAISS, and the two paths are compared in the report.

Why ~620 lines: the stages, the system specs and their scoring share the encoded vectors of
one run; the report's rendering is in ``report.py`` and the lever study in ``levers.py``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.augment import accumulate, augment, get_fusion
from xqg.config import AugmentExperimentConfig, ExperimentConfig
from xqg.encode import (
    EmbeddingShards,
    encode_corpus,
    encode_generated_queries,
    encode_queries,
    parse_generated_id,
)
from xqg.errors import XqgError
from xqg.evaluate.metrics import evaluate_qrels, metrics_from_ranks
from xqg.evaluate.rkt import evaluate_rkt
from xqg.evaluate.tables import LanguageTable
from xqg.io import read_manifest, write_manifest
from xqg.search import Searcher, exact_ranks, ranks_in_scores, search_vectors, top_k_run
from xqg.types import Run

STAGE = "experiment-xqg"
REPORT = "report"
Spec = dict[str, Any]


# --- vectors in memory ---------------------------------------------------------------------------


@dataclass
class SplitVectors:
    """One split's questions: ids, languages, vectors and the corpus row of the gold paragraph."""

    name: str
    qids: list[str]
    langs: np.ndarray
    vectors: np.ndarray
    gold: np.ndarray

    def lang_list(self) -> list[str]:
        return list(dict.fromkeys(self.langs.tolist()))


@dataclass
class CorpusVectors:
    """Passage vectors and every generated query's vector, language, sample and passage row."""

    pids: list[str]
    passages: np.ndarray  # float64, (P, d)
    gen: np.ndarray  # float32, (G, d)
    gen_lang: np.ndarray
    gen_sample: np.ndarray
    gen_row: np.ndarray
    gen_rank: np.ndarray  # 1-based rank of the query's own passage among all passages

    def select(
        self, *, langs: Sequence[str] | None = None, n: int | None = None, depth: int | None = None
    ) -> np.ndarray:
        mask = np.ones(len(self.gen_row), dtype=bool)
        if langs is not None:
            mask &= np.isin(self.gen_lang, list(langs))
        if n is not None:
            mask &= self.gen_sample < n
        if depth is not None:
            mask &= self.gen_rank <= depth
        return mask

    def sums(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q_sum = np.zeros_like(self.passages)
        q_count = np.zeros(len(self.pids), dtype=np.int64)
        accumulate(q_sum, q_count, self.gen_row[mask], self.gen[mask])
        return q_sum, q_count

    def fused(self, strategy: str, alpha: float, mask: np.ndarray) -> np.ndarray:
        q_sum, q_count = self.sums(mask)
        return get_fusion(strategy)(self.passages, q_sum, q_count, float(alpha)).astype(np.float32)


def scores(cv: CorpusVectors, split: SplitVectors, spec: Spec) -> np.ndarray:
    """Query × passage scores of system ``spec`` (see the module docstring for the kinds)."""
    q = split.vectors
    kind = spec["kind"]
    n, depth = spec.get("n"), spec.get("depth")
    if kind == "baseline":
        return q @ cv.passages.astype(np.float32).T
    if kind == "fusion":
        mask = cv.select(langs=spec.get("langs"), n=n, depth=depth)
        return q @ cv.fused(spec["strategy"], spec["alpha"], mask).T
    if kind == "same-lang":
        out = np.empty((len(q), len(cv.pids)), dtype=np.float32)
        for lang in split.lang_list():
            rows = split.langs == lang
            mask = cv.select(langs=[lang], n=n, depth=depth)
            out[rows] = q[rows] @ cv.fused(spec["strategy"], spec["alpha"], mask).T
        return out
    if kind == "multivector":
        base = q @ cv.passages.astype(np.float32).T
        mask = cv.select(n=n, depth=depth)
        rows = cv.gen_row[mask]
        if not len(rows):
            return base
        order = np.argsort(rows, kind="stable")
        rows_sorted = rows[order]
        starts = np.flatnonzero(np.r_[True, rows_sorted[1:] != rows_sorted[:-1]])
        best = np.maximum.reduceat(q @ cv.gen[mask][order].T, starts, axis=1)
        beta = float(spec["beta"])
        out = base.copy()
        has = rows_sorted[starts]
        out[:, has] = (1.0 - beta) * base[:, has] + beta * best
        return out
    raise XqgError(f"unknown system kind '{kind}'")


def macro(values: np.ndarray, langs: np.ndarray) -> float:
    """Mean of the per-language means (the multilingual papers' average)."""
    return float(np.mean([values[langs == lang].mean() for lang in dict.fromkeys(langs.tolist())]))


def rank_metric(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Per-query values of ``metric`` from 1-based gold ranks (one relevant paragraph per question)."""
    vals = metrics_from_ranks({str(i): int(r) for i, r in enumerate(ranks)}, [metric])
    return np.array(list(next(iter(vals.values())).values()))


def split_score(cv: CorpusVectors, split: SplitVectors, spec: Spec, metric: str) -> tuple[float, np.ndarray]:
    """Macro ``metric`` of ``spec`` on ``split`` and the per-query values."""
    per_query = rank_metric(ranks_in_scores(scores(cv, split, spec), split.gold), metric)
    return macro(per_query, split.langs), per_query


# --- tuning --------------------------------------------------------------------------------------


def variant_grid(name: str, a: AugmentExperimentConfig, n: int) -> list[Spec]:
    """The dev grid of a system: every combination it may choose from."""
    fusion = [{"strategy": s, "alpha": float(x)} for s in a.strategies for x in a.alphas]
    depths = [{"depth": int(d)} for d in a.round_trip_depths]
    if name == "tuned":
        return [{"kind": "fusion", "n": n, **f} for f in fusion]
    if name == "round-trip":
        return [{"kind": "fusion", "n": n, **f, **d} for f in fusion for d in depths]
    if name == "same-lang":
        return [{"kind": "same-lang", "n": n, **f} for f in fusion]
    if name == "same-lang+round-trip":
        return [{"kind": "same-lang", "n": n, **f, **d} for f in fusion for d in depths]
    if name == "multivector":
        return [{"kind": "multivector", "n": n, "beta": float(b)} for b in a.betas]
    raise XqgError(f"unknown variant '{name}'")


def _smaller_change(spec: Spec) -> tuple[float, ...]:
    """Tie-break key: prefer less change (smaller α or β, deeper filter = fewer queries dropped)."""
    return (spec.get("alpha", 0.0), spec.get("beta", 0.0), -spec.get("depth", 0))


def tune(
    cv: CorpusVectors, dev: SplitVectors, grid: list[Spec], metric: str
) -> tuple[Spec, list[dict[str, Any]]]:
    """Score every spec on dev; return the best (ties → the smaller change) and the scored grid."""
    scored = [{**spec, metric: split_score(cv, dev, spec, metric)[0]} for spec in grid]
    best = max(scored, key=lambda g: (round(g[metric], 12), tuple(-x for x in _smaller_change(g))))
    return {k: v for k, v in best.items() if k != metric}, scored


def describe(spec: Spec) -> str:
    """Short human-readable settings of a system, for tables."""
    kind = spec["kind"]
    if kind == "baseline":
        return "passage vectors"
    parts = []
    if "strategy" in spec:
        parts.append(f"{spec['strategy']}, α={spec['alpha']:g}")
    if "beta" in spec:
        parts.append(f"β={spec['beta']:g}")
    if spec.get("depth") is not None:
        parts.append(f"round trip ≤ {spec['depth']}")
    if kind == "same-lang":
        parts.append("query's language only")
    if spec.get("n") is not None:
        parts.append(f"n={spec['n']}")
    return ", ".join(parts)


# --- the experiment ------------------------------------------------------------------------------


@dataclass
class AugmentationResult:
    out_dir: Path
    report_dir: Path
    summary: dict[str, Any]
    seconds: dict[str, float]
    #: per-query metric values of each system on the eval split (``{system: {metric: {qid: v}}}``)
    values: dict[str, Any] | None = None
    #: the eval split's query id → language
    qid_lang: dict[str, str] | None = None


def _check_generated(gen_dir: Path, langs: Sequence[str], n: int) -> dict[str, Any]:
    """The generation folder must be finished and hold ``n`` samples of every needed language."""
    from xqg.generate import store

    manifest = read_manifest(gen_dir, stage=store.STAGE)
    gcfg = manifest.get("config", {}).get("generator", {})
    missing = [lang for lang in langs if lang not in gcfg.get("langs", [])]
    if missing:
        raise XqgError(
            f"{gen_dir}: no generated queries in {', '.join(missing)} (it has {gcfg.get('langs')})"
        )
    if int(gcfg.get("n", 0)) < n:
        raise XqgError(f"{gen_dir}: {gcfg.get('n')} queries per language, the experiment needs {n}")
    return manifest


def _load_split(emb_dir: Path, bench: Any, row_of: dict[str, int], name: str) -> SplitVectors:
    shards = EmbeddingShards.open(emb_dir)
    ids, vecs = shards.load()
    index = {qid: i for i, qid in enumerate(ids)}
    qs = bench.all_queries()
    take = np.array([index[q.id] for q in qs], dtype=np.int64)
    return SplitVectors(
        name=name,
        qids=[q.id for q in qs],
        langs=np.array([q.lang for q in qs], dtype=object),
        vectors=np.ascontiguousarray(vecs[take], dtype=np.float32),
        gold=np.array([row_of[next(iter(bench.qrels[q.id]))] for q in qs], dtype=np.int64),
    )


def _load_corpus_vectors(
    emb_dir: Path, gen_emb_dir: Path, parent_of: Callable[[str], str] | None = None
) -> CorpusVectors:
    """``parent_of`` maps a generated row's passage id to its corpus passage (queries generated for
    parts of passages, e.g. one sentence at a time); samples are then renumbered 0, 1, … per passage
    and language in row order, so ``n`` still means "the first n of this passage and language"."""
    pids, p = EmbeddingShards.open(emb_dir).load()
    row_of = {pid: i for i, pid in enumerate(pids)}
    gids, g = EmbeddingShards.open(gen_emb_dir).load()
    parsed = [parse_generated_id(x) for x in gids]
    if parent_of is not None:
        seen: Counter[tuple[str, str]] = Counter()
        mapped = []
        for lang, _, pid in parsed:
            parent = parent_of(pid)
            mapped.append((lang, seen[(lang, parent)], parent))
            seen[(lang, parent)] += 1
        parsed = mapped
    unknown = sorted({pid for _, _, pid in parsed if pid not in row_of})
    if unknown:
        raise XqgError(f"{gen_emb_dir}: generated queries for passages not in the corpus, e.g. {unknown[:3]}")
    gen_row = np.array([row_of[pid] for _, _, pid in parsed], dtype=np.int64)
    g32 = np.ascontiguousarray(g, dtype=np.float32)
    return CorpusVectors(
        pids=pids,
        passages=p.astype(np.float64),
        gen=g32,
        gen_lang=np.array([lang for lang, _, _ in parsed], dtype=object),
        gen_sample=np.array([s for _, s, _ in parsed], dtype=np.int64),
        gen_row=gen_row,
        gen_rank=exact_ranks(g32, p.astype(np.float32), gen_row),
    )


def _evaluate_run(run: Run, bench: Any, langs: Sequence[str], a: AugmentExperimentConfig) -> dict[str, Any]:
    """Per-query values of every reported metric: qrels metrics by ranx, R@kt by the official rules."""
    values: dict[str, Any] = dict(evaluate_qrels(run, bench.qrels, a.metrics))
    if a.rkt:
        gold = [aq for lang in langs for aq in bench.answer_queries(lang)]
        passages = {p.id: p for p in bench.corpus}
        values.update(evaluate_rkt(run, gold, a.rkt, passages).per_query_by_name())
    return values


def _faiss_run(
    cfg: ExperimentConfig, out: Path, name: str, spec: Spec, split: SplitVectors, depth: int
) -> tuple[Run, Path]:
    """Build the system as real stage folders (augment → index) and search it with FAISS."""
    from xqg.index import build_index

    src = out / "embeddings"
    if spec["kind"] == "fusion":
        src = out / f"fused-{name}"
        augment(
            out / "embeddings",
            out / "generated-emb",
            src,
            strategy=spec["strategy"],
            alpha=spec["alpha"],
            n=spec.get("n"),
            langs=spec.get("langs"),
            show_progress=False,
        )
    elif spec["kind"] != "baseline":
        raise XqgError(f"system '{name}' ({spec['kind']}) has no single-index form")
    build_index(src, out / f"index-{name}", cfg.index, show_progress=False)
    searcher = Searcher(out / f"index-{name}")
    return search_vectors(searcher, split.qids, split.vectors, depth=depth), out / f"index-{name}"


def run_augmentation_experiment(
    cfg: ExperimentConfig,
    *,
    report_dir: str | Path | None = None,
    show_progress: bool = True,
    log: Callable[[str], Any] = print,
    command: str | None = None,
) -> AugmentationResult:
    """Run the xQG experiment described by ``cfg`` (which must have an ``augment`` section)."""
    from xqg.data.benchmarks.xquad import build_xquad, load_xquad
    from xqg.models.encoder import BiEncoder

    a = cfg.augment
    if a is None:
        raise XqgError("the experiment file has no 'augment:' section")
    if cfg.benchmark != "xquad":
        raise XqgError(f"the augmentation experiment runs on XQuAD, not '{cfg.benchmark}'")
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rep = Path(report_dir) if report_dir is not None else out / REPORT
    seconds: dict[str, float] = {}
    langs = list(cfg.langs)
    gen_langs = [lang for lang in langs if lang != "en"]
    n = cfg.generator.n

    t = time.perf_counter()
    build_xquad(out / "benchmark", langs, split="all")
    dev_b, test_b = load_xquad(langs, split=a.tune_split), load_xquad(langs, split=a.eval_split)
    corpus = dev_b.corpus
    row_of = {p.id: i for i, p in enumerate(corpus)}
    seconds["benchmark"] = time.perf_counter() - t

    t = time.perf_counter()
    encoder = BiEncoder(cfg.encoder)
    inputs = {"benchmark": str((out / "benchmark").resolve())}
    encode_corpus(iter(corpus), out / "embeddings", encoder=encoder, shard_size=cfg.shard_size,
                  total=len(corpus), inputs=inputs, show_progress=show_progress)  # fmt: skip
    for split_name, b in ((a.tune_split, dev_b), (a.eval_split, test_b)):
        encode_queries(b.all_queries(), out / f"queries-{split_name}", encoder=encoder,
                       inputs=inputs, show_progress=show_progress)  # fmt: skip
    seconds["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    if a.generated is not None:
        gen_dir = Path(a.generated)
    else:
        from xqg.generate.run import generate_queries

        gen_dir = out / "generated"
        gcfg = cfg.generator.model_copy(update={"langs": gen_langs})
        log(f"generating {n} queries × {len(gen_langs)} languages for {len(corpus)} passages → {gen_dir}")
        generate_queries(iter(corpus), gen_dir, gcfg, shard_size=a.generate_shard_size, total=len(corpus),
                         show_progress=show_progress, inputs=inputs)  # fmt: skip
    gen_manifest = _check_generated(gen_dir, gen_langs, n)
    seconds["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    q_encoder = encoder.with_settings(query_max_length=a.query_max_length)
    encode_generated_queries(gen_dir, out / "generated-emb", encoder=q_encoder, langs=gen_langs, n=n,
                             show_progress=show_progress)  # fmt: skip
    seconds["encode_generated"] = time.perf_counter() - t

    cv = _load_corpus_vectors(out / "embeddings", out / "generated-emb")
    dev = _load_split(out / f"queries-{a.tune_split}", dev_b, row_of, a.tune_split)
    test = _load_split(out / f"queries-{a.eval_split}", test_b, row_of, a.eval_split)

    # -- choose every system's settings on dev ------------------------------------------------
    t = time.perf_counter()
    metric = a.tune_metric
    systems: dict[str, Spec] = {
        "baseline": {"kind": "baseline"},
        "paper": {"kind": "fusion", "strategy": "paper", "alpha": a.paper_alpha, "n": n},
    }
    grids: dict[str, list[dict[str, Any]]] = {}
    for name in ["tuned", *a.variants]:
        systems[name], grids[name] = tune(cv, dev, variant_grid(name, a, n), metric)
        log(f"dev: {name} → {describe(systems[name])}")
    seconds["tune"] = time.perf_counter() - t

    # -- evaluate each chosen system once on the eval split -----------------------------------
    t = time.perf_counter()
    depth = cfg.search.depth
    runs: dict[str, Run] = {}
    faiss_check: dict[str, float] = {}
    for name, spec in systems.items():
        mem_run = top_k_run(test.qids, scores(cv, test, spec), cv.pids, depth)
        if name in ("baseline", "paper", "tuned") and spec["kind"] in ("baseline", "fusion"):
            run, _ = _faiss_run(cfg, out, name, spec, test, depth)
            a_mrr = evaluate_qrels(run, test_b.qrels, [metric])[metric]
            b_mrr = evaluate_qrels(mem_run, test_b.qrels, [metric])[metric]
            faiss_check[name] = max(abs(a_mrr[q] - b_mrr[q]) for q in a_mrr)
        else:
            run = mem_run
        runs[name] = run
    values = {name: _evaluate_run(run, test_b, langs, a) for name, run in runs.items()}
    seconds["evaluate"] = time.perf_counter() - t

    t = time.perf_counter()
    tables = {
        name: LanguageTable.build(
            values[name],
            test_b.qid_lang,
            langs=langs,
            baseline=None if name == "baseline" else values["baseline"],
            test=a.significance,
            title=f"{name}: {describe(systems[name])}",
        )
        for name in systems
    }
    seconds["significance"] = time.perf_counter() - t

    # -- analyses: α and n curves (after selection), diagnostics --------------------------------
    t = time.perf_counter()
    alpha_curve = [
        {
            **g,
            f"{a.eval_split}_{metric}": split_score(
                cv, test, {k: v for k, v in g.items() if k != metric}, metric
            )[0],
        }  # fmt: skip
        for g in grids["tuned"]
    ]
    n_curve = []
    for k in range(0, n + 1):
        row: dict[str, Any] = {"n": k}
        for name in ("paper", "tuned"):
            spec = {**systems[name], "n": k} if k else systems["baseline"]
            total, per_query = split_score(cv, test, spec, metric)
            row[name] = total
            row[f"{name}_by_lang"] = {lang: float(per_query[test.langs == lang].mean()) for lang in langs}
        n_curve.append(row)
    diagnostics = _diagnostics(cv, test, langs, n)
    seconds["analyses"] = time.perf_counter() - t

    summary = _summary(cfg, systems, tables, values, grids, alpha_curve, n_curve, diagnostics,
                       faiss_check, gen_manifest, gen_dir, test, dev, metric)  # fmt: skip
    summary["seconds"] = seconds
    from xqg.experiments.report import write_report

    write_report(rep, summary, tables, command=command)
    write_manifest(
        out,
        stage=STAGE,
        # the generator section as it ran: generation languages are the experiment's non-English ones
        config=cfg.model_copy(
            update={"generator": cfg.generator.model_copy(update={"langs": gen_langs})}
        ).model_dump(),
        counts={
            "passages": len(corpus),
            "dev_queries": len(dev.qids),
            "test_queries": len(test.qids),
            "generated_queries": int(len(cv.gen_row)),
        },  # fmt: skip
        inputs={"generated": str(gen_dir.resolve())},
        extra={"seconds": seconds, "report": str(rep.resolve())},
    )
    return AugmentationResult(out, rep, summary, seconds, values=values, qid_lang=dict(test_b.qid_lang))


def _diagnostics(cv: CorpusVectors, test: SplitVectors, langs: Sequence[str], n: int) -> dict[str, Any]:
    """Why fusion helps or not: query quality and the size of α·Σq next to p, per language."""
    p32 = cv.passages.astype(np.float32)
    mask_all = cv.select(n=n)
    q_sum, q_count = cv.sums(mask_all)
    out: dict[str, Any] = {
        "passage_norm": float(np.linalg.norm(cv.passages, axis=1).mean()),
        "query_sum_norm": float(np.linalg.norm(q_sum, axis=1).mean()),
        "queries_per_passage": float(q_count.mean()),
        "per_lang": {},
    }
    own_cos = np.einsum("ij,ij->i", cv.gen, p32[cv.gen_row])
    test_cos = np.einsum("ij,ij->i", test.vectors, p32[test.gold])
    for lang in langs:
        m = mask_all & (cv.gen_lang == lang)
        t = test.langs == lang
        entry: dict[str, Any] = {"test_query_gold_cos": float(test_cos[t].mean()) if t.any() else None}
        if m.any():
            same = test.vectors[t] @ cv.gen[m].T if t.any() else None
            entry.update(
                {
                    "generated": int(m.sum()),
                    "own_rank1": float((cv.gen_rank[m] == 1).mean()),
                    "own_rank10": float((cv.gen_rank[m] <= 10).mean()),
                    "generated_own_cos": float(own_cos[m].mean()),
                    "test_query_to_generated_max_cos": float(same.max(axis=1).mean())
                    if same is not None
                    else None,
                }
            )
        out["per_lang"][lang] = entry
    return out


def _significant(row: Any, metric: str, level: float, sign: int) -> bool:
    """A language row whose Δ has ``sign`` and whose p is below ``level`` (a p of 0.0 counts)."""
    p, d = row.p.get(metric), row.delta.get(metric)
    return p is not None and d is not None and p < level and d * sign > 0


def _summary(
    cfg: ExperimentConfig,
    systems: dict[str, Spec],
    tables: dict[str, LanguageTable],
    values: dict[str, Any],
    grids: dict[str, list[dict[str, Any]]],
    alpha_curve: list[dict[str, Any]],
    n_curve: list[dict[str, Any]],
    diagnostics: dict[str, Any],
    faiss_check: dict[str, float],
    gen_manifest: dict[str, Any],
    gen_dir: Path,
    test: SplitVectors,
    dev: SplitVectors,
    metric: str,
) -> dict[str, Any]:
    a = cfg.augment
    assert a is not None
    per_system: dict[str, Any] = {}
    non_en = [lang for lang in cfg.langs if lang != "en"]
    for name, table in tables.items():
        rows = {r.label: r for r in table.rows}
        entry: dict[str, Any] = {"settings": systems[name], "describe": describe(systems[name]), "langs": {}}
        for lang in [*cfg.langs, "avg"]:
            r = rows.get(lang)
            if r is None:
                continue
            entry["langs"][lang] = {
                "values": {m: r.values.get(m) for m in table.metrics},
                "delta": {m: r.delta.get(m) for m in table.metrics} if table.compared else None,
                "p": {m: r.p.get(m) for m in table.metrics} if table.compared else None,
            }
        if table.compared:
            sig_up = [lang for lang in non_en if _significant(rows[lang], metric, a.alpha_level, +1)]
            sig_down = [lang for lang in cfg.langs if _significant(rows[lang], metric, a.alpha_level, -1)]
            base = tables["baseline"]
            base_rows = {r.label: r for r in base.rows}
            rel = [
                rows[lang].values[metric] / base_rows[lang].values[metric] - 1.0
                for lang in non_en
                if base_rows[lang].values.get(metric)
            ]
            entry.update(
                {
                    "significant_gains": sig_up,
                    "significant_losses": sig_down,
                    "mean_relative_gain_non_en": float(np.mean(rel)) if rel else None,
                }
            )
        per_system[name] = entry
    gcfg = gen_manifest.get("config", {}).get("generator", {})
    return {
        "name": cfg.name,
        "metric": metric,
        "metrics": list(next(iter(tables.values())).metrics),
        "langs": list(cfg.langs),
        "splits": {
            "tune": {"name": dev.name, "queries": len(dev.qids)},
            "eval": {"name": test.name, "queries": len(test.qids)},
        },
        "encoder": cfg.encoder.model_dump(),
        "generated_query_max_length": a.query_max_length,
        "generator": {
            "folder": str(gen_dir),
            "model": gcfg.get("model"),
            "adapter": gcfg.get("adapter"),
            "n": cfg.generator.n,
            # the languages fused (the folder may hold more, e.g. English queries for the lever study)
            "langs": [lang for lang in gcfg.get("langs", []) if lang in cfg.langs and lang != "en"],
            "decoding": {k: gcfg.get(k) for k in ("top_k", "top_p", "temperature", "max_new_tokens", "seed")},
        },
        "systems": per_system,
        "grids": grids,
        "alpha_curve": alpha_curve,
        "n_curve": n_curve,
        "diagnostics": diagnostics,
        "faiss_vs_memory_max_abs_diff": faiss_check,
        "alpha_level": a.alpha_level,
        "significance": a.significance,
        "tables": {name: t.to_dict() for name, t in tables.items()},
    }
