"""XNLI as a cross-lingual retrieval benchmark (issue 15).

XNLI 1.0 (XTREME's processed files) is fully parallel by row in 15 languages: every premise comes
with three hypotheses, one per label (entailment, neutral, contradiction), and row *i* of
``{split}-{lang}.tsv`` is the translation of row *i* of ``{split}-en.tsv``. Two retrieval tasks:

* ``hypothesis`` — a hypothesis in language X retrieves its **English** premise among the split's
  English premises. Relevance is graded by label: entailment 2, neutral 1, contradiction 1 (a
  contradiction is still *about* its premise). Each hypothesis has exactly one relevant premise, so
  the grade does not move MRR, recall or nDCG of a query; it is recorded in the qrels for graded
  consumers and for per-label breakdowns.
* ``entailment`` — the same with only the entailment hypotheses (a third of the queries): the
  hypotheses a retriever should find easiest, since they restate part of the premise.
* ``premise`` — bitext: the premise in X retrieves its English original. English is left out of
  this task (its query would be the document itself).

Corpus: the split's distinct English premises (dev 830, test 1,670), each once. The splits are
XNLI's own: **dev** (2,490 rows, labelled in every file) is for tuning, **test** (5,010 rows, no
label column) is scored once; test labels come from ``test-en.labels.jsonl``, which is row-aligned
with every ``test-<lang>.tsv`` — checked here by its English premise and hypothesis, and the same
row-position join checked on dev against each language's own labels.

Ids: premise ``"{split}-p{k:04d}"`` (its position among the split's premises; the three rows of a
premise are consecutive), hypothesis query ``"{split}-h{row:04d}-{lang}"``, premise query
``"{split}-p{k:04d}-{lang}"``. Files are tab-separated without quoting (a quote is text), lines end
in CRLF, and the labels file has a few leading spaces the TSV lacks; text is stripped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from xqg.data._jsonl import PathLike, describe_inputs, source_file
from xqg.data.corpus import write_corpus
from xqg.data.qrels import write_qrels
from xqg.data.queries import write_queries
from xqg.errors import DataFormatError, XqgError
from xqg.io import write_manifest
from xqg.languages import normalize
from xqg.paths import data_root
from xqg.types import Passage, Qrels, Query

XNLI_LANGS: tuple[str, ...] = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
SPLITS = ("dev", "test")
TASKS = ("hypothesis", "entailment", "premise")
LABELS = ("entailment", "neutral", "contradiction")
#: The labels file's integer codes (XTREME / HF ``xnli``): 0 entailment, 1 neutral, 2 contradiction.
LABEL_CODES: dict[int, str] = dict(enumerate(LABELS))
#: Graded relevance of a hypothesis's premise, by label (issue 15).
GRADES: dict[str, int] = {"entailment": 2, "neutral": 1, "contradiction": 1}
HYPOTHESES_PER_PREMISE = 3
#: Rows per split (the same in every language): what :func:`read_xnli` checks.
ROWS: dict[str, int] = {"dev": 2490, "test": 5010}


def premise_id(split: str, k: int) -> str:
    return f"{split}-p{k:04d}"


def hypothesis_query_id(split: str, row: int, lang: str) -> str:
    return f"{split}-h{row:04d}-{lang}"


def premise_query_id(split: str, k: int, lang: str) -> str:
    return f"{premise_id(split, k)}-{lang}"


@dataclass(frozen=True)
class XNLISplit:
    """One split's rows in every language read: ``rows[lang][i] = (premise, hypothesis)``."""

    split: str
    rows: dict[str, tuple[tuple[str, str], ...]]
    labels: tuple[str, ...]
    """Label of each row (the same in every language)."""

    @property
    def n_premises(self) -> int:
        return len(self.labels) // HYPOTHESES_PER_PREMISE

    def premises(self, lang: str) -> list[str]:
        """The split's premises in ``lang``, one per premise group, in order."""
        return [self.rows[lang][k * HYPOTHESES_PER_PREMISE][0] for k in range(self.n_premises)]

    def parallel_sentences(self, lang: str) -> list[tuple[str, str]]:
        """(English, X) pairs: every premise once, then every hypothesis (distillation's data)."""
        en, xx = self.rows["en"], self.rows[lang]
        pairs = list(zip(self.premises("en"), self.premises(lang), strict=True))
        return pairs + [(e[1], x[1]) for e, x in zip(en, xx, strict=True)]


def _root(data_dir: PathLike | None) -> Path:
    return Path(data_dir) if data_dir is not None else data_root() / "xnli"


def _read_tsv(path: Path, fields: int) -> list[list[str]]:
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for i, line in enumerate(fh, 1):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != fields:
                raise DataFormatError(path, f"{len(parts)} tab-separated fields, expected {fields}", line=i)
            parts = [p.strip() for p in parts]
            if not all(parts[:2]):
                raise DataFormatError(path, "empty premise or hypothesis", line=i)
            out.append(parts)
    return out


def _test_labels(root: Path, en_rows: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    path = source_file(root, "test-en.labels.jsonl", what="XNLI test labels")
    labels = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            try:
                doc = json.loads(line)
                premise, hypothesis, code = doc["premise"].strip(), doc["hypothesis"].strip(), doc["label"]
            except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
                raise DataFormatError(path, f"bad record ({exc!r})", line=i) from None
            if code not in LABEL_CODES:
                raise DataFormatError(path, f"label {code!r} is not one of 0, 1, 2", line=i, field="label")
            if i > len(en_rows) or (premise, hypothesis) != en_rows[i - 1]:
                raise DataFormatError(
                    path, "not the premise and hypothesis of this row of test-en.tsv", line=i
                )
            labels.append(LABEL_CODES[code])
    if len(labels) != len(en_rows):
        raise DataFormatError(path, f"{len(labels)} labels for {len(en_rows)} rows of test-en.tsv")
    return tuple(labels)


def _read_lang(root: Path, split: str, lang: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    path = source_file(root, f"{split}-{lang}.tsv", what=f"XNLI {split} {lang}")
    st = path.stat()
    return _read_lang_file(path, split, st.st_mtime_ns, st.st_size)


@cache
def _read_lang_file(
    path: Path, split: str, _mtime_ns: int, _size: int
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """One file's rows and labels, cached by path and modification (the loaders read each often)."""
    rows = _read_tsv(path, 3 if split == "dev" else 2)
    if len(rows) != ROWS[split]:
        raise DataFormatError(path, f"{len(rows)} rows, XNLI {split} has {ROWS[split]}")
    labels = tuple(r[2] for r in rows) if split == "dev" else ()
    bad = [i for i, lab in enumerate(labels, 1) if lab not in GRADES]
    if bad:
        raise DataFormatError(
            path, f"label {labels[bad[0] - 1]!r} is not one of {', '.join(LABELS)}", line=bad[0]
        )
    return tuple((r[0], r[1]) for r in rows), labels


def _check_groups(path: Path, rows: Sequence[tuple[str, str]], labels: Sequence[str]) -> None:
    """Three consecutive rows per premise, one hypothesis of each label."""
    for start in range(0, len(rows), HYPOTHESES_PER_PREMISE):
        group = rows[start : start + HYPOTHESES_PER_PREMISE]
        if len({p for p, _ in group}) != 1:
            raise DataFormatError(path, "the three rows of a premise differ in their premise", line=start + 1)
        if labels and sorted(labels[start : start + HYPOTHESES_PER_PREMISE]) != sorted(LABELS):
            raise DataFormatError(path, "a premise without one hypothesis of each label", line=start + 1)


def normalise_langs(langs: Sequence[str] | str | None) -> tuple[str, ...]:
    """XNLI languages from codes in any form :mod:`xqg.languages` accepts, order kept."""
    if langs is None:
        return XNLI_LANGS
    items = langs.split(",") if isinstance(langs, str) else list(langs)
    out: list[str] = []
    for code in items:
        if not code.strip():
            continue
        lang = normalize(code)
        if lang not in XNLI_LANGS:
            raise XqgError(f"XNLI has no language '{code}'; valid: {' '.join(XNLI_LANGS)}")
        if lang not in out:
            out.append(lang)
    if not out:
        raise XqgError("no XNLI language selected")
    return tuple(out)


def read_xnli(
    split: str, langs: Sequence[str] | str | None = None, data_dir: PathLike | None = None
) -> XNLISplit:
    """The rows of ``split`` in ``langs`` (English is always read: it is the corpus and the labels).

    Checks: row counts, three rows per premise in every language, English row *i* parallel to row
    *i* elsewhere (same premise group structure, same labels on dev), the test labels file's text
    equal to ``test-en.tsv`` row by row.
    """
    if split not in SPLITS:
        raise XqgError(f"unknown XNLI split '{split}'; valid: {', '.join(SPLITS)}")
    root = _root(data_dir).resolve()
    chosen = normalise_langs(langs)
    en_rows, en_labels = _read_lang(root, split, "en")
    labels = en_labels if split == "dev" else _test_labels(root, en_rows)
    _check_groups(root / f"{split}-en.tsv", en_rows, labels)
    rows = {"en": en_rows}
    for lang in chosen:
        if lang == "en":
            continue
        xx, own = _read_lang(root, split, lang)
        path = root / f"{split}-{lang}.tsv"
        _check_groups(path, xx, own)
        if own and own != labels:
            i = next(i for i, (a, b) in enumerate(zip(own, labels, strict=True)) if a != b)
            raise DataFormatError(
                path, f"label {own[i]!r} but English row has {labels[i]!r}; not parallel", line=i + 1
            )
        rows[lang] = xx
    return XNLISplit(
        split=split, rows={lang: rows[lang] for lang in ("en", *chosen) if lang in rows}, labels=labels
    )


@dataclass
class XNLIBenchmark:
    """One task of one split in memory: English premises as corpus, queries per language, qrels."""

    task: str
    split: str
    corpus: list[Passage]
    queries: dict[str, list[Query]]
    qrels: Qrels
    qid_lang: dict[str, str]
    qid_label: dict[str, str] = field(default_factory=dict)
    """Hypothesis query id → its label (``hypothesis``/``entailment`` tasks)."""
    langs: tuple[str, ...] = field(default_factory=tuple)

    def all_queries(self) -> list[Query]:
        return [q for lang in self.langs for q in self.queries[lang]]

    def qrels_for(self, lang: str) -> Qrels:
        return {q.id: self.qrels[q.id] for q in self.queries[lang]}


def load_xnli(
    langs: Sequence[str] | str | None = None,
    split: str = "test",
    task: str = "hypothesis",
    data_dir: PathLike | None = None,
) -> XNLIBenchmark:
    """Load one XNLI retrieval task (see the module docstring) for ``langs`` (default all 15)."""
    if task not in TASKS:
        raise XqgError(f"unknown XNLI task '{task}'; valid: {', '.join(TASKS)}")
    chosen = normalise_langs(langs)
    if task == "premise":
        chosen = tuple(lang for lang in chosen if lang != "en")
        if not chosen:
            raise XqgError("the premise (bitext) task has no English queries; select another language")
    data = read_xnli(split, chosen, data_dir)
    corpus = [Passage(id=premise_id(split, k), text=t) for k, t in enumerate(data.premises("en"))]
    queries: dict[str, list[Query]] = {}
    qrels: Qrels = {}
    qid_lang: dict[str, str] = {}
    qid_label: dict[str, str] = {}
    for lang in chosen:
        qs: list[Query] = []
        if task == "premise":
            for k, text in enumerate(data.premises(lang)):
                qid = premise_query_id(split, k, lang)
                qs.append(Query(id=qid, text=text, lang=lang))
                qrels[qid] = {premise_id(split, k): 1}
        else:
            for row, ((_, hyp), label) in enumerate(zip(data.rows[lang], data.labels, strict=True)):
                if task == "entailment" and label != "entailment":
                    continue
                qid = hypothesis_query_id(split, row, lang)
                qs.append(Query(id=qid, text=hyp, lang=lang))
                qrels[qid] = {premise_id(split, row // HYPOTHESES_PER_PREMISE): GRADES[label]}
                qid_label[qid] = label
        for q in qs:
            qid_lang[q.id] = lang
        queries[lang] = qs
    return XNLIBenchmark(task=task, split=split, corpus=corpus, queries=queries, qrels=qrels,
                         qid_lang=qid_lang, qid_label=qid_label, langs=chosen)  # fmt: skip


def build_xnli(
    out_dir: PathLike,
    langs: Sequence[str] | str | None = None,
    split: str = "test",
    data_dir: PathLike | None = None,
) -> Path:
    """Write one split as a BEIR folder with every task: ``corpus.jsonl`` (English premises),
    ``queries.jsonl`` (hypotheses) with ``qrels/{split}.tsv`` (graded) and
    ``qrels/{split}-entailment.tsv``, ``queries-premise.jsonl`` with ``qrels/{split}-premise.tsv``,
    and ``manifest.json`` last."""
    hyp = load_xnli(langs, split, "hypothesis", data_dir)
    ent = load_xnli(langs, split, "entailment", data_dir)
    non_en = [lang for lang in hyp.langs if lang != "en"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"corpus": "corpus.jsonl", "queries": "queries.jsonl", "graded": f"qrels/{split}.tsv",
             "entailment": f"qrels/{split}-entailment.tsv"}  # fmt: skip
    write_corpus(out / files["corpus"], hyp.corpus)
    counts = {
        "passages": len(hyp.corpus),
        "queries": write_queries(out / files["queries"], hyp.all_queries()),
        "qrels": write_qrels(out / files["graded"], hyp.qrels),
        "qrels.entailment": write_qrels(out / files["entailment"], ent.qrels),
    }
    if non_en:
        prem = load_xnli(non_en, split, "premise", data_dir)
        files.update({"premise_queries": "queries-premise.jsonl", "premise": f"qrels/{split}-premise.tsv"})
        counts["queries.premise"] = write_queries(out / files["premise_queries"], prem.all_queries())
        counts["qrels.premise"] = write_qrels(out / files["premise"], prem.qrels)
    counts.update({f"queries.{lang}": len(hyp.queries[lang]) for lang in hyp.langs})
    root = _root(data_dir)
    sources = [root / f"{split}-{lang}.tsv" for lang in sorted({"en", *hyp.langs})]
    if split == "test":
        sources.append(root / "test-en.labels.jsonl")
    write_manifest(
        out,
        stage="benchmark",
        config={"benchmark": "xnli", "langs": list(hyp.langs), "split": split},
        counts=counts,
        files=list(files.values()),
        inputs=describe_inputs(sources),
        extra={
            "ids": {
                "passage": "{split}-p{k:04d}",
                "query": "{split}-h{row:04d}-{lang}",
                "premise_query": "{split}-p{k:04d}-{lang}",
            },
            "grades": GRADES,
            "files": files,
        },
    )
    return out


__all__ = [
    "GRADES",
    "LABELS",
    "ROWS",
    "TASKS",
    "XNLI_LANGS",
    "XNLIBenchmark",
    "XNLISplit",
    "build_xnli",
    "hypothesis_query_id",
    "load_xnli",
    "normalise_langs",
    "premise_id",
    "premise_query_id",
    "read_xnli",
]
