"""Mutual-information estimators between paired embedding matrices (numpy in, floats out).

Each estimator is a small named function; :mod:`xqg.analyse.mutual_information` runs them over
languages and systems and renders the analysis. scipy does the parts it has: k-d trees and
neighbour counts (``scipy.spatial.cKDTree``), ``digamma`` and ``logsumexp``. What scipy has no
function for is written here: the KSG estimator itself (Kraskov, Stögbauer & Grassberger 2004,
algorithm 1), the InfoNCE bound (van den Oord et al. 2018; Poole et al. 2019) in its paired and
retrieval forms, and linear CKA with its debiased form (Kornblith et al. 2019; Song et al. 2012).
Tests check them against the Gaussian closed form, hand computations and the invariances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from xqg.errors import XqgError

#: e5's InfoNCE training temperature (its model card: "we use a low temperature 0.01"), which is
#: why its cosines crowd into 0.7–1.0; a critic at a higher τ is needlessly loose for e5.
DEFAULT_TAU = 0.01
DEFAULT_TAUS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


# -- estimators ----------------------------------------------------------------------------------


def paired_rows(x: np.ndarray, y: np.ndarray, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 matrices with the same number (≥ ``min_rows``) of finite rows; 1-d means one column."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2:
        raise XqgError(f"expected 2-d arrays, got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise XqgError(f"paired samples need the same number of rows, got {x.shape[0]} and {y.shape[0]}")
    if x.shape[0] < min_rows:
        raise XqgError(f"need at least {min_rows} paired rows, got {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise XqgError("embeddings contain NaN or infinite values")
    return x, y


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float64); a zero row stays zero, so its cosines are 0."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``s_ij = cos(x_i, y_j)`` in float64."""
    x, y = paired_rows(x, y, min_rows=1)
    return unit_rows(x) @ unit_rows(y).T


def infonce_bound(x: np.ndarray, y: np.ndarray, tau: float = DEFAULT_TAU) -> float:
    """``log N + mean_i log softmax_j(s_ij / τ)[i]`` in nats, ``s`` = cosine; always ≤ log N."""
    return infonce_curve(x, y, (tau,))[tau]


def infonce_curve(x: np.ndarray, y: np.ndarray, taus: Sequence[float] = DEFAULT_TAUS) -> dict[float, float]:
    """The InfoNCE bound at every τ in ``taus`` (one cosine matrix shared by all τ)."""
    from scipy.special import logsumexp

    if not taus or any(not (t > 0 and math.isfinite(t)) for t in taus):
        raise XqgError(f"temperatures must be positive and finite, got {list(taus)}")
    s = cosine_matrix(x, y)
    n = s.shape[0]
    diag = np.diag(s)
    out = {}
    for tau in taus:
        log_softmax_diag = diag / tau - logsumexp(s / tau, axis=1)
        # log softmax ≤ 0 exactly; rounding must not push the bound above its cap.
        out[float(tau)] = float(min(math.log(n), math.log(n) + log_softmax_diag.mean()))
    return out


def pca_reduce(x: np.ndarray, d: int, *, whiten: bool = True) -> np.ndarray:
    """Project ``x`` on its top ``d`` principal components (deterministic, sign-fixed).

    Exact SVD of the centred data — no randomised solver, so the result depends only on ``x``.
    Each component's sign is fixed so its largest-magnitude loading is positive. ``whiten`` scales
    each component to unit variance: a per-side linear invertible map of the reduced space leaves
    MI unchanged, and equal scales are what the max-norm neighbourhoods of KSG work best with.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise XqgError(f"expected a 2-d array, got shape {x.shape}")
    n, dim = x.shape
    if not 1 <= d <= min(dim, n - 1):
        raise XqgError(f"PCA components must be in [1, {min(dim, n - 1)}] for {n} rows × {dim} dims, got {d}")
    xc = x - x.mean(axis=0)
    _, sv, vt = np.linalg.svd(xc, full_matrices=False)
    comps = vt[:d]
    signs = np.sign(comps[np.arange(d), np.abs(comps).argmax(axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
    z = xc @ comps.T
    if whiten:
        std = sv[:d] / math.sqrt(max(n - 1, 1))
        z = np.divide(z, std, out=np.zeros_like(z), where=std > 0)
    return z


def ksg_mi(
    x: np.ndarray,
    y: np.ndarray,
    k: int = 3,
    *,
    seed: int = 0,
    standardise: bool = True,
    jitter: float = 1e-10,
) -> float:
    """Kraskov–Stögbauer–Grassberger estimator (algorithm 1) of MI(X; Y) in nats.

    ``I = ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩`` where, for each point, ε is the max-norm
    distance to its k-th neighbour in the joint space and ``n_x`` (``n_y``) counts the other points
    strictly closer than ε in the marginal space. Coordinates are standardised (Kraskov's advice;
    MI is unchanged) and a seeded jitter of ``jitter`` × std breaks ties from duplicate rows, which
    would make ε = 0. Given the same inputs and seed the result is identical.
    """
    from scipy.spatial import cKDTree
    from scipy.special import digamma

    x, y = paired_rows(x, y, min_rows=k + 2)
    if k < 1:
        raise XqgError(f"k must be at least 1, got {k}")
    n = x.shape[0]
    rng = np.random.default_rng(seed)

    def prep(a: np.ndarray) -> np.ndarray:
        std = a.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        if standardise:
            a = (a - a.mean(axis=0)) / std
            std = np.ones_like(std)
        return a + jitter * std * rng.standard_normal(a.shape)

    xs, ys = prep(x), prep(y)
    joint = np.hstack([xs, ys])
    dist, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf)
    eps = dist[:, k]
    if np.any(eps <= 0):
        raise XqgError("KSG: zero k-NN distance (duplicate points); increase the jitter")
    radius = np.nextafter(eps, 0)  # query_ball_point counts ≤ r; KSG counts < ε
    nx = cKDTree(xs).query_ball_point(xs, r=radius, p=np.inf, return_length=True) - 1
    ny = cKDTree(ys).query_ball_point(ys, r=radius, p=np.inf, return_length=True) - 1
    return float(digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1)))


def ksg_pca_mi(x: np.ndarray, y: np.ndarray, d: int = 8, k: int = 3, *, seed: int = 0) -> float:
    """KSG on each side's own top-``d`` principal components (whitened).

    Per-side rather than joint PCA: MI is invariant to invertible maps of each variable
    separately, so the two sides need no shared coordinates, and each language's reduction keeps
    the directions in which *its* questions vary. A joint fit on the stacked matrices would spend
    components on the offset between the two languages' means — constant within each side, so
    carrying no information — and would tie the reduction to whether the model shares one space
    across languages, which is part of what is being measured.
    """
    x, y = paired_rows(x, y, min_rows=k + 2)
    return ksg_mi(pca_reduce(x, d), pca_reduce(y, d), k, seed=seed)


def linear_cka(x: np.ndarray, y: np.ndarray, *, debiased: bool = False) -> float:
    """Linear CKA between two paired embedding matrices (rows = the same items).

    Plain: ``‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F)`` on column-centred matrices, computed in
    feature space (cost d², not n²). ``debiased``: the same ratio of unbiased HSIC estimates
    (Song et al. 2012) on the linear Gram matrices, whose expectation is 0 for independent
    sides — plain CKA is about ``d / (n + d)`` there; needs n ≥ 4 and costs n².
    """
    x, y = paired_rows(x, y, min_rows=4 if debiased else 2)
    if debiased:
        k, lam = x @ x.T, y @ y.T
        hxy, hxx, hyy = _hsic_u(k, lam), _hsic_u(k, k), _hsic_u(lam, lam)
        denom = math.sqrt(hxx * hyy) if hxx > 0 and hyy > 0 else 0.0
        return float(hxy / denom) if denom > 0 else 0.0
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
    num = np.linalg.norm(yc.T @ xc) ** 2
    denom = np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)
    return float(num / denom) if denom > 0 else 0.0


def _hsic_u(k: np.ndarray, lam: np.ndarray) -> float:
    """Unbiased HSIC (Song et al. 2012, eq. 5) of two Gram matrices; the diagonal is ignored."""
    n = k.shape[0]
    kt, lt = k.copy(), lam.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    k1, l1 = kt.sum(axis=0), lt.sum(axis=0)
    term = float(np.sum(kt * lt))  # tr(K̃ L̃) for symmetric matrices
    term += kt.sum() * lt.sum() / ((n - 1) * (n - 2))
    term -= 2.0 * float(k1 @ l1) / (n - 2)
    return term / (n * (n - 3))


def translation_top1(x: np.ndarray, y: np.ndarray) -> float:
    """Share of rows ``i`` whose nearest ``y`` row by cosine is ``y_i`` (ties count as misses)."""
    s = cosine_matrix(x, y)
    diag = np.diag(s).copy()
    np.fill_diagonal(s, -np.inf)
    return float(np.mean(diag > s.max(axis=1))) if s.shape[1] > 1 else 1.0


# -- question ↔ gold passage ---------------------------------------------------------------------


def _query_passage_cosines(queries: np.ndarray, passages: np.ndarray) -> np.ndarray:
    """``s_ij = cos(q_i, p_j)`` in float64 for n questions against P passages (n ≠ P allowed)."""
    q = np.asarray(queries, dtype=np.float64)
    p = np.asarray(passages, dtype=np.float64)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise XqgError(f"queries and passages must be 2-d with one dimension, got {q.shape} and {p.shape}")
    if not (np.isfinite(q).all() and np.isfinite(p).all()):
        raise XqgError("embeddings contain NaN or infinite values")
    return unit_rows(q) @ unit_rows(p).T


def gold_rows(gold: np.ndarray | Sequence[int], n: int, n_passages: int) -> np.ndarray:
    """``gold`` checked as ``n`` passage rows in ``[0, n_passages)``, as int64."""
    g = np.asarray(gold)
    if g.shape != (n,) or (n and not np.issubdtype(g.dtype, np.integer)):
        raise XqgError(f"gold must be {n} integer passage rows, got shape {g.shape}")
    if n and (g.min() < 0 or g.max() >= n_passages):
        raise XqgError(f"gold rows must lie in [0, {n_passages}); got {g.min()}..{g.max()}")
    return g.astype(np.int64)


def retrieval_infonce_curve(
    queries: np.ndarray,
    passages: np.ndarray,
    gold: np.ndarray | Sequence[int],
    taus: Sequence[float] = DEFAULT_TAUS,
) -> dict[float, float]:
    """Retrieval InfoNCE ``log P + mean_i log softmax_j(s_ij / τ)[g(i)]`` at every τ, in nats.

    ``s_ij`` = cosine of question ``i`` and passage ``j``; the softmax runs over all ``P`` rows of
    ``passages`` — the *distinct* passages of the corpus, not one column per question — and
    ``g(i)`` is the row of question ``i``'s gold passage. That is the standard retrieval form: it
    stays well defined when several questions share one gold passage (a per-question column
    layout, as in :func:`infonce_curve`, would count a shared passage as its own negative). The
    value is capped at ``log P``, reached when every question's gold has all the probability.

    As a bound: ``softmax`` is a model ``q(g | question)``, so Barber & Agakov give
    ``I(Q; G) ≥ H(G) + mean log q(g(i) | q_i)`` for the gold-passage variable ``G``. When the gold
    passages are uniform over the corpus ``H(G) = log P`` and this *is* that bound; when the
    questions' golds cover only part of the corpus (XQuAD test questions use 1/5 of its
    paragraphs) ``log P`` exceeds ``H(G)`` and the value overstates the bound by
    ``log P − H(G)`` ≥ 0 — see :func:`gold_entropy`; the offset is the same for every system
    evaluated on the same questions and corpus, so differences between systems are unaffected.
    """
    from scipy.special import logsumexp

    if not taus or any(not (t > 0 and math.isfinite(t)) for t in taus):
        raise XqgError(f"temperatures must be positive and finite, got {list(taus)}")
    s = _query_passage_cosines(queries, passages)
    n, n_passages = s.shape
    if n_passages < 2:
        raise XqgError("need at least 2 passages: the softmax needs a negative")
    g = gold_rows(gold, n, n_passages)
    gold_s = s[np.arange(n), g]
    log_p = math.log(n_passages)
    out = {}
    for tau in taus:
        log_softmax_gold = gold_s / tau - logsumexp(s / tau, axis=1)
        out[float(tau)] = float(min(log_p, log_p + log_softmax_gold.mean()))
    return out


def gold_entropy(gold: np.ndarray | Sequence[int]) -> float:
    """Plug-in entropy (nats) of the gold-passage distribution of a set of questions.

    The ceiling on ``I(Q; G)``: question embeddings can tell apart at most the passages the
    questions point to. With ``m`` gold passages of equal question counts it is ``log m``.
    """
    _, counts = np.unique(np.asarray(gold), return_counts=True)
    if counts.size == 0:
        raise XqgError("no gold passages")
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def retrieval_top1(queries: np.ndarray, passages: np.ndarray, gold: np.ndarray | Sequence[int]) -> float:
    """Share of questions whose gold passage is the strict cosine top-1 (ties count as misses)."""
    s = _query_passage_cosines(queries, passages)
    g = gold_rows(gold, s.shape[0], s.shape[1])
    gold_s = s[np.arange(s.shape[0]), g].copy()
    s[np.arange(s.shape[0]), g] = -np.inf
    return float(np.mean(gold_s > s.max(axis=1))) if s.shape[1] > 1 else 1.0
