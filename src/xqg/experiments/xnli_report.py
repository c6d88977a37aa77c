"""The XNLI experiment's report folder (``reports/xnli``): ``analysis.md``/``analysis.json`` (the
question, a one-or-two-sentence answer with numbers, the command), ``results.json``, a plot.

It is an *analysis* section for ``xqg report`` (:mod:`xqg.analyse.report` reads ``analysis.json``'s
question and headline). Everything is rendered from the summary dictionary alone, so
:func:`render_from_results` redraws it from a committed ``results.json`` without re-running.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from xqg.io import read_json, write_json

QUESTION = (
    "To what extent can cross-lingual query generation improve the performance of dense retrieval models "
    "on the XNLI benchmark when combined with data-efficient multilingual fine-tuning techniques like "
    "knowledge distillation?"
)
LEVEL = 0.05
PLOT = "xnli-grid.png"


def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _p(v: float | None) -> str:
    return "–" if v is None else ("<0.001" if v < 0.001 else f"{v:.3f}")


def _rows(table: dict[str, Any]) -> dict[str, Any]:
    return {r["lang"]: r for r in table["rows"]}


def _sig(row: dict[str, Any], metric: str, sign: int = 1) -> bool:
    p, d = (row.get("p") or {}).get(metric), (row.get("delta") or {}).get(metric)
    return p is not None and d is not None and p < LEVEL and d * sign > 0


def cells(summary: dict[str, Any]) -> dict[str, str | None]:
    """The four grid cells → their system name in ``tables`` (None = pending)."""
    d = summary["grid_distill"]
    names = {"base": "base", "base+xQG": "base+xQG", "base+distill": d, "base+distill+xQG": f"{d}+xQG"}
    return {cell: (s if s in summary["tables"] else None) for cell, s in names.items()}


def headline(summary: dict[str, Any]) -> str:
    """One or two plain sentences answering the question, with the numbers."""
    m = summary["metric"]
    c = cells(summary)
    non_en = [x for x in summary["langs"] if x != "en"]
    t = summary["tables"]
    base = _rows(t["base"]["hypothesis"])["avg"]["values"][m]
    dist = _rows(t[c["base+distill"]]["hypothesis"])
    n_dist = sum(_sig(dist[x], m) for x in non_en)
    pairs = summary["distill"].get(summary["grid_distill"].split(":", 1)[-1], {}).get("pairs", 0)
    text = (
        f"Distillation on {pairs:,} XNLI dev sentence pairs raises e5-small's macro {m} on XNLI test "
        f"(hypothesis → English premise) from {base:.3f} to {dist['avg']['values'][m]:.3f} "
        f"(p {_p(dist['avg']['p'][m])}; {n_dist}/{len(non_en)} languages up significantly)"
    )
    if c["base+xQG"] is None:
        return text + "; the xQG cells are pending (generation not finished)."
    eff = summary["xqg_effect"]
    parts = []
    for model, label in (("base", "base"), (summary["grid_distill"], "base+distill")):
        rows = _rows(eff[model])
        n_up = sum(_sig(rows[x], m) for x in non_en)
        n_down = sum(_sig(rows[x], m, -1) for x in non_en)
        down = f", {n_down} down" if n_down else ""
        avg = rows["avg"]
        parts.append(f"{avg['delta'][m]:+.3f} on {label} (p {_p(avg['p'][m])}; {n_up} up{down})")
    best = _rows(t[c["base+distill+xQG"]]["hypothesis"])["avg"]["values"][m]
    n = summary["generated"].get("n")
    return (
        f"{text}. Fusing {n} generated quer{'y' if n == 1 else 'ies'} per premise and language adds "
        f"{parts[0]} and {parts[1]}, so the combination reaches {best:.3f}."
    )


def grid_table(summary: dict[str, Any]) -> str:
    """Per language: the four cells' MRR@10, each with Δ and p against the base cell; then xQG on vs off."""
    m = summary["metric"]
    c = cells(summary)
    t = summary["tables"]
    head = ["lang", "group", "base"]
    for cell in ("base+xQG", "base+distill", "base+distill+xQG"):
        head += [cell, "Δ", "p"]
    head += ["xQG on distill: Δ", "p"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    groups = summary.get("resource_groups", {})
    eff = summary["xqg_effect"].get(summary["grid_distill"])
    eff_rows = _rows(eff) if eff else {}
    for lang in [*summary["langs"], "avg"]:
        base = _rows(t["base"]["hypothesis"])[lang]
        cells_txt = [f"**{lang}**" if lang == "avg" else lang, groups.get(lang, ""), _f(base["values"][m])]
        for cell in ("base+xQG", "base+distill", "base+distill+xQG"):
            if c[cell] is None:
                cells_txt += ["pending", "", ""]
                continue
            r = _rows(t[c[cell]]["hypothesis"])[lang]
            star = "*" if _sig(r, m) or _sig(r, m, -1) else ""
            cells_txt += [_f(r["values"][m]), f"{r['delta'][m]:+.3f}{star}", _p(r["p"][m])]
        e = eff_rows.get(lang)
        cells_txt += [f"{e['delta'][m]:+.3f}", _p(e["p"][m])] if e else ["pending", ""]
        lines.append("| " + " | ".join(cells_txt) + " |")
    return "\n".join(lines)


def baseline_table(summary: dict[str, Any]) -> str:
    """The e5-small baseline on test, per language, for the three tasks."""
    t = summary["tables"]["base"]
    metrics = summary["metrics"]
    head = (
        ["lang", "n"]
        + [f"hyp. {x}" for x in metrics]
        + ["entail. mrr@10", "bitext mrr@10", "bitext recall@1"]
    )
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    hyp, ent, bit = (_rows(t[k]) for k in ("hypothesis", "entailment", "premise"))
    for lang in [*summary["langs"], "avg"]:
        h = hyp[lang]
        n = next(iter(h["n"].values()))
        row = [f"**{lang}**" if lang == "avg" else lang, str(n), *[_f(h["values"][x]) for x in metrics]]
        row.append(_f(ent[lang]["values"]["mrr@10"]))
        b = bit.get(lang)
        row += [_f(b["values"]["mrr@10"]), _f(b["values"]["recall@1"])] if b else ["–", "–"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def distill_table(summary: dict[str, Any]) -> str:
    """Each distillation run: data, steps, time, and its effect on test retrieval and held-out bitext."""
    m = summary["metric"]
    t = summary["tables"]
    lines = [
        "| model | pairs | English targets | steps × batch | minutes | hyp. "
        + m
        + " (Δ, p) | entail. "
        + m
        + " | bitext "
        + m
        + " (Δ, p) | Tatoeba X→en | Tatoeba en→X |",
        "|---|---:|---:|---|---:|---|---:|---|---:|---:|",
    ]
    for model in ["base", *[f"base+distill:{k}" for k in summary["distill"]]]:
        info = summary["distill"].get(model.split(":", 1)[-1], {}) if model != "base" else {}
        tb = summary["tatoeba"].get(model, {})
        x2en = sum(v["x2en"] for v in tb.values()) / len(tb) if tb else None
        en2x = sum(v["en2x"] for v in tb.values()) / len(tb) if tb else None
        cellv = []
        for task in ("hypothesis", "entailment", "premise"):
            avg = _rows(t[model][task])["avg"]
            if model == "base" or task == "entailment":
                cellv.append(_f(avg["values"][m]))
            else:
                cellv.append(f"{_f(avg['values'][m])} ({avg['delta'][m]:+.3f}, p {_p(avg['p'][m])})")
        secs = info.get("seconds")
        lines.append(
            f"| {model} | {info.get('pairs', '–')} | {info.get('english_targets', '–')} | "
            f"{str(info.get('steps', '–')) + ' × ' + str(info.get('batch_size', '')) if info else '–'} | "
            f"{_f(secs / 60, 1) if secs else '–'} | {' | '.join(cellv)} | {_f(x2en)} | {_f(en2x)} |"
        )
    return "\n".join(lines)


def groups_table(summary: dict[str, Any]) -> str:
    lines = [
        "| group | languages | comparison | system | reference | Δ | p |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for group, g in summary["groups"].items():
        for name, r in g["tests"].items():
            lines.append(
                f"| {group} | {' '.join(g['langs'])} | {name} | {_f(r['system'])} | {_f(r['reference'])} | "
                f"{r['delta']:+.3f} | {_p(r['p'])} |"
            )
    return "\n".join(lines)


def seconds_table(summary: dict[str, Any]) -> str:
    lines = ["| step | seconds |", "|---|---:|"]
    for k, v in summary["seconds"].items():
        if isinstance(v, dict):
            lines += [f"| {k} · {kk} | {vv:.0f} |" for kk, vv in v.items()]
        else:
            lines.append(f"| {k} | {v:.0f} |")
    g = summary["generated"]
    if g.get("status") == "done" and g.get("seconds"):
        lines.append(
            f"| generation (xqg generate; its folder's first file to its manifest) | {g['seconds']:.0f} |"
        )
    return "\n".join(lines)


def plot(path: Path, summary: dict[str, Any]) -> None:
    """Per-language MRR@10 of the four cells (pending cells left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from xqg.render import save_figure

    m = summary["metric"]
    cols = [*summary["langs"], "avg"]
    present = {cell: s for cell, s in cells(summary).items() if s is not None}
    width = 0.8 / len(present)
    fig, ax = plt.subplots(figsize=(12, 3.8))
    for k, (cell, system) in enumerate(present.items()):
        rows = _rows(summary["tables"][system]["hypothesis"])
        xs = np.arange(len(cols)) + (k - (len(present) - 1) / 2) * width
        bars = ax.bar(xs, [rows[c]["values"][m] for c in cols], width, label=cell)
        for b, c in zip(bars, cols, strict=True):
            if system != "base" and _sig(rows[c], m):
                b.set_hatch("//")
    ax.set_xticks(range(len(cols)), cols)
    lo = min(_rows(summary["tables"]["base"]["hypothesis"])[c]["values"][m] for c in cols)
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.set_ylabel(f"{m} (test)")
    ax.set_title(
        f"XNLI hypothesis → English premise, {m} per language (hatched: gain over base, p < {LEVEL})",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=4)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def body(summary: dict[str, Any]) -> str:
    g = summary["generated"]
    gen = (
        f"generator `{g.get('model')}` + adapter `{Path(str(g.get('adapter'))).name}` "
        "(`xqg generate` defaults), "
        f"n = {g.get('n')} per premise and language, {', '.join(g.get('langs') or [])}"
        if g.get("status") == "done"
        else f"pending: no finished generation folder at `{g.get('folder')}` yet"
    )
    settings = (
        "; ".join(f"{k}: {v['describe']}" for k, v in (summary.get("xqg_settings") or {}).items()) or "–"
    )
    return "\n".join(
        [
            "Corpus: the split's English premises (test 1,670, dev 830); queries: hypotheses (graded: "
            "entailment 2, neutral 1, contradiction 1), the entailment hypotheses alone, and premises in X "
            "(bitext). "
            "Fusion strategy and α chosen per model on dev (macro MRR@10 of the hypothesis task), test "
            "scored once; p: paired permutation test (10,000 resamples) per language; * = p < 0.05. "
            "Details and choices: [docs/xnli.md](../../docs/xnli.md).",
            "",
            f"xQG queries: {gen}. Fusion chosen on dev: {settings}.",
            "",
            _subset_note(summary),
            "",
            f"## The grid on test: {summary['metric']} per language (Δ and p against base)",
            "",
            grid_table(summary),
            "",
            "## Low- and high-resource languages (Joshi et al. 2020 class ≥ 4 = high; macro over the group)",
            "",
            groups_table(summary),
            "",
            "## Baselines on test (e5-small, all 15 languages)",
            "",
            baseline_table(summary),
            "",
            "## Distillation on XNLI dev's parallel sentences",
            "",
            distill_table(summary),
            "",
            "Tatoeba: top-1 on the held-out (odd) lines, mean over the 14 languages, query side.",
            "",
            "## Wall time of this run here (2 CPU cores shared with other jobs; cached steps take seconds)",
            "",
            seconds_table(summary),
        ]
    )


def _subset_note(summary: dict[str, Any]) -> str:
    k = summary.get("test_every", 1)
    if k == 1:
        return "Test queries: all of them (5,010 hypotheses and 1,670 premises per language)."
    return (
        f"**Test queries: those of every {k}th test premise** ({len(range(0, 1670, k))} premises: "
        f"{3 * len(range(0, 1670, k))} hypotheses and {len(range(0, 1670, k))} premise queries per "
        "language), "
        "for every model alike, still retrieving among all 1,670 premises: the shared CPU left no time for "
        "all 98,530 test queries per model. `test_every: 1` in the config scores them all."
    )


def write_xnli_report(out_dir: str | Path, summary: dict[str, Any], *, command: str | None = None) -> Path:
    """``results.json``, the plot and ``analysis.md``/``analysis.json`` in ``out_dir``."""
    from xqg.analyse.common import write_analysis

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {**summary, "command": command or summary.get("command")}
    write_json(out / "results.json", summary)
    plot(out / PLOT, summary)
    return write_analysis(
        out,
        name="XNLI: distillation and xQG (issue 15)",
        question=QUESTION,
        headline=headline(summary),
        body_md=body(summary),
        data={
            k: summary[k] for k in ("metric", "langs", "grid_distill", "generated", "groups", "xqg_settings")
        },
        figures=[PLOT],
        command=summary["command"],
    )


def render_from_results(out_dir: str | Path) -> Path:
    """Redraw the report from its committed ``results.json``."""
    summary = read_json(Path(out_dir) / "results.json")
    return write_xnli_report(out_dir, summary)
