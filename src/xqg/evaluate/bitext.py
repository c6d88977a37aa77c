"""Bitext (translation) retrieval accuracy: does a sentence's nearest neighbour in the other
language's list be its own translation? The standard check of a multilingual encoder (LASER's
Tatoeba protocol) and the before/after measure of ``xqg distill``.

Both directions are reported (X→en: each X sentence searches the English side; en→X the other
way), on held-out pairs the distillation never trains on: Tatoeba's odd lines, NTREX's lines
after 1,000 (:mod:`xqg.data.bitext`). Sentences are embedded on the *query* side, since the
query tower is what distillation changes and what cross-lingual search runs through.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xqg.io import atomic_open, write_json


def bitext_accuracy(x_vecs: np.ndarray, en_vecs: np.ndarray) -> dict[str, float]:
    """Top-1 accuracy of matching row i to row i, X→en and en→X (cosine on unit vectors)."""
    if x_vecs.shape != en_vecs.shape or len(x_vecs) == 0:
        raise ValueError(f"need two equal, non-empty matrices, got {x_vecs.shape} and {en_vecs.shape}")
    sim = x_vecs.astype(np.float32) @ en_vecs.astype(np.float32).T
    gold = np.arange(len(sim))
    return {
        "x2en": float((sim.argmax(axis=1) == gold).mean()),
        "en2x": float((sim.argmax(axis=0) == gold).mean()),
        "pairs": int(len(sim)),
    }


def heldout_bitext(encoder: Any, langs: Sequence[str], *, data_dir: Any = None) -> dict[str, Any]:
    """``{source: {lang: {"x2en", "en2x", "pairs"}}}`` on the held-out Tatoeba and NTREX halves."""
    from xqg.data.bitext import bitext_half, bitext_sources

    out: dict[str, Any] = {"tatoeba": {}, "ntrex": {}}
    for lang in langs:
        for source in bitext_sources(lang):
            pairs = bitext_half(source, lang, "heldout", data_dir)
            en = encoder.encode_queries([p[0] for p in pairs])
            xx = encoder.encode_queries([p[1] for p in pairs])
            out[source][lang] = bitext_accuracy(xx, en)
    return out


def write_bitext_report(out_dir: str | Path, results: dict[str, dict[str, Any]]) -> None:
    """``bitext.json`` and a Markdown table (one column pair per encoder) in ``out_dir``."""
    out = Path(out_dir)
    write_json(out / "bitext.json", results)
    names = list(results)
    lines = ["# Bitext retrieval accuracy (held-out pairs, top-1)", ""]
    for source in ("tatoeba", "ntrex"):
        langs = sorted({lang for r in results.values() for lang in r.get(source, {})})
        if not langs:
            continue
        head = " | ".join(f"{n} X→en | {n} en→X" for n in names)
        lines += [f"## {source}", "", f"| lang | pairs | {head} |", "|---|---:|" + "---:|" * (2 * len(names))]
        means: dict[str, list[float]] = {f"{n}:{d}": [] for n in names for d in ("x2en", "en2x")}
        for lang in langs:
            cells, pairs = [], 0
            for n in names:
                r = results[n].get(source, {}).get(lang)
                for d in ("x2en", "en2x"):
                    cells.append("" if r is None else f"{r[d]:.3f}")
                    if r is not None:
                        means[f"{n}:{d}"].append(r[d])
                        pairs = r["pairs"]
            lines.append(f"| {lang} | {pairs} | " + " | ".join(cells) + " |")
        avg = [f"**{np.mean(v):.3f}**" if v else "" for v in means.values()]
        lines += ["| **avg** | | " + " | ".join(avg) + " |", ""]
    with atomic_open(out / "bitext.md") as fh:
        fh.write("\n".join(lines))
