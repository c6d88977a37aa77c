"""Per-query scores of the resource-level analysis: exact search of experiment vectors (XQuAD) or
XOR-format runs, scored by recall@k / precision@k / MRR (ranx) and R@kt (the official rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xqg.errors import XqgError
from xqg.languages import resource_code as canonical_lang
from xqg.types import Qrels, Run

DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
XQUAD_RKT_KS: tuple[int, ...] = (100, 500)
"""XQuAD paragraphs are ~150 tokens, so the experiment's R@100t / R@500t are the informative ks."""
XOR_RKT_KS: tuple[int, ...] = (2000, 5000)
"""The official XOR-Retrieve ks."""
MRR_K = 10


@dataclass
class SystemScores:
    """One system's per-query values: ``per_query[metric][qid]`` (``None`` = not counted)."""

    label: str
    per_query: dict[str, dict[str, float | None]]
    qid_lang: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)


def qrels_metric_names(ks: Sequence[int], mrr_k: int | None = MRR_K) -> list[str]:
    """``recall@k`` and ``precision@k`` for every k, then ``mrr@mrr_k``."""
    names = [f"recall@{k}" for k in ks] + [f"precision@{k}" for k in ks]
    return names + ([f"mrr@{mrr_k}"] if mrr_k else [])


def check_ks(ks: Sequence[int], what: str = "k") -> tuple[int, ...]:
    out = tuple(ks)
    if not out:
        raise XqgError(f"give at least one {what}")
    for k in out:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise XqgError(f"{what} must be positive integers, got {k!r}")
    if len(set(out)) != len(out):
        raise XqgError(f"duplicate {what} in {list(out)}")
    return out


def qrels_scores(
    label: str,
    run: Run,
    qrels: Qrels,
    qid_lang: Mapping[str, str],
    ks: Sequence[int] = DEFAULT_KS,
    *,
    mrr_k: int | None = MRR_K,
    info: dict[str, Any] | None = None,
) -> SystemScores:
    """Per-query recall@k, precision@k (and MRR) of ``run`` for every query in ``qrels`` (ranx)."""
    from xqg.evaluate.metrics import evaluate_qrels

    no_lang = [q for q in qrels if q not in qid_lang]
    if no_lang:
        raise XqgError(f"{label}: {len(no_lang)} judged query id(s) have no language, e.g. {no_lang[:3]}")
    values = evaluate_qrels(run, qrels, qrels_metric_names(check_ks(ks), mrr_k))
    return SystemScores(
        label,
        {m: dict(v) for m, v in values.items()},
        {q: canonical_lang(qid_lang[q]) for q in qrels},
        dict(info or {}),
    )


def precision_is_recall_over_k(scores: SystemScores, qrels: Qrels, ks: Sequence[int]) -> bool | None:
    """Whether P@k = R@k / k for every query (true when each query has exactly one relevant document).

    ``None`` when some query has ≠ 1 relevant document (the identity is then not expected).
    """
    if any(sum(1 for r in judged.values() if r > 0) != 1 for judged in qrels.values()):
        return None
    for k in ks:
        rec, prec = scores.per_query[f"recall@{k}"], scores.per_query[f"precision@{k}"]
        for q, r in rec.items():
            if r is not None and abs((prec[q] or 0.0) - r / k) > 1e-12:
                return False
    return True


def exact_run(
    query_ids: Sequence[str],
    queries: np.ndarray,
    passage_ids: Sequence[str],
    passages: np.ndarray,
    depth: int,
    *,
    batch: int = 1024,
) -> Run:
    """Exhaustive inner-product search: the top ``depth`` passages per query (plus ties at the cut).

    The score is the system's own inner product, whatever the vectors' norms (fused passage
    vectors are not unit length; that is part of the system). Documents tied with the last kept
    score are all kept so xqg's (score, doc id) tie-break decides their order, not argpartition
    (:func:`xqg.search.exact_top_k` with ``keep_ties``); each query's passages are in rank order.
    """
    from xqg.search import exact_top_k

    if queries.ndim != 2 or passages.ndim != 2 or queries.shape[1] != passages.shape[1]:
        raise XqgError(f"query vectors {queries.shape} and passage vectors {passages.shape} do not match")
    if len(query_ids) != queries.shape[0] or len(passage_ids) != passages.shape[0]:
        raise XqgError("ids and vectors differ in length")
    if depth < 1:
        raise XqgError(f"depth must be ≥ 1, got {depth}")
    pt = np.ascontiguousarray(passages, dtype=np.float32).T
    run: Run = {}
    for start in range(0, len(query_ids), batch):
        block = np.ascontiguousarray(queries[start : start + batch], dtype=np.float32) @ pt
        for i, keep in enumerate(exact_top_k(block, depth, keep_ties=True)):
            run[query_ids[start + i]] = {passage_ids[j]: float(block[i, j]) for j in keep}
    return run


def rkt_scores(
    label: str,
    run: Run,
    gold: Sequence[Any],
    passages: Mapping[str, Any],
    ks: Sequence[int],
    *,
    passage_text: str = "text",
    info: dict[str, Any] | None = None,
) -> SystemScores:
    """Per-query R@kt hits (1.0/0.0, ``None`` = not counted by the official rules)."""
    from xqg.evaluate.rkt import evaluate_rkt

    res = evaluate_rkt(run, gold, check_ks(ks, "R@kt k"), passages, passage_text=passage_text)  # type: ignore[arg-type]
    extra = {
        "skipped_yes_no": len(res.skipped_yes_no),
        "missing_ids": len(res.missing_ids),
        "unknown_ids": len(res.unknown_ids),
    }
    return SystemScores(
        label,
        res.per_query_by_name(),
        {q.id: canonical_lang(q.lang) for q in gold},
        {**(info or {}), **extra},
    )


def merge_scores(a: SystemScores, b: SystemScores) -> SystemScores:
    """One system's qrels metrics and R@kt together (same label; languages must agree)."""
    for q, lang in b.qid_lang.items():
        if a.qid_lang.get(q, lang) != lang:
            raise XqgError(f"{a.label}: query {q!r} has language {a.qid_lang[q]} and {lang}")
    return SystemScores(
        a.label, {**a.per_query, **b.per_query}, {**b.qid_lang, **a.qid_lang}, {**a.info, **b.info}
    )


def xquad_scores(
    spec: Any,
    bench: Any,
    ks: Sequence[int],
    *,
    split: str = "test",
    rkt_ks: Sequence[int] = XQUAD_RKT_KS,
    depth: int = 100,
    passage_text: str = "text",
) -> SystemScores:
    """Score one ``LABEL=FOLDER[:SYSTEM]`` on XQuAD: exact search of its query vectors over its passages."""
    from xqg.analyse.common import load_vectors

    qids, q = load_vectors(spec.query_dir(split))
    pids, p = load_vectors(spec.passage_dir())
    unknown = [x for x in qids if x not in bench.qrels]
    if unknown:
        raise XqgError(
            f"{spec.label}: {len(unknown)} query id(s) of {spec.query_dir(split)} are not XQuAD {split} "
            f"questions, e.g. {unknown[:3]} (was the folder made on another split?)"
        )
    pid_set = set(pids)
    missing = sorted({d for x in qids for d in bench.qrels[x] if d not in pid_set})
    if missing:
        raise XqgError(
            f"{spec.label}: {len(missing)} gold paragraph(s) have no passage vector, e.g. {missing[:3]}"
        )
    run = exact_run(qids, q, pids, p, max(depth, *ks))
    qrels = {x: bench.qrels[x] for x in qids}
    info = {
        "folder": str(spec.folder),
        "system": spec.system,
        "queries": str(spec.query_dir(split)),
        "passages": str(spec.passage_dir()),
        "n_queries": len(qids),
        "n_passages": len(pids),
    }
    scores = qrels_scores(spec.label, run, qrels, bench.qid_lang, ks, info=info)
    scores.info["precision_is_recall_over_k"] = precision_is_recall_over_k(scores, qrels, ks)
    if rkt_ks:
        qid_set = set(qids)
        gold = [aq for lang in bench.langs for aq in bench.answer_queries(lang) if aq.id in qid_set]
        passages = {x.id: x for x in bench.corpus}
        scores = merge_scores(
            scores, rkt_scores(spec.label, run, gold, passages, rkt_ks, passage_text=passage_text)
        )
    return scores


def read_passages(corpus: str | Path, wanted: set[str], passage_text: str = "text") -> dict[str, str]:
    """Texts of the ``wanted`` doc ids, streaming the corpus once (large corpora stay out of memory)."""
    from xqg.data.corpus import passages_by_id
    from xqg.evaluate.rkt import passage_string

    if not Path(corpus).is_file():
        raise XqgError(f"corpus {corpus} does not exist")
    return {pid: passage_string(p, passage_text) for pid, p in passages_by_id(corpus, wanted).items()}  # type: ignore[arg-type]


def parse_run_arg(text: str) -> tuple[str, Path]:
    """``LABEL=FILE`` or ``FILE`` (label = the file's stem, or folder name for a search folder)."""
    label, sep, rest = text.partition("=")
    if sep and label and rest and "/" not in label:
        return label, Path(rest)
    path = Path(text)
    return (path.name if path.is_dir() else path.stem) or text, path


def xor_scores(
    runs: Sequence[tuple[str, str | Path]],
    queries: str | Path,
    corpus: str | Path,
    rkt_ks: Sequence[int] = XOR_RKT_KS,
    *,
    passage_text: str = "text",
) -> list[SystemScores]:
    """R@kt of TREC/JSONL runs against XOR-TyDi-format gold (``answers``) and the corpus they searched."""
    from xqg.data.runs import read_run
    from xqg.data.xor import read_xor

    gold = read_xor(queries)
    if not gold:
        raise XqgError(f"{queries}: no questions")
    for q in gold:
        canonical_lang(q.lang)
    loaded = [(label, Path(path), read_run(path)) for label, path in runs]
    wanted = {d for _, _, run in loaded for docs in run.values() for d in docs}
    passages = read_passages(corpus, wanted, passage_text)
    return [
        rkt_scores(
            label,
            run,
            gold,
            passages,
            rkt_ks,
            passage_text=passage_text,
            info={
                "run": str(path),
                "n_run_queries": len(run),
                "queries": str(queries),
                "corpus": str(corpus),
            },
        )
        for label, path, run in loaded
    ]
