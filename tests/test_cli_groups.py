"""The grouped CLI: ``xqg queries …`` and ``xqg train …``, the old flat names and option spellings as
hidden aliases, choices refused by the parser, config defaults in ``--help``, ``--config`` on every
command. No model loads: every command is stopped at its input checks or reaches a stand-in."""

from __future__ import annotations

import functools
import inspect
import typing
from pathlib import Path

import pytest
import typer
import typer.main
import typer.rich_utils
import typer.testing
from typer.testing import CliRunner

from xqg import common_cli
from xqg.cli import COMMAND_ALIASES, OLD_SPELLINGS, app

runner = CliRunner()

GROUPED = {
    "queries generate": "generate",
    "queries report": "generate-report",
    "queries filter": "filter-queries",
    "queries encode": "encode-generated",
    "train generator": "train-generator",
    "train retriever": "train-retriever",
    "train distill": "distill",
    "train negatives": "mine-negatives",
}
TOP_LEVEL = ("encode", "index", "search", "evaluate", "augment", "serve", "demo", "report", "experiment",
             "benchmark", "grid", "analyse", "xnli", "queries", "train")  # fmt: skip


@functools.cache
def _tree() -> typing.Any:
    return typer.main.get_command(app)


@pytest.fixture(autouse=True)
def _wide_help_one_tree(monkeypatch):
    """Help lines unwrapped (so a default reads as one string), and the click tree built once."""
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", 400)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: _tree())


def _commands() -> dict[str, typing.Any]:
    out: dict[str, typing.Any] = {}

    def walk(cmd: typing.Any, name: str) -> None:
        if isinstance(getattr(cmd, "commands", None), dict):
            for n, sub in cmd.commands.items():
                walk(sub, f"{name} {n}".strip())
        else:
            out[name] = cmd

    walk(_tree(), "")
    return out


def _help(name: str) -> str:
    res = runner.invoke(app, [*name.split(), "--help"])
    assert res.exit_code == 0, (name, res.output)
    return res.output


def test_the_command_list_is_grouped_and_hides_the_old_names():
    listing = _help("")
    for name in TOP_LEVEL:
        assert f" {name} " in listing, name
    for old in GROUPED.values():
        if old != "generate":  # 'queries generate' is listed under its group only
            assert f" {old} " not in listing, old
    assert " generate " not in listing.split("Commands")[1]
    assert set(COMMAND_ALIASES.items()) == {(old, new) for new, old in GROUPED.items()}
    for group in ("queries", "train"):
        sub = _help(group)
        for name in GROUPED:
            if name.startswith(group):
                assert f" {name.split()[1]} " in sub


@pytest.mark.parametrize("name", sorted(_commands()))
def test_help_of_every_command_and_alias_works(name):
    _help(name)


@pytest.mark.parametrize("name", sorted(GROUPED))
def test_every_grouped_command_shows_defaults(name):
    assert "[default:" in _help(name)


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """Valid paths of each kind, as tests/test_cli_paths.py's command lines expect them."""
    root = tmp_path_factory.mktemp("groups")
    (root / "good.jsonl").write_text('{"_id": "a", "text": "x"}\n')
    (root / "good.yaml").write_text("shard_size: 5\n")
    (root / "gooddir").mkdir()
    (root / "gooddir" / "manifest.json").write_text("{}")
    return {
        "file": root / "good.jsonl",
        "config": root / "good.yaml",
        "dir": root / "gooddir",
        "out": root / "out",
    }


@pytest.mark.parametrize(("new", "old"), sorted(GROUPED.items()))
def test_an_old_name_reaches_the_same_function_and_fails_the_same_way(new, old, good, tmp_path):
    from tests.test_cli_paths import _argv

    commands = _commands()
    assert commands[old].hidden and not commands[new].hidden
    assert inspect.unwrap(commands[old].callback) is inspect.unwrap(commands[new].callback)
    assert [p.name for p in commands[old].params] == [p.name for p in commands[new].params]
    missing = tmp_path / "nothere.yaml"  # the same bad input: one clean error, exit 2, word for word
    args = _argv(new, "config", missing, good)[len(new.split()) :]
    a = runner.invoke(app, [*new.split(), *args])
    b = runner.invoke(app, [old, *args])
    assert a.exit_code == b.exit_code == 2, (a.output, b.output)
    assert a.output == b.output == f"error: --config {missing}: no such file\n"


def test_an_old_name_runs_identically_and_says_it_is_old(monkeypatch, tmp_path):
    """`mine-negatives --method bm25 --k 3` and `train negatives --mine bm25 --negatives 3` make the
    same API calls (mining stubbed out); only the alias adds its one-line note."""
    import xqg.train.negatives as negatives

    calls: list[tuple] = []
    monkeypatch.setattr(negatives, "xquad_mining_inputs", lambda langs: ([("q", "p", ())], ["p", "n"], ["q"]))
    monkeypatch.setattr(
        negatives, "mine_negatives", lambda *a, **k: calls.append((a, k)) or [("q", "p", ("n",))]
    )
    monkeypatch.setattr(negatives, "write_rows_tevatron", lambda path, rows: calls.append((path, rows)) or 1)
    out = tmp_path / "t.jsonl"
    args = ["--out", str(out), "--xquad-langs", "ar", "--depth", "7"]
    new = runner.invoke(app, ["train", "negatives", *args, "--mine", "bm25", "--negatives", "3"])
    old = runner.invoke(app, ["mine-negatives", *args, "--method", "bm25", "--k", "3"])
    assert new.exit_code == old.exit_code == 0, (new.output, old.output)
    assert calls[:2] == calls[2:] and calls[0][1]["k"] == 3 and calls[0][1]["method"] == "bm25"
    assert new.stdout == old.stdout == f"1 rows with 3 bm25 negatives each → {out}\n"
    assert "note: 'xqg mine-negatives' is now 'xqg train negatives'" in old.stderr
    assert "note:" not in new.stderr


OLD_FLAGS = [  # (command, old spelling, new spelling, a value)
    ("encode", "--backend", "--executor", "ray"),
    ("queries generate", "--backend", "--executor", "ray"),
    ("train generator", "--backend", "--arch", "causal"),
    ("train negatives", "--method", "--mine", "dense"),
    ("train negatives", "--k", "--negatives", "3"),
    ("queries report", "--depth", "--round-trip-depth", "3"),
    ("grid", "--out-dir", "--out", "/tmp/x"),
    ("xnli run", "--out-dir", "--out", "/tmp/x"),
    ("xnli premises", "--out-dir", "--out", "/tmp/x"),
    ("analyse resource-levels", "--n-resamples", "--resamples", "3"),
]


@pytest.mark.parametrize(("name", "old", "new", "value"), OLD_FLAGS)
def test_an_old_option_spelling_is_hidden_and_sets_the_same_parameter(name, old, new, value):
    cmd = _commands()[name]
    (param,) = [p for p in cmd.params if new in p.opts]
    assert old not in param.opts and param.name in OLD_SPELLINGS[old]
    shown = _help(name)
    assert new in shown and f"{old} " not in shown
    with cmd.make_context(name, [old, value], resilient_parsing=True) as ctx:
        assert ctx.get_parameter_source(param.name).name == "COMMANDLINE"
        assert str(ctx.params[param.name]) == value


def test_one_name_per_concept():
    """No visible --out-dir, --n-resamples or --bf16; --backend nowhere; --method and --k never name
    negatives mining."""
    for name, cmd in _commands().items():
        if cmd.hidden:
            continue
        shown = {
            o for p in cmd.params if not getattr(p, "hidden", False) for o in [*p.opts, *p.secondary_opts]
        }
        assert not shown & {"--out-dir", "--n-resamples", "--bf16", "--no-bf16", "--backend"}, name
        if "--mine" in shown:
            assert "--method" not in shown and "--k" not in shown, name


BAD_CHOICES = [
    ("encode", "--pooling", "max"),
    ("encode", "--kind", "passages"),
    ("encode", "--dtype", "bf16"),
    ("encode", "--executor", "slurm"),
    ("queries generate", "--engine", "vllm"),
    ("queries encode", "--storage", "int4"),
    ("augment", "--strategy", "median"),
    ("index", "--metric", "cosine"),
    ("evaluate", "--engine", "trec_eval"),
    ("train retriever", "--towers", "frozen"),
    ("train negatives", "--mine", "splade"),
    ("train distill", "--loss", "kl"),
    ("serve", "--dtype", "int8"),
    ("benchmark", "--split", "validation"),
    ("analyse mutual-information", "--dataset", "nope"),
    ("analyse misspellings", "--dtype", "float8"),
    ("analyse resource-levels", "--passage-text", "html"),
]


@pytest.mark.parametrize(("name", "flag", "value"), BAD_CHOICES)
def test_a_bad_choice_is_refused_by_the_parser(name, flag, value, tmp_path):
    res = runner.invoke(app, [*name.split(), flag, value])
    assert res.exit_code == 2, res.output
    assert "Invalid value" in res.output and value in res.output
    assert f"<{'|'.join(typing.get_args(_choice_of(name, flag)))}>" in _help(name)


def _choice_of(name: str, flag: str) -> typing.Any:
    (param,) = [p for p in _commands()[name].params if flag in p.opts]
    ann = param.type_descriptor.annotation
    return next((a for a in typing.get_args(ann) if typing.get_origin(a) is typing.Literal), ann)


def _literal(model: type, field: str) -> tuple:
    ann = model.model_fields[field].annotation
    return next(
        typing.get_args(a) for a in [ann, *typing.get_args(ann)] if typing.get_origin(a) is typing.Literal
    )


def test_the_choices_are_the_settings_and_registries_they_mirror():
    from xqg.augment import FUSIONS
    from xqg.config import EncoderConfig, GeneratorConfig, IndexConfig
    from xqg.data import corpus, queries
    from xqg.data.benchmarks import BENCHMARKS
    from xqg.query_store import FORMS, SUM_BY, SUM_DTYPES
    from xqg.train.distill import DistillConfig
    from xqg.train.generator import GenTrainConfig
    from xqg.train.retriever import RetrieverTrainConfig

    c = common_cli
    args = typing.get_args
    assert args(c.Pooling) == _literal(EncoderConfig, "pooling")
    assert args(c.EncoderDtype) == _literal(EncoderConfig, "dtype")
    assert args(c.GeneratorDtype) == _literal(GeneratorConfig, "dtype")
    assert (
        set(args(c.Arch))
        == set(_literal(GeneratorConfig, "backend"))
        == set(_literal(GenTrainConfig, "backend"))
    )
    assert args(c.GeneratorEngine) == _literal(GeneratorConfig, "engine")
    assert args(c.Prompt) == _literal(GeneratorConfig, "prompt")
    assert args(c.IndexMetric) == _literal(IndexConfig, "metric")
    assert args(c.TrainDtype) == _literal(GenTrainConfig, "dtype")
    assert args(c.TrainMethod) == _literal(GenTrainConfig, "method")
    assert args(c.RetrieverLoss) == _literal(RetrieverTrainConfig, "loss")
    assert args(c.Towers) == _literal(RetrieverTrainConfig, "towers")
    assert args(c.DistillLoss) == _literal(DistillConfig, "loss")
    assert args(c.Strategy) == tuple(FUSIONS)
    assert args(c.Benchmark) == tuple(BENCHMARKS)
    from xqg.data.benchmarks import xnli, xor_tydi, xquad

    assert args(c.BenchmarkSplit) == xquad.SPLITS
    assert set(xnli.SPLITS) | set(xor_tydi.XOR_FILES) <= set(args(c.BenchmarkSplit))
    assert args(c.CorpusFormat) == corpus.READ_FORMATS
    assert args(c.QueryFormat) == queries.READ_FORMATS
    assert set(args(c.InputFormat)) == set(corpus.READ_FORMATS) | set(queries.READ_FORMATS)
    assert (args(c.Storage), args(c.SumBy), args(c.SumDtype)) == (FORMS, SUM_BY, SUM_DTYPES)
    from xqg.analyse.mutual_information.compute import DATASETS

    assert args(_choice_of("analyse mutual-information", "--dataset")) == tuple(DATASETS)
    mining = typing.get_type_hints(__import__("xqg.train.negatives").train.negatives.mine_negatives)["method"]
    assert args(c.Mining) == args(mining)


def test_help_shows_the_defaults_of_the_settings():
    from xqg.config import ExperimentConfig
    from xqg.train.retriever import RetrieverTrainConfig

    exp = ExperimentConfig()
    shown = _help("queries generate")
    assert f"[default: {exp.generator.n}, from generator.n]" in shown
    assert f"[default: {exp.generator.model}, from generator.model]" in shown
    assert f"[default: {','.join(exp.generator.langs)}, from generator.langs]" in shown
    shown = _help("encode")
    lengths = f"{exp.encoder.passage_max_length} / {exp.encoder.query_max_length}"
    assert f"[default: {lengths}, from encoder.passage_max_length / encoder.query_max_length]" in shown
    assert f"[default: {exp.encoder.query_prefix!r}, from encoder.query_prefix]" in shown
    assert f"[default: {exp.search.depth}, from search.depth]" in _help("search")
    cfg = RetrieverTrainConfig()
    shown = _help("train retriever")
    assert f"[default: {cfg.learning_rate}, from learning_rate]" in shown
    assert "[default: float32, from bf16]" in shown
    # the same defaults under the old name
    assert f"[default: {exp.generator.n}, from generator.n]" in _help("generate")


def test_every_settings_key_of_every_command_exists():
    for name, cmd in _commands().items():
        marked = getattr(cmd.callback, "__xqg_settings__", None)
        if marked is None:
            continue
        settings, keys = marked
        params = {p.name for p in cmd.params}
        for param, key in keys.items():
            assert param in params, (name, param)
            for k in (key,) if isinstance(key, str) else key:
                common_cli.default_of(settings, k)  # raises AttributeError for a typo


def test_config_is_on_every_command():
    for name, cmd in _commands().items():
        options = [p for p in cmd.params if p.param_type_name == "option" and "--config" in p.opts]
        assert len(options) == 1 and "-c" in options[0].opts, name


def test_the_experiment_file_is_the_argument_or_config(good, tmp_path):
    missing = tmp_path / "nothere.yaml"
    res = runner.invoke(app, ["experiment", "--config", str(missing)])
    assert res.exit_code == 2 and res.output == f"error: --config {missing}: no such file\n"
    res = runner.invoke(app, ["experiment"])
    assert res.exit_code == 2 and "give the experiment file" in res.output
    other = tmp_path / "other.yaml"
    other.write_text("name: x\n")
    for argv in (
        ["experiment", str(good["config"])],
        ["grid", str(good["config"])],
        ["xnli", "run", "a.yaml"],
    ):
        res = runner.invoke(app, [*argv, "--config", str(other)])
        assert res.exit_code == 2 and "given twice" in res.output, res.output


def _capture_augment(monkeypatch) -> list[dict]:
    import xqg.augment

    calls: list[dict] = []

    def fake(passages, queries, out, **kw):
        calls.append(kw)
        return {"counts": {"rows": 1, "queries_used": 2, "passages_without_queries": 0}}

    monkeypatch.setattr(xqg.augment, "augment", fake)
    return calls


def test_a_config_file_of_options_sets_what_the_flags_set(monkeypatch, tmp_path):
    calls = _capture_augment(monkeypatch)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "manifest.json").write_text("{}")
    cfg = tmp_path / "fuse.yaml"
    cfg.write_text("strategy: mean-norm\nalpha: 0.5\nrequire-all: true\nlangs: ar,zh\n")
    base = ["augment", str(tmp_path / "p"), str(tmp_path / "p"), "--out", str(tmp_path / "o")]
    assert runner.invoke(app, [*base, "--config", str(cfg)]).exit_code == 0
    assert runner.invoke(app, [*base, "--config", str(cfg), "--alpha", "0.2"]).exit_code == 0
    assert runner.invoke(app, [*base, "--strategy", "mean-norm", "--alpha", "0.5", "--require-all",
                               "--langs", "ar,zh"]).exit_code == 0  # fmt: skip
    assert calls[0] == calls[2] == {"strategy": "mean-norm", "alpha": 0.5, "langs": ["ar", "zh"], "n": None,
                                    "require_all": True}  # fmt: skip
    assert calls[1]["alpha"] == 0.2  # the flag wins over the file


@pytest.mark.parametrize(
    ("text", "message"),
    [("strategy: median\n", "key 'strategy'"), ("alfa: 0.5\n", "key 'alfa': not an option"),
     ("alpha: [1\n", "fuse.yaml")],
)  # fmt: skip
def test_a_bad_config_file_of_options_is_one_error(text, message, monkeypatch, tmp_path):
    calls = _capture_augment(monkeypatch)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "manifest.json").write_text("{}")
    cfg = tmp_path / "fuse.yaml"
    cfg.write_text(text)
    res = runner.invoke(
        app,
        ["augment", str(tmp_path / "p"), str(tmp_path / "p"), "--out", str(tmp_path / "o"), "-c", str(cfg)],
    )
    assert res.exit_code == 2 and "error:" in res.output and message in res.output, res.output
    assert "Traceback" not in res.output and not calls


def test_dtype_and_its_old_spelling_cannot_disagree(tmp_path):
    res = runner.invoke(
        app, ["train", "distill", "--out", str(tmp_path / "o"), "--dtype", "float32", "--bf16"]
    )
    assert res.exit_code == 2 and "--dtype float32 and --bf16 disagree" in res.output


def test_settings_from_flags_match_the_old_spelling():
    values = {"dtype": common_cli.bf16_from(None, True), "lr": None}
    assert common_cli.given({"dtype": "bf16", "lr": "learning_rate"}, values) == {"bf16": True}
    assert common_cli.bf16_from("bfloat16", None) is True and common_cli.bf16_from(None, None) is None


def test_old_names_keep_their_path_checks():
    from xqg.cli import PATH_KINDS

    for old, new in COMMAND_ALIASES.items():
        assert PATH_KINDS[old] == PATH_KINDS[new]
