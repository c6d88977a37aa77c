"""The llama.cpp generator engine: the LoRA export, shared-prefix cells, agreement with transformers.

These load the real Gemma 3 270M (the shipped GGUF and its HF rebuild), so they are ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xqg.config import GeneratorConfig
from xqg.errors import XqgError
from xqg.generate.llamacpp import llama_available
from xqg.models.sources import builtin_adapter_dir
from xqg.types import Passage

needs_llama = pytest.mark.skipif(
    not llama_available(), reason="llama-cpp-python is not installed (xqg[llama])"
)

_SB50 = (
    "Super Bowl 50 was an American football game to determine the champion of the National Football "
    "League (NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos "
    "defeated the National Football Conference (NFC) champion Carolina Panthers 24-10 to earn their "
    "third Super Bowl title."
)
_BLACK_DEATH = (
    "The Black Death is thought to have originated in the arid plains of Central Asia, where it then "
    "travelled along the Silk Road, reaching Crimea by 1343."
)
PASSAGES = [Passage("p1", "Super Bowl 50", _SB50), Passage("p2", "Black Death", _BLACK_DEATH)]


def test_lora_export_matches_the_peft_tensors(tmp_path):
    import gguf
    from safetensors.torch import load_file

    from xqg.io import read_json
    from xqg.models.gguf import export_lora_gguf

    src = builtin_adapter_dir()
    out = export_lora_gguf(src, tmp_path / "lora.gguf")
    reader = gguf.GGUFReader(str(out))
    fields = {f.name: f for f in reader.fields.values()}
    alpha = float(fields["adapter.lora.alpha"].parts[-1][0])
    assert alpha == read_json(src / "adapter_config.json")["lora_alpha"]
    tensors = {t.name: t for t in reader.tensors}
    peft = load_file(src / "adapter_model.safetensors")
    assert len(tensors) == len(peft)
    a = peft["base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"].float().numpy()
    b = peft["base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight"].float().numpy()
    got_a = np.asarray(tensors["blk.3.attn_q.weight.lora_a"].data).reshape(a.shape)
    got_b = np.asarray(tensors["blk.3.attn_q.weight.lora_b"].data).reshape(b.shape)
    np.testing.assert_array_equal(got_a, a)
    np.testing.assert_array_equal(got_b, b)


def test_lora_export_refuses_what_llama_cpp_cannot_apply(tmp_path):
    import shutil

    from xqg.io import read_json, write_json
    from xqg.models.gguf import export_lora_gguf

    bad = tmp_path / "dora"
    shutil.copytree(builtin_adapter_dir(), bad)
    cfg = read_json(bad / "adapter_config.json")
    write_json(bad / "adapter_config.json", {**cfg, "use_dora": True})
    with pytest.raises(XqgError, match="use_dora"):
        export_lora_gguf(bad, tmp_path / "x.gguf")


def test_engine_choice_is_checked_before_loading():
    from xqg.generate.engines import resolve_engine
    from xqg.generate.spec import check_generator

    with pytest.raises(XqgError, match="needs engine 'transformers'"):
        check_generator(GeneratorConfig(model="google/mt5-small", engine="llama.cpp"))
    assert resolve_engine(GeneratorConfig(model="google/mt5-small")) == "transformers"
    assert resolve_engine(GeneratorConfig(device="cpu")) == "transformers"  # auto: the faster here


@pytest.fixture(scope="module")
def engines():
    from xqg.generate.backends import CausalGenerator, resolved_config
    from xqg.generate.llamacpp import LlamaCppGenerator
    from xqg.models.sources import resolve_model

    cfg = resolved_config(
        GeneratorConfig(langs=["ar", "ru", "de"], device="cpu", do_sample=False, batch_size=6)
    )
    path = resolve_model(cfg.model)
    return LlamaCppGenerator(cfg, path), CausalGenerator(cfg, path)


def _first_logits(gen, items):
    batch = gen.prepare(items)
    with torch.inference_mode():
        logits, _ = gen._start(batch, 2)
    return logits.clone()


@pytest.mark.slow
@needs_llama
def test_shared_prefix_cells_give_the_logits_of_each_prompt_alone(engines):
    """Six prompts (2 passages × 3 languages) sharing prefixes in one batch vs each prompt alone.

    Not bit-equal: llama.cpp picks its matrix kernels (and rounds activations to 8 bits) by batch
    size, so the logits move by a few tenths; the distribution sampling sees stays close.
    """
    llama, _ = engines
    items = [(p, lang) for p in PASSAGES for lang in ("ar", "ru", "de")]
    together = _first_logits(llama, items)
    for r, item in enumerate(items):
        alone = _first_logits(llama, [item])
        for j in (0, 1):  # both samples of the prompt carry the same first logits
            row = together[2 * r + j]
            assert torch.argmax(row) == torch.argmax(alone[0])
            tv = 0.5 * (torch.softmax(row, -1) - torch.softmax(alone[0], -1)).abs().sum()
            assert float(tv) < 0.1, (r, j, float(tv))  # measured: up to 0.062


@pytest.mark.slow
@needs_llama
def test_llama_cpp_agrees_with_transformers_on_the_same_weights(engines):
    """Q4_K_M arithmetic in llama.cpp vs its float32 dequantisation in transformers, adapter applied
    by each (GGUF LoRA vs merged peft): next-token distributions nearly equal, greedy texts close."""
    llama, hf = engines
    items = [(p, lang) for p in PASSAGES for lang in ("ar", "ru", "de")]
    a, b = _first_logits(llama, items)[::2], _first_logits(hf, items)[::2]
    pa, pb = torch.softmax(a, -1), torch.softmax(b, -1)
    tv = 0.5 * (pa - pb).abs().sum(-1)
    assert float(tv.max()) < 0.1, tv
    assert (a.argmax(-1) == b.argmax(-1)).all()
    # greedy continuations: the same first words
    ga = llama.generate(items, 1, 0)
    gb = hf.generate(items, 1, 0)
    same_start = sum(x[0].split()[:3] == y[0].split()[:3] for x, y in zip(ga, gb, strict=True))
    assert same_start >= 4, (ga, gb)


@pytest.mark.slow
@needs_llama
def test_llama_cpp_generation_is_seeded_and_reproducible(tmp_path):
    from xqg.generate.run import generate_queries
    from xqg.generate.store import read_table

    cfg = GeneratorConfig(langs=["sw", "yo", "ha"], n=3, engine="llama.cpp", device="cpu", max_new_tokens=24)
    m1 = generate_queries(PASSAGES, tmp_path / "a", cfg)
    generate_queries(PASSAGES, tmp_path / "b", cfg)
    t1, t2 = read_table(tmp_path / "a"), read_table(tmp_path / "b")
    assert t1["text"].to_pylist() == t2["text"].to_pylist()
    assert len(t1) == 2 * 3 * 3 and all(t1["text"].to_pylist())
    assert m1["generator"]["engine"].startswith("llama.cpp")
    other = generate_queries(PASSAGES, tmp_path / "c", cfg.model_copy(update={"seed": 1}))
    assert other["counts"] == m1["counts"]
    assert read_table(tmp_path / "c")["text"].to_pylist() != t1["text"].to_pylist()


def test_llama_batches_never_exceed_its_sequence_limit():
    """The default batch (132 prompts × n = 5 rows) is more than one llama.cpp context holds
    (MAX_SEQ sequences), so the engine caps its batches instead of failing after the model loads."""
    from xqg.generate.llamacpp import MAX_SEQ, LlamaCppGenerator

    gen = LlamaCppGenerator.__new__(LlamaCppGenerator)  # no weights needed for the batch plan
    gen.config = GeneratorConfig(device="cpu")
    assert gen.config.batch_size * 5 > MAX_SEQ
    assert gen.batch_prompts(5) * 5 <= MAX_SEQ and gen.batch_prompts(5) == MAX_SEQ // 5
    assert gen.batch_prompts(1) == gen.config.batch_size  # 132 rows fit
