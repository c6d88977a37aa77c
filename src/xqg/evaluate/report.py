"""Evaluate a run file end to end: qrels metrics and/or R@kt, per language, optionally vs a baseline.

This is what ``xqg evaluate`` calls. It reads runs (TREC or xqg JSONL, or a search folder),
splits the requested metrics into qrels metrics (numpy, or ranx) and R@kt (answer strings), and writes
one table per family (R@kt is reported in percent, as the official script does).

For R@kt against a large corpus only the passages the run retrieved are kept in memory: the
corpus is streamed once and filtered by the run's doc ids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqg.data.runs import read_run  # noqa: F401 - re-exported: its old import path (xqg evaluate)
from xqg.errors import XqgError
from xqg.evaluate.metrics import evaluate_qrels
from xqg.evaluate.rkt import DEFAULT_KS, evaluate_rkt
from xqg.evaluate.tables import LanguageTable
from xqg.io import write_json, write_manifest
from xqg.types import AnswerQuery, Qrels, Run

_RKT = re.compile(r"^r@(\d*)(k?)t$", re.IGNORECASE)  # r@kt, r@2kt (=2000 tokens), r@2000t


def split_metrics(metrics: Sequence[str], ks: Sequence[int] = DEFAULT_KS) -> tuple[list[str], list[int]]:
    """Separate R@kt names from qrels metrics.

    ``r@kt`` means the default ks (2000, 5000); ``r@2kt`` is the paper's notation for k = 2000
    tokens; ``r@1500t`` names a token count directly.
    """
    qrels_metrics: list[str] = []
    rkt_ks: list[int] = []
    for m in metrics:
        hit = _RKT.match(m.strip())
        if hit is None or (not hit.group(1) and not hit.group(2)):
            qrels_metrics.append(m)
        elif not hit.group(1):
            rkt_ks.extend(ks)
        else:
            rkt_ks.append(int(hit.group(1)) * (1000 if hit.group(2) else 1))
    return qrels_metrics, sorted(set(rkt_ks))


@dataclass
class EvaluationReport:
    tables: dict[str, LanguageTable]
    rkt: Any | None  # RktResult

    def to_markdown(self) -> str:
        return "\n\n".join(t.to_markdown() for t in self.tables.values())


def _passages_for(corpus: str | Path, runs: Sequence[Run]) -> dict[str, str]:
    from xqg.data.corpus import passages_by_id

    wanted = {d for run in runs for hits in run.values() for d in hits}
    return {pid: p.text for pid, p in passages_by_id(corpus, wanted).items()}


def evaluate_run(
    run: Run,
    *,
    metrics: Sequence[str],
    qrels: Qrels | None = None,
    answers: Sequence[AnswerQuery] | None = None,
    corpus: str | Path | None = None,
    qid_lang: dict[str, str] | None = None,
    baseline: Run | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    langs: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    inputs: dict[str, Any] | None = None,
    engine: str = "numpy",
) -> EvaluationReport:
    """Score ``run`` (and compare with ``baseline``) per language; write tables if ``out_dir``.

    ``engine`` computes the qrels metrics (``numpy``, or ``ranx``: the same numbers, slower)."""
    qrels_metrics, rkt_ks = split_metrics(metrics, ks)
    tables: dict[str, LanguageTable] = {}
    rkt_result = None
    if qid_lang is None and answers is not None:
        qid_lang = {a.id: a.lang for a in answers}
    if qrels_metrics:
        if qrels is None:
            raise XqgError(f"metrics {qrels_metrics} need qrels (--qrels)")
        lang_map = qid_lang or dict.fromkeys(qrels, "all")
        values = evaluate_qrels(run, qrels, qrels_metrics, engine=engine)
        base = evaluate_qrels(baseline, qrels, qrels_metrics, engine=engine) if baseline is not None else None
        tables["metrics"] = LanguageTable.build(values, lang_map, langs=langs, baseline=base)
    if rkt_ks:
        if answers is None or corpus is None:
            raise XqgError("R@kt needs XOR-TyDi-format answers (--answers) and the corpus (--corpus)")
        texts = _passages_for(corpus, [run] + ([baseline] if baseline is not None else []))
        rkt_result = evaluate_rkt(run, answers, rkt_ks, passages=texts)
        base_vals = None
        if baseline is not None:
            base_vals = evaluate_rkt(baseline, answers, rkt_ks, passages=texts).per_query_by_name()
        tables["rkt"] = LanguageTable.build(
            rkt_result.per_query_by_name(),
            {a.id: a.lang for a in answers},
            langs=langs,
            baseline=base_vals,
            scale=100.0,
            title="R@kt (%)",
        )
    if not tables:
        raise XqgError("no metrics to compute")
    if out_dir is not None:
        files: list[str] = []
        for name, table in tables.items():
            table.write(out_dir, name)
            files += [f"{name}.md", f"{name}.json"]
        if rkt_result is not None:
            write_json(Path(out_dir) / "rkt_details.json", rkt_result.to_dict())
            files.append("rkt_details.json")
        write_manifest(
            out_dir,
            stage="evaluate",
            config={"metrics": list(metrics), "ks": list(ks), "baseline": baseline is not None},
            counts={"queries": len(run)},
            files=files,
            inputs=inputs,
        )
    return EvaluationReport(tables, rkt_result)
