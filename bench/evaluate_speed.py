"""Wall time of ``xqg evaluate`` in a fresh process: the numpy metrics against the ranx path.

Each measurement is a new ``python -m xqg evaluate`` process (interpreter start, imports, reading
the run, qrels and queries, the metrics, the per-language tables), timed from outside; the two
engines run the same command on the same files in the same session, alternating, ``--repeats``
times each, and the median counts. Before timing, one untimed ranx run makes sure numba's
on-disk cache of ranx's compiled metrics exists, so the ranx figure is its *best* case (without
that cache a first run also compiles, about 57 s on this machine). The two ``metrics.json``
files must be byte-identical.

The run: by default a seeded 10,000-query run (100 retrieved passages each, 12 languages, 1-3
relevant passages per query with grades 1-3, tied scores, some queries with nothing relevant
retrieved) written with xqg's own writers; ``--run/--qrels/--queries`` evaluate existing files,
e.g. the demo's (``xqg demo`` writes ``runs/demo``).

    .venv/bin/python bench/evaluate_speed.py                    # 10k synthetic queries, ~2 min
    .venv/bin/python bench/evaluate_speed.py --run runs/demo/run \\
        --qrels runs/demo/benchmark/qrels/all.tsv --queries runs/demo/benchmark/queries.jsonl
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METRICS = ["mrr@10", "recall@1", "recall@5", "recall@10", "recall@100", "precision@5", "ndcg@10"]
LANGS = ["en", "ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]


def synthetic(root: Path, n_queries: int, depth: int, n_docs: int, seed: int) -> tuple[Path, Path, Path]:
    """A seeded run + graded qrels + queries file (with languages) in xqg's formats."""
    from xqg.data.runs import write_jsonl_run
    from xqg.io import atomic_open

    rng = np.random.default_rng(seed)
    run: dict[str, dict[str, float]] = {}
    qrels_lines = ["query-id\tcorpus-id\tscore\n"]
    query_lines = []
    for i in range(n_queries):
        qid = f"q{i:05d}"
        docs = rng.choice(n_docs, size=depth, replace=False)
        scores = np.sort(np.round(rng.random(depth), 3))[::-1]  # rounding makes ties
        run[qid] = {f"d{d:06d}": float(s) for d, s in zip(docs, scores, strict=True)}
        n_rel = int(rng.integers(1, 4))
        pool = docs[: depth // 2] if rng.random() < 0.85 else rng.choice(n_docs, size=n_rel, replace=False)
        for d in rng.choice(pool, size=n_rel, replace=False):
            qrels_lines.append(f"{qid}\td{d:06d}\t{int(rng.integers(1, 4))}\n")
        query_lines.append(f'{{"_id": "{qid}", "text": "question {i}", "lang": "{LANGS[i % len(LANGS)]}"}}\n')
    write_jsonl_run(root / "run.jsonl", run)
    with atomic_open(root / "qrels.tsv") as fh:
        fh.writelines(qrels_lines)
    with atomic_open(root / "queries.jsonl") as fh:
        fh.writelines(query_lines)
    return root / "run.jsonl", root / "qrels.tsv", root / "queries.jsonl"


def evaluate_once(args: list[str], engine: str, out: Path) -> float:
    cmd = [sys.executable, "-m", "xqg", "evaluate", *args, "--engine", engine, "--out", str(out)]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{res.stderr[-2000:]}")
    return secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=None, help="run to evaluate (default: synthetic)")
    ap.add_argument("--qrels", type=Path, default=None)
    ap.add_argument("--queries", type=Path, default=None, help="queries file whose 'lang' groups the table")
    ap.add_argument("--queries-n", type=int, default=10_000, help="synthetic run: number of queries")
    ap.add_argument("--depth", type=int, default=100, help="synthetic run: passages per query")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="xqg-evalspeed-") as tmp:
        root = Path(tmp)
        if args.run is None:
            run, qrels, queries = synthetic(root, args.queries_n, args.depth, 50_000, seed=0)
        else:
            if args.qrels is None:
                sys.exit("--run needs --qrels")
            run, qrels, queries = args.run, args.qrels, args.queries
        cli = [str(run), "--qrels", str(qrels), *(["--queries", str(queries)] if queries else [])]
        for m in METRICS:
            cli += ["--metric", m]
        first = evaluate_once(cli, "ranx", root / "warm")  # fills numba's cache if it is empty
        times: dict[str, list[float]] = {"numpy": [], "ranx": []}
        for _ in range(args.repeats):
            for engine in times:
                times[engine].append(evaluate_once(cli, engine, root / engine))
        same = (root / "numpy" / "metrics.json").read_bytes() == (root / "ranx" / "metrics.json").read_bytes()
        avg = [r for r in (root / "numpy" / "metrics.md").read_text(encoding="utf-8").splitlines()
               if r.startswith("| avg")]  # fmt: skip
        n = sum(1 for line in Path(qrels).read_text(encoding="utf-8").splitlines()[1:] if line.strip())

    print(f"run: {run if args.run else f'synthetic, {args.queries_n} queries × {args.depth}'}; "
          f"{n} qrels lines; metrics: {', '.join(METRICS)}")  # fmt: skip
    print(f"untimed ranx warm-up: {first:.1f} s")
    print("| engine | fresh-process wall time (median) | runs |")
    print("|---|---:|---|")
    med = {e: statistics.median(t) for e, t in times.items()}
    for e, t in times.items():
        print(f"| {e} | {med[e]:.2f} s | {', '.join(f'{x:.2f}' for x in t)} |")
    print(f"ranx / numpy: {med['ranx'] / med['numpy']:.1f}×; metrics.json byte-identical: {same}")
    print("\n".join(avg))
    if not same:
        sys.exit("the two engines disagree")


if __name__ == "__main__":
    main()
