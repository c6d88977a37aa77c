"""Is a generated query in the language it was asked for? Script checks first, langid for Latin.

Why two mechanisms: most target languages own a script (Arabic, Bengali, Devanagari, Thai, Telugu,
Hangul, Greek, Cyrillic, Han, kana), and counting letters per Unicode block decides those exactly
and instantly, even for a three-word question. A statistical identifier is only needed where
several targets share the Latin script (de, es, fi, ro, tr, vi, and English: the usual wrong answer
of a generator that copies its English passage). There ``langid`` (its model ships in the wheel)
is restricted to :data:`LATIN_CANDIDATES`, after two cheap signals that are more reliable on short
questions: letters only one candidate uses, and interrogatives only one candidate uses.

Units. A text is cut into *units* per script: one unit per word of a script written with spaces
(Latin, Greek, Cyrillic, Arabic, the Indic scripts, Hangul) and one per letter of Han, kana and Thai,
which have no spaces. A Latin name in a Russian question is then one unit, as a Russian word is:
"Кто выиграл Super Bowl 50?" is half Cyrillic, half Latin.

The rule per language (``docs/quality.md`` reports how often real human questions pass it):

* **ar bn el hi ko ru te th**: the language's script holds at least :data:`MIN_SCRIPT_SHARE` of
  the units, and the text has none of :data:`FOREIGN_LETTERS` (Ukrainian/Serbian letters are not
  Russian, Persian/Urdu letters are not Arabic).
* **ja**: at least one hiragana/katakana letter, and kana + Han hold the share.
* **zh**: Han holds the share and there is no kana or Hangul (kana make it Japanese).
* **de en es fi ro tr vi**: Latin holds *more* than the share (in a tie the other script wins:
  names copied from an English passage are Latin) and :func:`detect_latin` returns the language:
  Vietnamese if at least :data:`VI_WORD_SHARE` of the Latin words carry a Vietnamese letter; else
  the language whose :data:`QUESTION_WORDS` occur most (a tie falls through); else a marker letter
  (``¿ ¡ ñ`` Spanish, ``ı İ ğ`` Turkish, ``ș ț ţ`` Romanian); else langid over the candidates,
  fed only the Latin words.

Not distinguished (same script, no target language to confuse them with): Hindi from Marathi or
Nepali, Bengali from Assamese, Simplified from Traditional Chinese.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

#: Latin-script languages langid chooses among (the Latin targets of xqg, plus English).
LATIN_CANDIDATES: tuple[str, ...] = ("de", "en", "es", "fi", "ro", "tr", "vi")

#: Share of the text's units that must be in the language's script.
MIN_SCRIPT_SHARE = 0.5

# (first code point, last code point, script). Sorted; gaps are "other".
_RANGES: list[tuple[int, int, str]] = sorted(
    [
        (0x0041, 0x005A, "Latin"),
        (0x0061, 0x007A, "Latin"),
        (0x00C0, 0x024F, "Latin"),
        (0x1E00, 0x1EFF, "Latin"),
        (0x0370, 0x03FF, "Greek"),
        (0x1F00, 0x1FFF, "Greek"),
        (0x0400, 0x052F, "Cyrillic"),
        (0x0600, 0x06FF, "Arabic"),
        (0x0750, 0x077F, "Arabic"),
        (0x08A0, 0x08FF, "Arabic"),
        (0xFB50, 0xFDFF, "Arabic"),
        (0xFE70, 0xFEFF, "Arabic"),
        (0x0900, 0x097F, "Devanagari"),
        (0x0980, 0x09FF, "Bengali"),
        (0x0C00, 0x0C7F, "Telugu"),
        (0x0E00, 0x0E7F, "Thai"),
        (0x1100, 0x11FF, "Hangul"),
        (0x3130, 0x318F, "Hangul"),
        (0xAC00, 0xD7AF, "Hangul"),
        (0x3040, 0x309F, "Kana"),
        (0x30A0, 0x30FF, "Kana"),
        (0x31F0, 0x31FF, "Kana"),
        (0xFF66, 0xFF9F, "Kana"),
        (0x3005, 0x3007, "Han"),
        (0x3400, 0x4DBF, "Han"),
        (0x4E00, 0x9FFF, "Han"),
        (0xF900, 0xFAFF, "Han"),
        (0x20000, 0x2FFFF, "Han"),
    ]
)
_STARTS = [r[0] for r in _RANGES]

#: Scripts written without spaces between words: each letter is a unit.
PER_LETTER = frozenset({"Han", "Kana", "Thai"})

#: Script languages: language → its script.
SCRIPT_OF: dict[str, str] = {
    "ar": "Arabic",
    "bn": "Bengali",
    "el": "Greek",
    "hi": "Devanagari",
    "ko": "Hangul",
    "ru": "Cyrillic",
    "te": "Telugu",
    "th": "Thai",
}
_LANG_OF_SCRIPT = {s: lang for lang, s in SCRIPT_OF.items()}

#: Languages :func:`in_language` checks by the full rules of the module docstring.
FULL_CHECK: tuple[str, ...] = tuple(sorted({*SCRIPT_OF, "ja", "zh", *LATIN_CANDIDATES}))
#: Kept for callers of the earlier name: every other language gets the script check.
SUPPORTED = FULL_CHECK

#: Letters a language's script has in other alphabets but never in that language: Ukrainian,
#: Belarusian, Serbian and Macedonian letters for Russian; Persian and Urdu letters for Arabic
#: (none of the 3,298 Arabic questions of XQuAD, XOR-TyDi dev and MKQA has one).
FOREIGN_LETTERS: dict[str, frozenset[str]] = {
    "ru": frozenset("іїєґІЇЄҐјљњћџђѓќѕЈЉЊЋЏЂЃЌЅўЎ"),
    "ar": frozenset("پچژگکیٹڈڑںے"),
}
# Vietnamese: ơ ư đ and the tone-marked vowels of Latin Extended Additional (U+1EA0–U+1EF9).
_VI = re.compile(r"[ơưđƠƯĐ\u1EA0-\u1EF9]")
#: Letters (or punctuation) only one Latin candidate uses; checked after question words, so a name
#: such as "İstanbul" in a German question does not make it Turkish.
_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("es", re.compile(r"[¿¡ñÑ]")),
    ("tr", re.compile(r"[ıİğĞ]")),
    ("ro", re.compile(r"[șțȘȚţŢ]")),
)
#: Vietnamese needs this share of its Latin words to carry a Vietnamese letter (one "Trần" in a
#: German question is a name, not Vietnamese).
VI_WORD_SHARE = 0.2
#: Interrogatives that belong to one candidate language only (``was`` is English and German,
#: ``care`` English and Romanian, ``ne`` Romanian and Turkish: left out).
QUESTION_WORDS: dict[str, tuple[str, ...]] = {
    "de": (
        "wer",
        "wann",
        "wo",
        "welche",
        "welcher",
        "welches",
        "welchen",
        "welchem",
        "wie",
        "warum",
        "wieso",
        "weshalb",
        "wessen",
        "wem",
        "wen",
        "woher",
        "wohin",
        "womit",
        "wofür",
        "worauf",
    ),
    "en": ("who", "what", "when", "where", "which", "why", "how", "whom", "whose"),
    "es": (
        "qué",
        "quién",
        "quiénes",
        "cuándo",
        "dónde",
        "cuál",
        "cuáles",
        "cuánto",
        "cuánta",
        "cuántos",
        "cuántas",
        "cómo",
        "quien",
        "cuando",
        "donde",
        "cual",
        "cuanto",
        "cuantos",
        "como",
    ),
    "fi": (
        "kuka",
        "ketkä",
        "mikä",
        "mitkä",
        "mitä",
        "missä",
        "mistä",
        "mihin",
        "milloin",
        "miksi",
        "miten",
        "kuinka",
        "montako",
        "paljonko",
        "onko",
        "oliko",
        "ovatko",
        "olivatko",
        "minkä",
        "millä",
        "mille",
        "kenen",
        "kenet",
        "kenelle",
        "kumpi",
        "koska",
    ),
    "ro": ("cine", "când", "unde", "câte", "câți", "cât", "cum", "ce", "căror", "cărui"),
    "tr": (
        "kim",
        "kimdir",
        "kimin",
        "kime",
        "nedir",
        "neydi",
        "nerede",
        "nereye",
        "nereden",
        "neden",
        "nasıl",
        "hangi",
        "kaç",
    ),
}
_QWORD_LANGS: dict[str, tuple[str, ...]] = {}
for _lang, _ws in QUESTION_WORDS.items():
    for _w in _ws:
        _QWORD_LANGS[_w] = (*_QWORD_LANGS.get(_w, ()), _lang)
# Latin words with apostrophes and hyphens inside; langid sees only these (other scripts' bytes are noise
# to a model restricted to Latin languages).
_LATIN_WORD = re.compile(r"[A-Za-z\u00C0-\u024F\u1E00-\u1EFF]+(?:['’-][A-Za-z\u00C0-\u024F\u1E00-\u1EFF]+)*")


def script_of(ch: str) -> str:
    """The script of one character (``"other"`` for digits, punctuation, unlisted scripts)."""
    cp = ord(ch)
    i = bisect.bisect_right(_STARTS, cp) - 1
    if i >= 0 and cp <= _RANGES[i][1]:
        return _RANGES[i][2]
    return "other"


def _units(text: str, script: Callable[[str], str], per_letter: frozenset[str]) -> Counter[str]:
    """Units per script, with ``script(ch)`` naming a letter's script (``"other"``: not a unit)."""
    units: Counter[str] = Counter()
    prev: str | None = None
    for ch in text:
        cat = unicodedata.category(ch)[0]
        if cat == "M":
            continue
        sc = script(ch) if cat == "L" else "other"
        if sc == "other":
            prev = None
            continue
        if sc in per_letter or sc != prev:
            units[sc] += 1
        prev = sc
    return units


def script_units(text: str) -> Counter[str]:
    """Units per script: one per word of a script written with spaces, one per Han/kana/Thai letter.

    A word is a maximal run of letters of one script (``iPhone的`` is one Latin and one Han unit).
    Combining marks (Indic vowel signs, Thai vowels, Arabic harakat) continue the word they sit in.
    """
    return _units(text, script_of, PER_LETTER)


@cache
def _latin_identifier() -> Any:
    """langid restricted to the Latin candidates; built once (≈1 s), probabilities normalised."""
    from langid.langid import LanguageIdentifier, model

    ident = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    ident.set_languages(list(LATIN_CANDIDATES))
    return ident


def preload() -> None:
    """Build the langid identifier now rather than inside the first Latin text's :func:`detect`
    (a server does it at start, so that no request pays for it)."""
    _latin_identifier()


def detect_latin(text: str) -> str:
    """Which of :data:`LATIN_CANDIDATES` a Latin-script text is in (the rule of the module docstring)."""
    words = _LATIN_WORD.findall(text)
    if not words:
        return "und"
    n_vi = sum(1 for w in words if _VI.search(w))
    if n_vi >= max(1, VI_WORD_SHARE * len(words)):
        return "vi"
    hits = Counter(lang for w in words for lang in _QWORD_LANGS.get(w.lower(), ()))
    if hits:
        (top, n_top), *rest = hits.most_common(2)
        if not rest or rest[0][1] < n_top:
            return top
    for lang, marker in _MARKERS:
        if marker.search(text):
            return lang
    lang, _ = _latin_identifier().classify(" ".join(words))
    return str(lang)


def _share(units: Counter[str], scripts: Sequence[str]) -> float:
    total = sum(units.values())
    return sum(units[s] for s in scripts) / total if total else 0.0


def detect(text: str) -> str:
    """The language of ``text`` as far as xqg's checks can tell (``"und"`` without letters).

    Kana anywhere → ``ja``; else the script with the most units decides; Latin goes to
    :func:`detect_latin`; a script no target language uses gives ``"und"``.
    """
    units = script_units(text)
    if not units:
        return "und"
    if units["Kana"]:
        return "ja"
    script = units.most_common(1)[0][0]
    if script == "Latin":
        return detect_latin(text)
    if script == "Han":
        return "zh"
    return _LANG_OF_SCRIPT.get(script, "und")


def in_language(text: str, lang: str) -> bool:
    """Whether ``text`` is written in ``lang`` by the rule of the module docstring."""
    if lang in SCRIPT_OF:
        script = SCRIPT_OF[lang]
        units = script_units(text)
        if _share(units, [script]) < MIN_SCRIPT_SHARE:
            return False
        foreign = FOREIGN_LETTERS.get(lang)
        return not (foreign and any(ch in foreign for ch in text))
    if lang == "ja":
        units = script_units(text)
        return units["Kana"] > 0 and _share(units, ["Kana", "Han"]) >= MIN_SCRIPT_SHARE
    if lang == "zh":
        units = script_units(text)
        return not units["Kana"] and not units["Hangul"] and _share(units, ["Han"]) >= MIN_SCRIPT_SHARE
    if lang in LATIN_CANDIDATES:
        units = script_units(text)
        # Strictly more: names copied from English passages are Latin, so in a tie with another
        # script ("Ποιος κέρδισε το Super Bowl XLIX;") the other script carries the language.
        return _share(units, ["Latin"]) > MIN_SCRIPT_SHARE and detect_latin(text) == lang
    return in_script(text, lang)


def check_level(lang: str) -> str:
    """``full`` where the module's rules apply, else ``script`` (see :mod:`xqg.languages`)."""
    from xqg.languages import normalize

    return "full" if normalize(lang) in FULL_CHECK else "script"


#: ISO 15924 scripts a language's usual script may be written with (Japanese mixes three).
_SCRIPT_FAMILY = {
    "Jpan": frozenset({"Hira", "Kana", "Hani"}),
    "Kore": frozenset({"Hang", "Hani"}),
    "Hans": frozenset({"Hani"}),
    "Hant": frozenset({"Hani"}),
}


#: ISO 15924 scripts written without spaces between words (each letter is a unit).
_ISO_PER_LETTER = frozenset({"Hani", "Hira", "Kana", "Thai", "Laoo", "Khmr", "Mymr"})


def iso_script_units(text: str) -> Counter[str]:
    """Like :func:`script_units`, but over every Unicode script, named by ISO 15924 code.

    The scripts come from fontTools' copy of the Unicode Character Database (``Scripts.txt``), so
    Ethiopic, Tamil or Georgian count as well as the scripts xqg's targets use.
    """
    from fontTools.unicodedata import script as ucd_script

    def iso(ch: str) -> str:
        sc = ucd_script(ch)
        return "other" if sc in ("Zyyy", "Zinh", "Zzzz") else sc

    return _units(text, iso, _ISO_PER_LETTER)


def in_script(text: str, lang: str) -> bool:
    """The script-only check: ``lang``'s usual script holds at least :data:`MIN_SCRIPT_SHARE`.

    For a Latin-script language that langid knows (Swahili, French, …), the text must also not be
    English: copying the English passage is a generator's most common wrong answer.
    """
    from xqg.languages import get

    info = get(lang)
    family = _SCRIPT_FAMILY.get(info.script, frozenset({info.script}))
    units = iso_script_units(text)
    total = sum(units.values())
    if not total or sum(units[s] for s in family) / total < MIN_SCRIPT_SHARE:
        return False
    base = info.code.split("-")[0]
    if info.script == "Latn" and base != "en" and base in _langid_languages():
        return _english_or(base).classify(" ".join(_LATIN_WORD.findall(text)))[0] == base
    return True


@cache
def _langid_languages() -> frozenset[str]:
    from langid.langid import LanguageIdentifier, model

    return frozenset(LanguageIdentifier.from_modelstring(model).nb_classes)


@cache
def _english_or(lang: str) -> Any:
    from langid.langid import LanguageIdentifier, model

    ident = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    ident.set_languages([lang, "en"])
    return ident
