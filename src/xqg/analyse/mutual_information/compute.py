"""Compute side of the mutual-information analysis: settings, the parallel questions and the
question–passage pairs, encoding, the estimators over every language and system, the tables, and
:func:`question_data` / :func:`passage_data`, the plain data of each mode."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import ModelSpec, SystemSpec, load_vectors
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
_SHUFFLED = "KSG MI, shuffled pairs (nats; true value 0)"


def _three_decimals(titles: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {key: (title, ".3f") for key, title in titles.items()}


#: Estimator keys in the output, with how each is shown (title, number format).
ESTIMATORS: dict[str, tuple[str, str]] = _three_decimals(
    {
        "ksg": "KSG MI (nats)",
        "ksg_shuffled": _SHUFFLED,
        "infonce": "InfoNCE bound at fixed τ (nats)",
        "infonce_max": "InfoNCE bound, max over τ grid (nats; optimistic)",
        "cka": "linear CKA",
        "cka_debiased": "debiased linear CKA",
        "top1": "en→X translation retrieval top-1",
    }
)
#: The same for the query–passage mode (``--system``).
PASSAGE_ESTIMATORS: dict[str, tuple[str, str]] = _three_decimals(
    {
        "ksg": "KSG MI, question ↔ gold passage (nats)",
        "ksg_shuffled": _SHUFFLED,
        "infonce": "retrieval InfoNCE at fixed τ: log P + mean log softmax (nats)",
        "infonce_max": "retrieval InfoNCE, max over τ grid (nats; optimistic)",
        "infonce_ba": "retrieval bound H(gold) + mean log softmax at fixed τ (nats; valid lower bound)",
        "cka": "linear CKA, question ↔ gold passage",
        "cka_debiased": "debiased linear CKA, question ↔ gold passage",
        "top1": "cosine retrieval top-1 (gold passage ranked first)",
        "gold_cos": "mean cos(question, gold passage)",
    }
)
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


def _ksg_and_infonce(
    x: np.ndarray, y: np.ndarray, curve: dict[float, float], settings: Settings
) -> dict[str, Any]:
    """The KSG values (true and shuffled pairs) and the InfoNCE bound at τ, its max and best τ."""
    best_tau = max(curve, key=curve.__getitem__)
    perm = np.random.default_rng(settings.seed).permutation(x.shape[0])
    return {
        "ksg": ksg_pca_mi(x, y, settings.pca_dim, settings.k, seed=settings.seed),
        "ksg_shuffled": ksg_pca_mi(x, y[perm], settings.pca_dim, settings.k, seed=settings.seed),
        "infonce": curve[settings.tau],
        "infonce_max": curve[best_tau],
        "infonce_best_tau": best_tau,
        "infonce_curve": {f"{t:g}": v for t, v in curve.items()},
    }


def estimate_pair(x: np.ndarray, y: np.ndarray, settings: Settings = Settings()) -> dict[str, Any]:
    """Every estimator for one paired sample ``(x_i, y_i)`` (English, language X)."""
    x, y = paired_rows(x, y, min_rows=max(settings.k + 2, settings.pca_dim + 1, 4))
    curve = infonce_curve(x, y, tuple(dict.fromkeys((settings.tau, *settings.taus))))
    return {
        **_ksg_and_infonce(x, y, curve, settings),
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
    entropy = gold_entropy(g)
    log_p = math.log(p.shape[0])
    return {
        "n": int(x.shape[0]),
        "passages": int(p.shape[0]),
        "gold_passages": int(np.unique(g).size),
        "log_p": log_p,
        "gold_entropy": entropy,
        **_ksg_and_infonce(x, y, curve, settings),
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


def _settings_dict(settings: Settings) -> dict[str, Any]:
    return {
        "tau": settings.tau,
        "taus": list(settings.taus),
        "pca_dim": settings.pca_dim,
        "pca": "per side, whitened",
        "k": settings.k,
        "seed": settings.seed,
    }


def question_data(
    models: Sequence[ModelSpec],
    *,
    questions: ParallelQuestions,
    settings: Settings,
    dtype: str,
    batch_size: int,
    max_length: int,
    device: str,
    limit: int | None,
    show_progress: bool,
    encode: Callable[..., dict[str, np.ndarray]],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """Encode the parallel questions with every model and estimate en ↔ X (the ``--model`` mode):
    ``(data, config, counts)``; ``data`` gets its ``headline`` from the render side."""
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
    data = {
        "dataset": dataset,
        "split": split,
        "n": n,
        "log_n": math.log(n),
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
        "tables": tables(results),
        "per_pair": results,
        "seconds": seconds,
    }
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
    return data, config, counts


def passage_data(
    systems: dict[str, QueryPassagePairs], *, split: str, settings: Settings
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """Estimate question ↔ gold passage per language and system (the ``--system`` mode):
    ``(data, config, counts)``; ``data`` gets its ``headline`` from the render side."""
    t0 = time.perf_counter()
    results = analyse_query_passage(systems, settings)
    seconds = time.perf_counter() - t0
    labels = list(systems)
    ref = labels[0]
    first = next(iter(results[ref].values()))
    langs = list(results[ref])
    for label in labels[1:]:
        if list(results[label]) != langs:
            raise XqgError(f"{label} has languages {', '.join(results[label])}, {ref} has {', '.join(langs)}")
    n_by_lang = {lang: r["n"] for lang, r in results[ref].items()}
    data = {
        "split": split,
        "reference": ref,
        "langs": langs,
        "n_by_lang": n_by_lang,
        "passages": first["passages"],
        "gold_passages": first["gold_passages"],
        "log_p": first["log_p"],
        "gold_entropy": first["gold_entropy"],
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
        "tables": tables(results, tuple(PASSAGE_ESTIMATORS)),
        "per_pair": results,
        "seconds": {"estimate": seconds},
    }
    config = {
        "systems": [f"{p.spec.label}={p.spec.folder}:{p.spec.system}" for p in systems.values()],
        "system_split": split,
        "system_langs": langs,
        **_settings_dict(settings),
    }
    counts = {"systems": len(systems), "system_questions": int(sum(n_by_lang.values()))}
    return data, config, counts


def _unique(labels: Sequence[str], what: str) -> None:
    if len(set(labels)) != len(labels):
        raise XqgError(f"{what} labels must be unique, got {', '.join(labels)}")
