"""Misspelt queries: how much does dense retrieval lose when users mistype, and does it depend on
the language, the encoder, or passage augmentation?

Research question: how robust is cross-lingual dense retrieval to misspelt queries — in English
conversation memory (LoCoMo: question → evidence turn) and in non-English questions over English
passages (XQuAD) — and does cross-lingual fine-tuning or augmentation change that?

Method. Queries are corrupted with :mod:`xqg.analyse.noise` (language-aware keyboard, diacritic,
vowel-sign and confusable-letter typos) at each noise rate (edits per eligible character); the
noise is seeded per query (``seed``, query id), so every system sees *the same* misspelt text at a
rate, and the edits at a low rate are nested in those at a higher one. Each system encodes the
corrupted queries and searches its passages exactly (inner product over the whole corpus, which
is what a flat IP index returns); MRR@10 and recall@10 come from :func:`xqg.evaluate.metrics.
evaluate_qrels` (ranx). Reported: the metric per rate; the relative degradation
``metric(rate) / metric(0)``; and the gap to the reference system at each rate.

Systems come in two kinds:

* ``--model LABEL=SPEC[@PASSAGE_SPEC]``: an encoder; it embeds the queries and (with its passage
  tower) the benchmark's corpus. Used on every benchmark.
* ``--system LABEL=FOLDER[:SYSTEM]``: XQuAD passage vectors from an ``xqg experiment`` folder
  (``embeddings/`` or ``fused-<SYSTEM>/``, e.g. augmented with generated queries); its queries are
  encoded with the encoder that made ``FOLDER/queries-<split>/`` (read from that manifest). XQuAD
  only: the folder holds no LoCoMo passages.

Query vectors are shared between systems whose query encoders are identical (e.g. the baseline
and the augmented system of one experiment), so each corrupted query set is encoded once per
distinct query encoder. Clean LoCoMo corpora (5,882 turns) can be cached per encoder (the CLI uses
``$XQG_HOME/cache/misspellings``, outside the report folder, so no binary lands in ``reports/``) so a
rerun does not re-encode them; the cache key is the encoder settings plus a hash of the turn texts.

**Layout.** :mod:`.compute` corrupts, encodes, searches and scores (:func:`compute`),
:mod:`.render` writes the headline, tables and figures (:func:`render`), and
:func:`run_misspellings` runs both and writes the analysis folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xqg.analyse.common import ModelSpec
from xqg.analyse.misspellings.compute import (
    BENCHMARKS,
    DEFAULT_RATES,
    METRICS,
    NAME,
    QUESTION,
    Entry,
    EvalSet,
    MisspellingsResult,
    build_entries,
    compute,
    locomo_eval_set,
    validate_rates,
    xquad_eval_set,
)
from xqg.analyse.misspellings.render import headline, render


def run_misspellings(
    entries: Sequence[Entry],
    eval_sets: Sequence[EvalSet],
    out_dir: str | Path | None,
    *,
    rates: Sequence[float] = DEFAULT_RATES,
    seed: int = 0,
    weights: dict[str, float] | None = None,
    headline_rate: float = 0.1,
    command: str | None = None,
    config: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
) -> MisspellingsResult:
    """Corrupt, encode, search and score every (benchmark, entry, rate); write the analysis.

    ``out_dir=None`` computes without writing (tests, notebooks). Systems (``kind="system"``)
    only run on XQuAD; a benchmark no entry applies to is an error. ``cache_dir``: where clean
    LoCoMo corpus vectors are kept between runs (None = not cached).
    """
    result = compute(
        entries,
        eval_sets,
        rates=rates,
        seed=seed,
        weights=weights,
        headline_rate=headline_rate,
        cache_dir=cache_dir,
    )
    if out_dir is not None:
        result.folder = _write(Path(out_dir), result, eval_sets, entries, command=command, config=config)
    return result


def _write(
    out: Path,
    result: MisspellingsResult,
    eval_sets: Sequence[EvalSet],
    entries: Sequence[Entry],
    *,
    command: str | None,
    config: dict[str, Any] | None,
) -> Path:
    shown = render(result.data, eval_sets, out)
    counts = {f"queries.{es.name}": len(es.queries) for es in eval_sets}
    counts.update({f"passages.{es.name}": len(es.corpus) for es in eval_sets})
    counts["systems"] = len(entries)
    counts["rates"] = len(result.rates)
    return shown.write(
        out,
        name=NAME,
        question=QUESTION,
        data=result.data,
        command=command,
        config={"rates": result.rates, **(config or {})},
        counts=counts,
    )


__all__ = [
    "BENCHMARKS",
    "DEFAULT_RATES",
    "METRICS",
    "Entry",
    "EvalSet",
    "MisspellingsResult",
    "ModelSpec",
    "build_entries",
    "compute",
    "headline",
    "render",
    "locomo_eval_set",
    "run_misspellings",
    "validate_rates",
    "xquad_eval_set",
]
