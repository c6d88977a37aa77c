"""Small record types shared by every stage.

They live in one module so stages exchange plain, typed values without importing each
other's internals (the data layer produces them, encode/search/evaluate consume them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Qrels = dict[str, dict[str, int]]
"""query id → {doc id → graded relevance}; relevance ≤ 0 means not relevant."""

Run = dict[str, dict[str, float]]
"""query id → {doc id → score}; higher is better."""


@dataclass(frozen=True, slots=True)
class Passage:
    """One corpus entry. ``title`` is kept apart so encoders can choose how to join it."""

    id: str
    text: str
    title: str = ""

    def full_text(self, sep: str = " ") -> str:
        """Title and text joined the way DPR/Tevatron encode passages (title first)."""
        return f"{self.title}{sep}{self.text}" if self.title else self.text


@dataclass(frozen=True, slots=True)
class Query:
    """One query. ``lang`` is an ISO 639-1 code (``None`` when the source does not say)."""

    id: str
    text: str
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerQuery:
    """An XOR-TyDi-style query judged by answer strings rather than qrels."""

    id: str
    text: str
    lang: str
    answers: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class GeneratedQuery:
    """One generated query: the ``sample``-th query in ``lang`` for passage ``passage_id``."""

    passage_id: str
    lang: str
    sample: int
    text: str
