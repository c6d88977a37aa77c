"""XQuAD as a cross-lingual retrieval benchmark.

Corpus: the 240 English paragraphs of ``xquad.en.json`` (48 articles × 5). Queries: the 1,190
questions of ``xquad.<lang>.json`` for any of the 12 languages. Relevant: the English paragraph
that holds the question with the same id (XQuAD is fully parallel; this is checked on load).

Ids:

* paragraph ``"{article title}#{paragraph index}"``, e.g. ``"Super_Bowl_50#0"``: it names the
  Wikipedia article, so it stays meaningful if files are reordered or subset; indices are 0-based
  positions within the article as released.
* query ``"{squad id}-{lang}"``, e.g. ``"56beb4343aeaaa14008c925b-de"``: the same question in
  two languages must not collide in one run; ``qid_lang`` maps back to the language.

Split (fixed, article-level, so no paragraph is shared between training and testing): the 48
article titles are sorted, permuted with ``numpy.random.Generator(PCG64(2023)).permutation`` and
cut into train 28 / dev 10 / test 10. The result is committed as ``xquad_split.json`` beside
this module and that file, not the RNG, is what :func:`load_xquad` uses: a change in NumPy's
sampling can then only fail a test, never move articles silently. Retrieval is always over the
full 240-paragraph corpus; the split only selects which questions (and paragraphs) may be used
for training, tuning and testing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from xqg.data._jsonl import PathLike, describe_inputs, source_file
from xqg.data.corpus import write_corpus
from xqg.data.qrels import write_qrels
from xqg.data.queries import write_queries
from xqg.errors import DataFormatError, XqgError
from xqg.io import write_json, write_manifest
from xqg.languages import XQUAD_LANGS
from xqg.paths import data_root
from xqg.types import AnswerQuery, Passage, Qrels, Query

XQUAD_SEED = 2023
XQUAD_SPLIT_SIZES: dict[str, int] = {"train": 28, "dev": 10, "test": 10}
SPLITS = ("all", "train", "dev", "test")
SPLIT_FILE = Path(__file__).with_name("xquad_split.json")


def xquad_paragraph_id(title: str, index: int) -> str:
    return f"{title}#{index}"


def xquad_query_id(squad_id: str, lang: str) -> str:
    return f"{squad_id}-{lang}"


@dataclass(frozen=True)
class _Article:
    title: str
    # (context, ((qid, question, answer texts), ...))
    paragraphs: tuple[tuple[str, tuple[tuple[str, str, tuple[str, ...]], ...]], ...]


@dataclass
class XQuADBenchmark:
    """XQuAD loaded in memory (it is small: 240 passages, 1,190 questions per language)."""

    corpus: list[Passage]
    queries: dict[str, list[Query]]
    qrels: Qrels
    qid_lang: dict[str, str]
    split: dict[str, list[str]]
    paragraph_article: dict[str, str]
    split_name: str = "all"
    langs: tuple[str, ...] = field(default_factory=tuple)
    en_answers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """SQuAD question id → the English answer texts (spans of the English paragraph)."""

    def all_queries(self) -> list[Query]:
        """Queries of every loaded language, language by language."""
        return [q for lang in self.langs for q in self.queries[lang]]

    def qrels_for(self, lang: str) -> Qrels:
        """The judgements of one language's queries (for per-language evaluation)."""
        return {q.id: self.qrels[q.id] for q in self.queries[lang]}

    def answer_queries(self, lang: str) -> list[AnswerQuery]:
        """``lang``'s questions with the **English** answers, for R@kt over the English corpus.

        XQuAD is parallel: every language's question has the same SQuAD id, and its English answer
        is a span of the English paragraph, exactly what R@kt looks for in retrieved English text
        (as XOR-Retrieve judges with English answers).
        """
        out = []
        for q in self.queries[lang]:
            squad_id = q.id.rsplit("-", 1)[0]
            out.append(AnswerQuery(id=q.id, text=q.text, lang=lang, answers=self.en_answers[squad_id]))
        return out

    def paragraphs_in(self, split: str) -> list[Passage]:
        """Paragraphs of the articles in ``split`` (``all`` → the whole corpus)."""
        if split == "all":
            return list(self.corpus)
        titles = set(self.split[split])
        return [p for p in self.corpus if self.paragraph_article[p.id] in titles]


def make_xquad_split(
    titles: Sequence[str], seed: int = XQUAD_SEED, sizes: dict[str, int] | None = None
) -> dict[str, list[str]]:
    """Assign article titles to train/dev/test; each list is returned sorted.

    Sorting first makes the result independent of the order titles are supplied in; PCG64 is
    NumPy's stream-stable bit generator.
    """
    sizes = dict(XQUAD_SPLIT_SIZES if sizes is None else sizes)
    ordered = sorted(set(titles))
    if len(ordered) != len(titles):
        raise XqgError("article titles must be unique to be split")
    if sum(sizes.values()) != len(ordered):
        raise XqgError(f"split sizes {sizes} do not add up to {len(ordered)} articles")
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(len(ordered))
    shuffled = [ordered[i] for i in perm]
    out: dict[str, list[str]] = {}
    start = 0
    for name, size in sizes.items():
        out[name] = sorted(shuffled[start : start + size])
        start += size
    return out


@cache
def _committed_split() -> dict[str, Any]:
    with open(SPLIT_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def xquad_split() -> dict[str, list[str]]:
    """The committed article split: ``{"train": [...], "dev": [...], "test": [...]}`` (titles)."""
    data = _committed_split()
    return {name: list(data[name]) for name in XQUAD_SPLIT_SIZES}


def _parse(path: Path) -> list[_Article]:
    """Read one XQuAD (SQuAD v1.1 layout) file into articles, checking the structure we rely on."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(path, f"invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataFormatError(path, "expected a SQuAD-style object with a 'data' array", field="data")
    articles = []
    for i, art in enumerate(doc["data"]):
        try:
            title = art["title"]
            paragraphs = []
            for j, para in enumerate(art["paragraphs"]):
                context = para["context"]
                if not isinstance(context, str) or not context.strip():
                    raise DataFormatError(
                        path, "empty or not a string", field=f"data[{i}].paragraphs[{j}].context"
                    )
                qas = []
                for k, qa in enumerate(para["qas"]):
                    q = qa["question"]
                    if not isinstance(q, str) or not q.strip():
                        raise DataFormatError(
                            path,
                            "empty or not a string",
                            field=f"data[{i}].paragraphs[{j}].qas[{k}].question",
                        )
                    answers = tuple(
                        a["text"] for a in qa.get("answers", ()) if isinstance(a, dict) and a.get("text")
                    )
                    qas.append((str(qa["id"]), q, answers))
                paragraphs.append((context, tuple(qas)))
        except (KeyError, TypeError) as exc:
            raise DataFormatError(path, f"malformed article ({exc!r})", field=f"data[{i}]") from None
        articles.append(_Article(title=str(title), paragraphs=tuple(paragraphs)))
    return articles


def _check_parallel(en: list[_Article], other: list[_Article], path: Path) -> None:
    """XQuAD's retrieval labels rely on every language file mirroring the English one id by id."""
    if len(other) != len(en):
        raise DataFormatError(path, f"{len(other)} articles but xquad.en.json has {len(en)}; not parallel")
    for i, (a, b) in enumerate(zip(en, other, strict=True)):
        if a.title != b.title:
            raise DataFormatError(
                path, f"title {b.title!r} but English has {a.title!r}", field=f"data[{i}].title"
            )
        if len(a.paragraphs) != len(b.paragraphs):
            raise DataFormatError(path, "paragraph count differs from English", field=f"data[{i}].paragraphs")
        for j, (pa, pb) in enumerate(zip(a.paragraphs, b.paragraphs, strict=True)):
            ids_a = [qa[0] for qa in pa[1]]
            ids_b = [qa[0] for qa in pb[1]]
            if ids_a != ids_b:
                raise DataFormatError(
                    path,
                    "question ids differ from English; not parallel",
                    field=f"data[{i}].paragraphs[{j}].qas",
                )


def _normalise_langs(langs: Sequence[str] | str | None) -> tuple[str, ...]:
    if langs is None:
        return XQUAD_LANGS
    if isinstance(langs, str):
        langs = [langs]
    out: list[str] = []
    for lang in langs:
        if lang not in XQUAD_LANGS:
            raise XqgError(f"XQuAD has no language '{lang}'; valid: {' '.join(XQUAD_LANGS)}")
        if lang not in out:
            out.append(lang)
    if not out:
        raise XqgError("no XQuAD language selected")
    return tuple(out)


def _source(data_dir: PathLike | None, lang: str) -> Path:
    root = Path(data_dir) if data_dir is not None else data_root() / "xquad"
    return source_file(root, f"xquad.{lang}.json", what=f"XQuAD {lang}")


def load_xquad(
    langs: Sequence[str] | str | None = None, split: str = "all", data_dir: PathLike | None = None
) -> XQuADBenchmark:
    """Load XQuAD for ``langs`` (default all 12) restricted to the questions of ``split``.

    ``data_dir`` is the folder holding ``xquad.<lang>.json`` (default ``data_root()/xquad``).
    Question text is stripped of surrounding whitespace (the release has trailing spaces and one
    trailing tab). The corpus is always all 240 paragraphs.
    """
    if split not in SPLITS:
        raise XqgError(f"unknown XQuAD split '{split}'; valid: {', '.join(SPLITS)}")
    langs = _normalise_langs(langs)
    en_path = _source(data_dir, "en")
    en = _parse(en_path)
    split_titles = xquad_split()
    titles = {a.title for a in en}
    committed = {t for ts in split_titles.values() for t in ts}
    if committed != titles:
        raise XqgError(
            f"{en_path}: its article titles do not match the committed split in {SPLIT_FILE.name}; "
            "this is not the XQuAD release the split was made for"
        )
    selected = titles if split == "all" else set(split_titles[split])

    corpus: list[Passage] = []
    paragraph_article: dict[str, str] = {}
    en_answers: dict[str, tuple[str, ...]] = {}
    for art in en:
        for j, (context, qas_en) in enumerate(art.paragraphs):
            for squad_id, _q, answers in qas_en:
                en_answers[squad_id] = answers
            pid = xquad_paragraph_id(art.title, j)
            corpus.append(Passage(id=pid, text=context, title=art.title.replace("_", " ")))
            paragraph_article[pid] = art.title

    queries: dict[str, list[Query]] = {}
    qrels: Qrels = {}
    qid_lang: dict[str, str] = {}
    for lang in langs:
        path = en_path if lang == "en" else _source(data_dir, lang)
        arts = en if lang == "en" else _parse(path)
        if lang != "en":
            _check_parallel(en, arts, path)
        qs: list[Query] = []
        for art in arts:
            if art.title not in selected:
                continue
            for j, (_, qas) in enumerate(art.paragraphs):
                pid = xquad_paragraph_id(art.title, j)
                for squad_id, question, _answers in qas:
                    qid = xquad_query_id(squad_id, lang)
                    qs.append(Query(id=qid, text=question.strip(), lang=lang))
                    qrels[qid] = {pid: 1}
                    qid_lang[qid] = lang
        queries[lang] = qs
    return XQuADBenchmark(
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        qid_lang=qid_lang,
        split=split_titles,
        paragraph_article=paragraph_article,
        split_name=split,
        langs=langs,
        en_answers=en_answers,
    )


def build_xquad(
    out_dir: PathLike,
    langs: Sequence[str] | str | None = None,
    split: str = "all",
    data_dir: PathLike | None = None,
) -> Path:
    """Write XQuAD as a BEIR folder and return it.

    Files: ``corpus.jsonl`` (240 paragraphs), ``queries.jsonl`` (with ``lang``),
    ``qrels/<split>.tsv`` (``qrels/all.tsv`` for ``split="all"``), ``split.json`` (the article
    split and seed) and, last, ``manifest.json``.
    """
    bench = load_xquad(langs, split, data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    qrels_name = f"qrels/{split}.tsv"
    write_corpus(out / "corpus.jsonl", bench.corpus)
    n_queries = write_queries(out / "queries.jsonl", bench.all_queries())
    n_qrels = write_qrels(out / qrels_name, bench.qrels)
    write_json(
        out / "split.json",
        {"seed": XQUAD_SEED, "sizes": XQUAD_SPLIT_SIZES, "selected": split, **bench.split},
    )
    counts = {
        "passages": len(bench.corpus),
        "queries": n_queries,
        "qrels": n_qrels,
        "articles": len({bench.paragraph_article[next(iter(d))] for d in bench.qrels.values()}),
    }
    counts.update({f"queries.{lang}": len(bench.queries[lang]) for lang in bench.langs})
    sources = [_source(data_dir, lang) for lang in sorted({"en", *bench.langs})]
    write_manifest(
        out,
        stage="benchmark",
        config={"benchmark": "xquad", "langs": list(bench.langs), "split": split, "seed": XQUAD_SEED},
        counts=counts,
        files=["corpus.jsonl", "queries.jsonl", qrels_name, "split.json"],
        inputs=describe_inputs(sources),
        extra={
            "ids": {
                "passage": "{article title}#{paragraph index}",
                "query": "{squad id}-{lang}",
            },
            "qrels_file": qrels_name,
        },
    )
    return out


__all__ = [
    "SPLIT_FILE",
    "XQUAD_LANGS",
    "XQUAD_SEED",
    "XQUAD_SPLIT_SIZES",
    "XQuADBenchmark",
    "build_xquad",
    "load_xquad",
    "make_xquad_split",
    "xquad_paragraph_id",
    "xquad_query_id",
    "xquad_split",
]
