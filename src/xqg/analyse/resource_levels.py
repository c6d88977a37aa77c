"""Do gains differ between low- and high-resource languages? Recall@k, precision@k and R@kt by group.

**Grouping.** Languages are grouped by the taxonomy of Joshi et al. (2020), *The State and Fate of
Linguistic Diversity and Inclusion in the NLP World* (ACL 2020, https://aclanthology.org/2020.acl-main.560),
which puts every language in one of six classes by how much labelled and unlabelled data it had
(0 "The Left-Behinds" … 5 "The Winners"). ``high`` = class ≥ ``high_min_class`` (default 4, i.e.
classes 4–5), ``low`` = the rest (0–3). The classes below are the published ``lang2tax.txt``
(https://microsoft.github.io/linguisticdiversity/assets/lang2tax.txt), which lists language
*names*. This machine is offline, so the file itself was not fetched; the classes were read from two
independent public copies that map it to ISO codes and agree on every language used here:
``hamid-amir/data_lang2vec`` ``data/lang2tax.txt.codes`` (commit 7feb3a81, the DistaLs database
input; lines ``iso,class,name``) and a FLORES tier script that lists the same file by ISO 639-3 code
per class. Where a mapping from a benchmark code to a ``lang2tax`` name involves a judgement, it is
recorded in :attr:`LanguageInfo.note` and printed in the analysis.

**Second, objective signal.** Wikipedia size per language, from the List of Wikipedias (meta.wikimedia.org,
accessed August 2020: article count) and the 2020-10-01 dumps (whitespace tokens after the XLM
preprocessing script), as tabulated in ``mayhewsw/multilingual-data-stats`` ``wiki/wiki.csv``
(commit 0adee01f). Article counts are inflated by bot-made stubs in some editions (Swedish, Vietnamese,
Cebuano), so the token count is the better size measure; both are rough, dated numbers, used only
for a rank correlation with the gains, never to form the groups.

**Metrics.** Per query, by :func:`xqg.evaluate.metrics.evaluate_qrels` (ranx): ``recall@k`` =
relevant in the top k / all relevant, ``precision@k`` = relevant in the top k / k, ``mrr@10``. On
XQuAD every question has exactly one relevant paragraph, so precision@k = recall@k / k there; it is
still computed by the general definition (and the identity is checked and reported), so runs with
several relevant documents per query are scored correctly. ``R@kt`` (XOR-Retrieve: an answer string
within the first k tokens of the ranked passages) by :mod:`xqg.evaluate.rkt` with the official rules.

**Aggregation and tests.** A language's value is the mean over its queries; a group's value is the
macro average over its languages (each language weighs the same, as the field's averages do). Gains
are system − baseline on the same queries. Per language: a paired sign-flip permutation test; per
group: :func:`xqg.evaluate.significance.macro_paired_test` (the same statistic for the macro
average, with a stratified bootstrap CI). Whether the *gain* differs between the groups is tested
with languages as the units: the low − high difference of mean per-language gains against every
assignment of the same number of languages to ``low`` (exact; with 12 languages and 3 low ones there
are 220 assignments, so p cannot go below 1/220 — few languages give little power, and the analysis
says so).

**Excluded languages.** ``exclude_langs`` (``--exclude-langs``) keeps a language in the per-language
tables and the plot, marked "(excluded)", but out of everything computed over groups: group means,
per-group tests, the gap test, the threshold sensitivity, the Wikipedia correlation and the headline.
The case it is for: in an xQG experiment English is the control — no English queries are generated,
so English questions can gain nothing from augmentation, and counting English as high-resource pulls
the high group's mean gain towards zero for a reason that has nothing to do with resources.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import fmt_p, save_figure
from xqg.errors import XqgError
from xqg.evaluate.significance import group_gap_test
from xqg.languages import (
    JOSHI_CITATION,
    JOSHI_CLASS_NAMES,
    JOSHI_SOURCE,
    RESOURCE_ALIASES,
    RESOURCE_LEVELS,
    WIKI_SOURCE,
    LanguageInfo,  # noqa: F401 - re-exported: the old import path
    joshi_class,
    resource_code,
)
from xqg.types import Qrels, Run

GROUPS: tuple[str, ...] = ("low", "high")
DEFAULT_HIGH_MIN_CLASS = 4
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 20)
XQUAD_RKT_KS: tuple[int, ...] = (100, 500)
"""XQuAD paragraphs are ~150 tokens, so the experiment's R@100t / R@500t are the informative ks."""
XOR_RKT_KS: tuple[int, ...] = (2000, 5000)
"""The official XOR-Retrieve ks."""
MRR_K = 10

#: The low−high gap test with languages as units now lives in :mod:`xqg.evaluate.significance`.
language_gap_test = group_gap_test

# The classes, Wikipedia sizes and their sources live in :mod:`xqg.languages`; the old names stay.
LANGUAGES = RESOURCE_LEVELS
LANG_ALIASES = RESOURCE_ALIASES
canonical_lang = resource_code


def _check_threshold(high_min_class: int) -> None:
    if (
        isinstance(high_min_class, bool)
        or not isinstance(high_min_class, int)
        or not 1 <= high_min_class <= 5
    ):
        raise XqgError(f"high_min_class must be an integer class 1-5, got {high_min_class!r}")


def resource_group(lang: str, high_min_class: int = DEFAULT_HIGH_MIN_CLASS) -> str:
    """``"high"`` if the language's class is ≥ ``high_min_class``, else ``"low"``."""
    _check_threshold(high_min_class)
    return "high" if joshi_class(lang) >= high_min_class else "low"


def group_languages(
    langs: Iterable[str], high_min_class: int = DEFAULT_HIGH_MIN_CLASS
) -> dict[str, list[str]]:
    """``{"low": [...], "high": [...]}`` in the order given (codes as given, duplicates dropped)."""
    out: dict[str, list[str]] = {g: [] for g in GROUPS}
    for lang in dict.fromkeys(langs):
        out[resource_group(lang, high_min_class)].append(lang)
    return out


def benchmark_languages() -> dict[str, tuple[str, ...]]:
    """The languages of the three benchmarks this grouping is documented for, as their loaders spell them."""
    from xqg.languages import MKQA_LANGS, XOR_LANGS, XQUAD_LANGS

    return {"xquad": XQUAD_LANGS, "xor-tydi": XOR_LANGS, "mkqa": MKQA_LANGS}


def grouping_data(high_min_class: int = DEFAULT_HIGH_MIN_CLASS) -> dict[str, Any]:
    """The grouping as JSON-ready data: every language, its class, group, sizes and notes."""
    _check_threshold(high_min_class)
    benches = benchmark_languages()
    langs = {}
    for code, info in LANGUAGES.items():
        row = asdict(info)
        row["class_name"] = JOSHI_CLASS_NAMES[info.joshi_class]
        row["group"] = resource_group(code, high_min_class)
        row["benchmarks"] = [b for b, ls in benches.items() if code in {canonical_lang(x) for x in ls}]
        langs[code] = row
    return {
        "taxonomy": JOSHI_CITATION,
        "source": JOSHI_SOURCE,
        "wikipedia_source": WIKI_SOURCE,
        "high_min_class": high_min_class,
        "rule": f"high = class >= {high_min_class}, low = class < {high_min_class}",
        "languages": langs,
        "benchmarks": {b: group_languages(ls, high_min_class) for b, ls in benches.items()},
    }


def grouping_markdown(high_min_class: int = DEFAULT_HIGH_MIN_CLASS) -> str:
    """A table of every language's class, group and Wikipedia size, plus the notes."""
    data = grouping_data(high_min_class)
    lines = [
        "| lang | language | Joshi class | group | Wikipedia articles (2020) | Wikipedia tokens (2020) "
        "| in |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    rows = sorted(data["languages"].values(), key=lambda r: (-r["joshi_class"], r["code"]))
    for r in rows:
        lines.append(
            f"| {r['code']} | {r['name']} | {r['joshi_class']} ({r['class_name']}) | {r['group']} | "
            f"{r['wiki_articles']:,} | {r['wiki_tokens']:,} | {', '.join(r['benchmarks'])} |"
        )
    notes = [f"- **{r['code']}**: {r['note']}." for r in rows if r["note"]]
    return "\n".join(
        [
            *lines,
            "",
            f"Rule: {data['rule']} (`--high-min-class`). Classes: {JOSHI_CITATION}; from {JOSHI_SOURCE}. "
            f"Wikipedia sizes: {WIKI_SOURCE}.",
            "",
            "Judgement calls and caveats:",
            "",
            *notes,
            "- No class here is in doubt between the two copies of `lang2tax.txt`; the primary file could "
            "not be fetched on this offline machine, so treat the source line above as the provenance.",
        ]
    )


# --- excluded languages --------------------------------------------------------------------------

EXCLUSION_SCOPE = (
    "shown in the per-language tables and the plot, but left out of the group means, the per-group paired "
    "tests, the low−high gap test, the threshold sensitivity, the Wikipedia correlation and the headline"
)


def check_exclude(langs: Iterable[str]) -> tuple[str, ...]:
    """Canonical codes of ``--exclude-langs``, in the order given, duplicates dropped.

    An unknown code is an error rather than a no-op: a typo (``eng`` for ``en``) would otherwise leave
    the control language silently inside the high-resource group — the dilution the option exists to
    prevent.
    """
    out: list[str] = []
    for lang in langs:
        if not lang.strip():
            continue
        try:
            code = canonical_lang(lang)
        except XqgError:
            raise XqgError(
                f"--exclude-langs: unknown language '{lang}' (known: {' '.join(sorted(LANGUAGES))})"
            ) from None
        if code not in out:
            out.append(code)
    return tuple(out)


def generated_langs(folder: str | Path) -> list[str] | None:
    """Languages an ``xqg experiment`` folder generated queries in (``generated/config.json``), or ``None``.

    Used only as evidence for *why* a language is excluded: a language with no generated queries has no
    query-augmented passages of its own, so its questions measure the control condition.
    """
    import json

    try:
        cfg = json.loads((Path(folder) / "generated" / "config.json").read_text(encoding="utf-8"))
        langs = cfg["config"]["generator"]["langs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(langs, list) or not all(isinstance(x, str) for x in langs):
        return None
    return [LANG_ALIASES.get(x.strip().lower(), x.strip().lower()) for x in langs]


def exclusion_reason(
    exclude: Sequence[str], reason: str | None, generated: Mapping[str, list[str] | None]
) -> str:
    """Why the languages are excluded: the user's ``reason`` if given, else what the experiment folders show.

    ``generated`` maps each experiment folder to the languages it generated queries in (``None`` when
    unknown); a language absent from every known list is stated to be the no-generation control.
    """
    if reason and reason.strip():
        return reason.strip()
    if not generated:
        return "excluded by --exclude-langs; no --exclude-reason given"
    known = {folder: langs for folder, langs in generated.items() if langs is not None}
    if not known:
        return (
            "excluded by --exclude-langs; no --exclude-reason given, and the experiment folders have no "
            "readable generated/config.json to show which languages got generated queries"
        )
    parts = []
    for lang in exclude:
        if all(lang not in langs for langs in known.values()):
            parts.append(
                f"no queries were generated in {lang}, so {lang} questions can gain nothing from query "
                f"augmentation: {lang} is the experiment's control"
            )
        else:
            parts.append(f"{lang} was excluded by --exclude-langs although queries were generated in it")
    return "; ".join(parts)


def generated_evidence(generated: Mapping[str, list[str] | None]) -> str:
    """``"FOLDER generated queries in ar, de, …"`` for each folder whose generation languages are known."""
    return "; ".join(
        f"{folder} generated queries in {', '.join(langs) or 'no language'}"
        for folder, langs in generated.items()
        if langs is not None
    )


# --- per-query scores ----------------------------------------------------------------------------


@dataclass
class SystemScores:
    """One system's per-query values: ``per_query[metric][qid]`` (``None`` = not counted)."""

    label: str
    per_query: dict[str, dict[str, float | None]]
    qid_lang: dict[str, str]
    info: dict[str, Any] = field(default_factory=dict)


def qrels_metric_names(ks: Sequence[int], mrr_k: int | None = MRR_K) -> list[str]:
    """``recall@k`` and ``precision@k`` for every k, then ``mrr@mrr_k``."""
    names = [f"recall@{k}" for k in ks] + [f"precision@{k}" for k in ks]
    return names + ([f"mrr@{mrr_k}"] if mrr_k else [])


def check_ks(ks: Sequence[int], what: str = "k") -> tuple[int, ...]:
    out = tuple(ks)
    if not out:
        raise XqgError(f"give at least one {what}")
    for k in out:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise XqgError(f"{what} must be positive integers, got {k!r}")
    if len(set(out)) != len(out):
        raise XqgError(f"duplicate {what} in {list(out)}")
    return out


def qrels_scores(
    label: str,
    run: Run,
    qrels: Qrels,
    qid_lang: Mapping[str, str],
    ks: Sequence[int] = DEFAULT_KS,
    *,
    mrr_k: int | None = MRR_K,
    info: dict[str, Any] | None = None,
) -> SystemScores:
    """Per-query recall@k, precision@k (and MRR) of ``run`` for every query in ``qrels`` (ranx)."""
    from xqg.evaluate.metrics import evaluate_qrels

    no_lang = [q for q in qrels if q not in qid_lang]
    if no_lang:
        raise XqgError(f"{label}: {len(no_lang)} judged query id(s) have no language, e.g. {no_lang[:3]}")
    values = evaluate_qrels(run, qrels, qrels_metric_names(check_ks(ks), mrr_k))
    return SystemScores(
        label,
        {m: dict(v) for m, v in values.items()},
        {q: canonical_lang(qid_lang[q]) for q in qrels},
        dict(info or {}),
    )


def precision_is_recall_over_k(scores: SystemScores, qrels: Qrels, ks: Sequence[int]) -> bool | None:
    """Whether P@k = R@k / k for every query (true when each query has exactly one relevant document).

    ``None`` when some query has ≠ 1 relevant document (the identity is then not expected).
    """
    if any(sum(1 for r in judged.values() if r > 0) != 1 for judged in qrels.values()):
        return None
    for k in ks:
        rec, prec = scores.per_query[f"recall@{k}"], scores.per_query[f"precision@{k}"]
        for q, r in rec.items():
            if r is not None and abs((prec[q] or 0.0) - r / k) > 1e-12:
                return False
    return True


def exact_run(
    query_ids: Sequence[str],
    queries: np.ndarray,
    passage_ids: Sequence[str],
    passages: np.ndarray,
    depth: int,
    *,
    batch: int = 1024,
) -> Run:
    """Exhaustive inner-product search: the top ``depth`` passages per query (plus ties at the cut).

    The score is the system's own inner product, whatever the vectors' norms (fused passage
    vectors are not unit length; that is part of the system). Documents tied with the last kept
    score are all kept so xqg's (score, doc id) tie-break decides their order, not argpartition
    (:func:`xqg.search.exact_top_k` with ``keep_ties``); each query's passages are in rank order.
    """
    from xqg.search import exact_top_k

    if queries.ndim != 2 or passages.ndim != 2 or queries.shape[1] != passages.shape[1]:
        raise XqgError(f"query vectors {queries.shape} and passage vectors {passages.shape} do not match")
    if len(query_ids) != queries.shape[0] or len(passage_ids) != passages.shape[0]:
        raise XqgError("ids and vectors differ in length")
    if depth < 1:
        raise XqgError(f"depth must be ≥ 1, got {depth}")
    pt = np.ascontiguousarray(passages, dtype=np.float32).T
    run: Run = {}
    for start in range(0, len(query_ids), batch):
        block = np.ascontiguousarray(queries[start : start + batch], dtype=np.float32) @ pt
        for i, keep in enumerate(exact_top_k(block, depth, keep_ties=True)):
            run[query_ids[start + i]] = {passage_ids[j]: float(block[i, j]) for j in keep}
    return run


def rkt_scores(
    label: str,
    run: Run,
    gold: Sequence[Any],
    passages: Mapping[str, Any],
    ks: Sequence[int],
    *,
    passage_text: str = "text",
    info: dict[str, Any] | None = None,
) -> SystemScores:
    """Per-query R@kt hits (1.0/0.0, ``None`` = not counted by the official rules)."""
    from xqg.evaluate.rkt import evaluate_rkt

    res = evaluate_rkt(run, gold, check_ks(ks, "R@kt k"), passages, passage_text=passage_text)  # type: ignore[arg-type]
    extra = {
        "skipped_yes_no": len(res.skipped_yes_no),
        "missing_ids": len(res.missing_ids),
        "unknown_ids": len(res.unknown_ids),
    }
    return SystemScores(
        label,
        res.per_query_by_name(),
        {q.id: canonical_lang(q.lang) for q in gold},
        {**(info or {}), **extra},
    )


def merge_scores(a: SystemScores, b: SystemScores) -> SystemScores:
    """One system's qrels metrics and R@kt together (same label; languages must agree)."""
    for q, lang in b.qid_lang.items():
        if a.qid_lang.get(q, lang) != lang:
            raise XqgError(f"{a.label}: query {q!r} has language {a.qid_lang[q]} and {lang}")
    return SystemScores(
        a.label, {**a.per_query, **b.per_query}, {**b.qid_lang, **a.qid_lang}, {**a.info, **b.info}
    )


# --- aggregation and tests -----------------------------------------------------------------------


def language_means(
    values: Mapping[str, float | None], qid_lang: Mapping[str, str]
) -> tuple[dict[str, float], dict[str, int]]:
    """Mean per language over the counted queries, and the counts (languages in first-seen order)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for q, v in values.items():
        if v is None:
            continue
        lang = qid_lang[q]
        sums[lang] = sums.get(lang, 0.0) + v
        counts[lang] = counts.get(lang, 0) + 1
    return {lang: sums[lang] / counts[lang] for lang in sums}, counts


def group_macro(
    per_lang: Mapping[str, float], high_min_class: int = DEFAULT_HIGH_MIN_CLASS
) -> dict[str, float | None]:
    """Macro average over the languages of each group (``None`` when a group has no language)."""
    groups = group_languages(per_lang, high_min_class)
    return {
        g: (math.fsum(per_lang[x] for x in groups[g]) / len(groups[g]) if groups[g] else None) for g in GROUPS
    }


def threshold_sensitivity(
    gains: Mapping[str, float], thresholds: Sequence[int] = (2, 3, 4, 5), *, seed: int = 0
) -> list[dict[str, Any]]:
    """The low/high gain gap at other class thresholds (macro over languages), so a conclusion that
    only holds at the chosen cut is visible as such. Thresholds leaving a group empty are skipped."""
    out = []
    for t in thresholds:
        group_of = {x: resource_group(x, t) for x in gains}
        gap = group_gap_test(gains, group_of, seed=seed)
        if gap is None:
            continue
        low = [x for x in gains if group_of[x] == "low"]
        high = [x for x in gains if group_of[x] == "high"]
        out.append(
            {
                "high_min_class": t,
                "low": low,
                "high": high,
                "low_gain": math.fsum(gains[x] for x in low) / len(low),
                "high_gain": math.fsum(gains[x] for x in high) / len(high),
                **gap,
            }
        )
    return out


def wiki_correlation(gains: Mapping[str, float]) -> dict[str, Any] | None:
    """Spearman rank correlation of per-language gain with Wikipedia tokens (``None`` if undefined)."""
    langs = sorted(gains)
    if len(langs) < 3 or len({round(gains[x], 15) for x in langs}) < 2:
        return None
    import warnings

    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = spearmanr([LANGUAGES[x].wiki_tokens for x in langs], [gains[x] for x in langs])
    rho, p = float(res.statistic), float(res.pvalue)
    return {
        "rho": None if math.isnan(rho) else rho,
        "p": None if math.isnan(p) else p,
        "n_languages": len(langs),
    }


def _paired_values(
    base: SystemScores, system: SystemScores, metric: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Counted values of both systems on the queries both count (R@kt may skip different ones)."""
    a = {q: v for q, v in system.per_query[metric].items() if v is not None}
    b = {q: v for q, v in base.per_query[metric].items() if v is not None}
    common = set(a) & set(b)
    if not common:
        raise XqgError(f"{system.label} and {base.label} share no scored query for {metric}")
    return {q: a[q] for q in common}, {q: b[q] for q in common}


def compare(
    base: SystemScores,
    system: SystemScores,
    metrics: Sequence[str],
    *,
    high_min_class: int = DEFAULT_HIGH_MIN_CLASS,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Gains of ``system`` over ``base`` per language and per group, with paired tests, for each metric.

    Languages in ``exclude`` (canonical codes) keep their per-language row (marked ``excluded``) but
    take no part in the groups, the gap test, the threshold sensitivity or the Wikipedia correlation.
    """
    from xqg.evaluate.significance import macro_paired_test, paired_test

    excluded = set(exclude)
    out: dict[str, Any] = {}
    for metric in metrics:
        a, b = _paired_values(base, system, metric)
        lang_of = {q: base.qid_lang[q] for q in a}
        by_lang: dict[str, list[str]] = {}
        for q in sorted(a):
            by_lang.setdefault(lang_of[q], []).append(q)
        per_language: dict[str, Any] = {}
        for lang, qs in by_lang.items():
            r = paired_test(
                {q: a[q] for q in qs},
                {q: b[q] for q in qs},
                method="permutation",
                n_resamples=n_resamples,
                seed=seed,
                confidence=None,
            )
            per_language[lang] = {
                "n": r.n,
                "baseline": r.mean_b,
                "system": r.mean_a,
                "gain": r.delta,
                "p": r.p_permutation,
                "excluded": lang in excluded,
            }
        groups = group_languages([x for x in by_lang if x not in excluded], high_min_class)
        per_group: dict[str, Any] = {}
        for g in GROUPS:
            qs = [q for lang in groups[g] for q in by_lang[lang]]
            if not qs:
                per_group[g] = None
                continue
            r = macro_paired_test(
                {q: a[q] for q in qs},
                {q: b[q] for q in qs},
                {q: lang_of[q] for q in qs},
                n_resamples=n_resamples,
                seed=seed,
                confidence=confidence,
            )
            d = r.to_dict()
            d.update(
                langs=groups[g],
                baseline=r.mean_b,
                system=r.mean_a,
                gain=r.delta,
                relative_gain=(r.delta / r.mean_b) if r.mean_b else None,
                p=r.p_permutation,
            )
            per_group[g] = d
        gains = {lang: v["gain"] for lang, v in per_language.items() if lang not in excluded}
        out[metric] = {
            "per_language": per_language,
            "per_group": per_group,
            "gap": group_gap_test(
                gains,
                {x: resource_group(x, high_min_class) for x in gains},
                n_resamples=n_resamples,
                seed=seed,
            ),
            "wiki_spearman": wiki_correlation(gains),
            "threshold_sensitivity": threshold_sensitivity(gains, seed=seed),
        }
    return out


def summarise(
    systems: Sequence[SystemScores],
    metrics: Sequence[str],
    *,
    high_min_class: int = DEFAULT_HIGH_MIN_CLASS,
    n_resamples: int = 10_000,
    seed: int = 0,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """Per-language and per-group values of every system, and comparisons of each with the first.

    ``exclude``: language codes (see :func:`check_exclude`) reported per language but left out of every
    group statistic — e.g. English in an xQG experiment, where no English queries are generated, so
    English can only dilute the high-resource group's gain. ``excluded`` in the result lists those
    present here; a code absent from these systems' queries is ignored here (another input path of the
    same analysis may have it; :func:`run_analysis` checks that each one occurs somewhere).
    """
    excluded = set(check_exclude(exclude))
    if not systems:
        raise XqgError("no system to summarise")
    labels = [s.label for s in systems]
    if len(set(labels)) != len(labels):
        raise XqgError(f"system labels must be unique, got {labels}")
    per_language: dict[str, Any] = {}
    per_group: dict[str, Any] = {}
    counts: dict[str, dict[str, int]] = {}
    for s in systems:
        per_language[s.label], per_group[s.label] = {}, {}
        for m in metrics:
            if m not in s.per_query:
                raise XqgError(f"{s.label}: no values for {m}")
            means, n = language_means(s.per_query[m], s.qid_lang)
            per_language[s.label][m] = means
            kept = {x: v for x, v in means.items() if x not in excluded}
            per_group[s.label][m] = group_macro(kept, high_min_class)
            counts.setdefault(m, n)
    langs = list(dict.fromkeys(x for s in systems for m in metrics for x in per_language[s.label][m]))
    grouped = [x for x in langs if x not in excluded]
    if langs and not grouped:
        raise XqgError(f"--exclude-langs leaves no language to group (languages here: {', '.join(langs)})")
    base = systems[0]
    comparisons = {
        s.label: compare(
            base,
            s,
            metrics,
            high_min_class=high_min_class,
            n_resamples=n_resamples,
            seed=seed,
            exclude=sorted(excluded),
        )
        for s in systems[1:]
    }
    return {
        "baseline": base.label,
        "systems": {s.label: s.info for s in systems},
        "metrics": list(metrics),
        "langs": langs,
        "groups": group_languages(grouped, high_min_class),
        "excluded": [x for x in langs if x in excluded],
        "high_min_class": high_min_class,
        "counts": counts,
        "per_language": per_language,
        "per_group": per_group,
        "comparisons": comparisons,
    }


# --- the two input paths -------------------------------------------------------------------------


def xquad_scores(
    spec: Any,
    bench: Any,
    ks: Sequence[int],
    *,
    split: str = "test",
    rkt_ks: Sequence[int] = XQUAD_RKT_KS,
    depth: int = 100,
    passage_text: str = "text",
) -> SystemScores:
    """Score one ``LABEL=FOLDER[:SYSTEM]`` on XQuAD: exact search of its query vectors over its passages."""
    from xqg.analyse.common import load_vectors

    qids, q = load_vectors(spec.query_dir(split))
    pids, p = load_vectors(spec.passage_dir())
    unknown = [x for x in qids if x not in bench.qrels]
    if unknown:
        raise XqgError(
            f"{spec.label}: {len(unknown)} query id(s) of {spec.query_dir(split)} are not XQuAD {split} "
            f"questions, e.g. {unknown[:3]} (was the folder made on another split?)"
        )
    pid_set = set(pids)
    missing = sorted({d for x in qids for d in bench.qrels[x] if d not in pid_set})
    if missing:
        raise XqgError(
            f"{spec.label}: {len(missing)} gold paragraph(s) have no passage vector, e.g. {missing[:3]}"
        )
    run = exact_run(qids, q, pids, p, max(depth, *ks))
    qrels = {x: bench.qrels[x] for x in qids}
    info = {
        "folder": str(spec.folder),
        "system": spec.system,
        "queries": str(spec.query_dir(split)),
        "passages": str(spec.passage_dir()),
        "n_queries": len(qids),
        "n_passages": len(pids),
    }
    scores = qrels_scores(spec.label, run, qrels, bench.qid_lang, ks, info=info)
    scores.info["precision_is_recall_over_k"] = precision_is_recall_over_k(scores, qrels, ks)
    if rkt_ks:
        qid_set = set(qids)
        gold = [aq for lang in bench.langs for aq in bench.answer_queries(lang) if aq.id in qid_set]
        passages = {x.id: x for x in bench.corpus}
        scores = merge_scores(
            scores, rkt_scores(spec.label, run, gold, passages, rkt_ks, passage_text=passage_text)
        )
    return scores


def read_passages(corpus: str | Path, wanted: set[str], passage_text: str = "text") -> dict[str, str]:
    """Texts of the ``wanted`` doc ids, streaming the corpus once (large corpora stay out of memory)."""
    from xqg.data.corpus import iter_corpus
    from xqg.evaluate.rkt import passage_string

    if not Path(corpus).is_file():
        raise XqgError(f"corpus {corpus} does not exist")
    return {
        p.id: passage_string(p, passage_text)  # type: ignore[arg-type]
        for p in iter_corpus(corpus, check_unique=False)
        if p.id in wanted
    }


def parse_run_arg(text: str) -> tuple[str, Path]:
    """``LABEL=FILE`` or ``FILE`` (label = the file's stem, or folder name for a search folder)."""
    label, sep, rest = text.partition("=")
    if sep and label and rest and "/" not in label:
        return label, Path(rest)
    path = Path(text)
    return (path.name if path.is_dir() else path.stem) or text, path


def xor_scores(
    runs: Sequence[tuple[str, str | Path]],
    queries: str | Path,
    corpus: str | Path,
    rkt_ks: Sequence[int] = XOR_RKT_KS,
    *,
    passage_text: str = "text",
) -> list[SystemScores]:
    """R@kt of TREC/JSONL runs against XOR-TyDi-format gold (``answers``) and the corpus they searched."""
    from xqg.data.xor import read_xor
    from xqg.evaluate.report import read_run

    gold = read_xor(queries)
    if not gold:
        raise XqgError(f"{queries}: no questions")
    for q in gold:
        canonical_lang(q.lang)
    loaded = [(label, Path(path), read_run(path)) for label, path in runs]
    wanted = {d for _, _, run in loaded for docs in run.values() for d in docs}
    passages = read_passages(corpus, wanted, passage_text)
    return [
        rkt_scores(
            label,
            run,
            gold,
            passages,
            rkt_ks,
            passage_text=passage_text,
            info={
                "run": str(path),
                "n_run_queries": len(run),
                "queries": str(queries),
                "corpus": str(corpus),
            },
        )
        for label, path, run in loaded
    ]


# --- presentation --------------------------------------------------------------------------------


def _fmt(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def _mark(p: float | None, alpha: float) -> str:
    return "*" if p is not None and p < alpha else ""


def primary_metric(metrics: Sequence[str]) -> str:
    """The metric the headline and the per-language plot use: the first recall@k, else the first metric."""
    return next((m for m in metrics if m.startswith("recall@")), metrics[0])


def _table_order(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(group, lang) rows: the grouped languages by group, then the excluded ones under their own class
    group (shown so their values stay visible, but last, apart from the groups they do not count in)."""
    hmc = summary.get("high_min_class", DEFAULT_HIGH_MIN_CLASS)
    rows = [(g, lang) for g in GROUPS for lang in summary["groups"][g]]
    return rows + [(resource_group(lang, hmc), lang) for lang in summary.get("excluded") or []]


def _lang_cell(lang: str, excluded: Sequence[str]) -> str:
    return f"{lang} (excluded)" if lang in excluded else lang


def section_markdown(summary: dict[str, Any], title: str, *, alpha: float = 0.05) -> str:
    """Group tables and per-language tables of one input path (XQuAD systems or XOR runs)."""
    lines = [f"## {title}", ""]
    metrics = summary["metrics"]
    groups = summary["groups"]
    lines.append(
        "Groups here: "
        + "; ".join(f"**{g}** = {', '.join(groups[g]) or '(none)'}" for g in GROUPS)
        + ". A group's value is the macro average over its languages."
    )
    excluded = summary.get("excluded") or []
    if excluded:
        reason = summary.get("exclusion_reason") or "excluded by --exclude-langs"
        lines += [
            "",
            f"**Excluded: {', '.join(excluded)}** — {reason}. Excluded languages are {EXCLUSION_SCOPE}.",
        ]
    lines.append("")
    base = summary["baseline"]
    if not summary["comparisons"]:
        lines += ["| metric | " + " | ".join(GROUPS) + " |", "|---|" + "---:|" * len(GROUPS)]
        for m in metrics:
            vals = summary["per_group"][base][m]
            lines.append(f"| {m} | " + " | ".join(_fmt(vals[g]) for g in GROUPS) + " |")
        lines.append("")
    for label, comp in summary["comparisons"].items():
        lines += [
            f"### {label} vs {base}: gain per group",
            "",
            "| metric | low: base | low: Δ | low: p | high: base | high: Δ | high: p | gap low−high "
            "| p (languages) | ρ(gain, wiki tokens) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for m in metrics:
            c = comp[m]
            cells = []
            for g in GROUPS:
                r = c["per_group"][g]
                if r is None:
                    cells += ["–", "–", "–"]
                else:
                    cells += [
                        _fmt(r["baseline"]),
                        _fmt(r["gain"], True) + _mark(r["p"], alpha),
                        fmt_p(r["p"]),
                    ]
            gap = c["gap"]
            sp = c["wiki_spearman"]
            cells += [
                _fmt(gap["gap_low_minus_high"], True) if gap else "–",
                (fmt_p(gap["p"]) + f" ({gap['n_assignments']})") if gap else "–",
                (f"{sp['rho']:+.2f} (p {fmt_p(sp['p'])})" if sp and sp["rho"] is not None else "–"),
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines += [
            "",
            f"Δ = {label} − {base}; `*` p < {alpha} (paired sign-flip test of the macro average, "
            "`macro_paired_test`). *gap* = mean gain of low languages − mean gain of high languages; its p "
            "permutes the group labels over languages (the number of assignments in brackets). ρ = Spearman "
            "correlation over languages of the gain with Wikipedia size (tokens, 2020).",
            "",
        ]
        prim = primary_metric(metrics)
        sens = comp[prim]["threshold_sensitivity"]
        if sens:
            without = f", without {', '.join(excluded)}" if excluded else ""
            lines += [
                f"Sensitivity of the {prim} gap to the class threshold (high = class ≥ t{without}):",
                "",
                "| t | low languages | low Δ | high Δ | gap low−high | p (languages) |",
                "|---:|---|---:|---:|---:|---:|",
            ]
            for r in sens:
                lines.append(
                    f"| {r['high_min_class']} | {', '.join(r['low'])} | {r['low_gain']:+.3f} | "
                    f"{r['high_gain']:+.3f} | {r['gap_low_minus_high']:+.3f} | {fmt_p(r['p'])} "
                    f"({r['n_assignments']}) |"
                )
            lines.append("")
    # Per-language table (first comparison, or values when there is none).
    shown = [m for m in metrics if not m.startswith("precision@")] or list(metrics)
    if summary["comparisons"]:
        label, comp = next(iter(summary["comparisons"].items()))
        lines += [
            f"### {label} vs {base}: per language",
            "",
            "| lang | group | n | " + " | ".join(f"{m} base | Δ" for m in shown) + " |",
            "|---|---|---:|" + "---:|---:|" * len(shown),
        ]
        for g, lang in _table_order(summary):
            cells = []
            n = None
            for m in shown:
                r = comp[m]["per_language"].get(lang)
                if r is None:
                    cells += ["–", "–"]
                    continue
                n = r["n"] if n is None else n
                cells += [_fmt(r["baseline"]), _fmt(r["gain"], True) + _mark(r["p"], alpha)]
            lines.append(
                f"| {_lang_cell(lang, excluded)} | {g} | {n if n is not None else '–'} | "
                + " | ".join(cells)
                + " |"
            )
        lines += [
            "",
            f"`*` p < {alpha} (paired sign-flip permutation test per language). Precision@k is in "
            "`analysis.json` (and in the group table above).",
            "",
        ]
    else:
        lines += [
            f"### {base}: per language",
            "",
            "| lang | group | " + " | ".join(shown) + " |",
            "|---|---|" + "---:|" * len(shown),
        ]
        for g, lang in _table_order(summary):
            vals = [summary["per_language"][base][m].get(lang) for m in shown]
            lines.append(
                f"| {_lang_cell(lang, excluded)} | {g} | " + " | ".join(_fmt(v) for v in vals) + " |"
            )
        lines.append("")
    return "\n".join(lines)


def headline(summary: dict[str, Any], what: str, *, alpha: float = 0.05) -> str:
    """One or two sentences answering the question for one input path."""
    metrics = summary["metrics"]
    m = primary_metric(metrics)
    base = summary["baseline"]
    groups = summary["groups"]
    excluded = summary.get("excluded") or []
    excl_txt = ""
    if excluded:
        reason = summary.get("exclusion_reason") or "excluded by --exclude-langs"
        excl_txt = f" {', '.join(excluded)} left out of both groups ({reason})."
    if not summary["comparisons"]:
        vals = summary["per_group"][base][m]
        return (
            f"{what}, {m} of {base}: low-resource languages ({', '.join(groups['low']) or 'none'}) "
            f"{_fmt(vals['low'])}, high-resource ({', '.join(groups['high']) or 'none'}) "
            f"{_fmt(vals['high'])} "
            "(one system, so no gains)." + excl_txt
        )
    parts = []
    for label, comp in summary["comparisons"].items():
        c = comp[m]
        bits = []
        for g in GROUPS:
            r = c["per_group"][g]
            if r is None:
                continue
            sig = "significant" if r["p"] is not None and r["p"] < alpha else "not significant"
            bits.append(
                f"{g}-resource ({', '.join(r['langs'])}) {r['gain']:+.3f} (from {r['baseline']:.3f}; "
                f"p {fmt_p(r['p'])}, {sig})"
            )
        gap = c["gap"]
        gap_txt = ""
        if gap:
            verdict = "differs" if gap["p"] < alpha else "does not differ significantly"
            gap_txt = (
                f"; the gain {verdict} between the groups (low − high {gap['gap_low_minus_high']:+.3f}, "
                f"p {fmt_p(gap['p'])} over {gap['n_assignments']} language assignments)"
            )
        parts.append(f"{label} vs {base} on {what}, {m}: " + "; ".join(bits) + gap_txt + ".")
    return " ".join(parts) + excl_txt


def plot(path: Path, sections: Sequence[tuple[str, dict[str, Any]]], *, high_min_class: int) -> None:
    """Gain per group per k (with 95% CIs), per-language gain colored by group, and gain vs Wikipedia size.

    One row per (input path, compared system); with a single system the rows show values, not gains.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"low": "#d95f02", "high": "#1b9e77"}
    rows: list[tuple[str, dict[str, Any], str | None]] = []
    for name, summary in sections:
        if summary["comparisons"]:
            rows += [(name, summary, label) for label in summary["comparisons"]]
        else:
            rows.append((name, summary, None))
    fig, axes = plt.subplots(len(rows), 3, figsize=(16, 4.2 * len(rows)), squeeze=False)
    for (name, summary, label), ax_row in zip(rows, axes, strict=True):
        metrics = [m for m in summary["metrics"] if not m.startswith(("precision@", "mrr@"))]
        prim = primary_metric(summary["metrics"])
        base = summary["baseline"]
        what = "gain" if label else "value"
        # (a) per group, per metric
        ax = ax_row[0]
        x = np.arange(len(metrics))
        width = 0.38
        for i, g in enumerate(GROUPS):
            vals, lo, hi = [], [], []
            for m in metrics:
                if label:
                    r = summary["comparisons"][label][m]["per_group"][g]
                    v = r["gain"] if r else np.nan
                    vals.append(v)
                    lo.append(v - r["ci_low"] if r and r["ci_low"] is not None else 0.0)
                    hi.append(r["ci_high"] - v if r and r["ci_high"] is not None else 0.0)
                else:
                    v = summary["per_group"][base][m][g]
                    vals.append(np.nan if v is None else v)
                    lo.append(0.0)
                    hi.append(0.0)
            ax.bar(
                x + (i - 0.5) * width,
                vals,
                width,
                yerr=[lo, hi] if label else None,
                capsize=3,
                color=colors[g],
                label=f"{g} ({', '.join(summary['groups'][g]) or 'none'})",
            )
        ax.set_xticks(x, metrics, rotation=30)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(f"{what} (macro over languages)")
        without = f"\n(without {', '.join(summary['excluded'])})" if summary.get("excluded") else ""
        ax.set_title(f"{name}: {label + ' − ' + base if label else base}, {what} per group{without}")
        ax.legend(fontsize=8)
        # (b) per language
        ax = ax_row[1]
        if label:
            pl = summary["comparisons"][label][prim]["per_language"]
            value = {lang: r["gain"] for lang, r in pl.items()}
        else:
            value = dict(summary["per_language"][base][prim])
        excluded = list(summary.get("excluded") or [])
        order = [
            (g, lang)
            for g in GROUPS
            for lang in sorted(summary["groups"][g], key=lambda x: value.get(x, -math.inf))
        ] + [(resource_group(lang, high_min_class), lang) for lang in excluded]
        vals = [value.get(lang, np.nan) for _, lang in order]
        # Excluded languages: hatched, unfilled bars in their class colour, after the grouped ones.
        ax.bar(
            range(len(order)),
            vals,
            color=[("white" if lang in excluded else colors[g]) for g, lang in order],
            edgecolor=[colors[g] for g, _ in order],
            hatch=["//" if lang in excluded else "" for _, lang in order],
        )
        ax.set_xticks(
            range(len(order)),
            [f"{lang}\n(excluded)" if lang in excluded else lang for _, lang in order],
            fontsize=8,
        )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel(f"{prim} {what}")
        ax.set_title(
            f"per language ({prim}), colored by group (class ≥ {high_min_class} = high)"
            + (f"\nhatched = excluded from the groups: {', '.join(excluded)}" if excluded else ""),
            fontsize=9 if excluded else None,
        )
        # (c) vs Wikipedia size
        ax = ax_row[2]
        for (g, lang), v in zip(order, vals, strict=True):
            if np.isnan(v):
                continue
            t = LANGUAGES[lang].wiki_tokens
            if lang in excluded:  # hollow marker: shown, but not in the correlation
                ax.scatter([t], [v], facecolors="none", edgecolors=colors[g])
                ax.annotate(f"{lang} (excl.)", (t, v), textcoords="offset points", xytext=(3, 3), fontsize=8)
            else:
                ax.scatter([t], [v], color=colors[g])
                ax.annotate(lang, (t, v), textcoords="offset points", xytext=(3, 3), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("Wikipedia tokens (2020 dump)")
        ax.set_ylabel(f"{prim} {what}")
        title = f"{prim} {what} vs Wikipedia size"
        if label:
            sp = summary["comparisons"][label][prim]["wiki_spearman"]
            if sp and sp["rho"] is not None:
                title += f" (Spearman ρ = {sp['rho']:+.2f}, p {fmt_p(sp['p'])}"
                title += f",\nwithout {', '.join(excluded)})" if excluded else ")"
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


QUESTION = (
    "How do gains differ between low- and high-resource languages (Joshi et al. 2020 classes), measured by "
    "recall@k and precision@k, and R@kt where the answers are strings?"
)
FIGURE = "resource_levels.png"


def run_analysis(
    out_dir: str | Path,
    *,
    systems: Sequence[str] = (),
    runs: Sequence[str] = (),
    queries: str | Path | None = None,
    corpus: str | Path | None = None,
    split: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    rkt_ks: Sequence[int] | None = None,
    xor_rkt_ks: Sequence[int] | None = None,
    depth: int = 100,
    high_min_class: int = DEFAULT_HIGH_MIN_CLASS,
    passage_text: str = "text",
    n_resamples: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
    exclude_langs: Sequence[str] = (),
    exclude_reason: str | None = None,
    command: str | None = None,
) -> Path:
    """Run the analysis on XQuAD experiment folders (``systems``) and/or XOR-format runs, and write it.

    ``rkt_ks`` is for the XQuAD path (default :data:`XQUAD_RKT_KS`; ``()`` skips R@kt), ``xor_rkt_ks``
    for the runs (default :data:`XOR_RKT_KS`). ``exclude_langs`` are shown per language but left out
    of every group statistic and the headline — e.g. ``en`` in an xQG experiment, whose English
    questions are the control (no English queries are generated), so counting English as high-resource
    dilutes that group's gain. ``exclude_reason`` says why; without it the reason is read from the
    experiment folders' ``generated/config.json`` (which languages got generated queries).
    """
    from xqg.analyse.common import SystemSpec, write_analysis

    _check_threshold(high_min_class)
    exclude = check_exclude(exclude_langs)
    if not systems and not runs:
        raise XqgError("give --system LABEL=FOLDER[:SYSTEM] (XQuAD experiment folders) and/or --run FILE")
    if runs and (queries is None or corpus is None):
        raise XqgError("--run needs --queries (XOR-TyDi JSONL with answers) and --corpus (the passages)")
    ks = check_ks(ks)
    xq_rkt = XQUAD_RKT_KS if rkt_ks is None else tuple(rkt_ks)
    xor_rkt = check_ks(XOR_RKT_KS if xor_rkt_ks is None else tuple(xor_rkt_ks), "R@kt k")
    out = Path(out_dir)
    sections: list[tuple[str, dict[str, Any]]] = []
    data: dict[str, Any] = {"grouping": grouping_data(high_min_class)}
    body: list[str] = []
    heads: list[str] = []
    counts: dict[str, int] = {}
    generated: dict[str, list[str] | None] = {}  # experiment folder → languages it generated queries in

    from xqg.evaluate.rkt import rkt_name

    if systems:
        from xqg.data.benchmarks.xquad import load_xquad

        specs = [SystemSpec.parse(s) for s in systems]
        generated = {str(f): generated_langs(f) for f in dict.fromkeys(s.folder for s in specs)}
        reason = exclusion_reason(exclude, exclude_reason, generated)
        bench = load_xquad(split=split)
        scored = [
            xquad_scores(s, bench, ks, split=split, rkt_ks=xq_rkt, depth=depth, passage_text=passage_text)
            for s in specs
        ]
        metrics = qrels_metric_names(ks) + [rkt_name(k) for k in xq_rkt]
        summary = summarise(
            scored,
            metrics,
            high_min_class=high_min_class,
            n_resamples=n_resamples,
            seed=seed,
            exclude=exclude,
        )
        p_rk = [s.info.get("precision_is_recall_over_k") for s in scored]
        summary.update(
            split=split,
            ks=list(ks),
            rkt_ks=list(xq_rkt),
            depth=depth,
            precision_is_recall_over_k=p_rk,
            exclusion_reason=reason if summary["excluded"] else None,
        )
        data["xquad"] = summary
        sections.append((f"XQuAD {split}", summary))
        identity = all(v is True for v in p_rk)
        body += [
            section_markdown(summary, f"XQuAD {split}: experiment systems", alpha=alpha),
            (
                "Every XQuAD question has exactly one relevant paragraph, so precision@k = recall@k / k for "
                f"every query; computed by ranx's general definition, the identity holds: **{identity}**. "
                "R@kt uses the English answer spans of each question (XQuAD is parallel) and the paragraph "
                "text, as the experiment does."
            ),
            "",
        ]
        heads.append(headline(summary, f"XQuAD {split}", alpha=alpha))
        counts["xquad_queries"] = sum(summary["counts"][metrics[0]].values())

    if runs:
        parsed = [parse_run_arg(r) for r in runs]
        scored = xor_scores(parsed, queries, corpus, xor_rkt, passage_text=passage_text)  # type: ignore[arg-type]
        metrics = [rkt_name(k) for k in xor_rkt]
        summary = summarise(
            scored,
            metrics,
            high_min_class=high_min_class,
            n_resamples=n_resamples,
            seed=seed,
            exclude=exclude,
        )
        xor_reason = exclusion_reason(exclude, exclude_reason, {})
        summary.update(
            rkt_ks=list(xor_rkt),
            passage_text=passage_text,
            queries=str(queries),
            corpus=str(corpus),
            exclusion_reason=xor_reason if summary["excluded"] else None,
        )
        data["xor"] = summary
        sections.append(("XOR-format runs", summary))
        skipped = scored[0].info.get("skipped_yes_no", 0)
        body += [
            section_markdown(summary, "XOR-TyDi-format runs: R@kt", alpha=alpha),
            (
                f"R@kt follows the official XOR-Retrieve script (passage text only, answers matched as "
                f"case-sensitive substrings of the first k NLTK tokens); {skipped} question(s) with only "
                "yes/no answers are not counted, and a run's missing questions are left out of its "
                "denominator (official); the paired tests use the questions both runs count. Values are "
                "fractions (×100 for the usual percentages)."
            ),
            "",
        ]
        heads.append(headline(summary, "the XOR-format runs", alpha=alpha))
        counts["xor_queries"] = sum(summary["counts"][metrics[0]].values())

    if exclude:
        present = {x for _, sm in sections for x in sm["langs"]}
        absent = [x for x in exclude if x not in present]
        if absent:
            raise XqgError(
                f"--exclude-langs: {', '.join(absent)} not among the analysed languages "
                f"({', '.join(sorted(present))})"
            )
        evidence = generated_evidence(generated)
        data["exclusion"] = {
            "langs": list(exclude),
            "reasons": {name: sm["exclusion_reason"] for name, sm in sections if sm["excluded"]},
            "generated_langs": generated,
            "scope": EXCLUSION_SCOPE,
        }
        body += [
            "## Excluded languages",
            "",
            f"`--exclude-langs {','.join(exclude)}`: {', '.join(exclude)} "
            f"{'is' if len(exclude) == 1 else 'are'} {EXCLUSION_SCOPE}.",
            "",
            *(f"- {name}: {sm['exclusion_reason']}." for name, sm in sections if sm["excluded"]),
            *([f"- Evidence: {evidence}."] if evidence else []),
            "",
        ]
    body += ["## Resource levels", "", grouping_markdown(high_min_class), ""]
    sizes = "; ".join(
        f"{name}: {len(sm['groups']['low'])} low vs {len(sm['groups']['high'])} high" for name, sm in sections
    )
    body += [
        "## Caveats",
        "",
        f"- Groups are few languages ({sizes}), so the language-level test of the gap has little power; the "
        "per-group query-level tests say whether each group gains.",
        "- A group that starts lower has more room to gain; compare the baseline columns and the relative "
        "gains in `analysis.json` (`relative_gain`) before reading a larger gain as a resource effect.",
        "- The Joshi classes describe labelled and unlabelled NLP resources in 2020, not the pretraining "
        "data of the encoder used here; Wikipedia size is the second, rough signal.",
    ]
    out.mkdir(parents=True, exist_ok=True)
    plot(out / FIGURE, sections, high_min_class=high_min_class)
    return write_analysis(
        out,
        name="resource-levels",
        question=QUESTION,
        headline=" ".join(heads),
        body_md="\n".join(body),
        data=data,
        figures=[FIGURE],
        command=command,
        config={
            "systems": list(systems),
            "runs": list(runs),
            "split": split,
            "ks": list(ks),
            "rkt_ks": list(xq_rkt),
            "xor_rkt_ks": list(xor_rkt),
            "depth": depth,
            "high_min_class": high_min_class,
            "n_resamples": n_resamples,
            "seed": seed,
            "exclude_langs": list(exclude),
            "exclude_reason": exclude_reason,
        },
        counts=counts,
    )
