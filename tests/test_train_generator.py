"""xqg train-generator: data builder, loss masking, packing, resume, time budget, seq2seq, export.

Everything runs on tiny randomly initialised models (a 2-layer Gemma 3 and a 1-layer T5) with
tokenizers trained here, so the file needs no hub and finishes in well under a minute on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from xqg.errors import XqgError  # noqa: E402
from xqg.train.generator import (  # noqa: E402
    GenTrainConfig,
    batch_loss,
    collate_causal,
    collate_packed,
    export_adapter,
    load_model,
    n_targets,
    train_generator,
)
from xqg.train.generator_data import (  # noqa: E402
    ORIGIN_XOR,
    ORIGIN_XQUAD,
    GenExample,
    build_generator_data,
    check_no_test_articles,
    read_examples,
    xquad_pairs,
)

TEXTS = [
    "Passage: The treaty was signed in Berlin in 1990 by both governments.",
    "Write a German question about the passage.",
    "Write a Russian question about the passage.",
    "Write a Japanese question about the passage.",
    "Question: Wo wurde der Vertrag unterzeichnet? Когда был подписан договор?",
    "条約はどこで署名されましたか？",
    "Helsinki on Suomen pääkaupunki. ما هي عاصمة مصر؟ 서울은 한국의 수도입니다.",
    "Who signed the treaty and when? Where is the capital?",
]

SOURCES = [
    "The treaty was signed in Berlin in 1990 by both governments.",
    "Helsinki is the capital of Finland and its largest city.",
]
EXAMPLES = [
    GenExample(SOURCES[0], "Treaty", "de", "Wo wurde der Vertrag unterzeichnet?", ORIGIN_XQUAD, "T#0"),
    GenExample(SOURCES[0], "Treaty", "ru", "Когда был подписан договор?", ORIGIN_XQUAD, "T#0"),
    GenExample(SOURCES[0], "Treaty", "ja", "条約はどこで署名されましたか？", ORIGIN_XQUAD, "T#0"),
    GenExample(SOURCES[1], "Helsinki", "fi", "Mikä on Suomen pääkaupunki?", ORIGIN_XQUAD, "H#0"),
    GenExample("Where is the capital?", "", "ar", "ما هي عاصمة مصر؟", ORIGIN_XOR, "ar-en:1"),
    GenExample("What is the capital of Korea?", "", "ko", "서울은 한국의 수도입니다?", ORIGIN_XOR, "ko-en:1"),
    GenExample(SOURCES[1], "Helsinki", "fi", "Mikä on Helsinki?", ORIGIN_XQUAD, "H#0"),
    GenExample(SOURCES[0], "Treaty", "de", "Wer unterzeichnete?", ORIGIN_XQUAD, "T#0"),
]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    from tokenizers import decoders

    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"])
    tok.train_from_iterator(TEXTS * 3 + [e.target for e in EXAMPLES] + SOURCES, trainer)
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", tok.token_to_id("<bos>"))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", bos_token="<bos>", unk_token="<unk>"
    )


def make_tiny_gemma(out: Path, seed: int = 0) -> Path:
    """A 2-layer Gemma 3 text model (sliding + full attention) with a tiny BPE tokenizer."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    fast = _tokenizer()
    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=512,
        sliding_window=64,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
    )
    Gemma3ForCausalLM(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma"))


def _cfg(model: Path, **kw) -> GenTrainConfig:
    base = dict(
        model=str(model),
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        lr=1e-2,
        warmup_steps=0,
        schedule="constant",
        batch_size=4,
        max_steps=6,
        save_every=2,
        eval_every=3,
        log_every=1,
        threads=1,
        device="cpu",
    )
    base.update(kw)
    return GenTrainConfig(**base)


def test_smoke_train_and_export(tiny_gemma: Path, tmp_path: Path) -> None:
    out = train_generator(
        _cfg(tiny_gemma), tmp_path / "run", train_examples=EXAMPLES, dev_examples=EXAMPLES[:2]
    )
    doc = json.loads((out / "training.json").read_text())
    assert doc["steps"] == 6 and doc["status"] == "max_steps"
    assert (out / "loss.png").stat().st_size > 0
    dest = export_adapter(out, tmp_path / "export")
    assert {p.name for p in dest.iterdir()} >= {
        "adapter_model.safetensors",
        "adapter_config.json",
        "loss.csv",
    }


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(run / "adapter" / "adapter_model.safetensors")


def test_resume_matches_uninterrupted_run(tiny_gemma: Path, tmp_path: Path) -> None:
    kw = dict(lora_dropout=0.1, max_steps=6)  # dropout: the RNG state must be restored too
    full = train_generator(_cfg(tiny_gemma, **kw), tmp_path / "a", train_examples=EXAMPLES, log=None)
    part = tmp_path / "b"
    train_generator(_cfg(tiny_gemma, **{**kw, "max_steps": 4}), part, train_examples=EXAMPLES, log=None)
    with pytest.raises(XqgError, match="already holds"):
        train_generator(_cfg(tiny_gemma, **kw), part, train_examples=EXAMPLES, log=None)
    with pytest.raises(XqgError, match="different settings"):
        train_generator(_cfg(tiny_gemma, **{**kw, "lr": 1e-3}), part, resume=True, train_examples=EXAMPLES)
    train_generator(_cfg(tiny_gemma, **kw), part, resume=True, train_examples=EXAMPLES, log=None)
    doc = json.loads((part / "training.json").read_text())
    assert doc["steps"] == 6 and doc["examples_seen"] == 6 * 4
    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    rows_a = (full / "loss.csv").read_text().splitlines()
    rows_b = (part / "loss.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in rows_a] == [r.split(",")[:2] for r in rows_b]


def test_full_fine_tuning_resumes_exactly(tiny_gemma: Path, tmp_path: Path) -> None:
    """The checkpoint then holds every weight (model.safetensors), optimizer state for all of them."""
    from safetensors.torch import load_file

    kw = dict(method="full", lr=1e-3, max_steps=4, save_every=2, eval_every=100)
    full = train_generator(_cfg(tiny_gemma, **kw), tmp_path / "a", train_examples=EXAMPLES, log=None)
    part = tmp_path / "b"
    train_generator(_cfg(tiny_gemma, **{**kw, "max_steps": 2}), part, train_examples=EXAMPLES, log=None)
    assert (part / "checkpoints" / "checkpoint-2" / "model.safetensors").exists()
    train_generator(_cfg(tiny_gemma, **kw), part, resume=True, train_examples=EXAMPLES, log=None)
    a, b = (load_file(d / "model" / "model.safetensors") for d in (full, part))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_resume_after_a_crash_mid_step_matches_uninterrupted_run(
    tiny_gemma: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash inside step 5 (between its two micro-batches), with a half-written checkpoint
    of a later step lying around: the rerun resumes from step 4 and ends on the same weights,
    through warm-up + cosine decay, gradient accumulation, dropout and a wrapping data stream."""
    import xqg.train.generator_trainer as gt

    kw = dict(lora_dropout=0.1, grad_accum=2, warmup_steps=2, schedule="cosine", save_every=2, eval_every=3)
    run = dict(train_examples=EXAMPLES, dev_examples=EXAMPLES[:2], log=None, show_progress=False)
    full = train_generator(_cfg(tiny_gemma, **kw), tmp_path / "a", **run)
    real, calls = gt.batch_loss, []

    def crashing(model, batch, backend, logits="targets"):
        if model.training:
            calls.append(1)
            if len(calls) == 10:  # step 5, second micro-batch
                raise RuntimeError("simulated crash")
        return real(model, batch, backend, logits)

    monkeypatch.setattr(gt, "batch_loss", crashing)
    part = tmp_path / "b"
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_generator(_cfg(tiny_gemma, **kw), part, resume=True, **run)
    monkeypatch.setattr(gt, "batch_loss", real)
    assert sorted(p.name for p in (part / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2",
        "checkpoint-4",
    ]
    partial = part / "checkpoints" / "checkpoint-6"  # what a kill during a save leaves
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"")
    train_generator(_cfg(tiny_gemma, **kw), part, resume=True, **run)
    doc = json.loads((part / "training.json").read_text())
    assert doc["resumed_from"] == "checkpoint-4" and doc["steps"] == 6 and doc["status"] == "max_steps"
    a, b = _weights(full), _weights(part)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    # the same curve (step, train_loss, val_loss, lr; seconds differ), half of it from the checkpoint
    rows_a, rows_b = (
        [r.split(",")[:4] for r in (d / "loss.csv").read_text().splitlines()] for d in (full, part)
    )
    assert rows_a == rows_b and len(rows_a) == 7 and rows_a[3][2] != ""


def test_step_loss_is_the_mean_over_micro_batches_of_target_token_means(
    tiny_gemma: Path, tmp_path: Path
) -> None:
    """Row 1 of loss.csv, recomputed by hand: the LoRA update starts at zero, so the first step's
    loss is the base model's, on the first two micro-batches of the stream (no shuffling)."""
    from xqg.train.generator import lr_at

    cfg = _cfg(tiny_gemma, grad_accum=2, max_steps=2, warmup_steps=4, schedule="linear")
    run = train_generator(cfg, tmp_path / "run", train_examples=EXAMPLES, log=None, show_progress=False)
    _, model, tok, backend = _model(tiny_gemma)
    with torch.no_grad():
        parts = [
            float(batch_loss(model, collate_packed(tok, EXAMPLES[i : i + 4], cfg), backend)) for i in (0, 4)
        ]
    rows = [r.split(",") for r in (run / "loss.csv").read_text().splitlines()[1:]]
    assert float(rows[0][1]) == pytest.approx(sum(parts) / 2, abs=2e-5)
    assert [float(r[3]) for r in rows] == pytest.approx([lr_at(cfg, 0), lr_at(cfg, 1)])
    assert lr_at(cfg, 0) == pytest.approx(cfg.lr / 4)  # warm-up: step 1 of 4


def _model(tiny_gemma: Path, **kw):
    cfg = _cfg(tiny_gemma, **kw)
    model, tok, backend, _ = load_model(cfg, torch.device("cpu"))
    model.eval()
    return cfg, model, tok, backend


def _hand_loss(model, tok, cfg, ex: GenExample) -> torch.Tensor:
    """Cross-entropy of the target tokens of one unpadded example, from full logits."""
    from xqg.train.generator import causal_ids

    prompt, target = causal_ids(tok, ex, cfg)
    ids = torch.tensor([prompt + target])
    logits = model(input_ids=ids).logits[0]
    pred = logits[len(prompt) - 1 : -1]  # position t predicts token t + 1
    return torch.nn.functional.cross_entropy(pred.float(), torch.tensor(target), reduction="sum"), len(target)


def test_loss_is_cross_entropy_over_target_tokens_only(tiny_gemma: Path) -> None:
    cfg, model, tok, backend = _model(tiny_gemma)
    exs = EXAMPLES[:6]
    with torch.no_grad():
        hand = [_hand_loss(model, tok, cfg, e) for e in exs]
        expected = sum(h for h, _ in hand) / sum(n for _, n in hand)
        small_rows = cfg.model_copy(update={"max_row_tokens": 64})  # several padded packed rows
        batches = [
            collate_causal(tok, exs, cfg),
            collate_packed(tok, exs, cfg),
            collate_packed(tok, exs, small_rows),
        ]
        assert batches[1]["input_ids"].shape[0] == 1 < batches[2]["input_ids"].shape[0]
        for batch in batches:
            assert n_targets(batch) == sum(n for _, n in hand)
            for mode in ("targets", "all"):
                torch.testing.assert_close(
                    batch_loss(model, batch, backend, mode), expected, rtol=1e-4, atol=1e-5
                )


def test_prompt_changes_do_not_move_the_loss_positions(tiny_gemma: Path) -> None:
    cfg, _, tok, _ = _model(tiny_gemma)
    a = EXAMPLES[0]
    b = GenExample(a.source + " It was a long day in a big city.", a.title, "ja", a.target, a.origin, a.ref)
    ba, bb = collate_causal(tok, [a], cfg), collate_causal(tok, [b], cfg)
    la, lb = ba["labels"][0][ba["labels"][0] != -100], bb["labels"][0][bb["labels"][0] != -100]
    assert torch.equal(la, lb)  # same target tokens are scored, whatever the prompt
    assert la[-1].item() == tok.eos_token_id
    assert int(ba["keep"].sum()) == len(la)  # logits are computed for exactly the target tokens
    # the scored tokens are the last ones of the (left-padded) row: the prompt never carries loss
    assert (ba["labels"][0][: -len(la)] == -100).all()


def test_packing_shares_the_passage_once(tiny_gemma: Path) -> None:
    cfg, _, tok, _ = _model(tiny_gemma)
    same_passage = [e for e in EXAMPLES if e.source == SOURCES[0]]
    packed = collate_packed(tok, same_passage, cfg)
    padded = collate_causal(tok, same_passage, cfg)
    assert packed["input_ids"].shape[0] == 1
    assert packed["input_ids"].numel() < padded["attention_mask"].sum() * 0.7
    assert packed["attention_mask"].shape[-1] == packed["input_ids"].shape[1]


@pytest.mark.parametrize("method", ["full", "lora"])
def test_a_few_steps_lower_the_training_loss(tiny_gemma: Path, tmp_path: Path, method: str) -> None:
    cfg, model, tok, backend = _model(tiny_gemma)
    batch = collate_packed(tok, EXAMPLES, cfg)
    with torch.no_grad():
        before = float(batch_loss(model, batch, backend))
    run = train_generator(
        _cfg(tiny_gemma, method=method, max_steps=10, batch_size=8, save_every=100, eval_every=100),
        tmp_path / "run",
        train_examples=EXAMPLES,
        log=None,
    )
    from transformers import AutoModelForCausalLM

    if method == "full":
        trained = AutoModelForCausalLM.from_pretrained(run / "model", attn_implementation="eager").eval()
    else:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(tiny_gemma, attn_implementation="eager")
        trained = PeftModel.from_pretrained(base, run / "adapter").eval()
    with torch.no_grad():
        after = float(batch_loss(trained, batch, backend))
    # a random 32-wide model learns slowly through rank-4 LoRA; full fine-tuning drops fast
    assert after < (before * 0.7 if method == "full" else before - 0.1), (before, after)
    rows = (run / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,train_loss,val_loss,lr,seconds" and len(rows) == 11


def test_max_minutes_stops_and_saves(tiny_gemma: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny_gemma, max_steps=1000, max_minutes=1e-6, save_every=500)
    run = train_generator(cfg, tmp_path / "run", train_examples=EXAMPLES, log=None)
    doc = json.loads((run / "training.json").read_text())
    assert doc["status"] == "max_minutes" and doc["steps"] == 1
    assert (run / "adapter" / "adapter_model.safetensors").exists()
    assert (run / "checkpoints" / "checkpoint-1" / "trainer_state.json").exists()
    # the dead-process path: export from the newest checkpoint when adapter/ is missing
    import shutil

    shutil.rmtree(run / "adapter")
    dest = export_adapter(run, tmp_path / "exported")
    assert json.loads((dest / "training.json").read_text())["exported"]["from"].endswith("checkpoint-1")
    assert json.loads((dest / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_gemma
    )
    # a resume with the budget spent trains no further step: the checkpoint's weights are the result
    train_generator(cfg, run, resume=True, train_examples=EXAMPLES, log=None)
    doc = json.loads((run / "training.json").read_text())
    assert doc["status"] == "max_minutes" and doc["steps"] == 1 and doc["resumed_from"] == "checkpoint-1"
    from safetensors.torch import load_file

    a, b = _weights(run), load_file(dest / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_adapter_saved_in_bfloat16_when_float32_is_too_big(tiny_gemma: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    run = train_generator(
        _cfg(tiny_gemma, max_steps=1, adapter_max_mb=0.015),
        tmp_path / "run",
        train_examples=EXAMPLES,
        log=None,
    )
    tensors = load_file(run / "adapter" / "adapter_model.safetensors")
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    with pytest.raises(XqgError, match="smaller lora_r"):
        export_adapter(run, tmp_path / "x", max_mb=0.001)


# --- seq2seq (the paper's mT5 recipe on a tiny T5) ------------------------------------------------


def make_tiny_t5(out: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.train_from_iterator(
        TEXTS * 3 + ["Generate a German question for this passage:"] + [e.target for e in EXAMPLES],
        trainers.BpeTrainer(vocab_size=500, special_tokens=["<pad>", "</s>", "<unk>"]),
    )
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=len(fast),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_heads=2,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        decoder_start_token_id=fast.pad_token_id,
    )
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.mark.parametrize("method", ["full", "lora"])
def test_seq2seq_paper_recipe_runs(tmp_path: Path, method: str) -> None:
    model = make_tiny_t5(tmp_path / "t5")
    cfg = GenTrainConfig.paper_mt5(
        str(model),
        method=method,
        batch_size=4,
        max_steps=3,
        save_every=2,
        eval_every=2,
        threads=1,
        device="cpu",
    )
    assert cfg.lr == 1e-4 and cfg.max_source_tokens == 128 and cfg.backend == "seq2seq"
    run = train_generator(cfg, tmp_path / "run", train_examples=EXAMPLES, dev_examples=EXAMPLES[:2], log=None)
    doc = json.loads((run / "training.json").read_text())
    assert doc["steps"] == 3 and doc["final_val_loss"] is not None
    if method == "full":
        assert (run / "model" / "model.safetensors").exists()
    else:
        assert "q" in json.loads((run / "adapter" / "adapter_config.json").read_text())["target_modules"]


# --- data -------------------------------------------------------------------------------------------

from xqg.paths import data_root  # noqa: E402

needs_data = pytest.mark.skipif(
    not (data_root() / "xquad").is_dir() or not (data_root() / "xor_tydi").is_dir(),
    reason="shared data not found",
)


@needs_data
def test_generator_data_uses_no_test_article_and_counts_are_right() -> None:
    from xqg.data.benchmarks.xquad import load_xquad, xquad_split

    split = xquad_split()
    data = build_generator_data(epochs=2, group_size=8, seed=3)
    n_train_q = len(load_xquad(["de"], "train").queries["de"])
    m = data.manifest
    assert m["config"]["per_lang"] == n_train_q
    for epoch in m["per_epoch"]:
        by = epoch["by_lang_origin"]
        for lang in ("ar", "de", "el", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"):
            assert by[f"{lang}/xquad"] == n_train_q
        for lang in ("bn", "fi", "ja", "ko", "te"):
            assert by[f"{lang}/xor-translation"] == n_train_q
            assert f"{lang}/xquad" not in by
        for lang in ("ar", "ru"):
            assert by[f"{lang}/xor-translation"] == round(0.5 * n_train_q)
    assert len(data.train) == 2 * m["epoch_size"]
    articles = {e.ref.rsplit("#", 1)[0] for e in data.train if e.origin == ORIGIN_XQUAD}
    assert articles == set(split["train"])
    assert {e.ref.rsplit("#", 1)[0] for e in data.dev} <= set(split["dev"])
    test_texts = {p.text for p in load_xquad(["en"], "test").paragraphs_in("test")}
    assert not any(e.source in test_texts for e in [*data.train, *data.dev])
    # seeded: the same seed gives the same stream; groups keep a paragraph's pairs together
    again = build_generator_data(epochs=2, group_size=8, seed=3)
    assert again.train[:50] == data.train[:50]
    first = data.train[:8]
    assert len({e.source for e in first}) == 1 or all(e.origin == ORIGIN_XOR for e in first)


@needs_data
def test_a_test_article_is_refused() -> None:
    from xqg.data.benchmarks.xquad import load_xquad

    p = load_xquad(["en"], "test").paragraphs_in("test")[0]
    with pytest.raises(XqgError, match="test article"):
        check_no_test_articles([GenExample(p.text, p.title, "de", "Was?", ORIGIN_XQUAD, p.id)])
    with pytest.raises(XqgError, match="test article"):  # caught by its text under another name
        check_no_test_articles([GenExample(p.text, "x", "de", "Was?", ORIGIN_XQUAD, "Other#0")])
    with pytest.raises(XqgError, match="not 'test'"):
        xquad_pairs("test")


@needs_data
def test_cli_trains_from_the_real_data_and_exports(tiny_gemma: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xqg.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    small = tmp_path / "gen.yaml"  # a small real mix: German XQuAD pairs + Bengali XOR translations
    small.write_text("xquad_langs: [de]\nxor_langs: [bn]\nper_lang: 40\nepochs: 1\ndev_per_lang: 2\n")
    args = ["train-generator", "--out", str(out), "--config", str(small), "--model", str(tiny_gemma)]
    args += ["--batch-size", "4", "--save-every", "1", "--eval-every", "2", "--threads", "1"]
    res = runner.invoke(app, [*args, "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    data = read_examples(out / "data" / "train.jsonl")
    manifest = json.loads((out / "data" / "data_manifest.json").read_text())
    assert len(data) == manifest["train"]["total"] and manifest["files"]["train.jsonl"]["sha256"]
    assert manifest["train"]["by_lang_origin"]["bn/xor-translation"] == 40
    res = runner.invoke(app, [*args, "--max-steps", "3", "--resume"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "training.json").read_text())["steps"] == 3
    res = runner.invoke(app, [*args, "--max-steps", "3", "--lr", "0.1", "--resume"])
    assert isinstance(res.exception, XqgError) and "different settings" in str(
        res.exception
    )  # main() → exit 2
    res = runner.invoke(app, ["train-generator", "--export-adapter", str(out), str(tmp_path / "exp")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "exp" / "loss.png").exists()


# --- continuing an adapter, extra (self-training) pairs ---------------------------------------------


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_init_adapter_continues_from_a_saved_adapter(tiny_gemma: Path, tmp_path: Path) -> None:
    """Step 0 of the continued run holds the saved adapter's weights (not a fresh LoRA, whose
    lora_B is zero), its first loss is the saved adapter's loss, and it trains on from there."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    first = train_generator(_cfg(tiny_gemma, max_steps=4), tmp_path / "a", train_examples=EXAMPLES, log=None)
    saved = load_file(first / "adapter" / "adapter_model.safetensors")
    assert any(float(v.abs().max()) > 0 for k, v in saved.items() if "lora_B" in k)
    cfg = _cfg(tiny_gemma, init_adapter=str(first / "adapter"), max_steps=2)
    model, tok, backend, _ = load_model(cfg, torch.device("cpu"))
    start = get_peft_model_state_dict(model)
    assert start.keys() == saved.keys()
    for k in saved:
        torch.testing.assert_close(start[k], saved[k], rtol=0, atol=0)
    assert any(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)
    model.eval()
    with torch.no_grad():
        loss_saved = float(batch_loss(model, collate_packed(tok, EXAMPLES[:4], cfg), backend))
    fresh = train_generator(
        _cfg(tiny_gemma, max_steps=2), tmp_path / "fresh", train_examples=EXAMPLES, log=None
    )
    cont = train_generator(cfg, tmp_path / "b", train_examples=EXAMPLES, log=None)
    row1 = {d: float((d / "loss.csv").read_text().splitlines()[1].split(",")[1]) for d in (fresh, cont)}
    assert row1[cont] == pytest.approx(loss_saved, abs=2e-5)
    assert abs(row1[fresh] - row1[cont]) > 1e-3  # a fresh LoRA starts from the base model's loss
    after = _weights(cont)
    assert any(not torch.equal(after[k], saved[k]) for k in saved)  # the continued run trained
    doc = json.loads((cont / "training.json").read_text())
    init = doc["init_adapter"]
    assert init["spec"] == str(first / "adapter") and init["r"] == 4
    assert init["sha256"]["adapter_model.safetensors"] == _sha(
        first / "adapter" / "adapter_model.safetensors"
    )
    assert init["sha256"]["adapter_config.json"] == _sha(first / "adapter" / "adapter_config.json")
    assert init["training"]["steps"] == 4
    assert json.loads((fresh / "training.json").read_text())["init_adapter"] is None
    # the hash of a run without the new fields is the one it had before they existed
    assert "init_adapter" not in json.dumps(_learnt(_cfg(tiny_gemma)))


def _learnt(cfg: GenTrainConfig) -> dict:
    from xqg.train.generator import _learnt_config

    return _learnt_config(cfg)


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    import xqg.train.generator as g

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(g, "load_model", refuse)


def test_a_bad_init_adapter_fails_before_the_model_loads(
    tiny_gemma: Path, tmp_path: Path, no_model_load: None
) -> None:
    run = dict(train_examples=EXAMPLES, log=None)
    missing = tmp_path / "nowhere"
    with pytest.raises(XqgError, match=f"{missing}: no such folder"):
        train_generator(_cfg(tiny_gemma, init_adapter=str(missing)), tmp_path / "r1", **run)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(XqgError, match=f"{empty}: no adapter_config.json"):
        train_generator(_cfg(tiny_gemma, init_adapter=str(empty)), tmp_path / "r2", **run)
    with pytest.raises(XqgError, match="'builtin' is the adapter of gguf:gemma-3-270m"):
        train_generator(_cfg(tiny_gemma, init_adapter="builtin"), tmp_path / "r3", **run)
    with pytest.raises(XqgError, match="continues a LoRA adapter"):
        train_generator(_cfg(tiny_gemma, init_adapter=str(empty), method="full"), tmp_path / "r4", **run)
    shaped = tmp_path / "shaped"
    shaped.mkdir()
    (shaped / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 32, "lora_alpha": 64}))
    (shaped / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(XqgError, match="set lora_r: 32, lora_alpha: 64"):
        train_generator(_cfg(tiny_gemma, init_adapter=str(shaped)), tmp_path / "r5", **run)


def test_the_builtin_adapter_resolves_and_is_recorded() -> None:
    from xqg.models.sources import builtin_adapter_dir
    from xqg.train.generator import check_init_adapter

    shipped = json.loads((builtin_adapter_dir() / "training.json").read_text())["config"]
    cfg = GenTrainConfig(init_adapter="builtin", lora_r=shipped["lora_r"], lora_alpha=shipped["lora_alpha"])
    info = check_init_adapter(cfg)  # reads files only: the Gemma weights are not needed
    assert info is not None and info["spec"] == "builtin" and info["r"] == shipped["lora_r"]
    weights = builtin_adapter_dir() / "adapter_model.safetensors"
    assert info["sha256"]["adapter_model.safetensors"] == _sha(weights)
    assert not any(str(v).startswith("/") for v in info.values())  # no machine path in the record
    with pytest.raises(XqgError, match="set lora_r"):
        check_init_adapter(GenTrainConfig(init_adapter="builtin"))  # the default r=16 is not its shape


def _pair(p, lang: str = "de", question: str = "Was ist das?") -> dict:
    return {"passage_id": p.id, "title": p.title, "text": p.text, "lang": lang, "question": question}


def _write_pairs(path: Path, rows: list) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
    )
    return path


@needs_data
def test_bad_extra_pair_lines_fail_with_file_line_and_field_before_the_model_loads(
    tiny_gemma: Path, tmp_path: Path, no_model_load: None
) -> None:
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.errors import DataFormatError

    bench = load_xquad(["en"], "all")
    train_p = bench.paragraphs_in("train")[0]
    dev_p, test_p = bench.paragraphs_in("dev")[0], bench.paragraphs_in("test")[0]
    good = _pair(train_p)
    cases = [
        ("{not json", None),
        ({k: v for k, v in good.items() if k != "question"}, "question"),
        ({**good, "question": "  "}, "question"),
        ({**good, "text": 7}, "text"),
        ({**good, "lang": "xx"}, "lang"),
        (_pair(dev_p), "passage_id"),  # a dev paragraph
        ({**good, "passage_id": f"{test_p.id.rsplit('#', 1)[0]}#999"}, "passage_id"),  # a test article
        ({**good, "text": test_p.text}, "text"),  # a test paragraph under a train id
    ]
    for i, (bad, field) in enumerate(cases):
        path = _write_pairs(tmp_path / f"bad{i}.jsonl", [good, "", bad])
        cfg = _cfg(tiny_gemma, xquad_langs=["de"], xor_langs=[], extra_pairs=str(path))
        with pytest.raises(DataFormatError) as err:
            train_generator(cfg, tmp_path / f"run{i}", log=None)
        assert (err.value.path, err.value.line, err.value.field) == (str(path), 3, field), bad
        assert f"{path}:3:" in str(err.value)
    with pytest.raises(XqgError, match="give extra_pairs too"):
        train_generator(_cfg(tiny_gemma, extra_share=0.5), tmp_path / "share", log=None)
    ok = _write_pairs(tmp_path / "ok.jsonl", [good])
    with pytest.raises(XqgError, match="custom examples"):
        train_generator(_cfg(tiny_gemma, extra_pairs=str(ok)), tmp_path / "custom", train_examples=EXAMPLES)


@needs_data
def test_extra_pairs_enter_each_epoch_and_are_recorded(tiny_gemma: Path, tmp_path: Path) -> None:
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.io import sha256_file
    from xqg.train.generator_data import ORIGIN_EXTRA

    paras = load_xquad(["en"], "train").paragraphs_in("train")[:5]
    rows = [_pair(p, lang, f"Frage {i} {lang}?") for i, p in enumerate(paras) for lang in ("de", "ja")]
    path = _write_pairs(tmp_path / "pairs.jsonl", [{**r, "rank": 1, "sample": 0} for r in rows])
    kw = dict(xquad_langs=["de"], xor_langs=[], epochs=2, group_size=8, seed=1)
    plain = build_generator_data(**kw)
    every = build_generator_data(**kw, extra_pairs=path)
    n_de = plain.manifest["per_epoch"][0]["by_origin"]["xquad"]
    for epoch in every.manifest["per_epoch"]:
        assert epoch["by_origin"] == {"selftrain": 10, "xquad": n_de}
        assert epoch["by_lang_origin"]["ja/selftrain"] == 5
    extra = every.manifest["extra_pairs"]
    assert extra["sha256"] == sha256_file(path) and extra["pairs"] == 10 and extra["per_epoch"] == 10
    assert extra["by_lang"] == {"de": 5, "ja": 5} and every.manifest["config"]["extra_share"] is None
    got = [e for e in every.train if e.origin == ORIGIN_EXTRA]
    assert sorted((e.ref, e.lang, e.target) for e in got[:10]) == sorted(
        (r["passage_id"], r["lang"], r["question"]) for r in rows
    )
    assert got[0].source == paras[[p.id for p in paras].index(got[0].ref)].text
    # a share: round(share × XQuAD pairs) per epoch, different slices of the pool in each epoch
    share = 4 / n_de
    part = build_generator_data(**kw, extra_pairs=path, extra_share=share)
    per = [e for e in part.train if e.origin == ORIGIN_EXTRA]
    assert [ep["by_origin"]["selftrain"] for ep in part.manifest["per_epoch"]] == [4, 4]
    epoch_size = part.manifest["epoch_size"]
    first = {(e.ref, e.lang) for e in part.train[:epoch_size] if e.origin == ORIGIN_EXTRA}
    second = {(e.ref, e.lang) for e in part.train[epoch_size:] if e.origin == ORIGIN_EXTRA}
    assert len(per) == 8 and not first & second
    # through train_generator: in the data folder and in training.json
    cfg = _cfg(tiny_gemma, xquad_langs=["de"], xor_langs=[], epochs=1, dev_per_lang=1, max_steps=1,
               extra_pairs=str(path), extra_share=share)  # fmt: skip
    run = train_generator(cfg, tmp_path / "run", log=None, show_progress=False)
    doc = json.loads((run / "training.json").read_text())
    assert doc["data"]["extra_pairs"]["sha256"] == sha256_file(path)
    assert doc["data"]["train"]["by_origin"]["selftrain"] == 4
    assert doc["config"]["extra_pairs"] == str(path)
    assert sum(e.origin == ORIGIN_EXTRA for e in read_examples(run / "data" / "train.jsonl")) == 4
