"""``build_report``: two analysis folders and an experiment report become one Markdown report and one
self-contained HTML page (images embedded, tables rendered, commands and headlines kept, in order)."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest

from xqg.analyse.common import write_analysis
from xqg.analyse.report import build_report
from xqg.errors import XqgError


def tiny_png(rgb: tuple[int, int, int]) -> bytes:
    """A valid 1×1 PNG of one colour (distinct colours give distinct bytes to look for)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    raw = b"\x00" + bytes(rgb)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def _analysis(folder: Path, name: str, headline: str, colour: tuple[int, int, int]) -> Path:
    folder.mkdir(parents=True)
    (folder / "fig.png").write_bytes(tiny_png(colour))
    body = "\n".join(
        [
            f"## {name} details",
            "",
            "| lang | value |",
            "|---|---:|",
            "| en | 0.5 |",
            "",
            "See [the raw table](tables/raw.md) for more.",
        ]
    )
    return write_analysis(
        folder,
        name=name,
        question=f"What does {name} show?",
        headline=headline,
        body_md=body,
        data={"x": 1},
        figures=["fig.png"],
        command=f"xqg analyse {name} --out {folder.name}",
    )


@pytest.fixture()
def sections(tmp_path: Path) -> list[Path]:
    a = _analysis(tmp_path / "alpha", "alpha-analysis", "Alpha answers first.", (255, 0, 0))
    b = _analysis(tmp_path / "beta", "beta-analysis", "Beta answers second.", (0, 255, 0))
    exp = tmp_path / "exp-report"
    (exp / "plots").mkdir(parents=True)
    (exp / "per_language.png").write_bytes(tiny_png((0, 0, 255)))
    (exp / "plots" / "alpha curve.png").write_bytes(tiny_png((9, 9, 9)))
    (exp / "unshown.png").write_bytes(tiny_png((7, 7, 7)))
    (exp / "results.md").write_text(
        "\n".join(
            [
                "# exp: an experiment",
                "",
                "Regenerate:",
                "",
                "```",
                "xqg experiment exp --report-dir reports/exp",
                "# not a heading ![x](nope.png)",
                "```",
                "",
                "## Per language",
                "",
                "| lang | mrr@10 |",
                "|---|---:|",
                "| en | 0.955 |",
                "",
                '![gain per language](per_language.png "gain")',
                "",
                "![curve](<plots/alpha curve.png>)",
                "",
                "[an external link](https://example.org/x.png) stays.",
            ]
        ),
        encoding="utf-8",
    )
    return [a, b, exp]


def _md_images(md_text: str) -> list[str]:
    """Image destinations as a Markdown renderer sees them (code blocks excluded)."""
    from markdown_it import MarkdownIt

    out = []
    for tok in MarkdownIt("commonmark").enable("table").parse(md_text):
        out += [unquote(str(c.attrGet("src"))) for c in tok.children or [] if c.type == "image"]
    return out


def test_report_gathers_sections_with_embedded_figures(sections, tmp_path):
    out = tmp_path / "report"
    path = build_report(
        out,
        sections,
        title="Research questions",
        questions=[("Does the experiment help?", "Experiment answers third.")],
        command="xqg report --out report",
    )
    assert path == out / "report.md"
    md = path.read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")

    # Questions and answers first, in section order, each linking to its section.
    qa = md.index("## Questions and answers")
    positions = [
        md.index(h, qa) for h in ("Alpha answers first.", "Beta answers second.", "Experiment answers third.")
    ]
    assert positions == sorted(positions) and positions[-1] < md.index('<a id="alpha">')
    assert "What does alpha-analysis show?" in md and "(#exp-report)" in md
    assert md.startswith("# Research questions\n") and page.count("<h1>") == 1  # one top-level heading

    # Every image link in report.md points at a copied file under figures/<section>/.
    images = _md_images(md)
    assert len(images) == 5  # 2 analysis figures, 2 shown experiment figures, 1 unshown PNG appended
    for src in images:
        assert src.startswith("figures/") and (out / src).is_file(), src
    assert (out / "figures" / "exp-report" / "plots" / "alpha curve.png").is_file()
    assert (out / "figures" / "alpha" / "fig.png").read_bytes() == (sections[0] / "fig.png").read_bytes()
    assert "### Other figures" in md and "unshown.png" in md

    # HTML: self-contained — every figure as a data URI, no src pointing at a file.
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == 5 and all(s.startswith("data:image/png;base64,") for s in srcs)
    for src in images:
        assert base64.b64encode((out / src).read_bytes()).decode() in page, src
    assert page.count("<table>") == 3 and re.search(r"<td[^>]*>0\.955</td>", page)
    assert "<style>" in page and "<title>Research questions</title>" in page

    # Commands kept; headings pushed down; code blocks untouched; non-image relative links flattened.
    for cmd in ("xqg analyse alpha-analysis --out alpha", "xqg experiment exp --report-dir reports/exp"):
        assert cmd in md and cmd in page
    assert "xqg report --out report" in md
    assert (
        "\n## exp: an experiment\n" in md
        and "\n### Per language\n" in md
        and "\n### alpha-analysis details\n" in md
    )
    assert "# not a heading ![x](nope.png)" in md
    assert "the raw table (`alpha/tables/raw.md`)" in md and "](tables/raw.md)" not in md
    assert "[an external link](https://example.org/x.png)" in md
    assert (out / "manifest.json").is_file()


def test_report_errors_name_the_problem(sections, tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(XqgError, match="no-such-folder: folder not found"):
        build_report(tmp_path / "r1", [sections[0], missing], title="t")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(XqgError, match="neither analysis.md"):
        build_report(tmp_path / "r2", [empty], title="t")
    (sections[2] / "per_language.png").unlink()
    with pytest.raises(XqgError, match="image 'per_language.png' not found"):
        build_report(tmp_path / "r3", [sections[2]], title="t")
    with pytest.raises(XqgError, match="left over"):
        build_report(tmp_path / "r4", [sections[0]], title="t", questions=[("q", "a")])
    with pytest.raises(XqgError, match="at least one"):
        build_report(tmp_path / "r5", [], title="t")


def test_section_answer_reads_the_committed_experiment_report():
    import json
    from pathlib import Path

    from xqg.analyse.report import section_answer

    folder = Path(__file__).resolve().parents[1] / "reports" / "xquad-xqg"
    summary = json.loads((folder / "results.json").read_text())
    question, answer = section_answer(folder)
    tuned = summary["systems"]["tuned"]
    assert "generated queries" in question
    base = summary["systems"]["baseline"]["langs"]["avg"]["values"]["mrr@10"]
    assert f"from {base:.3f} to {tuned['langs']['avg']['values']['mrr@10']:.3f}" in answer
    assert f"significant gains in {len(tuned['significant_gains'])}/11" in answer
    assert _quotable(answer), answer


def _quotable(text: str) -> bool:
    """At most two sentences and 60 words: what a reader can quote."""
    import re

    return len(re.findall(r"[.!?](?:\s|$)", text)) <= 2 and len(text.split()) <= 60


def test_experiment_answer_says_yes_only_for_a_significant_gain():
    from xqg.analyse.report import experiment_answer

    def system(value: float, p: float, gains: list[str]) -> dict:
        avg = {"values": {"mrr@10": value}, "p": {"mrr@10": p}}
        return {"describe": "paper, α=0.01", "langs": {"avg": avg}, "significant_gains": gains,
                "significant_losses": []}  # fmt: skip

    systems = {"baseline": system(0.8, 1.0, []), "paper": system(0.85, 0.01, ["ar"])}
    summary = {"metric": "mrr@10", "langs": ["en", "ar", "de"], "systems": systems}
    _, answer = experiment_answer(summary)
    assert answer.startswith("Yes: paper fusion (paper, α=0.01) raises mrr@10 from 0.800 to 0.850 (p 0.010)")
    assert "significant gains in 1/2 languages and losses in 0" in answer and _quotable(answer)
    summary["systems"]["paper"] = system(0.79, 0.3, [])
    assert experiment_answer(summary)[1].startswith("No: paper fusion (paper, α=0.01) lowers mrr@10")


def test_grid_answer_states_distillation_and_xqg_on_top():
    from xqg.analyse.report import grid_answer

    def table(ar_delta: float, ar_p: float, avg_delta: float) -> dict:
        rows = [("en", 0.0, 1.0), ("ar", ar_delta, ar_p), ("avg", avg_delta, 0.02)]
        return {"rows": [{"lang": x, "delta": {"mrr@10": d}, "p": {"mrr@10": p}} for x, d, p in rows]}

    summary = {
        "metric": "mrr@10",
        "langs": ["en", "ar"],
        "cells": {"base+distill": table(0.1, 0.001, 0.05)},
        "xqg_effect": {"base": table(0.03, 0.01, 0.015), "base+distill": table(0.01, 0.4, 0.005)},
        "aim": {"gap_lang": "ar", "base_gap": 0.2,
                "distilled": {"base+distill": {"gap": 0.1, "english_change": -0.004}}},
    }  # fmt: skip
    question, answer = grid_answer(summary)
    assert "distillation" in question
    assert (
        "Distillation alone moves mrr@10 by +0.050" in answer
        and "narrows the en–ar gap from 0.200 to 0.100" in answer
    )
    assert "xQG then adds +0.015 on base (p 0.020; significant in 1/1 languages: ar)" in answer
    assert "and +0.005 on base+distill (p 0.020; 0/1)." in answer and _quotable(answer)
