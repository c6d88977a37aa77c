"""Shared fixtures: a tiny, randomly initialised local BERT (no hub) for fast stage tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

TINY_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Where was the treaty signed and by whom?",
    "Москва является столицей России.",
    "ما هي عاصمة مصر؟",
    "東京は日本の首都です。",
    "서울은 한국의 수도입니다.",
    "Helsinki on Suomen pääkaupunki.",
    "हिंदी एक भाषा है।",
    "Der Vertrag wurde 1990 in Berlin unterzeichnet.",
    "ఇది తెలుగు వాక్యం.",
    "ঢাকা বাংলাদেশের রাজধানী।",
]


def make_tiny_model(out: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny BertModel + fast BPE tokenizer trained on TINY_TEXTS to ``out``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    tok.train_from_iterator(TINY_TEXTS * 3, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=256,
    )
    model = BertModel(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    fast.save_pretrained(out)
    return out


@pytest.fixture(autouse=True, scope="session")
def _jinja_compiles_each_template_once():
    """sentence-transformers writes a model card with every checkpoint it saves, compiling the
    same Jinja template again each time (a third of a tiny training run's CPU). The compiled code
    is a function of the environment and the source alone, so the session keeps it: the cards'
    bytes are unchanged. (xqg itself uses no Jinja.)"""
    import functools

    import jinja2

    compile_source = jinja2.Environment.compile
    jinja2.Environment.compile = functools.lru_cache(maxsize=64)(compile_source)
    yield
    jinja2.Environment.compile = compile_source


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture()
def tiny_encoder_config(tiny_model_dir: Path):
    from xqg.config import EncoderConfig

    return EncoderConfig(model=str(tiny_model_dir), batch_size=4, device="cpu")


def run_xqg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``xqg ARGS`` in this process, through the installed command's own entry point
    (``xqg.cli.main``: the same parsing, ``error:`` lines and exit statuses), with its output
    captured: a subprocess per call would pay an interpreter and a torch import (≈4 CPU-s) each.
    ``env`` is set for the call only; the environment is restored afterwards."""
    import contextlib
    import io
    import os
    import sys

    from xqg.cli import main

    out, err, saved_env, saved_argv = io.StringIO(), io.StringIO(), dict(os.environ), sys.argv
    os.environ.update({"XQG_PROGRESS": "0", **(env or {})})
    sys.argv = ["xqg", *args]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    code = 0 if code is None else code if isinstance(code, int) else 1
    return subprocess.CompletedProcess(["xqg", *args], code, out.getvalue(), err.getvalue())


# --- a missing ../shared/data is a skip with its reason, never a failure -------------------------


def _missing_shared_data(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """The skip reason when ``excinfo`` comes from the shared data folder being absent."""
    from xqg.paths import data_root

    root = data_root()
    if root.is_dir():
        return None
    text = f"{excinfo.value}\n{excinfo.exconly()}"
    if str(root) in text or "shared data" in text or "XQG_DATA" in text:
        return f"needs the shared data sets: {root} does not exist (set XQG_DATA)"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Tests that read the real data (``../shared/data`` or ``$XQG_DATA``) and fail because the
    folder is not there are reported as skipped, with the reason, in setup and call alike."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.excinfo is not None and call.when in ("setup", "call"):
        reason = _missing_shared_data(call.excinfo)
        if reason is not None:
            rep.outcome = "skipped"
            rep.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {reason}")
