"""One report from many result folders: ``report.md`` plus a self-contained ``report.html``.

A *section* is a folder that holds either an analysis (``analysis.md`` + ``analysis.json``, written
by :func:`xqg.analyse.common.write_analysis`) or an experiment report (``results.md`` and its PNGs,
as ``xqg experiment --report-dir`` writes). :func:`build_report` gathers them, in the order given:

* the report opens with **Questions and answers**: each analysis's ``question`` and ``headline``
  (sections without ``analysis.json`` take theirs from the ``questions`` argument, in order), each
  linking to its section;
* every section keeps its own Markdown — including the command that produced it — with headings
  pushed down one level (the report title is the only top-level heading);
* images are copied to ``figures/<section>/`` and the section's relative image links rewritten to
  the copies, so ``report.md`` works from its own folder; a linked image that does not exist is an
  error (a report must not silently lose a figure); PNGs in a section folder that its Markdown never
  shows are appended under "Other figures";
* ``report.html`` is the same Markdown rendered by markdown-it-py (CommonMark + tables) with every
  image embedded as a base64 ``data:`` URI and a small inline stylesheet: one file to mail or archive,
  nothing external to fetch;
* relative links to non-image files (e.g. ``tables/paper.md``) cannot travel inside one HTML file, so
  they become their text plus the path in backticks.

Everything is written atomically and ``manifest.json`` last, like every xqg stage.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from xqg.analyse.common import fmt_p
from xqg.errors import XqgError
from xqg.io import atomic_open, atomic_path, read_json, write_manifest

STAGE = "report"
FIGURES = "figures"
IMAGE_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_HEADING = re.compile(r"^ {0,3}(#{1,5})(?=\s|$)")
# ![alt](dest "title") with dest plain or in <...>.
_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\(\s*(?P<dest><[^>\n]*>|[^)\s]+)(?P<title>\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\(\s*(?P<dest><[^>\n]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
_IMG_SRC = re.compile(r"(<img\b[^>]*?\bsrc\s*=\s*)([\"'])([^\"']+)\2", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; line-height: 1.5;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1f2328; }
h1, h2, h3, h4 { line-height: 1.25; } h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; } th { background: #f6f8fa; }
tr:nth-child(even) td { background: #fbfcfd; }
code { background: #f6f8fa; padding: .1em .3em; border-radius: 4px; font-size: 0.9em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; border-radius: 6px; }
pre code { padding: 0; background: none; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
hr { border: 0; border-top: 1px solid #d0d7de; margin: 2.5em 0; }
ol.qa li { margin-bottom: .6em; }
"""


@dataclass
class _Section:
    folder: Path
    slug: str
    kind: str  # "analysis" | "experiment"
    title: str
    markdown: str
    question: str | None = None
    headline: str | None = None
    command: str | None = None
    figures: list[str] = field(default_factory=list)


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "section"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


def _first_heading(md: str) -> str | None:
    for line in md.splitlines():
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            return m.group(1)
    return None


def _experiment_command(md: str) -> str | None:
    """The command in the first fenced block after a line starting with "Regenerate" (results.md style)."""
    m = re.search(r"^Regenerate[^\n]*\n\s*\n?(`{3,}|~{3,})[^\n]*\n(.*?)\n\1", md, re.MULTILINE | re.DOTALL)
    return m.group(2).strip() if m else None


def _read_section(folder: Path, taken: set[str]) -> _Section:
    if not folder.is_dir():
        raise XqgError(f"report section {folder}: folder not found")
    if (folder / "analysis.md").is_file() and (folder / "analysis.json").is_file():
        doc = read_json(folder / "analysis.json")
        if not isinstance(doc, dict):
            raise XqgError(f"report section {folder}: analysis.json is not an object")
        md = (folder / "analysis.md").read_text(encoding="utf-8")
        title = str(doc.get("name") or _first_heading(md) or folder.name)
        return _Section(
            folder,
            _slug(folder.name, taken),
            "analysis",
            title,
            md,
            question=doc.get("question"),
            headline=doc.get("headline"),
            command=doc.get("command"),
        )
    if (folder / "results.md").is_file():
        md = (folder / "results.md").read_text(encoding="utf-8")
        return _Section(
            folder,
            _slug(folder.name, taken),
            "experiment",
            _first_heading(md) or folder.name,
            md,
            command=_experiment_command(md),
        )
    raise XqgError(
        f"report section {folder}: holds neither analysis.md + analysis.json (an analysis) nor results.md "
        "(an experiment report)"
    )


def _is_relative(dest: str) -> bool:
    return bool(dest) and not _SCHEME.match(dest) and not dest.startswith(("#", "/", "//"))


def _copy_target(section: _Section, dest: str, out_dir: Path, copied: dict[str, str]) -> str:
    """Copy one relative image of ``section`` into ``figures/<slug>/``; return the new relative link."""
    raw = dest[1:-1] if dest.startswith("<") and dest.endswith(">") else dest
    rel = raw.split("#", 1)[0].split("?", 1)[0]
    if rel in copied:
        return copied[rel]
    src = section.folder / rel
    if not src.is_file() and (section.folder / unquote(rel)).is_file():  # a percent-encoded link
        rel = unquote(rel)
        src = section.folder / rel
    if not src.is_file():
        raise XqgError(f"report section {section.folder}: image '{raw}' not found at {src}")
    parts = [p for p in PurePosixPath(rel).parts if p not in (".", "")]
    if ".." in parts:  # outside the section folder: keep the name only
        parts = [parts[-1]]
    target = PurePosixPath(FIGURES, section.slug, *parts)
    with atomic_path(out_dir / target) as tmp:
        shutil.copyfile(src, tmp)
    link = target.as_posix()
    copied[rel] = link
    section.figures.append(link)
    return link


def _dest(link: str) -> str:
    """A link destination as CommonMark needs it: in <...> only when it holds spaces or parentheses."""
    return f"<{link}>" if re.search(r"[\s()]", link) else link


def _rewrite(section: _Section, out_dir: Path) -> str:
    """Section Markdown with headings one level down and relative images/links rewritten (code untouched)."""
    copied: dict[str, str] = {}

    def image(m: re.Match[str]) -> str:
        dest = m.group("dest")
        bare = dest[1:-1] if dest.startswith("<") else dest
        if not _is_relative(bare):
            return m.group(0)
        new = _dest(_copy_target(section, dest, out_dir, copied))
        return f"![{m.group('alt')}]({new}{m.group('title') or ''})"

    def img_tag(m: re.Match[str]) -> str:
        if not _is_relative(m.group(3)):
            return m.group(0)
        return f"{m.group(1)}{m.group(2)}{_copy_target(section, m.group(3), out_dir, copied)}{m.group(2)}"

    def link(m: re.Match[str]) -> str:
        dest = m.group("dest")
        bare = dest[1:-1] if dest.startswith("<") else dest
        if not _is_relative(bare) or bare.startswith(f"{FIGURES}/{section.slug}/"):
            return m.group(0)
        return f"{m.group('text')} (`{section.folder.name}/{bare}`)"

    out: list[str] = []
    fence: tuple[str, int] | None = None
    for line in section.markdown.splitlines():
        fm = _FENCE.match(line)
        if fence is None and fm:
            fence = (fm.group(1)[0], len(fm.group(1)))
            out.append(line)
            continue
        if fence is not None:
            if fm and fm.group(1)[0] == fence[0] and len(fm.group(1)) >= fence[1] and not fm.group(2).strip():
                fence = None
            out.append(line)
            continue
        line = _HEADING.sub(lambda h: "#" + h.group(1), line, count=1)
        line = _IMAGE.sub(image, line)
        line = _IMG_SRC.sub(img_tag, line)
        line = _LINK.sub(link, line)
        out.append(line)
    # Figures the Markdown never shows would otherwise be lost.
    shown = set(copied)
    extra = sorted(p.name for p in section.folder.glob("*.png") if p.name not in shown)
    if extra:
        out += ["", "### Other figures", ""]
        for name in extra:
            out += [f"![{name}]({_dest(_copy_target(section, name, out_dir, copied))})", ""]
    text = "\n".join(out).rstrip() + "\n"
    if section.command and section.command not in section.markdown:
        text += f"\nProduced by:\n\n```bash\n{section.command}\n```\n"
    elif section.command is None and section.kind == "experiment":
        text += "\n*The command that produced this section is not recorded in its results.md.*\n"
    return text


def _qa_items(sections: Sequence[_Section], questions: Sequence[tuple[str, str]] | None) -> list[str]:
    pending = list(questions or [])
    items = []
    for s in sections:
        if s.kind == "analysis":
            q, a = s.question, s.headline
        elif pending:
            q, a = pending.pop(0)
        else:
            continue
        if not q and not a:
            continue
        items.append(
            f"**Q.** {q or '(no question recorded)'}\\\n"
            f"   **A.** {a or '(no answer recorded)'} ([{s.title}](#{s.slug}))"
        )
    if pending:
        raise XqgError(
            f"{len(pending)} question(s) left over: `questions` pairs are matched, in order, to sections "
            "without analysis.json, and there are fewer such sections"
        )
    return [f"{i}. {item}" for i, item in enumerate(items, start=1)]


def _data_uri(path: Path) -> str:
    mime = IMAGE_TYPES.get(path.suffix.lower())
    if mime is None:
        raise XqgError(
            f"{path}: cannot embed a '{path.suffix}' file as an image (known: {', '.join(IMAGE_TYPES)})"
        )
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def render_html(markdown_text: str, out_dir: Path, *, title: str) -> str:
    """Render the report's Markdown to one HTML page, embedding every local image as a data URI."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = md.parse(markdown_text)
    cache: dict[str, str] = {}

    def embed(src: str) -> str:
        if not _is_relative(src):
            return src
        if src not in cache:
            path = out_dir / unquote(src)  # markdown-it percent-encodes destinations
            if not path.is_file():
                raise XqgError(f"report image {path} does not exist")
            cache[src] = _data_uri(path)
        return cache[src]

    def fix_html(text: str) -> str:
        return _IMG_SRC.sub(lambda m: f"{m.group(1)}{m.group(2)}{embed(m.group(3))}{m.group(2)}", text)

    for tok in tokens:
        if tok.type == "html_block":
            tok.content = fix_html(tok.content)
        for child in tok.children or []:
            if child.type == "image":
                child.attrSet("src", embed(str(child.attrGet("src") or "")))
            elif child.type == "html_inline":
                child.content = fix_html(child.content)
    body = md.renderer.render(tokens, md.options, {})
    body = body.replace("<ol>\n<li><strong>Q.</strong>", '<ol class="qa">\n<li><strong>Q.</strong>', 1)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )


def build_report(
    out_dir: str | Path,
    sections: Sequence[Path],
    *,
    title: str,
    questions: Sequence[tuple[str, str]] | None = None,
    command: str | None = None,
) -> Path:
    """Gather ``sections`` (analysis or experiment-report folders) into ``out_dir/report.md`` and a
    self-contained ``out_dir/report.html``; return the path of ``report.md``.

    ``questions`` are ``(question, answer)`` pairs for the sections without ``analysis.json``,
    matched to them in order. ``command`` is the command that built the report (shown at the top).
    """
    if not sections:
        raise XqgError("a report needs at least one section folder")
    out = Path(out_dir)
    taken: set[str] = set()
    parsed = [_read_section(Path(s), taken) for s in sections]
    out.mkdir(parents=True, exist_ok=True)
    qa = _qa_items(parsed, questions)
    bodies = [_rewrite(s, out) for s in parsed]

    lines = [f"# {title}", ""]
    if command:
        lines += ["Regenerate this report:", "", "```bash", command, "```", ""]
    if qa:
        lines += ["## Questions and answers", "", *qa, ""]
    lines += ["## Contents", "", *[f"- [{s.title}](#{s.slug}) — `{s.folder}`" for s in parsed], ""]
    for s, body in zip(parsed, bodies, strict=True):
        lines += [
            "---",
            "",
            f'<a id="{s.slug}"></a>',
            "",
            f"*Source folder: `{s.folder}`*",
            "",
            body.rstrip(),
            "",
        ]
    report_md = "\n".join(lines).rstrip() + "\n"
    page = render_html(report_md, out, title=title)
    with atomic_open(out / "report.md") as fh:
        fh.write(report_md)
    with atomic_open(out / "report.html") as fh:
        fh.write(page)
    figures = [f for s in parsed for f in s.figures]
    config: dict[str, Any] = {
        "title": title,
        "sections": [str(s.folder) for s in parsed],
        "questions": [list(q) for q in questions or []],
    }
    write_manifest(
        out,
        stage=STAGE,
        config=config,
        counts={"sections": len(parsed), "figures": len(figures), "questions": len(qa)},
        files=["report.md", "report.html", *figures],
        extra={"command": command},
    )
    return out / "report.md"


def _p(p: float | None) -> str:
    return fmt_p(p, none="n/a")


def experiment_answer(summary: dict[str, Any]) -> tuple[str, str]:
    """Question and a one- or two-sentence answer from an ``xqg experiment`` (xQG) report's
    ``results.json``: whether a fused system beats the baseline, and by how much."""
    metric = summary["metric"]
    base = summary["systems"]["baseline"]["langs"]["avg"]["values"][metric]
    n_non_en = len([lang for lang in summary["langs"] if lang != "en"])
    parts, wins = [], 0
    for name in ("paper", "tuned"):
        s = summary["systems"].get(name)
        if s is None:
            continue
        avg = s["langs"]["avg"]
        value, p = avg["values"][metric], avg["p"][metric]
        wins += value > base and p is not None and p < 0.05
        verb = "raises" if value > base else "lowers" if value < base else "keeps"
        parts.append(
            f"{name} fusion ({s['describe']}) {verb} {metric} from {base:.3f} to {value:.3f} (p {_p(p)}), "
            f"with significant gains in {len(s['significant_gains'])}/{n_non_en} languages and losses in "
            f"{len(s['significant_losses'])}"
        )
    question = (
        "Does augmenting passage vectors with generated queries (the paper's method) improve "
        "cross-lingual retrieval on XQuAD?"
    )
    if not parts:
        return question, "No fused system was evaluated."
    verdict = "Yes" if wins else "No"
    return question, f"{verdict}: " + "; ".join(parts) + "."


def grid_answer(summary: dict[str, Any]) -> tuple[str, str]:
    """Question and a two-sentence answer from the training × distillation × xQG grid's
    ``results.json``: what distillation alone does, then what xQG adds on each model."""
    metric = summary["metric"]
    langs = [lang for lang in summary["langs"] if lang != "en"]
    effect = summary["xqg_effect"]
    sentences = []
    base_cell = summary.get("cells", {}).get("base+distill")
    if base_cell is not None:
        avg = {r["lang"]: r for r in base_cell["rows"]}["avg"]
        text = f"Distillation alone moves {metric} by {avg['delta'][metric]:+.3f} (p {_p(avg['p'][metric])})"
        aim = (summary.get("aim") or {}).get("distilled", {}).get("base+distill")
        if aim:
            gap_lang = summary["aim"]["gap_lang"]
            verb = "narrows" if aim["gap"] < summary["aim"]["base_gap"] else "widens"
            text += (
                f" and {verb} the en–{gap_lang} gap from {summary['aim']['base_gap']:.3f} to {aim['gap']:.3f}"
                f" (English {aim['english_change']:+.3f})"
            )
        sentences.append(text + ".")
    parts = []
    for name in ("base", "base+distill", "cross-lingual+distill", "zero-shot+distill"):
        table = effect.get(name)
        if table is None:
            continue
        rows = {r["lang"]: r for r in table["rows"]}
        sig = [x for x in langs if (rows[x]["p"][metric] or 1) < 0.05 and (rows[x]["delta"][metric] or 0) > 0]
        avg = rows["avg"]
        count = (
            f"significant in {len(sig)}/{len(langs)} languages" if not parts else f"{len(sig)}/{len(langs)}"
        )
        parts.append(
            f"{avg['delta'][metric]:+.3f} on {name} (p {_p(avg['p'][metric])}; {count}"
            + (f": {', '.join(sig)})" if sig else ")")
        )
    if parts:
        joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        sentences.append(f"xQG then adds {joined}.")
    question = "With knowledge distillation: to what extent does xQG still help, and for which languages?"
    return question, " ".join(sentences) or "No grid cells were evaluated."


def section_answer(folder: str | Path) -> tuple[str, str] | None:
    """The (question, answer) of a report folder without ``analysis.json``, from its ``results.json``."""
    path = Path(folder) / "results.json"
    if (Path(folder) / "analysis.json").is_file() or not path.is_file():
        return None
    import json

    summary = json.loads(path.read_text(encoding="utf-8"))
    if "xqg_effect" in summary:
        return grid_answer(summary)
    if "systems" in summary:
        return experiment_answer(summary)
    return None
