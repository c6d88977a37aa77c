"""Cross-lingual distillation: the student's translation embeddings move to the teacher's English
ones, the passage tower stays the teacher, held-out data never leaks, bitext accuracy is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import log_softmax

pytest.importorskip("datasets")

from xqg.config import EncoderConfig  # noqa: E402
from xqg.evaluate.bitext import bitext_accuracy, write_bitext_report  # noqa: E402
from xqg.models.encoder import BiEncoder  # noqa: E402
from xqg.train.distill import DistillConfig, distill, ntrex_halves, parallel_pairs, tatoeba_halves  # noqa: E402


def test_bitext_accuracy_known_answers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    assert bitext_accuracy(x, x) == {"x2en": 1.0, "en2x": 1.0, "pairs": 50}
    shifted = np.roll(x, 1, axis=0)  # every row's nearest neighbour is its own copy, one row off
    assert bitext_accuracy(x, shifted)["x2en"] == 0.0
    half = x.copy()
    half[:25] = np.roll(x[:25], 1, axis=0)
    acc = bitext_accuracy(half, x)
    assert acc["x2en"] == 0.5 and acc["en2x"] == 0.5
    with pytest.raises(ValueError):
        bitext_accuracy(x, x[:10])


def test_bitext_report_table(tmp_path):
    r = {"tatoeba": {"ar": {"x2en": 0.5, "en2x": 0.25, "pairs": 4}}, "ntrex": {}}
    write_bitext_report(tmp_path, {"teacher": r, "distilled": r})
    md = (tmp_path / "bitext.md").read_text()
    assert "| ar | 4 | 0.500 | 0.250 | 0.500 | 0.250 |" in md
    assert json.loads((tmp_path / "bitext.json").read_text())["teacher"] == r


def test_training_pairs_never_touch_held_out_or_test_data():
    from xqg.data.benchmarks.xquad import load_xquad

    train, held = tatoeba_halves("ara")
    assert len(train) + len(held) == 1000 and not set(train) & set(held)
    ntrain, nheld = ntrex_halves("ar")
    assert len(ntrain) == 1000 and len(nheld) == 997
    pairs = parallel_pairs(["xquad", "tatoeba", "ntrex"], ["ar", "de"])
    assert {(p[0], p[1]) for p in pairs} == {("xquad", "ar"), ("xquad", "de"), ("tatoeba", "ar"),
                                             ("tatoeba", "de"), ("ntrex", "ar")}  # fmt: skip
    eval_questions = {
        q.text for split in ("dev", "test") for q in load_xquad(["en"], split=split).all_queries()
    }
    used_en = {p[2] for p in pairs if p[0] == "xquad"}
    assert used_en and not used_en & eval_questions
    held_en = {en for en, _ in held}
    assert not {p[2] for p in pairs if p[0] == "tatoeba" and p[1] == "ar"} & held_en - {en for en, _ in train}


def test_distillation_pulls_translations_to_the_teacher_and_keeps_the_passage_tower(tmp_path, tiny_model_dir):
    from tests.conftest import TINY_TEXTS

    teacher = EncoderConfig(model=str(tiny_model_dir), device="cpu", query_max_length=32,
                            query_prefix="q: ", passage_prefix="p: ")  # fmt: skip
    n = len(TINY_TEXTS)
    # "Translations": a different tiny text stands for sentence i's translation.
    pairs = [("toy", "xx", TINY_TEXTS[i % n] + f" {i}", TINY_TEXTS[(i + 3) % n] + f" {i}") for i in range(32)]
    cfg = DistillConfig(teacher=teacher, batch_size=8, learning_rate=3e-3, max_steps=24, warmup_ratio=0.0,
                        save_steps=100, logging_steps=4, freeze_embeddings=False)  # fmt: skip
    result = distill(tmp_path / "d", cfg, pairs=pairs, bitext_eval=False, show_progress=False)

    t = BiEncoder(teacher)
    s = BiEncoder(result)
    en = [p[2] for p in pairs]
    xx = [p[3] for p in pairs]
    target = t.encode_queries(en)

    def gap(vecs):
        return float(((vecs - target) ** 2).sum(axis=1).mean())

    assert gap(s.encode_queries(xx)) < 0.5 * gap(t.encode_queries(xx))
    # translation retrieval (X → English) improves
    assert (
        bitext_accuracy(s.encode_queries(xx), target)["x2en"]
        > bitext_accuracy(t.encode_queries(xx), target)["x2en"]
    )
    # the passage tower is the teacher: its vectors are unchanged
    np.testing.assert_array_equal(s.encode_passages(en[:5]), t.encode_passages(en[:5]))
    saved = json.loads((tmp_path / "d" / "encoder.json").read_text())
    assert saved["passage_model"] == str(tiny_model_dir)
    assert json.loads((tmp_path / "d" / "training.json").read_text())["pairs"] == 32
    assert (tmp_path / "d" / "loss.png").is_file()


def test_rank_distill_loss_matches_a_hand_computation():
    """MSE + KL(teacher ‖ student) of softmax(q·P/τ), both columns; zero when student = teacher."""
    import torch

    from xqg.train.losses import RankDistillLoss

    rng = np.random.default_rng(0)

    def unit(a):
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    passages, labels, x, en = (unit(rng.normal(size=(n, 8))) for n in (5, 3, 3, 3))
    fake = lambda f: {"sentence_embedding": f["emb"]}  # noqa: E731 — stands in for the ST model
    loss = RankDistillLoss(fake, torch.tensor(passages), weight=0.5, temperature=0.1)
    got = loss([{"emb": torch.tensor(x)}, {"emb": torch.tensor(en)}], torch.tensor(labels)).item()

    t = log_softmax(labels @ passages.T / 0.1, axis=1)
    kl = [float((np.exp(t) * (t - log_softmax(s @ passages.T / 0.1, axis=1))).sum(axis=1).mean())
          for s in (x, en)]  # fmt: skip
    mse = float(np.mean((np.concatenate([x, en]) - np.concatenate([labels, labels])) ** 2))
    assert got == pytest.approx(mse + 0.5 * np.mean(kl), rel=1e-5)
    same = loss([{"emb": torch.tensor(labels)}], torch.tensor(labels)).item()
    assert same == pytest.approx(0.0, abs=1e-6)


def test_rank_distillation_brings_translations_to_the_english_ranking(tmp_path, tiny_model_dir):
    """``loss: mse+rank`` over the XQuAD train paragraphs: the student's score distribution of a
    translation moves toward the teacher's of its English sentence, and training.json says so."""
    from tests.conftest import TINY_TEXTS

    teacher = EncoderConfig(model=str(tiny_model_dir), device="cpu", query_max_length=32,
                            passage_max_length=64)  # fmt: skip
    n = len(TINY_TEXTS)
    pairs = [("toy", "xx", TINY_TEXTS[i % n] + f" {i}", TINY_TEXTS[(i + 3) % n] + f" {i}") for i in range(32)]
    cfg = DistillConfig(teacher=teacher, batch_size=8, learning_rate=3e-3, max_steps=24, warmup_ratio=0.0,
                        save_steps=100, logging_steps=4, freeze_embeddings=False, loss="mse+rank",
                        rank_weight=1.0, rank_temperature=0.05)  # fmt: skip
    result = distill(tmp_path / "d", cfg, pairs=pairs, bitext_eval=False, show_progress=False)

    from xqg.data.benchmarks.xquad import load_xquad

    paragraphs = [p.text for p in load_xquad(["en"], split="train").paragraphs_in("train")]
    t, s = BiEncoder(teacher), BiEncoder(result)
    P = t.encode_passages(paragraphs)
    target = t.encode_queries([p[2] for p in pairs]) @ P.T / 0.05
    xx = [p[3] for p in pairs]

    def kl(scores):
        lt = log_softmax(target, axis=1)
        return float((np.exp(lt) * (lt - log_softmax(scores, axis=1))).sum(axis=1).mean())

    assert kl(s.encode_queries(xx) @ P.T / 0.05) < 0.5 * kl(t.encode_queries(xx) @ P.T / 0.05)
    info = json.loads((tmp_path / "d" / "training.json").read_text())
    assert f"over {len(paragraphs)} XQuAD train-split paragraphs" in info["loss"]
