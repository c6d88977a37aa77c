"""What every analysis shares: its output folder's layout and reading vectors from experiment folders.

Layout of an analysis folder (written atomically, ``manifest.json`` last, so a crashed run never
looks finished):

* ``analysis.json`` — ``{"name", "question", "headline", "command", "data": {...}}``;
* ``analysis.md`` — a heading, the question, the headline answer, the command, then the body;
* any PNG the analysis drew (listed in the manifest with checksums).

Vectors come from the folders an ``xqg experiment`` run leaves (``embeddings/`` = plain passages,
``fused-<system>/`` = passages fused with generated queries, ``queries-<split>/`` = questions),
named on the command line as ``LABEL=FOLDER[:SYSTEM]``; encoders as ``LABEL=SPEC[@PASSAGE_SPEC]``
(:class:`ModelSpec`).

Rendering helpers every analysis uses, so tables, figures and p-values look the same in all of
them: :func:`md_table`, :func:`save_figure`, :func:`fmt_p` (defined in :mod:`xqg.render`, which
every layer uses, and re-exported here). An analysis module has ``compute()``
(plain, JSON-ready data) and ``render()`` (headline, Markdown body and figures from that data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.errors import XqgError
from xqg.io import atomic_open, portable_tree, write_json, write_manifest
from xqg.render import fmt_p as fmt_p  # re-exported: the analyses import them from here
from xqg.render import md_table as md_table
from xqg.render import save_figure as save_figure

STAGE = "analysis"


def write_analysis(
    out_dir: str | Path,
    *,
    name: str,
    question: str,
    headline: str,
    body_md: str,
    data: dict[str, Any],
    figures: list[str] = (),  # type: ignore[assignment]
    command: str | None = None,
    config: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
) -> Path:
    """Write one analysis folder; ``figures`` are PNG names already saved inside ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    missing = [f for f in figures if not (out / f).is_file()]
    if missing:
        raise XqgError(f"{out}: figures not written: {', '.join(missing)}")
    doc = {"name": name, "question": question, "headline": headline, "command": command, "data": data}
    write_json(out / "analysis.json", portable_tree(doc, out))  # no path of this machine
    lines = [f"# {name}", "", f"**Question.** {question}", "", f"**Answer.** {headline}", ""]
    if command:
        lines += ["Regenerate with:", "", "```bash", command, "```", ""]
    lines += [body_md.rstrip(), ""]
    lines += [f"![{f}]({f})" for f in figures]
    with atomic_open(out / "analysis.md") as fh:
        fh.write("\n".join(lines).rstrip() + "\n")
    write_manifest(
        out,
        stage=STAGE,
        config={"name": name, **(config or {})},
        counts=counts or {},
        files=["analysis.json", "analysis.md", *figures],
    )
    return out


@dataclass
class SystemSpec:
    """``LABEL=FOLDER[:SYSTEM]``: an experiment folder and which passage vectors to use."""

    label: str
    folder: Path
    system: str = "baseline"

    @classmethod
    def parse(cls, text: str) -> SystemSpec:
        label, sep, rest = text.partition("=")
        if not sep or not label or not rest:
            raise XqgError(f"expected LABEL=FOLDER[:SYSTEM], got '{text}'")
        folder, _, system = rest.partition(":")
        return cls(label, Path(folder), system or "baseline")

    def passage_dir(self) -> Path:
        d = self.folder / ("embeddings" if self.system == "baseline" else f"fused-{self.system}")
        if not d.is_dir():
            raise XqgError(f"{self.label}: no passage vectors for system '{self.system}' at {d}")
        return d

    def query_dir(self, split: str = "test") -> Path:
        d = self.folder / f"queries-{split}"
        if not d.is_dir():
            raise XqgError(f"{self.label}: no {split} query vectors at {d}")
        return d


def load_vectors(folder: str | Path) -> tuple[list[str], np.ndarray]:
    """Ids and float32 vectors of one finished embedding folder."""
    from xqg.encode import EmbeddingShards

    ids, vecs = EmbeddingShards.open(folder).load()
    return ids, np.ascontiguousarray(vecs, dtype=np.float32)


@dataclass(frozen=True)
class ModelSpec:
    """``LABEL=SPEC[@PASSAGE_SPEC]``: an encoder (and optionally a separate passage tower)."""

    label: str
    model: str
    passage_model: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        label, sep, rest = text.partition("=")
        if not sep or not label.strip() or not rest.strip():
            raise XqgError(f"expected LABEL=SPEC[@PASSAGE_SPEC], got '{text}'")
        model, at, passage = rest.partition("@")
        if not model.strip() or (at and not passage.strip()):
            raise XqgError(f"expected LABEL=SPEC[@PASSAGE_SPEC], got '{text}'")
        return cls(label.strip(), model.strip(), passage.strip() or None)


# -- rendering -------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """What an analysis' ``render()`` returns: the headline, the Markdown body, the figures it drew."""

    headline: str
    body_md: str
    figures: list[str]

    def write(
        self, out_dir: str | Path, *, name: str, question: str, data: dict[str, Any], **kw: Any
    ) -> Path:
        """:func:`write_analysis` of this rendering and ``data`` (``kw``: command, config, counts)."""
        return write_analysis(
            out_dir,
            name=name,
            question=question,
            headline=self.headline,
            body_md=self.body_md,
            data=data,
            figures=self.figures,
            **kw,
        )


# -- re-rendering a written folder -----------------------------------------------------------------

#: Analysis name (``analysis.json``'s ``name``) → ``module:function`` that renders its saved data
#: into a folder: ``function(data, out_dir) -> Rendered`` (given ``command=``, the recorded command
#: line, when it takes one). Imported on use (the analyses import this module).
RENDERERS: dict[str, str] = {
    "alignment": "xqg.analyse.alignment:render",
    "mutual-information": "xqg.analyse.mutual_information.render:render",
    "misspellings": "xqg.analyse.misspellings.render:render_saved",
    "resource-levels": "xqg.analyse.resource_levels.render:render_saved",
}


def rerender(folder: str | Path) -> Path:
    """Render a written analysis folder again from its ``analysis.json`` data, without recomputing.

    The analysis' ``render()`` rebuilds the headline, body and figures from ``data``; the recorded
    name, question, command, configuration and counts are kept, and ``analysis.md``,
    ``analysis.json`` and the manifest (new checksums) are rewritten. Headlines a renderer records
    inside ``data`` are updated to the new rendering; every other value of ``data`` stays as read.
    """
    import importlib
    import inspect

    from xqg.io import read_json

    out = Path(folder)
    for need in ("analysis.json", "manifest.json"):
        if not (out / need).is_file():
            raise XqgError(f"{out}: no {need}; not a written analysis folder")
    doc = read_json(out / "analysis.json")
    manifest = read_json(out / "manifest.json")
    name = doc.get("name")
    if name not in RENDERERS:
        raise XqgError(f"{out}: no renderer for analysis '{name}' (known: {', '.join(RENDERERS)})")
    module, _, function = RENDERERS[name].partition(":")
    render = getattr(importlib.import_module(module), function)
    data = doc["data"]
    takes_command = "command" in inspect.signature(render).parameters  # e.g. to read its --alpha
    shown: Rendered = render(data, out, **({"command": doc.get("command")} if takes_command else {}))
    config = {k: v for k, v in (manifest.get("config") or {}).items() if k != "name"}
    return shown.write(
        out,
        name=name,
        question=doc["question"],
        data=data,
        command=doc.get("command"),
        config=config,
        counts=manifest.get("counts") or {},
    )
