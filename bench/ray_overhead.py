"""The same encode (or generate) job with ``--backend local`` and ``--backend ray`` on this
machine, wall clock including model loading and (for Ray) starting the cluster and the actors.

Job: every XQuAD question of the 12 languages (14,280 texts) encoded with the default e5-small
on the query side, in shards of 1,000 — a few minutes on 2 CPU cores. Local runs one process with
all cores; Ray runs one actor per core with one thread each (Ray's placement). The outputs are
compared shard by shard (equal up to float rounding: thread counts differ) and the ratio of wall
times is printed. ``--job generate`` does the same with Gemma on ``--passages`` paragraphs.

    .venv/bin/python bench/ray_overhead.py                 # ~6 min
    .venv/bin/python bench/ray_overhead.py --job generate --passages 12
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from xqg.config import EncoderConfig, GeneratorConfig
from xqg.data.benchmarks.xquad import load_xquad
from xqg.distributed import RayOptions
from xqg.encode import EmbeddingShards, encode_to_shards
from xqg.generate import store
from xqg.generate.run import generate_queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--job", choices=["encode", "generate"], default="encode")
    ap.add_argument("--passages", type=int, default=12, help="generate: paragraphs (× 2 languages × 2)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xqg-ray-bench-"))
    bench = load_xquad(None, split="all")
    times = {}
    try:
        for backend in ("local", "ray"):
            t = time.perf_counter()
            opts = RayOptions(workers=args.workers) if backend == "ray" else None
            if args.job == "encode":
                qs = bench.all_queries()
                recs = ((q.id, q.text) for q in qs)
                encode_to_shards(recs, work / backend, config=EncoderConfig(), kind="query", shard_size=1000,
                                 total=len(qs), backend=backend, ray=opts)  # fmt: skip
            else:
                cfg = GeneratorConfig(langs=["ar", "ja"], n=2, dtype="bfloat16", seed=1, batch_size=4)
                generate_queries(bench.corpus[: args.passages], work / backend, cfg, shard_size=2,
                                 total=args.passages, backend=backend, ray=opts)  # fmt: skip
            times[backend] = time.perf_counter() - t
            print(f"{backend}: {times[backend]:.1f} s", flush=True)
        if args.job == "encode":
            (_, a), (_, b) = (
                EmbeddingShards.open(work / "local").load(),
                EmbeddingShards.open(work / "ray").load(),
            )
            print(f"max |local - ray| over {a.shape[0]} vectors: {np.abs(a - b).max():.2e}")
        else:
            same = store.read_table(work / "local").equals(store.read_table(work / "ray"))
            print(f"generated tables identical: {same}")
        print(f"\nray / local wall time: {times['ray'] / times['local']:.2f}×  ({args.workers} actors)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
