"""Render side of the misspellings analysis: headline, Markdown body and figures from
:func:`~xqg.analyse.misspellings.compute.compute`'s data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xqg.analyse.common import Rendered, save_figure
from xqg.analyse.misspellings.compute import EvalSet
from xqg.analyse.noise import (
    DEFAULT_WEIGHTS,
)
from xqg.io import shown_path

# ----------------------------------------------------------------------------------------------
# Report.


def _pct(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _falls(data: dict[str, Any], metric: str) -> str:
    """``"At 10% character noise MRR@10 falls by …"``: the relative drop at the headline rate per
    benchmark for its reference system (no full stop)."""
    rates = data["rates"]
    h = data["headline_rate"]
    i = rates.index(h)
    means = data["means"]
    name = metric.upper().replace("RECALL", "R")
    parts: list[str] = []
    if "locomo" in means:
        ref = data["reference"]["locomo"]
        v = means["locomo"][ref]["all"][metric]
        parts.append(f"{_drop(v[0], v[i])} on LoCoMo ({ref}: {_fmt(v[0])}→{_fmt(v[i])})")
    if "xquad" in means:
        ref = data["reference"]["xquad"]
        groups = means["xquad"][ref]
        if "non-en" in groups:
            v = groups["non-en"][metric]
            parts.append(
                f"{_drop(v[0], v[i])} on XQuAD non-English questions ({ref}: {_fmt(v[0])}→{_fmt(v[i])})"
            )
        if "en" in groups:
            v = groups["en"][metric]
            parts.append(f"{_drop(v[0], v[i])} on XQuAD English")
        elif "non-en" not in groups:
            v = groups["all"][metric]
            parts.append(f"{_drop(v[0], v[i])} on XQuAD ({ref}: {_fmt(v[0])}→{_fmt(v[i])})")
    if not parts:
        return ""
    return f"At {100 * h:g}% character noise {name} falls by " + _and(parts)


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _drop_changes(
    data: dict[str, Any], metric: str
) -> list[tuple[str, str, list[tuple[str, dict[str, Any]]]]]:
    """Per benchmark with compared systems: (where, reference, [(system, {"mean", "stderr"}), …]) of the
    paired change of the absolute drop (system − reference; negative = more robust)."""
    out = []
    for bench, labels in data.get("drop_difference", {}).items():
        items = [(label, d[metric]) for label, d in labels.items() if d[metric]["mean"] is not None]
        if items:
            where = {"locomo": "LoCoMo", "xquad": "XQuAD"}.get(bench, bench)
            where += " non-English" if next(iter(labels.values()))["group"] == "non-en" else ""
            out.append((where, data["reference"][bench], items))
    return out


def _points(m: dict[str, Any]) -> str:
    se = f" ± {100 * m['stderr']:.1f}" if m["stderr"] is not None else ""
    return f"{100 * m['mean']:+.1f}{se} points"


def headline(data: dict[str, Any], metric: str = "mrr@10") -> str:
    """Two quotable sentences from the data: the relative drop at the headline rate per benchmark
    (reference system), then the system whose absolute drop shrinks most against the reference's on
    each benchmark (points = metric × 100, paired s.e.)."""
    falls = _falls(data, metric)
    if not falls:
        return "No results."
    best = []
    for where, ref, items in _drop_changes(data, metric):
        label, m = min(items, key=lambda item: item[1]["mean"])
        if m["mean"] < 0:
            best.append(f"{label} on {where} ({_points(m)} of drop vs {ref})")
        else:
            best.append(f"none on {where} (every system loses at least as much as {ref})")
    if not best:
        return falls + "."
    return f"{falls}. The most robust against the reference: {_and(best)}; negative = smaller drop."


def details(data: dict[str, Any], metric: str = "mrr@10") -> str:
    """Every headline figure in one paragraph (the body's "Details"): the relative drop at the
    headline rate per benchmark (reference system) and how much every other system's absolute drop
    differs (points = metric × 100, paired s.e.)."""
    falls = _falls(data, metric)
    if not falls:
        return "no results"
    tails = [
        f"vs {ref}, the absolute {where} drop changes by "
        + _and([f"{_points(m)} for {label}" for label, m in items])
        for where, ref, items in _drop_changes(data, metric)
    ]
    if tails:
        falls += "; " + "; ".join(tails) + " (paired s.e.; negative = more robust)"
    return falls + "."


def _drop(clean: float | None, noisy: float | None) -> str:
    if clean is None or noisy is None or clean <= 0:
        return "n/a"
    return f"{100 * (1 - noisy / clean):.1f}%"


def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _body(data: dict[str, Any], eval_sets: Sequence[EvalSet]) -> str:
    rates = data["rates"]
    rate_cols = " | ".join(f"{r:g}" for r in rates)
    sep = "|".join(["---"] * (len(rates) + 2))
    lines: list[str] = [f"**Details.** {details(data)}", ""]
    lines += [
        "## Setup",
        "",
        f"Noise rates (edits per letter/mark): {', '.join(f'{r:g}' for r in rates)}; seed {data['seed']}; "
        f"edit-type weights {data['edit_weights']}. Queries are corrupted once per rate, seeded per "
        "query id, so every system sees identical misspelt text. Search: exact inner product over the "
        f"whole corpus, top {data['depth']}; metrics MRR@10 and recall@10 (ranx via `xqg.evaluate.metrics`).",
        "",
        "| system | kind | query encoder | passages |",
        "|---|---|---|---|",
    ]
    for label, d in data["entries"].items():
        q = d["query_encoder"]
        enc = f"{shown_path(q['model'])} (q≤{q['query_max_length']} tok, {q['dtype']})"
        lines.append(f"| {label} | {d['kind']} | {enc} | {d.get('passages', '')} |")
    lines.append("")
    for es in eval_sets:
        b = data["benchmarks"][es.name]
        lines.append(f"- **{es.name}**: {b['queries']} queries, {b['passages']} passages.")
        if es.name == "locomo":
            c = b["loader_counts"]
            lines.append(
                f"  Loader: {c['conversations']} conversations, {c['turns']} turns, "
                f"{c['questions']} questions; {c['questions_skipped']} skipped (no valid evidence: "
                f"{', '.join(b['skipped_questions'])}); evidence strings repaired: {c['evidence_split']} "
                f"split, {c['evidence_canonicalised']} canonicalised; dropped: {c['evidence_malformed']} "
                f"malformed, {c['evidence_missing']} naming no turn."
            )
    lines.append("")
    for metric in data["metrics"]:
        for es in eval_sets:
            means = data["means"][es.name]
            rel = data["relative"][es.name]
            lines += [f"## {es.name}: {metric} by noise rate", ""]
            lines += [f"| system | group | {rate_cols} |", f"|{sep}|"]
            for label, groups in means.items():
                for group in _report_groups(es):
                    vals = groups[group][metric]
                    rels = rel[label][group][metric]
                    cells = [
                        _fmt(v) + ("" if k == 0 else f" ({_pct(r)})")
                        for k, (v, r) in enumerate(zip(vals, rels, strict=True))
                    ]
                    lines.append(f"| {label} | {group} | {' | '.join(cells)} |")
            lines += ["", "(in brackets: metric(rate) / metric(0))", ""]
            gaps = data["gap_to_reference"][es.name]
            if gaps:
                ref = data["reference"][es.name]
                lines += [f"Gap to {ref} ({metric}, system − {ref}):", ""]
                lines += [f"| system | group | {rate_cols} |", f"|{sep}|"]
                for label, groups in gaps.items():
                    for group in _report_groups(es):
                        cells = [_fmt(v, 3) for v in groups[group][metric]]
                        lines.append(f"| {label} | {group} | {' | '.join(cells)} |")
                lines.append("")
    lines += ["## Noise realised", ""]
    lines += ["| benchmark | group | " + rate_cols + " |", f"|{sep}|"]
    for es in eval_sets:
        for group in _noise_groups(es):
            cells = [_fmt(data["noise"][es.name][f"{r:g}"][group]["realised_rate"], 3) for r in rates]
            lines.append(f"| {es.name} | {group} | {' | '.join(cells)} |")
    lines.append("")
    h = f"{data['headline_rate']:g}"
    lines += [f"Edit types at rate {h} (counts):", "", "| benchmark | group | " + " | ".join(
        DEFAULT_WEIGHTS) + " |", "|" + "|".join(["---"] * (len(DEFAULT_WEIGHTS) + 2)) + "|"]  # fmt: skip
    for es in eval_sets:
        for group in _noise_groups(es):
            by = data["noise"][es.name][h][group]["by_type"]
            lines.append(f"| {es.name} | {group} | {' | '.join(str(by[k]) for k in DEFAULT_WEIGHTS)} |")
    lines += ["", f"Examples at rate {h}:", ""]
    for es in eval_sets:
        for group in _noise_groups(es):
            for ex in data["noise"][es.name][h][group]["examples"][:1]:
                lines.append(f"- {es.name}/{group}: {ex['original']!r} → {ex['corrupted']!r}")
    lines += ["", "## Noise model per language", ""]
    for lang, d in data["noise_model"].items():
        lines.append(f"- **{lang}** ({d['layout'] or 'no keyboard model'}): {d['note']}")
    lines += [
        "",
        "Notes: a rate is the probability that a letter or combining mark anchors one edit (spaces, digits "
        "and punctuation are never edited), so 0.1 means about one typo per ten letters — heavy for English "
        "words. The same rate is not the same damage in every script (a Han character is a whole "
        "morpheme, a Latin letter part of one; zh gets only drops, swaps and homophones), so compare "
        "languages by their curves, not by the rate alone. Diacritic dropping is one edit type among seven, "
        "applied only where a letter carries a droppable mark; the systematic 'typed without diacritics' "
        "style is not modelled separately. Query vectors of systems are computed here (in the requested "
        "dtype), so their rate-0 numbers can differ slightly from an experiment's float32 evaluation.",
    ]
    return "\n".join(lines)


def _report_groups(es: EvalSet) -> list[str]:
    if es.name == "xquad":
        return [g for g in ("non-en", "en") if g in es.groups] + [
            g for g in es.groups if g not in ("non-en", "en", "all")
        ]
    return list(es.groups)


def _noise_groups(es: EvalSet) -> list[str]:
    if es.name == "xquad":
        return [g for g in es.groups if g not in ("non-en", "all")]
    return ["all"]


def _panels(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(benchmark, group, title) for the summary figure."""
    panels = []
    if "locomo" in data["means"]:
        panels.append(("locomo", "all", "LoCoMo (English)"))
    if "xquad" in data["means"]:
        groups = next(iter(data["means"]["xquad"].values()))
        if "non-en" in groups:
            panels.append(("xquad", "non-en", "XQuAD non-English"))
        if "en" in groups:
            panels.append(("xquad", "en", "XQuAD English"))
        if not panels or panels[-1][0] != "xquad":
            panels.append(("xquad", "all", "XQuAD"))
    return panels


def _plot(out: Path, data: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [100 * r for r in data["rates"]]
    labels = list(data["entries"])
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    panels = _panels(data)
    rows = [
        ("mrr@10", "means", "MRR@10"),
        ("recall@10", "means", "Recall@10"),
        ("mrr@10", "relative", "MRR@10 / clean"),
    ]
    fig, axes = plt.subplots(
        len(rows), len(panels), figsize=(4.2 * len(panels), 3.2 * len(rows)), squeeze=False
    )
    for c, (bench, group, title) in enumerate(panels):
        for r, (metric, table, ylabel) in enumerate(rows):
            ax = axes[r][c]
            for label, groups in data[table][bench].items():
                ys = [np.nan if v is None else v for v in groups[group][metric]]
                ax.plot(rates, ys, marker="o", color=colours[label], label=label)
            if r == 0:
                ax.set_title(title)
            if c == 0:
                ax.set_ylabel(ylabel)
            if r == len(rows) - 1:
                ax.set_xlabel("noise rate (% of letters edited)")
            ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colours[label], marker="o", label=label) for label in labels]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(labels), 6), fontsize=9)
    fig.suptitle("Retrieval quality vs query misspelling rate")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    names = ["misspellings-curves.png"]
    save_figure(fig, out / names[0])

    if "xquad" in data["means"]:
        groups = [g for g in next(iter(data["means"]["xquad"].values())) if g not in ("non-en", "all")]
        if len(groups) > 1:
            ncol = min(4, len(groups))
            nrow = math.ceil(len(groups) / ncol)
            fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.8 * nrow), squeeze=False, sharey=True)
            for k, group in enumerate(groups):
                ax = axes[k // ncol][k % ncol]
                for label, g in data["means"]["xquad"].items():
                    ys = [np.nan if v is None else v for v in g[group]["mrr@10"]]
                    ax.plot(rates, ys, marker=".", color=colours[label], label=label)
                ax.set_title(f"XQuAD {group}")
                ax.grid(alpha=0.3)
            for k in range(len(groups), nrow * ncol):
                axes[k // ncol][k % ncol].axis("off")
            axes[0][0].legend(fontsize=7)
            fig.supylabel("MRR@10")
            fig.supxlabel("noise rate (% of letters edited)")
            fig.tight_layout()
            names.append("misspellings-xquad-languages.png")
            save_figure(fig, out / names[1])
    return names


def render(data: dict[str, Any], eval_sets: Sequence[EvalSet], out: Path) -> Rendered:
    """Headline, body and the figures (drawn into ``out``) of one analysis."""
    out.mkdir(parents=True, exist_ok=True)
    figures = _plot(out, data)
    return Rendered(headline(data), _body(data, eval_sets), figures)


def saved_eval_sets(data: dict[str, Any]) -> list[EvalSet]:
    """The benchmarks of saved ``data`` as the name-and-groups shells :func:`render` reads (no texts:
    the body needs only each benchmark's name and its reporting groups, in order)."""
    sets = []
    for name in data["benchmarks"]:
        groups = next(iter(data["means"][name].values()), {})
        sets.append(EvalSet(name, [], [], {}, {g: [] for g in groups}))
    return sets


def render_saved(data: dict[str, Any], out: str | Path) -> Rendered:
    """:func:`render` of an analysis folder's saved ``data`` (benchmarks rebuilt from it)."""
    return render(data, saved_eval_sets(data), Path(out))
