"""What every analysis shares: its output folder's layout and reading vectors from experiment folders.

Layout of an analysis folder (written atomically, ``manifest.json`` last, so a crashed run never
looks finished):

* ``analysis.json`` — ``{"name", "question", "headline", "command", "data": {...}}``;
* ``analysis.md`` — a heading, the question, the headline answer, the command, then the body;
* any PNG the analysis drew (listed in the manifest with checksums).

Vectors come from the folders an ``xqg experiment`` run leaves (``embeddings/`` = plain passages,
``fused-<system>/`` = passages fused with generated queries, ``queries-<split>/`` = questions),
named on the command line as ``LABEL=FOLDER[:SYSTEM]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.errors import XqgError
from xqg.io import atomic_open, write_json, write_manifest

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
    write_json(out / "analysis.json", doc)
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
