"""Search speed and quality of flat, HNSW and IVF-PQ indexes built by xqg, and xqg's overhead over
raw FAISS calls on the same index files — all measured in one run.

Data: ``--n`` synthetic 384-d unit vectors with the structure real embeddings have (clusters in a
low-dimensional subspace plus noise; pure Gaussian noise has no neighbourhoods worth indexing),
written as an xqg embedding folder, indexed by ``xqg.index.build_index`` with each factory
string. Queries are fresh draws from the same distribution. Optionally (``--real DIR``) an
existing embedding folder and query folder (e.g. the XQuAD experiment's) are used as well.

For each index: recall@10 against exact search (``Flat``), queries/s through
:class:`xqg.search.Searcher` (string ids, exact merge) and through ``faiss.Index.search`` on the
same index object (integer ids), their ratio (xqg's overhead), and the speed-up over flat.

    .venv/bin/python bench/search.py                       # 1M vectors, ~15 min on 2 cores
    .venv/bin/python bench/search.py --n 200000 --quick    # a smaller look
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from xqg.config import EncoderConfig, IndexConfig
from xqg.encode import EmbeddingShards, encode_to_shards
from xqg.index import build_index
from xqg.search import Searcher


class ArrayEncoder:
    """Hands out rows of a generator of vector blocks, in order: the 'model' is the data."""

    def __init__(self, blocks) -> None:  # noqa: ANN001
        self.config = EncoderConfig(model="synthetic")
        self.blocks = blocks
        self.buf = np.empty((0, 0), np.float32)

    def encode(self, texts, kind, progress=None):  # noqa: ANN001
        while len(self.buf) < len(texts):
            nxt = next(self.blocks)
            self.buf = nxt if not len(self.buf) else np.concatenate([self.buf, nxt])
        out, self.buf = self.buf[: len(texts)], self.buf[len(texts) :]
        return out

    def describe(self):
        return {"model": {"spec": "synthetic"}}


def synthetic_blocks(
    n: int, d: int, seed: int, *, draw: int = 1, block: int = 100_000, clusters: int = 2000, sub: int = 48
):
    """Blocks of unit vectors; ``seed`` fixes the distribution, ``draw`` the sample from it."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((clusters, d)).astype(np.float32)
    basis = np.linalg.qr(rng.standard_normal((d, sub)))[0].T.astype(np.float32)
    rng = np.random.default_rng([seed, draw])
    for start in range(0, n, block):
        m = min(block, n - start)
        c = rng.integers(clusters, size=m)
        x = 0.5 * centers[c] + rng.standard_normal((m, sub), dtype=np.float32) @ basis * 0.9
        x += 0.1 * rng.standard_normal((m, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        yield x.astype(np.float32)


def qps(fn, q: np.ndarray, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(q)
        best = min(best, time.perf_counter() - t)
    return len(q) / best


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth, strict=True)]))


def run(
    emb: Path, queries: np.ndarray, work: Path, specs: list[tuple[str, str | None, int | None]], k: int
) -> list[dict]:
    rows = []
    truth = None
    flat_qps = None
    for factory, params, ef_c in specs:
        idx_dir = work / (f"index-{factory.replace(',', '_')}" + (f"-efc{ef_c}" if ef_c else ""))
        if not (idx_dir / "manifest.json").exists():
            t = time.perf_counter()
            cfg = IndexConfig(factory=factory, hnsw_ef_construction=ef_c)
            build_index(emb, idx_dir, cfg, show_progress=False)
            built = time.perf_counter() - t
        else:
            built = float("nan")
        searcher = Searcher(idx_dir, params=params)
        raw = searcher.parts[0][0]  # the same faiss object, params applied: raw calls vs xqg
        row_of = {x: i for i, x in enumerate(searcher.all_ids.tolist())}
        hits = searcher.search(queries, k)
        found = np.array([[row_of[x] for x in docs] for docs in hits.docids])
        if truth is None:
            truth = found
        x_qps = qps(lambda q: searcher.search(q, k), queries)  # noqa: B023
        r_qps = qps(lambda q: raw.search(q, k), queries)  # noqa: B023
        if flat_qps is None:
            flat_qps = x_qps
        rows.append(
            {
                "index": factory
                + (f" efConstruction={ef_c}" if ef_c else "")
                + (f" ({params})" if params else ""),
                "recall@10": recall_at(found, truth, k),
                "xqg_qps": x_qps,
                "faiss_qps": r_qps,
                "overhead": r_qps / x_qps,
                "speedup_vs_flat": x_qps / flat_qps,
                "build_s": built,
            }
        )
        print(f"  {rows[-1]['index']:<28} recall@10 {rows[-1]['recall@10']:.3f}  xqg {x_qps:8.0f} q/s  "
              f"faiss {r_qps:8.0f} q/s  overhead {rows[-1]['overhead']:.2f}×  "
              f"vs flat {rows[-1]['speedup_vs_flat']:.1f}×  "
              + ("index reused" if built != built else f"built in {built:.0f} s"), flush=True)  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    out = ["| index | recall@10 vs exact | xqg q/s | raw FAISS q/s | xqg overhead | speed-up vs flat |",
           "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in rows:
        out.append(f"| {r['index']} | {r['recall@10']:.3f} | {r['xqg_qps']:,.0f} | {r['faiss_qps']:,.0f} | "
                   f"{r['overhead']:.2f}× | {r['speedup_vs_flat']:.1f}× |")  # fmt: skip
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=0, help="faiss OpenMP threads (0 = all)")
    ap.add_argument("--dir", type=Path, default=None, help="work folder (kept, so a rerun reuses indexes)")
    ap.add_argument("--real", type=Path, default=None, help="also: an embedding folder (passages)")
    ap.add_argument("--real-queries", type=Path, default=None, help="with --real: a query embedding folder")
    ap.add_argument("--quick", action="store_true", help="fewer index settings")
    args = ap.parse_args()
    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    k = 10
    nlist = max(64, int(4 * np.sqrt(args.n)))
    hn = ("HNSW32", 200)
    specs: list[tuple[str, str | None, int | None]] = [
        ("Flat", None, None),
        (hn[0], "efSearch=64", hn[1]),
        (hn[0], "efSearch=128", hn[1]),
        (hn[0], "efSearch=256", hn[1]),
    ]
    if not args.quick:
        specs += [
            ("HNSW32", "efSearch=256", None),  # faiss's default efConstruction = 40, for comparison
            (f"IVF{nlist},PQ48", "nprobe=16", None),
            (f"IVF{nlist},PQ48", "nprobe=64", None),
            (f"IVF{nlist},PQ48,RFlat", "nprobe=64,k_factor_rf=8", None),  # PQ candidates re-ranked exactly
        ]
    else:
        specs += [(f"IVF{nlist},PQ48", "nprobe=32", None)]

    work = args.dir or Path(tempfile.mkdtemp(prefix="xqg-bench-search-"))
    emb = work / "emb"
    if not (emb / "manifest.json").exists():
        t = time.perf_counter()
        ids = (f"doc{i:08d}" for i in range(args.n))
        enc = ArrayEncoder(synthetic_blocks(args.n, args.dim, 0))
        encode_to_shards(((x, "") for x in ids), emb, encoder=enc, kind="passage", shard_size=100_000,
                         show_progress=False)  # fmt: skip
        print(f"wrote {args.n:,} synthetic vectors in {time.perf_counter() - t:.0f} s → {emb}")
    queries = next(synthetic_blocks(args.queries, args.dim, 0, draw=2, block=args.queries))
    print(f"\nsynthetic: {args.n:,} × {args.dim}, {len(queries)} queries, k = {k}, faiss threads "
          f"{faiss.omp_get_max_threads()}")  # fmt: skip
    rows = run(emb, queries, work / "synthetic", specs, k)
    print("\n" + table(rows))

    if args.real is not None:
        q_ids, q = EmbeddingShards.open(args.real_queries).load() if args.real_queries else ([], None)
        if q is None:
            raise SystemExit("--real needs --real-queries")
        print(f"\nreal: {EmbeddingShards.open(args.real).rows:,} passages, {len(q_ids)} queries")
        real_rows = run(args.real, np.ascontiguousarray(q, np.float32), work / "real",
                        [("Flat", None, None), ("HNSW32", "efSearch=128", None)], k)  # fmt: skip
        print("\n" + table(real_rows))


if __name__ == "__main__":
    main()
