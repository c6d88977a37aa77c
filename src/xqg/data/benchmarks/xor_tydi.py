"""XOR-TyDi QA (XOR-Retrieve) questions for answer-based evaluation, and the PrimeQA fixture.

The shared data holds XOR-Retrieve's questions with English answer spans (dev 2,110, train
15,250, languages ar bn fi ja ko ru te) but not its 18M-passage English corpus: a user brings a
corpus, and a retrieved passage counts as relevant when it contains an answer string. Query ids
are XOR's own (numeric strings, unique across languages), so no language suffix is needed.

``xx-en/`` holds human translations of the *training* questions into English, line-aligned
(every XOR-Retrieve train question is among them; they also cover train questions that have no
English answer span, hence ~4,700 lines per language against ~2,200 train questions).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from xqg.data._jsonl import PathLike, describe_inputs, iter_lines, source_file
from xqg.data.corpus import detect_corpus_format, iter_corpus
from xqg.data.queries import write_queries
from xqg.data.tevatron import TrainExample
from xqg.data.xor import read_xor, write_xor
from xqg.errors import DataFormatError, XqgError
from xqg.io import write_manifest
from xqg.languages import XOR_LANGS
from xqg.paths import data_root
from xqg.types import AnswerQuery, Passage, Query

XOR_FILES = {"dev": "xor_dev_retrieve_eng_span_v1_1.jsonl", "train": "xor_train_retrieve_eng_span.jsonl"}


def _root(data_dir: PathLike | None) -> Path:
    return Path(data_dir) if data_dir is not None else data_root() / "xor_tydi"


def _langs(langs: Sequence[str] | str | None) -> tuple[str, ...]:
    if langs is None:
        return XOR_LANGS
    if isinstance(langs, str):
        langs = [langs]
    for lang in langs:
        if lang not in XOR_LANGS:
            raise XqgError(f"XOR-TyDi has no language '{lang}'; valid: {' '.join(XOR_LANGS)}")
    return tuple(dict.fromkeys(langs))


def load_xor_tydi(
    split: str = "dev", langs: Sequence[str] | str | None = None, data_dir: PathLike | None = None
) -> list[AnswerQuery]:
    """XOR-Retrieve questions of ``split`` (``dev`` or ``train``) in file order, ``" ar"`` fixed.

    ``data_dir`` is the folder holding the XOR files (default ``data_root()/xor_tydi``).
    """
    if split not in XOR_FILES:
        raise XqgError(f"unknown XOR-TyDi split '{split}'; valid: {', '.join(XOR_FILES)}")
    path = source_file(_root(data_dir), XOR_FILES[split], what=f"XOR-TyDi {split}")
    queries = read_xor(path)
    if langs is None:
        return queries
    wanted = set(_langs(langs))
    return [q for q in queries if q.lang in wanted]


def load_xor_translations(
    lang: str, split: str = "train", data_dir: PathLike | None = None, *, drop_empty: bool = False
) -> list[tuple[str, str]]:
    """``(native question, human English translation)`` pairs from ``xx-en/``.

    Only training questions were translated, so ``split`` must be ``"train"`` (the argument is
    explicit so code asking for dev translations fails instead of silently getting train).
    The release has a few junk lines (``ar-en`` line 428: English empty); ``drop_empty`` removes
    pairs where either side is blank, otherwise lines are returned exactly as aligned.
    """
    _langs(lang)
    if split != "train":
        raise XqgError(f"XOR-TyDi translations exist only for the train split, not '{split}'")
    root = _root(data_dir) / f"{lang}-en"
    native_path = source_file(root, f"{lang}.txt", what=f"XOR-TyDi {lang} questions")
    en_path = source_file(root, "en.txt", what=f"XOR-TyDi {lang}→en translations")
    native = [t for _, t in iter_lines(native_path)]
    english = [t for _, t in iter_lines(en_path)]
    if len(native) != len(english):
        raise DataFormatError(
            en_path,
            f"{len(english)} lines but {native_path.name} has {len(native)}; "
            "translations must be line-aligned",
        )
    pairs = list(zip(native, english, strict=True))
    if drop_empty:
        pairs = [(a, b) for a, b in pairs if a.strip() and b.strip()]
    return pairs


def build_xor_tydi(
    out_dir: PathLike,
    split: str = "dev",
    corpus: PathLike | None = None,
    langs: Sequence[str] | str | None = None,
    data_dir: PathLike | None = None,
) -> Path:
    """Write XOR-TyDi questions for answer-based evaluation and return the folder.

    Files: ``xor_<split>.jsonl`` (XOR layout, answers kept), ``queries.jsonl`` (BEIR, with
    ``lang``) and ``manifest.json``. ``corpus`` is the English corpus the user will retrieve from;
    it is only recorded (path, size, detected format), never read in full.
    """
    queries = load_xor_tydi(split, langs, data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    xor_name = f"xor_{split}.jsonl"
    write_xor(out / xor_name, queries, split=split)
    write_queries(out / "queries.jsonl", [Query(id=q.id, text=q.text, lang=q.lang) for q in queries])
    extra: dict[str, object] = {"evaluation": "answer string match; no qrels"}
    if corpus is not None:
        cpath = Path(corpus)
        if not cpath.is_file():
            raise XqgError(f"corpus {cpath} does not exist")
        extra["corpus"] = {
            "path": str(cpath.resolve()),
            "bytes": cpath.stat().st_size,
            "format": detect_corpus_format(cpath),
        }
    counts = {"queries": len(queries)}
    for lang in _langs(langs):
        counts[f"queries.{lang}"] = sum(q.lang == lang for q in queries)
    write_manifest(
        out,
        stage="benchmark",
        config={
            "benchmark": "xor-tydi",
            "split": split,
            "langs": list(_langs(langs)),
            "corpus": str(Path(corpus).resolve()) if corpus is not None else None,
        },
        counts=counts,
        files=[xor_name, "queries.jsonl"],
        inputs=describe_inputs([source_file(_root(data_dir), XOR_FILES[split], what="XOR-TyDi")]),
        extra=extra,
    )
    return out


# --- PrimeQA XOR fixture ------------------------------------------------------------------------

FIXTURE_LANG = "ko"
"""The fixture's one query is Korean (it is XOR-TyDi train id -7239279093922981232)."""

_FIXTURE_PREFIX = "xorqa.train_ir_"


@dataclass(frozen=True)
class XorFixture:
    """PrimeQA's tiny XOR-TyDi training fixture.

    ``corpus``: 100 English psgs_w100 passages (Pyserini JSONL). ``collection``: the 6 passages
    (ids ``"1"``–``"6"``) of the training example, from a DPR TSV. ``train``: one example, 1
    positive + 5 negatives in the fixture's order. ``query``/``query_en``: the Korean question and
    its English translation. The training passages are not in ``corpus``.
    """

    corpus: list[Passage]
    collection: list[Passage]
    train: list[TrainExample]
    query: Query
    query_en: Query


def _single_query(path: Path, lang: str) -> Query:
    rows = [(n, t) for n, t in iter_lines(path) if t.strip()]
    if len(rows) != 1:
        raise DataFormatError(path, f"expected exactly one query line, found {len(rows)}")
    line, text = rows[0]
    cols = text.split("\t")
    if len(cols) != 2:
        raise DataFormatError(
            path, f"expected 2 tab-separated columns (id, text), found {len(cols)}", line=line
        )
    return Query(id=cols[0], text=cols[1], lang=lang)


def load_primeqa_xor_fixture(data_dir: PathLike | None = None) -> XorFixture:
    """Load ``primeqa_xor_fixture/`` (``data_dir`` defaults to ``data_root()/primeqa_xor_fixture``)."""
    root = Path(data_dir) if data_dir is not None else data_root() / "primeqa_xor_fixture"
    corpus = list(
        iter_corpus(source_file(root, "psgs_w100_pyserini_100.jsonl", what="PrimeQA corpus"), "pyserini")
    )
    coll_path = source_file(
        root, f"{_FIXTURE_PREFIX}001pct_at_0_pct_collection_fornum.tsv", what="PrimeQA collection"
    )
    collection = list(iter_corpus(coll_path, "dpr"))
    by_id = {p.id: p for p in collection}
    query = _single_query(
        source_file(root, f"{_FIXTURE_PREFIX}001pct_at_0_pct_queries_fornum.tsv", what="PrimeQA query"),
        FIXTURE_LANG,
    )
    query_en = _single_query(
        source_file(root, f"{_FIXTURE_PREFIX}001pct_at_0_pct_queries_fornum_en.tsv", what="PrimeQA query"),
        "en",
    )
    triples_path = source_file(
        root, f"{_FIXTURE_PREFIX}negs_5_poss_1_001pct_at_0pct_num.json", what="PrimeQA triples"
    )
    positives: list[str] = []
    negatives: list[str] = []
    for line, text in iter_lines(triples_path):
        if not text.strip():
            continue
        try:
            qid, pos, neg = json.loads(text)
        except (json.JSONDecodeError, ValueError, TypeError):
            raise DataFormatError(
                triples_path, "expected a JSON array [qid, positive id, negative id]", line=line
            ) from None
        if str(qid) != query.id:
            raise DataFormatError(
                triples_path, f"query id {qid} is not the fixture's query {query.id}", line=line
            )
        for pid, bucket, name in ((str(pos), positives, "positive"), (str(neg), negatives, "negative")):
            if pid not in by_id:
                raise DataFormatError(
                    triples_path, f"{name} passage '{pid}' is not in {coll_path.name}", line=line
                )
            if pid not in bucket:
                bucket.append(pid)
    example = TrainExample(
        query_id=query.id,
        query=query.text,
        positive_passages=tuple(by_id[p] for p in positives),
        negative_passages=tuple(by_id[p] for p in negatives),
    )
    return XorFixture(corpus=corpus, collection=collection, train=[example], query=query, query_en=query_en)


__all__ = [
    "FIXTURE_LANG",
    "XOR_FILES",
    "XOR_LANGS",
    "XorFixture",
    "build_xor_tydi",
    "load_primeqa_xor_fixture",
    "load_xor_tydi",
    "load_xor_translations",
]
