"""Load test of ``xqg serve`` on loopback against the raw encoder + FAISS, in one run.

    OMP_NUM_THREADS=1 .venv/bin/python bench/serve_load.py            # 10,000 requests per level
    .venv/bin/python bench/serve_load.py --requests 2000 --concurrency 1,16 --out runs/serve-bench/load.json

What it does:

1. Builds (or reuses) the demo's two indexes over XQuAD (``xqg.pipeline.build_demo_indexes``:
   e5-small baseline + mean-norm α=0.5 fusion of the committed generated queries).
2. **Raw**: loads the index's encoder and a :class:`~xqg.search.Searcher` in this process and
   answers the same questions one at a time (encode one query, search top-k): the best a
   service could do per request without batching. Measured before and after the service levels,
   and the mean is the reference (the machine is shared; load drifts).
3. **Service**: starts ``xqg serve INDEX --baseline BASELINE`` on 127.0.0.1 (never another host),
   then sends ``--requests`` POST /search requests at each concurrency through persistent
   HTTP/1.1 connections (a minimal asyncio client: the load generator must cost less than the
   server it measures). Each request asks for both rankings and the explanations, as the page does.

It prints errors (non-200 or failed connections; must be 0), p50/p99 latency and QPS per level,
the encoder's mean micro-batch per level (from /health), and the two targets of issue 16:
service QPS at concurrency 1 ≥ 0.8 × raw, and QPS at concurrency 16 ≥ 3 × QPS at concurrency 1.
Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"  # loopback only: this bench never sends load anywhere else
LANGS = ("ar", "de", "en", "hi", "ru", "th", "tr", "zh")


def questions(limit: int) -> list[str]:
    """Real XQuAD questions, languages interleaved, so batches mix scripts and lengths."""
    from xqg.data.benchmarks.xquad import load_xquad

    bench = load_xquad(list(LANGS), split="all")
    per_lang = [bench.queries[lang] for lang in LANGS]
    out = [qs[i].text for i in range(len(per_lang[0])) for qs in per_lang if i < len(qs)]
    return out[:limit]


def percentiles(lat: list[float]) -> tuple[float, float]:
    a = np.asarray(lat) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def measure_raw(index: Path, texts: list[str], n: int, k: int, dtype: str | None) -> dict[str, Any]:
    """One query at a time through the bare encoder + FAISS (no HTTP, no batching)."""
    from xqg.models.encoder import BiEncoder
    from xqg.search import Searcher

    searcher = Searcher(index)
    encoder = BiEncoder(searcher.encoder_config, **({"dtype": dtype} if dtype else {}))
    for t in texts[:50]:  # warm-up
        searcher.search(encoder.encode_queries([t]), k)
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        searcher.search(encoder.encode_queries([texts[i % len(texts)]]), k)
        lat.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    p50, p99 = percentiles(lat)
    return {"requests": n, "qps": n / wall, "p50_ms": p50, "p99_ms": p99, "seconds": wall}


class Server:
    """``xqg serve`` as a user starts it, on a free loopback port."""

    def __init__(self, index: Path, baseline: Path, extra: list[str]) -> None:
        exe = Path(sys.executable).with_name("xqg")
        cmd = [
            str(exe),
            "serve",
            str(index),
            "--baseline",
            str(baseline),
            "--host",
            HOST,
            "--port",
            "0",
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:  # type: ignore[union-attr]
                self.lines.append(line)
                if "Uvicorn running on" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(300):
            self.proc.kill()
            raise SystemExit("xqg serve did not start:\n" + "".join(self.lines))
        m = re.search(rf"http://{re.escape(HOST)}:(\d+)", "".join(self.lines))
        assert m is not None
        self.port = int(m.group(1))

    def health(self) -> dict[str, Any]:
        import httpx

        return httpx.get(f"http://{HOST}:{self.port}/health", timeout=30).json()

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(60)


async def _one_connection(
    port: int, bodies: list[bytes], next_i: list[int], n: int, lat: list[float], errors: list[str]
) -> None:
    """One keep-alive connection sending requests until ``n`` have been sent by all connections."""
    reader = writer = None
    while next_i[0] < n:
        i = next_i[0]
        next_i[0] += 1
        body = bodies[i % len(bodies)]
        head = (
            f"POST /search HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(head + body)
            status_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 60)  # type: ignore[union-attr]
            headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)  # type: ignore[union-attr]
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", headers).group(1))  # type: ignore[union-attr]
            payload = await asyncio.wait_for(reader.readexactly(length), 60)  # type: ignore[union-attr]
            status = int(status_line.split()[1])
            if status != 200:
                errors.append(f"{status}: {payload[:200]!r}")
            lat.append(time.perf_counter() - t0)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, AttributeError, ValueError) as e:
            errors.append(f"{type(e).__name__}: {e}")
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def load_level(port: int, bodies: list[bytes], n: int, concurrency: int) -> dict[str, Any]:
    lat: list[float] = []
    errors: list[str] = []
    next_i = [0]

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(
            *(_one_connection(port, bodies, next_i, n, lat, errors) for _ in range(concurrency))
        )
        return time.perf_counter() - start

    wall = asyncio.run(run())
    p50, p99 = percentiles(lat) if lat else (float("nan"), float("nan"))
    return {
        "concurrency": concurrency,
        "requests": n,
        "errors": len(errors),
        "error_examples": errors[:3],
        "qps": len(lat) / wall,
        "p50_ms": p50,
        "p99_ms": p99,
        "seconds": wall,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "serve-bench", help="indexes are built here")
    ap.add_argument("--generated", type=Path, default=ROOT / "reports" / "generated" / "xquad-gemma-lora")
    ap.add_argument("--requests", type=int, default=10_000, help="requests per concurrency level")
    ap.add_argument("--concurrency", default="1,4,16,32", help="comma-separated levels")
    ap.add_argument("--raw-requests", type=int, default=2_000, help="raw encoder+FAISS queries (each pass)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    ap.add_argument("--dtype", default=None, help="encoder dtype for both sides (bfloat16 on AMX CPUs)")
    ap.add_argument("--serve-args", default="", help="extra flags for xqg serve, e.g. '--max-wait-ms 2'")
    args = ap.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    if args.requests < 1 or not levels or min(levels) < 1 or max(levels) > 256:
        raise SystemExit("--requests must be ≥ 1 and every concurrency between 1 and 256")

    index, aug = args.work / "index", args.work / "index-xqg"
    if not ((index / "manifest.json").is_file() and (aug / "manifest.json").is_file()):
        from xqg.pipeline import build_demo_indexes

        build_demo_indexes(args.work, args.generated, langs=("en", "ar"), show_progress=False)
    texts = questions(4_000)
    bodies = [json.dumps({"query": t, "k": args.k}, ensure_ascii=False).encode() for t in texts]
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(
        f"{len(texts)} XQuAD questions ({', '.join(LANGS)}), k={args.k}, OMP_NUM_THREADS={threads}, "
        f"dtype={args.dtype or 'the index default'}"
    )

    raw = [measure_raw(aug, texts, args.raw_requests, args.k, args.dtype)]
    print(f"raw encoder+FAISS: {raw[0]['qps']:.1f} QPS, p50 {raw[0]['p50_ms']:.2f} ms")
    serve_args = args.serve_args.split() + (["--dtype", args.dtype] if args.dtype else [])
    server = Server(aug, index, serve_args)
    results = []
    try:
        # Warm-up, not counted: the encoder's kernels for the batch shapes the levels will use
        # (bfloat16 kernels are built on first use of each shape).
        load_level(server.port, bodies, 400, max(levels))
        for c in levels:
            load_level(server.port, bodies, 4 * c, c)
            before = server.health()["batching"]
            r = load_level(server.port, bodies, args.requests, c)
            after = server.health()["batching"]
            batches = after["batches"] - before["batches"]
            r["mean_batch"] = (after["queries"] - before["queries"]) / batches if batches else 0.0
            results.append(r)
            print(
                f"c={c:>3}: {r['qps']:7.1f} QPS  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
                f"errors {r['errors']}  mean batch {r['mean_batch']:.2f}"
            )
    finally:
        exit_code = server.stop()
    raw.append(measure_raw(aug, texts, args.raw_requests, args.k, args.dtype))
    raw_qps = float(np.mean([r["qps"] for r in raw]))

    by_c = {r["concurrency"]: r for r in results}
    lines = [
        "| concurrency | requests | errors | p50 ms | p99 ms | QPS | mean batch |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['concurrency']} | {r['requests']} | {r['errors']} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['qps']:.1f} | {r['mean_batch']:.2f} |"
        )
    lines.append(
        f"| raw encoder+FAISS (1 at a time) | {sum(r['requests'] for r in raw)} | 0 | "
        f"{np.mean([r['p50_ms'] for r in raw]):.2f} | {np.mean([r['p99_ms'] for r in raw]):.2f} | "
        f"{raw_qps:.1f} (before {raw[0]['qps']:.1f}, after {raw[1]['qps']:.1f}) | 1 |"
    )
    summary: dict[str, Any] = {
        "dtype": args.dtype,
        "omp_threads": threads,
        "raw": raw,
        "raw_qps": raw_qps,
        "levels": results,
        "server_exit": exit_code,
    }
    if 1 in by_c:
        summary["ratio_c1_vs_raw"] = by_c[1]["qps"] / raw_qps
        lines.append(f"\nservice at concurrency 1 / raw: {summary['ratio_c1_vs_raw']:.2f} (target ≥ 0.8)")
        if 16 in by_c:
            summary["ratio_c16_vs_c1"] = by_c[16]["qps"] / by_c[1]["qps"]
            lines.append(f"service at concurrency 16 / at 1: {summary['ratio_c16_vs_c1']:.2f} (target ≥ 3)")
    print("\n" + "\n".join(lines))
    print(f"server exit status after SIGTERM: {exit_code}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
