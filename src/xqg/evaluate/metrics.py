"""Qrels-based ranking metrics (Recall, Precision, MRR, nDCG at any k), computed by ranx.

ranx is the field's fast, trec_eval-checked implementation; xqg only decides what goes in and
makes the edge cases explicit instead of inheriting them by accident:

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
* **Definitions** (ranx, checked against hand computations in ``tests/test_metrics.py``):
  ``recall@k`` = relevant in top k / all relevant; ``precision@k`` = relevant in top k / k (k, not
  the number retrieved, as trec_eval's P@k); ``mrr@k`` = 1/rank of the first relevant document
  in the top k, else 0 (ranx's docstring says k is ignored for MRR; the code honours it);
  ``ndcg@k`` = Järvelin & Kekäläinen DCG with linear gain (the grade) and ``1/log2(rank+1)``
  discount, over the ideal DCG of the top-k grades (ranx ``"ndcg"``, not ``"ndcg_burges"``).
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


def _ranked(scores: Mapping[str, float], qid: str) -> dict[str, float]:
    """Scores replaced by strictly decreasing ranks in xqg's order (score desc, doc id asc)."""
    for docid, s in scores.items():
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or math.isnan(s):
            raise XqgError(f"run query {qid!r}: score of doc {docid!r} is not a number: {s!r}")
    order = sorted(scores, key=lambda d: (-scores[d], d))
    n = len(order)
    return {docid: float(n - i) for i, docid in enumerate(order)}


def evaluate_qrels(
    run: Run,
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    threads: int = 0,
) -> dict[str, dict[str, float]]:
    """Per-query values ``{metric: {qid: value}}`` for every query in ``qrels``.

    See the module docstring for how missing queries, non-relevant grades and ties are treated.
    ``threads`` is passed to ranx (0 = numba's default, all cores).
    """
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

    import ranx
    from numba.core.errors import NumbaTypeSafetyWarning

    r_qrels = ranx.Qrels.from_dict({q: rel[q] for q in scorable})
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
    for s in specs:
        per_q = r_run.scores[s.name]
        for q in scorable:
            out[s.name][q] = float(per_q[q])
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
