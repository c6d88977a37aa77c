"""Quality levers of query generation on XQuAD dev, and the human-question oracle (issue 13).

One over-generated folder (``xqg generate --n 20``, the 11 XQuAD target languages and English)
is encoded once; every lever is a choice of *which* of those queries a passage vector fuses, and
*how* (weights). Each lever's fusion (strategy and α) is tuned on the **dev** questions alone,
exactly as ``xqg experiment xquad-xqg`` tunes its systems, and the table reports dev macro
MRR@10 and the mean relative gain over the 11 non-English languages. No lever sees test data.

* ``n`` — the first n samples per passage and language (the n-curve);
* ``+en`` — English queries next to the cross-lingual ones;
* ``dedup τ`` — drop a query whose cosine to an earlier kept query of its passage exceeds τ;
* ``mmr k`` — per passage and language, k of the n queries by maximal marginal relevance
  (relevance: cosine to the passage; redundancy: max cosine to the queries already picked, λ);
* ``round trip ≤ d`` / ``round-trip best k`` — keep the queries that find their own passage
  within the top d of the plain index, or the k per passage-language that rank it best
  (no labels: a generated query and its source passage);
* ``drop outliers q`` — drop the share q of a passage's queries least similar to their mean;
* ``weights τ`` — weight each query by softmax(cos(q, p) / τ) over its passage's queries;
* ``--extra NAME=DIR`` — other generation folders over the same corpus (other decoding settings,
  or queries generated one sentence at a time from :func:`write_sentence_corpus`'s pseudo-passages
  ``<id>#s<k>``), each scored alone at the main folder's n-curve points and joined to the main
  folder's first 5 (does a second source add coverage?).

The **oracle** (:func:`~xqg.experiments.oracle.oracle_scores`) uses XQuAD's own human questions
about each paragraph in the 11 languages as the generated queries and leaves every language
version of the question being scored out of its gold passage's vector, so it measures what
human-written coverage adds with the same fusion, without leaking the answer. It is tuned on
dev and reported on test beside the generator.

The human-question oracle lives in :mod:`xqg.experiments.oracle` and the report's rendering in
:mod:`xqg.experiments.levers_report`; this module (a little over 600 lines) keeps the selections,
the extra sources and the study together because they all work on one encoded
:class:`~xqg.experiments.augmentation.CorpusVectors`.

    python -m xqg.experiments.levers CONFIG --generated DIR --report-dir reports/xquad-levers
    python -m xqg.experiments.levers CONFIG --sentence-corpus runs/xquad/sentences.jsonl
    python -m xqg.experiments.levers CONFIG --generated DIR --extra top-p=DIR2 --extra sentences=DIR3
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.augment import accumulate, get_fusion
from xqg.config import ExperimentConfig
from xqg.experiments.augmentation import (
    CorpusVectors,
    SplitVectors,
    _load_corpus_vectors,
    _load_split,
    macro,
    rank_metric,
)
from xqg.experiments.levers_report import table_summary, write_levers_report, write_side_by_side
from xqg.experiments.oracle import Selection, load_human_questions, oracle_scores
from xqg.search import ranks_in_scores


@dataclass
class Lever:
    name: str
    family: str
    select: Callable[[CorpusVectors], Selection]


# --- selections ----------------------------------------------------------------------------------


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Row indices grouped by ``keys`` (stable, in row order within each group); key -1 = unselected."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    cuts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1], True])
    groups = [order[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return [g for g in groups if keys[g[0]] >= 0]


def _cos_to_passage(cv: CorpusVectors) -> np.ndarray:
    p = cv.passages.astype(np.float32)
    return np.einsum("ij,ij->i", cv.gen, p[cv.gen_row])


def _pl_keys(cv: CorpusVectors, mask: np.ndarray) -> np.ndarray:
    """A key per generated row for its (passage, language) pair; -1 outside ``mask``."""
    codes = {lang: i for i, lang in enumerate(sorted(set(cv.gen_lang.tolist())))}
    lang_code = np.array([codes[x] for x in cv.gen_lang], dtype=np.int64)
    keys = cv.gen_row * len(codes) + lang_code
    return np.where(mask, keys, -1)


def first_n(cv: CorpusVectors, n: int, langs: Sequence[str]) -> np.ndarray:
    return cv.select(langs=langs, n=n)


def dedup(cv: CorpusVectors, base: np.ndarray, tau: float) -> np.ndarray:
    """Greedy in sample order within each passage (all languages): drop cos > τ to a kept query."""
    keep = np.zeros_like(base)
    keys = np.where(base, cv.gen_row, -1)
    for rows in _groups(keys):
        rows = rows[np.lexsort((cv.gen_lang[rows].astype(str), cv.gen_sample[rows]))]
        sims = cv.gen[rows] @ cv.gen[rows].T
        kept: list[int] = []
        for i in range(len(rows)):
            if not kept or sims[i, kept].max() <= tau:
                kept.append(i)
        keep[rows[kept]] = True
    return keep


def mmr(cv: CorpusVectors, base: np.ndarray, k: int, lam: float) -> np.ndarray:
    """Per passage and language, ``k`` queries by maximal marginal relevance."""
    rel = _cos_to_passage(cv)
    keep = np.zeros_like(base)
    keys = _pl_keys(cv, base)
    for rows in _groups(keys):
        if len(rows) <= k:
            keep[rows] = True
            continue
        sims = cv.gen[rows] @ cv.gen[rows].T
        picked = [int(np.argmax(rel[rows]))]
        while len(picked) < k:
            red = sims[:, picked].max(axis=1)
            gain = lam * rel[rows] - (1 - lam) * red
            gain[picked] = -np.inf
            picked.append(int(np.argmax(gain)))
        keep[rows[picked]] = True
    return keep


def round_trip_best(cv: CorpusVectors, base: np.ndarray, k: int) -> np.ndarray:
    """Per passage and language, the ``k`` queries that rank their own passage best (then by cos)."""
    rel = _cos_to_passage(cv)
    keep = np.zeros_like(base)
    keys = _pl_keys(cv, base)
    for rows in _groups(keys):
        order = np.lexsort((-rel[rows], cv.gen_rank[rows]))
        keep[rows[order[:k]]] = True
    return keep


def drop_outliers(cv: CorpusVectors, base: np.ndarray, share: float) -> np.ndarray:
    """Per passage, drop the ``share`` of its queries with the lowest cosine to their mean."""
    keep = base.copy()
    keys = np.where(base, cv.gen_row, -1)
    for rows in _groups(keys):
        centroid = cv.gen[rows].mean(axis=0)
        sim = cv.gen[rows] @ centroid
        n_drop = int(round(share * len(rows)))
        if n_drop:
            keep[rows[np.argsort(sim, kind="stable")[:n_drop]]] = False
    return keep


def passage_weights(cv: CorpusVectors, base: np.ndarray, tau: float) -> np.ndarray:
    """softmax(cos(q, p) / τ) over each passage's selected queries, scaled to sum to their count."""
    rel = _cos_to_passage(cv).astype(np.float64)
    w = np.zeros(len(rel))
    keys = np.where(base, cv.gen_row, -1)
    for rows in _groups(keys):
        z = np.exp((rel[rows] - rel[rows].max()) / tau)
        w[rows] = len(rows) * z / z.sum()
    return w


def default_levers(cv: CorpusVectors, n_max: int, langs: Sequence[str]) -> list[Lever]:
    """The lever table: n-curve, English, dedup, MMR, round trip, outliers, weights."""
    langs = list(langs)
    full = first_n(cv, n_max, langs)
    specs: list[tuple[str, str, Callable[[CorpusVectors], Selection]]] = [
        (f"n={k}", "coverage: n", lambda c, k=k: (first_n(c, k, langs), None))
        for k in (1, 2, 5, 10, 20, 40)
        if k <= n_max
    ]
    if "en" in set(cv.gen_lang.tolist()):
        specs += [
            (f"n={k} +en", "English queries", lambda c, k=k: (first_n(c, k, [*langs, "en"]), None))
            for k in sorted({5, n_max})
        ]
    specs += [(f"dedup cos>{t:g}", "near-duplicates", lambda c, t=t: (dedup(c, full, t), None))
              for t in (0.97, 0.93, 0.9, 0.85)]  # fmt: skip
    specs += [(f"mmr {k} of {n_max}, λ={lam:g}", "diverse subset",
               lambda c, k=k, lam=lam: (mmr(c, full, k, lam), None))
              for k in (5, 10) for lam in (0.5, 0.7)]  # fmt: skip
    specs += [(f"round trip ≤ {d}", "selection: round trip", lambda c, d=d: (full & (c.gen_rank <= d), None))
              for d in (1, 3, 10)]  # fmt: skip
    specs += [(f"round-trip best {k} of {n_max}", "selection: round trip",
               lambda c, k=k: (round_trip_best(c, full, k), None)) for k in (5, 10)]  # fmt: skip
    specs += [(f"drop outliers {q:g}", "fusion: outliers", lambda c, q=q: (drop_outliers(c, full, q), None))
              for q in (0.1, 0.25)]  # fmt: skip
    specs += [(f"weights softmax(cos/{t:g})", "fusion: weights",
               lambda c, t=t: (full, passage_weights(c, full, t))) for t in (0.02, 0.05, 0.1)]  # fmt: skip
    return [Lever(name, family, fn) for name, family, fn in specs]


SENTENCE_SEP = "#s"


def sentence_parent(pid: str) -> str:
    """The passage a per-sentence pseudo-passage ``<id>#s<k>`` belongs to (other ids: themselves)."""
    head, sep, tail = pid.rpartition(SENTENCE_SEP)
    return head if sep and tail.isdigit() else pid


def sentence_units(text: str, min_chars: int = 40) -> list[str]:
    """``text``'s sentences (nltk punkt, English); one shorter than ``min_chars`` joins the next."""
    from xqg.evaluate.tokenize import sent_tokenize

    units: list[str] = []
    carry = ""
    for sent in sent_tokenize(text):
        carry = f"{carry} {sent}".strip()
        if len(carry) >= min_chars:
            units.append(carry)
            carry = ""
    if carry:
        if units:
            units[-1] = f"{units[-1]} {carry}"
        else:
            units.append(carry)
    return units


def write_sentence_corpus(passages: Sequence[Any], path: str | Path, min_chars: int = 40) -> dict[str, int]:
    """A corpus of one pseudo-passage per sentence (id ``<id>#s<k>``, the passage's title): the
    "one sentence at a time" prompt lever. ``xqg generate`` runs on it unchanged; the lever study
    maps the queries back with :func:`sentence_parent`. Returns passage and sentence counts."""
    from xqg.io import atomic_open

    n = 0
    with atomic_open(path) as fh:
        for p in passages:
            for k, unit in enumerate(sentence_units(p.text, min_chars)):
                fh.write(json.dumps({"_id": f"{p.id}{SENTENCE_SEP}{k}", "title": p.title, "text": unit},
                                    ensure_ascii=False) + "\n")  # fmt: skip
                n += 1
    return {"passages": len(passages), "sentences": n}


def join_sources(a: CorpusVectors, b: CorpusVectors) -> tuple[CorpusVectors, np.ndarray]:
    """One CorpusVectors holding both folders' queries (same passages) and a 0/1 source per row."""
    if a.pids != b.pids:
        raise ValueError("the two generation folders were encoded against different corpora")
    both = CorpusVectors(
        pids=a.pids,
        passages=a.passages,
        gen=np.concatenate([a.gen, b.gen]),
        gen_lang=np.concatenate([a.gen_lang, b.gen_lang]),
        gen_sample=np.concatenate([a.gen_sample, b.gen_sample]),
        gen_row=np.concatenate([a.gen_row, b.gen_row]),
        gen_rank=np.concatenate([a.gen_rank, b.gen_rank]),
    )
    return both, np.r_[np.zeros(len(a.gen), dtype=np.int8), np.ones(len(b.gen), dtype=np.int8)]


def extra_levers(name: str, source: np.ndarray, n_points: Sequence[int], langs: Sequence[str]) -> list[Lever]:
    """Levers over a joined folder: the extra source alone (first k per passage-language), and the
    main folder's first 5 joined with the extra's first 5."""
    langs = list(langs)
    out = [
        Lever(f"{name} n={k}", f"source: {name}", lambda c, k=k: (first_n(c, k, langs) & (source == 1), None))
        for k in n_points
    ]
    out.append(Lever(f"n=5 + {name} n=5", f"source: {name}", lambda c: (first_n(c, 5, langs), None)))
    return out


# --- scoring -------------------------------------------------------------------------------------


def fused_passages(
    cv: CorpusVectors, mask: np.ndarray, weights: np.ndarray | None, strategy: str, alpha: float
) -> np.ndarray:
    q_sum = np.zeros_like(cv.passages)
    q_count: np.ndarray = np.zeros(len(cv.pids), dtype=np.float64)
    rows = cv.gen_row[mask]
    vecs = cv.gen[mask]
    if weights is None:
        accumulate(q_sum, q_count, rows, vecs)
    else:
        w = weights[mask]
        np.add.at(q_sum, rows, vecs * w[:, None])
        np.add.at(q_count, rows, w)
    return get_fusion(strategy)(cv.passages, q_sum, q_count, float(alpha)).astype(np.float32)


def rel_gain(per_query: np.ndarray, base: np.ndarray, langs: np.ndarray) -> float:
    """Mean over non-English languages of (system − baseline) / baseline."""
    out = []
    for lang in dict.fromkeys(langs.tolist()):
        if lang == "en":
            continue
        m = langs == lang
        out.append(per_query[m].mean() / base[m].mean() - 1.0)
    return float(np.mean(out))


def best_fusion(
    scores_of: Callable[[str, float], np.ndarray],
    split: SplitVectors,
    strategies: Sequence[str],
    alphas: Sequence[float],
    metric: str,
) -> dict[str, Any]:
    """Best (strategy, α) by macro ``metric`` on ``split``; ``scores_of(strategy, α)`` gives the
    query × passage scores. Ties keep the earlier grid point."""
    best: dict[str, Any] | None = None
    for strategy in strategies:
        for alpha in alphas:
            pq = rank_metric(ranks_in_scores(scores_of(strategy, float(alpha)), split.gold), metric)
            score = macro(pq, split.langs)
            if best is None or round(score, 12) > round(best["score"], 12):
                best = {"strategy": strategy, "alpha": float(alpha), "score": score, "per_query": pq}
    assert best is not None
    return best


def tune_selection(
    cv: CorpusVectors,
    dev: SplitVectors,
    sel: Selection,
    strategies: Sequence[str],
    alphas: Sequence[float],
    metric: str,
) -> dict[str, Any]:
    """Best (strategy, α) of one selection on dev, by macro ``metric``."""
    mask, weights = sel
    return best_fusion(
        lambda st, al: dev.vectors @ fused_passages(cv, mask, weights, st, al).T,
        dev,
        strategies,
        alphas,
        metric,
    )


# --- the study -----------------------------------------------------------------------------------


def prepare(
    cfg: ExperimentConfig, gen_dir: Path, out: Path, *, show_progress: bool = True
) -> tuple[Any, ...]:
    """Benchmark, corpus and question vectors, and every generated query of ``gen_dir`` encoded."""
    from xqg.data.benchmarks.xquad import build_xquad, load_xquad
    from xqg.encode import encode_corpus, encode_generated_queries, encode_queries
    from xqg.generate import store
    from xqg.io import read_manifest
    from xqg.models.encoder import BiEncoder

    a = cfg.augment
    assert a is not None
    # the generation folder is checked before any model loads
    gcfg = read_manifest(gen_dir, stage=store.STAGE)["config"]["generator"]
    langs = list(cfg.langs)
    out.mkdir(parents=True, exist_ok=True)
    build_xquad(out / "benchmark", langs, split="all")
    dev_b, test_b = load_xquad(langs, split=a.tune_split), load_xquad(langs, split=a.eval_split)
    corpus = dev_b.corpus
    row_of = {p.id: i for i, p in enumerate(corpus)}
    encoder = BiEncoder(cfg.encoder)
    encode_corpus(
        iter(corpus),
        out / "embeddings",
        encoder=encoder,
        shard_size=cfg.shard_size,
        total=len(corpus),
        show_progress=show_progress,
    )
    for name, b in ((a.tune_split, dev_b), (a.eval_split, test_b)):
        encode_queries(b.all_queries(), out / f"queries-{name}", encoder=encoder, show_progress=show_progress)
    encode_generated_queries(
        gen_dir,
        out / "generated-emb-all",
        encoder=encoder.with_settings(query_max_length=a.query_max_length),
        show_progress=show_progress,
    )
    cv = _load_corpus_vectors(out / "embeddings", out / "generated-emb-all")
    dev = _load_split(out / f"queries-{a.tune_split}", dev_b, row_of, a.tune_split)
    test = _load_split(out / f"queries-{a.eval_split}", test_b, row_of, a.eval_split)
    return cv, dev, test, gcfg


def _generator_summary(gcfg: dict[str, Any]) -> dict[str, Any]:
    return {k: gcfg.get(k) for k in ("model", "langs", "n", "top_k", "top_p", "temperature", "seed")}


def load_extra(
    cfg: ExperimentConfig,
    folder: Path,
    out: Path,
    name: str,
    *,
    parent_of: Callable[[str], str] | None = sentence_parent,
    show_progress: bool = True,
) -> tuple[CorpusVectors, dict[str, Any]]:
    """Another generation folder over the lever study's corpus (ids ``<id>`` or ``<id>#s<k>``),
    encoded like the main one into ``out/generated-emb-<name>``; its vectors and its generator
    settings. ``parent_of=None`` keeps the folder's own sample numbers."""
    from xqg.encode import encode_generated_queries
    from xqg.generate import store
    from xqg.io import read_manifest
    from xqg.models.encoder import BiEncoder

    a = cfg.augment
    assert a is not None
    gcfg = read_manifest(folder, stage=store.STAGE)["config"]["generator"]
    enc = BiEncoder(cfg.encoder).with_settings(query_max_length=a.query_max_length)
    emb = out / f"generated-emb-{name}"
    encode_generated_queries(folder, emb, encoder=enc, show_progress=show_progress)
    return _load_corpus_vectors(out / "embeddings", emb, parent_of=parent_of), gcfg


def _group_of(split: SplitVectors) -> np.ndarray:
    return np.array([q.rsplit("-", 1)[0] for q in split.qids], dtype=object)


def run_levers(
    cfg: ExperimentConfig,
    gen_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    report_dir: str | Path | None = None,
    compare_generated: str | Path | None = None,
    extra: dict[str, str | Path] | None = None,
    show_progress: bool = True,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Score every lever on dev; write ``levers.json`` and ``levers.md`` to ``report_dir``.

    ``compare_generated`` (an older generation folder) adds a round-trip table per language on the
    test-split paragraphs: that folder's queries against the first 5 and the first 10 of the new ones.
    ``extra`` (name → generation folder over the same corpus, or over its per-sentence corpus)
    adds that folder's levers (:func:`extra_levers`).
    """
    from xqg.evaluate.tables import LanguageTable

    a = cfg.augment
    assert a is not None
    gen_dir = Path(gen_dir)
    out = Path(out_dir or cfg.out_dir)
    rep = Path(report_dir or out / "levers")
    t0 = time.perf_counter()
    cv, dev, test, gcfg = prepare(cfg, gen_dir, out, show_progress=show_progress)
    metric = a.tune_metric
    targets = [x for x in cfg.langs if x != "en"]
    n_max = int(gcfg["n"])
    strategies = list(a.strategies)
    alphas = list(a.alphas)
    base_dev = rank_metric(ranks_in_scores(dev.vectors @ cv.passages.astype(np.float32).T, dev.gold), metric)
    base_test = rank_metric(
        ranks_in_scores(test.vectors @ cv.passages.astype(np.float32).T, test.gold), metric
    )
    rows: list[dict[str, Any]] = [
        {
            "lever": "baseline",
            "family": "–",
            "queries": 0.0,
            "dev": macro(base_dev, dev.langs),
            "dev_gain": 0.0,
        }
    ]
    runs = [(lever, cv) for lever in default_levers(cv, n_max, targets)]
    extras_cfg: dict[str, Any] = {}
    for name, folder in (extra or {}).items():
        x_cv, x_cfg = load_extra(cfg, Path(folder), out, name, show_progress=show_progress)
        joined, source = join_sources(cv, x_cv)
        extras_cfg[name] = {"folder": Path(folder).name, **_generator_summary(x_cfg)}
        points = [k for k in (1, 2, 5, 10, 20) if k <= int(x_cv.gen_sample.max()) + 1]
        runs += [(lever, joined) for lever in extra_levers(name, source, points, targets)]
    for lever, cv_l in runs:
        t = time.perf_counter()
        sel = lever.select(cv_l)
        best = tune_selection(cv_l, dev, sel, strategies, alphas, metric)
        row = {
            "lever": lever.name,
            "family": lever.family,
            "queries": float(sel[0].sum()) / len(cv_l.pids),
            "strategy": best["strategy"],
            "alpha": best["alpha"],
            "dev": best["score"],
            "dev_gain": rel_gain(best["per_query"], base_dev, dev.langs),
            "dev_by_lang": {x: float(best["per_query"][dev.langs == x].mean()) for x in dev.lang_list()},
            "seconds": time.perf_counter() - t,
        }
        rows.append(row)
        log(
            f"dev {lever.name:32s} {row['dev']:.4f} ({row['dev_gain']:+.2%}) "
            f"{best['strategy']} α={best['alpha']:g}"
        )

    # the human-question oracle, tuned on dev, reported on dev and test
    human = load_human_questions(cfg, cv, targets, out)
    oracle_rows = []
    full = first_n(cv, n_max, targets)
    for name, extra in (
        ("human questions (leave-one-out)", None),
        (f"human + generated n={n_max}", (full, None)),
    ):
        best = best_fusion(
            lambda st, al, e=extra: oracle_scores(dev, _group_of(dev), cv, human, st, al, e),
            dev, strategies, alphas, metric,
        )  # fmt: skip
        test_scores = oracle_scores(test, _group_of(test), cv, human, best["strategy"], best["alpha"], extra)
        pq_test = rank_metric(ranks_in_scores(test_scores, test.gold), metric)
        oracle_rows.append(
            {
                "system": name,
                "strategy": best["strategy"],
                "alpha": best["alpha"],
                "dev": best["score"],
                "dev_gain": rel_gain(best["per_query"], base_dev, dev.langs),
                "test_per_query": pq_test,
            }
        )
        log(f"oracle {name}: dev {best['score']:.4f}, test {macro(pq_test, test.langs):.4f}")
    qid_lang = dict(zip(test.qids, test.langs.tolist(), strict=True))
    base_vals = {metric: dict(zip(test.qids, base_test.tolist(), strict=True))}
    tables = {
        r["system"]: LanguageTable.build(
            {metric: dict(zip(test.qids, r.pop("test_per_query").tolist(), strict=True))},
            qid_lang,
            langs=list(cfg.langs),
            baseline=base_vals,
            test=a.significance,
            title=f"{r['system']}: {r['strategy']}, α={r['alpha']:g}",
        )
        for r in oracle_rows
    }
    for r in oracle_rows:
        r.update(table_summary(tables[r["system"]], metric))
    round_trip: dict[str, Any] = {}
    if compare_generated is not None:
        old = Path(compare_generated)
        old_cv, _ = load_extra(cfg, old, out, "compare", parent_of=None, show_progress=False)
        rows_test = set(test.gold.tolist())
        round_trip = {
            "paragraphs": len(rows_test),
            "old": {"folder": old.name, **round_trip_by_lang(old_cv, rows_test)},
            "new n=5": round_trip_by_lang(cv, rows_test, 5),
            "new n=10": round_trip_by_lang(cv, rows_test, 10),
        }
    summary = {
        "generated": gen_dir.name,
        "generator": _generator_summary(gcfg),
        "extra": extras_cfg,
        "metric": metric,
        "tune_split": a.tune_split,
        "eval_split": a.eval_split,
        "dev_queries": len(dev.qids),
        "test_queries": len(test.qids),
        "strategies": strategies,
        "alphas": alphas,
        "levers": rows,
        "oracle": oracle_rows,
        "round_trip": round_trip,
        "seconds": time.perf_counter() - t0,
    }
    write_levers_report(rep, summary, tables)
    return summary


def round_trip_by_lang(
    cv: CorpusVectors, rows: set[int], n: int | None = None
) -> dict[str, dict[str, float]]:
    """Per language: the share of the queries of passages ``rows`` whose own passage ranks 1st / ≤ 10."""
    keep = np.isin(cv.gen_row, sorted(rows))
    if n is not None:
        keep &= cv.gen_sample < n
    out = {}
    for lang in sorted(set(cv.gen_lang[keep].tolist())):
        m = keep & (cv.gen_lang == lang)
        rank = cv.gen_rank[m]
        out[lang] = {
            "rt@1": float((rank == 1).mean()),
            "rt@10": float((rank <= 10).mean()),
            "queries": int(m.sum()),
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    from xqg.config import load_experiment
    from xqg.pipeline import packaged_config

    ap = argparse.ArgumentParser(prog="python -m xqg.experiments.levers", description=__doc__.split("\n")[0])
    ap.add_argument("config", nargs="?", help="experiment file (xquad-xqg style) or a packaged name")
    ap.add_argument("--generated", help="over-generated `xqg generate` folder")
    ap.add_argument("--out", default=None, help="work folder (default: the config's out_dir)")
    ap.add_argument("--report-dir", default=None)
    ap.add_argument(
        "--compare-generated", default=None, help="an older generation folder: round trip side by side"
    )
    ap.add_argument(
        "--extra", action="append", default=[], metavar="NAME=DIR",
        help="another generation folder over the same corpus (or over its sentence corpus)",
    )  # fmt: skip
    ap.add_argument(
        "--sentence-corpus", default=None, metavar="OUT.jsonl",
        help="only write the per-sentence corpus of the config's benchmark (for xqg generate)",
    )  # fmt: skip
    ap.add_argument("--side-by-side", nargs=2, metavar=("OLD", "NEW"),
                    help="only write NEW's folder/compare.md from two experiment results.json")  # fmt: skip
    args = ap.parse_args(argv)
    if args.side_by_side:
        print(write_side_by_side(*args.side_by_side, Path(args.side_by_side[1]).parent / "compare.md"))
        return
    if not args.config or not (args.generated or args.sentence_corpus):
        ap.error("CONFIG and --generated (or --sentence-corpus) are required (or --side-by-side OLD NEW)")
    bad = [x for x in args.extra if "=" not in x or not x.split("=", 1)[0]]
    if bad:
        ap.error(f"--extra needs NAME=DIR, got {bad[0]!r}")
    from xqg.errors import XqgError

    try:
        cfg = load_experiment(packaged_config(args.config))
        if args.sentence_corpus:
            from xqg.data.benchmarks.xquad import load_xquad

            corpus = load_xquad(list(cfg.langs), split="all").corpus
            print(write_sentence_corpus(corpus, args.sentence_corpus), "→", args.sentence_corpus)
            return
        extra = dict(x.split("=", 1) for x in args.extra)
        run_levers(cfg, args.generated, out_dir=args.out, report_dir=args.report_dir,
                   compare_generated=args.compare_generated, extra=extra)  # fmt: skip
    except XqgError as e:  # bad input: a clean message and exit 2, as the CLI gives
        import sys

        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
