"""Paired significance tests over per-query scores: t-test, randomisation test, bootstrap CI.

Two systems evaluated on the same queries give paired scores; differences ``d = a - b`` per
query carry all the information. Three complementary views:

* **Paired two-sided t-test** (``scipy.stats.ttest_rel``): the classic choice in IR papers; it
  assumes the mean difference is roughly normal, which holds for a few hundred queries even with
  0/1 scores like R@kt hits.
* **Paired randomisation (sign-flip permutation) test**: under H0 the labels a/b are exchangeable
  within a query, so every difference is equally likely to have either sign. The two-sided
  p-value is the share of sign assignments whose ``|Σ d|`` is at least the observed one.
  Differences equal to 0 are unaffected by a flip and are left out of the enumeration (they still
  count in ``n`` and the means). When ``2**m`` sign patterns (m = non-zero differences) is at most
  ``n_resamples``, all patterns are enumerated and the p-value is exact; otherwise
  ``n_resamples`` random patterns are drawn and ``p = (1 + #{|Σ d*| ≥ |Σ d|}) / (1 +
  n_resamples)`` (Phipson & Smyth 2010: never 0, valid for a Monte-Carlo test).
* **Paired bootstrap percentile CI** of the mean difference: resample queries with replacement.

Degenerate cases are answered, not NaN'd: all differences zero → both p-values 1.0 and CI
(0, 0). A constant non-zero difference gives scipy's t-test p = 0.0 (infinite t). With a single
query the t-test is undefined (``nan``); the permutation test still answers (p = 1.0).

Query ids are sorted before anything random happens, so results depend only on the scores, the
seed and ``n_resamples`` — not on dict order. The permutation and bootstrap draw from independent
streams spawned from ``seed``, so turning one off does not change the other.

:func:`macro_paired_test` is the same machinery for a macro average over groups (languages):
the sign-flip statistic becomes the macro-averaged difference (each query weighted by 1 / (number
of groups × its group size)) and the bootstrap resamples within each group.

:func:`group_gap_test` asks whether two groups of units (languages) differ in mean value, with the
units as the sample: exact over every assignment of the labels, else Monte Carlo.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any, Literal

import numpy as np

from xqg.errors import XqgError

Method = Literal["ttest", "permutation", "both"]

_CHUNK = 4096  # resamples per vectorised block (keeps memory at chunk × n values)


@dataclass(frozen=True, slots=True)
class SignificanceResult:
    """Outcome of a paired comparison of system ``a`` against system ``b``.

    ``delta = mean_a - mean_b``. A p-value or CI bound that was not requested is ``None``.
    ``n_nonzero`` is how many queries differ; ``exact`` says whether the permutation p-value came
    from full enumeration.
    """

    n: int
    mean_a: float
    mean_b: float
    delta: float
    p_ttest: float | None
    p_permutation: float | None
    ci_low: float | None
    ci_high: float | None
    n_nonzero: int = 0
    exact: bool | None = None
    n_resamples: int = 0
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes ``None``."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def _few(ids: list[str], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:n])
    return shown + (", …" if len(ids) > n else "")


def _paired_arrays(
    a: Mapping[str, float], b: Mapping[str, float]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Check both sides judge the same queries and return (sorted ids, a values, b values)."""
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} id(s) only in a: {_few(only_a)}")
        if only_b:
            parts.append(f"{len(only_b)} id(s) only in b: {_few(only_b)}")
        raise XqgError("paired test needs the same queries on both sides; " + "; ".join(parts))
    if not a:
        raise XqgError("paired test needs at least one query")
    qids = sorted(a)
    for side, values in (("a", a), ("b", b)):
        bad = [
            q
            for q in qids
            if isinstance(values[q], bool)
            or not isinstance(values[q], numbers.Real)
            or not math.isfinite(values[q])
        ]
        if bad:
            raise XqgError(f"{side} has {len(bad)} non-numeric or non-finite value(s), e.g. for {_few(bad)}")
    return qids, np.array([a[q] for q in qids], float), np.array([b[q] for q in qids], float)


def ttest_pvalue(d: np.ndarray) -> float:
    """Two-sided paired t-test p-value on differences (1.0 if all zero, nan if n < 2)."""
    if not np.any(d):
        return 1.0
    if d.size < 2:
        return math.nan
    from scipy.stats import ttest_rel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # zero variance: scipy returns inf/0.0
        return float(ttest_rel(d, np.zeros_like(d)).pvalue)


def sign_flip_pvalue(d: np.ndarray, n_resamples: int, rng: np.random.Generator) -> tuple[float, bool]:
    """Two-sided sign-flip p-value of ``|Σ d|``; returns (p, exact)."""
    nz = d[d != 0]
    m = nz.size
    if m == 0:
        return 1.0, True
    observed = abs(math.fsum(nz))
    # Sums of the same numbers in another order can differ in the last bits; treat those as ties.
    tol = 1e-9 * float(np.abs(nz).sum())
    threshold = observed - tol
    if 2**m <= n_resamples:
        count = 0
        patterns = np.arange(2**m, dtype=np.int64)
        for start in range(0, patterns.size, _CHUNK):
            block = patterns[start : start + _CHUNK]
            bits = (block[:, None] >> np.arange(m)) & 1
            sums = (1 - 2 * bits) @ nz
            count += int(np.count_nonzero(np.abs(sums) >= threshold))
        return count / 2**m, True
    if n_resamples < 1:
        raise XqgError("n_resamples must be ≥ 1 for a Monte-Carlo permutation test")
    count = 0
    done = 0
    while done < n_resamples:
        size = min(_CHUNK, n_resamples - done)
        signs = rng.integers(0, 2, size=(size, m), dtype=np.int8) * 2 - 1
        sums = signs @ nz
        count += int(np.count_nonzero(np.abs(sums) >= threshold))
        done += size
    return (1 + count) / (1 + n_resamples), False


def _percentile_ci(stats: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return float(low), float(high)


def bootstrap_ci(
    d: np.ndarray, n_resamples: int, rng: np.random.Generator, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``mean(d)`` resampling queries with replacement."""
    if not np.any(d):
        return 0.0, 0.0
    n = d.size
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, max(1, _CHUNK * 64 // max(n, 1))):
        size = min(max(1, _CHUNK * 64 // max(n, 1)), n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        means[start : start + size] = d[idx].mean(axis=1)
    return _percentile_ci(means, confidence)


def _check_options(method: str, n_resamples: int, confidence: float | None) -> None:
    if method not in ("ttest", "permutation", "both"):
        raise XqgError(f"method must be 'ttest', 'permutation' or 'both', got {method!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise XqgError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if confidence is not None and not 0 < confidence < 1:
        raise XqgError(f"confidence must be in (0, 1), got {confidence!r}")


def paired_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    method: Method = "both",
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float | None = 0.95,
) -> SignificanceResult:
    """Compare per-query scores ``a`` (system) and ``b`` (baseline) on the same queries.

    ``method`` picks the p-values computed; ``confidence=None`` skips the bootstrap CI.
    """
    _check_options(method, n_resamples, confidence)
    _, va, vb = _paired_arrays(a, b)
    d = va - vb
    perm_rng, boot_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    p_t = ttest_pvalue(d) if method in ("ttest", "both") else None
    p_perm, exact = sign_flip_pvalue(d, n_resamples, perm_rng) if method != "ttest" else (None, None)
    ci = bootstrap_ci(d, n_resamples, boot_rng, confidence) if confidence is not None else (None, None)
    mean_a, mean_b = float(va.mean()), float(vb.mean())
    return SignificanceResult(
        n=int(d.size),
        mean_a=mean_a,
        mean_b=mean_b,
        delta=float(d.mean()),
        p_ttest=p_t,
        p_permutation=p_perm,
        ci_low=ci[0],
        ci_high=ci[1],
        n_nonzero=int(np.count_nonzero(d)),
        exact=exact,
        n_resamples=n_resamples,
        confidence=confidence,
    )


def macro_paired_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    groups: Mapping[str, str],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float | None = 0.95,
) -> SignificanceResult:
    """Paired randomisation test and stratified bootstrap CI for a *macro* average over groups.

    ``groups`` maps each query id to its group (language). ``mean_a``/``mean_b``/``delta`` are
    macro averages (mean over groups of the per-group means). There is no t-test for a weighted
    mean of this kind, so ``p_ttest`` is ``None``.
    """
    _check_options("permutation", n_resamples, confidence)
    qids, va, vb = _paired_arrays(a, b)
    no_group = [q for q in qids if q not in groups]
    if no_group:
        raise XqgError(f"{len(no_group)} query id(s) have no group: {_few(no_group)}")
    labels = [groups[q] for q in qids]
    uniq = sorted(set(labels))
    label_arr = np.array(labels, dtype=object)
    members = [np.flatnonzero(label_arr == g) for g in uniq]
    weights = np.empty(len(qids))
    for idx in members:
        weights[idx] = 1.0 / (len(uniq) * idx.size)
    d = va - vb
    perm_rng, boot_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    p_perm, exact = sign_flip_pvalue(d * weights, n_resamples, perm_rng)
    ci: tuple[float | None, float | None] = (None, None)
    if confidence is not None:
        if not np.any(d):
            ci = (0.0, 0.0)
        else:
            total = np.zeros(n_resamples)
            for idx in members:
                dg = d[idx]
                step = max(1, _CHUNK * 64 // idx.size)
                for start in range(0, n_resamples, step):
                    size = min(step, n_resamples - start)
                    pick = boot_rng.integers(0, idx.size, size=(size, idx.size))
                    total[start : start + size] += dg[pick].mean(axis=1)
            ci = _percentile_ci(total / len(uniq), confidence)
    macro_a = float(np.mean([va[idx].mean() for idx in members]))
    macro_b = float(np.mean([vb[idx].mean() for idx in members]))
    return SignificanceResult(
        n=len(qids),
        mean_a=macro_a,
        mean_b=macro_b,
        delta=float(np.mean([d[idx].mean() for idx in members])),
        p_ttest=None,
        p_permutation=p_perm,
        ci_low=ci[0],
        ci_high=ci[1],
        n_nonzero=int(np.count_nonzero(d)),
        exact=exact,
        n_resamples=n_resamples,
        confidence=confidence,
    )


def group_gap_test(
    gains: Mapping[str, float],
    group_of: Mapping[str, str],
    *,
    max_enumerate: int = 200_000,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Is the mean gain of the ``low`` units different from that of the ``high`` ones? (units: languages)

    Statistic: mean(low gains) − mean(high gains). Null: group labels are exchangeable among
    languages; the two-sided p is the share of label assignments (same group sizes) whose |statistic|
    is at least the observed one — exact by enumeration when there are at most ``max_enumerate``
    assignments, else Monte Carlo with Phipson & Smyth's (1 + count) / (1 + n). ``None`` when a
    group is empty.

    xqg's own code, not ``scipy.stats.permutation_test``: scipy refuses a group of one unit, and
    its relative tie tolerance drops assignments whose statistic equals a near-zero observed one
    (a reported threshold-sensitivity p of 1.0 became 0.985). Elsewhere the two agree exactly,
    which ``tests/test_significance.py`` checks with scipy as the oracle.
    """
    langs = sorted(gains)
    low = [x for x in langs if group_of[x] == "low"]
    n, n_low = len(langs), len(low)
    if n_low == 0 or n_low == n:
        return None
    g = np.array([gains[x] for x in langs], dtype=float)
    total = float(g.sum())

    def stat(low_sum: float, k: int) -> float:
        return low_sum / k - (total - low_sum) / (n - k)

    observed = stat(float(sum(gains[x] for x in low)), n_low)
    tol = 1e-12 * max(1.0, float(np.abs(g).sum()))
    n_assign = math.comb(n, n_low)
    if n_assign <= max_enumerate:
        count = sum(
            1
            for c in combinations(range(n), n_low)
            if abs(stat(float(g[list(c)].sum()), n_low)) >= abs(observed) - tol
        )
        p, exact, used = count / n_assign, True, n_assign
    else:
        rng = np.random.default_rng(seed)
        count = 0
        for _ in range(n_resamples):
            pick = rng.choice(n, size=n_low, replace=False)
            count += abs(stat(float(g[pick].sum()), n_low)) >= abs(observed) - tol
        p, exact, used = (1 + count) / (1 + n_resamples), False, n_resamples
    return {
        "gap_low_minus_high": observed,
        "p": p,
        "exact": exact,
        "n_assignments": used,
        "min_p": (1 / n_assign) if exact else None,
        "n_low": n_low,
        "n_high": n - n_low,
    }
