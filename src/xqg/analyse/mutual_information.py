"""Mutual information between source- and target-language embeddings, in two modes.

Research question: does xQG augmentation (or fine-tuning / distillation) raise the mutual
information between source- and target-language embeddings compared with plain multilingual
fine-tuning? Two modes, because the two kinds of change touch different towers:

* **question ↔ question** (``--model``): MI(E_en; E_X), where ``E_en`` and ``E_X`` are the
  query-tower embeddings of the same question in English and in X. Fine-tuning and distillation
  change the query tower, so this shows them; xQG augmentation does not touch it at all.
* **question ↔ gold passage** (``--system``, :func:`analyse_query_passage`): MI between the
  language-X question embedding and the embedding of its gold *English* passage, read from an
  ``xqg experiment`` folder. Augmentation only changes the passage vectors (fused with generated
  target-language queries), so this is the mode that can show its effect. English questions are
  the monolingual control. Many questions share a passage (≈ 5 per XQuAD paragraph); every
  question is paired with its gold passage's vector, so passage rows repeat. See
  :func:`estimate_query_passage` for how each estimator treats that.

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

The query–passage mode uses the same KSG and CKA settings, a retrieval form of the InfoNCE bound
(softmax over the corpus's distinct passages) and cosine retrieval top-1 in place of translation
top-1.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import ModelSpec, SystemSpec, load_vectors, save_figure, write_analysis
from xqg.errors import XqgError
from xqg.evaluate.mutual_information import (
    DEFAULT_TAU,
    DEFAULT_TAUS,
    gold_entropy,
    gold_rows,
    infonce_curve,
    ksg_pca_mi,
    linear_cka,
    paired_rows,
    retrieval_infonce_curve,
    retrieval_top1,
    translation_top1,
    unit_rows,
)

NAME = "mutual-information"
QUESTION = (
    "Does augmentation / fine-tuning / distillation raise the mutual information between English and "
    "target-language question embeddings (parallel questions, query tower)?"
)
QUESTION_PASSAGE = (
    "Does xQG augmentation raise the mutual information between target-language question embeddings "
    "and the embeddings of their gold English passages, compared with the plain (un-augmented) system?"
)
DATASETS = ("mkqa", "xquad")
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
#: The same for the query–passage mode (``--system``).
PASSAGE_ESTIMATORS: dict[str, tuple[str, str]] = {
    "ksg": ("KSG MI, question ↔ gold passage (nats)", ".3f"),
    "ksg_shuffled": ("KSG MI, shuffled pairs (nats; true value 0)", ".3f"),
    "infonce": ("retrieval InfoNCE at fixed τ: log P + mean log softmax (nats)", ".3f"),
    "infonce_max": ("retrieval InfoNCE, max over τ grid (nats; optimistic)", ".3f"),
    "infonce_ba": ("retrieval bound H(gold) + mean log softmax at fixed τ (nats; valid lower bound)", ".3f"),
    "cka": ("linear CKA, question ↔ gold passage", ".3f"),
    "cka_debiased": ("debiased linear CKA, question ↔ gold passage", ".3f"),
    "top1": ("cosine retrieval top-1 (gold passage ranked first)", ".3f"),
    "gold_cos": ("mean cos(question, gold passage)", ".3f"),
}
#: Table rows that are averages, not languages.
MEAN_ROWS = ("mean", "mean X≠en")


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
    x, y = paired_rows(x, y, min_rows=max(settings.k + 2, settings.pca_dim + 1, 4))
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


def estimate_query_passage(
    queries: np.ndarray,
    passages: np.ndarray,
    gold: np.ndarray | Sequence[int],
    settings: Settings = Settings(),
) -> dict[str, Any]:
    """Every estimator for questions ``queries`` (n, d) against the corpus ``passages`` (P, d).

    Both sides are scaled to unit length first: fused passage vectors ``(1−α)·p + α·Σq`` are not
    unit length, and their length says how many / how aligned the generated queries were rather
    than where the passage points; the analysis is about direction (as the cosine retrieval is).
    KSG and CKA pair each question with its gold passage's vector (row ``gold[i]``), so a passage
    shared by ``m`` questions appears ``m`` times on the passage side — a discrete-valued side,
    for which KSG leans on its seeded tie-breaking jitter; the shuffled-pairs control (questions
    re-paired with other questions' passages, same multiset of passage rows) shows the bias that
    leaves at zero MI. InfoNCE uses the distinct passages (:func:`retrieval_infonce_curve`).
    """
    q = np.asarray(queries, dtype=np.float64)
    p = np.asarray(passages, dtype=np.float64)
    if q.ndim != 2 or p.ndim != 2 or q.shape[1] != p.shape[1]:
        raise XqgError(f"queries and passages must be 2-d with one dimension, got {q.shape} and {p.shape}")
    q, p = unit_rows(q), unit_rows(p)
    g = gold_rows(gold, q.shape[0], p.shape[0])
    y = p[g]
    x, y = paired_rows(q, y, min_rows=max(settings.k + 2, settings.pca_dim + 1, 4))
    curve = retrieval_infonce_curve(q, p, g, tuple(dict.fromkeys((settings.tau, *settings.taus))))
    best_tau = max(curve, key=curve.__getitem__)
    entropy = gold_entropy(g)
    log_p = math.log(p.shape[0])
    perm = np.random.default_rng(settings.seed).permutation(x.shape[0])
    return {
        "n": int(x.shape[0]),
        "passages": int(p.shape[0]),
        "gold_passages": int(np.unique(g).size),
        "log_p": log_p,
        "gold_entropy": entropy,
        "ksg": ksg_pca_mi(x, y, settings.pca_dim, settings.k, seed=settings.seed),
        "ksg_shuffled": ksg_pca_mi(x, y[perm], settings.pca_dim, settings.k, seed=settings.seed),
        "infonce": curve[settings.tau],
        "infonce_max": curve[best_tau],
        "infonce_best_tau": best_tau,
        "infonce_curve": {f"{t:g}": v for t, v in curve.items()},
        "infonce_ba": curve[settings.tau] - (log_p - entropy),
        "cka": linear_cka(x, y),
        "cka_debiased": linear_cka(x, y, debiased=True),
        "top1": retrieval_top1(q, p, g),
        "gold_cos": float(np.einsum("ij,ij->i", x, y).mean()),
    }


# -- data and models -----------------------------------------------------------------------------


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


@dataclass
class QueryPassagePairs:
    """One experiment system's questions and corpus: row ``i`` of ``queries`` has gold passage
    row ``gold[i]`` of ``passages`` and language ``langs[i]``."""

    spec: SystemSpec
    qids: list[str]
    langs: np.ndarray  # (n,) str
    queries: np.ndarray  # (n, d) float32
    passages: np.ndarray  # (P, d) float32, as stored (fused vectors are not unit length)
    gold: np.ndarray  # (n,) int64
    passage_ids: list[str]

    @property
    def lang_list(self) -> list[str]:
        """Languages in first-seen order, English (the control) first."""
        seen = list(dict.fromkeys(self.langs.tolist()))
        return sorted(seen, key=lambda lang: lang != "en")


def load_query_passage(
    spec: SystemSpec,
    split: str = "test",
    langs: Sequence[str] | None = None,
    *,
    judgements: Any = None,
) -> QueryPassagePairs:
    """Questions of ``queries-<split>`` and the system's passage vectors of one experiment folder.

    Which questions take part, and their languages, come from
    :func:`xqg.analyse.alignment.load_system` — the same selection and the same checks (every
    question judged, its gold passage in the corpus, the language filter) as the alignment
    analysis; it returns cosines, not vectors, so the vectors are read here and the gold passage of
    each question is looked up in :func:`xqg.analyse.alignment.load_judgements` (the folder's
    ``benchmark/``, else the XQuAD release). ``judgements`` may pass that object in when several
    systems share one folder, to read it once.
    """
    from xqg.analyse.alignment import load_judgements, load_system

    selected = load_system(spec, split, langs)
    qids, qvecs = load_vectors(spec.query_dir(split))
    pids, pvecs = load_vectors(spec.passage_dir())
    judged = judgements if judgements is not None else load_judgements(spec.folder)
    q_row = {qid: i for i, qid in enumerate(qids)}
    p_row = {pid: i for i, pid in enumerate(pids)}
    rows = np.array([q_row[qid] for qid in selected.qids], dtype=np.int64)
    gold = np.array([p_row[judged.gold[qid]] for qid in selected.qids], dtype=np.int64)
    return QueryPassagePairs(
        spec=spec,
        qids=list(selected.qids),
        langs=np.asarray(selected.langs, dtype=str),
        queries=qvecs[rows],
        passages=pvecs,
        gold=gold,
        passage_ids=pids,
    )


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


def _check_counts(pairs: QueryPassagePairs, settings: Settings) -> None:
    """Every language needs enough questions for the PCA and KSG settings (checked before encoding)."""
    for lang in pairs.lang_list:
        n = int((pairs.langs == lang).sum())
        if n < max(settings.k + 2, settings.pca_dim + 1, 4):
            raise XqgError(
                f"{pairs.spec.label}: {n} '{lang}' questions are too few for {settings.pca_dim} PCA "
                f"components and k = {settings.k}"
            )


def analyse_query_passage(
    systems: dict[str, QueryPassagePairs], settings: Settings = Settings()
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{system: {lang: estimates}}``: :func:`estimate_query_passage` per language, English first.

    Each language is estimated on its own questions against the whole corpus, so languages with
    the same questions (XQuAD is parallel) share ``P`` and ``H(gold)``.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for label, pairs in systems.items():
        _check_counts(pairs, settings)
        out[label] = {}
        for lang in pairs.lang_list:
            rows = pairs.langs == lang
            out[label][lang] = estimate_query_passage(
                pairs.queries[rows], pairs.passages, pairs.gold[rows], settings
            )
    return out


def tables(
    results: dict[str, dict[str, dict[str, Any]]], keys: Sequence[str] = tuple(ESTIMATORS)
) -> dict[str, dict[str, dict[str, float]]]:
    """``{estimator: {model: {lang: value, "mean": macro mean}}}``; when English is among the
    languages (the query–passage mode's control) also ``"mean X≠en"``, the cross-lingual mean."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in keys:
        out[key] = {}
        for label, by_lang in results.items():
            row = {lang: float(r[key]) for lang, r in by_lang.items()}
            values = list(row.values())
            cross = [v for lang, v in row.items() if lang != "en"]
            row["mean"] = float(np.mean(values))
            if "en" in by_lang and cross:
                row["mean X≠en"] = float(np.mean(cross))
            out[key][label] = row
    return out


def _langs_of(row: dict[str, float]) -> list[str]:
    return [lang for lang in row if lang not in MEAN_ROWS]


def headline(tabs: dict[str, Any], log_n: float, tau: float, n: int, dataset: str) -> str:
    """One line from the data: the reference's estimates, and how every other model moves them."""
    labels = list(tabs["ksg"])
    ref = labels[0]
    langs = _langs_of(tabs["ksg"][ref])

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


def passage_headline(
    tabs: dict[str, Any], *, tau: float, log_p: float, entropy: float, n: int, split: str = "test"
) -> str:
    """One line for the query–passage mode: each estimator's language mean for the first system,
    then every other system's, with the number of languages in which it is higher."""
    labels = list(tabs["ksg"])
    ref = labels[0]
    langs = _langs_of(tabs["ksg"][ref])

    def move(key: str, name: str, fmt: str, note: str = "") -> str:
        text = f"{name}: {ref} {format(tabs[key][ref]['mean'], fmt)}"
        for label in labels[1:]:
            up = sum(1 for lang in langs if tabs[key][label][lang] > tabs[key][ref][lang])
            text += (
                f" → {label} {format(tabs[key][label]['mean'], fmt)} (Δ > 0 in {up}/{len(langs)} languages)"
            )
        return text + note

    shuffled = ", ".join(f"{lb} {tabs['ksg_shuffled'][lb]['mean']:.2f}" for lb in labels)
    parts = [
        move("ksg", "query–passage KSG MI (nats)", ".2f", f" (shuffled-pairs control {shuffled})"),
        move(
            "infonce",
            f"retrieval InfoNCE@τ={tau:g} (nats)",
            ".2f",
            f" (cap log P = {log_p:.2f}; valid bound = this − {log_p - entropy:.2f})",
        ),
        move("infonce_max", "max over τ", ".2f"),
        move("cka", "CKA", ".3f"),
        move("top1", "cosine top-1", ".3f"),
    ]
    text = (
        f"{n} {split} questions per language × their gold English passage, mean over {len(langs)} "
        f"languages (en = control): " + "; ".join(parts)
    )
    if len(labels) == 1:
        text += "; one system only, so no comparison yet"
    return text


def plot(
    tabs: dict[str, Any],
    path: Path,
    *,
    log_n: float,
    tau: float,
    panels: Sequence[tuple[str, str]] | None = None,
    ref_lines: dict[str, list[float]] | None = None,
) -> None:
    """Grouped bars per language (models / systems side by side), one panel per estimator.

    ``ref_lines`` draws dashed horizontal lines (e.g. log N) on the named panels; by default the
    InfoNCE panels get ``log_n``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if panels is None:
        panels = [
            ("ksg", "KSG MI (nats); × = shuffled-pairs control"),
            ("infonce", f"InfoNCE bound at τ = {tau:g} (nats); line = log N"),
            ("infonce_max", "InfoNCE bound, max over τ (nats)"),
            ("cka", "linear CKA"),
            ("cka_debiased", "debiased linear CKA"),
            ("top1", "en→X translation top-1"),
        ]
    if ref_lines is None:
        ref_lines = {"infonce": [log_n], "infonce_max": [log_n]}
    labels = list(tabs["ksg"])
    langs = _langs_of(tabs["ksg"][labels[0]])
    x = np.arange(len(langs))
    width = 0.8 / len(labels)
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.75 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (key, title) in zip(axes.flat, panels, strict=False):
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
        for level in ref_lines.get(key, []):
            ax.axhline(level, color="grey", ls="--", lw=1)
        ax.axhline(0, color="black", lw=0.6)
        ax.set_xticks(x, langs, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def _markdown_table(tab: dict[str, dict[str, float]], fmt: str) -> str:
    labels = list(tab)
    ref = labels[0]
    head = ["lang", ref] + [x for lb in labels[1:] for x in (lb, "Δ")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang in tab[ref]:
        row = [f"**{lang}**" if lang in MEAN_ROWS else lang, format(tab[ref][lang], fmt)]
        for lb in labels[1:]:
            row += [format(tab[lb][lang], fmt), f"{tab[lb][lang] - tab[ref][lang]:+{fmt}}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _edge_note(results: dict[str, dict[str, dict[str, Any]]], taus: Sequence[float]) -> list[str]:
    edge = [
        f"{label}/{lang}"
        for label, by_lang in results.items()
        for lang, r in by_lang.items()
        if r["infonce_best_tau"] in (min(taus), max(taus))
    ]
    if not edge:
        return []
    return [
        f"Note: the best τ lies on the edge of the grid for {len(edge)} pair(s) ({', '.join(edge[:6])}"
        f"{', …' if len(edge) > 6 else ''}); the max-over-τ bound may be higher with a wider grid.",
        "",
    ]


def _settings_dict(settings: Settings) -> dict[str, Any]:
    return {
        "tau": settings.tau,
        "taus": list(settings.taus),
        "pca_dim": settings.pca_dim,
        "pca": "per side, whitened",
        "k": settings.k,
        "seed": settings.seed,
    }


@dataclass
class _Section:
    """One mode's contribution to the analysis folder."""

    headline: str
    body: list[str]
    data: dict[str, Any]
    figure: str
    config: dict[str, Any]
    counts: dict[str, int]


def _question_section(
    models: Sequence[ModelSpec],
    out: Path,
    *,
    heading: str,
    questions: ParallelQuestions,
    settings: Settings,
    dtype: str,
    batch_size: int,
    max_length: int,
    device: str,
    limit: int | None,
    show_progress: bool,
    encode: Callable[..., dict[str, np.ndarray]],
) -> _Section:
    """Encode the parallel questions with every model and estimate en ↔ X (the ``--model`` mode)."""
    n = len(questions.ids)
    dataset, split = questions.dataset, questions.split
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
        "settings": {**_settings_dict(settings), "dtype": dtype, "max_length": max_length},
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
    body += _edge_note(results, settings.taus)
    for key, (title, fmt) in ESTIMATORS.items():
        body += [f"{heading} {title}", "", _markdown_table(tabs[key], fmt), ""]
    config = {
        "models": [
            f"{m.label}={m.model}" + (f"@{m.passage_model}" if m.passage_model else "") for m in models
        ],
        "dataset": dataset,
        "split": split,
        "langs": questions.langs,
        "limit": limit,
        **data["settings"],
    }
    counts = {"questions": n, "languages": len(questions.langs), "models": len(models)}
    return _Section(head, body, data, figure, config, counts)


def _passage_section(
    systems: dict[str, QueryPassagePairs], out: Path, *, heading: str, split: str, settings: Settings
) -> _Section:
    """Estimate question ↔ gold passage per language and system (the ``--system`` mode)."""
    t0 = time.perf_counter()
    results = analyse_query_passage(systems, settings)
    seconds = time.perf_counter() - t0
    tabs = tables(results, tuple(PASSAGE_ESTIMATORS))
    labels = list(systems)
    ref = labels[0]
    first = next(iter(results[ref].values()))
    langs = list(results[ref])
    for label in labels[1:]:
        if list(results[label]) != langs:
            raise XqgError(f"{label} has languages {', '.join(results[label])}, {ref} has {', '.join(langs)}")
    n_by_lang = {lang: r["n"] for lang, r in results[ref].items()}
    n = max(n_by_lang.values())
    log_p, entropy = first["log_p"], first["gold_entropy"]
    head = passage_headline(tabs, tau=settings.tau, log_p=log_p, entropy=entropy, n=n, split=split)
    figure = "mutual_information_query_passage.png"
    plot(
        tabs,
        out / figure,
        log_n=log_p,
        tau=settings.tau,
        panels=[
            ("ksg", "question ↔ gold passage KSG MI (nats); × = shuffled control"),
            ("infonce", f"retrieval InfoNCE at τ = {settings.tau:g} (nats); lines = log P, H(gold)"),
            ("infonce_max", "retrieval InfoNCE, max over τ (nats); lines = log P, H(gold)"),
            ("cka", "linear CKA, question ↔ gold passage"),
            ("cka_debiased", "debiased linear CKA"),
            ("top1", "cosine retrieval top-1"),
        ],
        ref_lines={"infonce": [log_p, entropy], "infonce_max": [log_p, entropy]},
    )
    data = {
        "split": split,
        "reference": ref,
        "langs": langs,
        "n_by_lang": n_by_lang,
        "passages": first["passages"],
        "gold_passages": first["gold_passages"],
        "log_p": log_p,
        "gold_entropy": entropy,
        "systems": {
            label: {
                "folder": str(p.spec.folder),
                "system": p.spec.system,
                "dim": int(p.queries.shape[1]),
                "passage_norm": {
                    "mean": float(np.linalg.norm(p.passages, axis=1).mean()),
                    "min": float(np.linalg.norm(p.passages, axis=1).min()),
                    "max": float(np.linalg.norm(p.passages, axis=1).max()),
                },
            }
            for label, p in systems.items()
        },
        "settings": _settings_dict(settings),
        "tables": tabs,
        "per_pair": results,
        "seconds": {"estimate": seconds},
        "headline": head,
    }
    norms = ", ".join(
        "{} {mean:.3f} [{min:.3f}, {max:.3f}]".format(label, **s["passage_norm"])
        for label, s in data["systems"].items()
    )
    named = ", ".join(f"`{lb}` = {p.spec.folder}:{p.spec.system}" for lb, p in systems.items())
    body = [
        f"Experiment systems ({named}); reference `{ref}`. Each `queries-{split}` question "
        f"(≤ {n} per language; English is the "
        f"monolingual control) is paired with the vector of its gold English passage; corpus P = "
        f"{first['passages']} passages, of which the questions use {first['gold_passages']} "
        f"(H(gold) = {entropy:.3f} nats, log P = {log_p:.3f}). Passage vectors are scaled to unit length "
        f"first (lengths before, mean [min, max]: {norms}), so only their direction counts.",
        "",
        f"KSG and CKA: each question against its gold passage's vector (shared passages repeat; per-side "
        f"PCA to {settings.pca_dim} whitened components, k = {settings.k}, seed {settings.seed}); the "
        "shuffled row re-pairs questions with other questions' passages (true MI 0). Retrieval InfoNCE: "
        "log P + mean log softmax over all P distinct passages of the gold one, at fixed τ and maxed over "
        f"the τ grid {', '.join(f'{t:g}' for t in settings.taus)}. It equals the InfoNCE / Barber–Agakov "
        "bound only when the golds are uniform over the corpus; here they cover part of it, so the valid "
        f"bound is H(gold) + mean log softmax, {log_p - entropy:.3f} nats lower — the same offset for "
        "every system, so the Δs agree. `mean X≠en` averages the cross-lingual languages only.",
        "",
    ]
    best = "; ".join(
        f"{label} "
        + ", ".join(f"{t:g} × {c}" for t, c in Counter(r["infonce_best_tau"] for r in by.values()).items())
        for label, by in results.items()
    )
    body += [
        f"Best τ of the max-over-τ InfoNCE (τ × number of languages): {best}. Fusion moves every passage "
        "towards question space and so narrows each question's cosine spread; a fixed τ then under-scales "
        "the critic, which can lower the fixed-τ value while retrieval improves — compare the max over τ.",
        "",
    ]
    body += _edge_note(results, settings.taus)
    for key, (title, fmt) in PASSAGE_ESTIMATORS.items():
        body += [f"{heading} {title}", "", _markdown_table(tabs[key], fmt), ""]
    config = {
        "systems": [f"{p.spec.label}={p.spec.folder}:{p.spec.system}" for p in systems.values()],
        "system_split": split,
        "system_langs": langs,
        **_settings_dict(settings),
    }
    counts = {"systems": len(systems), "system_questions": int(sum(n_by_lang.values()))}
    return _Section(head, body, data, figure, config, counts)


def _unique(labels: Sequence[str], what: str) -> None:
    if len(set(labels)) != len(labels):
        raise XqgError(f"{what} labels must be unique, got {', '.join(labels)}")


def run_mutual_information(
    models: Sequence[ModelSpec],
    out_dir: str | Path,
    *,
    systems: Sequence[SystemSpec] = (),
    system_split: str = "test",
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
    """Run the ``--model`` mode, the ``--system`` mode or both, and write one analysis folder.

    Every check that can fail on user input (labels, encoder settings, experiment folders, question
    counts) runs before any encoding. ``langs`` are the target languages of both modes; the
    query–passage mode always adds English as its control. With both modes the folder holds both
    sections; ``data`` keeps the question mode's keys at the top level (as with ``--model`` alone)
    and the query–passage results under ``data["query_passage"]``.
    """
    if not models and not systems:
        raise XqgError("give at least one --model LABEL=SPEC or --system LABEL=FOLDER[:SYSTEM]")
    _unique([m.label for m in models], "model")
    _unique([s.label for s in systems], "system")
    if models:
        from xqg.config import EncoderConfig

        for m in models:  # settings errors before any (slow) encoding
            try:
                EncoderConfig(model=m.model, dtype=dtype, batch_size=batch_size, query_max_length=max_length)
            except ValueError as e:
                raise XqgError(f"{m.label}: bad encoder settings: {e}") from None
    pairs: dict[str, QueryPassagePairs] = {}
    if systems:
        from xqg.analyse.alignment import load_judgements

        judged: dict[Path, Any] = {}
        qp_langs = ["en", *(lang for lang in langs if lang != "en")] if langs else None
        for spec in systems:
            key = spec.folder.resolve()
            if key not in judged:
                spec.query_dir(system_split)  # a missing folder is reported before the judgements load
                judged[key] = load_judgements(spec.folder)
            pairs[spec.label] = load_query_passage(spec, system_split, qp_langs, judgements=judged[key])
            _check_counts(pairs[spec.label], settings)
    questions = None
    if models:
        questions = load_parallel(dataset, langs, split=split, limit=limit)
        n = len(questions.ids)
        if n < max(settings.pca_dim + 1, settings.k + 2, 4):
            raise XqgError(
                f"{n} questions are too few for {settings.pca_dim} PCA components and k = {settings.k}"
            )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    both = bool(models) and bool(systems)
    heading = "###" if both else "##"
    sections: list[_Section] = []
    if systems:
        sections.append(_passage_section(pairs, out, heading=heading, split=system_split, settings=settings))
    if models and questions is not None:
        sections.append(
            _question_section(
                models,
                out,
                heading=heading,
                questions=questions,
                settings=settings,
                dtype=dtype,
                batch_size=batch_size,
                max_length=max_length,
                device=device,
                limit=limit,
                show_progress=show_progress,
                encode=encode,
            )
        )
    if both:
        qp, qq = sections
        question = f"{QUESTION_PASSAGE} And: {QUESTION}"
        head = f"Query–passage: {qp.headline}. Question–question: {qq.headline}"
        body = ["## Question ↔ gold passage (experiment systems)", "", *qp.body]
        body += ["## Question ↔ translated question (query tower)", "", *qq.body]
        data = {**qq.data, "query_passage": qp.data, "headline": head}
        config = {**qq.config, **qp.config}
        counts = {**qq.counts, **qp.counts}
    else:
        (only,) = sections
        question = QUESTION_PASSAGE if systems else QUESTION
        head, body, config, counts = only.headline, only.body, only.config, only.counts
        data = {"query_passage": only.data, "headline": head} if systems else only.data
    return write_analysis(
        out,
        name=NAME,
        question=question,
        headline=head,
        body_md="\n".join(body),
        data=data,
        figures=[s.figure for s in sections],
        command=command,
        config=config,
        counts=counts,
    )
