"""``xqg xnli …``: the XNLI benchmark experiment (issue 15). ``xqg benchmark xnli`` builds the files.

Kept apart from :mod:`xqg.cli` (one line registers it there); heavy imports happen inside commands.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from xqg.common_cli import ExperimentFileOpt, experiment_file

app = typer.Typer(
    help="XNLI as a cross-lingual retrieval benchmark: baselines, distillation, xQG (issue 15).",
    no_args_is_help=True,
)


def _config(config: str, out_dir: Path | None, generated: Path | None):  # noqa: ANN202 - XnliConfig
    from xqg.config import load_config_file, parse_config
    from xqg.experiments.xnli import XnliConfig
    from xqg.pipeline import packaged_config

    path = packaged_config(config)
    cfg = parse_config(XnliConfig, load_config_file(path), str(path))
    update = {
        "out_dir": str(out_dir) if out_dir else None,
        "generated": str(generated) if generated else None,
    }
    return cfg.model_copy(update={k: v for k, v in update.items() if v is not None})


ConfigArg = Annotated[str, typer.Argument(help="XNLI experiment file or packaged name")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", "--out-dir", help="override the file's out_dir")]


@app.command()
def run(
    config: ConfigArg = "xnli-grid",
    config_file: ExperimentFileOpt = None,
    report_dir: Annotated[Path | None, typer.Option(help="where the report goes (e.g. reports/xnli)")] = None,
    out_dir: OutOpt = None,
    generated: Annotated[Path | None, typer.Option(help="override the file's generation folder")] = None,
    models_only: Annotated[bool, typer.Option(help="stop after encoding premises and distilling")] = False,
) -> None:
    """Baselines (15 languages, 3 tasks), distillation on XNLI dev, and {base, base+distill} × {without,
    with xQG} on test with fusion chosen on dev; xQG cells are pending until generation has finished."""
    from xqg.experiments.xnli import run_xnli_experiment

    config = experiment_file(config, config_file, "xnli-grid")
    cfg = _config(config, out_dir, generated)
    command = "xqg xnli run " + shlex.join(sys.argv[3:]) if len(sys.argv) > 3 else f"xqg xnli run {config}"
    res = run_xnli_experiment(
        cfg, report_dir=report_dir, log=typer.echo, command=command, models_only=models_only
    )
    if not models_only:
        typer.echo((res.report_dir / "analysis.md").read_text(encoding="utf-8").split("\n\n")[2])
        typer.echo(f"report → {res.report_dir / 'analysis.md'}")


@app.command()
def premises(
    config: ConfigArg = "xnli-grid",
    config_file: ExperimentFileOpt = None,
    out_dir: OutOpt = None,
) -> None:
    """Write ``premises.jsonl`` (the 2,500 English dev and test premises) for ``xqg queries generate``."""
    from xqg.experiments.xnli import write_premises

    cfg = _config(experiment_file(config, config_file, "xnli-grid"), out_dir, None)
    typer.echo(str(write_premises(Path(cfg.out_dir))))
