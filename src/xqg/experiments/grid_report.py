"""The grid's report: ``results.md`` + ``results.json`` + PNGs (Δ heatmap, xQG-on-top bars, loss
curves copied from each training/distillation run, bitext accuracy before/after distillation)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from xqg.evaluate.tables import LanguageTable
from xqg.io import atomic_open, atomic_path, portable_tree, read_json, write_json
from xqg.render import save_figure

LEVEL = 0.05


def _rows(table: LanguageTable) -> dict[str, Any]:
    return {r.label: r for r in table.rows}


def significant_gains(table: LanguageTable, langs: list[str], metric: str) -> list[str]:
    """The non-English languages of ``table`` with a significant (p < LEVEL) positive Δ."""
    rows = _rows(table)
    return [x for x in langs if x != "en" and x in rows and (rows[x].p.get(metric) or 1) < LEVEL
            and (rows[x].delta.get(metric) or 0) > 0]  # fmt: skip


def _cell(row: Any, metric: str, compared: bool) -> str:
    v = row.values.get(metric)
    if v is None or v != v:
        return ""
    text = f"{v:.3f}"
    if compared:
        p, d = row.p.get(metric), row.delta.get(metric)
        if p is not None and d is not None and p < LEVEL and d != 0:
            text = f"**{text}**{'↑' if d > 0 else '↓'}"
    return text


def _heatmap(path: Path, cells: dict[str, LanguageTable], langs: list[str], metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(cells)
    cols = [*langs, "avg"]
    delta = np.array(
        [[(_rows(cells[n])[c].delta.get(metric) or 0.0) if c in _rows(cells[n]) else np.nan for c in cols]
         for n in names]
    )  # fmt: skip
    pvals = np.array([[(_rows(cells[n])[c].p.get(metric) or 1.0) for c in cols] for n in names])
    lim = max(0.01, float(np.nanmax(np.abs(delta))))
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * len(cols), 0.8 + 0.42 * len(names)))
    im = ax.imshow(delta, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(cols)):
            mark = "*" if pvals[i, j] < LEVEL and delta[i, j] != 0 else ""
            ax.text(j, i, f"{delta[i, j] * 100:+.1f}{mark}", ha="center", va="center", fontsize=7)
    ax.set_title(f"Δ {metric} ×100 vs the untrained baseline (* p < {LEVEL}, paired permutation)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.025)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _xqg_bars(path: Path, effect: dict[str, LanguageTable], langs: list[str], metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(effect)
    cols = [*langs, "avg"]
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(11, 3.8))
    for k, name in enumerate(names):
        rows = _rows(effect[name])
        d = [rows[c].delta.get(metric) or 0.0 for c in cols]
        sig = [(rows[c].p.get(metric) or 1.0) < LEVEL for c in cols]
        xs = np.arange(len(cols)) + (k - (len(names) - 1) / 2) * width
        bars = ax.bar(xs, d, width, label=name)
        for b, s in zip(bars, sig, strict=True):
            if s:
                b.set_hatch("//")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_ylabel(f"Δ {metric} (xQG on − off)")
    ax.set_title(f"What xQG adds on top of each model (hatched: p < {LEVEL})", fontsize=10)
    ax.legend(fontsize=7, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _resource_section(
    cells: dict[str, LanguageTable], effect: dict[str, LanguageTable], langs: list[str], metric: str
) -> list[str]:
    """Mean Δ per resource group (Joshi et al. 2020 classes; see xqg.analyse.resource_levels)."""
    from xqg.analyse.resource_levels import resource_group

    groups: dict[str, list[str]] = {}
    for lang in langs:
        if lang != "en":
            groups.setdefault(resource_group(lang), []).append(lang)
    order = [g for g in ("low", "high") if g in groups]
    lines = [
        "## Low- vs high-resource languages",
        "",
        "Groups (English, the control, left out): "
        + "; ".join(f"**{g}**: {', '.join(groups[g])}" for g in order)
        + ". Classes from Joshi et al. 2020 (ACL); high = class ≥ 4 (xqg.analyse.resource_levels).",
        "",
        "| cell | "
        + " | ".join(f"{g}: mean Δ vs baseline | {g}: langs sig. ↑" for g in order)
        + " | "
        + " | ".join(f"{g}: xQG on top Δ" for g in order)
        + " |",
        "|---|" + "---:|---:|" * len(order) + "---:|" * len(order),
    ]
    for name, table in cells.items():
        rows = _rows(table)
        parts = []
        for g in order:
            d = [rows[x].delta.get(metric) or 0.0 for x in groups[g]]
            sig = sum(
                1
                for x in groups[g]
                if (rows[x].p.get(metric) or 1) < LEVEL and (rows[x].delta.get(metric) or 0) > 0
            )
            parts.append(f"{np.mean(d):+.3f} | {sig}/{len(groups[g])}")
        model = name.removesuffix("+xQG")
        on_top = []
        for g in order:
            if name.endswith("+xQG") and model in effect:
                er = _rows(effect[model])
                on_top.append(f"{np.mean([er[x].delta.get(metric) or 0.0 for x in groups[g]]):+.3f}")
            else:
                on_top.append("")
        lines.append(f"| {name} | " + " | ".join(parts) + " | " + " | ".join(on_top) + " |")
    return [*lines, ""]


def aim_check(
    cells: dict[str, LanguageTable],
    effect: dict[str, LanguageTable],
    langs: list[str],
    metric: str,
    *,
    gap_lang: str = "ar",
    english_tolerance: float = 0.01,
) -> dict[str, Any]:
    """The issue's aim, measured: does distillation close half of the baseline's en–``gap_lang``
    gap without costing English more than ``english_tolerance``, and does xQG add a significant
    gain on top of each distilled model in most (> half) non-English languages?

    Each ``<model>+distill`` cell is compared with the untrained baseline (the gap the aim names)
    and with the model it was distilled from (what distillation itself did)."""
    if "base" not in cells or "en" not in langs or gap_lang not in langs:
        return {}
    non_en = [x for x in langs if x != "en"]

    def value(name: str, lang: str) -> float:
        return float(_rows(cells[name])[lang].values[metric])

    base_gap = value("base", "en") - value("base", gap_lang)
    out: dict[str, Any] = {"gap_lang": gap_lang, "english_tolerance": english_tolerance,
                           "base_gap": base_gap, "distilled": {}}  # fmt: skip
    for name in cells:
        if not name.endswith("+distill"):
            continue
        source = name.removesuffix("+distill")
        gap = value(name, "en") - value(name, gap_lang)
        en_change = value(name, "en") - value("base", "en")
        closed = (base_gap - gap) / base_gap if base_gap > 0 else float("nan")
        sig = significant_gains(effect[name], langs, metric) if name in effect else []
        src_gap = value(source, "en") - value(source, gap_lang) if source in cells else float("nan")
        out["distilled"][name] = {
            "gap": gap,
            "gap_closed": closed,
            "source_gap": src_gap,
            "english_change": en_change,
            "gap_met": bool(closed >= 0.5 and en_change >= -english_tolerance),
            "xqg_significant_gains": sig,
            "xqg_met": len(sig) > len(non_en) / 2,
        }
    return out


def _aim_section(aim: dict[str, Any], metric: str, n_non_en: int) -> list[str]:
    if not aim.get("distilled"):
        return []
    g = aim["gap_lang"]
    lines = [
        "## Against the aim",
        "",
        f"Aim: distillation closes at least half of the untrained baseline's en–{g} {metric} gap "
        f"({aim['base_gap']:.3f}) while English moves by no more than −{aim['english_tolerance']:.2f}, "
        "and xQG adds a significant gain on top of the distilled model in most non-English languages.",
        "",
        f"| distilled model | en–{g} gap (its source model's) | share of the baseline gap closed | "
        "English vs baseline | gap aim | xQG significant gains | xQG aim |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for name, a in aim["distilled"].items():
        lines.append(
            f"| {name} | {a['gap']:.3f} ({a['source_gap']:.3f}) | {a['gap_closed'] * 100:+.0f} % | "
            f"{a['english_change']:+.3f} | {'met' if a['gap_met'] else 'not met'} | "
            f"{len(a['xqg_significant_gains'])}/{n_non_en} | {'met' if a['xqg_met'] else 'not met'} |"
        )
    return [*lines, ""]


def _bitext_section(summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name, run in summary.get("runs", {}).items():
        f = Path(run) / "bitext.json"
        if not f.is_file():
            continue
        data = read_json(f)
        lines += [f"**{name}** — held-out bitext retrieval accuracy (top-1), teacher → distilled:", ""]
        lines += [
            "| source | lang | X→en before | X→en after | en→X before | en→X after |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for source in ("tatoeba", "ntrex"):
            before, after = data["teacher"].get(source, {}), data["distilled"].get(source, {})
            for lang in sorted(before):
                b, a = before[lang], after.get(lang, {})
                lines.append(
                    f"| {source} | {lang} | {b['x2en']:.3f} | {a.get('x2en', float('nan')):.3f} | "
                    f"{b['en2x']:.3f} | {a.get('en2x', float('nan')):.3f} |"
                )
            if before:
                mb = np.mean([before[x]["x2en"] for x in before])
                ma = np.mean([after[x]["x2en"] for x in after])
                eb = np.mean([before[x]["en2x"] for x in before])
                ea = np.mean([after[x]["en2x"] for x in after])
                lines.append(f"| {source} | **avg** | {mb:.3f} | **{ma:.3f}** | {eb:.3f} | **{ea:.3f}** |")
        lines.append("")
    return lines


def write_grid_report(
    rep: Path,
    summary: dict[str, Any],
    cells: dict[str, LanguageTable],
    effect: dict[str, LanguageTable],
    out_dir: Path,
    *,
    command: str | None = None,
) -> None:
    rep.mkdir(parents=True, exist_ok=True)
    langs, metric = summary["langs"], summary["metric"]
    cols = [*langs, "avg"]
    lines = [f"# {summary['name']}: retriever training × distillation × xQG on XQuAD", ""]
    if command:
        lines += ["Regenerate with:", "", "```bash", command, "```", ""]
    lines += [
        f"{metric} on the XQuAD **test** split, per language. Each model is evaluated without xQG and "
        "with xQG (fusion strategy and α chosen on dev for that model: "
        + "; ".join(f"{n}: {d}" for n, d in summary["xqg_settings"].items())
        + f"). **Bold**↑/↓: significant (paired permutation, p < {LEVEL}) against the untrained baseline.",
        "",
    ]
    names = list(cells)
    lines += ["| lang | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for c in cols:
        lines.append(
            f"| {c} | "
            + " | ".join(_cell(_rows(cells[n])[c], metric, cells[n].compared) for n in names)
            + " |"
        )
    lines += ["", "![Δ vs baseline](grid_delta.png)", ""]

    lines += [
        "## What xQG adds on top of each model",
        "",
        f"Δ {metric} of xQG on vs off within the same model, with the paired permutation p.",
        "",
    ]
    lines += [
        "| lang | " + " | ".join(f"{n} Δ | p" for n in effect) + " |",
        "|---|" + "---:|---:|" * len(effect),
    ]
    for c in cols:
        parts = []
        for n in effect:
            r = _rows(effect[n])[c]
            d, p = r.delta.get(metric), r.p.get(metric)
            parts.append(f"{d:+.3f} | {p:.3f}" if d is not None and p is not None else " | ")
        lines.append(f"| {c} | " + " | ".join(parts) + " |")
    counts = {n: len(significant_gains(effect[n], langs, metric)) for n in effect}
    lines += ["", "Significant xQG gains (of the non-English languages): "
              + ", ".join(f"{n} {k}" for n, k in counts.items()), "",
              "![xQG on top](xqg_on_top.png)", ""]  # fmt: skip

    aim = aim_check(cells, effect, langs, metric)
    summary["aim"] = aim
    lines += _aim_section(aim, metric, len([x for x in langs if x != "en"]))
    lines += _resource_section(cells, effect, langs, metric)
    bitext = _bitext_section(summary)
    if bitext:
        lines += ["## Distillation: bitext retrieval before and after", "", *bitext]
    losses = []
    for name, run in summary.get("runs", {}).items():
        src = Path(run) / "loss.png"
        if src.is_file():
            dst = rep / f"loss-{name.replace('+', '-')}.png"
            with atomic_path(dst) as tmp:
                shutil.copyfile(src, tmp)
            losses.append(f"![{name} loss]({dst.name})")
    if losses:
        lines += ["## Loss curves", "", *losses, ""]
    lines += ["## Settings", "", "```json", _settings_json(summary), "```", ""]
    _heatmap(rep / "grid_delta.png", cells, langs, metric)
    _xqg_bars(rep / "xqg_on_top.png", effect, langs, metric)
    with atomic_open(rep / "results.md") as fh:
        fh.write("\n".join(lines))
    write_json(rep / "results.json", portable_tree(summary, rep))  # no path of this machine


def _settings_json(summary: dict[str, Any]) -> str:
    import json

    cfg = dict(summary["config"])
    keys = ("train", "mining", "distill", "zero_shot_langs", "cross_lingual_langs", "eval_dtype")
    return json.dumps({k: cfg[k] for k in keys if k in cfg}, indent=1)
