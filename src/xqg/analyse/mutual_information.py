"""Mutual information between English and target-language question embeddings.

Research question: does augmentation / fine-tuning / distillation make an encoder carry more
information shared between a question and its translation — i.e. raise MI(E_en; E_X) where
``E_en`` and ``E_X`` are the query-tower embeddings of the same question in English and in X?

Parallel question sets: MKQA (1,758 questions × 12 languages) and XQuAD (1,190 × 12). Four views,
because no single MI estimate in 384 dimensions from ~2,000 pairs is trustworthy on its own:

* **InfoNCE lower bound** (van den Oord et al. 2018; Poole et al. 2019): with the critic
  ``s_ij / τ`` (``s`` = cosine), ``I ≥ log N + mean_i log softmax_j(s_ij / τ)[i]``. It is a valid
  lower bound for any fixed τ and is capped at ``log N`` (so it saturates when translations are
  easy to match). It is reported at a fixed τ (0.01, e5's training temperature) and as the max over
  a τ grid; choosing τ on the same pairs makes the max slightly optimistic (a selection effect).
  A badly scaled critic gives a *negative* (loose) bound — e.g. small τ on unrelated vectors.
* **KSG** (Kraskov, Stögbauer & Grassberger 2004, algorithm 1), a k-NN estimator, on a PCA-reduced
  space (default 8 components per side, k = 3). k-NN estimators break down in hundreds of
  dimensions, hence the reduction; by the data-processing inequality MI of the reduced pair is at
  most MI of the full embeddings, so this estimates a lower bound on the information carried by
  the top directions. Reported with a shuffled-pairs control (true MI 0) to show the bias. KSG
  also underestimates strong dependence in many joint dimensions (about −15 % already for 4 + 4
  Gaussian dimensions at n = 2,000; more at 8 + 8), so compare models at equal settings rather
  than reading the absolute value as the MI.
* **Linear CKA** (Kornblith et al. 2019) between the two embedding matrices — a similarity of
  representational geometry, not MI, but invariant to rotation and scale like MI's invariance to
  re-parametrisation. Plain linear CKA is biased upwards by about ``d / (n + d)`` for unrelated
  data, so the debiased estimator (unbiased HSIC, Song et al. 2012) is reported next to it.
* **Translation retrieval top-1**: share of English questions whose nearest X question (cosine)
  is their translation — the interpretable companion of the InfoNCE bound.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import write_analysis
from xqg.errors import XqgError
from xqg.io import atomic_path

NAME = "mutual-information"
QUESTION = (
    "Does augmentation / fine-tuning / distillation raise the mutual information between English and "
    "target-language question embeddings (parallel questions, query tower)?"
)
DATASETS = ("mkqa", "xquad")
#: e5's InfoNCE training temperature (its model card: "we use a low temperature 0.01"), which is
#: why its cosines crowd into 0.7–1.0; a critic at a higher τ is needlessly loose for e5.
DEFAULT_TAU = 0.01
DEFAULT_TAUS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
#: Estimator keys in the output, with how each is shown.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "ksg": ("KSG MI (nats)", ".3f"),
    "ksg_shuffled": ("KSG MI, shuffled pairs (nats; true value 0)", ".3f"),
    "infonce": ("InfoNCE bound at fixed τ (nats)", ".3f"),
    "infonce_max": ("InfoNCE bound, max over τ grid (nats; optimistic)", ".3f"),
    "cka": ("linear CKA", ".3f"),
    "cka_debiased": ("debiased linear CKA", ".3f"),
    "top1": ("en→X translation retrieval top-1", ".3f"),
}


# -- estimators ----------------------------------------------------------------------------------


def _pair(x: np.ndarray, y: np.ndarray, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
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


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def cosine_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``s_ij = cos(x_i, y_j)`` in float64."""
    x, y = _pair(x, y, min_rows=1)
    return _unit_rows(x) @ _unit_rows(y).T


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

    x, y = _pair(x, y, min_rows=k + 2)
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
    x, y = _pair(x, y, min_rows=k + 2)
    return ksg_mi(pca_reduce(x, d), pca_reduce(y, d), k, seed=seed)


def linear_cka(x: np.ndarray, y: np.ndarray, *, debiased: bool = False) -> float:
    """Linear CKA between two paired embedding matrices (rows = the same items).

    Plain: ``‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F)`` on column-centred matrices, computed in
    feature space (cost d², not n²). ``debiased``: the same ratio of unbiased HSIC estimates
    (Song et al. 2012) on the linear Gram matrices, whose expectation is 0 for independent
    sides — plain CKA is about ``d / (n + d)`` there; needs n ≥ 4 and costs n².
    """
    x, y = _pair(x, y, min_rows=4 if debiased else 2)
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


@dataclass(frozen=True)
class Settings:
    """Estimator settings shared by every language pair of one run."""

    tau: float = DEFAULT_TAU
    taus: tuple[float, ...] = DEFAULT_TAUS
    pca_dim: int = 8
    k: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        # Checked before anything is encoded: a typo must not cost an encoding run.
        bad = [t for t in (self.tau, *self.taus) if not (t > 0 and math.isfinite(t))]
        if bad or not self.taus:
            raise XqgError(f"temperatures must be positive and finite (and the grid non-empty), got {bad}")
        if self.pca_dim < 1:
            raise XqgError(f"PCA components must be at least 1, got {self.pca_dim}")
        if self.k < 1:
            raise XqgError(f"KSG k must be at least 1, got {self.k}")


def estimate_pair(x: np.ndarray, y: np.ndarray, settings: Settings = Settings()) -> dict[str, Any]:
    """Every estimator for one paired sample ``(x_i, y_i)`` (English, language X)."""
    x, y = _pair(x, y, min_rows=max(settings.k + 2, settings.pca_dim + 1, 4))
    curve = infonce_curve(x, y, tuple(dict.fromkeys((settings.tau, *settings.taus))))
    best_tau = max(curve, key=curve.__getitem__)
    perm = np.random.default_rng(settings.seed).permutation(x.shape[0])
    return {
        "ksg": ksg_pca_mi(x, y, settings.pca_dim, settings.k, seed=settings.seed),
        "ksg_shuffled": ksg_pca_mi(x, y[perm], settings.pca_dim, settings.k, seed=settings.seed),
        "infonce": curve[settings.tau],
        "infonce_max": curve[best_tau],
        "infonce_best_tau": best_tau,
        "infonce_curve": {f"{t:g}": v for t, v in curve.items()},
        "cka": linear_cka(x, y),
        "cka_debiased": linear_cka(x, y, debiased=True),
        "top1": translation_top1(x, y),
    }


# -- data and models -----------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """``LABEL=SPEC[@PASSAGE_SPEC]``; only the query tower (SPEC) is used here."""

    label: str
    model: str
    passage_model: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        label, sep, rest = text.partition("=")
        model, _, passage = rest.partition("@")
        if not sep or not label or not model:
            raise XqgError(f"expected LABEL=SPEC[@PASSAGE_SPEC], got '{text}'")
        return cls(label, model, passage or None)


@dataclass
class ParallelQuestions:
    """The same questions in English and other languages, row ``i`` = question ``ids[i]``."""

    dataset: str
    split: str
    ids: list[str]
    texts: dict[str, list[str]]  # lang → texts, "en" included

    @property
    def langs(self) -> list[str]:
        return [lang for lang in self.texts if lang != "en"]


def load_parallel(
    dataset: str,
    langs: Sequence[str] | None = None,
    *,
    split: str = "all",
    limit: int | None = None,
    data_dir: str | Path | None = None,
) -> ParallelQuestions:
    """English plus ``langs`` (default: every other language of the set) of MKQA or XQuAD.

    ``split`` selects XQuAD questions by article split (MKQA has only ``all``); ``limit`` keeps the
    first N question ids in file order (quick runs, tests).
    """
    if limit is not None and limit < 2:
        raise XqgError(f"--limit must be at least 2, got {limit}")
    if dataset == "mkqa":
        from xqg.data.benchmarks.mkqa import MKQA_LANGS, load_mkqa

        if split != "all":
            raise XqgError(f"MKQA has no '{split}' split; use --split all")
        want = [lang for lang in (langs or MKQA_LANGS) if lang != "en"]
        data = load_mkqa(["en", *want], data_dir)
        ids = list(data["en"])[:limit]
        texts = {lang: [data[lang][i] for i in ids] for lang in data}
    elif dataset == "xquad":
        from xqg.data.benchmarks.xquad import XQUAD_LANGS, load_xquad

        want = [lang for lang in (langs or XQUAD_LANGS) if lang != "en"]
        bench = load_xquad(["en", *want], split, data_dir)
        by_lang = {
            lang: {q.id.rsplit("-", 1)[0]: q.text for q in bench.queries[lang]} for lang in bench.langs
        }
        ids = list(by_lang["en"])[:limit]
        texts = {lang: [by_lang[lang][i] for i in ids] for lang in bench.langs}
    else:
        raise XqgError(f"unknown dataset '{dataset}'; valid: {', '.join(DATASETS)}")
    if not want:
        raise XqgError("no target language other than English selected")
    if len(ids) < 2:
        raise XqgError(f"{dataset} ({split}) has fewer than 2 parallel questions")
    texts = {"en": texts["en"], **{lang: texts[lang] for lang in want}}
    return ParallelQuestions(dataset, split, ids, texts)


def encode_questions(
    spec: ModelSpec,
    questions: ParallelQuestions,
    *,
    dtype: str = "float32",
    batch_size: int = 64,
    max_length: int = 64,
    device: str = "auto",
    show_progress: bool = True,
) -> dict[str, np.ndarray]:
    """Query-tower embeddings of every language (English once); float32 (n, dim) per language."""
    from xqg.config import EncoderConfig
    from xqg.models.encoder import BiEncoder
    from xqg.progress import progress_bar

    try:
        cfg = EncoderConfig(
            model=spec.model, dtype=dtype, batch_size=batch_size, query_max_length=max_length, device=device
        )
    except ValueError as e:  # pydantic: a bad dtype / batch size from the command line
        raise XqgError(f"{spec.label}: bad encoder settings: {e}") from None
    encoder = BiEncoder(cfg)
    total = sum(len(t) for t in questions.texts.values())
    bar = progress_bar(total=total, desc=f"encode {spec.label}", unit="q", disable=not show_progress)
    try:
        return {
            lang: encoder.encode_queries(texts, progress=bar.update)
            for lang, texts in questions.texts.items()
        }
    finally:
        bar.close()


# -- the analysis --------------------------------------------------------------------------------


def analyse_embeddings(
    embeddings: dict[str, dict[str, np.ndarray]], settings: Settings = Settings()
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{model: {lang: estimates}}`` from ``{model: {lang: (n, d) array}}`` (English under "en")."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for label, by_lang in embeddings.items():
        if "en" not in by_lang:
            raise XqgError(f"{label}: no English embeddings")
        out[label] = {
            lang: estimate_pair(by_lang["en"], e, settings) for lang, e in by_lang.items() if lang != "en"
        }
    return out


def tables(results: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{estimator: {model: {lang: value, "mean": macro mean}}}``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in ESTIMATORS:
        out[key] = {}
        for label, by_lang in results.items():
            row = {lang: float(r[key]) for lang, r in by_lang.items()}
            row["mean"] = float(np.mean(list(row.values())))
            out[key][label] = row
    return out


def headline(tabs: dict[str, Any], log_n: float, tau: float, n: int, dataset: str) -> str:
    """One line from the data: the reference's estimates, and how every other model moves them."""
    labels = list(tabs["ksg"])
    ref = labels[0]
    langs = [lang for lang in tabs["ksg"][ref] if lang != "mean"]

    def describe(label: str) -> str:
        ksg = tabs["ksg"][label]
        lo = min(langs, key=lambda lang: ksg[lang])
        hi = max(langs, key=lambda lang: ksg[lang])
        return (
            f"KSG {ksg['mean']:.2f} nats (shuffled control {tabs['ksg_shuffled'][label]['mean']:.2f}; "
            f"{lo} {ksg[lo]:.2f} … {hi} {ksg[hi]:.2f}), "
            f"InfoNCE@τ={tau:g} {tabs['infonce'][label]['mean']:.2f} of log N = {log_n:.2f}, "
            f"CKA {tabs['cka'][label]['mean']:.3f} (debiased "
            f"{tabs['cka_debiased'][label]['mean']:.3f}), top-1 {tabs['top1'][label]['mean']:.3f}"
        )

    text = (
        f"{dataset}, {n} parallel questions, en↔X over {len(langs)} languages (mean): {ref}: {describe(ref)}"
    )
    if len(labels) == 1:
        return text + "; one model only, so no comparison yet"
    parts = []
    for label in labels[1:]:
        moves = []
        for key, name in (("ksg", "KSG"), ("infonce", "InfoNCE"), ("cka", "CKA"), ("top1", "top-1")):
            up = sum(1 for lang in langs if tabs[key][label][lang] > tabs[key][ref][lang])
            delta = tabs[key][label]["mean"] - tabs[key][ref]["mean"]
            moves.append(f"{name} {delta:+.3f} (up in {up}/{len(langs)})")
        parts.append(f"{label} vs {ref}: " + ", ".join(moves))
    return text + "; " + "; ".join(parts)


def plot(tabs: dict[str, Any], path: Path, *, log_n: float, tau: float) -> None:
    """Grouped bars per language (models side by side), one panel per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("ksg", "KSG MI (nats); × = shuffled-pairs control"),
        ("infonce", f"InfoNCE bound at τ = {tau:g} (nats); line = log N"),
        ("infonce_max", "InfoNCE bound, max over τ (nats)"),
        ("cka", "linear CKA"),
        ("cka_debiased", "debiased linear CKA"),
        ("top1", "en→X translation top-1"),
    ]
    labels = list(tabs["ksg"])
    langs = [lang for lang in tabs["ksg"][labels[0]] if lang != "mean"]
    x = np.arange(len(langs))
    width = 0.8 / len(labels)
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for m, label in enumerate(labels):
            offs = x - 0.4 + width * (m + 0.5)
            ax.bar(offs, [tabs[key][label][lang] for lang in langs], width, label=label)
            if key == "ksg":
                ax.scatter(
                    offs,
                    [tabs["ksg_shuffled"][label][lang] for lang in langs],
                    marker="x",
                    color="black",
                    s=14,
                    zorder=3,
                )
        if key in ("infonce", "infonce_max"):
            ax.axhline(log_n, color="grey", ls="--", lw=1)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(x, langs, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _markdown_table(tab: dict[str, dict[str, float]], fmt: str) -> str:
    labels = list(tab)
    ref = labels[0]
    head = ["lang", ref] + [x for lb in labels[1:] for x in (lb, "Δ")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang in tab[ref]:
        row = [f"**{lang}**" if lang == "mean" else lang, format(tab[ref][lang], fmt)]
        for lb in labels[1:]:
            row += [format(tab[lb][lang], fmt), f"{tab[lb][lang] - tab[ref][lang]:+{fmt}}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def run_mutual_information(
    models: Sequence[ModelSpec],
    out_dir: str | Path,
    *,
    dataset: str = "mkqa",
    langs: Sequence[str] | None = None,
    split: str = "all",
    limit: int | None = None,
    settings: Settings = Settings(),
    dtype: str = "float32",
    batch_size: int = 64,
    max_length: int = 64,
    device: str = "auto",
    command: str | None = None,
    show_progress: bool = True,
    encode: Callable[..., dict[str, np.ndarray]] = encode_questions,
) -> Path:
    """Encode the parallel questions with every model, estimate, and write the analysis folder."""
    if not models:
        raise XqgError("give at least one --model LABEL=SPEC")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise XqgError(f"model labels must be unique, got {', '.join(labels)}")
    from xqg.config import EncoderConfig

    for m in models:  # settings errors before any (slow) encoding
        try:
            EncoderConfig(model=m.model, dtype=dtype, batch_size=batch_size, query_max_length=max_length)
        except ValueError as e:
            raise XqgError(f"{m.label}: bad encoder settings: {e}") from None
    questions = load_parallel(dataset, langs, split=split, limit=limit)
    n = len(questions.ids)
    if n < max(settings.pca_dim + 1, settings.k + 2, 4):
        raise XqgError(
            f"{n} questions are too few for {settings.pca_dim} PCA components and k = {settings.k}"
        )
    embeddings: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, float] = {}
    for spec in models:
        t0 = time.perf_counter()
        embeddings[spec.label] = encode(
            spec,
            questions,
            dtype=dtype,
            batch_size=batch_size,
            max_length=max_length,
            device=device,
            show_progress=show_progress,
        )
        seconds[f"encode {spec.label}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = analyse_embeddings(embeddings, settings)
    seconds["estimate"] = time.perf_counter() - t0
    tabs = tables(results)
    log_n = math.log(n)
    head = headline(tabs, log_n, settings.tau, n, dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure = "mutual_information.png"
    plot(tabs, out / figure, log_n=log_n, tau=settings.tau)
    data = {
        "dataset": dataset,
        "split": split,
        "n": n,
        "log_n": log_n,
        "langs": questions.langs,
        "models": {
            m.label: {
                "model": m.model,
                "passage_model": m.passage_model,
                "dim": int(embeddings[m.label]["en"].shape[1]),
            }
            for m in models
        },
        "settings": {
            "tau": settings.tau,
            "taus": list(settings.taus),
            "pca_dim": settings.pca_dim,
            "pca": "per side, whitened",
            "k": settings.k,
            "seed": settings.seed,
            "dtype": dtype,
            "max_length": max_length,
        },
        "tables": tabs,
        "per_pair": results,
        "seconds": seconds,
        "headline": head,
    }
    body = [
        f"Dataset: {dataset} ({split}), {n} questions parallel in English and {', '.join(questions.langs)}; "
        f"query tower only, `{dtype}`, max length {max_length}. log N = {log_n:.3f} nats caps the InfoNCE "
        f"bound. KSG: per-side PCA to {settings.pca_dim} whitened components, k = {settings.k}, seed "
        f"{settings.seed}; the shuffled-pairs row estimates the estimator's bias at zero MI. τ grid for the "
        f"max: {', '.join(f'{t:g}' for t in settings.taus)} (picking τ on the same data: optimistic).",
        "",
    ]
    edge = [
        f"{label}/{lang}"
        for label, by_lang in results.items()
        for lang, r in by_lang.items()
        if r["infonce_best_tau"] in (min(settings.taus), max(settings.taus))
    ]
    if edge:
        body += [
            f"Note: the best τ lies on the edge of the grid for {len(edge)} pair(s) ({', '.join(edge[:6])}"
            f"{', …' if len(edge) > 6 else ''}); the max-over-τ bound may be higher with a wider grid.",
            "",
        ]
    for key, (title, fmt) in ESTIMATORS.items():
        body += [f"## {title}", "", _markdown_table(tabs[key], fmt), ""]
    return write_analysis(
        out,
        name=NAME,
        question=QUESTION,
        headline=head,
        body_md="\n".join(body),
        data=data,
        figures=[figure],
        command=command,
        config={
            "models": [
                f"{m.label}={m.model}" + (f"@{m.passage_model}" if m.passage_model else "") for m in models
            ],
            "dataset": dataset,
            "split": split,
            "langs": questions.langs,
            "limit": limit,
            **data["settings"],
        },
        counts={"questions": n, "languages": len(questions.langs), "models": len(models)},
    )
