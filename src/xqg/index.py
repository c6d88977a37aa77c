"""Stage: embedding shards → FAISS index files + manifest.

The default is exact inner-product search (``IndexFlatIP``), which is what the paper's
augmented vectors are searched with. Any faiss ``index_factory`` string is accepted; indexes
that need training are trained on a seeded sample. With ``per_shard`` each embedding shard
becomes its own index, so no single index has to fit in memory; :class:`xqg.search.Searcher`
merges their top-k exactly.

Layout::

    index-00000.faiss   ids-00000.txt   (one pair per index part)
    manifest.json       factory, metric, dims, rows per part, the encoder config of the vectors
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from xqg.config import IndexConfig
from xqg.encode import EmbeddingShards
from xqg.errors import XqgError
from xqg.io import atomic_open, atomic_path, is_write_failure, output_error, start_folder, write_manifest
from xqg.progress import progress_bar

STAGE = "index"
METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}


def new_index(dim: int, factory: str, metric: str) -> faiss.Index:
    """Create an empty index; a bad factory string becomes an error that says which string."""
    try:
        return faiss.index_factory(dim, factory, METRICS[metric])
    except KeyError:
        raise XqgError(f"unknown metric '{metric}'; choose one of: {', '.join(METRICS)}") from None
    except RuntimeError as e:
        raise XqgError(f"faiss cannot build index '{factory}' for dim {dim}: {e}") from None


def _set_ef_construction(index: faiss.Index, ef: int) -> None:
    """Set HNSW's efConstruction on the graph inside ``index`` (through IDMap / pre-transforms)."""
    idx = faiss.downcast_index(index)
    while not isinstance(idx, faiss.IndexHNSW):
        inner = getattr(idx, "index", None)
        if inner is None:
            raise XqgError(f"hnsw_ef_construction is set but '{type(idx).__name__}' has no HNSW graph")
        idx = faiss.downcast_index(inner)
    idx.hnsw.efConstruction = ef


def _training_sample(shards: EmbeddingShards, n: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of up to ``n`` rows, read shard by shard (bounded memory)."""
    rng = np.random.default_rng(seed)
    total = shards.rows
    pick = np.sort(rng.choice(total, size=min(n, total), replace=False))
    out, offset = [], 0
    for _, emb in shards:
        sel = pick[(pick >= offset) & (pick < offset + emb.shape[0])] - offset
        if len(sel):
            out.append(np.asarray(emb[sel], dtype=np.float32))
        offset += emb.shape[0]
    return np.concatenate(out)


def _write_part(out_dir: Path, part: int, index: faiss.Index, ids: list[str]) -> list[str]:
    idx_name, ids_name = f"index-{part:05d}.faiss", f"ids-{part:05d}.txt"
    with atomic_path(out_dir / idx_name) as tmp:
        try:
            faiss.write_index(index, str(tmp))
        except RuntimeError as e:  # faiss reports a failed fwrite (full disk) as a RuntimeError
            if is_write_failure(e) or "write" in str(e).lower():
                raise output_error(out_dir / idx_name, e) from None
            raise
    with atomic_open(out_dir / ids_name) as fh:
        fh.write("".join(f"{x}\n" for x in ids))
    return [idx_name, ids_name]


def build_index(
    emb_dir: str | Path,
    out_dir: str | Path,
    config: IndexConfig | None = None,
    *,
    train_size: int | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Build the index for a finished embedding folder and return the index manifest."""
    cfg = config or IndexConfig()
    train_size = train_size or cfg.train_size
    shards = EmbeddingShards.open(emb_dir)
    out_dir = start_folder(out_dir)
    for old in list(out_dir.glob("index-*.faiss")) + list(out_dir.glob("ids-*.txt")):
        old.unlink()

    template = new_index(shards.dim, cfg.factory, cfg.metric)
    if cfg.hnsw_ef_construction is not None:
        _set_ef_construction(template, cfg.hnsw_ef_construction)
    if not template.is_trained:
        template.train(_training_sample(shards, train_size, seed))

    files: list[str] = []
    parts: list[dict[str, Any]] = []
    bar = progress_bar(total=shards.rows, desc="index", unit="vec", disable=not show_progress)
    index, ids = faiss.clone_index(template), []
    for shard_ids, emb in shards:
        index.add(np.ascontiguousarray(emb, dtype=np.float32))
        ids.extend(shard_ids)
        bar.update(len(shard_ids))
        if cfg.per_shard:
            files += _write_part(out_dir, len(parts), index, ids)
            parts.append({"rows": len(ids)})
            index, ids = faiss.clone_index(template), []
    if not cfg.per_shard:
        files += _write_part(out_dir, 0, index, ids)
        parts.append({"rows": len(ids)})
    bar.close()

    return write_manifest(
        out_dir,
        stage=STAGE,
        config=cfg.model_dump() | {"train_size": train_size, "seed": seed},
        counts={"rows": shards.rows, "parts": len(parts)},
        files=files,
        inputs={
            "embeddings": str(Path(emb_dir).resolve()),
            "embeddings_hash": shards.manifest["config_hash"],
        },
        extra={
            "dim": shards.dim,
            "parts": [
                {"index": f"index-{i:05d}.faiss", "ids": f"ids-{i:05d}.txt"} | p for i, p in enumerate(parts)
            ],
            "encoder": shards.manifest["config"]["encoder"],
            "normalize": shards.manifest.get("normalize"),
        },
    )


# --- estimates before building ---------------------------------------------------------------------


def _footprint(index: faiss.Index) -> tuple[float, float]:
    """(fixed bytes, bytes per added vector) of an index as faiss stores it in memory and on disk.

    Read from the index object faiss builds for the factory string (code sizes, list counts,
    codebook shapes), so new factory combinations are covered as long as their parts are known.
    """
    idx = faiss.downcast_index(index)
    name = type(idx).__name__
    if isinstance(idx, faiss.IndexPreTransform):
        fixed, per = _footprint(idx.index)
        for i in range(idx.chain.size()):
            t = faiss.downcast_VectorTransform(idx.chain.at(i))
            fixed += 4 * (t.d_in * t.d_out + t.d_out) if isinstance(t, faiss.LinearTransform) else 0
        return fixed, per
    if isinstance(idx, faiss.IndexIDMap):
        fixed, per = _footprint(idx.index)
        return fixed, per + 8
    if isinstance(idx, faiss.IndexHNSW):
        fixed, per = _footprint(idx.storage)
        hnsw = idx.hnsw
        probas = faiss.vector_to_array(hnsw.assign_probas)
        cum = faiss.vector_to_array(hnsw.cum_nneighbor_per_level)
        links = float(sum(p * cum[min(level + 1, len(cum) - 1)] for level, p in enumerate(probas)))
        return fixed, per + 4 * links + 4 + 8  # neighbour ids, level, offset
    if isinstance(idx, faiss.IndexIVF):
        q_fixed, q_per = _footprint(idx.quantizer)
        fixed = q_fixed + q_per * idx.nlist + 16 * idx.nlist  # centroids + inverted-list headers
        if hasattr(idx, "pq"):
            fixed += 4 * idx.pq.M * idx.pq.ksub * idx.pq.dsub
        if hasattr(idx, "sq"):
            fixed += 4 * 2 * idx.d
        return fixed, idx.code_size + 8  # code + 64-bit id per vector
    if isinstance(idx, faiss.IndexPQ):
        return 4 * idx.pq.M * idx.pq.ksub * idx.pq.dsub, idx.pq.code_size
    if isinstance(idx, faiss.IndexScalarQuantizer):
        return 4 * 2 * idx.d, idx.code_size
    if isinstance(idx, faiss.IndexFlatCodes):
        return 0.0, idx.code_size
    raise XqgError(f"no size model for faiss {name}; build it on a sample and measure instead")


def estimate_index(
    rows: int,
    dim: int,
    config: IndexConfig | None = None,
    *,
    shard_rows: int | None = None,
    train_size: int | None = None,
    id_bytes: float = 16.0,
) -> dict[str, Any]:
    """Memory and disk an index needs for ``rows`` vectors of ``dim``, before building it.

    ``index_bytes`` is the FAISS index in memory (≈ its file size); ``build_peak_bytes`` adds
    the training sample and one embedding shard being added (``shard_rows``); with
    ``per_shard`` the search holds every part, but each part is built alone. ``id_bytes`` is
    the average id length + newline in the ids file.
    """
    cfg = config or IndexConfig()
    train_size = train_size or cfg.train_size
    if rows < 1 or dim < 1:
        raise XqgError(f"rows and dim must be positive, got rows={rows}, dim={dim}")
    index = new_index(dim, cfg.factory, cfg.metric)
    fixed, per = _footprint(index)
    parts = 1
    part_rows = rows
    if cfg.per_shard and shard_rows:
        parts = -(-rows // shard_rows)
        part_rows = min(rows, shard_rows)
    index_bytes = parts * fixed + per * rows
    train = 0 if index.is_trained else 4 * dim * min(train_size, rows)
    shard = 4 * dim * min(rows, shard_rows or 50_000)  # xqg encode's default shard size
    return {
        "factory": cfg.factory,
        "metric": cfg.metric,
        "rows": rows,
        "dim": dim,
        "parts": parts,
        "bytes_per_vector": per,
        "fixed_bytes": fixed,
        "index_bytes": index_bytes,
        "ids_bytes": id_bytes * rows,
        "disk_bytes": index_bytes + id_bytes * rows,
        "search_memory_bytes": index_bytes,
        "build_peak_bytes": fixed + per * part_rows + train + shard,
        "flat_bytes": 4 * dim * rows,
        "needs_training": not index.is_trained,
        "train_vectors": 0 if index.is_trained else min(train_size, rows),
        "train_recommended": _recommended_training(index),
    }


def _recommended_training(index: faiss.Index) -> int:
    """faiss's k-means asks for ≥ 39 points per centroid (IVF lists, PQ sub-quantizer codes)."""
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexPreTransform):
        return _recommended_training(idx.index)
    if isinstance(idx, faiss.IndexIVF):
        return 39 * int(idx.nlist)
    if isinstance(idx, faiss.IndexPQ):
        return 39 * int(idx.pq.ksub)
    return 0
