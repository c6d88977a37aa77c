"""Queries/second of ``xqg generate`` vs a naive loop, same model, same decoding, same run.

* **xqg** — :func:`xqg.generate.run.generate_queries` (length-sorted batches, all n samples of
  a prompt in one pass, shared prefill; writes the Parquet shards like the CLI does);
* **naive** — one passage, one language, one ``model.generate`` call per query
  (``num_return_sequences=1``), the reference-code shape;
* **hf-batched** (causal models; skip with ``--no-hf-batched``) — plain ``model.generate`` on the
  same batches with ``num_return_sequences=n``: what the causal backend's own sampler is measured
  against.

All three use the same prompts (truncated the same way), top-k sampling, ``max_new_tokens`` and
stop rule (causal: the first newline or EOS after the first non-blank token). The ratio ``xqg/naive``
is the number to read; absolute rates move with other load on the machine. A shared CPU runs
best with ``--threads 1`` (OpenMP threads of two busy processes spin-wait on each other).

    .venv/bin/python bench/generate_throughput.py                       # Gemma 3 270M, 4 × 2 langs × 5
    .venv/bin/python bench/generate_throughput.py --adapter runs/gen-train/adapter --threads 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from statistics import mean

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gguf:gemma-3-270m")
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--k", type=int, default=4, help="XQuAD English paragraphs")
    ap.add_argument("--langs", default="ar,ru")
    ap.add_argument("--n", type=int, default=5, help="queries per paragraph and language")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-hf-batched", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import LogitsProcessorList, StoppingCriteriaList

    from xqg.config import GeneratorConfig
    from xqg.data.benchmarks import load_xquad
    from xqg.generate.backends import (
        CausalGenerator,
        StopTokenCriteria,
        SuppressStopUntilText,
        load_generator,
    )
    from xqg.generate.run import generate_queries

    langs = [x for x in args.langs.split(",") if x]
    passages = load_xquad(["en"]).corpus[: args.k]
    cfg = GeneratorConfig(
        model=args.model,
        adapter=args.adapter,
        langs=langs,
        n=args.n,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
        dtype=args.dtype,
        device="cpu",
    )
    t0 = time.perf_counter()
    gen = load_generator(cfg)
    print(
        f"model={args.model} adapter={args.adapter} backend={gen.backend} "
        f"load={time.perf_counter() - t0:.1f}s threads={args.threads} dtype={args.dtype}"
    )
    print(
        f"{len(passages)} paragraphs × {len(langs)} langs × n={args.n} = "
        f"{len(passages) * len(langs) * args.n} queries; top_k={args.top_k} "
        f"max_new_tokens={args.max_new_tokens} batch={args.batch_size}"
    )
    model, tok = gen.model, gen.tokenizer
    items = [(p, lang) for p in passages for lang in langs]
    prepared = gen.prepare(items)
    causal = isinstance(gen, CausalGenerator)
    decoding: dict = {
        "do_sample": True,
        "top_k": args.top_k,
        "top_p": 1.0,
        "temperature": 1.0,
        "max_new_tokens": args.max_new_tokens,
        "pad_token_id": gen.pad_id,
    }
    if causal:
        decoding["stopping_criteria"] = StoppingCriteriaList([StopTokenCriteria(gen.stop_mask)])

    def processors(width: int) -> dict:
        if not causal:
            return {}
        return {
            "logits_processor": LogitsProcessorList(
                [SuppressStopUntilText(gen.stop_mask, gen.blank_mask, width)]
            )
        }

    def texts(out: torch.Tensor, width: int) -> list[str]:
        dec = tok.batch_decode(out[:, width:] if causal else out, skip_special_tokens=True)
        return [t.split("\n", 1)[0].strip() for t in dec]

    results: dict[str, tuple[float, list[str]]] = {}

    # xqg generate (the library path, shards written to a temporary folder)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_queries(passages, tmp, cfg, generator=gen, show_progress=False)
        dt = time.perf_counter() - t0
        from xqg.generate.store import read_table

        results["xqg"] = (dt, read_table(tmp)["text"].to_pylist())

    # naive: one generate call per query
    torch.manual_seed(args.seed)
    outs: list[str] = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for p in prepared:
            ids = torch.tensor([p.ids])
            for _ in range(args.n):
                out = model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), **decoding, **processors(ids.shape[1])
                )
                outs += texts(out, ids.shape[1])
    results["naive"] = (time.perf_counter() - t0, outs)

    # plain generate on the same batches, num_return_sequences=n (left padding for causal models)
    if causal and not args.no_hf_batched:
        torch.manual_seed(args.seed)
        outs = []
        t0 = time.perf_counter()
        with torch.inference_mode():
            for batch in gen.batches(prepared):
                width = max(len(p.ids) for p in batch)
                ids = torch.full((len(batch), width), gen.pad_id, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for r, p in enumerate(batch):
                    ids[r, width - len(p.ids) :] = torch.tensor(p.ids)
                    mask[r, width - len(p.ids) :] = 1
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    num_return_sequences=args.n,
                    **decoding,
                    **processors(width),
                )
                outs += texts(out, width)
        results["hf-batched"] = (time.perf_counter() - t0, outs)

    print(f"{'method':<11} {'queries':>7} {'seconds':>8} {'queries/s':>9} {'words/query':>11} {'empty':>5}")
    for name, (dt, qs) in results.items():
        words = mean(len(q.split()) for q in qs) if qs else 0.0
        empty = sum(1 for q in qs if not q)
        print(f"{name:<11} {len(qs):7d} {dt:8.1f} {len(qs) / dt:9.2f} {words:11.1f} {empty:5d}")
    rate = {k: len(v[1]) / v[0] for k, v in results.items()}
    print(f"ratio xqg/naive = {rate['xqg'] / rate['naive']:.1f}x", end="")
    if "hf-batched" in rate:
        print(f"   (hf-batched/naive = {rate['hf-batched'] / rate['naive']:.1f}x)", end="")
    print()


if __name__ == "__main__":
    main()
