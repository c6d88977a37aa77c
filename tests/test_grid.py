"""The training × distillation × xQG grid end to end with the tiny model: every model is built
once (a rerun reuses them), each is evaluated with and without xQG, and the report has every cell."""

from __future__ import annotations

import json

import pytest
import yaml

pytest.importorskip("datasets")

from tests.test_experiment_xqg import _oracle_generation  # noqa: E402
from xqg.config import AugmentExperimentConfig, EncoderConfig, ExperimentConfig, GeneratorConfig  # noqa: E402
from xqg.experiments.grid import GridConfig, run_grid  # noqa: E402
from xqg.train.distill import DistillConfig  # noqa: E402
from xqg.train.retriever import RetrieverTrainConfig  # noqa: E402


def test_grid_builds_each_model_once_and_reports_every_cell(tmp_path, tiny_model_dir):
    gen = _oracle_generation(tmp_path / "generated", langs=("ar",), n=1)
    enc = EncoderConfig(model=str(tiny_model_dir), device="cpu", query_max_length=32, passage_max_length=64,
                        batch_size=64)  # fmt: skip
    exp = ExperimentConfig(
        name="tiny",
        langs=["en", "ar"],
        out_dir=str(tmp_path / "unused"),
        encoder=enc,
        generator=GeneratorConfig(n=1, langs=["ar"]),
        augment=AugmentExperimentConfig(alphas=[0.0, 0.1], strategies=["mean-norm"], variants=[], rkt=[]),
    )
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp.model_dump()))
    grid = GridConfig(
        experiment=str(tmp_path / "exp.yaml"),
        out_dir=str(tmp_path / "grid"),
        generated=str(gen),
        eval_dtype="float32",
        cross_lingual_langs=["ar"],
        train=RetrieverTrainConfig(
            batch_size=4, max_steps=2, towers="frozen-passage", negatives=1, save_steps=100, logging_steps=1
        ),  # fmt: skip
        train_passage_max_length=32,
        distill=DistillConfig(
            teacher=EncoderConfig(query_max_length=32, batch_size=64),
            sources=["xquad"],
            langs=["ar"],
            max_pairs=8,
            batch_size=4,
            max_steps=2,
            logging_steps=1,
        ),  # fmt: skip
        models=["base", "base+distill", "zero-shot"],
    )
    logs: list[str] = []
    res = run_grid(grid, show_progress=False, log=logs.append)
    assert any("training on" in m for m in logs) and any("distilling" in m for m in logs)
    s = res.summary
    assert set(s["cells"]) == {
        "base",
        "base+xQG",
        "base+distill",
        "base+distill+xQG",
        "zero-shot",
        "zero-shot+xQG",
    }
    # the untrained baseline against itself: zero deltas
    base_rows = {r["lang"]: r for r in s["cells"]["base"]["rows"]}
    assert all(abs(base_rows[x]["delta"]["mrr@10"]) < 1e-12 for x in ("en", "ar"))
    # distilled and trained encoders keep the start model as their passage tower
    assert s["encoders"]["base+distill"]["passage_model"] == str(tiny_model_dir)
    assert s["encoders"]["zero-shot"]["passage_model"] == str(tiny_model_dir)
    md = (res.report_dir / "results.md").read_text()
    assert "| ar |" in md and "zero-shot+xQG" in md and "held-out bitext" in md
    assert (res.report_dir / "grid_delta.png").is_file() and (res.report_dir / "loss-zero-shot.png").is_file()
    bitext = json.loads((tmp_path / "grid" / "models" / "base-distill" / "bitext.json").read_text())
    assert set(bitext["teacher"]["tatoeba"]) == {"ar"} and bitext["distilled"]["ntrex"]["ar"]["pairs"] == 997

    logs.clear()
    run_grid(grid, show_progress=False, log=logs.append)  # a rerun trains nothing again
    assert not any("training on" in m or "distilling" in m for m in logs)
    assert sum("reusing" in m for m in logs) == 2
    assert not any("evaluating again" in m for m in logs)

    # A new distillation recipe retrains base+distill in place (same folder, same path in the
    # encoder config): its evaluation must not reuse the old weights' query embeddings.
    emb = tmp_path / "grid" / "eval" / "base-distill"
    before = (emb / "model-fingerprint.json").read_text()
    logs.clear()
    grid.distill = grid.distill.model_copy(update={"learning_rate": 1e-3})
    res2 = run_grid(grid, show_progress=False, log=logs.append)
    assert any("distilling" in m for m in logs)
    assert [m for m in logs if "evaluating again" in m] == [m for m in logs if "base-distill:" in m]
    assert len([m for m in logs if "evaluating again" in m]) == 1
    assert (emb / "model-fingerprint.json").read_text() != before
    assert res2.summary["config"]["distill"]["learning_rate"] == 1e-3


def test_grid_models_subset_names_unknown_models(tmp_path):
    """`xqg grid --models` takes only the file's models; a typo exits 2 listing them, writing nothing."""
    from tests.test_cli import xqg

    res = xqg("grid", "xquad-grid", "--out-dir", str(tmp_path / "g"), "--models", "base,zero-shot+distil",
              check=False)  # fmt: skip
    assert res.returncode == 2
    assert "zero-shot+distil" in res.stderr and "cross-lingual+distill" in res.stderr
    assert not (tmp_path / "g").exists()


def test_a_run_recorded_before_a_setting_existed_is_reused_only_at_its_default(tmp_path):
    """A finished run whose training.json predates a DistillConfig key is the default recipe."""
    from xqg.experiments.grid import _reusable
    from xqg.io import write_json

    cfg = DistillConfig(max_steps=7)
    old = cfg.model_dump()
    del old["loss"], old["rank_weight"]  # keys added to xqg after this run was made
    write_json(tmp_path / "training.json", {"config": old})
    write_json(tmp_path / "encoder.json", EncoderConfig(model="m").model_dump())
    assert _reusable(tmp_path, cfg) is not None
    assert _reusable(tmp_path, cfg.model_copy(update={"loss": "mse+rank"})) is None
    assert _reusable(tmp_path, cfg.model_copy(update={"max_steps": 8})) is None
    write_json(tmp_path / "training.json", {"config": {**old, "retired_key": 1}})
    assert _reusable(tmp_path, cfg) is None
