"""Stage: passage embeddings + generated-query embeddings → fused passage embeddings.

The paper (Zhuang, Shou, Zuccon, SIGIR 2023) stores, for every passage, ``(1-α)·p + α·Σ_i q_i``:
the raw passage vector blended with the *sum* of the raw vectors of all queries generated for
it, in every language (reference: ielab/xQG4xDR ``fuse_embeds.py``; α = 0.01 in the paper).
Search stays a plain inner product over the fused vectors, so queries cost nothing extra.

Fusion strategies are small named functions selected by name (as bm25s does for its scoring
variants); each takes a block of passage vectors, the per-passage *sum* and *count* of the
selected query vectors, and α:

* ``paper`` — ``(1-α)·p + α·Σq`` exactly as published (raw vectors, sum over all queries);
* ``mean`` — ``(1-α)·p + α·mean(q)`` (α no longer scales with the number of queries);
* ``paper-norm`` / ``mean-norm`` — the same, re-normalised to unit length afterwards, for cosine
  models such as e5 whose passage vectors are unit length.

A passage with no selected queries keeps ``(1-α)·p`` under ``paper`` (the formula with an empty
sum; the reference code instead required every passage to have queries) and ``p`` under
``mean``; the manifest counts such passages, and ``require_all=True`` makes them an error.

Queries are matched to passages **by id**, never by position: every encoded query row carries
``"{lang}:{sample}:{passage_id}"`` (:func:`xqg.encode.generated_query_id`); a query whose
passage is not in the passage folder is an error, as is a query folder made with a different
model. Which languages, and how many samples per language (``n``), are chosen here, without
regenerating or re-encoding.

Memory is bounded: passages are processed one embedding shard at a time, and for each block only
the query shards whose passages fall in it are memory-mapped, read and unmapped again, using a
small int32 "which passage row" array per query shard; the per-block sum is one sparse-matrix
product. Peak memory is about one passage shard plus those int32 arrays (4 bytes per generated
query), not the query vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from xqg.encode import EmbeddingShards, parse_generated_id, shard_names, write_embedding_shard
from xqg.errors import ManifestError, XqgError
from xqg.io import atomic_open, config_hash, start_folder, write_manifest
from xqg.progress import progress_bar
from xqg.query_store import decode, parse_sum_id

STAGE = "augment"

#: Query rows copied out of a memory map at a time (16k × 384 dims × 8 bytes ≈ 50 MB as float64).
_CHUNK = 16_384

Fusion = Callable[[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]


def fuse_paper(p: np.ndarray, q_sum: np.ndarray, q_count: np.ndarray, alpha: float) -> np.ndarray:
    """``(1-α)·p + α·Σq`` — the published fusion (reference ``fuse_embeds.py``)."""
    return (1.0 - alpha) * p + alpha * q_sum


def fuse_mean(p: np.ndarray, q_sum: np.ndarray, q_count: np.ndarray, alpha: float) -> np.ndarray:
    """``(1-α)·p + α·mean(q)``; a passage without queries keeps ``p``."""
    has = q_count > 0
    mean = np.divide(q_sum, np.maximum(q_count, 1)[:, None])
    out = (1.0 - alpha) * p + alpha * mean
    out[~has] = p[~has]
    return out


def _renormalised(f: Fusion) -> Fusion:
    def fused(p: np.ndarray, q_sum: np.ndarray, q_count: np.ndarray, alpha: float) -> np.ndarray:
        out = f(p, q_sum, q_count, alpha)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    fused.__doc__ = f"{f.__doc__} Then re-normalised to unit length (cosine models)."
    return fused


FUSIONS: dict[str, Fusion] = {
    "paper": fuse_paper,
    "mean": fuse_mean,
    "paper-norm": _renormalised(fuse_paper),
    "mean-norm": _renormalised(fuse_mean),
}


def get_fusion(name: str) -> Fusion:
    try:
        return FUSIONS[name]
    except KeyError:
        raise XqgError(f"unknown fusion strategy '{name}'; choose one of: {', '.join(FUSIONS)}") from None


def _check_same_encoder(passages: EmbeddingShards, queries: EmbeddingShards) -> None:
    """Queries must be embedded by the same model (and pooling) as the passages they are added to."""
    pe, qe = passages.manifest["config"]["encoder"], queries.manifest["config"]["encoder"]
    diff = {k: (pe[k], qe[k]) for k in ("model", "pooling", "normalize") if pe.get(k) != qe.get(k)}
    if diff:
        raise ManifestError(f"passage and query embeddings come from different encoders: {diff}")
    if queries.manifest.get("kind") != "query":
        raise ManifestError(f"{queries.path}: expected generated queries encoded as queries (--kind query)")
    if passages.dim != queries.dim:
        raise ManifestError(f"dimension mismatch: passages {passages.dim}, queries {queries.dim}")


def _check_sums_selection(queries: EmbeddingShards, langs: set[str] | None, n: int | None) -> None:
    """Sums hold every sample of their group: refuse a selection they cannot honour."""
    st, info = queries.storage, queries.manifest.get("storage", {})
    stored_n, stored_langs = int(info.get("max_samples", 0)), set(info.get("langs", []))
    if n is not None and n < stored_n:
        raise XqgError(
            f"{queries.path}: stores per-{st.sum_by} sums of up to {stored_n} samples per language, "
            f"so the first {n} cannot be selected; re-encode with --storage float16 (or int8) to "
            "keep one vector per query, or drop --n"
        )
    if st.sum_by == "passage" and langs is not None and not stored_langs <= langs:
        raise XqgError(
            f"{queries.path}: stores one sum per passage over {', '.join(sorted(stored_langs))}, so "
            f"languages {', '.join(sorted(stored_langs - langs))} cannot be left out; re-encode with "
            "--sum-by language (or --storage float16) to select languages"
        )


def _parse_row(rid: str, queries: EmbeddingShards) -> tuple[str | None, int, str]:
    """``(language, sample, passage id)`` of a stored row; sums have no sample (0)."""
    if queries.storage.is_sums:
        lang, pid = parse_sum_id(rid, queries.storage)
        return lang, 0, pid
    return parse_generated_id(rid)


def _query_rows(
    queries: EmbeddingShards, row_of: dict[str, int], langs: set[str] | None, n: int | None
) -> tuple[list[np.ndarray], dict[str, int]]:
    """For each query shard, the passage row of every query (-1 = not selected); counts per language.

    Rows of a sums folder stand for ``count`` queries each; a per-passage sum counts as ``all``."""
    out: list[np.ndarray] = []
    per_lang: dict[str, int] = {}
    unknown: list[str] = []
    sums = queries.storage.is_sums
    if sums:
        _check_sums_selection(queries, langs, n)
    for s in queries.manifest["shards"]:
        ids = (queries.path / s["ids"]).read_text(encoding="utf-8").splitlines()
        counts = queries.shard_arrays(s)[1]["count"] if sums else None
        rows = np.full(len(ids), -1, dtype=np.int32)
        for j, rid in enumerate(ids):
            try:
                lang, sample, pid = _parse_row(rid, queries)
            except ValueError:
                raise ManifestError(
                    f"{queries.path / s['ids']}:{j + 1}: '{rid}' is not a generated-query id"
                ) from None
            row = row_of.get(pid)
            if row is None:
                unknown.append(pid)
                continue
            if (langs is None or lang is None or lang in langs) and (n is None or sample < n):
                rows[j] = row
                key = lang or "all"
                per_lang[key] = per_lang.get(key, 0) + (int(counts[j]) if counts is not None else 1)
        out.append(rows)
    if unknown:
        uniq = list(dict.fromkeys(unknown))
        raise ManifestError(
            f"{len(uniq)} passage id(s) in {queries.path} are not in the passage embeddings, "
            f"e.g. {uniq[:3]} — the query and passage folders do not belong together"
        )
    return out, per_lang


def accumulate(
    q_sum: np.ndarray,
    q_count: np.ndarray,
    local_rows: np.ndarray,
    vectors: np.ndarray,
    counts: np.ndarray | None = None,
) -> None:
    """Add each vector into row ``local_rows[i]`` of ``q_sum`` (one sparse product) and count it
    (``counts[i]`` times when the vectors are already sums of that many queries)."""
    m = sp.csr_matrix(
        (np.ones(len(local_rows)), (local_rows, np.arange(len(local_rows)))),
        shape=(len(q_sum), len(local_rows)),
    )
    q_sum += m @ np.asarray(vectors, dtype=np.float64)
    if counts is None:
        q_count += np.bincount(local_rows, minlength=len(q_sum))
    else:
        q_count += np.bincount(local_rows, weights=counts, minlength=len(q_sum)).astype(np.int64)


def _add_rows(
    queries: EmbeddingShards, s: dict[str, Any], sel: np.ndarray, local_rows: np.ndarray,
    q_sum: np.ndarray, q_count: np.ndarray,
) -> None:  # fmt: skip
    """Accumulate the selected rows ``sel`` of shard ``s`` (any storage form), in bounded chunks.

    The shard is memory-mapped, the selected rows copied out and decoded ``_CHUNK`` at a time,
    and the map dropped again: pages of a mapping kept open would stay resident and peak RSS
    would grow with the total size of the query shards."""
    emb, extra = queries.shard_arrays(s)
    for c in range(0, len(sel), _CHUNK):
        part = sel[c : c + _CHUNK]
        rows = {name: a[part] for name, a in extra.items()}
        vectors = decode(emb[part], rows, queries.storage)
        accumulate(q_sum, q_count, local_rows[c : c + _CHUNK], vectors, rows.get("count"))
    del emb, extra


def augment(
    passage_dir: str | Path,
    query_dir: str | Path,
    out_dir: str | Path,
    *,
    strategy: str = "paper",
    alpha: float = 0.01,
    langs: Iterable[str] | None = None,
    n: int | None = None,
    require_all: bool = False,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Write fused passage shards (same ids and shard layout as ``passage_dir``) + manifest.

    The output is an embedding folder: ``xqg index`` builds an index from it exactly as from the
    plain passage embeddings, and searches encode queries with the same recorded encoder.
    """
    fuse = get_fusion(strategy)
    if not 0.0 <= alpha <= 1.0:
        raise XqgError(f"alpha must be in [0, 1], got {alpha}")
    passages = EmbeddingShards.open(passage_dir)
    queries = EmbeddingShards.open(query_dir)
    if passages.manifest.get("kind") != "passage":
        raise ManifestError(f"{passage_dir}: expected passage embeddings")
    _check_same_encoder(passages, queries)
    lang_set = set(langs) if langs is not None else None

    row_of: dict[str, int] = {}
    for i, pid in enumerate(passages.ids()):
        row_of[pid] = i
    q_rows, per_lang = _query_rows(queries, row_of, lang_set, n)
    q_shards = queries.manifest["shards"]
    # Passage-row span of each query shard: generated queries follow corpus order, so a query
    # shard usually touches one or two passage shards and the others are skipped unread.
    q_span = [(int(r[r >= 0].min()), int(r.max())) if (r >= 0).any() else None for r in q_rows]
    del row_of

    out_dir = start_folder(out_dir)
    cfg = {
        "strategy": strategy,
        "alpha": alpha,
        "langs": sorted(lang_set) if lang_set is not None else None,
        "n": n,
        "encoder": passages.manifest["config"]["encoder"],
    }
    cfg_hash = config_hash(cfg)
    bar = progress_bar(total=passages.rows, desc=f"augment ({strategy}, α={alpha:g})", unit="p",
                       disable=not show_progress)  # fmt: skip
    start = 0
    no_queries = 0
    files: list[str] = []
    shards_out: list[dict[str, Any]] = []
    for i, (ids, p) in enumerate(passages):
        end = start + len(ids)
        q_sum = np.zeros((len(ids), passages.dim), dtype=np.float64)
        q_count = np.zeros(len(ids), dtype=np.int64)
        for rows, shard, span in zip(q_rows, q_shards, q_span, strict=True):
            if span is None or span[1] < start or span[0] >= end:
                continue
            sel = np.nonzero((rows >= start) & (rows < end))[0]
            if len(sel):
                _add_rows(queries, shard, sel, rows[sel] - start, q_sum, q_count)
        missing = int(np.sum(q_count == 0))
        if missing and require_all:
            first = ids[int(np.argmax(q_count == 0))]
            raise ManifestError(f"{missing} passage(s) have no selected generated queries, e.g. '{first}'")
        no_queries += missing
        fused = fuse(np.asarray(p, dtype=np.float64), q_sum, q_count, alpha).astype(np.float32)
        meta = write_embedding_shard(out_dir, i, ids, fused, cfg_hash)
        files += list(shard_names(i)[:2])
        shards_out.append({"emb": shard_names(i)[0], "ids": shard_names(i)[1], "rows": meta["rows"]})
        bar.update(len(ids))
        start = end
    bar.close()
    with atomic_open(out_dir / "ids.txt") as fh:
        fh.write((passages.path / passages.manifest["id_file"]).read_text(encoding="utf-8"))
    return write_manifest(
        out_dir,
        stage=STAGE,
        config=cfg,
        counts={
            "rows": passages.rows,
            "shards": len(shards_out),
            "queries_used": int(sum(per_lang.values())),
            "passages_without_queries": no_queries,
        },
        files=["ids.txt", *files],
        inputs={
            "passages": str(Path(passage_dir).resolve()),
            "passages_hash": passages.manifest["config_hash"],
            "queries": str(Path(query_dir).resolve()),
            "queries_hash": queries.manifest["config_hash"],
        },
        extra={
            "kind": "passage",
            "dim": passages.dim,
            "dtype": "float32",
            "model": passages.manifest.get("model"),
            "pooling": passages.manifest.get("pooling"),
            "normalize": strategy.endswith("-norm") or False,
            "id_file": "ids.txt",
            "shards": shards_out,
            "queries_per_language": per_lang,
            "query_storage": queries.manifest.get("storage") or queries.storage.describe(),
        },
    )


def query_sums(
    passage_dir: str | Path,
    query_dir: str | Path,
    *,
    langs: Iterable[str] | None = None,
    n: int | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """In memory: passage ids, passage vectors, and per-passage sum and count of selected queries.

    For tuning on corpora that fit in memory (XQuAD: 240 passages); :func:`augment` streams.
    """
    passages = EmbeddingShards.open(passage_dir)
    queries = EmbeddingShards.open(query_dir)
    _check_same_encoder(passages, queries)
    ids, p = passages.load()
    row_of = {pid: i for i, pid in enumerate(ids)}
    q_rows, _ = _query_rows(queries, row_of, set(langs) if langs is not None else None, n)
    q_sum = np.zeros((len(ids), passages.dim), dtype=np.float64)
    q_count = np.zeros(len(ids), dtype=np.int64)
    for rows, shard in zip(q_rows, queries.manifest["shards"], strict=True):
        sel = np.nonzero(rows >= 0)[0]
        if len(sel):
            _add_rows(queries, shard, sel, rows[sel], q_sum, q_count)
    return ids, p.astype(np.float64), q_sum, q_count


def tune_alpha(
    passage_dir: str | Path,
    query_dir: str | Path,
    dev_queries: np.ndarray,
    dev_qids: list[str],
    dev_qrels: dict[str, dict[str, int]],
    *,
    strategies: Iterable[str] = ("paper", "mean-norm"),
    alphas: Iterable[float] = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3),
    langs: Iterable[str] | None = None,
    n: int | None = None,
    metric: str = "mrr@10",
    depth: int = 100,
) -> dict[str, Any]:
    """Pick the fusion strategy and α by ``metric`` on **dev** queries; return the whole grid.

    ``dev_queries`` are the dev questions already encoded with the index's query encoder. The
    test split must never be passed here: this is the only place xqg chooses α, and it records
    the grid it tried so the choice can be audited. Ties go to the smaller α (less change).
    """
    from xqg.evaluate.metrics import evaluate_qrels
    from xqg.search import exact_top_k

    ids, p, q_sum, q_count = query_sums(passage_dir, query_dir, langs=langs, n=n)
    grid: list[dict[str, Any]] = []
    for strategy in strategies:
        fuse = get_fusion(strategy)
        for alpha in alphas:
            fused = fuse(p, q_sum, q_count, float(alpha)).astype(np.float32)
            scores = dev_queries.astype(np.float32) @ fused.T
            top = exact_top_k(scores, depth)
            run = {qid: {ids[j]: float(scores[r, j]) for j in top[r]} for r, qid in enumerate(dev_qids)}
            per_query = evaluate_qrels(run, dev_qrels, [metric])[metric]
            grid.append(
                {
                    "strategy": strategy,
                    "alpha": float(alpha),
                    metric: float(np.mean(list(per_query.values()))),
                }
            )
    best = max(grid, key=lambda g: (g[metric], -g["alpha"]))
    return {"metric": metric, "best": best, "grid": grid, "queries": len(dev_qids), "langs": langs, "n": n}
