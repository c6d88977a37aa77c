"""Paired significance tests: degenerate cases, hand formulas, exact permutation p-values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from xqg.errors import XqgError
from xqg.evaluate.significance import macro_paired_test, paired_test


def pair(diffs, base=0.5):
    """Per-query scores a, b with a - b = diffs."""
    b = {f"q{i}": base for i in range(len(diffs))}
    a = {f"q{i}": base + d for i, d in enumerate(diffs)}
    return a, b


def test_identical_scores_give_p_one_not_nan():
    a = {"q1": 0.3, "q2": 0.7, "q3": 1.0}
    r = paired_test(a, dict(a))
    assert r.p_ttest == 1.0 and r.p_permutation == 1.0
    assert (r.ci_low, r.ci_high) == (0.0, 0.0)
    assert r.delta == 0.0 and r.n == 3 and r.n_nonzero == 0


def test_clear_shift_gives_tiny_p():
    rng = np.random.default_rng(5)
    b = {f"q{i}": float(x) for i, x in enumerate(rng.uniform(0, 0.5, 60))}
    a = {q: v + 0.3 + float(rng.normal(0, 0.05)) for q, v in b.items()}
    r = paired_test(a, b)
    assert r.p_ttest < 1e-20
    assert r.p_permutation == pytest.approx(1 / 10_001)  # Monte-Carlo floor: nothing as extreme
    assert r.exact is False
    assert r.ci_low < r.delta < r.ci_high and r.ci_low > 0.25
    assert r.delta == pytest.approx(r.mean_a - r.mean_b)


def test_ttest_equals_hand_formula():
    diffs = [1.0, 2.0, 3.0, 5.0, -0.5]
    a, b = pair(diffs)
    d = np.array(diffs)
    n = d.size
    t = d.mean() / (d.std(ddof=1) / math.sqrt(n))
    p_hand = 2 * stats.t.sf(abs(t), df=n - 1)
    assert paired_test(a, b, method="ttest").p_ttest == pytest.approx(p_hand, rel=1e-9)


def test_exact_permutation_small_case_by_hand():
    # d = (1, 2, 3): the 8 sign patterns give sums ±6, ±4, ±2, 0, 0; only ±6 reach |6|: p = 2/8.
    a, b = pair([1.0, 2.0, 3.0])
    r = paired_test(a, b, method="permutation")
    assert r.p_permutation == 0.25 and r.exact is True and r.p_ttest is None
    # Zero differences are not enumerated (a flip changes nothing) but count in n.
    a, b = pair([1.0, 2.0, 3.0, 0.0, 0.0])
    r = paired_test(a, b, method="permutation")
    assert r.p_permutation == 0.25 and r.n == 5 and r.n_nonzero == 3
    # d = (1, 1, 1, 1): |sum| ≥ 4 only for all + or all −: 2/16.
    assert paired_test(*pair([1.0] * 4), method="permutation").p_permutation == 0.125
    # Observed sum 0: every pattern is at least as extreme.
    assert paired_test(*pair([1.0, -1.0]), method="permutation").p_permutation == 1.0


def test_exact_vs_monte_carlo_switch():
    a, b = pair([1.0, 2.0, 3.0])
    assert paired_test(a, b, method="permutation", n_resamples=8).exact is True
    r = paired_test(a, b, method="permutation", n_resamples=7)
    assert r.exact is False
    # (1 + count) / (1 + 7) with count in 0..7
    assert r.p_permutation * 8 == pytest.approx(round(r.p_permutation * 8))


def test_monte_carlo_approximates_exact_and_is_seeded():
    rng = np.random.default_rng(0)
    diffs = list(rng.normal(0.1, 0.5, 14))
    a, b = pair(diffs)
    exact = paired_test(a, b, method="permutation", n_resamples=2**14).p_permutation
    mc = paired_test(a, b, method="permutation", n_resamples=10_000, seed=1)
    assert mc.exact is False
    assert mc.p_permutation == pytest.approx(exact, abs=0.02)
    again = paired_test(a, b, method="permutation", n_resamples=10_000, seed=1)
    assert again.p_permutation == mc.p_permutation
    # Dict order does not matter (ids are sorted before sampling).
    a_rev = dict(reversed(list(a.items())))
    assert paired_test(a_rev, b, method="permutation", seed=1).p_permutation == mc.p_permutation


def test_bootstrap_ci_is_seeded_and_independent_of_method():
    rng = np.random.default_rng(3)
    diffs = list(rng.normal(0.05, 0.2, 40))
    a, b = pair(diffs)
    both = paired_test(a, b, seed=7)
    ttest_only = paired_test(a, b, seed=7, method="ttest")
    assert (both.ci_low, both.ci_high) == (ttest_only.ci_low, ttest_only.ci_high)
    assert both.ci_low < both.delta < both.ci_high
    narrow = paired_test(a, b, seed=7, confidence=0.5)
    assert both.ci_low < narrow.ci_low < narrow.ci_high < both.ci_high
    assert paired_test(a, b, confidence=None).ci_low is None


def test_degenerate_constant_and_single_query():
    r = paired_test(*pair([0.25, 0.25, 0.25]))
    assert r.p_ttest == 0.0  # infinite t
    assert r.p_permutation == 0.25  # 2 of 8 patterns
    single = paired_test({"q": 1.0}, {"q": 0.0})
    assert math.isnan(single.p_ttest) and single.p_permutation == 1.0
    assert single.to_dict()["p_ttest"] is None


def test_mismatched_queries_name_the_ids():
    a = {f"q{i}": 1.0 for i in range(10)}
    b = {f"q{i}": 1.0 for i in range(3, 12)}
    with pytest.raises(XqgError, match=r"3 id\(s\) only in a: 'q0', 'q1', 'q2'; 2 id\(s\) only in b: 'q10'"):
        paired_test(a, b)
    with pytest.raises(XqgError, match="at least one query"):
        paired_test({}, {})
    with pytest.raises(XqgError, match="non-finite"):
        paired_test({"q": float("nan")}, {"q": 0.0})
    with pytest.raises(XqgError, match="method"):
        paired_test({"q": 1.0}, {"q": 0.0}, method="wilcoxon")


def test_macro_test_uses_the_macro_statistic():
    # Group A: three queries +1; group B: one query −1. Pooled, the sum is +2 (p = 10/16),
    # but the macro difference is (1 + (−1)) / 2 = 0, so the macro test gives p = 1.
    a = {"a1": 1.0, "a2": 1.0, "a3": 1.0, "b1": 0.0}
    b = {"a1": 0.0, "a2": 0.0, "a3": 0.0, "b1": 1.0}
    groups = {"a1": "A", "a2": "A", "a3": "A", "b1": "B"}
    pooled = paired_test(a, b, method="permutation")
    assert pooled.p_permutation == 10 / 16
    macro = macro_paired_test(a, b, groups)
    assert macro.delta == 0.0 and macro.p_permutation == 1.0 and macro.exact is True
    assert macro.mean_a == pytest.approx(0.5) and macro.mean_b == pytest.approx(0.5)
    assert macro.p_ttest is None
    with pytest.raises(XqgError, match="no group"):
        macro_paired_test(a, b, {"a1": "A"})


def test_macro_bootstrap_ci_brackets_the_macro_delta():
    rng = np.random.default_rng(11)
    a, b, groups = {}, {}, {}
    for g, n, shift in (("ja", 50, 0.2), ("ko", 10, 0.0)):
        for i in range(n):
            qid = f"{g}{i}"
            b[qid] = float(rng.uniform())
            a[qid] = b[qid] + shift + float(rng.normal(0, 0.1))
            groups[qid] = g
    r = macro_paired_test(a, b, groups, n_resamples=2000)
    per_lang = [np.mean([a[q] - b[q] for q in a if groups[q] == g]) for g in ("ja", "ko")]
    assert r.delta == pytest.approx(np.mean(per_lang))
    assert r.ci_low < r.delta < r.ci_high


def _scipy_gap_p(gains: dict, group_of: dict) -> float:
    """The oracle: scipy's exact independent-samples permutation test of |mean(low) − mean(high)|."""
    low = np.array([gains[x] for x in sorted(gains) if group_of[x] == "low"])
    high = np.array([gains[x] for x in sorted(gains) if group_of[x] != "low"])
    res = stats.permutation_test(
        (low, high),
        lambda a, b, axis: np.abs(a.mean(axis=axis) - b.mean(axis=axis)),
        permutation_type="independent",
        n_resamples=np.inf,
        alternative="greater",
        vectorized=True,
    )
    return float(res.pvalue)


@pytest.mark.parametrize("seed", range(40))
def test_group_gap_test_equals_scipys_exact_permutation_test(seed):
    from xqg.evaluate.significance import group_gap_test

    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 12))
    n_low = int(rng.integers(2, n - 1))
    values = rng.integers(-3, 4, n) / 7 if seed % 2 else rng.standard_normal(n)  # ties in half the cases
    gains = {f"l{i:02d}": float(v) for i, v in enumerate(values)}
    group_of = {x: "low" if i < n_low else "high" for i, x in enumerate(gains)}
    got = group_gap_test(gains, group_of)
    assert got["exact"] and got["n_assignments"] == math.comb(n, n_low)
    assert got["p"] == pytest.approx(_scipy_gap_p(gains, group_of), abs=1e-12)
