"""Compute side of the resource-level analysis: the grouping, exclusions, per-language and per-group
means, paired tests, the gap test, and :func:`compute`, which returns the analysis' plain data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from xqg.analyse.resource_levels.scores import (
    DEFAULT_KS,
    XOR_RKT_KS,
    XQUAD_RKT_KS,
    SystemScores,
    check_ks,
    parse_run_arg,
    qrels_metric_names,
    xor_scores,
    xquad_scores,
)
from xqg.errors import XqgError
from xqg.evaluate.significance import group_gap_test
from xqg.languages import (
    JOSHI_CITATION,
    JOSHI_CLASS_NAMES,
    JOSHI_SOURCE,
    RESOURCE_ALIASES,
    RESOURCE_LEVELS,
    WIKI_SOURCE,
    joshi_class,
    resource_code,
)

GROUPS: tuple[str, ...] = ("low", "high")
DEFAULT_HIGH_MIN_CLASS = 4

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


@dataclass(frozen=True)
class Options:
    """What the analysis runs on (``xqg analyse resource-levels`` flags; see ``run_analysis``)."""

    systems: Sequence[str] = ()
    runs: Sequence[str] = ()
    queries: str | Path | None = None
    corpus: str | Path | None = None
    split: str = "test"
    ks: Sequence[int] = DEFAULT_KS
    rkt_ks: Sequence[int] | None = None
    xor_rkt_ks: Sequence[int] | None = None
    depth: int = 100
    high_min_class: int = DEFAULT_HIGH_MIN_CLASS
    passage_text: str = "text"
    n_resamples: int = 10_000
    seed: int = 0
    exclude_langs: Sequence[str] = ()
    exclude_reason: str | None = None

    def config(self) -> dict[str, Any]:
        """The settings as the analysis manifest records them (ks checked, defaults filled in)."""
        return {
            "systems": list(self.systems),
            "runs": list(self.runs),
            "split": self.split,
            "ks": list(check_ks(self.ks)),
            "rkt_ks": list(XQUAD_RKT_KS if self.rkt_ks is None else tuple(self.rkt_ks)),
            "xor_rkt_ks": list(
                check_ks(XOR_RKT_KS if self.xor_rkt_ks is None else tuple(self.xor_rkt_ks), "R@kt k")
            ),
            "depth": self.depth,
            "high_min_class": self.high_min_class,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "exclude_langs": list(check_exclude(self.exclude_langs)),
            "exclude_reason": self.exclude_reason,
        }


def compute(options: Options | None = None, **kw: Any) -> dict[str, Any]:
    """The analysis as plain data (``analysis.json``'s ``data``): ``grouping``, and ``xquad`` (systems)
    and/or ``xor`` (runs) summaries, and ``exclusion`` when languages are excluded. Settings come as
    an :class:`Options` or its fields as keywords."""
    from xqg.evaluate.rkt import rkt_name

    o = options or Options(**kw)
    systems, runs, queries, corpus, split = o.systems, o.runs, o.queries, o.corpus, o.split
    depth, high_min_class, passage_text = o.depth, o.high_min_class, o.passage_text
    n_resamples, seed, exclude_reason = o.n_resamples, o.seed, o.exclude_reason

    _check_threshold(high_min_class)
    exclude = check_exclude(o.exclude_langs)
    if not systems and not runs:
        raise XqgError("give --system LABEL=FOLDER[:SYSTEM] (XQuAD experiment folders) and/or --run FILE")
    if runs and (queries is None or corpus is None):
        raise XqgError("--run needs --queries (XOR-TyDi JSONL with answers) and --corpus (the passages)")
    ks = check_ks(o.ks)
    xq_rkt = XQUAD_RKT_KS if o.rkt_ks is None else tuple(o.rkt_ks)
    xor_rkt = check_ks(XOR_RKT_KS if o.xor_rkt_ks is None else tuple(o.xor_rkt_ks), "R@kt k")
    data: dict[str, Any] = {"grouping": grouping_data(high_min_class)}
    generated: dict[str, list[str] | None] = {}  # experiment folder → languages it generated queries in
    sections: list[tuple[str, dict[str, Any]]] = []
    if systems:
        from xqg.analyse.common import SystemSpec
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
        summary.update(
            split=split,
            ks=list(ks),
            rkt_ks=list(xq_rkt),
            depth=depth,
            precision_is_recall_over_k=[s.info.get("precision_is_recall_over_k") for s in scored],
            exclusion_reason=reason if summary["excluded"] else None,
        )
        data["xquad"] = summary
        sections.append((f"XQuAD {split}", summary))
    if runs:
        parsed = [parse_run_arg(r) for r in runs]
        scored = xor_scores(parsed, queries, corpus, xor_rkt, passage_text=passage_text)  # type: ignore[arg-type]
        summary = summarise(
            scored,
            [rkt_name(k) for k in xor_rkt],
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
    if exclude:
        present = {x for _, sm in sections for x in sm["langs"]}
        absent = [x for x in exclude if x not in present]
        if absent:
            raise XqgError(
                f"--exclude-langs: {', '.join(absent)} not among the analysed languages "
                f"({', '.join(sorted(present))})"
            )
        data["exclusion"] = {
            "langs": list(exclude),
            "reasons": {name: sm["exclusion_reason"] for name, sm in sections if sm["excluded"]},
            "generated_langs": generated,
            "scope": EXCLUSION_SCOPE,
        }
    return data


def sections_of(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(name, summary)`` of each input path present in ``data``, in the analysis' order."""
    out = []
    if "xquad" in data:
        out.append((f"XQuAD {data['xquad']['split']}", data["xquad"]))
    if "xor" in data:
        out.append(("XOR-format runs", data["xor"]))
    return out
