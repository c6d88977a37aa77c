"""What a generator config names — model, adapter, engine — checked without loading any weights.

No torch here: the CLI runs :func:`check_generator` before importing anything slow, so a mistyped
language, model folder or adapter fails in well under two seconds with a clear message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from xqg.config import GeneratorConfig
from xqg.errors import XqgError


def adapter_name(adapter: str | None) -> str | None:
    """The adapter as a folder's config records it: ``builtin`` for the shipped one, else the
    folder's name. Never a path of this machine (the content is bound by ``adapter_sha256``)."""
    if adapter is None:
        return None
    from xqg.models.sources import BUILTIN_ADAPTER, builtin_adapter_dir

    path = Path(adapter).expanduser().resolve()
    return BUILTIN_ADAPTER if path == builtin_adapter_dir().resolve() else path.name


def adapter_fingerprint(adapter: str | None) -> dict[str, Any] | None:
    """Name, weight checksums and ``training.json`` of a PEFT adapter folder (``None`` without one).

    The checksums go into the generation folder's config hash: retraining an adapter in place must
    not let a rerun silently mix queries from two different adapters.
    """
    if adapter is None:
        return None
    path = Path(adapter).expanduser()
    if not (path / "adapter_config.json").exists():
        raise XqgError(f"{path}: not a PEFT adapter folder (no adapter_config.json)")
    from xqg.io import read_json, sha256_file

    files = sorted(p for p in path.iterdir() if p.name.startswith("adapter_") and p.is_file())
    training = path / "training.json"
    return {
        "path": adapter_name(str(path)),
        "sha256": {p.name: sha256_file(p) for p in files},
        "training": read_json(training) if training.exists() else None,
    }


def resolved_config(config: GeneratorConfig) -> GeneratorConfig:
    """``config`` with ``adapter`` resolved to a folder or ``None`` (``"builtin"`` → the shipped one)."""
    from xqg.models.sources import resolve_adapter

    adapter = resolve_adapter(config.adapter, config.model)
    return config if adapter == config.adapter else config.model_copy(update={"adapter": adapter})


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def check_generator(config: GeneratorConfig) -> None:
    """Every check that needs no weights: model spec, adapter folder, engine (languages were
    standardised when the config was built). Meant to run before anything slow, so that a typo
    fails in a second rather than after a model load.
    """
    from xqg.models.sources import is_gemma_spec

    spec = config.model.strip()
    local = Path(spec).expanduser()
    if not is_gemma_spec(spec):
        if local.exists():
            if not local.is_dir() or not (local / "config.json").exists():
                raise XqgError(f"{local}: generator.model: not a model folder (no config.json)")
        elif not _HUB_ID.match(spec) or spec.startswith((".", "~", "/")):
            raise XqgError(
                f"generator.model: '{spec}' is neither a model folder nor a hub id (org/name), "
                "nor 'gguf:gemma-3-270m'"
            )
    adapter = resolved_config(config).adapter
    if adapter is not None:
        path = Path(adapter).expanduser()
        if not path.is_dir():
            raise XqgError(f"{path}: generator.adapter: no such folder")
        adapter_fingerprint(adapter)
    if config.engine == "llama.cpp":
        check_llama_engine(config, on_cpu=config.device in ("auto", "cpu"))


#: What to do when the llama.cpp engine is asked for but not installed.
LLAMA_INSTALL_HINT = (
    "generator.engine 'llama.cpp' needs llama-cpp-python: pip install 'xqg[llama]' "
    "(it compiles from source, a few minutes), or use engine 'transformers'"
)


def check_llama_engine(config: GeneratorConfig, *, on_cpu: bool, causal: bool = True) -> None:
    """The llama.cpp engine runs the shipped GGUF Gemma, causal, on a CPU, with llama-cpp-python
    installed; anything else is an error naming what to change (never a silent fallback)."""
    import importlib.util

    from xqg.models.sources import is_gemma_spec

    if not (is_gemma_spec(config.model) and on_cpu and causal):
        raise XqgError(
            "generator.engine 'llama.cpp' runs the shipped GGUF Gemma (model 'gguf:gemma-3-270m') "
            f"on a CPU; model '{config.model}' on device '{config.device}' needs engine 'transformers'"
        )
    if importlib.util.find_spec("llama_cpp") is None:
        raise XqgError(LLAMA_INSTALL_HINT)
