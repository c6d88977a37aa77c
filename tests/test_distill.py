"""Cross-lingual distillation: the student's translation embeddings move to the teacher's English
ones, the passage tower stays the teacher, held-out data never leaks, bitext accuracy is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
