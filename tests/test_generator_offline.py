"""The real offline generator: Gemma 3 270M (rebuilt from the GGUF wheels) + the shipped LoRA
adapter writes questions in the requested language for XQuAD test-split paragraphs, which the
generator never saw in training. The base model with the same prompt is the contrast."""

from __future__ import annotations

import pytest

from xqg.config import GeneratorConfig
from xqg.data.benchmarks import load_xquad
from xqg.generate.langcheck import in_language
from xqg.models.sources import builtin_adapter_dir

pytestmark = pytest.mark.slow  # loads the real Gemma 3 270M and the shipped adapter

LANGS = ["ar", "ja", "ru", "te"]


@pytest.fixture(scope="module")
def paragraphs():
    return load_xquad(["en"]).paragraphs_in("test")[:2]


def test_shipped_adapter_is_small_and_records_its_training():
    import json

    path = builtin_adapter_dir()
    assert (path / "adapter_config.json").exists(), "the trained adapter must ship with the package"
    assert (path / "adapter_model.safetensors").stat().st_size <= 20_000_000
    training = json.loads((path / "training.json").read_text(encoding="utf-8"))
    assert training["steps"] > 0 and training["data"] and training["val_losses"]
    assert training["final_train_loss_mean20"] < training["first_train_loss"]


def test_trained_generator_writes_in_the_requested_language(paragraphs):
    from xqg.generate.engines import load_generator

    cfg = GeneratorConfig(langs=LANGS, n=2, max_new_tokens=40, seed=0, dtype="float32", device="cpu")
    gen = load_generator(cfg)
    assert gen.config.adapter == str(builtin_adapter_dir())  # 'builtin' resolved to the shipped one
    items = [(p, lang) for p in paragraphs for lang in LANGS]
    out = gen.generate(items, n=2, seed=0)
    checks = [in_language(q, lang) for (_, lang), qs in zip(items, out, strict=True) for q in qs]
    assert all(q.strip() for qs in out for q in qs)
    assert sum(checks) / len(checks) >= 0.9, list(zip(items, out, strict=True))
