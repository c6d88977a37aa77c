"""The entry point of generation: loading the engine a generator config names.

Above both engines (:mod:`xqg.generate.backends`, transformers; :mod:`xqg.generate.llamacpp`),
so that neither imports the other's module at load time. ``resolve_engine`` (which engine a
config names, checked without loading anything) stays in backends and is re-exported here.
"""

from __future__ import annotations

from xqg.config import GeneratorConfig
from xqg.generate.backends import (
    CausalGenerator,
    HFGenerator,
    Seq2SeqGenerator,
    resolve_backend,
    resolve_engine,
)
from xqg.generate.spec import resolved_config


def load_generator(config: GeneratorConfig) -> HFGenerator:
    """Load the generator ``config`` describes (seq2seq vs causal from the model unless forced)."""
    from xqg.models.sources import resolve_model

    config = resolved_config(config)
    path = resolve_model(config.model)
    backend = resolve_backend(config, path)
    if resolve_engine(config, backend) == "llama.cpp":
        from xqg.generate.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(config, path)
    cls: type[HFGenerator] = Seq2SeqGenerator if backend == "seq2seq" else CausalGenerator
    return cls(config, path)


__all__ = ["load_generator", "resolve_engine"]
