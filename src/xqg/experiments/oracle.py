"""The leave-one-out human-question oracle of the lever study (issue 13).

XQuAD's own human questions about each paragraph, in the 11 languages, play the generated queries.
Each scored question's group (the same SQuAD question in every language) is left out of its gold
passage's vector, so the oracle measures what human-written coverage adds with the same fusion,
without leaking the answer. :mod:`xqg.experiments.levers` tunes it on dev and reports it on test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xqg.augment import accumulate, get_fusion
from xqg.config import ExperimentConfig
from xqg.experiments.augmentation import CorpusVectors, SplitVectors

Selection = tuple[np.ndarray, np.ndarray | None]  # (mask over generated rows, weights or None)


@dataclass
class HumanQuestions:
    """Every XQuAD question (all splits) in the generator's languages, encoded as generated queries."""

    vectors: np.ndarray
    row: np.ndarray  # corpus row of the paragraph it asks about
    group: np.ndarray  # the SQuAD id: the same question in every language


def oracle_scores(
    split: SplitVectors,
    split_group: np.ndarray,
    cv: CorpusVectors,
    human: HumanQuestions,
    strategy: str,
    alpha: float,
    extra: Selection | None = None,
) -> np.ndarray:
    """Query × passage scores with human questions fused, leaving the scored question's group out.

    ``extra`` adds generated queries (mask, weights=None) to every passage as well.
    """
    d = cv.passages.shape[1]
    q_sum = np.zeros_like(cv.passages)
    q_count = np.zeros(len(cv.pids), dtype=np.float64)
    accumulate(q_sum, q_count, human.row, human.vectors)
    if extra is not None:
        accumulate(q_sum, q_count, cv.gen_row[extra[0]], cv.gen[extra[0]])
    fuse = get_fusion(strategy)
    fused = fuse(cv.passages, q_sum, q_count, alpha).astype(np.float32)
    scores = split.vectors @ fused.T
    # the gold passage of each scored question, without that question in any language
    codes = {g: i for i, g in enumerate(dict.fromkeys(human.group.tolist()))}
    hg = np.array([codes[g] for g in human.group])
    g_sum = np.zeros((len(codes), d))
    g_cnt = np.zeros(len(codes))
    np.add.at(g_sum, hg, human.vectors.astype(np.float64))
    np.add.at(g_cnt, hg, 1.0)
    sg = np.array([codes.get(g, -1) for g in split_group])
    has = sg >= 0
    gold = split.gold
    s_sum = q_sum[gold].copy()
    s_cnt = q_count[gold].copy()
    s_sum[has] -= g_sum[sg[has]]
    s_cnt[has] -= g_cnt[sg[has]]
    own = fuse(cv.passages[gold], s_sum, s_cnt, alpha).astype(np.float32)
    scores[np.arange(len(gold)), gold] = np.einsum("ij,ij->i", split.vectors, own)
    return scores


def load_human_questions(
    cfg: ExperimentConfig, cv: CorpusVectors, langs: Sequence[str], out: Path
) -> HumanQuestions:
    """Encode XQuAD's questions (all splits) in ``langs`` like generated queries (max length 32)."""
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.encode import EmbeddingShards, encode_queries
    from xqg.models.encoder import BiEncoder

    bench = load_xquad(list(langs), split="all")
    row_of = {pid: i for i, pid in enumerate(cv.pids)}
    qs = bench.all_queries()
    enc = BiEncoder(cfg.encoder).with_settings(query_max_length=cfg.augment.query_max_length)
    encode_queries(qs, out / "human-questions-emb", encoder=enc, show_progress=False)
    ids, vecs = EmbeddingShards.open(out / "human-questions-emb").load()
    index = {q: i for i, q in enumerate(ids)}
    take = np.array([index[q.id] for q in qs])
    return HumanQuestions(
        vectors=np.ascontiguousarray(vecs[take], dtype=np.float32),
        row=np.array([row_of[next(iter(bench.qrels[q.id]))] for q in qs], dtype=np.int64),
        group=np.array([q.id.rsplit("-", 1)[0] if "-" in q.id else q.id for q in qs], dtype=object),
    )
