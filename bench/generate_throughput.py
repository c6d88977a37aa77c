"""Queries/second of ``xqg generate``'s engines against the transformers path, same prompts and decoding.

Every method gets the same ``(paragraph, language)`` items, the same prompts (truncated the same
way), top-k sampling, ``max_new_tokens`` and stop rule (the first newline or EOS after the first
non-blank token), in one process, one after the other:

* **llama.cpp** — ``generator.engine: llama.cpp`` (the shipped Q4_K_M GGUF, the LoRA adapter as a
  GGUF adapter, one prefill per passage shared by all its languages and samples in the unified
  KV cache; xqg's own sampler on the returned logits);
* **transformers** — ``generator.engine: transformers``, what ``xqg generate`` runs by default:
  xqg's shared-prefix sampling loop, finished rows dropped as the batch shrinks;
  ``transformers:refill`` is the same loop with continuous batching (``refill: true``: rows that
  finish are replaced by the next passages' rows, ``xqg.generate.refill``);
* **naive** — one ``model.generate`` call per query (the reference code's shape), on the first
  ``--naive-items`` items only (it is ~10× slower; its rate is what is compared).

* **baseline** (``--baseline-rev``, default ``39d70e7``: xqg before generation v2) — the same
  ``generate_queries`` call run by that revision's code (exported with ``git archive`` into a
  temporary folder and run in a subprocess of this run), at that revision's defaults (float32,
  batch 8) and, with ``--baseline-dtypes float32,bfloat16``, also in bfloat16.

Ratios printed: each engine against the baseline (the issue's number: "today's transformers
path"), against transformers and against naive. Rates are queries per wall second and per CPU
second of the process: on a CPU shared with other jobs the second is the steadier one.

``--parity`` then measures quality at equal decoding: the transformers path at its old defaults
(float32, batch 8) and at v2's defaults (:data:`PARITY_SYSTEMS`) each generate ``--parity-n``
queries per language for the XQuAD **test-split** paragraphs (never seen in training), and
``quality_report`` gives per language the in-language rate and round trip @10 (the query
retrieves its own paragraph among all 240, e5-small). Sampling makes each rate noisy: the table
prints the binomial standard error of each difference next to it.

    .venv/bin/python bench/generate_throughput.py                    # 12 paragraphs × 11 langs × 5
    .venv/bin/python bench/generate_throughput.py --parity --out runs/gen-parity
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from statistics import mean

import torch

XQUAD_TARGETS = "ar,de,el,es,hi,ro,ru,th,tr,vi,zh"


def _config(args: argparse.Namespace, engine: str, langs: list[str], n: int):  # noqa: ANN202
    """``engine`` may end in ``:refill``: that engine with continuous batching (``refill: true``)."""
    from xqg.config import GeneratorConfig

    engine, _, variant = engine.partition(":")
    return GeneratorConfig(
        model=args.model,
        adapter=args.adapter,
        engine=engine,
        refill=variant == "refill",
        langs=langs,
        n=n,
        top_k=args.top_k,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
        dtype=args.dtype,
        device="cpu",
    )


_BASELINE = r"""
import json, sys, tempfile, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from xqg.config import GeneratorConfig
from xqg.data.benchmarks import load_xquad
from xqg.generate.run import generate_queries
from xqg.generate.store import read_table
a = json.loads(sys.argv[2])
cfg = GeneratorConfig(**a["config"])
passages = load_xquad(["en"]).corpus[: a["k"]]
with tempfile.TemporaryDirectory() as tmp:
    generate_queries(passages[:1], tmp + "/warm", cfg.model_copy(update={"langs": cfg.langs[:1], "n": 1}))
    w, c = time.perf_counter(), time.process_time()
    generate_queries(passages, tmp + "/gen", cfg, show_progress=False)
    w, c = time.perf_counter() - w, time.process_time() - c
    texts = read_table(tmp + "/gen")["text"].to_pylist()
print("RESULT " + json.dumps({"wall": w, "cpu": c, "texts": texts}))
"""


def baseline(args: argparse.Namespace, langs: list[str], dtype: str) -> tuple[float, float, list[str]]:
    """``generate_queries`` of revision ``args.baseline_rev``, in a subprocess, on the same items."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tree:
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", args.baseline_rev, "src"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        config = {
            "model": args.model, "adapter": args.adapter, "langs": langs, "n": args.n, "top_k": args.top_k,
            "max_new_tokens": args.max_new_tokens, "seed": args.seed, "dtype": dtype, "device": "cpu",
        }  # fmt: skip
        payload = json.dumps({"config": config, "k": args.k})
        env = {**os.environ, "PYTHONPATH": str(Path(tree) / "src")}
        out = subprocess.run(
            [sys.executable, "-c", _BASELINE, str(args.threads), payload],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    res = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])
    return res["wall"], res["cpu"], res["texts"]


def throughput(args: argparse.Namespace) -> None:
    from transformers import LogitsProcessorList, StoppingCriteriaList

    from xqg.data.benchmarks import load_xquad
    from xqg.generate.backends import StopTokenCriteria, SuppressStopUntilText
    from xqg.generate.engines import load_generator
    from xqg.generate.run import generate_queries
    from xqg.generate.store import read_table

    langs = [x for x in args.langs.split(",") if x]
    passages = load_xquad(["en"]).corpus[: args.k]
    print(
        f"{len(passages)} paragraphs × {len(langs)} langs × n={args.n} = "
        f"{len(passages) * len(langs) * args.n} "
        f"queries; top_k={args.top_k} max_new_tokens={args.max_new_tokens} batch={args.batch_size} "
        f"threads={args.threads} dtype={args.dtype} adapter={args.adapter}"
    )
    results: dict[str, tuple[float, float, list[str]]] = {}
    for dtype in [d for d in args.baseline_dtypes.split(",") if d]:
        wall, cpu, texts = baseline(args, langs, dtype)
        results[f"baseline-{dtype[:4]}"] = (wall, cpu, texts)
        print(f"  baseline {args.baseline_rev} {dtype}: generate {wall:.1f} s", flush=True)
    hf_gen = None
    for engine in args.engines.split(","):
        cfg = _config(args, engine, langs, args.n)
        t0 = time.perf_counter()
        gen = load_generator(cfg)
        load = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            generate_queries(passages, tmp, cfg, generator=gen, show_progress=False)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            results[engine] = (dt, cpu, read_table(tmp)["text"].to_pylist())
        print(f"  {engine}: load {load:.1f} s, generate {dt:.1f} s", flush=True)
        if engine.startswith("transformers"):
            hf_gen = gen
        else:
            del gen

    if args.naive_items and hf_gen is not None:
        gen = hf_gen
        items = [(p, lang) for p in passages for lang in langs][: args.naive_items]
        decoding = {
            "do_sample": True,
            "top_k": args.top_k,
            "top_p": 1.0,
            "temperature": 1.0,
            "max_new_tokens": args.max_new_tokens,
            "pad_token_id": gen.pad_id,
            "stopping_criteria": StoppingCriteriaList([StopTokenCriteria(gen.stop_mask)]),
        }
        torch.manual_seed(args.seed)
        outs: list[str] = []
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            for p in gen.prepare(items):
                ids = torch.tensor([p.ids])
                suppress = SuppressStopUntilText(gen.stop_mask, gen.blank_mask, ids.shape[1])
                proc = LogitsProcessorList([suppress])
                for _ in range(args.n):
                    out = gen.model.generate(
                        input_ids=ids, attention_mask=torch.ones_like(ids), logits_processor=proc, **decoding
                    )
                    dec = gen.tokenizer.batch_decode(out[:, ids.shape[1] :], skip_special_tokens=True)
                    outs += [t.split("\n", 1)[0].strip() for t in dec]
        results["naive"] = (time.perf_counter() - t0, time.process_time() - c0, outs)

    print(
        f"{'method':<16} {'queries':>7} {'wall s':>7} {'q/s':>6} {'cpu s':>7} {'q/cpu-s':>7} "
        f"{'words/query':>11} {'empty':>5}"
    )
    for name, (dt, cpu, qs) in results.items():
        words = mean(len(q.split()) for q in qs) if qs else 0.0
        empty = sum(1 for q in qs if not q)
        print(
            f"{name:<16} {len(qs):7d} {dt:7.1f} {len(qs) / dt:6.2f} {cpu:7.1f} {len(qs) / cpu:7.2f} "
            f"{words:11.1f} {empty:5d}"
        )
    rate = {k: len(v[2]) / v[0] for k, v in results.items()}
    cpu_rate = {k: len(v[2]) / v[1] for k, v in results.items()}
    refs = [r for r in results if r.startswith("baseline")] + ["transformers", "naive"]
    for name in results:
        parts = [
            f"{rate[name] / rate[r]:.1f}x {r} (cpu {cpu_rate[name] / cpu_rate[r]:.1f}x)"
            for r in refs
            if r in rate and r != name and not (name.startswith("baseline") and r.startswith("baseline"))
        ]
        if parts and name not in ("naive",):
            print(f"ratio {name}: " + ", ".join(parts))


#: The two systems ``--parity`` compares: the transformers path at the defaults it had before
#: generation v2 (float32, batch 8), and this version's defaults (dtype auto, batch 132 prompts,
#: shared prefix, no refill). Each writes its folder under ``--out``.
PARITY_SYSTEMS = {
    "before": {"engine": "transformers", "dtype": "float32", "batch_size": 8, "refill": False},
    "v2-b132": {"engine": "auto", "dtype": "auto", "batch_size": 132, "refill": False},
}


def parity(args: argparse.Namespace) -> None:
    from xqg.data.benchmarks import load_xquad
    from xqg.generate.quality import quality_report
    from xqg.generate.run import generate_queries

    langs = [x for x in args.langs.split(",") if x]
    bench = load_xquad(["en"])
    paragraphs = bench.paragraphs_in("test")[: args.limit]
    reports, seconds = {}, {}
    for name, over in PARITY_SYSTEMS.items():
        out = Path(args.out) / name
        cfg = _config(args, over["engine"], langs, args.parity_n).model_copy(update=over)
        t0 = time.perf_counter()
        generate_queries(iter(paragraphs), out, cfg, total=len(paragraphs), show_progress=True)
        seconds[name] = time.perf_counter() - t0
        reports[name] = quality_report(out, bench.corpus, depth=10, out_dir=out / "quality")
    a, b = PARITY_SYSTEMS
    per_lang = len(paragraphs) * args.parity_n
    print(
        f"\nParity on {len(paragraphs)} XQuAD test paragraphs × n={args.parity_n} ({per_lang} queries per "
        "language; a folder left by an earlier run is reused, so its time is not a rate); generation: "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in seconds.items())
    )
    print(f"| lang | in_lang {a} | {b} | Δ ± se | rt@1 {a} | {b} | rt@10 {a} | {b} | Δ ± se |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = {"in_lang": 0.0, "rt@10": 0.0}

    def cell(m: str, lang: str) -> tuple[float, float, str]:
        x, y = reports[a].value(lang, m), reports[b].value(lang, m)
        se = math.sqrt(max(x * (1 - x), 1e-9) / per_lang + max(y * (1 - y), 1e-9) / per_lang)
        return x, y, f"{y - x:+.3f} ± {se:.3f}"

    for lang in langs:
        il, rt10 = cell("in_lang", lang), cell("rt@10", lang)
        r1a, r1b = reports[a].value(lang, "rt@1"), reports[b].value(lang, "rt@1")
        worst["in_lang"] = max(worst["in_lang"], abs(il[1] - il[0]))
        worst["rt@10"] = max(worst["rt@10"], abs(rt10[1] - rt10[0]))
        print(
            f"| {lang} | {il[0]:.3f} | {il[1]:.3f} | {il[2]} | {r1a:.3f} | {r1b:.3f} | "
            f"{rt10[0]:.3f} | {rt10[1]:.3f} | {rt10[2]} |"
        )
    print(f"largest |Δ|: in_lang {worst['in_lang']:.3f}, rt@10 {worst['rt@10']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="gguf:gemma-3-270m")
    ap.add_argument("--adapter", default="builtin", help="builtin (the shipped LoRA), none, or a folder")
    ap.add_argument(
        "--engines", default="llama.cpp,transformers,transformers:refill",
        help="comma-separated; transformers:refill = with continuous batching",
    )  # fmt: skip
    ap.add_argument("--k", type=int, default=12, help="XQuAD English paragraphs (throughput)")
    ap.add_argument("--langs", default=XQUAD_TARGETS)
    ap.add_argument("--n", type=int, default=5, help="queries per paragraph and language")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=132, help="the default of generator.batch_size")
    ap.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    ap.add_argument("--baseline-rev", default="39d70e7", help="revision whose generate is the baseline")
    ap.add_argument("--baseline-dtypes", default="float32,bfloat16", help="'' to skip the baseline")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--naive-items", type=int, default=4, help="items the naive loop runs (0: skip)")
    ap.add_argument("--parity", action="store_true", help="also measure quality parity on the test split")
    ap.add_argument("--parity-only", action="store_true", help="skip the throughput part")
    ap.add_argument("--parity-n", type=int, default=5)
    ap.add_argument("--limit", type=int, default=None, help="parity: only the first N test paragraphs")
    ap.add_argument("--out", default="runs/gen-parity", help="parity: where both engines' folders go")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not args.parity_only:
        throughput(args)
    if args.parity or args.parity_only:
        parity(args)


if __name__ == "__main__":
    main()
