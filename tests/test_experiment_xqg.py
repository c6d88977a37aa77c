"""The augmentation experiment end to end on real XQuAD with the real encoder.

The generation folder here is written by an *oracle generator*: for each paragraph and language
its "generated queries" are XQuAD's own human questions about that paragraph in that language.
That is the best a query generator could do, so fusing them must lift retrieval; a fusion,
tuning or evaluation bug that loses the signal fails these tests. The real generator's run is
the committed report (reports/xquad-xqg).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xqg.config import AugmentExperimentConfig, EncoderConfig, ExperimentConfig, GeneratorConfig
from xqg.data.benchmarks.xquad import load_xquad
from xqg.experiments.augmentation import CorpusVectors, SplitVectors, run_augmentation_experiment, scores
from xqg.generate import store
from xqg.io import write_manifest
from xqg.search import ranks_in_scores
from xqg.types import GeneratedQuery

pytestmark = pytest.mark.slow  # the experiment fixture encodes XQuAD with the real e5-small model

LANGS = ["en", "ar", "de"]
N = 2


def _oracle_generation(path, langs=("ar", "de"), n=N):
    bench = load_xquad(list(langs), split="all")
    for lang in langs:
        by_pid: dict[str, list[str]] = {}
        for q in bench.queries[lang]:
            by_pid.setdefault(next(iter(bench.qrels[q.id])), []).append(q.text)
        rows = [
            GeneratedQuery(p.id, lang, s, by_pid[p.id][s % len(by_pid[p.id])])
            for p in bench.corpus
            for s in range(n)
        ]
        store.write_shard(path, lang, 0, rows)
    files = [store.shard_name(lang, 0) for lang in langs] + [store.shard_meta_name(lang, 0) for lang in langs]
    write_manifest(
        path,
        stage=store.STAGE,
        config={
            "generator": {
                "model": "oracle: XQuAD's own questions",
                "adapter": None,
                "langs": list(langs),
                "n": n,
            }
        },  # fmt: skip
        counts={"queries": len(bench.corpus) * n * len(langs)},
        files=files,
    )
    return path


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("xqg-exp")
    gen = _oracle_generation(root / "generated")
    cfg = ExperimentConfig(
        name="oracle",
        langs=LANGS,
        out_dir=str(root / "run"),
        encoder=EncoderConfig(passage_max_length=128, query_max_length=32, batch_size=32, dtype="bfloat16"),
        generator=GeneratorConfig(n=N, langs=["ar", "de"]),
        augment=AugmentExperimentConfig(
            generated=str(gen),
            alphas=[0.0, 0.01, 0.1, 0.3],
            strategies=["paper", "mean-norm"],
            round_trip_depths=[1, 10],
            betas=[0.3, 1.0],
            rkt=[100],
        ),
    )
    res = run_augmentation_experiment(
        cfg, report_dir=root / "report", show_progress=False, log=lambda _: None
    )
    return cfg, res


def test_report_files_and_faiss_agrees_with_the_in_memory_scorer(experiment):
    _, res = experiment
    for name in ("results.md", "results.json", "alpha.png", "n_queries.png", "per_language.png",
                 "tables/baseline.md", "tables/paper.json"):  # fmt: skip
        assert (res.report_dir / name).stat().st_size > 0, name
    data = json.loads((res.report_dir / "results.json").read_text())
    assert set(data["faiss_vs_memory_max_abs_diff"]) == {"baseline", "paper", "tuned"}
    assert max(data["faiss_vs_memory_max_abs_diff"].values()) < 1e-6
    md = (res.report_dir / "results.md").read_text()
    assert "| ar |" in md and "R@100t" in (res.report_dir / "tables/paper.md").read_text()


def test_oracle_queries_give_significant_gains_and_tuning_used_dev_only(experiment):
    cfg, res = experiment
    s = res.summary
    base = s["systems"]["baseline"]["langs"]
    tuned = s["systems"]["tuned"]
    # Human questions about the paragraph as extra evidence: ar and de must gain significantly.
    assert set(tuned["significant_gains"]) == {"ar", "de"}
    for lang in ("ar", "de"):
        assert tuned["langs"][lang]["values"]["mrr@10"] > base[lang]["values"]["mrr@10"] + 0.02
    # The chosen α is the best dev point of its grid, and the grid is the one configured.
    grid = s["grids"]["tuned"]
    assert len(grid) == 2 * 4
    best = max(g["mrr@10"] for g in grid)
    chosen = tuned["settings"]
    assert [
        g["mrr@10"] for g in grid if g["strategy"] == chosen["strategy"] and g["alpha"] == chosen["alpha"]
    ] == [best]
    # The n curve starts at the baseline (n = 0) and has one point per n.
    assert [r["n"] for r in s["n_curve"]] == list(range(N + 1))
    assert s["n_curve"][0]["tuned"] == pytest.approx(base["avg"]["values"]["mrr@10"], abs=1e-9)
    # No English queries were generated: under "query's language only" English questions see
    # the plain passages (or a rescaling of them), so their ranking, and every metric, is unchanged.
    en = s["systems"]["same-lang"]["langs"]["en"]
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in en["delta"].values())


def test_same_language_fusion_only_uses_that_languages_queries():
    rng = np.random.default_rng(0)
    d = 8
    p = rng.normal(size=(3, d))
    gen = rng.normal(size=(4, d)).astype(np.float32)
    cv = CorpusVectors(
        pids=["a", "b", "c"],
        passages=p,
        gen=gen,
        gen_lang=np.array(["ar", "de", "ar", "de"], dtype=object),
        gen_sample=np.array([0, 0, 1, 0]),
        gen_row=np.array([0, 0, 1, 2]),
        gen_rank=np.array([1, 2, 1, 1]),
    )
    q = rng.normal(size=(2, d)).astype(np.float32)
    split = SplitVectors("t", ["q1", "q2"], np.array(["ar", "de"], dtype=object), q, np.array([0, 2]))
    got = scores(cv, split, {"kind": "same-lang", "strategy": "paper", "alpha": 0.5, "n": None})
    ar = 0.5 * p + 0.5 * np.stack([gen[0], gen[2], np.zeros(d)])
    de = 0.5 * p + 0.5 * np.stack([gen[1], np.zeros(d), gen[3]])
    assert np.allclose(got[0], q[0] @ ar.T, atol=1e-5)
    assert np.allclose(got[1], q[1] @ de.T, atol=1e-5)
    # n = 1 drops sample 1 (the second ar query of passage b).
    n1 = scores(cv, split, {"kind": "same-lang", "strategy": "paper", "alpha": 0.5, "n": 1})
    assert np.allclose(
        n1[0], q[0] @ (0.5 * p + 0.5 * np.stack([gen[0], np.zeros(d), np.zeros(d)])).T, atol=1e-5
    )
    # Multi-vector: (1-β)·q·p + β·max over the passage's query vectors; β = 1 → the max alone.
    mv = scores(cv, split, {"kind": "multivector", "beta": 1.0, "n": None})
    assert np.allclose(mv[0, 0], max(q[0] @ gen[0], q[0] @ gen[1]), atol=1e-5)
    assert np.allclose(mv[1, 2], q[1] @ gen[3], atol=1e-5)
    # Round-trip depth 1 keeps only queries whose own passage ranks first (drops gen[1]).
    rt = scores(cv, split, {"kind": "fusion", "strategy": "paper", "alpha": 0.5, "n": None, "depth": 1})
    assert np.allclose(rt[0, 0], q[0] @ (0.5 * p[0] + 0.5 * gen[0]), atol=1e-5)
    assert ranks_in_scores(np.array([[1.0, 1.0, 0.5]]), np.array([1])).tolist() == [2]
