"""The augmentation experiment's report folder: ``results.md``, ``results.json``, per-system tables
and three plots (α curve, number of generated queries, per-language gains).

Everything is rendered from the summary dictionary alone, so the report can be re-drawn from a
committed ``results.json`` without re-running anything.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from xqg.evaluate.tables import LanguageTable
from xqg.io import atomic_open, portable_tree, write_json
from xqg.render import fmt_p, save_figure

HEADLINE = ("paper", "tuned")


def _f(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


_p = fmt_p


def _signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+.3f}"


def best_variant(summary: dict[str, Any]) -> str:
    """The variant (not baseline/paper/tuned) with the highest eval-split macro average."""
    metric = summary["metric"]
    names = [s for s in summary["systems"] if s not in ("baseline", *HEADLINE)]
    if not names:
        return "tuned"
    return max(names, key=lambda s: summary["systems"][s]["langs"]["avg"]["values"][metric] or -1)


def headline_table(summary: dict[str, Any], systems: list[str]) -> str:
    """Per language: baseline metric, then each system's value, Δ and p."""
    metric = summary["metric"]
    sysd = summary["systems"]
    head = ["lang", f"baseline {metric}"]
    for s in systems:
        head += [f"{s} {metric}", "Δ", "p"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang in [*summary["langs"], "avg"]:
        base = sysd["baseline"]["langs"].get(lang)
        if base is None:
            continue
        cells = [f"**{lang}**" if lang == "avg" else lang, _f(base["values"][metric])]
        for s in systems:
            e = sysd[s]["langs"][lang]
            p = e["p"][metric]
            star = "*" if p is not None and p < summary["alpha_level"] else ""
            cells += [_f(e["values"][metric]), _signed(e["delta"][metric]) + star, _p(p)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overview_table(summary: dict[str, Any]) -> str:
    """One row per system: settings chosen on dev, eval macro averages, significance counts."""
    metric = summary["metric"]
    metrics = summary["metrics"]
    head = ["system", "settings (chosen on dev)", *[f"avg {m}" for m in metrics], "sig. gains", "sig. losses",
            "mean rel. gain (non-en)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in summary["systems"].items():
        avg = s["langs"]["avg"]["values"]
        gains = s.get("significant_gains")
        losses = s.get("significant_losses")
        rel = s.get("mean_relative_gain_non_en")
        cells = [
            name,
            s["describe"],
            *[_f(avg.get(m)) for m in metrics],
            "–" if gains is None else f"{len(gains)}/{len([x for x in summary['langs'] if x != 'en'])}",
            "–" if losses is None else (", ".join(losses) or "none"),
            "–" if rel is None else f"{100 * rel:+.1f} %",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "\n".join(lines)
        + f"\n\nSignificance: {summary['significance']} test on {metric}, p < {summary['alpha_level']}."
    )


def diagnostics_table(summary: dict[str, Any]) -> str:
    d = summary["diagnostics"]
    head = ["lang", "generated", "own passage @1", "own passage @10", "cos(gen q, own p)",
            "cos(test q, gold p)", "max cos(test q, gen q)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lang, e in d["per_lang"].items():
        lines.append(
            "| "
            + " | ".join(
                [
                    lang,
                    str(e.get("generated", "–")),
                    _f(e.get("own_rank1")),
                    _f(e.get("own_rank10")),
                    _f(e.get("generated_own_cos")),
                    _f(e.get("test_query_gold_cos")),
                    _f(e.get("test_query_to_generated_max_cos")),
                ]
            )
            + " |"  # fmt: skip
        )
    lines.append(
        f"\nMean ‖p‖ = {d['passage_norm']:.3f}; mean ‖Σq‖ over a passage's {d['queries_per_passage']:.0f} "
        f"generated queries = {d['query_sum_norm']:.2f}, so under `paper` fusion α·Σq weighs "
        f"{d['query_sum_norm']:.1f}·α against (1-α)·p: α = 0.01 already moves the vector by about "
        f"{0.01 * d['query_sum_norm'] / max(d['passage_norm'], 1e-9):.0%} of its length."
    )
    return "\n".join(lines)


def grid_table(summary: dict[str, Any], name: str) -> str:
    metric = summary["metric"]
    rows = summary["grids"][name]
    keys = [k for k in rows[0] if k not in ("kind", metric)]
    lines = ["| " + " | ".join([*keys, f"dev {metric}"]) + " |", "|" + "---|" * (len(keys) + 1)]
    best = max(r[metric] for r in rows)
    for r in rows:
        cell = _f(r[metric], 4)
        lines.append(
            "| "
            + " | ".join([*(str(r[k]) for k in keys), f"**{cell}**" if r[metric] == best else cell])
            + " |"
        )
    return "\n".join(lines)


def why_section(summary: dict[str, Any]) -> str:
    """Evidence on where the gains come from, computed from the summary alone."""
    import numpy as np

    metric = summary["metric"]
    ev = summary["splits"]["eval"]["name"]
    langs = [lang for lang in summary["langs"] if lang != "en"]
    sysd = summary["systems"]
    base = np.array([sysd["baseline"]["langs"][lang]["values"][metric] for lang in langs])
    gain = np.array([sysd["tuned"]["langs"][lang]["delta"][metric] for lang in langs])
    own1 = np.array([summary["diagnostics"]["per_lang"][lang].get("own_rank1") or np.nan for lang in langs])
    lines = []
    if len(langs) > 2:
        r_head = float(np.corrcoef(base, gain)[0, 1])
        ok = ~np.isnan(own1)
        r_gen = float(np.corrcoef(own1[ok], gain[ok])[0, 1]) if ok.sum() > 2 else float("nan")
        lines.append(
            f"- **Headroom.** Across the {len(langs)} non-English languages, the tuned fusion's gain "
            f"correlates with the baseline's {metric} at r = {r_head:+.2f} (negative: the languages the "
            "baseline serves worst gain most)."
        )
        lines.append(
            f"- **Generator quality.** The gain correlates with how often a language's generated queries "
            f"retrieve their own passage first (diagnostics, own passage @1) at r = {r_gen:+.2f}."
        )
    curve = {(r["strategy"], r["alpha"]): r for r in summary["alpha_curve"]}
    a = summary["systems"]["paper"]["settings"]["alpha"]
    if ("paper", a) in curve and ("paper-norm", a) in curve:
        raw, norm = curve[("paper", a)], curve[("paper-norm", a)]
        lines.append(
            f"- **Scale, not direction.** At the paper's α = {a:g}, re-normalising the fused vector "
            f"(`paper-norm`) gives dev {metric} {norm[metric]:.3f} against {raw[metric]:.3f} for raw "
            f"`paper` ({ev}: "
            f"{norm[f'{ev}_{metric}']:.3f} vs {raw[f'{ev}_{metric}']:.3f}). With unit-length e5 vectors, raw "
            "fusion also changes each passage's length by its own ‖Σq‖, and inner-product search rewards "
            "that length; re-normalising keeps only the direction the queries add."
        )
    return "\n".join(lines)


def plot_alpha(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = summary["metric"]
    ev = summary["splits"]["eval"]["name"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=False)
    for ax, key, title in (
        (axes[0], metric, f"dev (selection), macro {metric}"),
        (axes[1], f"{ev}_{metric}", f"{ev} (after selection), macro {metric}"),
    ):
        for strategy in dict.fromkeys(r["strategy"] for r in summary["alpha_curve"]):
            pts = sorted((r["alpha"], r[key]) for r in summary["alpha_curve"] if r["strategy"] == strategy)
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", ms=3, label=strategy)
        base = [r[key] for r in summary["alpha_curve"] if r["alpha"] == 0.0]
        if base:
            ax.axhline(base[0], color="grey", ls="--", lw=1, label="baseline (α = 0)")
        paper = summary["systems"]["paper"]["settings"]["alpha"]
        ax.axvline(paper, color="black", ls=":", lw=1, label=f"paper α = {paper:g}")
        ax.set_xscale("symlog", linthresh=0.002)
        ax.set_xlim(left=0)
        ax.set_xlabel("α")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{summary['name']}: fusion strategy and α", fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_n(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = summary["metric"]
    ev = summary["splits"]["eval"]["name"]
    curve = summary["n_curve"]
    ns = [r["n"] for r in curve]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in HEADLINE:
        axes[0].plot(
            ns, [r[name] for r in curve], marker="o", label=f"{name}: {summary['systems'][name]['describe']}"
        )
    axes[0].set_xlabel("generated queries per language (n)")
    axes[0].set_title(f"{ev}: macro {metric}", fontsize=10)
    axes[0].legend(fontsize=7)
    axes[0].grid(alpha=0.3)
    for lang in summary["langs"]:
        base = curve[0]["tuned_by_lang"][lang]
        axes[1].plot(ns, [r["tuned_by_lang"][lang] - base for r in curve], marker=".", label=lang)
    axes[1].axhline(0, color="grey", lw=1)
    axes[1].set_xlabel("generated queries per language (n)")
    axes[1].set_title(f"{ev}: Δ {metric} per language (tuned fusion)", fontsize=10)
    axes[1].legend(fontsize=7, ncol=2)
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def plot_languages(summary: dict[str, Any], systems: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metric = summary["metric"]
    langs = summary["langs"]
    x = np.arange(len(langs))
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(11, 4))
    for i, s in enumerate(systems):
        e = summary["systems"][s]["langs"]
        d = [e[lang]["delta"][metric] for lang in langs]
        bars = ax.bar(
            x + i * width - 0.4 + width / 2, d, width, label=f"{s}: {summary['systems'][s]['describe']}"
        )
        for b, lang in zip(bars, langs, strict=True):
            p = e[lang]["p"][metric]
            if p is not None and p < summary["alpha_level"]:
                ax.annotate("*", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                            va="bottom" if b.get_height() >= 0 else "top")  # fmt: skip
    ax.axhline(0, color="grey", lw=1)
    ax.set_xticks(x, langs)
    ax.set_ylabel(f"Δ {metric} vs baseline")
    ax.set_title(
        f"{summary['splits']['eval']['name']}: gain per language (* p < {summary['alpha_level']})",
        fontsize=10,
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def render_markdown(summary: dict[str, Any], command: str | None = None) -> str:
    metric = summary["metric"]
    best = best_variant(summary)
    g = summary["generator"]
    enc = summary["encoder"]
    ev, tu = summary["splits"]["eval"], summary["splits"]["tune"]
    adapter = Path(str(g["adapter"])).name if g["adapter"] else "none"
    out = [
        f"# {summary['name']}: passage-embedding augmentation with generated queries on XQuAD",
        "",
        f"Corpus: the 240 English XQuAD paragraphs. Questions: {', '.join(summary['langs'])}. "
        f"Settings are chosen on the **{tu['name']}** split ({tu['queries']} questions); every number below "
        f"is on the **{ev['name']}** split ({ev['queries']} questions), evaluated once per system.",
        "",
        f"- Encoder: `{enc['model']}` ({enc['pooling']} pooling, normalised={enc['normalize']}), "
        f"passages up to {enc['passage_max_length']} tokens, questions up to {enc['query_max_length']}, "
        f"generated queries up to {summary['generated_query_max_length']} (the paper's setting).",
        f"- Generator: `{g['model']}` with adapter `{adapter}`, n = {g['n']} per language in "
        f"{', '.join(g['langs'] or [])}, decoding {g['decoding']}.",
        "- Significance: paired two-sided "
        f"{summary['significance']} test per language against the baseline on the same questions; "
        f"`*` marks p < {summary['alpha_level']}.",
    ]
    if command:
        out += ["", "Regenerate:", "", "```", command, "```"]
    out += [
        "",
        f"## Per language: {metric}",
        "",
        headline_table(summary, ["paper", "tuned", best] if best != "tuned" else ["paper", "tuned"]),
        "",
        "![gain per language](per_language.png)",
        "",
        "## All systems",
        "",
        overview_table(summary),
        "",
        "Per-system tables with every metric, Δ and p: `tables/<system>.md`.",
        "",
        "## α and fusion strategy",
        "",
        "The left panel is what the tuning saw (dev); the right panel draws the same grid on the eval split "
        "after the choice was made, for analysis only.",
        "",
        "![alpha](alpha.png)",
        "",
        "## Number of generated queries per language",
        "",
        "![n](n_queries.png)",
        "",
        "| n | " + " | ".join(HEADLINE) + " |",
        "|---|" + "---|" * len(HEADLINE),
        *[f"| {r['n']} | " + " | ".join(_f(r[name]) for name in HEADLINE) + " |" for r in summary["n_curve"]],
        "",
        "## Why the gains are where they are",
        "",
        why_section(summary),
        "",
        "## Diagnostics",
        "",
        diagnostics_table(summary),
        "",
        "FAISS (stage folders `xqg augment` → `xqg index` → search) vs the in-memory scorer used for grids, "
        f"largest per-question {metric} difference: "
        + ", ".join(f"{k} {v:.2g}" for k, v in summary["faiss_vs_memory_max_abs_diff"].items())
        + ".",
        "",
        "## Dev grids",
        "",
    ]
    for name in summary["grids"]:
        chosen = summary["systems"][name]["describe"]
        out += [f"### {name}", "", f"Chosen: {chosen}", "", "<details><summary>grid</summary>", "",
                grid_table(summary, name), "", "</details>", ""]  # fmt: skip
    return "\n".join(out) + "\n"


def write_report(
    out_dir: str | Path, summary: dict[str, Any], tables: dict[str, LanguageTable], command: str | None = None
) -> Path:
    """Write the report folder; returns the path of ``results.md``."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.write(out / "tables", name)
    write_json(out / "results.json", portable_tree(summary, out))  # no path of this machine
    best = best_variant(summary)
    plot_alpha(summary, out / "alpha.png")
    plot_n(summary, out / "n_queries.png")
    plot_languages(
        summary, ["paper", "tuned", *([best] if best != "tuned" else [])], out / "per_language.png"
    )
    with atomic_open(out / "results.md") as fh:
        fh.write(render_markdown(summary, command))
    return out / "results.md"
