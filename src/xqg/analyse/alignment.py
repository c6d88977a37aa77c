"""Query–passage alignment: does generated-query augmentation pull questions towards their passage?

Research question: in zero-shot cross-lingual retrieval on XQuAD (questions in 12 languages, the
240 English paragraphs as corpus), how does fusing generated queries into the passage vectors
change the cosine similarity between a question and its gold paragraph — and, what decides
retrieval, between the question and the *best wrong* paragraph?

Per question ``i`` with gold paragraph ``g(i)``:

* ``gold_cos[i] = cos(q_i, p_g(i))``;
* ``best_wrong_cos[i] = max_{j ≠ g(i)} cos(q_i, p_j)`` over the whole corpus;
* ``margin[i] = gold_cos[i] − best_wrong_cos[i]``; ``margin > 0`` ⇔ the gold paragraph is the
  cosine top-1, so the share of positive margins is recall@1 of *cosine* retrieval (ties count
  as misses).

Why cosine and not the inner product the index searches with: the paper's fusion stores raw
``(1−α)·p + α·Σq`` vectors, whose length grows with ``‖Σq‖`` and differs from passage to passage.
The inner product mixes "points the right way" with "is long"; cosine isolates the direction,
which is what "alignment" means. Passages (and queries) are therefore L2-normalised here, so
scaling any passage vector changes nothing. Because the two rankings can differ for
un-normalised fused vectors, :class:`AlignmentResult` also records whether the raw inner-product
top-1 is the gold paragraph (``ip_hit``), i.e. the recall@1 the system's flat IP index gives.

Systems are compared on the same questions with a paired test on the per-question margin
(:mod:`xqg.evaluate.significance`: t-test, sign-flip permutation test and bootstrap CI per
language; the macro-averaged version over languages for the overall Δ).

Why ~640 lines: compute and render of one analysis plus the render-only path, kept together
because render reads compute's data layout; the shared helpers are in ``common.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import (
    Rendered,
    SystemSpec,
    fmt_p,
    load_vectors,
    md_table,
    save_figure,
)
from xqg.errors import DataFormatError, XqgError
from xqg.evaluate.mutual_information import unit_rows
from xqg.io import read_json

NAME = "alignment"
QUESTION = (
    "How does generated-query augmentation change the cosine alignment between question and passage "
    "embeddings in zero-shot cross-lingual retrieval on XQuAD (gold cosine, best-wrong cosine, margin)?"
)
#: Per-question quantities that get a distribution summary.
QUANTITIES = ("gold_cos", "best_wrong_cos", "margin", "margin_z")
_CHUNK = 2048  # questions per similarity block: keeps memory at chunk × corpus floats


@dataclass
class AlignmentResult:
    """Per-question alignment numbers for one system (all arrays have one row per question)."""

    gold_cos: np.ndarray
    best_wrong_cos: np.ndarray
    best_wrong_row: np.ndarray
    ip_hit: np.ndarray
    langs: np.ndarray
    cos_std: np.ndarray
    qids: list[str] = field(default_factory=list)
    passage_norms: np.ndarray | None = None

    @property
    def margin(self) -> np.ndarray:
        return self.gold_cos - self.best_wrong_cos

    @property
    def margin_z(self) -> np.ndarray:
        """The margin in units of the question's cosine spread over the corpus (std over passages).

        Fusion moves *every* passage towards question space, which compresses the cosine scale;
        the raw margin can then shrink while the gold passage climbs in rank. Dividing by the
        spread makes the margin invariant to such an affine squeeze of one question's scores.
        """
        return np.divide(self.margin, self.cos_std, out=np.zeros_like(self.margin), where=self.cos_std > 0)

    @property
    def cos_hit(self) -> np.ndarray:
        """The gold paragraph is the strict cosine top-1 (a tie with a wrong paragraph is a miss)."""
        return self.margin > 0

    def subset(self, mask: np.ndarray) -> AlignmentResult:
        qids = [q for q, m in zip(self.qids, mask, strict=True) if m] if self.qids else []
        return AlignmentResult(
            self.gold_cos[mask],
            self.best_wrong_cos[mask],
            self.best_wrong_row[mask],
            self.ip_hit[mask],
            self.langs[mask],
            self.cos_std[mask],
            qids,
            self.passage_norms,
        )

    def summary(self) -> dict[str, Any]:
        """Per-language statistics plus their macro average (mean over languages)."""
        by_lang = {}
        for lang in dict.fromkeys(self.langs.tolist()):
            by_lang[lang] = _stats(self.subset(self.langs == lang))
        keys = next(iter(by_lang.values())).keys() if by_lang else ()
        macro = {k: float(np.mean([s[k] for s in by_lang.values()])) for k in keys if k != "n"}
        macro["n"] = int(self.gold_cos.size)
        return {"by_lang": by_lang, "macro": macro}


def _stats(r: AlignmentResult) -> dict[str, Any]:
    out: dict[str, Any] = {"n": int(r.gold_cos.size)}
    for name in QUANTITIES:
        values = getattr(r, name)
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_median"] = float(np.median(values))
    out["recall_at_1"] = float(r.cos_hit.mean())
    out["ip_recall_at_1"] = float(r.ip_hit.mean())
    return out


def cosine_alignment(
    queries: np.ndarray,
    passages: np.ndarray,
    gold: np.ndarray | Sequence[int],
    langs: np.ndarray | Sequence[str] | None = None,
    *,
    qids: Sequence[str] | None = None,
) -> AlignmentResult:
    """Gold cosine, best-wrong cosine and inner-product top-1 for every question.

    ``queries`` (n, d), ``passages`` (P, d) — any lengths, both are normalised for the cosine —
    ``gold`` (n,) the row of each question's gold passage, ``langs`` (n,) its language (default:
    all ``"all"``). Computed in float64 and clipped to [−1, 1], so identical query and passage
    vectors give cosine 1 to within a few ulps.
    """
    q = np.asarray(queries)
    p = np.asarray(passages)
    if q.ndim != 2 or p.ndim != 2:
        raise XqgError(f"queries and passages must be 2-d arrays, got shapes {q.shape} and {p.shape}")
    if q.shape[1] != p.shape[1]:
        raise XqgError(f"queries have dimension {q.shape[1]} but passages {p.shape[1]}")
    if p.shape[0] < 2:
        raise XqgError("need at least 2 passages: a best wrong passage must exist")
    n = q.shape[0]
    gold_arr = np.asarray(gold)
    if gold_arr.shape != (n,) or not np.issubdtype(gold_arr.dtype, np.integer):
        raise XqgError(f"gold must be {n} integer passage rows, got shape {gold_arr.shape}")
    if n and (gold_arr.min() < 0 or gold_arr.max() >= p.shape[0]):
        raise XqgError(f"gold rows must lie in [0, {p.shape[0]}); got {gold_arr.min()}..{gold_arr.max()}")
    lang_arr = np.asarray(["all"] * n if langs is None else list(langs), dtype=object)
    if lang_arr.shape != (n,):
        raise XqgError(f"langs must have one entry per question ({n}), got {lang_arr.shape[0]}")
    if qids is not None and len(qids) != n:
        raise XqgError(f"qids must have one entry per question ({n}), got {len(qids)}")
    if not (np.isfinite(q).all() and np.isfinite(p).all()):
        raise XqgError("queries or passages contain NaN or infinite values")

    qn, pn = unit_rows(q), unit_rows(p)
    p64 = p.astype(np.float64)
    gold_cos = np.empty(n)
    best_wrong = np.empty(n)
    best_row = np.empty(n, dtype=np.int64)
    ip_hit = np.empty(n, dtype=bool)
    cos_std = np.empty(n)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(n, start + _CHUNK))
        g = gold_arr[rows]
        sims = np.clip(qn[rows] @ pn.T, -1.0, 1.0)
        gold_cos[rows] = sims[np.arange(rows.size), g]
        cos_std[rows] = sims.std(axis=1)
        sims[np.arange(rows.size), g] = -np.inf
        best_row[rows] = sims.argmax(axis=1)
        best_wrong[rows] = sims[np.arange(rows.size), best_row[rows]]
        ip = q[rows].astype(np.float64) @ p64.T
        ip_gold = ip[np.arange(rows.size), g]
        ip[np.arange(rows.size), g] = -np.inf
        ip_hit[rows] = ip_gold > ip.max(axis=1)
    return AlignmentResult(
        gold_cos=gold_cos,
        best_wrong_cos=best_wrong,
        best_wrong_row=best_row,
        ip_hit=ip_hit,
        langs=lang_arr,
        cos_std=cos_std,
        qids=list(qids) if qids is not None else [],
        passage_norms=np.linalg.norm(p64, axis=1),
    )


# -- experiment folders --------------------------------------------------------------------------


@dataclass
class _Judgements:
    gold: dict[str, str]  # query id → gold passage id
    lang: dict[str, str]  # query id → language


def _lang_from_id(qid: str) -> str:
    return qid.rsplit("-", 1)[-1]


def load_judgements(folder: str | Path) -> _Judgements:
    """Gold passage and language per question of an experiment folder.

    The experiment's own ``benchmark/`` folder (what it was actually evaluated on) is preferred;
    without one the XQuAD release is loaded from the shared data. Each question must have exactly
    one relevant passage: "the gold passage" is otherwise undefined.
    """
    from xqg.data.qrels import read_qrels
    from xqg.data.queries import iter_queries

    bench = Path(folder) / "benchmark"
    if (bench / "manifest.json").is_file():
        manifest = read_json(bench / "manifest.json")
        qrels_file = bench / manifest.get("qrels_file", "qrels/all.tsv")
        qrels = read_qrels(qrels_file)
        langs: dict[str, str] = {}
        if (bench / "queries.jsonl").is_file():
            langs = {q.id: q.lang for q in iter_queries(bench / "queries.jsonl") if q.lang}
        source: Path | str = qrels_file
    else:
        from xqg.data.benchmarks.xquad import load_xquad

        b = load_xquad(split="all")
        qrels, langs, source = b.qrels, dict(b.qid_lang), "the XQuAD release"
    gold: dict[str, str] = {}
    for qid, rels in qrels.items():
        relevant = [d for d, r in rels.items() if r > 0]
        if len(relevant) != 1:
            raise DataFormatError(
                source, f"query '{qid}' has {len(relevant)} relevant passages; alignment needs exactly one"
            )
        gold[qid] = relevant[0]
    return _Judgements(gold=gold, lang={q: langs.get(q) or _lang_from_id(q) for q in gold})


def load_system(spec: SystemSpec, split: str = "test", langs: Sequence[str] | None = None) -> AlignmentResult:
    """Alignment of one ``LABEL=FOLDER[:SYSTEM]`` on the folder's ``queries-<split>`` vectors."""
    qids, qvecs = load_vectors(spec.query_dir(split))
    pids, pvecs = load_vectors(spec.passage_dir())
    judged = load_judgements(spec.folder)
    row_of = {pid: i for i, pid in enumerate(pids)}
    keep: list[int] = []
    gold: list[int] = []
    qlangs: list[str] = []
    for i, qid in enumerate(qids):
        if qid not in judged.gold:
            raise XqgError(f"{spec.label}: query '{qid}' of {spec.query_dir(split)} has no judgement")
        lang = judged.lang[qid]
        if langs is not None and lang not in langs:
            continue
        pid = judged.gold[qid]
        if pid not in row_of:
            raise XqgError(f"{spec.label}: gold passage '{pid}' of '{qid}' is not in {spec.passage_dir()}")
        keep.append(i)
        gold.append(row_of[pid])
        qlangs.append(lang)
    if not keep:
        raise XqgError(f"{spec.label}: no {split} questions in languages {', '.join(langs or [])}")
    return cosine_alignment(qvecs[keep], pvecs, np.array(gold), qlangs, qids=[qids[i] for i in keep])


# -- comparison, headline, plots, report -----------------------------------------------------------


def compare(
    result: AlignmentResult, reference: AlignmentResult, *, n_resamples: int = 10_000, seed: int = 0
) -> dict[str, Any]:
    """Δ of every statistic against ``reference`` and paired tests on the per-question margin
    (``margin_test``, the question asked) and on the spread-normalised margin (``margin_z_test``).

    Per language: :func:`~xqg.evaluate.significance.paired_test` (t-test, sign-flip permutation,
    bootstrap CI); overall: :func:`~xqg.evaluate.significance.macro_paired_test`, matching the
    macro average the summaries report.
    """
    from xqg.evaluate.significance import macro_paired_test, paired_test

    if not result.qids or not reference.qids:
        raise XqgError("compare needs question ids on both results")
    groups = dict(zip(result.qids, result.langs.tolist(), strict=True))
    s_a, s_b = result.summary(), reference.summary()
    for lang in s_a["by_lang"]:
        if lang not in s_b["by_lang"]:
            raise XqgError(f"language '{lang}' is missing from the reference system")
    by_lang: dict[str, Any] = {lang: _deltas(st, s_b["by_lang"][lang]) for lang, st in s_a["by_lang"].items()}
    macro: dict[str, Any] = _deltas(s_a["macro"], s_b["macro"])
    for name in ("margin", "margin_z"):
        a = dict(zip(result.qids, getattr(result, name).tolist(), strict=True))
        b = dict(zip(reference.qids, getattr(reference, name).tolist(), strict=True))
        for lang in by_lang:
            ids = [q for q in result.qids if groups[q] == lang]
            test = paired_test(
                {q: a[q] for q in ids},
                {q: b[q] for q in ids if q in b},  # a missing id makes paired_test name it
                n_resamples=n_resamples,
                seed=seed,
            )
            by_lang[lang][f"{name}_test"] = test.to_dict()
        macro[f"{name}_test"] = macro_paired_test(a, b, groups, n_resamples=n_resamples, seed=seed).to_dict()
    return {"by_lang": by_lang, "macro": macro}


def _deltas(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    return {f"delta_{k}": float(a[k] - b[k]) for k in a if k != "n"}


def _trend(deltas: Sequence[float]) -> str:
    if all(d > 0 for d in deltas):
        return "rises"
    if all(d < 0 for d in deltas):
        return "falls"
    return "changes"


def headline(summaries: dict[str, Any], comparisons: dict[str, Any], reference: str) -> str:
    """Two quotable sentences from the data: each system's macro margin (gold − best-wrong cosine)
    against the reference's, with the number of languages where it is higher; then, for the system
    whose gold cosine rises most, how far the best wrong cosine moves with it."""
    if not comparisons:
        return details(summaries, comparisons, reference) + "."
    ref = summaries[reference]["macro"]
    n_langs = len(summaries[reference]["by_lang"])

    def ups(label: str) -> int:
        return sum(1 for d in comparisons[label]["by_lang"].values() if d["delta_margin_mean"] > 0)

    moves = ", ".join(
        f"{label} {summaries[label]['macro']['margin_mean']:.4f} "
        + (f"(higher in {ups(label)}/{n_langs} languages)" if i == 0 else f"({ups(label)}/{n_langs})")
        for i, label in enumerate(comparisons)
    )
    top = max(comparisons, key=lambda lb: comparisons[lb]["macro"]["delta_gold_cos_mean"])
    t = summaries[top]["macro"]
    verb = "rises most" if comparisons[top]["macro"]["delta_gold_cos_mean"] > 0 else "falls least"
    return (
        f"Macro over {n_langs} languages, the margin between gold and best wrong cosine goes from "
        f"{reference}'s {ref['margin_mean']:.4f} to {moves}. "
        f"Where gold cosine {verb} ({top}: {ref['gold_cos_mean']:.3f} → {t['gold_cos_mean']:.3f}), "
        f"best wrong cosine moves {ref['best_wrong_cos_mean']:.3f} → {t['best_wrong_cos_mean']:.3f}."
    )


def details(summaries: dict[str, Any], comparisons: dict[str, Any], reference: str) -> str:
    """Every macro figure in one paragraph (the body's "Details"): how gold cos, best-wrong cos, both
    margins and R@1 move vs the reference, with per-language counts and macro tests."""
    ref = summaries[reference]["macro"]
    n_langs = len(summaries[reference]["by_lang"])
    if not comparisons:
        return (
            f"{reference} (macro over {n_langs} languages): gold cosine {ref['gold_cos_mean']:.3f}, "
            f"best wrong {ref['best_wrong_cos_mean']:.3f}, margin {ref['margin_mean']:.4f}, cosine R@1 "
            f"{ref['recall_at_1']:.3f}; no other system to compare"
        )
    labels = list(comparisons)

    def part(key: str, what: str, fmt: str, test: str | None = None) -> str:
        deltas = [comparisons[lb]["macro"][f"delta_{key}"] for lb in labels]
        vals = ", ".join(format(summaries[lb]["macro"][key], fmt) for lb in labels)
        text = f"{what} {_trend(deltas)} ({format(ref[key], fmt)} → {vals}"
        if test:
            ups = " and ".join(
                f"{sum(1 for d in comparisons[lb]['by_lang'].values() if d[f'delta_{key}'] > 0)}/{n_langs}"
                for lb in labels
            )
            ps = ", ".join(
                fmt_p(comparisons[lb]["macro"][f"{test}_test"]["p_permutation"], eq=True) for lb in labels
            )
            text += f"; higher in {ups} languages; macro test {ps}"
        return text + ")"

    return f"Macro over {n_langs} languages, {reference} → {', '.join(labels)}: " + "; ".join(
        [
            part("gold_cos_mean", "gold cosine", ".3f"),
            part("best_wrong_cos_mean", "best-wrong cosine", ".3f"),
            part("margin_mean", "raw margin", ".4f", "margin"),
            part("margin_z_mean", "spread-normalised margin", ".3f", "margin_z"),
            part("recall_at_1", "cosine R@1", ".3f"),
        ]
    )


def histograms(results: dict[str, AlignmentResult], bins: int) -> dict[str, Any]:
    """Shared bin edges per quantity (over all systems) and counts per system and language."""
    out: dict[str, Any] = {"edges": {}, "counts": {}}
    for name in ("gold_cos", "margin"):
        values = np.concatenate([getattr(r, name) for r in results.values()])
        lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        out["edges"][name] = np.linspace(lo, hi, bins + 1).tolist()
    for label, r in results.items():
        out["counts"][label] = {}
        for lang in dict.fromkeys(r.langs.tolist()):
            sub = r.subset(r.langs == lang)
            out["counts"][label][lang] = {
                name: np.histogram(getattr(sub, name), bins=out["edges"][name])[0].tolist()
                for name in ("gold_cos", "margin")
            }
    return out


def plot_histograms(hist: dict[str, Any], quantity: str, title: str, path: Path) -> None:
    """Small multiples (one panel per language), systems overlaid as step histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.array(hist["edges"][quantity])
    labels = list(hist["counts"])
    langs = list(hist["counts"][labels[0]])
    cols = min(4, len(langs))
    rows = -(-len(langs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), sharex=True, squeeze=False)
    for ax in axes.flat[len(langs) :]:
        ax.set_visible(False)
    for ax, lang in zip(axes.flat, langs, strict=False):
        for label in labels:
            counts = np.array(hist["counts"][label].get(lang, {}).get(quantity, np.zeros(edges.size - 1)))
            ax.stairs(counts, edges, label=label, lw=1.2)
        if quantity == "margin":
            ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_title(lang, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def _table(
    summaries: dict[str, Any], comparisons: dict[str, Any], reference: str, key: str, test: str, fmt: str
) -> str:
    """Per-language table of one statistic: reference value, then value, Δ and p of every other system."""
    labels = list(summaries)
    head = ["lang", reference] + [x for lb in labels[1:] for x in (lb, "Δ", "p")]
    rows = []
    for lang in [*summaries[reference]["by_lang"], "macro"]:

        def pick(d: dict[str, Any], lang: str = lang) -> dict[str, Any]:
            return d["macro"] if lang == "macro" else d["by_lang"][lang]

        row = [f"**{lang}**" if lang == "macro" else lang, format(pick(summaries[reference])[key], fmt)]
        for lb in labels[1:]:
            c = pick(comparisons[lb])
            p = c[f"{test}_test"]["p_permutation"]
            star = "*" if p is not None and p < 0.05 else ""
            row += [format(pick(summaries[lb])[key], fmt), f"{c[f'delta_{key}']:+{fmt}}{star}", fmt_p(p)]
        rows.append(row)
    return "\n".join(md_table(head, rows, "l" * len(head)))


def _cos_table(summaries: dict[str, Any]) -> str:
    """Per language and system: mean gold cos, mean best-wrong cos, R@1 by cosine / inner product."""
    labels = list(summaries)
    head = ["lang"] + [f"{lb} {x}" for lb in labels for x in ("gold", "best wrong", "R@1 cos / ip")]
    rows = []
    first = summaries[labels[0]]
    for lang in [*first["by_lang"], "macro"]:
        row = [f"**{lang}**" if lang == "macro" else lang]
        for lb in labels:
            st = summaries[lb]["macro"] if lang == "macro" else summaries[lb]["by_lang"][lang]
            row += [
                f"{st['gold_cos_mean']:.3f}",
                f"{st['best_wrong_cos_mean']:.3f}",
                f"{st['recall_at_1']:.3f} / {st['ip_recall_at_1']:.3f}",
            ]
        rows.append(row)
    return "\n".join(md_table(head, rows, "l" * len(head)))


def _distribution_table(summaries: dict[str, Any]) -> str:
    head = ["system"] + [f"{q} mean / median" for q in QUANTITIES]
    rows = [
        [label] + [f"{s['macro'][f'{q}_mean']:.4f} / {s['macro'][f'{q}_median']:.4f}" for q in QUANTITIES]
        for label, s in summaries.items()
    ]
    return "\n".join(md_table(head, rows, "l" * len(head)))


def analyse_alignment(
    specs: Sequence[SystemSpec],
    *,
    split: str = "test",
    langs: Sequence[str] | None = None,
    bins: int = 40,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, AlignmentResult]]:
    """Load every system, summarise it and compare it with the first (the reference)."""
    if not specs:
        raise XqgError("give at least one --system LABEL=FOLDER[:SYSTEM]")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise XqgError(f"system labels must be unique, got {', '.join(labels)}")
    if bins < 1:
        raise XqgError(f"--bins must be at least 1, got {bins}")
    results = {s.label: load_system(s, split, langs) for s in specs}
    reference = labels[0]
    summaries = {label: r.summary() for label, r in results.items()}
    comparisons = {
        label: compare(r, results[reference], n_resamples=n_resamples, seed=seed)
        for label, r in results.items()
        if label != reference
    }
    data = {
        "split": split,
        "reference": reference,
        "langs": list(summaries[reference]["by_lang"]),
        "systems": {
            s.label: {
                "folder": str(s.folder),
                "system": s.system,
                "passages": int(results[s.label].passage_norms.size),  # type: ignore[union-attr]
                "passage_norm": _norm_stats(results[s.label].passage_norms),
                **summaries[s.label],
            }
            for s in specs
        },
        "comparisons": comparisons,
        "histograms": histograms(results, bins),
        "test": {"statistic": "per-question margin", "n_resamples": n_resamples, "seed": seed},
    }
    data["headline"] = headline(summaries, comparisons, reference)
    return data, results


def _norm_stats(norms: np.ndarray | None) -> dict[str, float]:
    if norms is None or norms.size == 0:
        return {}
    return {"mean": float(norms.mean()), "min": float(norms.min()), "max": float(norms.max())}


def compute(specs: Sequence[SystemSpec], **options: Any) -> dict[str, Any]:
    """The analysis' plain data (``analysis.json``'s ``data``); options as :func:`analyse_alignment`'s."""
    return analyse_alignment(specs, **options)[0]


def render(data: dict[str, Any], out_dir: str | Path) -> Rendered:
    """Headline, Markdown body and the two histogram figures (drawn into ``out_dir``) from the data."""
    split, n_resamples, seed = data["split"], data["test"]["n_resamples"], data["test"]["seed"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = ["gold_cos.png", "margin.png"]
    plot_histograms(
        data["histograms"], "gold_cos", "cos(question, gold passage) per language", out / figures[0]
    )
    plot_histograms(
        data["histograms"], "margin", "margin = gold cos − best wrong cos (> 0: top-1 hit)", out / figures[1]
    )
    summaries = {
        label: {k: data["systems"][label][k] for k in ("by_lang", "macro")} for label in data["systems"]
    }
    ref = data["reference"]
    head = headline(summaries, data["comparisons"], ref)
    data["headline"] = head  # the data records the headline it was shown with
    norms = ", ".join(
        "{} {mean:.3f} [{min:.3f}, {max:.3f}]".format(label, **s["passage_norm"])
        for label, s in data["systems"].items()
    )
    body = "\n".join(
        [
            f"**Details.** {details(summaries, data['comparisons'], ref)}.",
            "",
            f"Split: `{split}`; {data['systems'][ref]['macro']['n']} questions per system; "
            f"corpus: {data['systems'][ref]['passages']} passages. Reference system: `{ref}`.",
            "",
            "Cosine normalises both sides, so only the *direction* of a (fused) passage vector counts; "
            f"passage vector lengths (mean [min, max]): {norms}. `R@1 (cos / ip)` is the share of questions "
            "whose gold passage is the top-1 by cosine (= margin > 0) and by the raw inner product the "
            "system's index uses; they differ only for un-normalised fused vectors.",
            "",
            "## Per language: mean margin (gold cos − best wrong cos)",
            "",
            "Δ against the reference; p: paired sign-flip permutation test on the per-question value "
            f"({n_resamples} resamples, seed {seed}); `*` p < 0.05; the macro row uses the macro-averaged "
            "test.",
            "",
            _table(summaries, data["comparisons"], ref, "margin_mean", "margin", ".4f"),
            "",
            "## Per language: spread-normalised margin "
            "(margin / std of the question's cosines over the corpus)",
            "",
            "Fusion moves every passage towards question space and so squeezes each question's cosine "
            "scale; this margin is measured in units of that scale.",
            "",
            _table(summaries, data["comparisons"], ref, "margin_z_mean", "margin_z", ".3f"),
            "",
            "## Per language: gold and best-wrong cosine, recall@1",
            "",
            _cos_table(summaries),
            "",
            "## Distributions (macro over languages)",
            "",
            _distribution_table(summaries),
        ]
    )
    return Rendered(head, body, figures)


def run_alignment(
    specs: Sequence[SystemSpec],
    out_dir: str | Path,
    *,
    split: str = "test",
    langs: Sequence[str] | None = None,
    bins: int = 40,
    n_resamples: int = 10_000,
    seed: int = 0,
    command: str | None = None,
) -> Path:
    """Run the analysis and write its folder (analysis.json/md, two PNGs, manifest)."""
    data = compute(specs, split=split, langs=langs, bins=bins, n_resamples=n_resamples, seed=seed)
    shown = render(data, out_dir)
    out = Path(out_dir)
    return shown.write(
        out,
        name=NAME,
        question=QUESTION,
        data=data,
        command=command,
        config={
            "systems": [f"{s.label}={s.folder}:{s.system}" for s in specs],
            "split": split,
            "langs": list(langs) if langs else None,
            "bins": bins,
            "n_resamples": n_resamples,
            "seed": seed,
        },
        counts={"systems": len(specs), "questions": int(data["systems"][data["reference"]]["macro"]["n"])},
    )
