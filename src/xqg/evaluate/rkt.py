"""R@kt — XOR-Retrieve's "recall at k tokens", exactly as the official script computes it.

Reference: ``evals/eval_xor_retrieve.py`` of AkariAsai/XORQA (MIT licence). The upstream file is
not in the code index this module was written against; the copy read is the fork
``crystina-z/XORQA@ebaf3d3f1a70930e1eb0a8891c4adb842601e477`` (same path), whose
``evaluate_top_k_hit`` body is identical to the one vendored in ``Fantabulous-J/CLASS`` (the fork
only adds an unused ``difficulty_dict={}`` argument). Line numbers below refer to that file.

What the script does, and what xqg therefore does by default:

* **Loop over predictions, not gold** (L20). A gold query with no prediction is never seen, so
  it is *not* in any denominator (``missing="official"``). xqg reports such ids in
  :attr:`RktResult.missing_ids` and offers ``missing="zero"`` (count as a miss) and
  ``missing="error"``.
* **Language from the prediction** (L22: ``lang = item["lang"]``), not from the gold file. When
  xqg scores its own :data:`~xqg.types.Run` (which has no language), the gold ``lang`` is used;
  when it scores a predictions file, the file's ``lang`` is used and disagreements with gold are
  listed in :attr:`RktResult.lang_mismatches`.
* **Predictions whose id is not in gold are skipped** (L26-27) — after ``per_lang.setdefault``
  (L23), so their language gets a zero count, which is then dropped (L56-57). Net effect: they
  change nothing. xqg lists them in :attr:`RktResult.unknown_ids`.
* **Yes/no answers are dropped by exact list membership** (L33-35: ``answer not in ["yes",
  "no"]``): case-sensitive, no whitespace stripping — ``"Yes"``, ``"NO"`` and ``" yes"`` are
  kept as span answers. A query left with no span answer (including an empty answer list) is
  skipped entirely (L36-37): not counted, not in the denominator. Per-query value ``None``.
* **Tokens**: for each retrieved text in rank order, ``nltk.word_tokenize(ctx_text)`` (english
  Punkt sentence split + ``NLTKWordTokenizer``; L43) is appended; the loop stops as soon as the
  running total is ≥ k (L45-46), the list is truncated to exactly k tokens (L47) — so the passage
  that crosses k is cut mid-way — and joined with single spaces (L48). Tokenisation is per
  passage: sentences never span two passages, and the last token of one passage and the first of
  the next are separated by one space. Fewer than k tokens in total is no error: all of them are
  used (the README warns scores are then "underestimated").
* **Hit**: any span answer is a plain, case-sensitive substring of that joined string (L50-52):
  no normalisation at all. Consequences worth knowing: the answer is matched against *tokenised*
  text, so an answer containing ``"`` (NLTK turns it into two backquotes or two single quotes),
  ``$3.88`` (→ ``$ 3.88``), ``can't`` (→ ``ca n't``), ``Tokyo's tower`` (→ ``Tokyo 's tower``)
  or ``U.S.`` at the end of a sentence (→ ``U.S .``) can never match its raw form there;
  substrings also match inside words and across passage boundaries (``"ari"`` hits ``Paris``);
  an empty answer string ``""`` is a hit for every query, even with no passages.
* **Per-language score** ``(hit / count) * 100`` (L86), a float percentage, unrounded.
* **Macro average** ``statistics.mean`` over the languages that have ≥ 1 counted query (L56-57,
  L89, L94). ``statistics.mean`` sums exactly, so the result does not depend on language order;
  xqg calls the same function so even the last bit agrees. Nothing is rounded; the script prints
  full floats.
* Duplicate prediction ids are each counted (the loop does not deduplicate); duplicate gold ids
  keep the last answers (dict comprehension, L75). xqg refuses both instead (ids must be unique)
  — a silent double count is never what a user meant.
* ``--max_token_num`` is parsed (L68-69) but ignored: the script always reports k = 2000 and
  5000 (L77-80). xqg takes any k; the default is ``(2000, 5000)``.

Prediction texts: the official DPR baseline writes ``ctxs`` as the passage *text only*
(``ctxs = [ctx["text"] ...]`` in ``baselines/DPR/dense_retriever.py``), without the title; xqg
does the same by default (``passage_text="text"``) and offers ``"title_text"`` (``title + " " +
text``, the :meth:`xqg.types.Passage.full_text` join).

Ranking an xqg ``Run``: documents by score descending, ties by doc id ascending (string order).
The script never sees scores — it takes ``ctxs`` in list order — so this only matters for runs
with tied scores, and it makes xqg deterministic where dict order would not be.
"""

from __future__ import annotations

import json
import math
import numbers
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from xqg.errors import DataFormatError, XqgError
from xqg.evaluate.tokenize import CachedTokenizer, Tokenizer
from xqg.io import write_json
from xqg.types import AnswerQuery, Passage, Run

YES_NO_ANSWERS: tuple[str, ...] = ("yes", "no")
"""Dropped by exact equality, as the official script does (case-sensitive, unstripped)."""

DEFAULT_KS: tuple[int, ...] = (2000, 5000)

PassageText = Literal["text", "title_text"]
MissingPolicy = Literal["official", "zero", "error"]
RankedTexts = Mapping[str, Sequence[str]] | Callable[[str], Sequence[str] | None]


@dataclass(frozen=True, slots=True)
class RktPrediction:
    """One record of the official XOR-Retrieve predictions file: ``{"id", "lang", "ctxs"}``."""

    id: str
    lang: str
    ctxs: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "lang": self.lang, "ctxs": list(self.ctxs)}


def rkt_name(k: int) -> str:
    """The field's name for the metric: ``R@2kt`` for k = 2000, ``R@100t`` for k = 100."""
    return f"R@{k // 1000}kt" if k % 1000 == 0 else f"R@{k}t"


def span_answers(answers: Sequence[str]) -> list[str]:
    """Answers the script keeps: everything except the exact strings ``"yes"`` and ``"no"``."""
    if isinstance(answers, str):
        raise XqgError(f"answers must be a sequence of strings, got the string {answers!r}")
    return [a for a in answers if a not in YES_NO_ANSWERS]


def concat_tokens(texts: Iterable[str], k: int, tokenize: Tokenizer) -> list[str]:
    """The first ``k`` tokens of the ranked texts, tokenised passage by passage (script L41-47)."""
    tokens: list[str] = []
    for text in texts:
        tokens.extend(tokenize(text))
        if len(tokens) >= k:
            break
    return tokens[:k]


def is_hit(answers: Sequence[str], tokens: Sequence[str], k: int) -> bool:
    """Whether a span answer is a case-sensitive substring of the first k tokens joined by spaces."""
    joined = " ".join(tokens[:k])
    return any(answer in joined for answer in answers)


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    out = tuple(ks)
    if not out:
        raise XqgError("R@kt needs at least one k")
    for k in out:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise XqgError(f"R@kt: k must be a positive integer, got {k!r}")
    if len(set(out)) != len(out):
        raise XqgError(f"R@kt: duplicate k in {out}")
    return out


def _gold_index(gold: Sequence[AnswerQuery]) -> dict[str, AnswerQuery]:
    index: dict[str, AnswerQuery] = {}
    dupes: list[str] = []
    for q in gold:
        if q.id in index:
            dupes.append(q.id)
        index[q.id] = q
        if isinstance(q.answers, str):
            raise XqgError(f"gold query {q.id!r}: answers must be a sequence of strings, got a string")
    if dupes:
        raise XqgError(f"gold has {len(dupes)} duplicate query id(s): {_few(dupes)}")
    return index


def _few(ids: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in list(ids)[:n])
    return shown + (f", … ({len(ids) - n} more)" if len(ids) > n else "")


# --- the core, shared by every input form --------------------------------------------------------


@dataclass(frozen=True)
class RktResult:
    """R@kt at several k, as the official script reports it, plus what it silently drops.

    ``per_lang[k][lang]`` and ``macro[k]`` are percentages (0-100), unrounded, computed with the
    script's own expressions. ``per_query[k][qid]`` is 1.0 (hit), 0.0 (miss) or ``None`` (not
    counted: no span answer, or no prediction under ``missing="official"``) for every gold query
    — the paired values significance tests need.
    """

    ks: tuple[int, ...]
    langs: tuple[str, ...]
    counts: dict[str, int]
    hits: dict[int, dict[str, int]]
    per_lang: dict[int, dict[str, float]]
    macro: dict[int, float]
    per_query: dict[int, dict[str, float | None]]
    skipped_yes_no: tuple[str, ...] = ()
    missing_ids: tuple[str, ...] = ()
    unknown_ids: tuple[str, ...] = ()
    lang_mismatches: tuple[str, ...] = ()
    missing_policy: str = "official"
    passage_text: str = "text"
    qid_lang: dict[str, str] = field(default_factory=dict)

    def micro(self, k: int) -> float:
        """Pooled percentage over all counted queries (not reported by the script)."""
        total = sum(self.counts.values())
        return sum(self.hits[k].values()) / total * 100

    def values(self, k: int) -> dict[str, float]:
        """Per-query hits for the counted queries only (``None`` dropped), for paired tests."""
        return {q: v for q, v in self.per_query[k].items() if v is not None}

    def per_query_by_name(self) -> dict[str, dict[str, float | None]]:
        """``{"R@2kt": {qid: hit}, ...}`` — the shape :class:`~xqg.evaluate.LanguageTable` takes."""
        return {rkt_name(k): dict(self.per_query[k]) for k in self.ks}

    def summary(self) -> dict[str, float]:
        """``{"R@2kt": macro, ...}``."""
        return {rkt_name(k): self.macro[k] for k in self.ks}

    def to_dict(self) -> dict[str, Any]:
        """Everything but per-query values, JSON-ready (keys are metric names, not ints)."""
        return {
            "metrics": [rkt_name(k) for k in self.ks],
            "ks": list(self.ks),
            "langs": list(self.langs),
            "counts": dict(self.counts),
            "hits": {rkt_name(k): dict(self.hits[k]) for k in self.ks},
            "per_lang": {rkt_name(k): dict(self.per_lang[k]) for k in self.ks},
            "macro": {rkt_name(k): self.macro[k] for k in self.ks},
            "micro": {rkt_name(k): self.micro(k) for k in self.ks},
            "skipped_yes_no": len(self.skipped_yes_no),
            "missing_ids": list(self.missing_ids),
            "unknown_ids": list(self.unknown_ids),
            "lang_mismatches": list(self.lang_mismatches),
            "missing_policy": self.missing_policy,
            "passage_text": self.passage_text,
            "reference": "AkariAsai/XORQA evals/eval_xor_retrieve.py (evaluate_top_k_hit)",
        }


_Entry = tuple[str, str, Sequence[str] | None]  # (qid, lang, ranked texts or None = no prediction)


def _score(
    entries: Sequence[_Entry],
    gold: Mapping[str, AnswerQuery],
    ks: tuple[int, ...],
    *,
    missing: MissingPolicy,
    tokenize: Tokenizer,
    unknown_ids: Sequence[str] = (),
    lang_mismatches: Sequence[str] = (),
    passage_text: str = "text",
    lang_order: Sequence[str] = (),
) -> RktResult:
    if missing not in ("official", "zero", "error"):
        raise XqgError(f"missing must be 'official', 'zero' or 'error', got {missing!r}")
    kmax = max(ks)
    langs: list[str] = []
    counts: dict[str, int] = {}
    hits: dict[int, dict[str, int]] = {k: {} for k in ks}
    per_query: dict[int, dict[str, float | None]] = {k: {} for k in ks}
    skipped: list[str] = []
    missing_ids: list[str] = []
    qid_lang: dict[str, str] = {}

    for qid, lang, texts in entries:
        answers = span_answers(gold[qid].answers)
        if not answers:
            skipped.append(qid)
            for k in ks:
                per_query[k][qid] = None
            continue
        if texts is None:
            missing_ids.append(qid)
            if missing == "official":
                for k in ks:
                    per_query[k][qid] = None
                continue
            texts = ()
        if lang not in counts:
            langs.append(lang)
            counts[lang] = 0
            for k in ks:
                hits[k][lang] = 0
        counts[lang] += 1
        qid_lang[qid] = lang
        tokens = concat_tokens(texts, kmax, tokenize)
        for k in ks:
            hit = is_hit(answers, tokens, k)
            per_query[k][qid] = 1.0 if hit else 0.0
            hits[k][lang] += int(hit)

    if missing == "error" and missing_ids:
        raise XqgError(f"{len(missing_ids)} gold query id(s) have no prediction: {_few(missing_ids)}")
    if not counts:
        raise XqgError(
            "R@kt: no query could be scored (every gold query is missing from the predictions or "
            "has only yes/no answers); the official script would fail on an empty mean here"
        )
    if lang_order:
        # The script's languages appear in first-seen order over *all* prediction records
        # (setdefault at L23 runs before any skip); only the display order depends on it.
        pos = {lang: i for i, lang in enumerate(lang_order)}
        langs.sort(key=lambda lang: pos.get(lang, len(pos)))
    # The script's own expressions (L86, L94): percentage, then statistics.mean.
    per_lang = {k: {lang: (hits[k][lang] / counts[lang]) * 100 for lang in langs} for k in ks}
    macro = {k: statistics.mean(per_lang[k][lang] for lang in langs) for k in ks}
    return RktResult(
        ks=ks,
        langs=tuple(langs),
        counts=counts,
        hits=hits,
        per_lang=per_lang,
        macro=macro,
        per_query=per_query,
        skipped_yes_no=tuple(skipped),
        missing_ids=tuple(missing_ids),
        unknown_ids=tuple(unknown_ids),
        lang_mismatches=tuple(lang_mismatches),
        missing_policy=missing,
        passage_text=passage_text,
        qid_lang=qid_lang,
    )


# --- input forms ---------------------------------------------------------------------------------


def passage_string(passage: str | Passage | Mapping[str, Any], passage_text: PassageText = "text") -> str:
    """The string xqg tokenises for one passage.

    ``"text"`` (default) matches the official DPR baseline's ``ctxs``; ``"title_text"`` prepends
    the title with one space, like :meth:`xqg.types.Passage.full_text`. A plain string is taken as
    is (it already *is* the text).
    """
    if passage_text not in ("text", "title_text"):
        raise XqgError(f"passage_text must be 'text' or 'title_text', got {passage_text!r}")
    if isinstance(passage, str):
        return passage
    if isinstance(passage, Passage):
        text, title = passage.text, passage.title
    elif isinstance(passage, Mapping):
        text, title = passage.get("text"), passage.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise XqgError("a passage record needs a string 'text' (and optionally a string 'title')")
    else:
        raise XqgError(f"cannot take passage text from a {type(passage).__name__}")
    if passage_text == "title_text" and title:
        return f"{title} {text}"
    return text


def rank_docids(scores: Mapping[str, float]) -> list[str]:
    """Doc ids by score descending, ties broken by doc id ascending (deterministic)."""
    for docid, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, numbers.Real) or math.isnan(score):
            raise XqgError(f"run score for doc {docid!r} is not a number: {score!r}")
    return sorted(scores, key=lambda d: (-scores[d], d))


def ranked_texts_from_run(
    run: Run,
    passages: Mapping[str, str | Passage | Mapping[str, Any]],
    *,
    passage_text: PassageText = "text",
    depth: int | None = None,
) -> dict[str, list[str]]:
    """Turn an xqg ``Run`` into per-query ranked passage strings (what ``ctxs`` would hold)."""
    out: dict[str, list[str]] = {}
    absent: list[str] = []
    for qid, scores in run.items():
        ranked = rank_docids(scores)
        if depth is not None:
            ranked = ranked[:depth]
        texts = []
        for docid in ranked:
            p = passages.get(docid)
            if p is None:
                absent.append(docid)
                continue
            texts.append(passage_string(p, passage_text))
        out[qid] = texts
    if absent:
        uniq = list(dict.fromkeys(absent))
        raise XqgError(f"{len(uniq)} doc id(s) in the run have no passage text: {_few(uniq)}")
    return out


def predictions_from_run(
    run: Run,
    passages: Mapping[str, str | Passage | Mapping[str, Any]],
    qid_lang: Mapping[str, str],
    *,
    passage_text: PassageText = "text",
    depth: int | None = None,
) -> list[RktPrediction]:
    """An xqg ``Run`` as official predictions records (e.g. to run the official script on)."""
    ranked = ranked_texts_from_run(run, passages, passage_text=passage_text, depth=depth)
    no_lang = [q for q in ranked if q not in qid_lang]
    if no_lang:
        raise XqgError(f"{len(no_lang)} run query id(s) have no language: {_few(no_lang)}")
    return [RktPrediction(q, qid_lang[q], tuple(texts)) for q, texts in ranked.items()]


def read_predictions(path: str | Path, *, passage_text: PassageText = "text") -> list[RktPrediction]:
    """Read the official XOR-Retrieve predictions file: a JSON list of ``{"id", "lang", "ctxs"}``.

    ``ctxs`` entries are strings (official); DPR-style dicts with ``"text"`` (and ``"title"``) are
    also accepted and turned into strings with ``passage_text``. Integer ids (the README's example
    shows ``"id": 12345``) are read as strings — the script would compare them to gold's string
    ids and silently count nothing. Duplicate ids are refused (the script would count them twice).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    except OSError as exc:
        raise DataFormatError(path, f"cannot read: {exc.strerror}") from exc
    if not isinstance(data, list):
        raise DataFormatError(path, "expected a JSON list of {'id', 'lang', 'ctxs'} records")
    out: list[RktPrediction] = []
    seen: set[str] = set()
    for i, rec in enumerate(data, start=1):
        if not isinstance(rec, dict):
            raise DataFormatError(path, "record is not an object", line=i)
        for key in ("id", "lang", "ctxs"):
            if key not in rec:
                raise DataFormatError(path, "missing", line=i, field=key)
        qid = rec["id"]
        if isinstance(qid, bool) or not isinstance(qid, str | int):
            raise DataFormatError(path, f"must be a string, got {qid!r}", line=i, field="id")
        qid = str(qid)
        if qid in seen:
            raise DataFormatError(path, f"duplicate id {qid!r}", line=i, field="id")
        seen.add(qid)
        if not isinstance(rec["lang"], str):
            raise DataFormatError(path, f"must be a string, got {rec['lang']!r}", line=i, field="lang")
        ctxs = rec["ctxs"]
        if not isinstance(ctxs, list):
            raise DataFormatError(path, "must be a list of passage texts", line=i, field="ctxs")
        texts = []
        for j, c in enumerate(ctxs):
            if not isinstance(c, str | dict):
                raise DataFormatError(path, f"entry {j} is a {type(c).__name__}", line=i, field="ctxs")
            try:
                texts.append(passage_string(c, passage_text))
            except XqgError as exc:
                raise DataFormatError(path, f"entry {j}: {exc}", line=i, field="ctxs") from exc
        out.append(RktPrediction(qid, rec["lang"], tuple(texts)))
    return out


def write_predictions(path: str | Path, predictions: Iterable[RktPrediction]) -> None:
    """Write predictions in the official format (atomically), ready for ``eval_xor_retrieve.py``."""
    write_json(path, [p.to_json() for p in predictions])


def _coerce_predictions(
    preds: Sequence[RktPrediction | Mapping[str, Any]], passage_text: PassageText = "text"
) -> list[RktPrediction]:
    out: list[RktPrediction] = []
    seen: set[str] = set()
    for i, p in enumerate(preds):
        if not isinstance(p, RktPrediction):
            if not isinstance(p, Mapping) or not {"id", "lang", "ctxs"} <= set(p):
                raise XqgError(f"prediction {i}: expected a record with 'id', 'lang' and 'ctxs'")
            ctxs = p["ctxs"]
            if isinstance(ctxs, str) or not all(isinstance(c, str | Mapping) for c in ctxs):
                raise XqgError(f"prediction {i}: 'ctxs' must be a list of strings")
            texts = tuple(passage_string(c, passage_text) for c in ctxs)
            p = RktPrediction(str(p["id"]), str(p["lang"]), texts)
        if p.id in seen:
            raise XqgError(
                f"prediction {i}: duplicate id {p.id!r} (the official script would count it twice)"
            )
        seen.add(p.id)
        out.append(p)
    return out


def _entries_from_predictions(
    preds: Sequence[RktPrediction], gold: Mapping[str, AnswerQuery]
) -> tuple[list[_Entry], list[str], list[str]]:
    entries: list[_Entry] = []
    unknown: list[str] = []
    mismatches: list[str] = []
    for p in preds:
        if p.id not in gold:
            unknown.append(p.id)
            continue
        if gold[p.id].lang != p.lang:
            mismatches.append(p.id)
        entries.append((p.id, p.lang, p.ctxs))
    predicted = {p.id for p in preds}
    # Gold queries without a prediction go last, in gold order, with the gold language.
    entries.extend((qid, q.lang, None) for qid, q in gold.items() if qid not in predicted)
    return entries, unknown, mismatches


def _entries_from_ranked(
    ranked: RankedTexts, gold: Mapping[str, AnswerQuery]
) -> tuple[list[_Entry], list[str]]:
    entries: list[_Entry] = []
    if callable(ranked):
        for qid, q in gold.items():
            try:
                texts = ranked(qid)
            except KeyError:
                texts = None
            entries.append((qid, q.lang, None if texts is None else list(texts)))
        return entries, []
    for qid, q in gold.items():
        texts = ranked.get(qid)
        if texts is not None and isinstance(texts, str):
            raise XqgError(f"ranked texts for {qid!r} must be a sequence of strings, got one string")
        entries.append((qid, q.lang, texts))
    unknown = [qid for qid in ranked if qid not in gold]
    return entries, unknown


def rkt_per_query(
    ranked_texts: RankedTexts,
    gold: Sequence[AnswerQuery],
    k: int,
    *,
    missing: MissingPolicy = "official",
    tokenizer: Tokenizer | None = None,
) -> dict[str, float | None]:
    """Per-gold-query R@kt at one k: 1.0 hit, 0.0 miss, ``None`` not counted.

    ``ranked_texts`` maps a query id to its ranked passage strings, or is a callable doing the
    same (return ``None`` or raise ``KeyError`` for "no prediction"). Languages come from gold.
    """
    g = _gold_index(gold)
    entries, unknown = _entries_from_ranked(ranked_texts, g)
    tok = tokenizer if isinstance(tokenizer, CachedTokenizer) else CachedTokenizer(tokenizer)
    ks = _check_ks([k])
    return _score(entries, g, ks, missing=missing, tokenize=tok, unknown_ids=unknown).per_query[k]


def evaluate_rkt(
    run_or_ranked: Run | RankedTexts | Sequence[RktPrediction | Mapping[str, Any]],
    gold: Sequence[AnswerQuery],
    ks: Iterable[int] = DEFAULT_KS,
    passages: Mapping[str, str | Passage | Mapping[str, Any]] | None = None,
    *,
    passage_text: PassageText = "text",
    missing: MissingPolicy = "official",
    tokenizer: Tokenizer | None = None,
) -> RktResult:
    """R@kt at every k in ``ks``, tokenising each distinct passage text once.

    ``run_or_ranked`` is one of

    * an xqg ``Run`` (``{qid: {docid: score}}``) together with ``passages`` (doc id → text, or
      :class:`~xqg.types.Passage`); documents are ranked by score, ties by doc id;
    * ranked texts, ``{qid: [text, ...]}`` or a callable ``qid -> texts | None``;
    * official predictions: a list of :class:`RktPrediction` or ``{"id", "lang", "ctxs"}`` dicts
      (see :func:`read_predictions`) — the language then comes from the predictions, as in the
      script.

    ``tokenizer`` defaults to offline ``nltk.word_tokenize``; it is wrapped in a per-call cache.
    """
    ks_t = _check_ks(ks)
    g = _gold_index(gold)
    tok = tokenizer if isinstance(tokenizer, CachedTokenizer) else CachedTokenizer(tokenizer)

    if isinstance(run_or_ranked, Sequence) and not isinstance(run_or_ranked, str):
        if passages is not None:
            raise XqgError("passages are only used with a Run; predictions already carry their texts")
        preds = _coerce_predictions(run_or_ranked, passage_text)
        entries, unknown, mismatches = _entries_from_predictions(preds, g)
        return _score(
            entries,
            g,
            ks_t,
            missing=missing,
            tokenize=tok,
            unknown_ids=unknown,
            lang_mismatches=mismatches,
            passage_text=passage_text,
            lang_order=list(dict.fromkeys(p.lang for p in preds)),
        )

    if isinstance(run_or_ranked, Mapping) and passages is not None:
        bad = [q for q, v in run_or_ranked.items() if not isinstance(v, Mapping)]
        if bad:
            raise XqgError(f"with passages, expected a Run {{qid: {{docid: score}}}}; not so for {_few(bad)}")
        ranked: RankedTexts = ranked_texts_from_run(run_or_ranked, passages, passage_text=passage_text)
    elif isinstance(run_or_ranked, Mapping):
        bad = [q for q, v in run_or_ranked.items() if isinstance(v, Mapping)]
        if bad:
            raise XqgError(
                "this looks like a Run ({qid: {docid: score}}) but no passages were given to look the "
                f"texts up in (queries {_few(bad)})"
            )
        ranked = run_or_ranked
    elif callable(run_or_ranked):
        ranked = run_or_ranked
    else:
        raise XqgError(f"cannot evaluate R@kt on a {type(run_or_ranked).__name__}")
    entries, unknown = _entries_from_ranked(ranked, g)
    return _score(
        entries, g, ks_t, missing=missing, tokenize=tok, unknown_ids=unknown, passage_text=passage_text
    )
