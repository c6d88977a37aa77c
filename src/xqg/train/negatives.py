"""Hard-negative mining for retriever training: BM25 (bm25s) or the dense model, positives skipped.

In-batch negatives are random passages; a hard negative is a passage the retriever (or BM25)
ranks high for the query but that does not answer it — the contrast that teaches fine
distinctions (Tevatron's ``negative_passages``). Two things matter and are options here:

* **the positives are never negatives**: every candidate whose text equals one of the row's
  positives is removed, and ``skip`` drops the next few ranks too, since the very top of a
  ranking is where unlabelled true answers (false negatives) hide;
* **cross-lingual queries and BM25**: lexical matching of an Arabic question against English
  passages finds nothing useful, so a ``mining_text`` per row (e.g. the question's English
  translation, which XQuAD has for free) can be used for the search instead of the query.

``xqg mine-negatives`` writes the result as Tevatron JSONL, the format ``xqg train-retriever
--data`` reads, so mined files are inspectable and reusable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xqg.errors import XqgError
from xqg.train.retriever import TrainRow

Method = Literal["bm25", "dense"]


def _bm25_rankings(queries: Sequence[str], corpus: Sequence[str], depth: int) -> np.ndarray:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(corpus), stopwords="en", show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(list(queries), stopwords="en", show_progress=False)
    docs, _ = retriever.retrieve(tokens, k=min(depth, len(corpus)), show_progress=False, n_threads=1)
    return np.asarray(docs, dtype=np.int64)


def _dense_rankings(queries: Sequence[str], corpus: Sequence[str], depth: int, encoder: Any) -> np.ndarray:
    q = encoder.encode_queries(list(queries))
    p = encoder.encode_passages(list(corpus))
    from xqg.search import exact_top_k

    return np.stack(exact_top_k(q @ p.T, depth))


def mine_negatives(
    rows: Sequence[TrainRow],
    corpus: Sequence[str],
    *,
    method: Method = "bm25",
    k: int = 1,
    skip: int = 0,
    depth: int = 50,
    mining_text: Sequence[str] | None = None,
    encoder: Any = None,
) -> list[TrainRow]:
    """Each row with ``k`` hard negatives from ``corpus`` (any negatives it had are replaced).

    ``depth`` passages are retrieved per query; positives (by text) are removed, then ``skip``
    more, then the next ``k`` become negatives, in rank order. A row left with fewer than ``k``
    is an error naming it — raise ``depth`` or lower ``skip``.
    """
    if k < 1:
        raise XqgError(f"k must be ≥ 1 hard negatives, not {k}")
    corpus = list(dict.fromkeys(corpus))
    if not corpus:
        raise XqgError("the corpus to mine negatives from is empty")
    texts = list(mining_text) if mining_text is not None else [r[0] for r in rows]
    if len(texts) != len(rows):
        raise XqgError(f"{len(texts)} mining texts for {len(rows)} rows")
    if method == "bm25":
        ranked = _bm25_rankings(texts, corpus, depth)
    elif method == "dense":
        if encoder is None:
            raise XqgError("dense mining needs an encoder (the model being trained, or another)")
        ranked = _dense_rankings(texts, corpus, depth, encoder)
    else:
        raise XqgError(f"unknown mining method '{method}'; choose bm25 or dense")
    out: list[TrainRow] = []
    for i, (row, hits) in enumerate(zip(rows, ranked, strict=True)):
        positive = row[1]
        candidates = [corpus[j] for j in hits if corpus[j] != positive][skip:]
        if len(candidates) < k:
            raise XqgError(
                f"training row {i} ({row[0][:60]!r}): only {len(candidates)} negatives left in the top "
                f"{depth} after removing the positive and skipping {skip}; raise depth or lower skip"
            )
        out.append((row[0], positive, tuple(candidates[:k])))
    return out


def write_rows_tevatron(path: str | Path, rows: Sequence[TrainRow], *, prefix: str = "q") -> int:
    """Write training rows as Tevatron train JSONL (passage ids are content hashes)."""
    import hashlib

    from xqg.data.tevatron import TrainExample, write_tevatron_train
    from xqg.types import Passage

    def passage(text: str) -> Passage:
        return Passage(id=hashlib.sha1(text.encode("utf-8")).hexdigest()[:16], text=text)

    examples = (
        TrainExample(
            query_id=f"{prefix}{i}",
            query=q,
            positive_passages=(passage(pos),),
            negative_passages=tuple(passage(n) for n in negs),
        )
        for i, (q, pos, negs) in enumerate(rows)
    )
    return write_tevatron_train(path, examples)


def xquad_mining_inputs(
    langs: Sequence[str], *, data_dir: Any = None
) -> tuple[list[TrainRow], list[str], list[str]]:
    """XQuAD train-split rows, the train-split paragraphs (the mining corpus — never dev/test),
    and each row's English question (the BM25 mining text for a cross-lingual query)."""
    from xqg.data.benchmarks.xquad import load_xquad

    wanted = list(dict.fromkeys(["en", *langs]))
    bench = load_xquad(wanted, split="train", data_dir=data_dir)
    text = {p.id: p.text for p in bench.corpus}
    english = {q.id[: -len("-en")]: q.text for q in bench.all_queries() if q.lang == "en"}
    rows: list[TrainRow] = []
    mining: list[str] = []
    for q in bench.all_queries():
        if q.lang not in langs:
            continue
        rows.append((q.text, text[next(iter(bench.qrels[q.id]))], ()))
        mining.append(english[q.id[: -len(q.lang) - 1]])
    return rows, [p.text for p in bench.paragraphs_in("train")], mining
