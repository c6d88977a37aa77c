"""Language facts in one place: what a language code means, its English name and its script.

Any ISO 639-1 (``sw``) or ISO 639-3 (``swa``) code or BCP-47 tag (``zh-Hans``, ``pt-BR``) is
accepted. ``langcodes`` (CLDR data, via ``language-data``) standardises it — ``swa`` → ``sw``,
``iw`` → ``he`` — and gives the English name and the likely script; xqg keeps no hand table of
names except :data:`PROMPT_NAMES`, where a prompt needs another spelling than CLDR's.

A code CLDR does not know fails with :class:`~xqg.errors.XqgError` and close matches (by code and
by name: ``swahili`` → ``sw``), before any model loads and in well under a second.

:func:`xqg.generate.langcheck.check_level` says how far xqg can tell that a text is in a language:

* ``full`` — the rules of that module (script, foreign letters, and for the Latin languages it
  distinguishes, interrogatives, marker letters and langid);
* ``script`` — only that the text is in the language's script (Swahili, Yoruba and Hausa are all
  Latin, Urdu is Arabic script): a copied English passage fails, a question in a sister language
  of the same script passes. Latin-script languages langid knows are also checked not to be English.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache

from xqg.errors import XqgError

#: Names the prompts use where CLDR's English name differs. The paper's mT5 generator was trained
#: with "Bengali" (its ``lang2mT5``), and the shipped Gemma adapter with the same name; CLDR says
#: "Bangla". Changing a prompt name changes what a trained generator sees, so these stay fixed.
PROMPT_NAMES: dict[str, str] = {"bn": "Bengali", "zh": "Chinese"}

#: The paper's target languages (XOR-TyDi), in its order.
PAPER_LANGS: tuple[str, ...] = ("ar", "bn", "fi", "ja", "ko", "ru", "te")


@dataclass(frozen=True, slots=True)
class Language:
    """A standardised language tag with the facts xqg uses about it."""

    code: str  # standardised BCP-47 tag: "sw", "zh-Hans", "pt-BR"
    name: str  # English name used in prompts ("Swahili", "Bengali")
    script: str  # ISO 15924 code of its usual script ("Latn", "Arab", "Hans", "Jpan")


def _langcodes():  # noqa: ANN202 - the module
    import langcodes

    return langcodes


@cache
def _known_names() -> dict[str, str]:
    """English name (lower case) → code, for the suggestions of an unknown code."""
    from language_data.names import code_to_names

    out: dict[str, str] = {}
    for code in _common_codes():
        english = code_to_names(code).get("en")
        if english:
            out.setdefault(english.lower(), code)
    return out


@cache
def _common_codes() -> tuple[str, ...]:
    """ISO 639-1 codes (two letters) CLDR knows: the pool suggestions are drawn from."""
    lc = _langcodes()
    letters = "abcdefghijklmnopqrstuvwxyz"
    codes = []
    for a in letters:
        for b in letters:
            c = a + b
            if lc.tag_is_valid(c) and lc.Language.get(c).display_name() != f"Unknown language [{c}]":
                codes.append(c)
    return tuple(codes)


def suggest(value: str, n: int = 3) -> list[str]:
    """Close matches for a mistyped code or a language name: ``['sw (Swahili)', …]``."""
    v = value.strip().lower()
    names = _known_names()
    out: list[str] = []
    if v in names:
        out.append(names[v])
    out += difflib.get_close_matches(v, list(_common_codes()), n=n, cutoff=0.5)
    out += [names[m] for m in difflib.get_close_matches(v, list(names), n=n, cutoff=0.75)]
    seen: list[str] = []
    for c in out:
        if c not in seen:
            seen.append(c)
    return [f"{c} ({get(c).name})" for c in seen[:n]]


@cache
def get(code: str) -> Language:
    """The :class:`Language` of any ISO 639-1/639-3 code or BCP-47 tag; unknown ones fail with suggestions."""
    lc = _langcodes()
    raw = code.strip()
    if not raw:
        raise XqgError("empty language code")
    try:
        if not lc.tag_is_valid(raw):
            raise ValueError(raw)
        tag = lc.standardize_tag(raw)
        lang = lc.Language.get(tag)
        name = lang.display_name("en")
    except ValueError:
        name = ""
    if not name or name.startswith("Unknown language"):
        hints = suggest(raw)
        hint = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise XqgError(f"unknown language code '{raw}' (expected ISO 639-1/639-3 or BCP-47){hint}")
    base = lang.language or tag
    if base in PROMPT_NAMES and tag == base:
        name = PROMPT_NAMES[base]
    script = lang.script or lang.maximize().script or "Zyyy"
    return Language(code=tag, name=name, script=script)


def normalize(code: str) -> str:
    """The standardised tag of ``code`` (``swa`` → ``sw``); raises on unknown codes."""
    return get(code).code


def parse_langs(codes: list[str] | tuple[str, ...] | str) -> list[str]:
    """Standardised, de-duplicated tags from a list or a comma-separated string (order kept)."""
    items = codes.split(",") if isinstance(codes, str) else list(codes)
    out: list[str] = []
    for c in items:
        if c.strip():
            tag = normalize(c)
            if tag not in out:
                out.append(tag)
    if not out:
        raise XqgError("no language given")
    return out


def name(code: str) -> str:
    """The English name prompts use for ``code``."""
    return get(code).name
