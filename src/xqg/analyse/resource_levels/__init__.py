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

**Layout.** :mod:`.scores` scores each system per query, :mod:`.compute` aggregates and tests and
returns the plain data (:func:`compute`), :mod:`.render` turns that data into the headline, tables
and figure (:func:`render`); :func:`run_analysis` runs the two and writes the analysis folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xqg.analyse.resource_levels.compute import (
    DEFAULT_HIGH_MIN_CLASS,
    EXCLUSION_SCOPE,
    GROUPS,
    LANG_ALIASES,
    LANGUAGES,
    Options,
    benchmark_languages,
    canonical_lang,
    check_exclude,
    compare,
    compute,
    exclusion_reason,
    generated_langs,
    group_languages,
    group_macro,
    grouping_data,
    joshi_class,
    language_gap_test,
    language_means,
    resource_group,
    summarise,
    threshold_sensitivity,
    wiki_correlation,
)
from xqg.analyse.resource_levels.render import (
    FIGURE,
    details,
    generated_evidence,
    grouping_markdown,
    headline,
    plot,
    primary_metric,
    render,
    section_markdown,
)
from xqg.analyse.resource_levels.scores import (
    DEFAULT_KS,
    MRR_K,
    XOR_RKT_KS,
    XQUAD_RKT_KS,
    SystemScores,
    check_ks,
    exact_run,
    merge_scores,
    parse_run_arg,
    precision_is_recall_over_k,
    qrels_metric_names,
    qrels_scores,
    read_passages,
    rkt_scores,
    xor_scores,
    xquad_scores,
)
from xqg.languages import LanguageInfo

QUESTION = (
    "How do gains differ between low- and high-resource languages (Joshi et al. 2020 classes), measured by "
    "recall@k and precision@k, and R@kt where the answers are strings?"
)


def run_analysis(
    out_dir: str | Path, *, alpha: float = 0.05, command: str | None = None, **options: Any
) -> Path:
    """Run the analysis on XQuAD experiment folders (``systems``) and/or XOR-format runs, and write it.

    ``options`` are :class:`~xqg.analyse.resource_levels.compute.Options`' fields. ``rkt_ks`` is
    for the XQuAD path (default :data:`XQUAD_RKT_KS`; ``()`` skips R@kt), ``xor_rkt_ks`` for the
    runs (default :data:`XOR_RKT_KS`). ``exclude_langs`` are shown per language but left out of
    every group statistic and the headline — e.g. ``en`` in an xQG experiment, whose English
    questions are the control (no English queries are generated), so counting English as
    high-resource dilutes that group's gain. ``exclude_reason`` says why; without it the reason is
    read from the experiment folders' ``generated/config.json`` (which languages got generated
    queries). ``alpha`` marks significance in the rendered tables.
    """
    opts = Options(**options)
    data = compute(opts)
    shown = render(data, out_dir, alpha=alpha)
    counts = {
        f"{key}_queries": sum(data[key]["counts"][data[key]["metrics"][0]].values())
        for key in ("xquad", "xor")
        if key in data
    }
    return shown.write(
        out_dir,
        name="resource-levels",
        question=QUESTION,
        data=data,
        command=command,
        config=opts.config(),
        counts=counts,
    )


__all__ = [
    "Options",
    "DEFAULT_HIGH_MIN_CLASS",
    "DEFAULT_KS",
    "EXCLUSION_SCOPE",
    "FIGURE",
    "GROUPS",
    "LANGUAGES",
    "LANG_ALIASES",
    "LanguageInfo",
    "MRR_K",
    "QUESTION",
    "SystemScores",
    "XOR_RKT_KS",
    "XQUAD_RKT_KS",
    "benchmark_languages",
    "canonical_lang",
    "check_exclude",
    "check_ks",
    "compare",
    "compute",
    "exact_run",
    "exclusion_reason",
    "generated_evidence",
    "generated_langs",
    "group_languages",
    "group_macro",
    "grouping_data",
    "grouping_markdown",
    "details",
    "headline",
    "joshi_class",
    "language_gap_test",
    "language_means",
    "merge_scores",
    "parse_run_arg",
    "plot",
    "precision_is_recall_over_k",
    "primary_metric",
    "qrels_metric_names",
    "qrels_scores",
    "read_passages",
    "render",
    "resource_group",
    "rkt_scores",
    "run_analysis",
    "section_markdown",
    "summarise",
    "threshold_sensitivity",
    "wiki_correlation",
    "xor_scores",
    "xquad_scores",
]
