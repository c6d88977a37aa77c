"""Qrels-based ranking metrics (Recall, Precision, MRR, nDCG at any k), per query.

xqg computes them with numpy from the ranked gains (``engine="numpy"``, the default), and keeps
ranx, the field's fast, trec_eval-checked implementation, as the oracle: ``engine="ranx"`` hands
the same rankings to ranx, and ``tests/test_metrics.py`` checks that both give bit-identical
values on real and randomised runs (graded relevance, ties, queries without relevant documents,
rankings shorter than k). The numpy path imports neither ranx nor numba, so a fresh process
scores 10k queries in about a second instead of waiting for numba to load (or compile) ranx's
metrics. xqg only decides what goes in and makes the edge cases explicit instead of inheriting
them by accident:

* **Every query in the qrels gets a value.** ``ranx.evaluate`` asserts that the run and the
  qrels have the *same* query ids (``check_keys``; ``make_comparable=True`` would add empty
  results). xqg scores a qrels query that is absent from the run, or has an empty ranking, as
  0.0 for every metric — a system that returned nothing found nothing. Run queries that are not
  in the qrels are ignored (they cannot be judged).
* **Relevance ≤ 0 is not relevant** (``xqg.types.Qrels``). ranx's ``rel_lvl=1`` default keeps
  judgments ≥ 1 and uses the raw grade as the nDCG gain; xqg drops grades ≤ 0 before handing the
  qrels over, which is the same thing made explicit. A query whose judgments are all ≤ 0 scores
  0.0 everywhere, which is what ranx returns for a query with no relevant document (its
  ``clean_qrels`` leaves nothing and every metric returns 0.0); such queries still count in
  averages, so drop them from the qrels if you want them ignored.
* **Ties are broken by doc id, ascending.** ranx sorts each ranking with ``np.argsort`` on the
  negated scores (quicksort: not stable), so tied documents come out in an unspecified order. xqg
  sorts by (score descending, doc id ascending) itself and hands ranx strictly decreasing
  rank-based scores, so results are reproducible and match a hand computation.
* **Definitions** (ranx's, checked against hand computations in ``tests/test_metrics.py``):
  ``recall@k`` = relevant in top k / all relevant; ``precision@k`` = relevant in top k / k (k, not
  the number retrieved, as trec_eval's P@k); ``mrr@k`` = 1/rank of the first relevant document
  in the top k, else 0 (ranx's docstring says k is ignored for MRR; the code honours it);
  ``ndcg@k`` = Järvelin & Kekäläinen DCG with linear gain (the grade) and ``1/log2(rank+1)``
  discount, over the ideal DCG of the top-k grades (ranx ``"ndcg"``, not ``"ndcg_burges"``). The
  numpy path adds the DCG terms in rank order as ranx's loop does, with the discount from libm's
  ``log2``, so even the last bit agrees.
* ranx hashes doc ids into float64 internally; two distinct ids colliding is astronomically
  unlikely but not impossible.

Metric names are case-insensitive: ``mrr@10``, ``MRR@10``, ``rr@10``, ``r@5``, ``recall@5``,
``p@5``, ``precision@5``, ``ndcg@10``. Results are keyed by the canonical spelling
(``mrr@10``, ``recall@5``, ``precision@5``, ``ndcg@10``).
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from xqg.errors import XqgError
from xqg.types import Qrels, Run

DEFAULT_METRICS: tuple[str, ...] = ("mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "ndcg@10")

_ALIASES: dict[str, str] = {
    "mrr": "mrr",
    "rr": "mrr",
    "recall": "recall",
    "r": "recall",
    "precision": "precision",
    "p": "precision",
    "ndcg": "ndcg",
}
_CANONICAL = ("recall", "precision", "mrr", "ndcg")
_NAME_RE = re.compile(r"^\s*([a-z]+)\s*@\s*(\d+)\s*$")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A parsed metric name: ``measure`` is one of recall/precision/mrr/ndcg, ``k`` ≥ 1."""

    measure: str
    k: int

    @property
    def name(self) -> str:
        """Canonical spelling, also the ranx metric string."""
        return f"{self.measure}@{self.k}"


def valid_metric_names() -> str:
    """Human-readable list of what :func:`parse_metric` accepts (used in error messages)."""
    aliases = ", ".join(f"{a}@k" for a in _ALIASES)
    return f"{aliases} (case-insensitive, k a positive integer)"


def parse_metric(name: str) -> MetricSpec:
    """Parse ``"MRR@10"``, ``"r@5"``, ... into a :class:`MetricSpec`; XqgError for anything else."""
    if not isinstance(name, str):
        raise XqgError(f"metric names are strings, got {name!r}; valid: {valid_metric_names()}")
    m = _NAME_RE.match(name.lower())
    if not m or m.group(1) not in _ALIASES:
        raise XqgError(f"unknown metric {name!r}; valid: {valid_metric_names()}")
    k = int(m.group(2))
    if k < 1:
        raise XqgError(f"metric {name!r}: k must be ≥ 1; valid: {valid_metric_names()}")
    return MetricSpec(_ALIASES[m.group(1)], k)


def _check_scores(scores: Mapping[str, float], qid: str) -> None:
    for docid, s in scores.items():
        if type(s) is float and s == s:  # the common case, without the slow ABC check below
            continue
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or math.isnan(s):
            raise XqgError(f"run query {qid!r}: score of doc {docid!r} is not a number: {s!r}")


def _order(scores: Mapping[str, float], qid: str) -> list[str]:
    """Doc ids in xqg's order: score descending, then doc id ascending (ties)."""
    _check_scores(scores, qid)
    values = list(scores.values())
    if all(a > b for a, b in pairwise(values)):  # already strictly decreasing: no ties
        return list(scores)
    return sorted(scores, key=lambda d: (-scores[d], d))


def _ranked(scores: Mapping[str, float], qid: str) -> dict[str, float]:
    """Scores replaced by strictly decreasing ranks in xqg's order (score desc, doc id asc)."""
    order = _order(scores, qid)
    n = len(order)
    return {docid: float(n - i) for i, docid in enumerate(order)}


def _discounts(depth: int) -> np.ndarray:
    """``log2(rank + 1)`` for ranks 1..depth, by libm's ``log2`` (what numba's ``np.log2`` calls)."""
    return np.array([math.log2(i + 2) for i in range(depth)], dtype=np.float64)


#: Queries scored per block by the numpy path (bounds memory at 3 × block × depth × 8 bytes).
_BLOCK = 4096


def _gain_block(
    run: Run, rel: Mapping[str, Mapping[str, int]], qids: Sequence[str], depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gains of the top ``depth`` ranked docs, ideal (sorted) gains, and relevant counts per query."""
    gains = np.zeros((len(qids), depth), dtype=np.float64)
    ideal = np.zeros((len(qids), depth), dtype=np.float64)
    n_rel = np.empty(len(qids), dtype=np.float64)
    for i, q in enumerate(qids):
        judged = rel[q]
        g = [judged.get(d, 0) for d in _order(run[q], q)[:depth]]
        gains[i, : len(g)] = g
        best = sorted(judged.values(), reverse=True)[:depth]
        ideal[i, : len(best)] = best
        n_rel[i] = len(judged)
    return gains, ideal, n_rel


def _numpy_block(gains: np.ndarray, ideal: np.ndarray, n_rel: np.ndarray, specs: Sequence[MetricSpec]):
    """Per-query values of every spec for one block, operation for operation as ranx computes them.

    ranx sums hits as floats and DCG terms ``gain / log2(rank + 1)`` one after the other (numba's
    ``np.sum`` is a sequential loop); ``np.cumsum`` adds in that same order, and zeros past the
    end of a short ranking leave a partial sum unchanged, so the values are bit-identical.
    """
    hit = gains > 0
    out: dict[str, np.ndarray] = {}
    ndcg_k = max((s.k for s in specs if s.measure == "ndcg"), default=0)
    if ndcg_k:
        disc = _discounts(ndcg_k)
        dcg = np.cumsum(gains[:, :ndcg_k] / disc, axis=1)
        idcg = np.cumsum(ideal[:, :ndcg_k] / disc, axis=1)
    for s in specs:
        h = hit[:, : s.k]
        if s.measure == "recall":
            out[s.name] = h.sum(axis=1, dtype=np.float64) / n_rel
        elif s.measure == "precision":
            out[s.name] = h.sum(axis=1, dtype=np.float64) / s.k
        elif s.measure == "mrr":
            first = np.argmax(h, axis=1)
            out[s.name] = np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)
        else:
            col = min(s.k, ndcg_k) - 1
            i_dcg = idcg[:, col]
            out[s.name] = dcg[:, col] / np.where(i_dcg == 0.0, 1.0, i_dcg)
    return out


def _numpy_values(
    run: Run, rel: Mapping[str, Mapping[str, int]], scorable: Sequence[str], specs: Sequence[MetricSpec]
) -> dict[str, list[float]]:
    depth = max(s.k for s in specs)
    values: dict[str, list[float]] = {s.name: [] for s in specs}
    for b in range(0, len(scorable), _BLOCK):
        block = _numpy_block(*_gain_block(run, rel, scorable[b : b + _BLOCK], depth), specs)
        for name, v in block.items():
            values[name].extend(v.tolist())
    return values


def _ranx_values(
    run: Run,
    rel: Mapping[str, Mapping[str, int]],
    scorable: Sequence[str],
    specs: Sequence[MetricSpec],
    threads: int,
) -> dict[str, list[float]]:
    import ranx
    from numba.core.errors import NumbaTypeSafetyWarning

    r_qrels = ranx.Qrels.from_dict({q: dict(rel[q]) for q in scorable})
    r_run = ranx.Run.from_dict({q: _ranked(run[q], q) for q in scorable})
    with warnings.catch_warnings():
        # ranx's reciprocal rank casts a uint64 index; numba warns on every call. Harmless noise.
        warnings.simplefilter("ignore", NumbaTypeSafetyWarning)
        ranx.evaluate(
            r_qrels,
            r_run,
            [s.name for s in specs],
            return_mean=False,
            threads=threads,
            save_results_in_run=True,
        )
    # ranx's own qid ↔ score mapping (it fills run.scores in the order it evaluated).
    return {s.name: [float(r_run.scores[s.name][q]) for q in scorable] for s in specs}


ENGINES = ("numpy", "ranx")


def evaluate_qrels(
    run: Run,
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    engine: str = "numpy",
    threads: int = 0,
) -> dict[str, dict[str, float]]:
    """Per-query values ``{metric: {qid: value}}`` for every query in ``qrels``.

    See the module docstring for how missing queries, non-relevant grades and ties are treated.
    ``engine="numpy"`` (default) computes the metrics from the ranked gains in numpy;
    ``engine="ranx"`` hands the same rankings to ranx (the oracle ``tests/test_metrics.py``
    checks the numpy path against, bit for bit); ``threads`` is passed to ranx (0 = numba's
    default, all cores).
    """
    if engine not in ENGINES:
        raise XqgError(f"unknown evaluation engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    if isinstance(metrics, str):
        metrics = [metrics]
    specs = list(dict.fromkeys(parse_metric(m) for m in metrics))
    if not specs:
        raise XqgError(f"no metrics requested; valid: {valid_metric_names()}")

    rel: dict[str, dict[str, int]] = {}
    for qid, judged in qrels.items():
        rel[qid] = {d: int(r) for d, r in judged.items() if r > 0}
    scorable = [q for q in rel if rel[q] and run.get(q)]
    out: dict[str, dict[str, float]] = {s.name: dict.fromkeys(rel, 0.0) for s in specs}
    if not scorable:
        return out
    if engine == "ranx":
        values = _ranx_values(run, rel, scorable, specs, threads)
    else:
        values = _numpy_values(run, rel, scorable, specs)
    for name, vals in values.items():
        out[name].update(zip(scorable, vals, strict=True))
    return out


def mean_scores(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Arithmetic mean per metric over the queries given (micro average)."""
    out = {}
    for name, values in per_query.items():
        if not values:
            raise XqgError(f"{name}: no query values to average")
        out[name] = math.fsum(values.values()) / len(values)
    return out


# Small named helpers, bm25s style: one metric, one call.


def recall_at_k(run: Run, qrels: Qrels, k: int) -> dict[str, float]:
    """Per-query Recall@k."""
    return evaluate_qrels(run, qrels, [f"recall@{k}"])[f"recall@{k}"]


def precision_at_k(run: Run, qrels: Qrels, k: int) -> dict[str, float]:
    """Per-query Precision@k (divided by k)."""
    return evaluate_qrels(run, qrels, [f"precision@{k}"])[f"precision@{k}"]


def mrr_at_k(run: Run, qrels: Qrels, k: int) -> dict[str, float]:
    """Per-query reciprocal rank of the first relevant document within the top k."""
    return evaluate_qrels(run, qrels, [f"mrr@{k}"])[f"mrr@{k}"]


def ndcg_at_k(run: Run, qrels: Qrels, k: int) -> dict[str, float]:
    """Per-query nDCG@k (linear gain)."""
    return evaluate_qrels(run, qrels, [f"ndcg@{k}"])[f"ndcg@{k}"]


def metrics_from_ranks(ranks: Mapping[str, int], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-query values when every query has **one** relevant document, found at 1-based ``rank``.

    ``rank`` 0 means "not retrieved". With a single relevant document (grade 1) each metric is a
    function of its rank alone: recall@k = [r ≤ k], precision@k = [r ≤ k]/k, mrr@k = 1/r,
    ndcg@k = 1/log2(r + 1) (the ideal DCG is 1). This is what α grids and curves use to score
    hundreds of settings without building runs; ``tests/test_metrics.py`` checks it equals
    :func:`evaluate_qrels` on the same rankings.
    """
    specs = list(dict.fromkeys(parse_metric(m) for m in metrics))
    out: dict[str, dict[str, float]] = {}
    for s in specs:
        vals: dict[str, float] = {}
        for qid, r in ranks.items():
            hit = 0 < r <= s.k
            if s.measure == "recall":
                vals[qid] = 1.0 if hit else 0.0
            elif s.measure == "precision":
                vals[qid] = 1.0 / s.k if hit else 0.0
            elif s.measure == "mrr":
                vals[qid] = 1.0 / r if hit else 0.0
            else:
                vals[qid] = 1.0 / math.log2(r + 1) if hit else 0.0
        out[s.name] = vals
    return out
