"""The ``xqg`` command: a thin typer layer that parses flags, calls the Python API, prints.

Commands: the stages ``encode``, ``index``, ``search``, ``evaluate``, ``augment`` and ``benchmark``
(:mod:`xqg.stages_cli`); the groups ``xqg queries generate|report|filter|encode``
(:mod:`xqg.queries_cli`) and ``xqg train generator|retriever|distill|negatives`` (:mod:`xqg.train_cli`);
``experiment``, ``demo``, ``serve``, ``grid`` and ``report`` (:mod:`xqg.runs_cli`); ``analyse …`` and
``xnli …``. This module assembles them and adds what every command shares:

- **Paths** are checked before a command runs (:data:`PATH_KINDS`): a missing, empty, unreadable or
  wrong-kind path is one ``error:`` line and exit 2 before anything is imported or loaded.
- **--config FILE** on every command. Where a command's flags are settings (encode, index, search,
  demo, queries generate, the three trainings) the file holds those settings and ``--help`` shows each
  flag's default with its key (``[default: 5, from generator.n]``). Elsewhere the file's keys are the
  command's option names (``alpha: 0.5``). Flags on the command line win. For experiment, grid and
  ``xnli`` it is their experiment file, which they also take as their argument.
- **Old names** stay for one release, hidden from ``--help``: the flat commands of before the groups
  (:data:`COMMAND_ALIASES`; they print a one-line note) and old option spellings
  (:data:`OLD_SPELLINGS`), which reach the same parameter.

Errors in the user's input (``XqgError``) print one clear message and exit with status 2. Heavy
imports (torch, faiss) happen inside the commands so ``xqg --help`` is instant.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from xqg import queries_cli, runs_cli, stages_cli, train_cli
from xqg.common_cli import describe_default
from xqg.errors import XqgError

# --- path arguments: checked before a command runs ---------------------------------------------------
# Every path parameter of every command is declared here with what it must be: an input file
# ("file"), an input folder ("dir"), either ("path"), a folder or file to write ("out-dir",
# "out-file"), or an experiment file or packaged name ("config-or-name"). The old command names get
# their new name's entry (tests/test_cli_paths.py proves the table covers every Path parameter).
_CONFIG = {"config": "file"}
PATH_KINDS: dict[str, dict[str, str | tuple[str, ...]]] = {
    "encode": {"inputs": "file", "out": "out-dir", **_CONFIG},
    "index": {"embeddings": "dir", "out": "out-dir", **_CONFIG},
    "search": {"index_dir": "dir", "queries": "file", "out": "out-dir", **_CONFIG},
    "evaluate": {
        "run": "path",
        "qrels": "file",
        "queries": "file",
        "answers": "file",
        "corpus": "file",
        "baseline": "path",
        "out": "out-dir",
        **_CONFIG,
    },  # fmt: skip
    "augment": {"passages": "dir", "queries": "dir", "out": "out-dir", **_CONFIG},
    "benchmark": {"out": "out-dir", "corpus": "file", **_CONFIG},
    "queries generate": {"corpus": "file", "out": "out-dir", **_CONFIG},
    "queries report": {"gen_dir": "dir", "corpus": "file", "index_dir": "dir", "out": "out-dir", **_CONFIG},
    "queries filter": {"gen_dir": "dir", "out": "out-dir", "corpus": "file", "index_dir": "dir", **_CONFIG},
    "queries encode": {"generated": "dir", "out": "out-dir", "like": "dir", **_CONFIG},
    "train generator": {"out": "out-dir", "export_adapter": ("dir", "out-dir"), **_CONFIG},
    "train retriever": {"out": "out-dir", "data": "file", **_CONFIG},
    "train distill": {"out": "out-dir", **_CONFIG},
    "train negatives": {"out": "out-file", "data": "file", "corpus": "file", **_CONFIG},
    "experiment": {
        "config": "config-or-name",
        "config_file": "config-or-name",
        "out": "out-dir",
        "generated": "dir",
        "report_dir": "out-dir",
    },
    "demo": {"out": "out-dir", "generated": "dir", **_CONFIG},
    "serve": {"index_dir": "dir", "baseline": "dir", "generated": "dir", "corpus": "file", **_CONFIG},
    "grid": {"report_dir": "out-dir", "out_dir": "out-dir"},
    "report": {"sections": "dir", "out": "out-dir", **_CONFIG},
    "analyse alignment": {"out": "out-dir", **_CONFIG},
    "analyse misspellings": {"out": "out-dir", **_CONFIG},
    "analyse mutual-information": {"out": "out-dir", **_CONFIG},
    "analyse resource-levels": {"out": "out-dir", "queries": "file", "corpus": "file", **_CONFIG},
    "xnli run": {"generated": "out-dir", "out_dir": "out-dir", "report_dir": "out-dir"},
    "xnli premises": {"out_dir": "out-dir"},
}

#: Old top-level command → its name now (hidden, works identically, prints a one-line note).
COMMAND_ALIASES: dict[str, str] = {
    old: f"{group} {name}"
    for group, module in (("queries", queries_cli), ("train", train_cli))
    for name, (_, old) in module.COMMANDS.items()
}
PATH_KINDS.update({old: PATH_KINDS[new] for old, new in COMMAND_ALIASES.items()})

#: Old option spelling → the parameters (by name) where it is kept, hidden, beside the new spelling.
#: (``--backend`` meant where shards run in encode/generate and the model kind in train-generator.)
OLD_SPELLINGS: dict[str, frozenset[str]] = {
    "--out-dir": frozenset({"out_dir"}),  # now --out
    "--n-resamples": frozenset({"n_resamples"}),  # now --resamples
    "--backend": frozenset({"executor", "arch"}),  # now --executor (local|ray) and --arch (model kind)
    "--method": frozenset({"mine"}),  # train negatives: now --mine, as in train retriever
    "--k": frozenset({"negatives"}),  # train negatives: now --negatives, as in train retriever
    "--depth": frozenset({"round_trip_depth"}),  # queries report: now --round-trip-depth, as in filter
}


def path_problem(path: Path, kind: str) -> str | None:
    """What is wrong with ``path`` for a parameter of ``kind`` (see :data:`PATH_KINDS`), or None."""
    if kind == "config-or-name":
        looks_like_file = path.suffix.lower() in (".yaml", ".yml", ".toml") or len(path.parts) > 1
        if not (path.exists() or looks_like_file):
            return None  # a packaged experiment's name; the command says if it is unknown
        kind = "file"
    if kind in ("out-dir", "out-file"):
        if path.exists():
            if kind == "out-dir" and not path.is_dir():
                return "is a file; the output must be a folder"
            if kind == "out-file" and path.is_dir():
                return "is a folder; the output must be a file"
            if not os.access(path if path.is_dir() else path.parent, os.W_OK | os.X_OK):
                return "is not writable"
            return None
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            return f"cannot be created: {parent} is a file"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"cannot be created: {parent} is not writable"
        return None
    if not path.exists():
        return (
            "no such file or folder" if kind == "path" else f"no such {'folder' if kind == 'dir' else 'file'}"
        )
    if kind == "file" and path.is_dir():
        return "is a folder; a file is expected here"
    if kind == "dir" and not path.is_dir():
        return "is a file; a folder is expected here"
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            return "is not readable"
        if not any(path.iterdir()):
            return "is an empty folder"
        return None
    if not os.access(path, os.R_OK):
        return "is not readable"
    if path.stat().st_size == 0:
        return "is an empty file"
    return None


def _checking_paths(callback: Callable[..., Any], command: str, params: list[Any]) -> Callable[..., Any]:
    kinds = PATH_KINDS.get(command, {})
    flags = {p.name: (p.opts[0] if p.param_type_name == "option" else (p.name or "").upper()) for p in params}

    @functools.wraps(callback)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for name, kind in kinds.items():
            value = kwargs.get(name)
            if value is None:
                continue
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            for i, v in enumerate(values):
                k = kind[i] if isinstance(kind, tuple) else kind
                problem = path_problem(Path(v), k)
                if problem:
                    typer.secho(
                        f"error: {flags.get(name, name)} {v}: {problem}", fg=typer.colors.RED, err=True
                    )
                    raise typer.Exit(2)
        return callback(*args, **kwargs)

    checked.__xqg_checked__ = True  # type: ignore[attr-defined]
    return checked


def _hide_old_spellings(param: Any) -> None:
    """Keep the old spellings of ``param`` working but out of ``--help`` (help shows ``param.opts``)."""
    old = [o for o in param.opts if param.name in OLD_SPELLINGS.get(o, ())]
    if not old or len(old) == len(param.opts) or param.param_type_name != "option":
        return  # nothing old, or no new spelling beside it
    param.opts = [o for o in param.opts if o not in old]
    add = param.add_to_parser

    def add_to_parser(parser: Any, ctx: Any) -> None:
        add(parser, ctx)
        shown = param.opts
        param.opts = old
        try:
            add(parser, ctx)  # the same parameter under its old names
        finally:
            param.opts = shown

    param.add_to_parser = add_to_parser


def _plain_default(param: Any) -> None:
    """Show a text ``show_default`` as ``[default: all]`` rather than click's ``[default: (all)]``."""
    param._get_default_string = lambda *_a, **_k: str(param.show_default)


def _show_settings_defaults(cmd: Any) -> None:
    """Before ``--help`` renders, give each config-backed flag its default from the settings."""
    marked = getattr(cmd.callback, "__xqg_settings__", None)
    if marked is None:
        return
    name, keys = marked
    render = cmd.format_help

    def format_help(ctx: Any, formatter: Any) -> None:
        for p in cmd.params:
            if p.name in keys and p.default is None:
                p.show_default = describe_default(name, keys[p.name])
                _plain_default(p)
        render(ctx, formatter)

    cmd.format_help = format_help


@functools.cache
def _flag_file_param_template() -> Any:
    probe = typer.Typer()

    @probe.command()
    def _probe(
        config: Annotated[
            Path | None,
            typer.Option(
                "--config",
                "-c",
                help="YAML/TOML file of this command's options (keys: option names); flags win",
            ),
        ] = None,
    ) -> None: ...

    return typer.main.get_command(probe).params[0]


def _read_flag_file(cmd: Any, ctx: Any, path: Path) -> None:
    """Fill the options not given on the command line from ``path`` (keys: option names)."""
    from xqg.config import load_config_file

    problem = path_problem(path, "file")
    if problem:
        typer.secho(f"error: --config {path}: {problem}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    try:
        data = load_config_file(path)
    except XqgError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    options = {p.name: p for p in cmd.params if p.param_type_name == "option" and p.name != "config"}
    for key, value in data.items():
        param = options.get(str(key).replace("-", "_"))
        if param is None:
            valid = ", ".join(sorted(options))
            typer.secho(f"error: {path}: key '{key}': not an option of this command (options: {valid})",
                        fg=typer.colors.RED, err=True)  # fmt: skip
            raise typer.Exit(2)
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name != "DEFAULT":
            continue  # given on the command line: the flag wins
        try:
            ctx.params[param.name] = param.process_value(ctx, value)
        except (typer.BadParameter, ValueError, TypeError) as e:  # the parser's own message
            msg = getattr(e, "message", None) or str(e)
            typer.secho(f"error: {path}: key '{key}': {msg}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None


def _add_flag_file(cmd: Any) -> None:
    """``--config`` for a command without settings of its own: a file of its option values."""
    if any(p.name == "config" for p in cmd.params):
        return
    import copy

    cmd.params.append(copy.copy(_flag_file_param_template()))
    parse = cmd.parse_args

    def parse_args(ctx: Any, args: list[str]) -> list[str]:
        rest = parse(ctx, args)
        path = ctx.params.pop("config", None)
        if path is not None:
            _read_flag_file(cmd, ctx, Path(path))
        return rest

    cmd.parse_args = parse_args


def _prepare(cmd: Any, name: str) -> None:
    """What every command gets (see the module docstring); groups are walked into."""
    if isinstance(getattr(cmd, "commands", None), dict):  # a group (typer vendors its own click)
        for sub_name, sub in cmd.commands.items():
            _prepare(sub, f"{name} {sub_name}".strip())
        return
    if cmd.callback is None or getattr(cmd.callback, "__xqg_checked__", False):
        return
    for p in cmd.params:
        _hide_old_spellings(p)
        if isinstance(p.show_default, str):
            _plain_default(p)
    _add_flag_file(cmd)
    _show_settings_defaults(cmd)
    cmd.callback = _checking_paths(cmd.callback, name, cmd.params)


class CheckedGroup(TyperGroup):
    """The ``xqg`` group: every command is prepared (:func:`_prepare`) when the tree is built."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _prepare(self, "")


def _alias(fn: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def alias(*args: Any, **kwargs: Any) -> Any:
        typer.echo(f"note: 'xqg {old}' is now 'xqg {new}'; the old name goes in the next release", err=True)
        return fn(*args, **kwargs)

    return alias


app = typer.Typer(
    name="xqg",
    help="Cross-lingual dense retrieval with query-generation augmented passages (xQG for xDR).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=CheckedGroup,
)

for _fn in stages_cli.COMMANDS:
    app.command()(_fn)
_GROUP_HELP = {
    "queries": "Generated queries: generate, report on their quality, filter, encode for xqg augment.",
    "train": "Training: the query generator, the retriever, cross-lingual distillation, hard negatives.",
}
for _group, _module in (("queries", queries_cli), ("train", train_cli)):
    _sub = typer.Typer(name=_group, help=_GROUP_HELP[_group], no_args_is_help=True)
    for _name, (_fn, _old) in _module.COMMANDS.items():
        _sub.command(_name)(_fn)
        app.command(_old, hidden=True)(_alias(_fn, _old, f"{_group} {_name}"))
    app.add_typer(_sub, name=_group)
for _fn in runs_cli.COMMANDS:
    app.command()(_fn)

from xqg.analyse.cli import app as _analyse_app  # noqa: E402
from xqg.benchmark_cli import app as _xnli_app  # noqa: E402

app.add_typer(_analyse_app, name="analyse")
app.add_typer(_xnli_app, name="xnli")  # issue 15: xqg xnli run

REPORT_SECTIONS = runs_cli.REPORT_SECTIONS


def main() -> None:
    """Entry point that turns xqg's input errors into a message and exit status 2."""
    import os

    # transformers' per-load "Loading weights" bar is noise between xqg's own progress bars. It
    # reads this variable when it is first imported, so nothing here imports it (1.5 s that
    # commands without a model, such as evaluate, would pay).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from xqg.io import is_write_failure, output_error

    try:
        app()
    except XqgError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except OSError as e:  # a write the system refused outside xqg's own writers (e.g. a model save)
        if not is_write_failure(e):
            raise
        typer.secho(f"error: {output_error(e.filename or 'output', e)}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
