"""Stage: queries → ranked runs over an index folder (one or many FAISS parts, merged exactly).

Each part returns its own top-k; the union is re-ranked by (score desc, global row asc). For
exact indexes this equals searching one index over all rows (the merged list is the exact
top-k, with ties broken by corpus order), which the tests check. Queries are encoded with the
encoder settings recorded in the index manifest, so a query can never be embedded differently
from the passages it is compared with unless the caller asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from xqg.config import EncoderConfig, SearchConfig
from xqg.errors import ManifestError, XqgError
from xqg.io import read_manifest, start_folder, write_manifest
from xqg.progress import progress_bar
from xqg.types import Query, Run


@dataclass
class Hits:
    """Top-k for a batch of queries: ``docids[i]`` ranked, ``scores[i]`` aligned (float32)."""

    docids: list[list[str]]
    scores: list[np.ndarray]


class Searcher:
    """Exact (or approximate) top-k over every part of an index folder."""

    def __init__(self, index_dir: str | Path, *, mmap: bool = False, params: str | None = None) -> None:
        self.path = Path(index_dir)
        self.params = params
        self.manifest = read_manifest(self.path, stage="index")
        try:
            self._load_parts(mmap, params)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise ManifestError(
                f"{self.path / 'manifest.json'}: field {e}: missing or malformed ({type(e).__name__})"
            ) from None
        self.all_ids = np.concatenate([ids for _, ids in self.parts]) if self.parts else np.array([], object)

    def _load_parts(self, mmap: bool, params: str | None) -> None:
        # MMAP maps IVF inverted lists; MMAP_IFC maps the codes of flat indexes, so a flat shard
        # is paged in from disk on demand instead of read into memory (the OS may evict it).
        flags = (faiss.IO_FLAG_MMAP | faiss.IO_FLAG_MMAP_IFC) if mmap else 0
        self.parts: list[tuple[faiss.Index, np.ndarray]] = []
        self.offsets: list[int] = []
        offset = 0
        for p in self.manifest["parts"]:
            try:
                index = faiss.read_index(str(self.path / p["index"]), flags)
            except RuntimeError as e:
                raise ManifestError(f"{self.path / p['index']}: not a readable faiss index ({e})") from None
            if params:
                try:
                    faiss.ParameterSpace().set_index_parameters(index, params)
                except RuntimeError as e:
                    raise XqgError(f"{self.path}: cannot set search parameters '{params}': {e}") from None
            ids = np.array((self.path / p["ids"]).read_text(encoding="utf-8").splitlines(), dtype=object)
            if index.ntotal != len(ids) or index.ntotal != p.get("rows", index.ntotal):
                raise ManifestError(
                    f"{self.path / p['index']}: {index.ntotal} vectors, {len(ids)} ids, "
                    f"the manifest says {p.get('rows')}"
                )
            if index.d != int(self.manifest["dim"]):
                raise ManifestError(
                    f"{self.path / p['index']}: dim {index.d}, the manifest says {self.manifest['dim']}"
                )
            self.parts.append((index, ids))
            self.offsets.append(offset)
            offset += index.ntotal
        self.ntotal = offset
        self.dim = int(self.manifest["dim"])
        self.encoder_config  # noqa: B018 - a malformed encoder config is an error here, not later

    @property
    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig.model_validate(self.manifest["encoder"])

    def search(self, queries: np.ndarray, k: int) -> Hits:
        """Top-``k`` for each row of ``queries`` (float32, (n, dim))."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise XqgError(f"query vectors have shape {q.shape}; the index expects (n, {self.dim})")
        all_d, all_i = [], []
        for (index, _), off in zip(self.parts, self.offsets, strict=True):
            kk = min(k, index.ntotal)
            if kk == 0:
                continue
            d, i = index.search(q, kk)
            all_d.append(d)
            all_i.append(np.where(i >= 0, i + off, -1))
        if not all_d:
            return Hits([[] for _ in range(len(q))], [np.empty(0, np.float32) for _ in range(len(q))])
        d = np.concatenate(all_d, axis=1)
        i = np.concatenate(all_i, axis=1)
        # Higher key = better (L2: smaller distance); empty slots (-1) rank last.
        key = -d if self.manifest["config"].get("metric") == "l2" else d
        key = np.where(i >= 0, key, -np.inf)
        # Rank by key desc, then global row asc: deterministic, identical for 1 or N parts.
        order = np.lexsort((i, -key), axis=-1)[:, :k]
        d = np.take_along_axis(d, order, axis=1)
        i = np.take_along_axis(i, order, axis=1)
        d = d.astype(np.float32, copy=False)
        if (i >= 0).all():  # the common case: one vectorised id lookup for the whole batch
            return Hits(self.all_ids[i].tolist(), list(d))
        docids, scores = [], []
        for row_d, row_i in zip(d, i, strict=True):
            keep = row_i >= 0
            docids.append(self.all_ids[row_i[keep]].tolist())
            scores.append(row_d[keep])
        return Hits(docids, scores)


#: Encoder settings that change speed or placement, not the vectors (beyond float rounding).
RUNTIME_SETTINGS = frozenset({"batch_size", "device", "threads", "dtype"})


def check_same_encoder(given: EncoderConfig, expected: EncoderConfig, what: str) -> None:
    """Raise unless ``given`` embeds queries as ``expected`` does (runtime settings may differ)."""
    a, b = given.model_dump(), expected.model_dump()
    diff = {k: (v, b[k]) for k, v in a.items() if b[k] != v}
    if set(diff) - RUNTIME_SETTINGS:
        raise XqgError(f"query encoder differs from {what}: {diff}")


def ranks_in_scores(scores: np.ndarray, own: np.ndarray) -> np.ndarray:
    """1-based rank of column ``own[i]`` in row ``i`` of ``scores`` (higher = better).

    Ties go to the lower column (corpus row), as :class:`Searcher` breaks them, so a rank computed
    here equals the position in a search run over the same vectors.
    """
    col = np.arange(scores.shape[1])
    own_score = scores[np.arange(len(own)), own][:, None]
    better = (scores > own_score) | ((scores == own_score) & (col[None, :] < own[:, None]))
    return better.sum(axis=1) + 1


def exact_ranks(
    q: np.ndarray, p: np.ndarray, own: np.ndarray, depth: int | None = None, chunk_bytes: int = 1 << 28
) -> np.ndarray:
    """Rank (1-based) of row ``own[i]`` of ``p`` for query ``q[i]`` by inner product; 0 beyond ``depth``.

    Queries are processed in chunks so the score matrix stays under ``chunk_bytes``.
    """
    ranks = np.zeros(len(q), dtype=np.int64)
    rows = max(1, chunk_bytes // (4 * max(1, len(p))))
    for start in range(0, len(q), rows):
        sl = slice(start, start + rows)
        ranks[sl] = ranks_in_scores(q[sl] @ p.T, own[sl])
    if depth is not None:
        ranks[ranks > depth] = 0
    return ranks


def _rank_columns(row: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``cols`` ordered by ``row[cols]`` descending, then column ascending (xqg's tie rule)."""
    return cols[np.lexsort((cols, -row[cols]))]


def exact_top_k(scores: np.ndarray, k: int, *, keep_ties: bool = False) -> list[np.ndarray]:
    """Column indices of the ``k`` highest scores of each row: score descending, ties by column ascending.

    This is xqg's one exact top-k (negatives mining, α tuning, the analyses and :func:`top_k_run`
    use it), with :class:`Searcher`'s order rule: a higher score first, equal scores in corpus
    order. (Among rows tied *at the cut*, a FAISS index part keeps the ones FAISS picks, which need
    not be the lowest; here they always are.) ``keep_ties`` also keeps every column tied with the
    ``k``-th score, so a caller that re-sorts by another tie rule (doc id) sees all candidates; rows
    then differ in length. Rows are selected with ``argpartition`` and only the candidates are
    sorted, so a row costs ``O(n + k log k)``, not a full sort.

    Args:
        scores: ``(queries, documents)`` score matrix, higher is better.
        k: how many per row (more than the columns means all of them).
        keep_ties: keep the ties at the cut (rows may be longer than ``k``).

    Returns:
        One int64 array of column indices per row, in rank order.

    Example:
        >>> [r.tolist() for r in exact_top_k(np.array([[0.5, 0.9, 0.5, 0.1]]), 2)]
        [[1, 0]]
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise XqgError(f"scores must be a (queries, documents) matrix, got shape {scores.shape}")
    n, m = scores.shape
    k = min(int(k), m)
    if k <= 0:
        return [np.empty(0, np.int64) for _ in range(n)]
    all_cols = np.arange(m, dtype=np.int64)
    if k == m:
        return [_rank_columns(row, all_cols) for row in scores]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k].astype(np.int64)
    cut = np.take_along_axis(scores, part, axis=1).min(axis=1)
    n_at_least = (scores >= cut[:, None]).sum(axis=1)
    out = []
    for r, row in enumerate(scores):
        if n_at_least[r] == k:  # no tie at the cut: argpartition chose exactly the top k
            out.append(_rank_columns(row, part[r]))
            continue
        ranked = _rank_columns(row, np.flatnonzero(row >= cut[r]).astype(np.int64))
        out.append(ranked if keep_ties else ranked[:k])
    return out


def top_k_run(qids: Sequence[str], scores: np.ndarray, docids: Sequence[str], k: int) -> Run:
    """A Run from a dense score matrix (queries × documents): top ``k`` per row, ties by column."""
    top = exact_top_k(scores, k)
    return {qid: {docids[j]: float(scores[r, j]) for j in top[r]} for r, qid in enumerate(qids)}


def hits_to_run(qids: Sequence[str], hits: Hits) -> Run:
    """Convert hits to a Run; dict insertion order keeps the rank order."""
    return {
        qid: {d: float(s) for d, s in zip(docs, sc, strict=True)}
        for qid, docs, sc in zip(qids, hits.docids, hits.scores, strict=True)
    }


def search_vectors(
    searcher: Searcher, qids: Sequence[str], vectors: np.ndarray, *, depth: int = 100, batch_size: int = 1024
) -> Run:
    """Search pre-computed query vectors in batches."""
    if len(qids) != len(vectors):
        raise XqgError(f"{len(qids)} query ids but {len(vectors)} query vectors")
    run: Run = {}
    for start in range(0, len(qids), batch_size):
        sl = slice(start, start + batch_size)
        run.update(hits_to_run(qids[sl], searcher.search(vectors[sl], depth)))
    return run


def search_queries(
    index_dir: str | Path,
    queries: Sequence[Query],
    *,
    config: SearchConfig | None = None,
    encoder: Any | None = None,
    out_dir: str | Path | None = None,
    show_progress: bool = True,
) -> Run:
    """Encode ``queries`` with the index's encoder settings, search, and optionally write the run.

    ``config.query_max_length`` overrides the query length recorded with the index (the manifest
    records the encoder settings actually used). With ``out_dir``: ``run.trec`` (TREC format),
    ``run.jsonl`` (ranked docids + scores per query) and a manifest are written there. Queries
    cut at the query max length are counted per language (the manifest's ``truncation``) and
    warned about past :data:`~xqg.models.encoder.TRUNCATION_WARN_SHARE` of a language.
    """
    from xqg.models.encoder import BiEncoder, TruncationCounter

    cfg = config or SearchConfig()
    searcher = Searcher(index_dir, params=cfg.params, mmap=cfg.mmap)
    expected = searcher.encoder_config
    if cfg.query_max_length is not None:  # the one encoder setting a search may change
        expected = expected.model_copy(update={"query_max_length": cfg.query_max_length})
    if encoder is None:
        encoder = BiEncoder(expected)
    else:
        check_same_encoder(encoder.config, expected, f"the one that built {index_dir}")
    qids = [q.id for q in queries]
    if len(set(qids)) != len(qids):
        raise XqgError("duplicate query ids in the queries to search")
    bar = progress_bar(total=len(queries), desc="encode queries", unit="q", disable=not show_progress)
    vecs = encoder.encode_queries([q.text for q in queries], progress=bar.update)
    bar.close()
    counter = TruncationCounter(encoder, "query", encoder.config.query_max_length)
    counter.add([q.text for q in queries], [q.lang for q in queries])
    truncation = counter.summary("search queries")
    run = search_vectors(searcher, qids, vecs, depth=cfg.depth, batch_size=cfg.batch_size)
    if out_dir is not None:
        write_run_dir(
            out_dir,
            run,
            config={"search": cfg.model_dump(), "encoder": encoder.config.model_dump()},
            inputs={"index": str(Path(index_dir).resolve())},
            extra={"truncation": truncation},
        )
    return run


def write_run_dir(
    out_dir: str | Path,
    run: Run,
    *,
    config: dict[str, Any],
    inputs: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``run.trec`` + ``run.jsonl`` + manifest (with ``extra`` fields) into ``out_dir``."""
    from xqg.data.runs import write_jsonl_run, write_trec_run

    out_dir = start_folder(out_dir)
    write_trec_run(out_dir / "run.trec", run, tag="xqg")
    write_jsonl_run(out_dir / "run.jsonl", run)
    return write_manifest(
        out_dir,
        stage="search",
        config=config,
        counts={"queries": len(run), "hits": sum(len(v) for v in run.values())},
        files=["run.trec", "run.jsonl"],
        inputs=inputs,
        extra=extra,
    )
