"""`xqg generate`: the paper's prompt byte for byte, both backends on tiny random models, the
(language, sample) bookkeeping, determinism, and resume after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.conftest import TINY_TEXTS
from xqg.config import ExperimentConfig, GeneratorConfig
from xqg.errors import ManifestError
from xqg.generate import store
from xqg.generate.backends import (
    CausalGenerator,
    Seq2SeqGenerator,
    StopTokenCriteria,
    SuppressStopUntilText,
    derive_seed,
)
from xqg.generate.engines import load_generator
from xqg.generate.prompts import causal_prompt, paper_prompt
from xqg.generate.run import generate_queries
from xqg.types import Passage

LANGS = ["ar", "bn", "fi"]
PROMPT_TEXTS = [
    *TINY_TEXTS,
    *(paper_prompt(lang, "Title", "passage text") for lang in ("ar", "bn", "fi", "ja", "ko", "ru", "te")),
    *(causal_prompt(lang, "Title", "passage text") for lang in ("ar", "bn", "fi", "ja", "ko", "ru", "te")),
    "What is the capital? Who signed it?\nWhere is it?\n",
]


def _passages(k: int, seed: int = 0) -> list[Passage]:
    out = []
    for i in range(k):
        words = " ".join(TINY_TEXTS[(i * 3 + j + seed) % len(TINY_TEXTS)] for j in range(1 + i % 3))
        out.append(Passage(id=f"p{i}", text=words, title=f"Title {i}"))
    return out


def make_tiny_mt5(out: Path) -> Path:
    """A 2-layer random MT5 with a Unigram tokenizer (pad 0, </s> 1, unk 2 as in mT5)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import MT5Config, MT5ForConditionalGeneration, PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tok.train_from_iterator(PROMPT_TEXTS * 3, trainer)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    cfg = MT5Config(
        vocab_size=tok.get_vocab_size(),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    MT5ForConditionalGeneration(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def make_tiny_causal(out: Path) -> Path:
    """A 2-layer random Gemma 3 (one sliding, one full attention layer) with a byte-level BPE
    tokenizer that adds <bos> like Gemma's and has newline tokens ("Ċ", ".Ċ", …)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<eos>", "<bos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(PROMPT_TEXTS * 3, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>"
    )
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        max_position_embeddings=1024,
        sliding_window=512,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    Gemma3ForCausalLM(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine OpenMP threads that
    spin-wait for each other made this file 8× slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mt5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_mt5(tmp_path_factory.mktemp("tiny-mt5"))


@pytest.fixture(scope="module")
def causal_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_causal(tmp_path_factory.mktemp("tiny-gemma3"))


def _cfg(model: Path, **kw: Any) -> GeneratorConfig:
    base: dict[str, Any] = {
        "model": str(model),
        "langs": LANGS,
        "n": 3,
        "max_new_tokens": 8,
        "batch_size": 4,
        "device": "cpu",
        # exact comparisons (greedy vs generate, resume) need float32: "auto" is bfloat16 on some CPUs
        "dtype": "float32",
    }
    return GeneratorConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def causal_gen(causal_dir: Path) -> CausalGenerator:
    gen = load_generator(_cfg(causal_dir))
    assert isinstance(gen, CausalGenerator)
    return gen


def _sorted_rows(out_dir: Path) -> list[tuple[str, str, int, str]]:
    t = store.read_table(out_dir)
    cols = [t[c].to_pylist() for c in ("passage_id", "lang", "sample", "text")]
    rows = zip(*cols, strict=True)
    return sorted(rows)


# -- prompts ---------------------------------------------------------------------------------------


def test_paper_prompt_byte_for_byte():
    """The inference example of ielab/xQG4xDR's README (the model card's generator):
    PROMPT = 'Generate a {lang} question for this passage: {title} {passage}'."""
    title = "Transformer (machine learning model)"
    passage = (
        "A transformer is a deep learning model that adopts the mechanism of self-attention, differentially "
        "weighting the significance of each part of the input (which includes the recursive output) data."
    )
    expected = (
        "Generate a Arabic question for this passage: Transformer (machine learning model) "
        "A transformer is a deep learning model that adopts the mechanism of self-attention, "
        "differentially weighting the significance of each part of the input (which includes the "
        "recursive output) data."
    )
    assert paper_prompt("ar", title, passage) == expected
    assert paper_prompt("ar", title, passage).encode("utf-8") == expected.encode("utf-8")
    assert paper_prompt("ja", title, passage).startswith("Generate a Japanese question for this passage: ")


class _SpyTokenizer:
    """Records the texts given to the tokenizer, delegating everything to the real one."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[Any] = []

    def __call__(self, text: Any, *args: Any, **kw: Any) -> Any:
        self.calls.append(text)
        return self.inner(text, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __len__(self) -> int:
        return len(self.inner)


def test_seq2seq_backend_feeds_the_paper_prompt_unchanged(mt5_dir):
    gen = load_generator(_cfg(mt5_dir, max_input_length=512))
    assert isinstance(gen, Seq2SeqGenerator) and gen.prompt_name == "paper"
    spy = _SpyTokenizer(gen.tokenizer)
    gen.tokenizer = spy
    passages = _passages(3)
    items = [(p, lang) for p in passages for lang in LANGS]
    out = gen.generate(items, n=4, seed=0)
    assert spy.calls[0] == [paper_prompt(lang, p.title, p.text) for p, lang in items]
    assert len(out) == len(items) and all(len(qs) == 4 for qs in out)
    assert all(isinstance(q, str) for qs in out for q in qs)
    assert gen.generate(items, n=4, seed=0) == out  # seeded
    d = gen.describe()
    assert d["backend"] == "seq2seq" and d["prompt"]["template"] == (
        "Generate a Arabic question for this passage: {title} {passage}"
    )


# -- bookkeeping: every (passage, lang, sample) exactly once ----------------------------------------


def test_all_languages_and_samples_exactly_once(tmp_path, causal_gen):
    passages = _passages(7)
    out = tmp_path / "gen"
    m = generate_queries(
        passages, out, causal_gen.config, shard_size=3, generator=causal_gen, show_progress=False
    )
    table = store.read_table(out)
    store.check_complete(table, [p.id for p in passages], LANGS, 3)
    assert table.num_rows == 7 * 3 * 3
    assert m["counts"]["shards"] == 3 and m["queries_per_lang"] == dict.fromkeys(LANGS, 21)
    for lang in LANGS:  # one file per (language, shard), holding only that language
        files = sorted(p.name for p in out.glob(f"queries-{lang}-*.parquet"))
        assert files == [store.shard_name(lang, s) for s in range(3)]
        part = store.read_table(out, langs=[lang])
        assert set(part["lang"].to_pylist()) == {lang} and part.num_rows == 21
    assert m["generator"]["backend"] == "causal" and m["langs"] == LANGS and m["n"] == 3
    assert "Question:" in m["prompt"]["template"] and m["decoding"]["top_k"] == 10


def test_one_output_file_for_all_languages_is_caught(tmp_path, causal_gen, monkeypatch):
    """The reference code's bug: every language written to one file name, so the last one wins."""
    monkeypatch.setattr(store, "shard_name", lambda lang, shard: f"queries-all-{shard:05d}.parquet")
    with pytest.raises(ManifestError, match="duplicated|missing"):
        generate_queries(
            _passages(4), tmp_path / "g", causal_gen.config, generator=causal_gen, show_progress=False
        )
    assert not (tmp_path / "g" / "manifest.json").exists()


# -- determinism and resume ------------------------------------------------------------------------


def test_same_seed_same_output_other_seed_differs(tmp_path, causal_gen, causal_dir):
    passages = _passages(5)
    kw: dict[str, Any] = {"shard_size": 2, "show_progress": False}
    generate_queries(passages, tmp_path / "a", causal_gen.config, generator=causal_gen, **kw)
    generate_queries(passages, tmp_path / "b", causal_gen.config, generator=causal_gen, **kw)
    other = _cfg(causal_dir, seed=1)
    generate_queries(passages, tmp_path / "c", other, **kw)
    a, b, c = (_sorted_rows(tmp_path / x) for x in "abc")
    assert a == b
    assert [r[:3] for r in a] == [r[:3] for r in c] and a != c
    assert derive_seed(0, 1) != derive_seed(1, 0)


def test_rerun_reuses_intact_shards_and_redoes_a_damaged_one(tmp_path, causal_gen):
    passages = _passages(6)
    out = tmp_path / "g"
    kw: dict[str, Any] = {"shard_size": 2, "show_progress": False}
    generate_queries(passages, out, causal_gen.config, generator=causal_gen, **kw)
    before = _sorted_rows(out)
    again = generate_queries(passages, out, causal_gen.config, **kw)  # no generator: none needed
    assert again["counts"]["reused_shards"] == 3
    (out / store.shard_name("bn", 1)).write_bytes(b"garbage")
    m = generate_queries(passages, out, causal_gen.config, generator=causal_gen, **kw)
    assert m["counts"]["reused_shards"] == 2 and _sorted_rows(out) == before
    # a different input in the same positions is regenerated, not reused
    m = generate_queries(_passages(6, seed=1)[:4], out, causal_gen.config, generator=causal_gen, **kw)
    assert m["counts"]["shards"] == 2 and not (out / store.shard_name("ar", 2)).exists()


@pytest.mark.slow  # starts a local Ray cluster (~12 s)
def test_ray_backend_writes_the_local_shards_byte_for_byte(tmp_path, causal_gen):
    ray = pytest.importorskip("ray")
    from xqg.distributed import RayOptions

    passages = _passages(5)
    kw: dict[str, Any] = {"shard_size": 2, "show_progress": False}
    generate_queries(passages, tmp_path / "local", causal_gen.config, generator=causal_gen, **kw)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        m = generate_queries(passages, tmp_path / "ray", causal_gen.config, backend="ray",
                             ray=RayOptions(workers=2), **kw)  # fmt: skip
    finally:
        ray.shutdown()
    assert m["counts"]["shards"] == 3 and m["counts"]["reused_shards"] == 0
    for lang in LANGS:
        for shard in range(3):
            name = store.shard_name(lang, shard)
            assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name


def test_refuses_a_folder_made_with_other_settings(tmp_path, causal_gen, causal_dir):
    out = tmp_path / "g"
    generate_queries(_passages(2), out, causal_gen.config, generator=causal_gen, show_progress=False)
    with pytest.raises(ManifestError, match="other settings"):
        generate_queries(_passages(2), out, _cfg(causal_dir, n=2), show_progress=False)
    with pytest.raises(ManifestError, match="other settings"):
        generate_queries(_passages(2), out, _cfg(causal_dir, langs=["ar", "bn"]), show_progress=False)
    m = generate_queries(_passages(2), out, _cfg(causal_dir, n=2), overwrite=True, show_progress=False)
    assert m["counts"]["queries"] == 2 * 3 * 2 and store.read_table(out).num_rows == 12


@pytest.mark.slow  # ~17 s of subprocesses; the crash campaign kills generate 3 more times
def test_kill_9_mid_generate_then_rerun_equals_uninterrupted(tmp_path, causal_dir):
    """A real SIGKILL in the middle of `xqg generate`; the rerun's table equals an uninterrupted run.
    48 passages: 24 shards per language, so the kill still lands with most of the last language to go."""
    passages = _passages(48)
    corpus = tmp_path / "corpus.jsonl"
    with corpus.open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps({"_id": p.id, "title": p.title, "text": p.text}) + "\n")
    args = [sys.executable, "-m", "xqg", "generate", str(corpus), "--model", str(causal_dir), "--langs",
            ",".join(LANGS), "--n", "3", "--max-new-tokens", "8", "--batch-size", "4", "--shard-size", "2",
            "--device", "cpu", "--seed", "7", "--dtype", "float32"]  # fmt: skip
    env = {**os.environ, "XQG_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    crashed = tmp_path / "crashed"
    proc = subprocess.Popen([*args, "--out", str(crashed)], env=env)
    deadline = time.time() + 120
    while not (crashed / store.shard_meta_name(LANGS[-1], 0)).exists():
        assert proc.poll() is None, "generate ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (crashed / "manifest.json").exists()
    done_before = len(list(crashed.glob(f"queries-{LANGS[-1]}-*.json")))
    assert 1 <= done_before < 24
    rerun = subprocess.run(
        [*args, "--out", str(crashed)], env=env, capture_output=True, text=True, check=True
    )
    assert f"reused {done_before})" in rerun.stdout

    # The uninterrupted run, in this process (one thread, like the CLI's) with the CLI's settings.
    generate_queries(
        passages, tmp_path / "clean", _cfg(causal_dir, seed=7), shard_size=2, show_progress=False
    )
    clean_rows, crashed_rows = _sorted_rows(tmp_path / "clean"), _sorted_rows(crashed)
    assert crashed_rows == clean_rows
    assert len({r[:3] for r in crashed_rows}) == len(crashed_rows) == 48 * 3 * 3
    assert not list(crashed.glob(".*.tmp"))


# -- causal specifics ------------------------------------------------------------------------------


def test_causal_generation_stops_at_the_first_newline(causal_dir):
    """Sampled near-uniformly (high temperature, no top-k), some samples hit a newline token; each
    raw continuation must end right there, and the query is the text before it."""
    gen = load_generator(_cfg(causal_dir, top_k=None, temperature=50.0, max_new_tokens=30))
    raw: list[list[list[int]]] = []
    decode = gen.tokenizer.batch_decode

    def spy(seqs: Any, **kw: Any) -> Any:
        if isinstance(seqs, list) and seqs and isinstance(seqs[0], list) and len(seqs[0]) > 1:
            raw.append([list(s) for s in seqs])
        return decode(seqs, **kw)

    gen.tokenizer.batch_decode = spy  # type: ignore[method-assign]
    items = [(p, lang) for p in _passages(3) for lang in LANGS]
    out = gen.generate(items, n=6, seed=3)
    stop = gen.stop_mask
    rows = [r for batch in raw for r in batch]
    assert len(rows) == len(items) * 6
    stopped = 0
    for r in rows:
        flags = [bool(stop[t]) for t in r]
        assert not any(flags[:-1]), "generation continued past a stop token"
        if flags[-1]:  # and it did not stop before some text
            assert not all(bool(gen.blank_mask[t]) for t in r[:-1]), "an empty query"
        if flags[-1]:
            stopped += 1
        else:
            assert len(r) == 30
    assert stopped >= 3
    assert all("\n" not in q for qs in out for q in qs)


def test_prompts_longer_than_the_limit_lose_passage_text_not_the_instruction(causal_dir, mt5_dir):
    long = Passage("long", " ".join(TINY_TEXTS * 4), "Title")
    gen = load_generator(_cfg(causal_dir, max_input_length=40))
    [prep] = gen.prepare([(long, "bn")])
    assert len(prep.ids) <= 40
    tail = "\nWrite a Bengali question about the passage.\nQuestion:"
    assert prep.prompt.endswith(tail) and prep.prompt.startswith("Passage: ")
    kept = prep.prompt[len("Passage: ") : -len(tail)]
    assert 0 < len(kept) < len(long.text) and long.text.startswith(kept)
    assert prep.ids == gen.tokenizer(prep.prompt)["input_ids"]

    s2s = load_generator(_cfg(mt5_dir, max_input_length=36))
    [prep] = s2s.prepare([(long, "bn")])
    assert len(prep.ids) <= 36
    head = "Generate a Bengali question for this passage: Title "
    assert prep.prompt.startswith(head) and long.text.startswith(prep.prompt[len(head) :])
    short = Passage("s", "Short text.", "T")
    assert s2s.prepare([(short, "bn")])[0].prompt == paper_prompt("bn", "T", "Short text.")


def test_causal_sampler_equals_transformers_generate_greedy(causal_gen, causal_dir):
    """Shared prefill, padding and early dropping of finished rows must not change the result:
    greedy decoding gives what `model.generate` gives for each prompt on its own."""
    from transformers import LogitsProcessorList, StoppingCriteriaList

    gen = load_generator(_cfg(causal_dir, do_sample=False, max_new_tokens=12, batch_size=5))
    items = [(p, lang) for p in _passages(4) for lang in LANGS]
    ours = gen.generate(items, n=2, seed=0)
    for (p, lang), qs in zip(items, ours, strict=True):
        assert qs[0] == qs[1]
        enc = gen.tokenizer(causal_prompt(lang, p.title, p.text), return_tensors="pt")
        ref = gen.model.generate(
            **enc,
            do_sample=False,
            max_new_tokens=12,
            logits_processor=LogitsProcessorList(
                [SuppressStopUntilText(gen.stop_mask, gen.blank_mask, enc["input_ids"].shape[1])]
            ),
            stopping_criteria=StoppingCriteriaList([StopTokenCriteria(gen.stop_mask)]),
            pad_token_id=gen.pad_id,
        )
        text = gen.tokenizer.decode(ref[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        assert qs[0] == text.split("\n", 1)[0].strip()


def _more_stops(gen: CausalGenerator, every: int) -> CausalGenerator:
    """Every ``every``-th token id also ends a query, so that rows end at different steps (the
    random model would otherwise run every row to ``max_new_tokens``, and no row would refill)."""
    gen.stop_mask = gen.stop_mask.clone()
    gen.stop_mask[torch.arange(0, len(gen.stop_mask), every)] = True
    return gen


@pytest.mark.parametrize(("batch_size", "n", "every"), [(6, 2, 5), (4, 3, 7), (9, 1, 4)])
def test_refill_merges_rows_mid_decode_and_changes_no_greedy_output(causal_dir, batch_size, n, every):
    """Continuous batching: later passages' rows join live rows of other passages (padded shared
    prefixes and own columns), and each prompt's greedy query is still the batch loop's — which the
    test above ties to `model.generate`."""
    kw: dict[str, Any] = {"do_sample": False, "max_new_tokens": 12, "batch_size": batch_size}
    refill = _more_stops(load_generator(_cfg(causal_dir, refill=True, **kw)), every)
    plain = _more_stops(load_generator(_cfg(causal_dir, refill=False, **kw)), every)
    items = [(p, lang) for p in _passages(8) for lang in LANGS]
    ours = refill.generate(items, n=n, seed=0)
    assert refill.refill_stats["merges"] >= 3  # rows really were admitted into live ones
    assert refill.refill_stats["units"] == 8
    assert ours == plain.generate(items, n=n, seed=0)
    lengths = {len(q) for qs in ours for q in qs}
    assert len(lengths) > 5  # rows did end at different steps


def test_refill_sampling_is_seeded_and_fills_the_cap(causal_dir):
    gen = _more_stops(load_generator(_cfg(causal_dir, max_new_tokens=12, batch_size=6, refill=True)), 5)
    plain = _more_stops(load_generator(_cfg(causal_dir, max_new_tokens=12, batch_size=6, refill=False)), 5)
    items = [(p, lang) for p in _passages(8) for lang in LANGS]
    a, b, c = gen.generate(items, 2, 0), gen.generate(items, 2, 0), gen.generate(items, 2, 1)
    assert a == b and a != c
    gen.generate(items, 2, 0)
    stream = gen.refill_stats
    steps = []
    step = plain._step
    plain._step = lambda state, nxt: steps.append(len(nxt)) or step(state, nxt)  # type: ignore[method-assign]
    plain.generate(items, 2, 0)
    # the same rows in fewer decode steps, each fuller: finished rows were replaced, not carried
    assert stream["steps"] < len(steps) + 8  # the batch loop also samples once per batch before stepping
    assert stream["row_steps"] / stream["steps"] > sum(steps) / len(steps)


def test_folders_made_before_refill_or_at_the_old_batch_size_resume_as_made(tmp_path, causal_dir):
    """Folders made before continuous batching (no `refill` in their config) keep their hash, are
    reused by the new default config, and a damaged shard is remade by the loop that made it."""
    passages = _passages(4)
    out = tmp_path / "g"
    kw: dict[str, Any] = {"shard_size": 2, "show_progress": False}
    old = _cfg(causal_dir, refill=False)
    m_old = generate_queries(passages, out, old, **kw)
    assert "refill" not in json.loads((out / "config.json").read_text())["config"]["generator"]
    before = _sorted_rows(out)
    new = _cfg(causal_dir, refill=True)
    m = generate_queries(passages, out, new, **kw)
    assert m["counts"]["reused_shards"] == 2 and m["config_hash"] == m_old["config_hash"]
    (out / store.shard_name("ar", 1)).write_bytes(b"garbage")
    m = generate_queries(passages, out, new, **kw)
    assert m["counts"]["reused_shards"] == 1 and _sorted_rows(out) == before
    fresh = generate_queries(passages, tmp_path / "new", new, **kw)
    assert fresh["config_hash"] != m_old["config_hash"]
    assert json.loads((tmp_path / "new" / "config.json").read_text())["config"]["generator"]["refill"] is True
    # and one made at the earlier default batch size (22) resumes under today's default (132)
    at22 = generate_queries(passages, tmp_path / "b22", _cfg(causal_dir, batch_size=22), **kw)
    today = _cfg(causal_dir, batch_size=GeneratorConfig().batch_size)
    m = generate_queries(passages, tmp_path / "b22", today, **kw)
    assert m["counts"]["reused_shards"] == 2 and m["config_hash"] == at22["config_hash"]


def test_adapter_is_loaded_merged_and_recorded(tmp_path, causal_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(causal_dir)
    peft_model = get_peft_model(
        base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    (adapter / "training.json").write_text(json.dumps({"steps": 3}), encoding="utf-8")
    cfg = _cfg(causal_dir, adapter=str(adapter))
    gen = load_generator(cfg)
    d = gen.describe()
    assert d["adapter"]["training"] == {"steps": 3} and d["adapter"]["merged"] is True
    assert "adapter_model.safetensors" in d["adapter"]["sha256"]
    items = [(p, "ar") for p in _passages(2)]
    with_adapter = gen.generate(items, n=2, seed=0)
    without = load_generator(_cfg(causal_dir)).generate(items, n=2, seed=0)
    assert with_adapter != without
    m = generate_queries(_passages(2), tmp_path / "g", cfg, generator=gen, show_progress=False)
    assert m["config"]["adapter_sha256"] == d["adapter"]["sha256"]


def test_experiment_config_has_generator_settings():
    exp = ExperimentConfig.model_validate({"generator": {"n": 2, "langs": ["ar"]}})
    assert exp.generator.n == 2 and exp.generator.top_k == 10


def test_builtin_adapter_only_applies_to_the_default_gemma(tmp_path):
    from xqg.models.sources import GEMMA_MODEL, builtin_adapter_dir, resolve_adapter

    assert resolve_adapter(None, GEMMA_MODEL) is None
    assert resolve_adapter("none", GEMMA_MODEL) is None
    assert resolve_adapter("builtin", "some/other-model") is None  # a Gemma adapter never lands on mT5
    assert resolve_adapter(str(tmp_path), "some/other-model") == str(tmp_path)
    shipped = (builtin_adapter_dir() / "adapter_config.json").exists()
    assert resolve_adapter("builtin", GEMMA_MODEL) == (str(builtin_adapter_dir()) if shipped else None)
