"""What a served index was built from, read back through the manifests of the stages that made it.

An index folder records its embedding folder; an embedding folder records its corpus (``xqg
encode``: the file; ``xqg demo``/``experiment``: the benchmark folder) or, when it holds fused
vectors (``xqg augment``), the plain passage embeddings and the generated-query embeddings it
fused, and those record their generation folder. So ``xqg serve INDEX`` finds the passage texts,
the plain passage vectors and the generated queries it explains hits with, without being told;
every path can still be given explicitly (recorded paths are relative to the folder that records
them, or absolute in folders made by older versions, and may have moved).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqg.errors import ManifestError, XqgError
from xqg.io import read_manifest, recorded_path


@dataclass(frozen=True)
class IndexSources:
    """The folders behind one index; ``None`` where the chain does not say (or is not augmented)."""

    index: Path
    embeddings: Path | None
    corpus: Path | None
    plain_embeddings: Path | None
    """The unfused passage vectors: the embeddings themselves for a plain index."""
    query_embeddings: Path | None
    """The generated-query vectors fused into the passages (augmented indexes only)."""
    generated: Path | None
    """The ``xqg generate`` folder whose queries were encoded (augmented indexes only)."""

    @property
    def augmented(self) -> bool:
        return self.query_embeddings is not None


def _existing(folder: Path, value: Any) -> Path | None:
    p = recorded_path(folder, value) if isinstance(value, str) else None
    return p if p is not None and p.exists() else None


def _corpus_of(emb: Path, emb_manifest: dict[str, Any]) -> Path | None:
    inputs = emb_manifest.get("inputs") or {}
    if (path := _existing(emb, inputs.get("path"))) is not None and path.is_file():
        return path
    if (bench := _existing(emb, inputs.get("benchmark"))) is not None and (bench / "corpus.jsonl").is_file():
        return bench / "corpus.jsonl"
    return None


def resolve_sources(index_dir: str | Path) -> IndexSources:
    """Follow ``index_dir``'s manifests back to its corpus, plain vectors and generated queries."""
    index_dir = Path(index_dir)
    if not index_dir.is_dir():
        raise XqgError(f"{index_dir}: no such index folder (build one with 'xqg index')")
    manifest = read_manifest(index_dir, stage="index")
    emb = _existing(index_dir, (manifest.get("inputs") or {}).get("embeddings"))
    if emb is None:
        return IndexSources(index_dir, None, None, None, None, None)
    try:
        emb_m = read_manifest(emb)
    except ManifestError:
        return IndexSources(index_dir, None, None, None, None, None)
    if emb_m.get("stage") != "augment":
        return IndexSources(index_dir, emb, _corpus_of(emb, emb_m), emb, None, None)
    inputs = emb_m.get("inputs") or {}
    plain, queries = _existing(emb, inputs.get("passages")), _existing(emb, inputs.get("queries"))
    corpus = generated = None
    if plain is not None:
        corpus = _corpus_of(plain, read_manifest(plain))
    if queries is not None:
        generated = _existing(queries, (read_manifest(queries).get("inputs") or {}).get("generated"))
    return IndexSources(index_dir, emb, corpus, plain, queries, generated)
