"""Peak memory of each stage — encode, encode the generated queries, augment, index — as the
corpus grows from 10k to 1M passages. Apart from the index itself, it must stay flat.

Every stage runs in its own process under GNU ``time -v`` (peak RSS), on synthetic vectors from a
seeded random "encoder" (the model is not the point; its weights would only add a constant),
through xqg's real shard writer, fusion and index builder. Baseline in the same run: the size of
the data each stage streams through (what a load-everything implementation would hold).

    .venv/bin/python bench/memory.py                                  # 10k, 100k, 1M; ~15 min, ~12 GB disk
    .venv/bin/python bench/memory.py --sizes 10000,100000 --queries-per-passage 35
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

from augment_memory import LANGS, RandomEncoder  # bench/ is on sys.path when this file runs


def stage(args: argparse.Namespace) -> None:
    """One stage, in this process (the parent measures it)."""
    from xqg.encode import encode_to_shards, generated_query_id

    root, n, dim = Path(args.dir), args.size, args.dim
    pids = (f"doc{i:08d}" for i in range(n))
    if args.stage == "encode":
        encode_to_shards(((p, "") for p in pids), root / "passages", encoder=RandomEncoder(dim, 1),
                         kind="passage", shard_size=args.shard, show_progress=False)  # fmt: skip
    elif args.stage == "encode-generated":
        per_lang = max(1, args.queries_per_passage // len(LANGS))
        recs = (
            (generated_query_id(lang, s, f"doc{i:08d}"), "")
            for lang in LANGS
            for i in range(n)
            for s in range(per_lang)
        )
        encode_to_shards(recs, root / "queries", encoder=RandomEncoder(dim, 2), kind="query",
                         shard_size=10 * args.shard, show_progress=False, unique_ids="given")  # fmt: skip
    else:
        raise SystemExit(f"unknown stage {args.stage}")


def measure(cmd: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    assert m, res.stderr[-500:]
    return int(m.group(1)) / 1024, time.perf_counter() - t


def du(path: Path, pattern: str) -> float:
    return sum(p.stat().st_size for p in path.glob(pattern)) / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries-per-passage", type=int, default=7, help="7 = one per language")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--shard", type=int, default=10_000, help="passages per embedding shard")
    ap.add_argument("--dir", default=None, help="scratch folder (needs ~11 GB per 1M passages at 7 queries)")
    ap.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.stage:
        stage(args)
        return

    py = sys.executable
    results = []
    for size in [int(x) for x in args.sizes.split(",")]:
        root = Path(tempfile.mkdtemp(prefix=f"xqg-mem-{size}-", dir=args.dir))
        try:
            common = ["--size", str(size), "--dir", str(root), "--dim", str(args.dim), "--shard",
                      str(args.shard), "--queries-per-passage", str(args.queries_per_passage)]  # fmt: skip
            row = {"passages": size}
            row["encode"], _ = measure([py, __file__, "--stage", "encode", *common])
            row["encode_data"] = du(root / "passages", "emb-*.npy")
            row["encode-generated"], _ = measure([py, __file__, "--stage", "encode-generated", *common])
            row["queries_data"] = du(root / "queries", "emb-*.npy")
            aug = ["augment", str(root / "passages"), str(root / "queries"), "--out", str(root / "fused")]
            row["augment"], _ = measure([py, "-m", "xqg", *aug])
            row["index"], _ = measure(
                [py, "-m", "xqg", "index", str(root / "fused"), "--out", str(root / "index")]
            )
            row["index_data"] = du(root / "index", "index-*.faiss")
            results.append(row)
            print(f"{size:>9,} passages: encode {row['encode']:.0f} MiB, encode-generated "
                  f"{row['encode-generated']:.0f} MiB (of {row['queries_data']:.0f} MiB vectors), augment "
                  f"{row['augment']:.0f} MiB, index {row['index']:.0f} MiB "
                  f"(index {row['index_data']:.0f} MiB)",
                  flush=True)  # fmt: skip
        finally:
            shutil.rmtree(root, ignore_errors=True)

    print("\n| passages | encode | encode-generated | augment | index build | flat index size | "
          "index build − index | query vectors |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['passages']:,} | {r['encode']:.0f} | {r['encode-generated']:.0f} | {r['augment']:.0f} | "
              f"{r['index']:.0f} | {r['index_data']:.0f} | {r['index'] - r['index_data']:.0f} | "
              f"{r['queries_data']:.0f} |")  # fmt: skip
    print("\n(peak RSS in MiB; sizes in MiB)")
    if len(results) > 1:
        a, b = results[0], results[-1]

        def peak(r: dict) -> float:
            return max(r["encode"], r["encode-generated"], r["augment"])

        enc_aug = peak(b) / peak(a)
        print(f"encode+augment peak, {b['passages']:,} vs {a['passages']:,} passages: {enc_aug:.2f}×")


if __name__ == "__main__":
    main()
