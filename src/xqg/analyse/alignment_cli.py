"""``xqg analyse alignment``: cosine alignment of questions with their gold passage, per system."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from xqg.analyse.cli import app


@app.command("alignment")
def alignment_cmd(
    system: Annotated[
        list[str],
        typer.Option(
            "--system",
            help="LABEL=FOLDER[:SYSTEM] (repeatable; the first is the reference). FOLDER: an `xqg "
            "experiment` output; SYSTEM: baseline (plain passages) or a fused-<SYSTEM> folder",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="analysis output folder")],
    split: Annotated[str, typer.Option(help="which questions: the folder's queries-<split>/")] = "test",
    langs: Annotated[
        str | None, typer.Option(help="comma-separated question languages (default: all)")
    ] = None,
    bins: Annotated[int, typer.Option(help="histogram bins")] = 40,
    resamples: Annotated[int, typer.Option(help="permutation / bootstrap resamples")] = 10_000,
    seed: Annotated[int, typer.Option(help="seed of the permutation test and bootstrap")] = 0,
) -> None:
    """How does generated-query augmentation change query–passage cosine alignment (XQuAD)?"""
    from xqg.analyse.alignment import run_alignment
    from xqg.analyse.common import SystemSpec

    specs = [SystemSpec.parse(s) for s in system]
    lang_list = [x.strip() for x in langs.split(",") if x.strip()] if langs else None
    args = [a for s in system for a in ("--system", s)] + ["--split", split]
    args += ["--langs", langs] if langs else []
    args += ["--bins", str(bins), "--resamples", str(resamples), "--seed", str(seed), "--out", str(out)]
    command = "xqg analyse alignment " + shlex.join(args)
    folder = run_alignment(
        specs, out, split=split, langs=lang_list, bins=bins, n_resamples=resamples, seed=seed, command=command
    )
    from xqg.io import read_json

    typer.echo(read_json(folder / "analysis.json")["headline"])
    typer.echo(f"→ {folder}")
