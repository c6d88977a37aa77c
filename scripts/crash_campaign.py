"""Crash campaign: SIGKILL every long stage at seeded random points, rerun it, compare.

For each stage (generate, encode, encode-generated, augment, index per-shard, search,
train-retriever, distill, train-generator) on tiny local models and small synthetic data:

1. one uninterrupted run gives the reference output, its duration and its count of I/O events
   (file opens for writing, renames, removals, mkdirs);
2. at each of ``--points`` seeded random points the stage runs in a forked process that is
   SIGKILLed, half the time at the k-th I/O event (k uniform over the reference run's events: the
   process kills itself from an audit hook, just before that operation), half the time after a
   uniform random delay (between two events, e.g. in the middle of writing a file);
3. the folder the killed run left is checked (a ``manifest.json`` or a finished ``training.json``
   may only be there if the folder is complete and equal to the reference), then the same
   command is rerun without a kill and must succeed, and its output is compared with the
   reference: byte-identical files (manifests less their time stamp, environment and reuse
   counts; trained weights within 1e-6), no row lost or duplicated, no temporary file left.

The stage runs in a child forked from this process after torch, transformers, faiss and what
the stages import are loaded (:func:`_preload`), so a point costs the stage's own work and not
an interpreter start; the points of a stage run two at a time (``--jobs``), each point's killed
run and rerun one after the other. Prints one table row per stage and exits 1 if any point
failed.

    .venv/bin/python scripts/crash_campaign.py                  # 20 points per stage
    .venv/bin/python scripts/crash_campaign.py --points 3 --stages encode,index --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tiny-model builders live in tests/

STAGES = (
    "generate",
    "encode",
    "encode-generated",
    "augment",
    "index",
    "search",
    "train-retriever",
    "distill",
    "train-generator",
)
TRAINING = {
    "train-retriever": "model/model.safetensors",
    "distill": "model/model.safetensors",
    "train-generator": "adapter/adapter_model.safetensors",
}
#: Manifest entries that legitimately differ between two runs of the same command.
VOLATILE = ("created", "environment")
TOLERANCE = 1e-6


# --- the inputs: tiny models and synthetic data, built once in a child process --------------------------


def _passages(n: int) -> list[dict[str, str]]:
    from tests.conftest import TINY_TEXTS

    k = len(TINY_TEXTS)
    return [
        {
            "_id": f"p{i}",
            "title": f"Title {i % 17}",
            "text": " ".join(TINY_TEXTS[(i * 3 + j) % k] for j in range(1 + i % 3)) + f" item {i}",
        }
        for i in range(n)
    ]


def build_inputs(work: Path, stages: list[str] | None = None) -> None:
    """Models (tiny BERT, tiny causal Gemma for generation and for LoRA training), a corpus of 400
    passages and 60 queries (written into ``work/inputs``)."""
    from tests.conftest import make_tiny_model
    from tests.test_generate import make_tiny_causal
    from tests.test_train_generator import make_tiny_gemma

    inp = work / "inputs"
    inp.mkdir(parents=True, exist_ok=True)
    stages = list(STAGES) if stages is None else stages
    if set(stages) - {"generate", "train-generator"}:
        make_tiny_model(inp / "bert")
    if "generate" in stages:
        make_tiny_causal(inp / "causal")
    if "train-generator" in stages:
        make_tiny_gemma(inp / "gemma")
    with (inp / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for p in _passages(400):
            fh.write(json.dumps(p, ensure_ascii=False) + "\n")
    with (inp / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for p in _passages(60):
            fh.write(json.dumps({"_id": f"q{p['_id']}", "text": p["text"][:40], "lang": "en"}) + "\n")


# --- the stages ------------------------------------------------------------------------------------------


def _cli(*args: str) -> None:
    """Run ``xqg ARGS`` in this (child) process as the installed command would."""
    from xqg.cli import main

    sys.argv = ["xqg", *args]
    try:
        main()
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    return None


def _retriever_rows() -> list[tuple[str, str, tuple[str, ...]]]:
    from tests.conftest import TINY_TEXTS

    n = len(TINY_TEXTS)
    return [
        (
            f"item {i} {TINY_TEXTS[(i + 5) % n][:20]}",
            f"{TINY_TEXTS[i % n]} {TINY_TEXTS[(i + 5) % n]} item {i}",
            (f"{TINY_TEXTS[(i + 1) % n]} item {(i + 7) % 24}",),
        )
        for i in range(24)
    ]


def run_stage(stage: str, work: Path, out: Path) -> None:
    """One uninterrupted run of ``stage`` writing ``out`` (inputs: the reference outputs of the
    stages before it, under ``work/<stage>/clean``)."""
    inp = work / "inputs"
    ref = {s: work / s / "clean" for s in STAGES}
    common = ["--device", "cpu"]
    if stage == "generate":
        _cli(
            "generate",
            str(inp / "corpus.jsonl"),
            "--out",
            str(out),
            "--model",
            str(inp / "causal"),
            "--adapter",
            "none",
            "--langs",
            "ar,bn,fi",
            "--n",
            "2",
            "--max-new-tokens",
            "6",
            "--batch-size",
            "4",
            "--shard-size",
            "4",
            "--limit",
            "40",
            "--seed",
            "7",
            "--dtype",
            "float32",
            *common,
        )
    elif stage == "encode":
        _cli(
            "encode",
            str(inp / "corpus.jsonl"),
            "--out",
            str(out),
            "--model",
            str(inp / "bert"),
            "--shard-size",
            "25",
            "--batch-size",
            "16",
            *common,
        )
    elif stage == "encode-generated":
        _cli("encode-generated", str(ref["generate"]), "--out", str(out), "--like", str(ref["encode"]),
             "--shard-size", "20")  # fmt: skip
    elif stage == "augment":
        _cli(
            "augment",
            str(ref["encode"]),
            str(ref["encode-generated"]),
            "--out",
            str(out),
            "--strategy",
            "mean-norm",
            "--alpha",
            "0.5",
        )
    elif stage == "index":
        _cli("index", str(ref["augment"]), "--out", str(out), "--per-shard")
    elif stage == "search":
        _cli("search", str(ref["index"]), str(inp / "queries.jsonl"), "--out", str(out), "--depth", "10")
    elif stage == "train-retriever":
        from xqg.config import EncoderConfig
        from xqg.train.retriever import RetrieverTrainConfig, train_retriever

        enc = EncoderConfig(model=str(inp / "bert"), device="cpu", query_max_length=32, passage_max_length=64)
        cfg = RetrieverTrainConfig(
            encoder=enc,
            batch_size=8,
            learning_rate=5e-3,
            max_steps=10,
            warmup_ratio=0.0,
            save_steps=2,
            logging_steps=2,
            negatives=1,
            seed=3,
        )
        train_retriever(_retriever_rows(), out, cfg, resume=True)
    elif stage == "distill":
        from tests.conftest import TINY_TEXTS

        from xqg.config import EncoderConfig
        from xqg.train.distill import DistillConfig, distill

        n = len(TINY_TEXTS)
        pairs = [
            ("toy", "xx", TINY_TEXTS[i % n] + f" {i}", TINY_TEXTS[(i + 3) % n] + f" {i}") for i in range(32)
        ]
        teacher = EncoderConfig(model=str(inp / "bert"), device="cpu", query_max_length=32)
        cfg = DistillConfig(
            teacher=teacher,
            batch_size=8,
            learning_rate=3e-3,
            max_steps=10,
            warmup_ratio=0.0,
            save_steps=2,
            logging_steps=2,
            freeze_embeddings=False,
        )
        distill(out, cfg, pairs=pairs, bitext_eval=False, show_progress=False, resume=True)
    elif stage == "train-generator":
        from tests.test_train_generator import EXAMPLES

        from xqg.train.generator import GenTrainConfig, train_generator

        cfg = GenTrainConfig(
            model=str(inp / "gemma"),
            lora_r=4,
            lora_alpha=8,
            lora_dropout=0.1,
            lr=1e-2,
            warmup_steps=0,
            schedule="constant",
            batch_size=4,
            max_steps=8,
            save_every=2,
            eval_every=4,
            log_every=1,
            threads=1,
            device="cpu",
        )
        train_generator(
            cfg,
            out,
            resume=True,
            train_examples=EXAMPLES,
            dev_examples=EXAMPLES[:2],
            log=None,
            show_progress=False,
        )
    else:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")


# --- running a stage in a child, killing it ----------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_EVENTS = {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate"}


def _is_io_event(event: str, args: tuple[Any, ...]) -> bool:
    if event in _EVENTS:
        return True
    if event == "open" and len(args) >= 3:
        mode, flags = args[1], args[2]
        return bool(
            (isinstance(mode, str) and any(c in mode for c in "wax+"))
            or (isinstance(flags, int) and flags & _WRITE_FLAGS)
        )
    return False


@dataclass
class ChildResult:
    status: str  # "ok", "failed", "killed"
    seconds: float
    events: int | None = None
    log: str = ""


@dataclass
class Child:
    """A forked run of a stage: its pid, when it started, where it logs, when to kill it."""

    pid: int
    started: float
    log: Path
    count_file: Path
    deadline: float | None = None


def start_child(
    stage: str,
    work: Path,
    out: Path,
    *,
    kill_at_event: int | None = None,
    kill_after: float | None = None,
    log_dir: Path,
) -> Child:
    """Fork and run the stage in the child: it kills itself at I/O event ``kill_at_event``; the
    parent kills it ``kill_after`` seconds after the start (:func:`poll_child`)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{out.name}-{time.monotonic_ns()}.log"
    count_file = log.with_suffix(".events")
    sys.stdout.flush()
    sys.stderr.flush()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            count = 0

            def hook(event: str, args: tuple[Any, ...]) -> None:
                nonlocal count
                if _is_io_event(event, args):
                    count += 1
                    if kill_at_event is not None and count >= kill_at_event:
                        os.kill(os.getpid(), signal.SIGKILL)

            sys.addaudithook(hook)
            run_stage(stage, work, out)
            sys.stdout.flush()
            sys.stderr.flush()
            with open(count_file, "w") as fh:  # counted as one more event; harmless
                fh.write(str(count))
            code = 0
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        os._exit(code)
    return Child(pid, t0, log, count_file, None if kill_after is None else t0 + kill_after)


def _result(child: Child, status: int) -> ChildResult:
    seconds = time.perf_counter() - child.started
    text = child.log.read_text(errors="replace") if child.log.exists() else ""
    if os.WIFSIGNALED(status):
        return ChildResult("killed", seconds, log=text)
    events = int(child.count_file.read_text()) if child.count_file.exists() else None
    return ChildResult("ok" if os.WEXITSTATUS(status) == 0 else "failed", seconds, events, text)


def poll_child(child: Child) -> ChildResult | None:
    """What happened to ``child`` if it ended (SIGKILLing it first once its deadline passed),
    else None."""
    done, status = os.waitpid(child.pid, os.WNOHANG)
    if not done and child.deadline is not None and time.perf_counter() >= child.deadline:
        os.kill(child.pid, signal.SIGKILL)
        done, status = os.waitpid(child.pid, 0)
    return _result(child, status) if done else None


def wait_children(children: list[Child]) -> tuple[int, ChildResult]:
    """Wait until one of ``children`` ends; (its index, what happened)."""
    while True:
        for i, child in enumerate(children):
            got = poll_child(child)
            if got is not None:
                return i, got
        time.sleep(0.002 if any(c.deadline is not None for c in children) else 0.01)


def run_child(stage: str, work: Path, out: Path, *, log_dir: Path) -> ChildResult:
    """One uninterrupted run of the stage in a forked child; what happened."""
    return wait_children([start_child(stage, work, out, log_dir=log_dir)])[1]


# --- comparing a folder with the reference ------------------------------------------------------------------


def _temp_leftovers(out: Path) -> list[str]:
    return sorted(
        str(p.relative_to(out))
        for p in out.rglob("*")
        if p.name.endswith(".tmp") or p.name.startswith(("tmp-", ".tmp")) or p.name == ".xqg.lock"
    )


def _manifest_view(path: Path) -> Any:
    m = json.loads(path.read_text(encoding="utf-8"))
    for key in VOLATILE:
        m.pop(key, None)
    m.get("counts", {}).pop("reused_shards", None)
    return m


def rows_of(stage: str, out: Path) -> list[Any] | None:
    """The rows a stage's folder holds, as hashable keys (None for training: weights, not rows)."""
    if stage in TRAINING:
        return None
    if stage == "generate":
        import pyarrow.parquet as pq

        rows = []
        for p in sorted(out.glob("queries-*.parquet")):
            t = pq.read_table(p)
            rows += list(
                zip(t["passage_id"].to_pylist(), t["lang"].to_pylist(), t["sample"].to_pylist(), strict=True)
            )
        return rows
    if stage == "search":
        path = out / "run.trec"
        return [tuple(line.split()[:3:2]) for line in path.read_text().splitlines()] if path.exists() else []
    if stage == "index":
        return [x for p in sorted(out.glob("ids-*.txt")) for x in p.read_text().splitlines()]
    path = out / "ids.txt"
    return path.read_text().splitlines() if path.exists() else []


def _max_weight_diff(a: Path, b: Path) -> float:
    from safetensors.numpy import load_file

    wa, wb = load_file(str(a)), load_file(str(b))
    if wa.keys() != wb.keys():
        return float("inf")
    import numpy as np

    return max(
        (
            float(np.max(np.abs(wa[k].astype(np.float64) - wb[k].astype(np.float64))))
            for k in wa
            if wa[k].size
        ),
        default=0.0,
    )


def compare(stage: str, clean: Path, other: Path) -> tuple[bool, str, float | None]:
    """(identical, what differs, max weight difference for training stages)."""
    if stage in TRAINING:
        a, b = clean / TRAINING[stage], other / TRAINING[stage]
        if not b.exists():
            return False, f"no {TRAINING[stage]}", None
        diff = _max_weight_diff(a, b)
        return diff <= TOLERANCE, "" if diff <= TOLERANCE else f"weights differ by {diff:g}", diff
    names = {p.name for p in clean.iterdir() if p.is_file()}
    got = {p.name for p in other.iterdir() if p.is_file() and not p.name.endswith(".tmp")}
    if names != got:
        return (
            False,
            f"files differ: missing {sorted(names - got)[:3]}, extra {sorted(got - names)[:3]}",
            None,
        )
    for name in sorted(names):
        if name == "manifest.json":
            same = _manifest_view(clean / name) == _manifest_view(other / name)
        else:
            same = (clean / name).read_bytes() == (other / name).read_bytes()
        if not same:
            return False, f"{name} differs", None
    return True, "", None


def marked_complete(stage: str, out: Path) -> bool:
    """Does the folder claim to be finished? (a manifest; for training a final training.json)"""
    if stage in TRAINING:
        path = out / "training.json"
        if not path.exists():
            return False
        if stage == "train-generator":
            return json.loads(path.read_text()).get("status") not in (None, "running")
        return True
    return (out / "manifest.json").exists()


# --- the campaign --------------------------------------------------------------------------------


@dataclass
class StageReport:
    stage: str
    points: int = 0
    killed: int = 0
    finished_before_kill: int = 0
    resumed: int = 0
    identical: int = 0
    rows_lost: int = 0
    rows_duplicated: int = 0
    complete_but_wrong: int = 0
    leftovers: int = 0
    max_weight_diff: float | None = None
    reference_seconds: float = 0.0
    reference_events: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class PointResult:
    """What one kill point found (merged into its stage's report in point order)."""

    killed: bool = False
    finished_first: bool = False
    resumed: bool = False
    identical: bool = False
    rows_lost: int = 0
    rows_duplicated: int = 0
    complete_but_wrong: int = 0
    leftovers: int = 0
    weight_diff: float | None = None
    failures: list[str] = field(default_factory=list)
    line: str = ""


#: One point: yields the runs to wait for (the killed run, then the rerun), is sent what each
#: did, returns what it found.
Point = Generator[Child, ChildResult, PointResult]


def run_point(
    stage: str, work: Path, i: int, how: str, kill: dict[str, Any], clean_rows: list[Any] | None
) -> Point:
    res = PointResult()
    base, logs = work / stage, work / "logs" / stage
    out = base / f"p{i:02d}"
    first = yield start_child(stage, work, out, log_dir=logs, **kill)
    if first.status == "failed":
        res.failures.append(f"point {i} ({how}): the run to be killed failed by itself:\n{first.log[-2000:]}")
        return res
    res.killed, res.finished_first = first.status == "killed", first.status == "ok"
    if out.exists() and marked_complete(stage, out):
        same, why, _ = compare(stage, base / "clean", out)
        if not same and res.killed:
            res.complete_but_wrong += 1
            res.failures.append(f"point {i} ({how}): killed folder is marked complete but {why}")
    rerun = yield start_child(stage, work, out, log_dir=logs)
    if rerun.status != "ok":
        res.failures.append(f"point {i} ({how}): rerun failed:\n{rerun.log[-3000:]}")
        return res
    res.resumed = True
    same, why, res.weight_diff = compare(stage, base / "clean", out)
    res.identical = same
    if not same:
        res.failures.append(f"point {i} ({how}): rerun output differs: {why}")
    rows = rows_of(stage, out)
    if rows is not None and clean_rows is not None:
        res.rows_lost = sum((Counter(clean_rows) - Counter(rows)).values())
        res.rows_duplicated = sum((Counter(rows) - Counter(set(rows))).values())
    left = _temp_leftovers(out)
    if left:
        res.leftovers = len(left)
        res.failures.append(f"point {i} ({how}): left behind {left[:3]}")
    res.line = f"  {stage} point {i:2d}: {how:>18} → {first.status:<6} rerun {'identical' if same else why}"
    return res


def run_points(points: list[Point], jobs: int) -> list[PointResult]:
    """Run the points, ``jobs`` at a time (each point's two runs one after the other)."""
    results: list[PointResult | None] = [None] * len(points)
    waiting = list(enumerate(points))[::-1]
    active: list[tuple[int, Point, Child]] = []

    def advance(k: int, point: Point, sent: ChildResult | None) -> None:
        try:
            child = next(point) if sent is None else point.send(sent)
        except StopIteration as stop:
            results[k] = stop.value
            return
        active.append((k, point, child))

    while waiting or active:
        while waiting and len(active) < jobs:
            advance(*waiting.pop(), None)
        if active:
            j, got = wait_children([c for _, _, c in active])
            k, point, _ = active.pop(j)
            advance(k, point, got)
    return [r for r in results if r is not None]


def campaign_stage(
    stage: str, work: Path, points: int, rng: random.Random, log: Callable[[str], None], jobs: int = 1
) -> StageReport:
    rep = StageReport(stage)
    t_start = time.perf_counter()
    base = work / stage
    ref = run_child(stage, work, base / "clean", log_dir=work / "logs" / stage)
    if ref.status != "ok":
        rep.failures.append(f"reference run failed:\n{ref.log[-3000:]}")
        return rep
    rep.reference_seconds, rep.reference_events = ref.seconds, ref.events or 0
    clean_rows = rows_of(stage, base / "clean")
    plans = []
    for i in range(points):  # drawn in point order, whatever order the points then run in
        if rng.random() < 0.5 and ref.events:
            k = rng.randint(1, ref.events)
            how, kill = f"event {k}/{ref.events}", {"kill_at_event": k}
        else:
            delay = rng.uniform(0.0, ref.seconds)
            how, kill = f"{delay:.2f}s/{ref.seconds:.2f}s", {"kill_after": delay}
        plans.append(run_point(stage, work, i, how, kill, clean_rows))
    for res in run_points(plans, jobs):
        rep.points += 1
        rep.killed += res.killed
        rep.finished_before_kill += res.finished_first
        rep.resumed += res.resumed
        rep.identical += res.identical
        rep.rows_lost += res.rows_lost
        rep.rows_duplicated += res.rows_duplicated
        rep.complete_but_wrong += res.complete_but_wrong
        rep.leftovers += res.leftovers
        if res.weight_diff is not None:
            rep.max_weight_diff = max(rep.max_weight_diff or 0.0, res.weight_diff)
        rep.failures += res.failures
        if res.line:
            log(res.line)
    rep.seconds = time.perf_counter() - t_start
    return rep


def _fmt_diff(x: float | None) -> str:
    return "–" if x is None else f"{x:.1e}"


def table(reports: list[StageReport]) -> str:
    head = (
        "| stage | points | killed | finished first | resumed | identical | rows lost | rows duplicated "
        "| complete but wrong | leftovers | max Δweight | ref. events | seconds |"
    )
    lines = [head, "|---|" + "---:|" * 12]
    for r in reports:
        lines.append(
            f"| {r.stage} | {r.points} | {r.killed} | {r.finished_before_kill} | {r.resumed} "
            f"| {r.identical} | {'–' if r.stage in TRAINING else r.rows_lost} "
            f"| {'–' if r.stage in TRAINING else r.rows_duplicated} | {r.complete_but_wrong} "
            f"| {r.leftovers} | {_fmt_diff(r.max_weight_diff)} | {r.reference_events} | "
            f"{r.seconds:.0f} |"
        )
    tot = StageReport("**total**")
    for r in reports:
        for k in (
            "points",
            "killed",
            "finished_before_kill",
            "resumed",
            "identical",
            "rows_lost",
            "rows_duplicated",
            "complete_but_wrong",
            "leftovers",
            "seconds",
        ):
            setattr(tot, k, getattr(tot, k) + getattr(r, k))
    lines.append(
        f"| **total** | {tot.points} | {tot.killed} | {tot.finished_before_kill} | {tot.resumed} | "
        f"{tot.identical} | {tot.rows_lost} | {tot.rows_duplicated} | {tot.complete_but_wrong} | "
        f"{tot.leftovers} | | | {tot.seconds:.0f} |"
    )
    return "\n".join(lines)


def _prepare(work: Path, stages: list[str]) -> None:
    """Build the inputs in a child (the parent must not run torch code before forking)."""
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            build_inputs(work, stages)
            code = 0
        except BaseException:
            traceback.print_exc()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
        raise SystemExit("building the campaign's inputs failed")


#: What each stage imports on first use, loaded once in the parent so that no forked run pays for
#: it again (a point costs the stage's own work): the stages' modules, the libraries they import
#: lazily (the trainers, peft, datasets, matplotlib for loss.png) and the tiny models' architectures.
_TRAINING = ("datasets", "transformers.trainer", "matplotlib.pyplot")
_ST_TRAINING = (*_TRAINING, "sentence_transformers.sentence_transformer.trainer", "xqg.train.retriever")
_BERT = ("transformers.models.bert.modeling_bert", "xqg.encode")
PRELOAD: dict[str, tuple[str, ...]] = {
    "generate": (
        "pyarrow.parquet",
        "xqg.generate.run",
        "transformers.models.gemma3.modeling_gemma3",
        "tests.test_generate",
    ),
    "encode": _BERT,
    "encode-generated": ("pyarrow.parquet", *_BERT),
    "augment": ("xqg.augment",),
    "index": ("faiss", "xqg.index"),
    "search": ("faiss", *_BERT, "xqg.search"),
    "train-retriever": (*_BERT, *_ST_TRAINING, "tests.conftest"),
    "distill": (*_BERT, *_ST_TRAINING, "xqg.train.distill", "tests.conftest"),
    "train-generator": (
        *_TRAINING,
        "peft",
        "transformers.models.gemma3.modeling_gemma3",
        "xqg.train.generator",
        "tests.test_train_generator",
    ),
}


def _preload(stages: list[str]) -> None:
    """Import the :data:`PRELOAD` of ``stages`` and fill, once, what they would otherwise rebuild in every
    forked run although it never changes: transformers' weight-conversion table (regular
    expressions compiled on the first model load), the click command tree typer builds from xqg's
    CLI on every call, and the compiled Jinja template of sentence-transformers' model card
    (written with every checkpoint). These are pure functions of their input, so a run writes
    the same bytes and does the same I/O; then the parent's objects are frozen out of the
    garbage collector (the trainers call ``gc.collect()``, which would walk them in every run)."""
    import functools
    import gc
    import importlib

    import jinja2
    import matplotlib
    import typer.main

    import xqg.cli

    matplotlib.use("Agg")
    for name in dict.fromkeys(m for stage in stages for m in PRELOAD[stage]):
        importlib.import_module(name)
    from transformers import conversion_mapping

    conversion_mapping.get_checkpoint_conversion_mapping("bert")

    get_command, xqg_command = typer.main.get_command, typer.main.get_command(xqg.cli.app)
    typer.main.get_command = lambda app: xqg_command if app is xqg.cli.app else get_command(app)

    if {"train-retriever", "distill"} & set(stages):
        compile_template = functools.lru_cache(maxsize=64)(jinja2.Environment.compile)
        jinja2.Environment.compile = compile_template  # type: ignore[method-assign]
        import sentence_transformers

        for template in Path(sentence_transformers.__file__).parent.rglob("model_card_template.md"):
            jinja2.Template(template.read_text(encoding="utf-8"))
    gc.freeze()


def run_campaign(
    *,
    points: int = 20,
    seed: int = 0,
    stages: list[str] | None = None,
    work: Path | None = None,
    log: Callable[[str], None] = print,
    jobs: int = 2,
) -> list[StageReport]:
    """Run the campaign, ``jobs`` points of a stage at a time; return one report per stage (also
    usable from tests)."""
    os.environ.setdefault("XQG_PROGRESS", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch  # imported before forking, so a point does not pay for it (more: _preload)
    import transformers  # noqa: F401

    import xqg.cli  # noqa: F401

    torch.set_num_threads(1)
    chosen = stages or list(STAGES)
    unknown = [s for s in chosen if s not in STAGES]
    if unknown:
        raise SystemExit(f"unknown stage(s) {unknown}; stages: {', '.join(STAGES)}")
    work = work or Path(tempfile.mkdtemp(prefix="xqg-crash-"))
    needed = _with_prerequisites(chosen)
    _preload(needed)
    _prepare(work, needed)
    reports = []
    for stage in needed:
        if stage not in chosen:  # only its reference output is needed, by a later stage
            ref = run_child(stage, work, work / stage / "clean", log_dir=work / "logs" / stage)
            if ref.status != "ok":
                raise SystemExit(f"{stage} (needed by a later stage) failed:\n{ref.log[-3000:]}")
            continue
        rng = random.Random(f"{seed}:{stage}")
        log(f"{stage}: {points} kill points")
        reports.append(campaign_stage(stage, work, points, rng, log, jobs))
    return reports


PREREQUISITES = {
    "encode-generated": ["generate", "encode"],
    "augment": ["encode-generated"],
    "index": ["augment"],
    "search": ["index"],
}


def _with_prerequisites(chosen: list[str]) -> list[str]:
    need: set[str] = set()

    def add(s: str) -> None:
        for p in PREREQUISITES.get(s, []):
            add(p)
        need.add(s)

    for s in chosen:
        add(s)
    return [s for s in STAGES if s in need]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=20, help="kill points per stage (default 20)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset")
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary one)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--quiet", action="store_true", help="no line per point")
    ap.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="points run at once (default: 2)"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    reports = run_campaign(
        points=args.points,
        seed=args.seed,
        stages=args.stages.split(","),
        work=args.work,
        log=(lambda _m: None) if args.quiet else print,
        jobs=max(1, args.jobs),
    )
    print()
    print(table(reports))
    print(
        f"\n{time.perf_counter() - t0:.0f} s; seed {args.seed}, {args.points} points per stage, "
        f"{args.jobs} at a time"
    )
    failures = [f"{r.stage}: {f}" for r in reports for f in r.failures]
    for f in failures:
        print("FAIL", f)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=2) + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
