"""LoCoMo as an English conversation-memory retrieval benchmark: question → evidence turn.

Source: ``locomo10.json`` (snap-research/LoCoMo), a JSON array of 10 conversations. Each has
``sample_id`` (``"conv-26"``), ``conversation`` (``speaker_a``, ``speaker_b``, and for each session
``session_<n>`` = a list of turns plus ``session_<n>_date_time``) and ``qa`` (questions with
``evidence`` = the turn ids that support the answer, and a ``category`` 1–5).

Corpus: every turn of every conversation (5,882), id ``"<sample_id>:<dia_id>"`` (e.g.
``"conv-26:D1:3"`` = conversation 26, session 1, turn 3), text ``"<speaker>: <text>"``. A turn
that shared a photo carries the BLIP caption the LoCoMo authors attached (``blip_caption``,
1,226 turns); it is appended as ``" [shares <caption>]"`` (``captions=False`` leaves it out),
because the photo is often what a question asks about and the caption is all a text retriever
can see of it. ``img_url``/``query`` (the image search query) are not used. All 10 conversations
share one corpus: questions name their speakers, so retrieving another conversation's turn is a
real error.

Queries: the 1,986 questions, id ``"<sample_id>:q<index>"`` (0-based position in ``qa``), lang
``"en"``; :attr:`LoCoMoBenchmark.query_category` keeps the category (5 = adversarial, i.e.
unanswerable from the conversation, but still with evidence turns). Qrels: each question's
evidence turns, relevance 1 (several per question is common).

Evidence ids are not all well-formed in the release (commit 3eb6f2c5). With ``repair=True`` (the
default) an evidence string is split on ``;``/``,``/whitespace (``"D8:6; D9:17"`` holds two ids)
and each part is canonicalised (``"D:11:26"`` → ``D11:26``, ``"D30:05"`` → ``D30:5``); parts that
are still malformed (``"D"``) or name no turn (``"D10:19"`` in a conversation whose session 10
has 16 turns) are dropped. Every change and every drop is recorded in
:attr:`LoCoMoBenchmark.issues` and counted; a question left with no valid evidence (including
the 4 with an empty ``evidence`` list) is skipped and counted. Release counts with repair: 9
problem evidence strings (4 split, 2 canonicalised, 1 malformed, 2 missing turns), 4 questions
skipped, 1,982 kept; without repair 9 questions are skipped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xqg.data._jsonl import PathLike, source_file
from xqg.errors import DataFormatError, XqgError
from xqg.paths import data_root
from xqg.types import Passage, Qrels, Query

LOCOMO_FILE = "locomo10.json"
_SESSION_KEY = re.compile(r"^session_(\d+)$")
_EVIDENCE = re.compile(r"^D:?(\d+):(\d+)$")
_SPLIT = re.compile(r"[;,\s]+")


@dataclass(frozen=True)
class EvidenceIssue:
    """A problem evidence string: what it said, what became of it (``kind``) and why."""

    query_id: str
    raw: str
    kind: str  # "split" | "canonicalised" | "malformed" | "missing"
    resolved: tuple[str, ...]
    detail: str


@dataclass
class LoCoMoBenchmark:
    """LoCoMo in memory: one corpus of all turns, questions, evidence qrels and what was repaired."""

    corpus: list[Passage]
    queries: list[Query]
    qrels: Qrels
    conversations: list[str]
    turn_conversation: dict[str, str]
    query_conversation: dict[str, str]
    query_category: dict[str, int]
    issues: list[EvidenceIssue] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Question id → why it was skipped (no valid evidence)."""
    counts: dict[str, int] = field(default_factory=dict)

    def subset(self, query_ids: list[str]) -> LoCoMoBenchmark:
        """The same corpus with only ``query_ids`` as questions (in the order given)."""
        by_id = {q.id: q for q in self.queries}
        missing = [q for q in query_ids if q not in by_id]
        if missing:
            raise XqgError(f"LoCoMo has no question(s) {missing[:5]}")
        return LoCoMoBenchmark(
            corpus=self.corpus,
            queries=[by_id[q] for q in query_ids],
            qrels={q: self.qrels[q] for q in query_ids},
            conversations=self.conversations,
            turn_conversation=self.turn_conversation,
            query_conversation={q: self.query_conversation[q] for q in query_ids},
            query_category={q: self.query_category[q] for q in query_ids},
            issues=self.issues,
            skipped=self.skipped,
            counts=self.counts,
        )


def turn_id(sample_id: str, dia_id: str) -> str:
    return f"{sample_id}:{dia_id}"


def question_id(sample_id: str, index: int) -> str:
    return f"{sample_id}:q{index}"


def _str_field(path: Path, obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(path, "missing, empty or not a string", field=f"{where}.{key}")
    return value


def _resolve_evidence(
    raw: str, turns: set[str], *, repair: bool
) -> tuple[list[str], tuple[str, str] | None, list[str]]:
    """Valid dia ids in ``raw``; (kind, detail) if it needed repair; parts dropped with reasons."""
    if raw in turns:
        return [raw], None, []
    if not repair:
        what = "malformed" if not _EVIDENCE.match(raw) else "missing"
        return [], None, [f"{what}: {raw!r}"]
    parts = [p for p in _SPLIT.split(raw.strip()) if p]
    valid: list[str] = []
    dropped: list[str] = []
    canon = False
    for part in parts:
        m = _EVIDENCE.match(part)
        if not m:
            dropped.append(f"malformed: {part!r}")
            continue
        cid = f"D{int(m.group(1))}:{int(m.group(2))}"
        if cid != part:
            canon = True
        if cid in turns:
            valid.append(cid)
        else:
            dropped.append(f"missing: no turn {cid}")
    repaired = None
    if len(parts) > 1:
        repaired = ("split", f"{len(parts)} ids in one string")
    elif canon and valid:
        repaired = ("canonicalised", f"{raw!r} → {valid[0]}")
    return valid, repaired, dropped


def load_locomo(
    path: PathLike | None = None, *, captions: bool = True, repair: bool = True
) -> LoCoMoBenchmark:
    """Load ``locomo10.json`` (default ``data_root()/locomo/locomo10.json``); see the module doc."""
    file = Path(path) if path is not None else source_file(data_root() / "locomo", LOCOMO_FILE, what="LoCoMo")
    if not file.is_file():
        raise XqgError(f"LoCoMo file not found at {file}")
    try:
        with open(file, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFormatError(file, f"invalid JSON ({exc})") from None
    if not isinstance(doc, list):
        raise DataFormatError(file, "expected a JSON array of conversations")

    corpus: list[Passage] = []
    turn_conv: dict[str, str] = {}
    queries: list[Query] = []
    qrels: Qrels = {}
    query_conv: dict[str, str] = {}
    category: dict[str, int] = {}
    issues: list[EvidenceIssue] = []
    skipped: dict[str, str] = {}
    conversations: list[str] = []
    n_sessions = n_captions = n_evidence = 0

    for ci, conv in enumerate(doc):
        where = f"[{ci}]"
        sample_id = _str_field(file, conv, "sample_id", where)
        if sample_id in conversations:
            raise DataFormatError(file, f"duplicate conversation {sample_id!r}", field=f"{where}.sample_id")
        conversations.append(sample_id)
        dialog = conv.get("conversation")
        if not isinstance(dialog, dict):
            raise DataFormatError(file, "missing or not an object", field=f"{where}.conversation")
        sessions = sorted(
            ((int(m.group(1)), k) for k in dialog if (m := _SESSION_KEY.match(k))), key=lambda x: x[0]
        )
        turns: set[str] = set()
        for _, key in sessions:
            session = dialog[key]
            if not isinstance(session, list):
                raise DataFormatError(
                    file, "a session must be a list of turns", field=f"{where}.conversation.{key}"
                )
            n_sessions += 1
            for ti, turn in enumerate(session):
                tw = f"{where}.conversation.{key}[{ti}]"
                dia = _str_field(file, turn, "dia_id", tw)
                speaker = _str_field(file, turn, "speaker", tw)
                text = turn.get("text")
                if not isinstance(text, str):
                    raise DataFormatError(file, "missing or not a string", field=f"{tw}.text")
                if dia in turns:
                    raise DataFormatError(
                        file, f"duplicate turn id {dia!r} in {sample_id}", field=f"{tw}.dia_id"
                    )
                turns.add(dia)
                body = f"{speaker}: {text.strip()}"
                caption = turn.get("blip_caption")
                if isinstance(caption, str) and caption.strip():
                    n_captions += 1
                    if captions:
                        body += f" [shares {caption.strip()}]"
                tid = turn_id(sample_id, dia)
                corpus.append(Passage(id=tid, text=body))
                turn_conv[tid] = sample_id

        qa = conv.get("qa")
        if not isinstance(qa, list):
            raise DataFormatError(file, "missing or not a list", field=f"{where}.qa")
        for qi, item in enumerate(qa):
            qw = f"{where}.qa[{qi}]"
            question = _str_field(file, item, "question", qw)
            evidence = item.get("evidence")
            if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
                raise DataFormatError(file, "must be a list of strings", field=f"{qw}.evidence")
            cat = item.get("category")
            if not isinstance(cat, int) or isinstance(cat, bool):
                raise DataFormatError(file, "missing or not an integer", field=f"{qw}.category")
            qid = question_id(sample_id, qi)
            rel: dict[str, int] = {}
            for raw in evidence:
                n_evidence += 1
                valid, repaired, dropped = _resolve_evidence(raw, turns, repair=repair)
                for dia in valid:
                    rel[turn_id(sample_id, dia)] = 1
                if repaired is not None:
                    issues.append(EvidenceIssue(qid, raw, repaired[0], tuple(valid), repaired[1]))
                for reason in dropped:
                    kind = reason.split(":", 1)[0]
                    issues.append(EvidenceIssue(qid, raw, kind, (), reason))
            if not rel:
                skipped[qid] = "empty evidence list" if not evidence else "no valid evidence id"
                continue
            queries.append(Query(id=qid, text=question.strip(), lang="en"))
            qrels[qid] = rel
            query_conv[qid] = sample_id
            category[qid] = cat

    kinds = ("split", "canonicalised", "malformed", "missing")
    counts = {
        "conversations": len(conversations),
        "sessions": n_sessions,
        "turns": len(corpus),
        "turns_with_caption": n_captions,
        "questions": len(queries) + len(skipped),
        "questions_kept": len(queries),
        "questions_skipped": len(skipped),
        "questions_skipped_empty_evidence": sum(1 for v in skipped.values() if v == "empty evidence list"),
        "evidence_strings": n_evidence,
        "evidence_problem_strings": len({(i.query_id, i.raw) for i in issues}),
        "qrels": sum(len(v) for v in qrels.values()),
    }
    counts.update({f"evidence_{k}": sum(1 for i in issues if i.kind == k) for k in kinds})
    return LoCoMoBenchmark(
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        conversations=conversations,
        turn_conversation=turn_conv,
        query_conversation=query_conv,
        query_category=category,
        issues=issues,
        skipped=skipped,
        counts=counts,
    )


__all__ = ["LOCOMO_FILE", "EvidenceIssue", "LoCoMoBenchmark", "load_locomo", "question_id", "turn_id"]
