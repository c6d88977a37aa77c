"""Per-language result tables (Markdown for reading, JSON for machines).

Multilingual retrieval papers report one row per language and an average row. The average that
XOR-Retrieve (and MIRACL, Mr. TyDi) report is the **macro** average: the mean of the
per-language means, so a language with few queries weighs as much as one with many. That is
the ``avg`` row here. The **micro** average (mean over all queries pooled) is available as an
extra ``micro`` row (``micro=True``); it differs whenever languages have different query counts.

Per-query values may be ``None`` (R@kt's skipped yes/no queries): those queries are left out of
that metric, and its per-language count says so. A language listed in ``langs`` but without any
query is shown empty and does not enter the macro average.

With a baseline (per-query values of another system on the same queries), each metric gets a Δ
(system − baseline) and a p-value column, per language and for the average rows. Per-language
and ``micro`` p-values come from :func:`~xqg.evaluate.significance.paired_test`; the ``avg`` row
uses :func:`~xqg.evaluate.significance.macro_paired_test` (the randomisation test of the macro
difference itself), which has no t-test counterpart, so with ``test="ttest"`` its p is empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xqg.errors import XqgError
from xqg.evaluate.significance import macro_paired_test, paired_test
from xqg.io import atomic_open, write_json

AVG = "avg"
MICRO = "micro"

PerQuery = Mapping[str, Mapping[str, float | None]]
"""metric name → {query id → value (None = not applicable)}."""


@dataclass
class TableRow:
    """One row: a language, ``avg`` (macro) or ``micro``."""

    label: str
    n: dict[str, int]
    values: dict[str, float | None]
    delta: dict[str, float | None] = field(default_factory=dict)
    p: dict[str, float | None] = field(default_factory=dict)
    p_ttest: dict[str, float | None] = field(default_factory=dict)


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _clean(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def _few(items: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(items)[:n])
    return shown + (", …" if len(items) > n else "")


class LanguageTable:
    """Rows = languages (+ ``avg``, optionally ``micro``), columns = metrics (+ Δ and p)."""

    def __init__(
        self,
        metrics: Sequence[str],
        rows: Sequence[TableRow],
        *,
        compared: bool = False,
        test: str | None = None,
        scale: float = 1.0,
        title: str | None = None,
        n_resamples: int | None = None,
        seed: int | None = None,
    ) -> None:
        self.metrics = list(metrics)
        self.rows = list(rows)
        self.compared = compared
        self.test = test
        self.scale = scale
        self.title = title
        self.n_resamples = n_resamples
        self.seed = seed

    @classmethod
    def build(
        cls,
        values: PerQuery,
        qid_lang: Mapping[str, str],
        *,
        langs: Sequence[str] | None = None,
        baseline: PerQuery | None = None,
        micro: bool = False,
        test: Literal["permutation", "ttest"] = "permutation",
        n_resamples: int = 10_000,
        seed: int = 0,
        scale: float = 1.0,
        title: str | None = None,
    ) -> LanguageTable:
        """Aggregate per-query ``values`` by language.

        ``langs`` fixes the row order (default: sorted); every language present in the data must
        be listed. ``scale`` multiplies means and deltas (e.g. 100 to show R@kt hits as %).
        ``baseline`` must hold the same metrics, with values for exactly the same queries.
        """
        if test not in ("permutation", "ttest"):
            raise XqgError(f"test must be 'permutation' or 'ttest', got {test!r}")
        metrics = list(values)
        if not metrics:
            raise XqgError("a table needs at least one metric")
        if baseline is not None:
            absent = [m for m in metrics if m not in baseline]
            if absent:
                raise XqgError(f"baseline lacks metric(s) {_few(absent)}")

        # Per metric: lang → {qid: value}, None values dropped.
        by_lang: dict[str, dict[str, dict[str, float]]] = {}
        no_lang: list[str] = []
        for m in metrics:
            by_lang[m] = {}
            for qid, v in values[m].items():
                if v is None:
                    continue
                lang = qid_lang.get(qid)
                if lang is None:
                    no_lang.append(qid)
                    continue
                by_lang[m].setdefault(lang, {})[qid] = float(v)
        if no_lang:
            uniq = list(dict.fromkeys(no_lang))
            raise XqgError(f"{len(uniq)} query id(s) have no language: {_few(uniq)}")
        present = sorted({lang for m in metrics for lang in by_lang[m]})
        if langs is None:
            order = present
        else:
            order = list(dict.fromkeys(langs))
            unlisted = [lang for lang in present if lang not in order]
            if unlisted:
                raise XqgError(f"languages {_few(unlisted)} have queries but are not in langs={order}")

        def compare(
            m: str, sys_v: dict[str, float], groups: Mapping[str, str] | None
        ) -> tuple[float, float | None, float | None]:
            """(delta, p of the chosen ``test``, p of the paired t-test — None for macro averages)."""
            assert baseline is not None
            # Take every baseline query of the same languages, so that extra ones are reported.
            langs_here = {qid_lang[q] for q in sys_v}
            base_v = {
                q: float(v) for q, v in baseline[m].items() if v is not None and qid_lang.get(q) in langs_here
            }
            try:
                if groups is None:
                    r = paired_test(
                        sys_v, base_v, method="both", n_resamples=n_resamples, seed=seed, confidence=None
                    )
                    p = r.p_permutation if test == "permutation" else r.p_ttest
                    return r.delta * scale, p, r.p_ttest
                r = macro_paired_test(
                    sys_v, base_v, groups, n_resamples=n_resamples, seed=seed, confidence=None
                )
                return r.delta * scale, (r.p_permutation if test == "permutation" else None), None
            except XqgError as exc:
                raise XqgError(f"{m}: system and baseline differ in queries: {exc}") from exc

        rows: list[TableRow] = []
        for lang in order:
            row = TableRow(lang, {}, {})
            for m in metrics:
                vals = by_lang[m].get(lang, {})
                row.n[m] = len(vals)
                row.values[m] = _mean(list(vals.values())) * scale if vals else None
                if baseline is not None:
                    if vals:
                        row.delta[m], row.p[m], row.p_ttest[m] = compare(m, vals, None)
                    else:
                        extra = [
                            q for q, v in baseline[m].items() if v is not None and qid_lang.get(q) == lang
                        ]
                        if extra:
                            raise XqgError(
                                f"{m}: baseline has {len(extra)} {lang!r} quer(ies) the system has no value "
                                f"for: {_few(extra)}"
                            )
                        row.delta[m], row.p[m], row.p_ttest[m] = None, None, None
            rows.append(row)

        avg = TableRow(AVG, {}, {})
        micro_row = TableRow(MICRO, {}, {})
        for m in metrics:
            filled = [lang for lang in order if by_lang[m].get(lang)]
            pooled = {q: v for lang in filled for q, v in by_lang[m][lang].items()}
            avg.n[m] = micro_row.n[m] = len(pooled)
            if not filled:
                avg.values[m] = micro_row.values[m] = None
                if baseline is not None:
                    for r in (avg, micro_row):
                        r.delta[m] = r.p[m] = r.p_ttest[m] = None
                continue
            avg.values[m] = _mean([_mean(list(by_lang[m][lang].values())) for lang in filled]) * scale
            micro_row.values[m] = _mean(list(pooled.values())) * scale
            if baseline is not None:
                groups = {q: qid_lang[q] for q in pooled}
                avg.delta[m], avg.p[m], avg.p_ttest[m] = compare(m, pooled, groups)
                micro_row.delta[m], micro_row.p[m], micro_row.p_ttest[m] = compare(m, pooled, None)
        rows.append(avg)
        if micro:
            rows.append(micro_row)
        return cls(
            metrics,
            rows,
            compared=baseline is not None,
            test=test if baseline is not None else None,
            scale=scale,
            title=title,
            n_resamples=n_resamples if baseline is not None else None,
            seed=seed if baseline is not None else None,
        )

    # --- output ---------------------------------------------------------------------------------

    def _single_n(self) -> bool:
        return all(len(set(r.n.values())) <= 1 for r in self.rows)

    def to_markdown(self, digits: int = 3) -> str:
        """A GitHub-flavoured Markdown table; empty cells are ``–``, tiny p-values ``<0.001``."""

        def num(v: float | None) -> str:
            return "–" if v is None else f"{v:.{digits}f}"

        def signed(v: float | None) -> str:
            return "–" if v is None else f"{v:+.{digits}f}"

        def pval(v: float | None) -> str:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                return "–"
            floor = 10.0**-digits
            return f"<{floor:.{digits}f}" if 0 <= v < floor else f"{v:.{digits}f}"

        single_n = self._single_n()
        header = ["lang"]
        header += ["n"] if single_n else [f"n ({m})" for m in self.metrics]
        for m in self.metrics:
            header.append(m)
            if self.compared:
                header += [f"Δ {m}", f"p {m}"]
                if self.test == "permutation":
                    header.append(f"p(t) {m}")
        lines = []
        if self.title:
            lines += [f"**{self.title}**", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|")
        for r in self.rows:
            cells = [r.label]
            if single_n:
                cells.append(str(next(iter(r.n.values()), 0)))
            else:
                cells += [str(r.n[m]) for m in self.metrics]
            for m in self.metrics:
                cells.append(num(r.values.get(m)))
                if self.compared:
                    cells += [signed(r.delta.get(m)), pval(r.p.get(m))]
                    if self.test == "permutation":
                        cells.append(pval(r.p_ttest.get(m)))
            lines.append("| " + " | ".join(cells) + " |")
        notes = [f"`{AVG}` = macro average over languages (mean of per-language means)"]
        if any(r.label == MICRO for r in self.rows):
            notes.append(f"`{MICRO}` = mean over all queries pooled")
        if self.compared:
            test = "paired randomisation (sign-flip) test" if self.test == "permutation" else "paired t-test"
            note = f"Δ = system − baseline; p = two-sided {test}"
            if self.test == "permutation":
                note += "; p(t) = two-sided paired t-test (none for the macro average)"
            notes.append(note)
        if self.scale != 1.0:
            notes.append(f"values × {self.scale:g}")
        lines += ["", "; ".join(notes) + "."]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready structure (NaN → ``None``)."""
        return {
            "title": self.title,
            "metrics": list(self.metrics),
            "average": "macro",
            "scale": self.scale,
            "compared": self.compared,
            "test": self.test,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "rows": [
                {
                    "lang": r.label,
                    "n": dict(r.n),
                    "values": {m: _clean(v) for m, v in r.values.items()},
                    **(
                        {
                            "delta": {m: _clean(v) for m, v in r.delta.items()},
                            "p": {m: _clean(v) for m, v in r.p.items()},
                            "p_ttest": {m: _clean(v) for m, v in r.p_ttest.items()},
                        }
                        if self.compared
                        else {}
                    ),
                }
                for r in self.rows
            ],
        }

    def write(self, out_dir: str | Path, name: str, digits: int = 3) -> tuple[Path, Path]:
        """Write ``name.md`` and ``name.json`` into ``out_dir``, each atomically."""
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise XqgError(f"table name must be a plain file stem, got {name!r}")
        out = Path(out_dir)
        md, js = out / f"{name}.md", out / f"{name}.json"
        with atomic_open(md) as fh:
            fh.write(self.to_markdown(digits))
        write_json(js, self.to_dict())
        return md, js
