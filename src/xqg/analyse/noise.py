"""A seeded, language-aware model of misspelt queries (typos a native typist makes).

Why a model of its own: generic "random character" noise (uniform substitutions from the whole
alphabet) overstates how far real typos move a word, and it cannot express the errors that are
specific to a script — dropping a diacritic that the typist's keyboard makes awkward, omitting an
Arabic vowel sign, confusing two Greek letters that sound the same. Retrieval robustness measured
with unrealistic noise says little about users, so each edit here is one a person plausibly makes.

(Over 600 lines because about 250 of them are data — the keyboard layouts and each language's
confusion rules — kept beside the code that reads them, so one language's noise model is read in
one place. It is a library of the misspellings analysis, which has the compute/render split.)

**Rate.** ``rate`` is the probability that one *eligible* character — a letter or a combining
mark (Unicode category ``L*`` or ``M*``), never a space, digit or punctuation — is the anchor of an
edit. Every eligible position draws a uniform number and is selected when it is below ``rate``;
each selected position then receives exactly one edit of a type applicable to it, chosen with the
configured weights. Edits never overlap (an edit that consumes the next character — a swap, a
two-letter confusion — needs that character unselected; otherwise another type is chosen), so the
realised edit count is Binomial(eligible, rate), and :func:`noise_report` measures it. The only way
a selected character stays unedited is when *no* type with positive weight applies to it (e.g. all
weight on ``diacritic`` and the letter has none); the report counts that too.

**Edit types** (:data:`EDIT_TYPES`): ``drop`` (omit the character), ``swap`` (transpose it with
the next letter), ``insert`` (a keyboard neighbour typed next to it — before or after, fat
finger), ``substitute`` (a keyboard neighbour instead of it), ``diacritic`` (its combining marks
dropped: NFD, remove the marks the language's typists commonly omit, recompose), ``vowel_sign``
(an optional mark omitted: Arabic harakat, Devanagari anusvara/chandrabindu/virama, Thai tone marks),
``confusable`` (a letter or letter group native writers mix up, e.g. Russian ``ш↔щ``, Arabic
``ة↔ه``, Greek ``ο↔ω``, English ``ie↔ei`` and doubled/undoubled consonants).

**Keyboards** are data tables (:data:`LAYOUTS`), each with a comment naming its standard. Two keys
are neighbours when they touch on a physical keyboard: the same row and one key apart, or adjacent
rows with centres less than one key width apart (rows are staggered as on ANSI/ISO keyboards), so
``f`` neighbours ``d g r t c v``. The relation is symmetric by construction. Only letters and
marks are used as neighbours — a typo that puts a digit or a bracket into a word is rarer and
would leave the query's script. A letter typed through a dead key or an IME (``é``, ``ế``, ``ά``)
is looked up by its base letter, so a neighbour slip also loses the accent. Latin letters inside a
non-Latin query (names, acronyms) use US QWERTY: bilingual typists switch to it for them.

**Chinese** is typed through pinyin IMEs: a keystroke slip changes the pinyin syllable and the
IME then offers *other characters*, so character-level keyboard neighbours do not exist. zh uses
``drop`` and ``swap`` (a skipped or reordered candidate) and ``confusable`` for a short list of the
homophones that IME users most often pick wrongly (的/地/得, 在/再, 他/她 …). Keyboard types do
not apply to Han characters (they still do to Latin letters inside a zh query).

**Seeding.** :func:`query_rng` derives a query's generator from ``(seed, query id)`` with SHA-256,
so a query's noise does not depend on which other queries are corrupted, or in what order. The
rate is *not* part of the seed: the same uniforms are reused at every rate, so the edits at rate
0.05 are (almost always) a subset of those at 0.1 — curves over rates then vary smoothly instead
of re-drawing all noise at each point (common random numbers).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from xqg.errors import XqgError
from xqg.types import Query

EDIT_TYPES: tuple[str, ...] = (
    "drop",
    "swap",
    "insert",
    "substitute",
    "diacritic",
    "vowel_sign",
    "confusable",
)
DEFAULT_WEIGHTS: dict[str, float] = dict.fromkeys(EDIT_TYPES, 1.0)
"""Equal weights, as the typo-robustness literature does for its edit types (e.g. Zhuang & Zuccon,
"Dealing with Typos for BERT-based Passage Retrieval and Ranking", EMNLP 2021); normalised over
the types that apply to each selected character."""

# ----------------------------------------------------------------------------------------------
# Keyboard layouts. Each layer is four rows: number row, top letter row, home row, bottom row;
# character i of a row string is the i-th key from the left. A space marks a key whose output is
# not one character (e.g. Arabic لا) — it is kept for the geometry and never used as a neighbour.
# Row x offsets (left edge of the first key, in key widths): the number row starts with the key
# left of "1"; Tab is 1.5 wide, Caps Lock 1.75, left Shift 2.25 (ANSI) or 1.25 followed by the
# extra ISO key (so an ISO bottom row string starts with that key).
ANSI_STARTS: tuple[float, ...] = (0.0, 1.5, 1.75, 2.25)
ISO_STARTS: tuple[float, ...] = (0.0, 1.5, 1.75, 1.25)


@dataclass(frozen=True)
class KeyboardLayout:
    """A keyboard as rows of keys; :meth:`neighbours` derives who touches whom."""

    name: str
    source: str
    starts: tuple[float, ...]
    layers: tuple[tuple[str, ...], ...]

    @property
    def neighbours(self) -> dict[str, frozenset[str]]:
        return _layout_neighbours(self)


LAYOUTS: dict[str, KeyboardLayout] = {
    # US English QWERTY, ANSI (the Windows "US" layout, KBDUS). Also used by Vietnamese typists,
    # who enter diacritics through Telex/VNI input methods on top of it.
    "us": KeyboardLayout(
        "us", "US QWERTY (ANSI INCITS 154; Windows KBDUS)", ANSI_STARTS,
        (("`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./"),),
    ),
    # German QWERTZ T1 (DIN 2137-1:2012; Windows KBDGR), ISO: ß on the number row, ü ö ä right.
    "de": KeyboardLayout(
        "de", "German QWERTZ T1 (DIN 2137-1; Windows KBDGR), ISO", ISO_STARTS,
        (("^1234567890ß´", "qwertzuiopü+", "asdfghjklöä#", "<yxcvbnm,.-"),),
    ),
    # Spanish (Spain) QWERTY (Windows KBDSP), ISO: ñ right of l; accents are dead keys.
    "es": KeyboardLayout(
        "es", "Spanish (Spain) QWERTY (Windows KBDSP), ISO", ISO_STARTS,
        (("º1234567890'¡", "qwertyuiop`+", "asdfghjklñ´ç", "<zxcvbnm,.-"),),
    ),
    # Romanian (Standard) QWERTY (SR 13392:2004; Windows KBDROST): ă î on [ ], ș ț on ; ',
    # â on the backslash key, placed here at its ANSI position (end of the top row).
    "ro": KeyboardLayout(
        "ro", "Romanian Standard (SR 13392:2004; Windows KBDROST), ANSI", ANSI_STARTS,
        (("„1234567890-=", "qwertyuiopăîâ", "asdfghjklșț", "zxcvbnm,./"),),
    ),
    # Turkish Q (Windows KBDTUQ), ISO: ı on the US i key, i on the US quote key, ğ ü ş ö ç.
    "tr": KeyboardLayout(
        "tr", "Turkish Q (Windows KBDTUQ), ISO", ISO_STARTS,
        (('"1234567890*-', "qwertyuıopğü", "asdfghjklşi,", "<zxcvbnmöç."),),
    ),
    # Russian ЙЦУКЕН (GOST 6431-90; Windows KBDRU), ANSI: ё left of 1.
    "ru": KeyboardLayout(
        "ru", "Russian JCUKEN (GOST 6431-90; Windows KBDRU), ANSI", ANSI_STARTS,
        (("ё1234567890-=", "йцукенгшщзхъ\\", "фывапролджэ", "ячсмитьбю."),),
    ),
    # Greek (Windows KBDHE) over QWERTY: ς on w, θ on u, ξ on j, ψ on c, ω on v; ΄ (tonos) is a
    # dead key on ; and is not a letter.
    "el": KeyboardLayout(
        "el", "Greek (Windows KBDHE), ANSI", ANSI_STARTS,
        (("`1234567890-=", ";ςερτυθιοπ[]", "ασδφγηξκλ΄'", "ζχψωβνμ,./"),),
    ),
    # Arabic 101 (Windows KBDA1), the standard Arabic keyboard; the لا key (b) types two
    # characters and is a space here.
    "ar": KeyboardLayout(
        "ar", "Arabic 101 (Windows KBDA1), ANSI", ANSI_STARTS,
        (("ذ1234567890-=", "ضصثقفغعهخحجد\\", "شسيبلاتنمكط", "ئءؤر ىةوزظ"),),
    ),
    # Hindi InScript (Devanagari; IS 13194:1991, Windows KBDINHIN): unshifted and shifted layers.
    # Shifted number-row keys that type conjuncts (्र र् ज्ञ त्र क्ष श्र) are spaces; य़ (shift+/) is
    # written as an escape because NFC-normalising editors would split it into य + ़.
    "hi": KeyboardLayout(
        "hi", "Devanagari InScript (IS 13194:1991; Windows KBDINHIN), ANSI", ANSI_STARTS,
        (
            ("ॊ1234567890-ृ", "ौैाीूबहगदजड़", "ोे्िुपरकतचट", "ॆंमनवलस,.य"),
            ("ऒऍॅ      ()ःऋ", "औऐआईऊभङघधझढञ", "ओएअइउफऱखथछठ", "ऎँणऩऴळशष।\u095f"),
        ),
    ),
    # Thai Kedmanee (TIS 820-2538; Windows KBDTH0): unshifted and shifted layers; Thai letters
    # sit on the number row as well.
    "th": KeyboardLayout(
        "th", "Thai Kedmanee (TIS 820-2538; Windows KBDTH0), ANSI", ANSI_STARTS,
        (
            ("_ๅ/-ภถุึคตจขช", "ๆไำพะัีรนยบลฃ", "ฟหกดเ้่าสวง", "ผปแอิืทมใฝ"),
            ("%+๑๒๓๔ู฿๕๖๗๘๙", '๐"ฎฑธํ๊ณฯญฐ,ฅ', "ฤฆฏโฌ็๋ษศซ.", "()ฉฮฺ์?ฒฬฦ"),
        ),
    ),
}  # fmt: skip


def is_eligible(ch: str) -> bool:
    """A letter or combining mark of any script: the characters a typist can mistype in a word."""
    return unicodedata.category(ch)[0] in "LM"


@cache
def _layout_neighbours(layout: KeyboardLayout) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for layer in layout.layers:
        if len(layer) != len(layout.starts):
            raise XqgError(f"layout {layout.name}: {len(layer)} rows, expected {len(layout.starts)}")
        keys = [
            (r, layout.starts[r] + i + 0.5, ch)
            for r, row in enumerate(layer)
            for i, ch in enumerate(row)
            if is_eligible(ch)
        ]
        for r1, x1, c1 in keys:
            for r2, x2, c2 in keys:
                if c1 == c2:
                    continue
                same_row = r1 == r2 and abs(x1 - x2) == 1.0
                next_row = abs(r1 - r2) == 1 and abs(x1 - x2) < 1.0
                if same_row or next_row:
                    out.setdefault(c1, set()).add(c2)
    return {k: frozenset(v) for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# Per-language noise: which keyboard, which marks are commonly omitted, which letters confused.

LATIN_MARKS = frozenset(chr(c) for c in range(0x0300, 0x0370))
"""Combining Diacritical Marks block: what NFD splits off á ä ñ ș ş ğ ế ơ … (all Latin languages)."""


@dataclass(frozen=True)
class Rule:
    """``src`` written as ``dst``; ``final``: only at the end of a word (Arabic ه/ة, ي/ى)."""

    src: str
    dst: str
    final: bool = False


def _both(*pairs: tuple[str, str]) -> tuple[Rule, ...]:
    return tuple(r for a, b in pairs for r in (Rule(a, b), Rule(b, a)))


def _one_way(*pairs: tuple[str, str]) -> tuple[Rule, ...]:
    return tuple(Rule(a, b) for a, b in pairs)


def _vi_hoi_nga() -> tuple[Rule, ...]:
    """Vietnamese hỏi (◌̉) and ngã (◌̃) tones: merged in southern and central speech, so writers
    swap them; generated for every vowel (with its other marks) rather than typed out by hand."""
    rules = []
    for base in "aăâeêioôơuưy":
        hoi = unicodedata.normalize("NFC", base + "\u0309")
        nga = unicodedata.normalize("NFC", base + "\u0303")
        rules += [Rule(hoi, nga), Rule(nga, hoi)]
    return tuple(rules)


@dataclass(frozen=True)
class LanguageNoise:
    """How one language's typists misspell: keyboard, omitted marks, confused letters."""

    lang: str
    layout: str | None
    diacritic_marks: frozenset[str] = frozenset()
    vowel_signs: frozenset[str] = frozenset()
    confusables: tuple[Rule, ...] = ()
    double_letters: bool = False
    note: str = ""


LANGUAGES: dict[str, LanguageNoise] = {
    "en": LanguageNoise(
        "en", "us", LATIN_MARKS, confusables=_both(("ie", "ei")), double_letters=True,
        note="US QWERTY; ie↔ei and doubled/undoubled consonants (accomodate, occured); accents of "
        "loanwords (café) dropped",
    ),
    "de": LanguageNoise(
        "de", "de", LATIN_MARKS,
        confusables=_both(("ie", "ei"))
        + _one_way(("ß", "ss"), ("ss", "ß"), ("ä", "ae"), ("ö", "oe"), ("ü", "ue")),
        note="QWERTZ; umlauts dropped (ä→a) or transliterated (ä→ae), ß↔ss, ie↔ei",
    ),
    "es": LanguageNoise(
        "es", "es", LATIN_MARKS,
        confusables=_both(("b", "v"), ("ll", "y"), ("ge", "je"), ("gi", "ji"))
        + _one_way(("ce", "se"), ("ci", "si"), ("z", "s"), ("h", "")),
        note="Spanish QWERTY; accents dropped (é→e, ñ→n); b↔v, ll↔y, seseo (ce→se, z→s), silent h "
        "omitted, g↔j before e/i",
    ),
    "ro": LanguageNoise(
        "ro", "ro", LATIN_MARKS, confusables=_both(("î", "â")) + _one_way(("ii", "i")),
        note="Romanian Standard; diacritics dropped (ș→s, ă→a — very common, many type on US "
        "QWERTY); î↔â (spelling reform), ii→i",
    ),
    "vi": LanguageNoise(
        "vi", "us", LATIN_MARKS,
        confusables=_vi_hoi_nga()
        + _both(("s", "x"), ("ch", "tr"), ("d", "gi"), ("i", "y"))
        + _one_way(("đ", "d")),
        note="US QWERTY + Telex/VNI; all marks of a letter dropped (ế→e: unaccented Vietnamese is "
        "common); hỏi↔ngã, s↔x, ch↔tr, d↔gi, i↔y, đ→d",
    ),
    "tr": LanguageNoise(
        "tr", "tr", LATIN_MARKS, confusables=_both(("ı", "i")),
        note="Turkish Q; ş ğ ü ö ç dropped to s g u o c (NFD), dotless ı↔i",
    ),
    "ru": LanguageNoise(
        "ru", "ru",
        confusables=_one_way(("ё", "е"))
        + _both(("и", "й"), ("ш", "щ"), ("ь", "ъ"), ("е", "э"), ("о", "а"), ("е", "и"), ("тся", "ться")),
        note="ЙЦУКЕН; ё→е (ё is optional in print), и↔й, ш↔щ, ь↔ъ, е↔э, unstressed о↔а and е↔и, "
        "-тся↔-ться",
    ),
    "el": LanguageNoise(
        "el", "el", frozenset("\u0301\u0308"),
        confusables=_both(("ο", "ω"), ("ό", "ώ"), ("η", "ι"), ("ι", "υ"), ("η", "υ"), ("ή", "ί"), ("ί", "ύ"),
                          ("ή", "ύ"), ("ε", "αι"), ("έ", "αί"))
        + _one_way(("ει", "ι"), ("οι", "ι")),
        note="Greek over QWERTY; tonos/dialytika dropped (ά→α); letters pronounced alike confused: "
        "ο↔ω, η↔ι↔υ (and ει, οι → ι), ε↔αι. (ε↔η is not a sound-alike pair in Modern Greek, so it "
        "is left out.)",
    ),
    "ar": LanguageNoise(
        "ar", "ar",
        vowel_signs=frozenset("\u064b\u064c\u064d\u064e\u064f\u0650\u0651\u0652\u0670"),
        confusables=_one_way(("ة", "ه"), ("ى", "ي"), ("أ", "ا"), ("إ", "ا"), ("آ", "ا"))
        + _one_way(("ؤ", "و"), ("ئ", "ي"))
        + (Rule("ه", "ة", final=True), Rule("ي", "ى", final=True))
        + _both(("ض", "ظ"), ("ذ", "ز")),
        note="Arabic 101; harakat/tanwin/shadda/sukun omitted (normal in everyday writing); ة↔ه and "
        "ي↔ى at word end, hamza seats dropped (أ إ آ→ا, ؤ→و, ئ→ي), ض↔ظ and ذ↔ز (merged in many "
        "dialects)",
    ),
    "hi": LanguageNoise(
        "hi", "hi", frozenset("\u093c"), vowel_signs=frozenset("\u0901\u0902\u094d"),
        confusables=_both(("ि", "ी"), ("ु", "ू"), ("श", "ष"), ("श", "स"), ("ब", "व"), ("े", "ै"))
        + _one_way(("ँ", "ं"), ("ण", "न")),
        note="InScript; nukta dropped (ज़→ज), anusvara/chandrabindu/virama omitted; short↔long "
        "matras (ि↔ी, ु↔ू), े↔ै, ँ→ं, sibilants श↔ष↔स, ब↔व, ण→न. Full matras are not dropped: "
        "that turns words into others rather than misspelling them",
    ),
    "th": LanguageNoise(
        "th", "th", vowel_signs=frozenset("\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c"),
        confusables=_both(("ิ", "ี"), ("ึ", "ื"), ("ุ", "ู"), ("่", "้"))
        + _one_way(("ศ", "ส"), ("ษ", "ส"), ("ณ", "น")),
        note="Kedmanee; tone marks and ็ ์ omitted (vowels are not: they change the syllable); "
        "short↔long vowels (ิ↔ี, ึ↔ื, ุ↔ู), ่↔้, sibilants ศ ษ→ส, ณ→น",
    ),
    "zh": LanguageNoise(
        "zh", None,
        confusables=_both(("的", "地"), ("的", "得"), ("地", "得"), ("在", "再"), ("做", "作"), ("他", "她"),
                          ("那", "哪"), ("已", "以"), ("象", "像"), ("带", "戴"), ("即", "既"), ("坐", "座")),
        note="pinyin IME: no character-level keyboard noise (a key slip yields other candidates); "
        "drop/swap of characters and the commonest homophone mix-ups (的/地/得, 在/再, 做/作, 他/她 …)",
    ),
}  # fmt: skip

SUPPORTED_LANGS: tuple[str, ...] = tuple(LANGUAGES)


def language_noise(lang: str | None) -> LanguageNoise:
    """The noise spec of ``lang``; an XqgError names the supported languages for any other."""
    spec = LANGUAGES.get(lang or "")
    if spec is None:
        raise XqgError(f"no misspelling model for language {lang!r}; supported: {' '.join(SUPPORTED_LANGS)}")
    return spec


def parse_weights(text: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"drop=1,swap=0.5"`` (or a mapping) → full weights; unnamed types keep their default."""
    if text is None:
        return dict(DEFAULT_WEIGHTS)
    given: dict[str, float] = {}
    if isinstance(text, str):
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise XqgError(f"edit weight '{part}': expected TYPE=WEIGHT")
            try:
                given[name.strip()] = float(value)
            except ValueError:
                raise XqgError(f"edit weight '{part}': {value!r} is not a number") from None
    else:
        given = {k: float(v) for k, v in text.items()}
    bad = sorted(set(given) - set(EDIT_TYPES))
    if bad:
        raise XqgError(f"unknown edit type(s) {', '.join(bad)}; valid: {', '.join(EDIT_TYPES)}")
    weights = {**DEFAULT_WEIGHTS, **given}
    if any(not np.isfinite(w) or w < 0 for w in weights.values()):
        raise XqgError(f"edit weights must be finite and ≥ 0, got {weights}")
    if not any(w > 0 for w in weights.values()):
        raise XqgError("at least one edit weight must be positive")
    return weights


# ----------------------------------------------------------------------------------------------
# Corruption.


@dataclass(frozen=True)
class Edit:
    """One edit: ``before`` (the characters at ``pos`` it replaced) became ``after``."""

    pos: int
    kind: str
    before: str
    after: str


@dataclass
class Corruption:
    """A corrupted text with what was done to it."""

    original: str
    text: str
    lang: str
    rate: float
    eligible: int
    selected: int
    edits: list[Edit] = field(default_factory=list)


def query_seed(seed: int, query_id: str) -> int:
    """64-bit seed of one query's noise: SHA-256 of ``(seed, query id)``, independent of order."""
    digest = hashlib.sha256(f"xqg-noise\x00{int(seed)}\x00{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def query_rng(seed: int, query_id: str) -> np.random.Generator:
    """The generator :func:`corrupt` should use for query ``query_id`` under global ``seed``."""
    return np.random.Generator(np.random.PCG64(query_seed(seed, query_id)))


def _lower(ch: str, lang: str) -> str:
    if lang == "tr":
        return {"I": "ı", "İ": "i"}.get(ch, ch.lower())
    low = ch.lower()
    return low if len(low) == 1 else ch


def _upper(s: str, lang: str) -> str:
    if not s:
        return s
    first = s[0]
    if lang == "tr":
        up = {"i": "İ", "ı": "I"}.get(first, first.upper())
    else:
        up = first.upper()
    return (up if len(up) == 1 else first) + s[1:]


def _is_upper(ch: str, lang: str) -> bool:
    return _lower(ch, lang) != ch


def _base(ch: str) -> str:
    return unicodedata.normalize("NFD", ch)[0]


def key_neighbours(ch: str, lang: str) -> tuple[str, ...]:
    """Keyboard neighbours of ``ch`` for a ``lang`` typist, in the case of ``ch`` (sorted).

    Lookup order: the character itself on the language's layout; its base letter (an accent typed
    with a dead key or IME is lost by a slip); Latin letters in a non-Latin query on US QWERTY.
    Empty when none applies (e.g. Han characters).
    """
    spec = language_noise(lang)
    low = _lower(ch, lang)
    tables = [LAYOUTS[spec.layout].neighbours] if spec.layout else []
    if spec.layout != "us":
        tables.append(LAYOUTS["us"].neighbours)
    for table in tables:
        for key in (low, _base(low)):
            if key in table:
                nbs = sorted(table[key])
                return tuple(_upper(n, lang) for n in nbs) if _is_upper(ch, lang) else tuple(nbs)
    return ()


def _strip_marks(ch: str, marks: frozenset[str]) -> str | None:
    """``ch`` without the combining marks in ``marks`` (recomposed); None if it has none."""
    nfd = unicodedata.normalize("NFD", ch)
    kept = "".join(c for c in nfd if c not in marks)
    if kept == nfd:
        return None
    return unicodedata.normalize("NFC", kept)


_DOUBLING_CONSONANTS = frozenset("bcdfgklmnprstz")


def _candidates(
    chars: Sequence[str], i: int, selected: Sequence[bool], spec: LanguageNoise
) -> dict[str, list[tuple[int, str]]]:
    """Applicable edits at ``i``: type → [(characters consumed, replacement), ...]."""
    ch = chars[i]
    n = len(chars)
    lang = spec.lang
    nxt_free = i + 1 < n and not selected[i + 1]
    out: dict[str, list[tuple[int, str]]] = {"drop": [(1, "")]}
    if nxt_free and is_eligible(chars[i + 1]) and chars[i + 1] != ch:
        out["swap"] = [(2, chars[i + 1] + ch)]
    nbs = key_neighbours(ch, lang) if spec.layout is not None or "LATIN" in unicodedata.name(ch, "") else ()
    if nbs:
        out["substitute"] = [(1, nb) for nb in nbs]
        out["insert"] = [(1, s) for nb in nbs for s in (ch + nb, nb + ch)]
    if spec.diacritic_marks:
        if ch in spec.diacritic_marks:
            if i > 0 and is_eligible(chars[i - 1]):
                out["diacritic"] = [(1, "")]
        else:
            stripped = _strip_marks(ch, spec.diacritic_marks)
            if stripped is not None:
                out["diacritic"] = [(1, stripped)]
    if ch in spec.vowel_signs:
        out["vowel_sign"] = [(1, "")]
    conf: list[tuple[int, str]] = []
    for rule in spec.confusables:
        k = len(rule.src)
        if i + k > n or any(selected[j] for j in range(i + 1, i + k)):
            continue
        seg = chars[i : i + k]
        if "".join(_lower(c, lang) for c in seg) != rule.src:
            continue
        if rule.final and i + k < n and is_eligible(chars[i + k]):
            continue
        dst = _upper(rule.dst, lang) if _is_upper(ch, lang) else rule.dst
        conf.append((k, dst))
    if spec.double_letters and _lower(ch, lang) in _DOUBLING_CONSONANTS:
        if nxt_free and chars[i + 1] == ch:
            conf.append((2, ch))  # undouble: occurred → occured
        elif i + 1 >= n or chars[i + 1] != ch:
            conf.append((1, ch + ch))  # double: across → accross
    if conf:
        out["confusable"] = conf
    return out


def corrupt_with_log(
    text: str,
    lang: str,
    rate: float,
    rng: np.random.Generator,
    weights: Mapping[str, float] | None = None,
) -> Corruption:
    """Corrupt ``text`` as a ``lang`` typist would at ``rate`` edits per eligible character.

    Draws three uniforms per character from ``rng`` (selection, edit type, which variant) whatever
    the rate, so the same generator state gives nested edits across rates. Rate 0 returns
    ``text`` unchanged.
    """
    spec = language_noise(lang)
    if not (0.0 <= float(rate) <= 1.0):
        raise XqgError(f"noise rate must be in [0, 1], got {rate}")
    w = parse_weights(weights) if weights is not None else DEFAULT_WEIGHTS
    chars = list(text)
    n = len(chars)
    u_sel, u_type, u_pick = rng.random(n), rng.random(n), rng.random(n)
    eligible = [is_eligible(c) for c in chars]
    selected = [eligible[i] and bool(u_sel[i] < rate) for i in range(n)]
    out: list[str] = []
    edits: list[Edit] = []
    i = 0
    while i < n:
        if not selected[i]:
            out.append(chars[i])
            i += 1
            continue
        cands = _candidates(chars, i, selected, spec)
        kinds = [k for k in EDIT_TYPES if k in cands and w[k] > 0]
        if not kinds:
            out.append(chars[i])
            i += 1
            continue
        cum = np.cumsum([w[k] for k in kinds])
        kind = kinds[min(int(np.searchsorted(cum, u_type[i] * cum[-1], side="right")), len(kinds) - 1)]
        options = cands[kind]
        consumed, replacement = options[min(int(u_pick[i] * len(options)), len(options) - 1)]
        edits.append(Edit(i, kind, "".join(chars[i : i + consumed]), replacement))
        out.append(replacement)
        i += consumed
    return Corruption(
        original=text,
        text="".join(out),
        lang=lang,
        rate=float(rate),
        eligible=sum(eligible),
        selected=sum(selected),
        edits=edits,
    )


def corrupt(
    text: str,
    lang: str,
    rate: float,
    rng: np.random.Generator,
    weights: Mapping[str, float] | None = None,
) -> str:
    """The corrupted text only (see :func:`corrupt_with_log`)."""
    return corrupt_with_log(text, lang, rate, rng, weights).text


def corrupt_queries(
    queries: Sequence[Query],
    rate: float,
    seed: int,
    *,
    lang: str | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[Corruption]:
    """Corrupt each query with its own seeded generator (:func:`query_rng`); ``lang`` overrides
    the queries' own ``lang`` (which must otherwise be set)."""
    w = parse_weights(weights) if weights is not None else None
    out = []
    for q in queries:
        q_lang = lang or q.lang
        if q_lang is None:
            raise XqgError(f"query {q.id!r} has no language; pass lang= to corrupt it")
        out.append(corrupt_with_log(q.text, q_lang, rate, query_rng(seed, q.id), w))
    return out


def noise_report(corruptions: Iterable[Corruption], *, examples: int = 0) -> dict[str, Any]:
    """Aggregate what the noise did: realised rate, edits by type, changed queries, examples.

    ``realised_rate`` = edits / eligible characters, the number to compare with the nominal
    ``rate``; ``unedited_selected`` counts positions selected but with no applicable edit type.
    """
    items = list(corruptions)
    by_type: Counter[str] = Counter()
    eligible = edits = selected = changed = 0
    shown: list[dict[str, str]] = []
    for c in items:
        eligible += c.eligible
        selected += c.selected
        edits += len(c.edits)
        by_type.update(e.kind for e in c.edits)
        if c.text != c.original:
            changed += 1
            if len(shown) < examples:
                shown.append({"lang": c.lang, "original": c.original, "corrupted": c.text})
    rates = sorted({c.rate for c in items})
    return {
        "rate": rates[0] if len(rates) == 1 else rates,
        "queries": len(items),
        "changed_queries": changed,
        "eligible_chars": eligible,
        "edits": edits,
        "realised_rate": edits / eligible if eligible else 0.0,
        "unedited_selected": selected - edits,
        "by_type": {k: by_type.get(k, 0) for k in EDIT_TYPES},
        "examples": shown,
    }


def describe_languages(langs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What the noise model does for each language (for reports): layout and note."""
    out = {}
    for lang in langs:
        spec = language_noise(lang)
        layout = LAYOUTS[spec.layout].source if spec.layout else None
        out[lang] = {"layout": layout, "note": spec.note}
    return out


__all__ = [
    "DEFAULT_WEIGHTS",
    "EDIT_TYPES",
    "LANGUAGES",
    "LAYOUTS",
    "SUPPORTED_LANGS",
    "Corruption",
    "Edit",
    "KeyboardLayout",
    "LanguageNoise",
    "Rule",
    "corrupt",
    "corrupt_queries",
    "corrupt_with_log",
    "describe_languages",
    "is_eligible",
    "key_neighbours",
    "language_noise",
    "noise_report",
    "parse_weights",
    "query_rng",
    "query_seed",
]
