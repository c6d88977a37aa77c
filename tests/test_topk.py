"""xqg's one exact top-k (:func:`xqg.search.exact_top_k`): order, ties, and that each former copy
(search's lexsort, α tuning's stable argsort, the resource analysis' argpartition-with-ties,
negatives mining's argpartition) gives the same results through it."""

from __future__ import annotations

import numpy as np
import pytest

from xqg.search import exact_top_k, top_k_run


def _oracle(scores: np.ndarray, k: int, keep_ties: bool = False) -> list[list[int]]:
    """Full sort of every row by (score desc, column asc); with ties, everything ≥ the k-th score."""
    out = []
    for row in scores:
        order = sorted(range(len(row)), key=lambda j: (-row[j], j))
        if keep_ties and 0 < k < len(row):
            order = [j for j in order if row[j] >= row[order[k - 1]]]
        else:
            order = order[:k]
        out.append(order)
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 7, 10, 11, 50])
@pytest.mark.parametrize("keep_ties", [False, True])
def test_matches_a_full_sort_with_many_ties(k, keep_ties):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 4, size=(30, 10)).astype(np.float32)  # few values: ties everywhere
    got = [r.tolist() for r in exact_top_k(scores, k, keep_ties=keep_ties)]
    assert got == _oracle(scores, k, keep_ties)


def test_without_ties_each_row_is_argsort_and_edge_cases():
    scores = np.random.default_rng(0).standard_normal((20, 50)).astype(np.float32)
    top = np.stack(exact_top_k(scores, 5))
    assert (top == np.argsort(-scores, axis=1)[:, :5]).all()
    assert [r.tolist() for r in exact_top_k(np.array([[0.5, 0.9, 0.5, 0.1]]), 2)] == [[1, 0]]
    assert exact_top_k(scores, 0)[0].size == 0
    assert exact_top_k(np.zeros((0, 3)), 2) == []
    with pytest.raises(Exception, match="matrix"):
        exact_top_k(np.zeros(3), 1)


def _old_top_k_run_order(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    return np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=-1)[:, :k]


def _old_exact_run_keep(row: np.ndarray, depth: int) -> set[int]:
    n_p = len(row)
    depth = min(depth, n_p)
    if depth < n_p:
        top = np.argpartition(-row, depth - 1)[:depth]
        return set(np.flatnonzero(row >= row[top].min()).tolist())
    return set(range(n_p))


def _old_dense_rankings(scores: np.ndarray, depth: int) -> np.ndarray:
    k = min(depth, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1, kind="stable")[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_former_copies_give_identical_results(seed):
    rng = np.random.default_rng(seed)
    tied = rng.integers(-3, 4, size=(40, 25)).astype(np.float32)
    free = rng.standard_normal((40, 25)).astype(np.float32)
    for scores in (tied, free):
        for k in (1, 4, 10, 25, 30):
            new = exact_top_k(scores, k)
            # search.top_k_run (lexsort) and augment.tune_alpha (stable argsort): same order, ties included
            assert [r.tolist() for r in new] == _old_top_k_run_order(scores, k).tolist()
            assert [r.tolist() for r in new] == np.argsort(-scores, axis=1, kind="stable")[:, :k].tolist()
            # resource_levels.exact_run: the same passages, ties at the cut kept
            with_ties = exact_top_k(scores, k, keep_ties=True)
            assert [set(r.tolist()) for r in with_ties] == [_old_exact_run_keep(row, k) for row in scores]
    # negatives mining: its argpartition order among equal scores was arbitrary; without ties it is the same
    for k in (1, 5, 25):
        assert (np.stack(exact_top_k(free, k)) == _old_dense_rankings(free, k)).all()


def test_top_k_run_keeps_rank_order():
    scores = np.array([[1.0, 3.0, 3.0, 2.0]], dtype=np.float32)
    run = top_k_run(["q"], scores, ["a", "b", "c", "d"], 3)
    assert list(run["q"].items()) == [("b", 3.0), ("c", 3.0), ("d", 2.0)]


def test_same_order_as_the_searcher_over_a_flat_index(tmp_path):
    """Integer vectors make exact ties. Both rank by (score desc, row asc) and keep the same scores;
    which of several rows tied *at the cut* a FAISS part keeps is FAISS's choice (not always the
    lowest row), so the rows are compared exactly only where the cut has no tie."""
    from tests.test_encode_index_search import embeddings_of
    from xqg.config import IndexConfig
    from xqg.encode import EmbeddingShards
    from xqg.index import build_index
    from xqg.search import Searcher, search_vectors

    rng = np.random.default_rng(3)
    emb = embeddings_of(tmp_path / "emb", rng.integers(0, 6, size=(60, 5)).astype(np.float32), 25)
    q = rng.integers(0, 6, size=(30, 5)).astype(np.float32)
    qids = [f"q{i}" for i in range(30)]
    _, x = EmbeddingShards.open(emb).load()
    scores = q @ x.T
    depth, exact_rows = 7, 0
    for per_shard in (False, True):
        build_index(emb, tmp_path / f"ix{per_shard}", IndexConfig(per_shard=per_shard), show_progress=False)
        run = search_vectors(Searcher(tmp_path / f"ix{per_shard}"), qids, q, depth=depth)
        for r, (qid, top) in enumerate(zip(qids, exact_top_k(scores, depth), strict=True)):
            got = [int(d[1:]) for d in run[qid]]
            assert got == sorted(got, key=lambda j: (-scores[r, j], j))  # the same order rule
            assert sorted(scores[r, got]) == sorted(scores[r, top])  # the same scores
            if (scores[r] >= scores[r, top[-1]]).sum() == depth:  # no tie at the cut: identical
                assert got == top.tolist()
                exact_rows += 1
    assert exact_rows > 10
