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

Also here, so no other module keeps its own copy: the language lists of the benchmarks xqg builds
(:data:`XQUAD_LANGS`, :data:`XOR_LANGS`, :data:`MKQA_LANGS`), the ISO 639-3 file codes of Tatoeba
and NTREX (:data:`TATOEBA_CODES`, :data:`NTREX_CODES`, derived from langcodes with the two
exceptions those corpora make), and the resource class of each language the analyses group by
(:data:`RESOURCE_LEVELS`: Joshi et al. 2020 classes and 2020 Wikipedia sizes, with sources).
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

#: XOR-TyDi's languages (= the paper's targets).
XOR_LANGS: tuple[str, ...] = PAPER_LANGS

#: XQuAD's 12 languages (Artetxe et al. 2020), sorted.
XQUAD_LANGS: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh")

#: XQuAD's non-English languages: the query languages of cross-lingual XQuAD (English passages).
XQUAD_QUERY_LANGS: tuple[str, ...] = tuple(c for c in XQUAD_LANGS if c != "en")

#: MKQA dev's 12 languages, spelt as MKQA spells them (Simplified Chinese is ``zh_cn``).
MKQA_LANGS: tuple[str, ...] = ("ar", "en", "es", "fi", "ja", "km", "ko", "ms", "ru", "sv", "tr", "zh_cn")


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


# --- corpus file codes ---------------------------------------------------------------------------


def alpha3(code: str) -> str:
    """The ISO 639-3 (terminology) code of ``code``: ``ar`` → ``ara``, ``zh`` → ``zho``."""
    return _langcodes().Language.get(code).to_alpha3()


#: Where Tatoeba's file names differ from ISO 639-3: it files Mandarin under ``cmn``, not ``zho``.
_TATOEBA_OVERRIDES: dict[str, str] = {"zh": "cmn"}
#: Where NTREX's file names differ: its Arabic is Modern Standard Arabic, ``arb``, not ``ara``.
_NTREX_OVERRIDES: dict[str, str] = {"ar": "arb"}

#: ISO 639-1 → Tatoeba (ISO 639-3) file codes for the XQuAD and XOR-TyDi languages.
TATOEBA_CODES: dict[str, str] = {
    c: _TATOEBA_OVERRIDES.get(c) or alpha3(c) for c in dict.fromkeys((*XQUAD_QUERY_LANGS, *XOR_LANGS))
}
#: ISO 639-1 → NTREX-128 file codes of the languages the shared copy has (the XOR ones).
NTREX_CODES: dict[str, str] = {c: _NTREX_OVERRIDES.get(c) or alpha3(c) for c in XOR_LANGS}


# --- resource levels -----------------------------------------------------------------------------
# The grouping of :mod:`xqg.analyse.resource_levels`; its docstring says how the classes were read.

JOSHI_CLASS_NAMES: dict[int, str] = {
    0: "The Left-Behinds",
    1: "The Scraping-Bys",
    2: "The Hopefuls",
    3: "The Rising Stars",
    4: "The Underdogs",
    5: "The Winners",
}

JOSHI_CITATION = (
    "Joshi, Santy, Budhiraja, Bali, Choudhury (2020). The State and Fate of Linguistic Diversity and "
    "Inclusion in the NLP World. ACL 2020, pp. 6282-6293. https://aclanthology.org/2020.acl-main.560"
)
JOSHI_SOURCE = (
    "lang2tax.txt (https://microsoft.github.io/linguisticdiversity/assets/lang2tax.txt), read from the "
    "copies hamid-amir/data_lang2vec data/lang2tax.txt.codes @ 7feb3a81 and a FLORES tier list by "
    "ISO 639-3 code; both agree for every language here"
)
WIKI_SOURCE = (
    "mayhewsw/multilingual-data-stats wiki/wiki.csv @ 0adee01f: article counts from meta.wikimedia.org "
    "List of Wikipedias (accessed 2020-08); tokens = whitespace tokens of the 2020-10-01 dump after "
    "XLM's get-data-wiki.sh preprocessing"
)


@dataclass(frozen=True)
class LanguageInfo:
    """One language: its Joshi class and Wikipedia size (2020), with any judgement call noted."""

    code: str
    name: str
    lang2tax_name: str
    joshi_class: int
    wiki_articles: int
    wiki_tokens: int
    note: str = ""


#: code, name, ``lang2tax`` name, Joshi class, Wikipedia articles, Wikipedia tokens (2020).
_RESOURCE_ROWS: tuple[tuple[str, str, str, int, int, int], ...] = (
    ("en", "English", "english", 5, 6_171_405, 2_622_505_044),
    ("ar", "Arabic", "arabic", 5, 1_069_379, 169_126_089),
    ("de", "German", "german", 5, 2_488_262, 946_132_694),
    ("es", "Spanish", "spanish", 5, 1_631_829, 688_970_215),
    ("ja", "Japanese", "japanese", 5, 1_232_093, 712_594_813),
    ("zh", "Chinese (Mandarin)", "mandarin", 5, 1_151_113, 269_492_468),
    ("fi", "Finnish", "finnish", 4, 494_487, 98_712_322),
    ("hi", "Hindi", "hindi", 4, 142_300, 43_915_945),
    ("ko", "Korean", "korean", 4, 522_723, 81_063_675),
    ("ru", "Russian", "russian", 4, 1_666_830, 575_335_225),
    ("sv", "Swedish", "swedish", 4, 3_652_646, 360_709_245),
    ("tr", "Turkish", "turkish", 4, 367_896, 75_354_794),
    ("vi", "Vietnamese", "vietnamese", 4, 1_256_994, 180_247_477),
    ("bn", "Bengali", "bengali", 3, 95_617, 42_126_320),
    ("el", "Greek", "greek", 3, 182_546, 78_796_996),
    ("ms", "Malay", "malay", 3, 343_638, 38_876_137),
    ("ro", "Romanian", "romanian", 3, 412_469, 83_624_589),
    ("th", "Thai", "thai", 3, 139_917, 44_215_268),
    ("km", "Khmer", "khmer", 1, 8_311, 9_889_328),
    ("te", "Telugu", "telugu", 1, 69_706, 40_619_645),
)  # fmt: skip
#: The judgement calls behind a row, printed with the analysis.
_RESOURCE_NOTES: dict[str, str] = {
    "ar": (
        "lang2tax lists the macrolanguage 'arabic' (5) and Egyptian Arabic separately (3); the "
        "benchmarks are Modern Standard Arabic, so class 5"
    ),
    "zh": (
        "lang2tax has 'mandarin' (5), no 'chinese'; XQuAD zh and MKQA zh_cn are Simplified "
        "Mandarin, so class 5"
    ),
    "sv": "article count inflated by bot stubs (Lsjbot); tokens are the better size measure",
    "vi": "article count inflated by bot stubs; tokens are the better size measure",
    "ms": "lang2tax 'malay' (3); the copies code it zlm / zsm (Standard Malay), same class",
}
RESOURCE_LEVELS: dict[str, LanguageInfo] = {
    row[0]: LanguageInfo(*row, note=_RESOURCE_NOTES.get(row[0], "")) for row in _RESOURCE_ROWS
}

RESOURCE_ALIASES: dict[str, str] = {"zh_cn": "zh", "zh-cn": "zh", "zh-hans": "zh"}
"""Benchmark spellings of the same language (MKQA writes Simplified Chinese as ``zh_cn``)."""


def resource_code(lang: str) -> str:
    """The code :data:`RESOURCE_LEVELS` uses for ``lang`` (stripped, lower-cased, aliases resolved)."""
    code = lang.strip().lower()
    code = RESOURCE_ALIASES.get(code, code)
    if code not in RESOURCE_LEVELS:
        raise XqgError(
            f"language '{lang}' has no resource level in xqg.languages (known: "
            f"{' '.join(sorted(RESOURCE_LEVELS))}); add it with its Joshi et al. 2020 class and source"
        )
    return code


def joshi_class(lang: str) -> int:
    """Joshi et al. 2020 class (0-5) of ``lang``."""
    return RESOURCE_LEVELS[resource_code(lang)].joshi_class
