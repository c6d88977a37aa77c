"""The lever study's report (``levers.md`` / ``levers.json``) and the old-vs-new generator table
(``compare.md``): rendering only; the numbers come from :func:`xqg.experiments.levers.run_levers`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def table_summary(table: Any, metric: str, level: float = 0.05) -> dict[str, Any]:
    """Test avg, mean relative gain (non-en), significant gains and losses of a compared table."""
    from xqg.experiments.augmentation import _significant

    rows = {r.label: r for r in table.rows}
    langs = [x for x in rows if x not in ("avg", "micro")]
    non_en = [x for x in langs if x != "en"]
    rel = [rows[x].delta[metric] / (rows[x].values[metric] - rows[x].delta[metric]) for x in non_en]
    return {
        "test": rows["avg"].values[metric],
        "test_gain": float(np.mean(rel)),
        "significant_gains": [x for x in non_en if _significant(rows[x], metric, level, +1)],
        "significant_losses": [x for x in langs if _significant(rows[x], metric, level, -1)],
    }


def write_levers_report(rep: Path, summary: dict[str, Any], tables: dict[str, Any]) -> None:
    from xqg.data._jsonl import atomic_text_writer

    rep.mkdir(parents=True, exist_ok=True)
    m = summary["metric"]
    lines = [
        "# Query-generation levers on XQuAD dev (issue 13)",
        "",
        f"Generated folder: `{summary['generated']}` ({summary['generator']}). Every lever picks which of "
        "these queries a passage vector fuses; its strategy and α are tuned on the "
        f"**{summary['tune_split']}** "
        f"questions ({summary['dev_queries']}) over {summary['strategies']} × α ∈ {summary['alphas']}. "
        f"Numbers are dev macro {m} (12 languages) and the mean relative gain over the 11 non-English ones.",
        "",
        *(
            f"Extra source `{name}`: folder `{x['folder']}` ({_without(x, 'folder')})."
            for name, x in summary.get("extra", {}).items()
        ),
        "",
        "Regenerate: `python -m xqg.experiments.levers CONFIG --generated DIR [--extra NAME=DIR …] "
        "--report-dir DIR`",
        "",
        f"| lever | family | queries / passage | fusion | dev {m} | dev gain (non-en) |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in summary["levers"]:
        fusion = f"{r['strategy']}, α={r['alpha']:g}" if "strategy" in r else "–"
        lines.append(
            f"| {r['lever']} | {r['family']} | {r['queries']:.1f} | {fusion} | {r['dev']:.4f} "
            f"| {r['dev_gain']:+.2%} |"
        )
    lines += ["", "## Human-question oracle (leave-one-out), tuned on dev, reported on test", ""]
    for r in summary["oracle"]:
        lines += [
            f"### {r['system']}",
            "",
            f"dev {m} {r['dev']:.4f} ({r['dev_gain']:+.2%}); fusion {r['strategy']}, "
            f"α={r['alpha']:g}. Test {r['test']:.4f} ({r['test_gain']:+.2%}), significant gains in "
            f"{len(r['significant_gains'])}/11, losses: {', '.join(r['significant_losses']) or 'none'}.",
            "",
            tables[r["system"]].to_markdown(),
            "",
        ]
    rt = summary.get("round_trip")
    if rt:
        lines += [
            f"## Round trip per language, XQuAD test-split paragraphs ({rt['paragraphs']})",
            "",
            f"Old: `{rt['old']['folder']}` (the shipped adapter, transformers float32, n = 5). "
            "New: this folder's "
            "first 5 and first 10 samples (v2 engine, bf16). rt@k: the query retrieves its own paragraph "
            "within the top k of all 240 (e5-small).",
            "",
            "| lang | rt@1 old | new n=5 | new n=10 | rt@10 old | new n=5 | new n=10 |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for lang in sorted(k for k in rt["new n=5"] if k != "en"):
            o, a5, a10 = rt["old"].get(lang), rt["new n=5"][lang], rt["new n=10"][lang]
            if not isinstance(o, dict):
                continue
            lines.append(f"| {lang} | {o['rt@1']:.3f} | {a5['rt@1']:.3f} | {a10['rt@1']:.3f} | "
                         f"{o['rt@10']:.3f} | {a5['rt@10']:.3f} | {a10['rt@10']:.3f} |")  # fmt: skip
        lines.append("")
    with atomic_text_writer(rep / "levers.md") as fh:
        fh.write("\n".join(lines) + "\n")
    with atomic_text_writer(rep / "levers.json") as fh:
        json.dump({k: v for k, v in summary.items()}, fh, indent=1, default=str)
        fh.write("\n")


def compare_results(old: dict[str, Any], new: dict[str, Any], system: str = "tuned") -> str:
    """Markdown: the old and the new generator's ``system`` side by side, per language (test)."""
    m = old["metric"]
    o, n = old["systems"][system], new["systems"][system]
    ob, nb = old["systems"]["baseline"], new["systems"]["baseline"]

    def cell(entry: dict[str, Any], lang: str) -> str:
        v = entry["langs"][lang]
        star = "*" if v["p"][m] is not None and v["p"][m] < old.get("alpha_level", 0.05) else ""
        return f"{v['values'][m]:.3f} | {v['delta'][m]:+.3f}{star}"

    lines = [
        f"| lang | baseline {m} | old {m} | Δ | new {m} | Δ |",
        "|---|---|---|---|---|---|",
    ]
    for lang in [*new["langs"], "avg"]:
        lines.append(f"| {lang} | {nb['langs'][lang]['values'][m]:.3f} | {cell(o, lang)} | {cell(n, lang)} |")

    def line(name: str, e: dict[str, Any]) -> str:
        g = e["mean_relative_gain_non_en"]
        losses = ", ".join(e["significant_losses"]) or "none"
        return f"| {name} | {e['describe']} | {g:+.1%} | {len(e['significant_gains'])}/11 | {losses} |"

    ob_same = ob["langs"]["avg"]["values"][m] == nb["langs"]["avg"]["values"][m]
    lines += [
        "",
        "| generator | settings (chosen on dev) | mean rel. gain (non-en) | sig. gains | sig. losses |",
        "|---|---|---|---|---|",
        line("old", o),
        line("new", n),
        "",
        f"`*`: p < 0.05, paired permutation test against the baseline. Same baseline: {ob_same}.",
    ]
    return "\n".join(lines)


def write_side_by_side(old_json: str | Path, new_json: str | Path, out_md: str | Path) -> Path:
    """``compare.md``: the old and the new generator's tuned system per language, from two results.json."""
    from xqg.data._jsonl import atomic_text_writer

    old, new = (json.loads(Path(p).read_text(encoding="utf-8")) for p in (old_json, new_json))
    text = (
        "# The old and the new generator side by side (XQuAD test, settings chosen on dev)\n\n"
        f"Old: `{Path(old_json).parent.name}` ({old['generator']['n']} per language, "
        f"{old['generator'].get('folder')}). New: `{Path(new_json).parent.name}` "
        f"({new['generator']['n']} per language, {new['generator'].get('folder')}).\n\n"
        + compare_results(old, new)
        + "\n\nRegenerate: `python -m xqg.experiments.levers --side-by-side "
        "OLD/results.json NEW/results.json`\n"
    )
    out = Path(out_md)
    with atomic_text_writer(out) as fh:
        fh.write(text)
    return out
