"""Peak memory of ``xqg augment`` as the corpus grows: it must stay flat (bounded by one passage
shard plus 4 bytes per generated query), far below the size of the query vectors it reads.

Synthetic embedding folders (random unit vectors; the model is not the point) are written by
xqg's real shard writer in the layout ``xqg encode-generated`` produces: queries grouped by
language, then passage order, 7 languages × 5 samples = 35 queries per passage. Each size is
then fused by a separate ``python -m xqg augment`` process under GNU ``time -v``.

Baseline in the same run: the bytes of the query vectors (what a load-everything fusion, like the
reference ``fuse_embeds.py``, holds in memory). Printed: peak RSS, its ratio to that baseline,
and the ratio of peak RSS between the largest and the smallest corpus.

    .venv/bin/python bench/augment_memory.py                     # 10k and 100k passages, ~5 min
    .venv/bin/python bench/augment_memory.py --sizes 10000,100000,1000000 --dir /big/disk
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from xqg.config import EncoderConfig
from xqg.encode import encode_to_shards, generated_query_id

LANGS = ["ar", "bn", "fi", "ja", "ko", "ru", "te"]


class RandomEncoder:
    """Stands in for the model: seeded random unit vectors, one per text."""

    def __init__(self, dim: int, seed: int) -> None:
        self.config = EncoderConfig(model="synthetic")
        self.rng = np.random.default_rng(seed)
        self.dim = dim

    def encode(self, texts, kind, progress=None):  # noqa: ANN001 - the BiEncoder protocol
        v = self.rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        if progress:
            progress(len(texts))
        return v

    def describe(self):
        return {"model": {"spec": "synthetic"}}


def build(root: Path, passages: int, n: int, dim: int, shard: int, qshard: int) -> tuple[Path, Path]:
    pids = [f"doc{i:08d}" for i in range(passages)]
    pdir, qdir = root / "passages", root / "queries"
    encode_to_shards(((p, p) for p in pids), pdir, encoder=RandomEncoder(dim, 1), kind="passage",
                     shard_size=shard, show_progress=False)  # fmt: skip
    records = ((generated_query_id(lang, s, p), "") for lang in LANGS for p in pids for s in range(n))
    encode_to_shards(records, qdir, encoder=RandomEncoder(dim, 2), kind="query", shard_size=qshard,
                     show_progress=False)  # fmt: skip
    return pdir, qdir


def peak_rss_mib(cmd: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    secs = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    assert m, res.stderr[-500:]
    return int(m.group(1)) / 1024, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="passage counts, comma-separated")
    ap.add_argument("--n", type=int, default=5, help="queries per passage and language (× 7 languages)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--shard", type=int, default=10_000, help="passages per embedding shard")
    ap.add_argument("--query-shard", type=int, default=100_000, help="queries per embedding shard")
    ap.add_argument("--dir", type=Path, default=None, help="where to write (needs ~5.4 GB per 100k passages)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]

    rows = []
    for size in sizes:
        root = Path(tempfile.mkdtemp(prefix=f"xqg-augmem-{size}-", dir=args.dir))
        try:
            t = time.perf_counter()
            pdir, qdir = build(root, size, args.n, args.dim, args.shard, args.query_shard)
            built = time.perf_counter() - t
            q_bytes = sum(p.stat().st_size for p in qdir.glob("emb-*.npy"))
            cmd = [sys.executable, "-m", "xqg", "augment", str(pdir), str(qdir), "--out", str(root / "fused"),
                   "--strategy", "paper", "--alpha", "0.01"]  # fmt: skip
            rss, secs = peak_rss_mib(cmd)
            n_q = size * args.n * len(LANGS)
            rows.append((size, n_q, q_bytes / 2**20, rss, secs, built))
            print(f"{size:>9,} passages, {n_q:>11,} queries: query vectors {q_bytes / 2**20:>8.0f} MiB, "
                  f"augment peak RSS {rss:>6.0f} MiB in {secs:.0f} s (data written in {built:.0f} s)",
                  flush=True)  # fmt: skip
        finally:
            shutil.rmtree(root, ignore_errors=True)

    print("\n| passages | generated queries | query vectors (MiB) | peak RSS (MiB) | RSS / vectors | s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size, n_q, qmib, rss, secs, _ in rows:
        print(f"| {size:,} | {n_q:,} | {qmib:,.0f} | {rss:,.0f} | {rss / qmib:.3f} | {secs:.0f} |")
    if len(rows) > 1:
        print(f"\npeak RSS {rows[-1][0]:,} vs {rows[0][0]:,} passages: {rows[-1][3] / rows[0][3]:.2f}× "
              f"for {rows[-1][0] / rows[0][0]:.0f}× the data")  # fmt: skip


if __name__ == "__main__":
    main()
