"""``xqg analyse resource-levels``: gains of low- vs high-resource languages (Joshi et al. 2020 classes).

Kept apart from :mod:`xqg.analyse.resource_levels` so ``xqg --help`` imports no numpy/scipy/matplotlib.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Literal

import typer

from xqg.analyse.cli import app


def _ints(value: str | None, what: str) -> list[int] | None:
    """``"1,5,10"`` → [1, 5, 10]; ``"none"`` or ``""`` → [] (skip); None → None (default)."""
    from xqg.errors import XqgError

    if value is None:
        return None
    if value.strip().lower() in ("", "none", "off"):
        return []
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise XqgError(f"{what}: expected comma-separated integers, got '{value}'") from None


@app.command("resource-levels")
def resource_levels_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="analysis folder to write")],
    system: Annotated[
        list[str] | None,
        typer.Option(
            "--system",
            help="LABEL=FOLDER[:SYSTEM] of an 'xqg experiment' on XQuAD (repeatable; first = baseline)",
        ),
    ] = None,
    run: Annotated[
        list[str] | None,
        typer.Option(
            "--run", help="[LABEL=]run file or search folder, XOR-TyDi path (repeatable; first = baseline)"
        ),
    ] = None,
    queries: Annotated[
        Path | None, typer.Option(help="XOR-TyDi-format JSONL with 'answers' and 'lang' (for --run)")
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="the passages the runs retrieved from (for --run)")
    ] = None,
    split: Annotated[
        str, typer.Option(help="XQuAD split whose query vectors to score (queries-<split>/)")
    ] = "test",
    k: Annotated[str, typer.Option("--k", help="cut-offs for recall@k and precision@k")] = "1,5,10,20",
    rkt_k: Annotated[
        str | None, typer.Option(help="R@kt token counts on XQuAD (default 100,500; 'none' skips)")
    ] = None,
    xor_rkt_k: Annotated[
        str | None, typer.Option(help="R@kt token counts for --run (default 2000,5000)")
    ] = None,
    depth: Annotated[int, typer.Option(help="passages kept per query in the exact XQuAD run")] = 100,
    high_min_class: Annotated[
        int, typer.Option(help="lowest Joshi et al. class counted as high-resource (classes 0-5)")
    ] = 4,
    passage_text: Annotated[
        Literal["text", "title_text"], typer.Option(help="R@kt text of a passage")
    ] = "text",
    n_resamples: Annotated[
        int, typer.Option("--resamples", "--n-resamples", help="permutation / bootstrap resamples")
    ] = 10_000,
    seed: Annotated[int, typer.Option()] = 0,
    alpha: Annotated[float, typer.Option(help="significance level for the '*' marks")] = 0.05,
    exclude_langs: Annotated[
        str | None,
        typer.Option(
            "--exclude-langs",
            help="comma list of languages to show per language but leave out of the groups, the gap test, "
            "the Wikipedia correlation and the headline, e.g. 'en' as the control of an xQG experiment "
            "(no English queries are generated, so English cannot gain from augmentation)",
        ),
    ] = None,
    exclude_reason: Annotated[
        str | None,
        typer.Option(
            "--exclude-reason",
            help="why --exclude-langs are left out (default: read from the experiment folders' "
            "generated/config.json)",
        ),
    ] = None,
) -> None:
    """How do gains differ between low- and high-resource languages? recall@k, precision@k, R@kt by group."""
    from xqg.analyse.resource_levels import run_analysis

    ks = _ints(k, "--k") or []
    argv = ["xqg", "analyse", "resource-levels"]
    for s in system or []:
        argv += ["--system", s]
    for r in run or []:
        argv += ["--run", r]
    for flag, value, default in (
        ("--queries", queries, None),
        ("--corpus", corpus, None),
        ("--split", split, "test"),
        ("--k", k, "1,5,10,20"),
        ("--rkt-k", rkt_k, None),
        ("--xor-rkt-k", xor_rkt_k, None),
        ("--depth", depth, 100),
        ("--high-min-class", high_min_class, 4),
        ("--passage-text", passage_text, "text"),
        ("--resamples", n_resamples, 10_000),
        ("--seed", seed, 0),
        ("--alpha", alpha, 0.05),
        ("--exclude-langs", exclude_langs, None),
        ("--exclude-reason", exclude_reason, None),
    ):
        if value is not None and value != default:
            argv += [flag, str(value)]
    argv += ["--out", str(out)]
    folder = run_analysis(
        out,
        systems=system or [],
        runs=run or [],
        queries=queries,
        corpus=corpus,
        split=split,
        ks=ks,
        rkt_ks=_ints(rkt_k, "--rkt-k"),
        xor_rkt_ks=_ints(xor_rkt_k, "--xor-rkt-k"),
        depth=depth,
        high_min_class=high_min_class,
        passage_text=passage_text,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        exclude_langs=[x.strip() for x in (exclude_langs or "").split(",") if x.strip()],
        exclude_reason=exclude_reason,
        command=shlex.join(argv),
    )
    import json

    doc = json.loads((folder / "analysis.json").read_text(encoding="utf-8"))
    typer.echo(doc["headline"])
    typer.echo(f"→ {folder}")
