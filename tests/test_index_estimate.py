"""``xqg index --estimate``: the size model must match what FAISS really stores."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from typer.testing import CliRunner

from xqg.cli import app
from xqg.config import IndexConfig
from xqg.errors import XqgError
from xqg.index import estimate_index, new_index

FACTORIES = ["Flat", "HNSW32", "HNSW16,SQ8", "IVF32,Flat", "IVF32,PQ4", "OPQ4,IVF32,PQ4", "SQ8", "IDMap,Flat"]


@pytest.mark.parametrize("factory", FACTORIES)
def test_estimate_matches_the_serialised_index_within_2_percent(factory):
    d, n = 16, 6000
    x = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
    index = new_index(d, factory, "ip")
    if not index.is_trained:
        # The serialised size depends on the factory and on n, not on how the index was trained:
        # 1,024 points (≥ 4 per PQ centroid, ≥ 32 per IVF list) train it, not all 6,000, and
        # IVF-PQ skips polysemous training (an annealing that reorders the PQ centroids: 8 of the
        # 8.5 CPU-s here; the same bytes either way). ≥ 39 × 256 points would silence PQ's warning.
        inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexPreTransform) else index
        if isinstance(inner, faiss.IndexIVFPQ):
            inner.do_polysemous_training = False
        index.train(x[:1024])
    if factory.startswith("IDMap"):
        index.add_with_ids(x, np.arange(n))
    else:
        index.add(x)
    real = len(faiss.serialize_index(index))
    est = estimate_index(n, d, IndexConfig(factory=factory))
    assert est["index_bytes"] == pytest.approx(real, rel=0.02), factory
    assert est["needs_training"] == (factory not in ("Flat", "HNSW32", "IDMap,Flat"))


def test_per_shard_parts_and_flat_reference():
    one = estimate_index(1_000_000, 384, IndexConfig(factory="IVF1024,PQ48"))
    parts = estimate_index(
        1_000_000, 384, IndexConfig(factory="IVF1024,PQ48", per_shard=True), shard_rows=250_000
    )
    assert parts["parts"] == 4 and one["parts"] == 1
    assert parts["index_bytes"] > one["index_bytes"]  # each part carries its own centroids
    assert one["flat_bytes"] == 1_000_000 * 384 * 4
    assert one["bytes_per_vector"] == 48 + 8
    with pytest.raises(XqgError):
        estimate_index(0, 384)


def test_cli_estimate_from_sizes_and_from_an_embedding_folder(tmp_path):
    r = CliRunner().invoke(
        app, ["index", "--estimate", "--rows", "18000000", "--dim", "768", "--factory", "HNSW32"]
    )
    assert r.exit_code == 0, r.output
    assert "HNSW32" in r.output and "GiB" in r.output
    r = CliRunner().invoke(app, ["index", "--estimate", "--factory", "HNSW32"])
    assert r.exit_code != 0
