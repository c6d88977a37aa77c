"""``xqg analyse <name>``: one typer sub-app; each analysis registers its command from its own
``<name>_cli.py`` module (kept apart so the analyses stay independent of each other)."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="analyse",
    help="Analyses of the research questions: alignment, mutual information, misspellings, resource levels.",
    no_args_is_help=True,
)

COMMAND_MODULES = ("alignment", "mutual_information", "misspellings", "resource_levels")

for _name in COMMAND_MODULES:
    try:
        importlib.import_module(f"xqg.analyse.{_name}_cli")
    except ModuleNotFoundError as _e:  # a command module not written yet
        if _e.name != f"xqg.analyse.{_name}_cli":
            raise
