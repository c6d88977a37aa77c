"""Prompts for cross-lingual query generation, shared by generation and generator training.

Two families, each a small named function (selected by name, unknown names list the valid ones):

* ``paper`` — the exact input of the paper's mT5 generator (ielab xQG4xDR, and the model card of
  ``ielabgroup/xor-tydi-docTquery-mt5-base``)::

      Generate a {Language} question for this passage: {title} {passage}

  with the language's English name (``Arabic``, ``Bengali``, …). Quirk of the reference code: it
  read ``psgs_w100.tsv`` lines with ``docid, passage, title = line.split('\\t')`` without stripping,
  so its titles ended in a newline; mT5's sentencepiece normaliser maps that to the same single
  space, so the published format above is what the model saw after tokenisation.

* ``causal`` — for decoder-only models (Gemma 3 and others), which continue text rather than map
  input to output: the question follows ``Question:`` and ends at the first newline::

      Passage: {passage}
      Write a {Language} question about the passage.
      Question:

  Training (``xqg train-generator``) puts the loss on the question tokens after this prompt, so
  the same template must be used at generation time; the generator manifest records it.
"""

from __future__ import annotations

from collections.abc import Callable

from xqg import languages as _languages
from xqg.errors import XqgError

#: The paper's target languages (XOR-TyDi), in its order (the facts live in :mod:`xqg.languages`).
PAPER_LANGS: tuple[str, ...] = _languages.PAPER_LANGS

#: What the causal prompt's answer ends at: one question per line.
CAUSAL_STOP = "\n"


def language_name(lang: str) -> str:
    """The English name a prompt gives ``lang`` (any ISO 639 code or BCP-47 tag; see :mod:`xqg.languages`)."""
    return _languages.name(lang)


def paper_prompt(lang: str, title: str, passage: str) -> str:
    """The paper's mT5 input, byte for byte (see the module docstring)."""
    return f"Generate a {language_name(lang)} question for this passage: {title} {passage}"


def causal_prompt(lang: str, title: str, passage: str) -> str:
    """Prompt for decoder-only models; the question is generated after ``Question:``.

    The title is not repeated: XQuAD titles are the article name, and the passage already names
    its subject; a title line made the small model copy the title into the question.
    """
    return f"Passage: {passage}\nWrite a {language_name(lang)} question about the passage.\nQuestion:"


PROMPTS: dict[str, Callable[[str, str, str], str]] = {"paper": paper_prompt, "causal": causal_prompt}


def get_prompt(name: str) -> Callable[[str, str, str], str]:
    """Select a prompt function by name; an unknown name lists the valid ones."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise XqgError(f"unknown prompt '{name}'; choose one of: {', '.join(PROMPTS)}") from None


def clean_causal_output(text: str) -> str:
    """A causal model's continuation → one question: cut at the first newline, strip spaces."""
    return text.split(CAUSAL_STOP, 1)[0].strip()


# --- few-shot baseline ---------------------------------------------------------------------------

#: Two English passages from XQuAD **training** articles (``Southern_California#4`` in full and the
#: first two sentences of ``Oxygen#1``), shared by every language XQuAD has.
_XQUAD_DEMO_PASSAGES: tuple[str, str] = (
    "From 2005 to 2014, there were two Major League Soccer teams in Los Angeles — the LA Galaxy and "
    "Chivas USA — that both played at the StubHub Center and were local rivals. However, Chivas were "
    "suspended following the 2014 MLS season, with a second MLS team scheduled to return in 2018.",
    "In 1891 Scottish chemist James Dewar was able to produce enough liquid oxygen to study. The first "
    "commercially viable process for producing liquid oxygen was independently developed in 1895 by "
    "German engineer Carl von Linde and British engineer William Hampson.",
)

#: XQuAD's human translations of the two questions on those passages (squad ids
#: 5706149552bb891400689880 and 571c9348dd7acb1400e4c116), verbatim.
_XQUAD_DEMO_QUESTIONS: dict[str, tuple[str, str]] = {
    "ar": (
        "ماسم الفريق الذي تم إيقاف نشاطه في دوري النخبة لكرة القدم؟",
        "متى تم تطوير الأكسجين السائل من أجل الاستخدام التجاري؟",
    ),
    "de": (
        "Welches Team wurde von der MLS gesperrt?",
        "Wann wurde flüssiger Sauerstoff für die kommerzielle Nutzung entwickelt?",
    ),
    "el": ("Ποια ομάδα αποβλήθηκε από το MLS;", "Πότε αναπτύχθηκε το υγρό οξυγόνο για εμπορική χρήση;"),
    "en": ("Which team was suspended from the MLS?", "When was liquid oxygen developed for commercial use?"),
    "es": (
        "¿Qué equipo se expulsó temporalmente de la MLS?",
        "¿Cuándo se desarrolló el oxígeno líquido para uso comercial?",
    ),
    "hi": ("एमएलएस से किस टीम को निलंबित किया गया था?", "व्यावसायिक उपयोग के लिए तरल ऑक्सीजन कब तैयार की गई थी?"),
    "ro": (
        "Ce echipă a fost suspendată din MLS (Liga Profesionistă de Fotbal)?",
        "Când a fost dezvoltat oxigenul lichid în scop comercial?",
    ),
    "ru": (
        "Какая команда выбыла из лиги MLS?",
        "Когда был разработан промышленный метод сжижения кислорода?",
    ),
    "th": ("ทีมใดที่ถูกระงับการลงแข่ง MLS?", "ออกซิเจนเหลวได้รับการพัฒนาให้มีประโยชน์ทางการค้าเมื่อใด"),
    "tr": ("Hangi takım MLS'den uzaklaştırıldı?", "Ticari kullanım için ne zaman sıvı oksijen geliştirildi?"),
    "vi": ("Đội nào bị đình chỉ ở MLS?", "Oxi lỏng được phát triển cho sử dụng thương mại vào khi nào?"),
    "zh": ("哪支球队被从MLS停赛？", "液氧在何时被开发用于商业?"),
}

#: Languages XQuAD lacks: native questions from XOR-TyDi **train** (verbatim, with their spacing),
#: each after a short English passage written from the question's human English translation in
#: ``xx-en/`` and its gold English answer (XOR-TyDi ships no English passages).
_XOR_DEMOS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "bn": (
        (
            "New York City is the most populous city in the United States. It lies at the southern tip "
            "of New York State and has more than eight million residents.",
            "মার্কিন যুক্তরাষ্ট্রের বৃহত্তম শহর কোনটি ?",
        ),
        (
            "The Mexican peso is the currency of Mexico. It is divided into 100 centavos and is issued "
            "by the Bank of Mexico.",
            "মেক্সিকোর মুদ্রার নাম কী ?",
        ),
    ),
    "fi": (
        (
            "San Francisco was founded on June 29, 1776, when colonists from Spain established a fort at "
            "the Golden Gate and a mission named for Francis of Assisi.",
            "Milloin San Francisco on perustettu?",
        ),
        (
            "Helium is a chemical element with the symbol He and atomic number 2. It is a colourless, "
            "odourless, inert gas, the first of the noble gases in the periodic table.",
            "Mikä on Heliumin järjestysnumero?",
        ),
    ),
    "ja": (
        (
            "The UAE dirham is the currency of the United Arab Emirates. It is divided into 100 fils.",
            "アラブ首長国連邦の通貨はなんですか？",
        ),
        (
            "Libya became independent as the United Kingdom of Libya on 24 December 1951, with Idris "
            "as its king.",
            "リビアはいつ建国した",
        ),
    ),
    "ko": (
        (
            "Berlin is the capital and largest city of Germany, with about 3.7 million inhabitants "
            "within its city limits.",
            "독일의 최대 도시는 어디인가요?",
        ),
        (
            "The Ottoman Empire was founded around 1299 by Osman I, a Turkish tribal leader in "
            "northwestern Anatolia.",
            "오스만 제국은 언제 세워졌는가?",
        ),
    ),
    "te": (
        (
            "The Mughal Empire was founded in 1526 by Babur, who defeated Ibrahim Lodi, the Sultan of "
            "Delhi, at the First Battle of Panipat.",
            "మొఘల్ సామ్రాజ్య స్థాపకుడు ఎవరు ?",
        ),
        (
            "Stanford University was founded in 1885 by Leland and Jane Stanford in memory of their "
            "only child, Leland Stanford Jr.",
            "స్టాన్ఫోర్డ్ విశ్వవిద్యాలయ వ్యవస్థాపకుడు ఎవరు?",
        ),
    ),
}


#: Languages :func:`fewshot_prompt` has demonstrations for.
FEWSHOT_LANGS: tuple[str, ...] = tuple(sorted({*_XQUAD_DEMO_QUESTIONS, *_XOR_DEMOS}))


def fewshot_demos(lang: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two ``(English passage, question in lang)`` demonstrations of :func:`fewshot_prompt`."""
    language_name(lang)  # unknown language → the same error as the other prompts
    if lang in _XQUAD_DEMO_QUESTIONS:
        q1, q2 = _XQUAD_DEMO_QUESTIONS[lang]
        return (_XQUAD_DEMO_PASSAGES[0], q1), (_XQUAD_DEMO_PASSAGES[1], q2)
    if lang in _XOR_DEMOS:
        return _XOR_DEMOS[lang]
    raise XqgError(f"no few-shot demonstrations for language '{lang}'")


def fewshot_prompt(lang: str, title: str, passage: str) -> str:
    """Two-shot prompt for a *base* causal model: the baseline a trained generator must beat.

    A base model has never seen the instruction format of :func:`causal_prompt`, so two solved
    examples (same format, a real human question in the target language) come first; the prompt
    then ends exactly like :func:`causal_prompt`, so :func:`clean_causal_output` applies. The
    demonstrations come from XQuAD *training* articles (XOR-TyDi *training* questions for bn fi ja
    ko te), never from the dev/test articles the generated queries are evaluated on, and each
    passage is at most 60 words so the prompt stays short.
    """
    name = language_name(lang)
    shots = "".join(
        f"Passage: {p}\nWrite a {name} question about the passage.\nQuestion: {q}\n\n"
        for p, q in fewshot_demos(lang)
    )
    return shots + causal_prompt(lang, title, passage)


PROMPTS["fewshot"] = fewshot_prompt
