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

**Layout.** :mod:`.compute` loads, encodes and estimates (``question_data`` / ``passage_data``
return each mode's plain data), :mod:`.render` makes the headlines, tables and figures
(``render_questions`` / ``render_passages``), and :func:`run_mutual_information` runs them and
writes the analysis folder. The estimators themselves are :mod:`xqg.evaluate.mutual_information`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import ModelSpec, SystemSpec, write_analysis
from xqg.analyse.mutual_information.compute import (
    DATASETS,
    ESTIMATORS,
    MEAN_ROWS,
    NAME,
    PASSAGE_ESTIMATORS,
    QUESTION,
    QUESTION_PASSAGE,
    ParallelQuestions,
    QueryPassagePairs,
    Settings,
    _check_counts,
    _unique,
    analyse_embeddings,
    analyse_query_passage,
    encode_questions,
    estimate_pair,
    estimate_query_passage,
    load_parallel,
    load_query_passage,
    passage_data,
    question_data,
    tables,
)
from xqg.analyse.mutual_information.render import (
    headline,
    passage_headline,
    plot,
    render,
    render_passages,
    render_questions,
)
from xqg.errors import XqgError
from xqg.evaluate.mutual_information import DEFAULT_TAU, DEFAULT_TAUS


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
    # (data, config, counts) of each mode; render() then makes the headlines, body and figures.
    sections: list[tuple[dict[str, Any], dict[str, Any], dict[str, int]]] = []
    if systems:
        sections.append(passage_data(pairs, split=system_split, settings=settings))
    if models and questions is not None:
        sections.append(
            question_data(
                models,
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
    if models and systems:
        (qp, qp_config, qp_counts), (qq, qq_config, qq_counts) = sections
        question = f"{QUESTION_PASSAGE} And: {QUESTION}"
        data = {**qq, "query_passage": qp}
        config = {**qq_config, **qp_config}
        counts = {**qq_counts, **qp_counts}
    else:
        ((only, config, counts),) = sections
        question = QUESTION_PASSAGE if systems else QUESTION
        data = {"query_passage": only} if systems else only
    shown = render(data, out)
    return write_analysis(
        out,
        name=NAME,
        question=question,
        headline=shown.headline,
        body_md=shown.body_md,
        data=data,
        figures=shown.figures,
        command=command,
        config=config,
        counts=counts,
    )


__all__ = [
    "DATASETS",
    "DEFAULT_TAU",
    "DEFAULT_TAUS",
    "ESTIMATORS",
    "MEAN_ROWS",
    "NAME",
    "PASSAGE_ESTIMATORS",
    "QUESTION",
    "QUESTION_PASSAGE",
    "ModelSpec",
    "ParallelQuestions",
    "QueryPassagePairs",
    "Settings",
    "analyse_embeddings",
    "analyse_query_passage",
    "encode_questions",
    "estimate_pair",
    "estimate_query_passage",
    "headline",
    "load_parallel",
    "load_query_passage",
    "passage_data",
    "passage_headline",
    "plot",
    "question_data",
    "render",
    "render_passages",
    "render_questions",
    "run_mutual_information",
    "tables",
]
