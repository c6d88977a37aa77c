"""How every report in xqg writes tables, p-values and figures, so they look the same everywhere
(experiments, analyses, training curves, XNLI): :func:`md_table`, :func:`fmt_p`, :func:`save_figure`.

A foundation module (it needs only :mod:`xqg.io`), so any layer may use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xqg.io import atomic_path


def fmt_p(p: float | None, *, none: str = "–", eq: bool = False) -> str:
    """A p-value as the analyses print it: ``<0.001`` or three decimals; ``none`` for None/NaN.

    ``eq`` writes it as a clause: ``p < 0.001``, ``p = 0.042``, ``p = –``.
    """
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return f"p = {none}" if eq else none
    if p < 0.001:
        return "p < 0.001" if eq else "<0.001"
    return f"p = {p:.3f}" if eq else f"{p:.3f}"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> list[str]:
    """Lines of a Markdown table. ``align``: one letter per column, ``l`` (``---``) or ``r`` (``---:``);
    default: the first column left, the others right. Cells are written with ``str``."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header):
        raise ValueError(f"{len(header)} columns but alignment {align!r}")
    lines = ["| " + " | ".join(header) + " |", "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def save_figure(fig: Any, path: str | Path, *, dpi: int = 100) -> None:
    """Write a matplotlib figure as PNG atomically (temp name, then rename) and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
