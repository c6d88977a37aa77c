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

from xqg.errors import XqgError

#: ISO 639-1 code → the English name the prompts use (the paper's ``lang2mT5`` for its 7 languages).
LANGUAGE_NAMES: dict[str, str] = {
    "ar": "Arabic",
    "bn": "Bengali",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "hi": "Hindi",
    "ja": "Japanese",
    "ko": "Korean",
    "ro": "Romanian",
    "ru": "Russian",
    "te": "Telugu",
    "th": "Thai",
    "tr": "Turkish",
    "vi": "Vietnamese",
    "zh": "Chinese",
}

#: The paper's target languages (XOR-TyDi), in its order.
PAPER_LANGS: tuple[str, ...] = ("ar", "bn", "fi", "ja", "ko", "ru", "te")

#: What the causal prompt's answer ends at: one question per line.
CAUSAL_STOP = "\n"


def language_name(lang: str) -> str:
    try:
        return LANGUAGE_NAMES[lang]
    except KeyError:
        raise XqgError(
            f"no prompt name for language '{lang}'; known: {', '.join(sorted(LANGUAGE_NAMES))}"
        ) from None


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
