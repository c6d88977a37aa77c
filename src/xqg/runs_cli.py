"""``xqg experiment | demo | serve | grid | report``: whole runs, the service and the project report.

Registered on the root ``xqg`` group by :mod:`xqg.cli`; heavy imports happen inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from xqg.common_cli import ConfigOpt, EncoderDtype, ExperimentFileOpt, experiment_file, fail, split_list
from xqg.errors import XqgError


def _print_result(result: Any) -> None:
    typer.echo("")
    typer.echo(result.table.to_markdown())
    secs = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    typer.echo(f"\nwritten to {result.out_dir} ({secs})")


def experiment(
    config: Annotated[
        Path | None,
        typer.Argument(help="YAML/TOML experiment file, or a packaged one: xquad-baseline, xquad-xqg"),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="the experiment file, as the argument takes it")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="override out_dir")] = None,
    langs: Annotated[str | None, typer.Option(help="override langs (comma-separated)")] = None,
    generated: Annotated[
        Path | None,
        typer.Option(help="augment experiments: an existing `xqg queries generate` folder to use"),
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option(help="augment experiments: also write the report here (e.g. reports/…)")
    ] = None,
) -> None:
    """Run an experiment file end to end: benchmark → encode → index → search → evaluate; with an
    ``augment:`` section, the xQG experiment (dev-tuned fusion, variants, significance, plots)."""
    import shlex

    from xqg.config import load_experiment
    from xqg.pipeline import packaged_config, run_experiment

    overrides = {
        "out_dir": str(out) if out else None,
        "langs": split_list(langs),
        "augment.generated": str(generated) if generated else None,
    }
    config = experiment_file(config, config_file)
    exp = load_experiment(packaged_config(config), {k: v for k, v in overrides.items() if v is not None})
    if exp.augment is None:
        if generated or report_dir:
            raise XqgError("--generated and --report-dir need an experiment with an 'augment:' section")
        _print_result(run_experiment(exp, log=typer.echo))
        return
    from xqg.experiments.augmentation import run_augmentation_experiment
    from xqg.experiments.report import best_variant

    command = "xqg experiment " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    res = run_augmentation_experiment(exp, report_dir=report_dir, log=typer.echo, command=command)
    s = res.summary
    typer.echo(f"\n{s['metric']} on {s['splits']['eval']['name']} (macro over {len(s['langs'])} languages):")
    for name in ("baseline", "paper", "tuned", best_variant(s)):
        e = s["systems"][name]
        gains = e.get("significant_gains")
        sig = "" if gains is None else f"  significant gains in {len(gains)} languages"
        typer.echo(f"  {name:<22} {e['langs']['avg']['values'][s['metric']]:.3f}  ({e['describe']}){sig}")
    typer.echo(f"report: {res.report_dir / 'results.md'}")


DEMO_LANGS = "en,ar,de,hi,ru,th,tr,zh"


def demo(
    out: Annotated[Path, typer.Option("--out", "-o")] = Path("runs/demo"),
    langs: Annotated[str, typer.Option(help="XQuAD languages to search with")] = DEMO_LANGS,
    config: ConfigOpt = None,
    serve: Annotated[
        bool, typer.Option("--serve", help="then fuse the committed generated queries and serve both indexes")
    ] = False,
    generated: Annotated[
        Path | None,
        typer.Option(help="--serve: generated queries", show_default="reports/generated/xquad-gemma-lora"),
    ] = None,
    host: Annotated[str, typer.Option(help="--serve: interface (default: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="--serve: TCP port")] = 8000,
) -> None:
    """Offline end to end on XQuAD: 240 English paragraphs, questions in several languages."""
    from xqg.pipeline import demo_config, run_experiment

    exp = demo_config(config, out_dir=str(out), langs=split_list(langs))
    if serve:
        from xqg.config import parse_config
        from xqg.serve.server import check_generated, default_demo_generated, serve_demo
        from xqg.serve.settings import ServeSettings

        gen = check_generated(generated or default_demo_generated())
        settings = parse_config(ServeSettings, {"host": host, "port": port}, "command line")
    typer.echo(f"xqg demo: {exp.encoder.model}, {', '.join(exp.langs)} → {exp.out_dir}")
    _print_result(run_experiment(exp, log=typer.echo))
    if serve:
        serve_demo(exp.out_dir, exp.encoder, generated=gen, settings=settings, log=typer.echo)


def serve(
    index_dir: Annotated[Path, typer.Argument(help="index to serve (usually the xQG-augmented one)")],
    baseline: Annotated[Path | None, typer.Option(help="index to compare rankings with")] = None,
    generated: Annotated[
        Path | None,
        typer.Option(help="'xqg queries generate' folder", show_default="the one the index was fused with"),
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="passage texts", show_default="from the manifests")
    ] = None,
    host: Annotated[str, typer.Option(help="interface; the default is this machine only")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="allow this browser origin (repeatable; default: no CORS)")
    ] = None,
    max_query_chars: Annotated[int, typer.Option(help="longest query")] = 512,
    max_k: Annotated[int, typer.Option(help="most hits per query")] = 100,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body")] = 16_384,
    max_batch: Annotated[int, typer.Option(help="most queries per encoder micro-batch")] = 32,
    max_wait_ms: Annotated[float, typer.Option(help="micro-batch wait for arriving requests")] = 25.0,
    dtype: Annotated[
        EncoderDtype | None, typer.Option(help="encoder dtype", show_default="the index's")
    ] = None,
) -> None:
    """Serve an index over HTTP (FastAPI): POST /search, GET /passages/{id}, /health, /docs, and a
    web page at / comparing the baseline and xQG rankings with the generated queries behind them."""
    from xqg.config import parse_config
    from xqg.serve.server import run_server
    from xqg.serve.service import SearchService
    from xqg.serve.settings import ServeSettings

    given = {
        "host": host, "port": port, "cors_origins": cors_origin or [], "max_query_chars": max_query_chars,
        "max_k": max_k, "max_body_bytes": max_body_bytes, "max_batch": max_batch,
        "max_batch_queries": min(16, max_batch), "max_wait_ms": max_wait_ms,
    }  # fmt: skip
    settings = parse_config(ServeSettings, given, "command line")
    service = SearchService(
        index_dir, baseline=baseline, generated=generated, corpus=corpus, settings=settings, dtype=dtype
    )
    run_server(service, settings, log=typer.echo)


def grid(
    config: Annotated[str, typer.Argument(help="grid file or packaged name (xquad-grid)")] = "xquad-grid",
    config_file: ExperimentFileOpt = None,
    report_dir: Annotated[Path | None, typer.Option(help="where results.md/json and PNGs go")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", "--out-dir", help="override the file's out_dir")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="comma-separated subset of the file's models to train/evaluate (e.g. to evaluate the "
            "finished ones while another process trains the rest); the report covers only these"
        ),
    ] = None,
) -> None:
    """Issue 4's grid: {zero-shot, cross-lingual} training × distillation × xQG on XQuAD test,
    per language, with significance against the untrained baseline."""
    from xqg.experiments.grid import load_grid_config, run_grid

    config = experiment_file(config, config_file, "xquad-grid")
    cfg = load_grid_config(config)
    if out_dir is not None:
        cfg = cfg.model_copy(update={"out_dir": str(out_dir)})
    if models is not None:
        chosen = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in cfg.models]
        if unknown or not chosen:
            known = ", ".join(cfg.models)
            fail(f"--models: {', '.join(unknown) or 'none given'}; the grid's models are {known}")
        cfg = cfg.model_copy(update={"models": chosen})
    cmd = "xqg grid " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else f"xqg grid {config}"
    result = run_grid(cfg, report_dir=report_dir, command=cmd, log=typer.echo)
    typer.echo(f"report → {result.report_dir / 'results.md'}")


#: The sections of the project report, in the order of the research questions.
REPORT_SECTIONS = (
    "reports/xquad-xqg",
    "reports/analyses/alignment",
    "reports/analyses/mutual-information",
    "reports/analyses/mutual-information-passages",
    "reports/analyses/misspellings",
    "reports/analyses/resource-levels",
    "reports/xquad-grid",
    "reports/xnli",
)


def report(
    sections: Annotated[
        list[Path] | None,
        typer.Argument(help="analysis or experiment-report folders, in order (default: the project's)"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="folder for report.md and report.html")] = Path(
        "reports/report"
    ),
    title: Annotated[str, typer.Option(help="report title")] = "xqg: cross-lingual retrieval with xQG",
    qa: Annotated[
        list[str] | None,
        typer.Option(help="QUESTION::ANSWER for a section without analysis.json (in order); repeatable"),
    ] = None,
) -> None:
    """One Markdown + self-contained HTML report gathering the experiment, the training grid and the
    analyses, each table and plot with the command that produced it."""
    import shlex

    from xqg.analyse.report import build_report, section_answer

    chosen = list(sections) if sections else [Path(s) for s in REPORT_SECTIONS if Path(s).is_dir()]
    pairs: list[tuple[str, str]] | None = None
    if qa:
        bad = [x for x in qa if "::" not in x]
        if bad:
            fail(f"--qa needs QUESTION::ANSWER, got {bad[0]!r}")
        pairs = [tuple(x.split("::", 1)) for x in qa]  # type: ignore[misc]
    else:  # experiment and grid reports: the answer is computed from their results.json
        found = [section_answer(s) for s in chosen if not (s / "analysis.json").is_file()]
        pairs = [a for a in found if a is not None] if all(found) else None
    path = build_report(out, chosen, title=title, questions=pairs, command="xqg " + shlex.join(sys.argv[1:]))
    typer.echo(f"report → {path} and {path.with_suffix('.html')}")


COMMANDS = (experiment, demo, serve, grid, report)
