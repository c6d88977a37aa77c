"""Retriever training on sentence-transformers' trainer: the loss goes down, retrieval changes,
and a run that crashes after a checkpoint resumes to the same final weights."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("datasets")

from safetensors.numpy import load_file  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from tests.conftest import TINY_TEXTS  # noqa: E402
from xqg.config import EncoderConfig  # noqa: E402
from xqg.models.encoder import BiEncoder  # noqa: E402
from xqg.search import exact_ranks  # noqa: E402
from xqg.train.retriever import RetrieverTrainConfig, mean_loss, train_retriever  # noqa: E402


def _rows():
    # Passage i is a pair of tiny texts; its "question" is a third text mentioning one of them.
    rows = []
    n = len(TINY_TEXTS)
    for i in range(24):
        p = f"{TINY_TEXTS[i % n]} {TINY_TEXTS[(i + 5) % n]} item {i}"
        q = f"item {i} {TINY_TEXTS[(i + 5) % n][:20]}"
        neg = f"{TINY_TEXTS[(i + 1) % n]} item {(i + 7) % 24}"
        rows.append((q, p, (neg,)))
    return rows


def _cfg(model_dir, **kw):
    enc = EncoderConfig(model=str(model_dir), device="cpu", query_max_length=32, passage_max_length=64,
                        query_prefix="q: ", passage_prefix="p: ")  # fmt: skip
    base = {"encoder": enc, "batch_size": 8, "learning_rate": 5e-3, "max_steps": 12, "warmup_ratio": 0.0,
            "save_steps": 4, "logging_steps": 2, "negatives": 1, "seed": 3}  # fmt: skip
    return RetrieverTrainConfig(**{**base, **kw})


def _mrr(model_dir, enc: EncoderConfig, rows) -> float:
    e = BiEncoder(enc.model_copy(update={"model": str(model_dir)}))
    q = e.encode_queries([r[0] for r in rows])
    p = e.encode([r[1] for r in rows], kind="passage")
    ranks = exact_ranks(q, p, np.arange(len(rows)))
    return float(np.mean(1.0 / ranks))


def test_training_lowers_the_loss_and_changes_retrieval(tmp_path, tiny_model_dir):
    rows = _rows()
    cfg = _cfg(tiny_model_dir)
    final = train_retriever(rows, tmp_path / "run", cfg)
    assert mean_loss(tmp_path / "run" / "loss.csv", first=False) < mean_loss(
        tmp_path / "run" / "loss.csv", first=True
    )
    assert (tmp_path / "run" / "loss.png").stat().st_size > 0
    before, after = _mrr(tiny_model_dir, cfg.encoder, rows), _mrr(final, cfg.encoder, rows)
    assert after > before + 0.05, (before, after)


class _CrashAfter(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise RuntimeError("simulated crash")


def test_resume_after_a_crash_gives_the_uninterrupted_weights(tmp_path, tiny_model_dir):
    rows = _rows()
    cfg = _cfg(tiny_model_dir)
    whole = train_retriever(rows, tmp_path / "whole", cfg)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_retriever(rows, tmp_path / "crashed", cfg, callbacks=[_CrashAfter(6)])  # checkpoint-4 exists
    resumed = train_retriever(rows, tmp_path / "crashed", cfg)
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6, err_msg=k)
    assert "checkpoint-4" in (tmp_path / "crashed" / "training.json").read_text()


def test_checkpoints_of_other_settings_are_never_resumed(tmp_path, tiny_model_dir):
    """A crashed run's checkpoint is only resumed by a run with the same settings and rows: a new
    learning rate refuses (naming the folder), ``stale="restart"`` starts over and matches a clean run."""
    from xqg.errors import XqgError

    rows = _rows()
    cfg = _cfg(tiny_model_dir)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_retriever(rows, tmp_path / "run", cfg, callbacks=[_CrashAfter(6)])
    other = cfg.model_copy(update={"learning_rate": cfg.learning_rate * 3})
    with pytest.raises(XqgError, match="checkpoints were made with other settings") as err:
        train_retriever(rows, tmp_path / "run", other)
    assert str(tmp_path / "run" / "checkpoints") in str(err.value)
    with pytest.raises(XqgError, match="other settings or data"):  # same settings, other rows
        train_retriever(rows[::-1], tmp_path / "run", cfg)
    restarted = train_retriever(rows, tmp_path / "run", other, stale="restart")
    assert '"resumed_from": null' in (tmp_path / "run" / "training.json").read_text()
    clean = train_retriever(rows, tmp_path / "clean", other)
    a, b = load_file(str(clean / "model.safetensors")), load_file(str(restarted / "model.safetensors"))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=1e-6, err_msg=k)


def test_cli_trains_from_a_tevatron_file(tmp_path, tiny_model_dir):
    from typer.testing import CliRunner

    from xqg.cli import app
    from xqg.data.tevatron import TrainExample, write_tevatron_train
    from xqg.types import Passage

    examples = [
        TrainExample(
            query_id=f"q{i}",
            query=q,
            positive_passages=(Passage(f"p{i}", p),),
            negative_passages=(Passage(f"n{i}", n[0]),),
        )
        for i, (q, p, n) in enumerate(_rows())
    ]
    write_tevatron_train(tmp_path / "train.jsonl", examples)
    args = ["train-retriever", "--out", str(tmp_path / "run"), "--data", str(tmp_path / "train.jsonl"),
            "--model", str(tiny_model_dir), "--batch-size", "8", "--max-steps", "4"]  # fmt: skip
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "model" / "model.safetensors").exists()
    r = CliRunner().invoke(
        app, ["train-retriever", "--out", str(tmp_path / "x"), "--model", str(tiny_model_dir)]
    )
    assert r.exit_code != 0  # neither --data nor --xquad-langs


@pytest.mark.parametrize("towers", ["frozen-passage", "separate"])
def test_separate_towers_train_the_query_side_and_keep_or_train_the_passage_side(
    tmp_path, tiny_model_dir, towers
):
    import json

    rows = _rows()
    cfg = _cfg(tiny_model_dir, towers=towers, max_steps=8, save_steps=50)
    train_retriever(rows, tmp_path / "run", cfg)
    enc = EncoderConfig(**json.loads((tmp_path / "run" / "encoder.json").read_text()))
    start = BiEncoder(cfg.encoder)
    trained = BiEncoder(enc)
    texts = [r[1] for r in rows[:6]]
    queries = [r[0] for r in rows[:6]]
    same_passages = np.allclose(trained.encode_passages(texts), start.encode_passages(texts), atol=1e-6)
    assert same_passages == (towers == "frozen-passage")
    assert not np.allclose(trained.encode_queries(queries), start.encode_queries(queries), atol=1e-4)
    if towers == "frozen-passage":
        assert enc.passage_model == str(tiny_model_dir)
    else:
        assert enc.passage_model == str((tmp_path / "run" / "passage-model").resolve())
