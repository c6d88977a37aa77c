"""Seconds per training step of ``xqg train-generator`` (forward + backward + AdamW + bookkeeping).

Measured through the public API, so the same script times any implementation of the loop: a run
of ``warm`` steps and a run of ``warm + steps`` steps start from the same model, data and seed in
fresh folders; the difference of their wall times divided by ``steps`` is the marginal cost of a
step (model loading, the first step's warm-up and the final save cancel out). Checkpoints and
validation are pushed past the end of the run (one final save each), so only steps are timed.
Each size is run ``repeat`` times and the minimum is kept (the machine is shared). Wall time and
the process's CPU time are both printed: on a contended machine CPU time (one thread) is the
steadier figure. LoRA dropout is
off, so the printed sha256 of the adapter identifies the arithmetic: two implementations that print
the same one computed the same weights.

Timing an older commit with this script: ``git archive REV src tests | tar -x -C /tmp/old``, copy
this file to ``/tmp/old/bench/``, and run it there with ``PYTHONPATH=/tmp/old/src``.

* ``--model tiny`` (default): the 2-layer random Gemma 3 of tests/test_train_generator.py on its
  8 synthetic examples, batch 4, LoRA r 4.
* ``--model gemma``: the real Gemma 3 270M (``gguf:gemma-3-270m``, float32) with LoRA r 32 on 16
  consecutive examples of the real training stream (German XQuAD groups + Bengali XOR pairs) when
  ../shared/data is there, else the synthetic examples; batch 8.

    nice -n 5 env OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/train_generator_step.py
    nice -n 5 env OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE .venv/bin/python \
        bench/train_generator_step.py --model gemma --warm 1 --steps 2 --repeat 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _examples(model: str) -> list:
    from tests.test_train_generator import EXAMPLES

    if model != "gemma":
        return list(EXAMPLES)
    from xqg.paths import data_root

    if not (data_root() / "xquad").is_dir() or not (data_root() / "xor_tydi").is_dir():
        return list(EXAMPLES) * 2
    from xqg.train.generator_data import build_generator_data

    data = build_generator_data(
        xquad_langs=["de", "ru"], xor_langs=["bn"], per_lang=40, epochs=1, dev_per_lang=0, group_size=8
    )
    return data.train[:16]


def _run(model_dir: str, kind: str, steps: int, threads: int, out: Path) -> tuple[float, float]:
    from xqg.train.generator import GenTrainConfig, train_generator

    big = dict(lora_r=32, lora_alpha=64, batch_size=8) if kind == "gemma" else {}
    cfg = GenTrainConfig(
        **{
            "model": model_dir,
            "lora_r": 4,
            "lora_alpha": 8,
            "lora_dropout": 0.0,  # no RNG draws in the steps: the weights identify the arithmetic
            "lr": 1e-3,
            "warmup_steps": 0,
            "schedule": "constant",
            "batch_size": 4,
            "max_steps": steps,
            "save_every": 10_000,
            "eval_every": 10_000,
            "log_every": 10_000,
            "threads": threads,
            "device": "cpu",
            **big,
        }
    )
    exs = _examples(kind)
    t, c = time.perf_counter(), time.process_time()
    train_generator(cfg, out, train_examples=exs, log=None, show_progress=False)
    return time.perf_counter() - t, time.process_time() - c


def _child(args: argparse.Namespace) -> None:
    """One run in this process (a fresh process per run: no shared caches or thread pools)."""
    secs, cpu = _run(args.model_dir, args.model, args.n, args.threads, Path(args.out))
    doc = json.loads((Path(args.out) / "training.json").read_text())
    weights = hashlib.sha256((Path(args.out) / "adapter" / "adapter_model.safetensors").read_bytes())
    print(
        json.dumps(
            {"wall": secs, "cpu": cpu, "per_step": doc["seconds_per_step"], "sha": weights.hexdigest()}
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="tiny, gemma, or a model folder")
    ap.add_argument("--warm", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory(prefix="xqg-bench-gen-") as tmp:
        if args.model == "tiny":
            from tests.test_train_generator import make_tiny_gemma

            model_dir = str(make_tiny_gemma(Path(tmp) / "tiny-gemma"))
        elif args.model == "gemma":
            model_dir = "gguf:gemma-3-270m"
        else:
            model_dir = args.model
        walls: dict[int, list[float]] = {args.warm: [], args.warm + args.steps: []}
        cpus: dict[int, list[float]] = {args.warm: [], args.warm + args.steps: []}
        shas: set[str] = set()
        for r in range(args.repeat):
            for n in walls:
                out = Path(tmp) / f"run-{r}-{n}"
                cmd = [sys.executable, __file__, "--child", "--model", args.model, "--model-dir", model_dir]
                cmd += ["--n", str(n), "--out", str(out), "--threads", str(args.threads)]
                res = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
                got = json.loads(res.stdout.strip().splitlines()[-1])
                walls[n].append(got["wall"])
                cpus[n].append(got["cpu"])
                if n == args.warm + args.steps:
                    shas.add(got["sha"][:16])
        lo, hi = (min(walls[n]) for n in walls)
        clo, chi = (min(cpus[n]) for n in cpus)
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
        print(
            f"train-generator step ({args.model}, {args.threads} thread(s), commit {rev.stdout.strip()}): "
            f"{(hi - lo) / args.steps * 1000:.1f} ms/step wall, "
            f"{(chi - clo) / args.steps * 1000:.1f} ms/step CPU  "
            f"[min wall {lo:.2f}s for {args.warm} steps, {hi:.2f}s for {args.warm + args.steps}; "
            f"{args.repeat} repeats]; adapter sha256 after {args.warm + args.steps} steps: "
            + ", ".join(sorted(shas))
        )


if __name__ == "__main__":
    main()
