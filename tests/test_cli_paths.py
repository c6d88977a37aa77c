"""Every path argument of every command: missing, a folder where a file is expected (and the
reverse), unreadable, or empty → one clean ``error:`` line and exit 2, before anything loads."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main
import typer.testing
from typer.testing import CliRunner

from xqg.cli import PATH_KINDS, app

runner = CliRunner()


@functools.cache
def _tree() -> object:
    return typer.main.get_command(app)


@pytest.fixture(autouse=True)
def _one_command_tree(monkeypatch):
    """Build the click tree once: rebuilding it for each of ~200 invocations costs a minute."""
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: _tree())


@functools.cache
def _commands() -> dict[str, object]:
    """Every command of the click tree, by its full name ('encode', 'analyse alignment', …)."""
    out: dict[str, object] = {}

    def walk(cmd: object, name: str) -> None:
        subs = getattr(cmd, "commands", None)
        if isinstance(subs, dict):
            for n, sub in subs.items():
                walk(sub, f"{name} {n}".strip())
        else:
            out[name] = cmd

    walk(_tree(), "")
    return out


def _path_params(cmd: object) -> list[str]:
    names = []
    for p in cmd.params:  # type: ignore[attr-defined]
        annotation = p.type_descriptor.annotation  # Path, Path | None, list[Path], tuple[Path, Path]
        if "Path" in str(annotation) or annotation is Path:
            names.append(p.name)
    return names


def test_every_path_parameter_of_every_command_is_declared():
    missing = {
        name: sorted(set(_path_params(cmd)) - set(PATH_KINDS.get(name, {})))
        for name, cmd in _commands().items()
    }
    assert not {k: v for k, v in missing.items() if v}, "add them to xqg.cli.PATH_KINDS"
    stale = {
        n: sorted(set(k) - set(_path_params(_commands()[n])))
        for n, k in PATH_KINDS.items()
        if n in _commands()
    }
    assert not {k: v for k, v in stale.items() if v}
    assert set(PATH_KINDS) <= set(_commands())


def _flag(cmd: object, name: str) -> tuple[str | None, int]:
    """(option flag or None for an argument, the argument's position among the arguments)."""
    args = [p for p in cmd.params if p.param_type_name == "argument"]  # type: ignore[attr-defined]
    for p in cmd.params:  # type: ignore[attr-defined]
        if p.name == name:
            return (p.opts[0], -1) if p.param_type_name == "option" else (None, args.index(p))
    raise KeyError(name)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("paths")
    f = root / "good.jsonl"
    f.write_text('{"_id": "a", "text": "x"}\n')
    (root / "good.yaml").write_text("shard_size: 5\n")
    d = root / "gooddir"
    d.mkdir()
    (d / "manifest.json").write_text("{}")
    empty_f = root / "empty.jsonl"
    empty_f.write_text("")
    empty_d = root / "emptydir"
    empty_d.mkdir()
    return {"file": f, "config": root / "good.yaml", "dir": d, "empty-file": empty_f, "empty-dir": empty_d,
            "missing": root / "nothere.tsv", "out": root / "out"}  # fmt: skip


def _argv(name: str, param: str, value: Path, good: dict[str, Path]) -> list[str]:
    """A command line where ``param`` is ``value`` and every other declared path is valid."""
    cmd = _commands()[name]
    kinds = PATH_KINDS[name]
    positional: dict[int, str] = {}
    options: list[str] = []
    for p in cmd.params:  # required non-path parameters get a placeholder the check never reaches past
        if p.required and p.name not in kinds:
            flag, pos = _flag(cmd, p.name)
            if flag is None:
                positional[pos] = "xquad"
            else:
                options += [flag, "x=y"]
    for other, kind in kinds.items():
        flag, pos = _flag(cmd, other)
        if other == param:
            v = [str(value)] if not isinstance(kind, tuple) else [str(value), str(good["out"])]
        elif flag is not None and other != "out" and other not in ("like", "queries", "passages"):
            continue  # optional paths are left out
        else:
            k = kind[0] if isinstance(kind, tuple) else kind
            v = [str(good["dir"] if k == "dir" else good["file"] if k in ("file", "path") else good["out"])]
            if k == "config-or-name":
                v = [str(good["config"])]
        if flag is None:
            positional[pos] = v[0]
        else:
            options += [flag, *v]
    return [*name.split(), *(positional[i] for i in sorted(positional)), *options]


CASES = [(name, param, kind) for name, kinds in PATH_KINDS.items() for param, kind in kinds.items()]


@pytest.mark.parametrize(("name", "param", "kind"), CASES, ids=[f"{n}-{p}" for n, p, _ in CASES])
def test_bad_paths_are_one_clean_error_with_exit_2(name, param, kind, good, monkeypatch):
    kind = kind[0] if isinstance(kind, tuple) else kind
    if kind in ("out-dir", "out-file"):
        bad = {
            "a file where a folder is expected" if kind == "out-dir" else "a folder": good["file"]
            if kind == "out-dir"
            else good["dir"]
        }
    elif kind == "config-or-name":
        bad = {
            "missing": good["missing"].with_suffix(".yaml"),
            "a folder": good["dir"],
            "empty": good["empty-file"],
        }
    else:
        bad = {
            "missing": good["missing"],
            "empty": good["empty-dir"] if kind == "dir" else good["empty-file"],
        }
        if kind == "file":
            bad["a folder"] = good["dir"]
        if kind == "dir":
            bad["a file"] = good["file"]
    for what, value in bad.items():
        result = runner.invoke(app, _argv(name, param, value, good))
        assert result.exit_code == 2, (what, result.output, result.exception)
        assert "error:" in result.output and str(value) in result.output, (what, result.output)
        assert "Traceback" not in result.output


def test_unreadable_input_is_refused(good, monkeypatch):
    real = os.access
    blocked = str(good["file"])
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == blocked else real(p, mode))
    result = runner.invoke(app, ["evaluate", str(good["file"]), "--qrels", str(good["file"])])
    assert result.exit_code == 2 and "is not readable" in result.output


def test_unwritable_output_is_refused(good, monkeypatch):
    real = os.access
    parent = str(good["out"].parent)
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == parent else real(p, mode))
    result = runner.invoke(app, ["index", str(good["dir"]), "--out", str(good["out"])])
    assert result.exit_code == 2 and "is not writable" in result.output


def test_the_issue_example_in_a_real_process_imports_no_model(tmp_path):
    """`xqg evaluate RUN --qrels nothere.tsv` used to end in a FileNotFoundError traceback."""
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 1.0 xqg\n")
    code = (
        "import sys; from xqg.cli import main\n"
        "sys.argv = ['xqg', 'evaluate', sys.argv[1], '--qrels', 'nothere.tsv']\n"
        "try: main()\n"
        "except SystemExit: print('torch' in sys.modules, file=sys.stderr); raise"
    )
    r = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == "error: --qrels nothere.tsv: no such file"
    assert r.stderr.splitlines()[-1] == "False"  # nothing heavy was imported
    assert "Traceback" not in r.stderr


def test_valid_paths_pass_through(good):
    """The checks do not get in the way: a well-formed call reaches the command."""
    assert isinstance(app, typer.Typer)
    result = runner.invoke(app, ["evaluate", str(good["file"]), "--qrels", str(good["file"])])
    assert "no such" not in result.output and "is a folder" not in result.output
