"""Render side of the resource-level analysis: headline, Markdown tables and the figure, from the
plain data :func:`xqg.analyse.resource_levels.compute.compute` returns."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import Rendered, fmt_p, save_figure
from xqg.analyse.resource_levels.compute import (
    DEFAULT_HIGH_MIN_CLASS,
    EXCLUSION_SCOPE,
    GROUPS,
    JOSHI_CITATION,
    JOSHI_SOURCE,
    LANGUAGES,
    WIKI_SOURCE,
    grouping_data,
    resource_group,
)

FIGURE = "resource_levels.png"


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


def generated_evidence(generated: Mapping[str, list[str] | None]) -> str:
    """``"FOLDER generated queries in ar, de, …"`` for each folder whose generation languages are known."""
    return "; ".join(
        f"{folder} generated queries in {', '.join(langs) or 'no language'}"
        for folder, langs in generated.items()
        if langs is not None
    )


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
    """Two quotable sentences for one input path: for how many compared systems the gain differs
    significantly between the low- and high-resource groups, then each system's gain per group with
    the p of that difference."""
    if not summary["comparisons"]:
        return details(summary, what, alpha=alpha)
    m = primary_metric(summary["metrics"])
    comps = summary["comparisons"]
    gaps = [c[m]["gap"] for c in comps.values()]
    differs = sum(1 for g in gaps if g and g["p"] is not None and g["p"] < alpha)
    excluded = summary.get("excluded") or []
    low = ", ".join(summary["groups"]["low"]) or "none"
    lead = (
        f"On {what} {m}, low-resource languages ({low}) gain significantly differently from "
        f"high-resource ones for {differs} of {len(comps)} systems vs {summary['baseline']}"
        + (f" ({', '.join(excluded)} excluded)" if excluded else "")
        + "."
    )

    def gain(r: dict[str, Any] | None) -> str:
        return "–" if r is None else f"{r['gain']:+.3f}"

    parts = []
    for label, comp in comps.items():
        c = comp[m]
        gap = c["gap"]
        tail = f" (p {fmt_p(gap['p'])})" if gap else ""
        parts.append(f"{label} {gain(c['per_group']['low'])}/{gain(c['per_group']['high'])}{tail}")
    return f"{lead} Gains low/high, with the p of their difference: {', '.join(parts)}."


def details(summary: dict[str, Any], what: str, *, alpha: float = 0.05) -> str:
    """Every headline figure of one input path (the body's "Details"): per compared system, each
    group's gain, baseline and p, and the test of the gap between the groups."""
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


def render(data: dict[str, Any], out_dir: str | Path, *, alpha: float = 0.05) -> Rendered:
    """Headline, Markdown body and the figure (drawn into ``out_dir``) from :func:`compute`'s data."""
    from xqg.analyse.resource_levels.compute import sections_of

    high_min_class = data["grouping"]["high_min_class"]
    sections = sections_of(data)
    body: list[str] = []
    heads: list[str] = []
    detail: list[str] = []
    if "xquad" in data:
        summary = data["xquad"]
        split = summary["split"]
        identity = all(v is True for v in summary["precision_is_recall_over_k"])
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
        detail.append(details(summary, f"XQuAD {split}", alpha=alpha))
    if "xor" in data:
        summary = data["xor"]
        skipped = summary["systems"][summary["baseline"]].get("skipped_yes_no", 0)
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
        detail.append(details(summary, "the XOR-format runs", alpha=alpha))
    if "exclusion" in data:
        exclude = data["exclusion"]["langs"]
        evidence = generated_evidence(data["exclusion"]["generated_langs"])
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
    body = [f"**Details.** {' '.join(detail)}", "", *body]
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
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot(out / FIGURE, sections, high_min_class=high_min_class)
    return Rendered(headline=" ".join(heads), body_md="\n".join(body), figures=[FIGURE])


def _recorded_alpha(command: str | None) -> float:
    """The ``--alpha`` of a recorded command line (0.05, the CLI default, when it gives none)."""
    import shlex

    words = shlex.split(command or "")
    for i, w in enumerate(words):
        if w == "--alpha" and i + 1 < len(words):
            return float(words[i + 1])
        if w.startswith("--alpha="):
            return float(w.split("=", 1)[1])
    return 0.05


def render_saved(data: dict[str, Any], out_dir: str | Path, *, command: str | None = None) -> Rendered:
    """:func:`render` of an analysis folder's saved ``data``, at the ``--alpha`` of its ``command``."""
    return render(data, out_dir, alpha=_recorded_alpha(command))
