"""The misspelling noise model: rates, seeding, keyboard neighbours, script-specific edits."""

from __future__ import annotations

import math
import unicodedata

import numpy as np
import pytest

from xqg.analyse.noise import (
    EDIT_TYPES,
    LAYOUTS,
    SUPPORTED_LANGS,
    corrupt,
    corrupt_queries,
    corrupt_with_log,
    is_eligible,
    key_neighbours,
    noise_report,
    parse_weights,
    query_rng,
)
from xqg.errors import XqgError
from xqg.types import Query

SAMPLES = {
    "en": "Which branch of theoretical computer science deals with classifying problems by difficulty?",
    "de": "Welcher Zweig der theoretischen Informatik beschäftigt sich mit Größe und Schwierigkeit?",
    "es": "¿Qué rama de la informática teórica se encarga de la clasificación según la dificultad?",
    "ro": "Care este ramura informaticii teoretice care se ocupă cu clasificarea în funcție de dificultate?",
    "vi": "Nhánh nào của khoa học máy tính lý thuyết liên quan đến việc phân loại theo độ khó?",
    "tr": "Teorik bilgisayar biliminin hangi dalı, problemleri zorluklarına göre sınıflandırır? İstanbul",
    "ru": "Какая отрасль теоретической информатики занимается классификацией задач по сложности? Ёлка",
    "el": "Ποιος κλάδος της θεωρητικής επιστήμης ασχολείται με την ταξινόμηση των προβλημάτων;",
    "ar": "ما هو فرع علم الحاسوب النظري الذي يتعامل مع تصنيف المسائل حسب صعوبتها؟",
    "hi": "सैद्धांतिक कंप्यूटर विज्ञान की कौन सी शाखा कठिनाई द्वारा समस्याओं का वर्गीकरण करती है?",
    "th": "วิทยาการคอมพิวเตอร์เชิงทฤษฎีสาขาใดที่เกี่ยวกับการจัดหมวดหมู่ปัญหาตามความยาก",
    "zh": "理论计算科学的哪个分支是研究计算问题按难度进行分类的？",
}

SCRIPT = {"ru": "CYRILLIC", "el": "GREEK", "ar": "ARABIC", "hi": "DEVANAGARI", "th": "THAI"}


def only(*kinds: str) -> dict[str, float]:
    """Weights with every edit type off except ``kinds``."""
    return {k: (1.0 if k in kinds else 0.0) for k in EDIT_TYPES}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def long_english() -> str:
    from xqg.data.benchmarks.xquad import load_xquad

    return " ".join(p.text for p in load_xquad("en").corpus[:40])


def test_samples_cover_every_supported_language():
    assert set(SAMPLES) == set(SUPPORTED_LANGS)


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_rate_zero_is_identity(lang):
    c = corrupt_with_log(SAMPLES[lang], lang, 0.0, rng(1))
    assert c.text == SAMPLES[lang] and c.edits == [] and c.selected == 0
    assert c.eligible == sum(is_eligible(ch) for ch in SAMPLES[lang]) > 0


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_same_seed_same_output_different_seed_different(lang):
    text = SAMPLES[lang] * 3
    a = corrupt(text, lang, 0.2, rng(7))
    assert a == corrupt(text, lang, 0.2, rng(7))
    assert a != text
    assert all(corrupt(text, lang, 0.2, rng(s)) != a for s in range(8, 12))


def test_per_query_seed_does_not_depend_on_order():
    qs = [Query(f"q{i}", SAMPLES[lang], lang) for i, lang in enumerate(sorted(SAMPLES))]
    fwd = {c.original + c.lang: c.text for c in corrupt_queries(qs, 0.2, seed=3)}
    back = {c.original + c.lang: c.text for c in corrupt_queries(list(reversed(qs)), 0.2, seed=3)}
    assert fwd == back
    other = {c.original + c.lang: c.text for c in corrupt_queries(qs, 0.2, seed=4)}
    assert other != fwd
    # the seed is a pure function of (seed, id): same id, same stream
    assert query_rng(3, "q1").random() == query_rng(3, "q1").random() != query_rng(3, "q2").random()


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3])
def test_realised_edit_fraction_matches_rate(long_english, rate):
    c = corrupt_with_log(long_english, "en", rate, rng(11))
    n = c.eligible
    assert n > 10_000
    tol = 4 * math.sqrt(rate * (1 - rate) / n)
    assert abs(len(c.edits) / n - rate) < tol
    assert c.selected == len(c.edits)  # drop always applies: every selected letter is edited
    rep = noise_report([c])
    assert rep["realised_rate"] == len(c.edits) / n
    assert sum(rep["by_type"].values()) == rep["edits"] == len(c.edits)
    assert all(rep["by_type"][k] > 0 for k in ("drop", "swap", "insert", "substitute", "confusable"))


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.3])
def test_substitution_only_changes_that_fraction_of_letters(long_english, rate):
    """Independent check on the output itself: substitutions keep the length, so the Hamming
    distance counts edited letters."""
    text = long_english.lower()
    out = corrupt(text, "en", rate, rng(5), only("substitute"))
    assert len(out) == len(text)
    changed = sum(a != b for a, b in zip(text, out, strict=True))
    n = sum(map(is_eligible, text))
    assert abs(changed / n - rate) < 4 * math.sqrt(rate * (1 - rate) / n)


def test_edits_are_nested_across_rates(long_english):
    low = corrupt_with_log(long_english, "en", 0.05, rng(2), only("substitute"))
    high = corrupt_with_log(long_english, "en", 0.3, rng(2), only("substitute"))
    assert set(low.edits) < set(high.edits)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_neighbour_tables_are_symmetric_and_letters_only(name):
    table = LAYOUTS[name].neighbours
    assert table
    for key, nbs in table.items():
        assert key not in nbs and nbs
        for nb in nbs:
            assert key in table[nb], (name, key, nb)
            assert is_eligible(nb)


@pytest.mark.parametrize(
    ("lang", "ch", "expected"),
    [
        ("en", "f", "cdgrtv"),
        ("en", "q", "aw"),
        ("en", "Q", "AW"),
        ("de", "z", "ghtu"),  # QWERTZ: z sits where US has y
        ("de", "ß", "pü"),
        ("ru", "а", "векмпс"),
        ("el", "α", "ζςσ"),
        ("el", "ά", "ζςσ"),  # accented: its base key
        ("ar", "ب", "ؤرفقلي"),
        ("tr", "I", "JKOU"),  # Turkish casing: I is capital ı, which sits on the US i key
        ("vi", "ế", "drsw"),  # Telex: typed on e
        ("ru", "x", "cdsz"),  # Latin in a Russian query: US QWERTY
        ("zh", "的", ""),
    ],
)
def test_known_neighbours(lang, ch, expected):
    assert set(key_neighbours(ch, lang)) == set(expected)


@pytest.mark.parametrize("lang", ["en", "de", "ru", "el", "ar", "hi", "th"])
def test_substitutions_and_insertions_use_layout_neighbours(lang):
    text = SAMPLES[lang] * 4
    c = corrupt_with_log(text, lang, 0.3, rng(3), only("substitute", "insert"))
    assert c.edits
    for e in c.edits:
        nbs = key_neighbours(e.before, lang)
        if e.kind == "substitute":
            assert e.after in nbs
        else:
            assert len(e.after) == 2 and e.before in e.after
            assert e.after.replace(e.before, "", 1) in nbs


@pytest.mark.parametrize("lang", sorted(SCRIPT))
def test_output_stays_in_the_script(lang):
    for seed in range(5):
        out = corrupt(SAMPLES[lang], lang, 0.3, rng(seed))
        out.encode("utf-8")  # valid Unicode (no lone surrogates)
        letters = [ch for ch in out if is_eligible(ch)]
        assert letters and all(SCRIPT[lang] in unicodedata.name(ch) for ch in letters)


def _strip_all_marks(text: str) -> str:
    nfd = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in nfd if not unicodedata.combining(c)))


@pytest.mark.parametrize("lang", ["de", "es", "ro", "vi", "el"])
def test_diacritic_drop_removes_exactly_the_combining_marks(lang):
    text = SAMPLES[lang]
    out = corrupt(text, lang, 1.0, rng(0), only("diacritic"))
    assert out == _strip_all_marks(text) != text


def test_diacritic_drop_specifics():
    w = only("diacritic")
    assert corrupt("ığüşöçİ", "tr", 1.0, rng(0), w) == "ıgusocI"  # dotless ı has no mark to drop
    assert corrupt("Straße", "de", 1.0, rng(0), w) == "Straße"  # ß is a confusable, not a diacritic
    assert corrupt("\u095bरूरत", "hi", 1.0, rng(0), w) == "जरूरत"  # precomposed nukta letter ज़
    assert corrupt("ज\u093cरूरत", "hi", 1.0, rng(0), w) == "जरूरत"  # decomposed: ज + nukta


def test_vowel_sign_drop():
    w = only("vowel_sign")
    assert corrupt("مُحَمَّد", "ar", 1.0, rng(0), w) == "محمد"
    assert corrupt("हिंदी", "hi", 1.0, rng(0), w) == "हिदी"  # anusvara omitted, matras kept
    assert corrupt("ไม่ใช่", "th", 1.0, rng(0), w) == "ไมใช"  # tone marks omitted


def test_confusables():
    w = only("confusable")
    assert corrupt("ёж", "ru", 1.0, rng(0), w) == "еж"
    assert corrupt("cat", "en", 1.0, rng(0), w) == "ccatt"  # consonant doubling
    assert corrupt("ω", "el", 1.0, rng(0), w) == "ο"
    assert corrupt("له", "ar", 1.0, rng(0), w) == "لة"  # ه→ة only at the end of a word
    assert corrupt("هل", "ar", 1.0, rng(0), w) == "هل"
    assert corrupt("Straße", "de", 1.0, rng(0), w) == "Strasse"
    # a two-letter confusion never consumes a selected neighbour: with every letter selected,
    # "ie" cannot become "ei" (both letters would be edited at once) and vowels do not double
    assert corrupt("ie", "en", 1.0, rng(0), w) == "ie"
    outs = {corrupt("field", "en", 0.3, rng(s), only("confusable")) for s in range(300)}
    assert "feild" in outs


def test_chinese_gets_no_keyboard_noise_on_han():
    text = SAMPLES["zh"]
    assert corrupt(text, "zh", 1.0, rng(0), only("substitute", "insert")) == text
    c = corrupt_with_log(text, "zh", 0.3, rng(0))
    assert {e.kind for e in c.edits} <= {"drop", "swap", "confusable"}
    assert corrupt("IBM", "zh", 1.0, rng(0), only("substitute")) != "IBM"  # Latin inside zh: QWERTY


def test_bad_input_is_a_clear_error():
    with pytest.raises(XqgError, match="no misspelling model for language 'xx'"):
        corrupt("abc", "xx", 0.1, rng())
    with pytest.raises(XqgError, match="no language"):
        corrupt_queries([Query("q", "abc", None)], 0.1, 0)
    with pytest.raises(XqgError, match=r"\[0, 1\]"):
        corrupt("abc", "en", 1.5, rng())
    with pytest.raises(XqgError, match="unknown edit type"):
        parse_weights("typo=1")
    with pytest.raises(XqgError, match="positive"):
        parse_weights(dict.fromkeys(EDIT_TYPES, 0.0))
    assert parse_weights("drop=2, swap=0")["drop"] == 2.0 and parse_weights("drop=2")["swap"] == 1.0
