"""Training pairs for the cross-lingual question generator: (English text, language) → question.

Two sources, both real data shipped in the shared data folder:

* **XQuAD, train-split articles only** (origin ``"xquad"``): XQuAD is fully parallel, so every English
  paragraph has each of its questions in 11 other languages. A pair is (English paragraph, lang) →
  the question in ``lang``. Dev-split articles give the held-out validation pairs. Test-split
  articles are never used: :func:`check_no_test_articles` raises if one slips in (it compares
  article titles *and* paragraph texts, so a renamed article cannot sneak through).
* **XOR-TyDi training-question translations** (origin ``"xor-translation"``): the human English
  translation of a native question → the native question, for ar bn fi ja ko ru te. These are
  *questions, not passages*: their "source" is one English sentence. They are the only real data
  for bn fi ja ko te (not in XQuAD) and they teach the information-seeking question style of
  XOR-TyDi (the paper's target); they are not passage-grounded, so they are capped (below).
* **Extra pairs from a JSONL file** (origin ``"selftrain"``, optional): e.g. generated questions that
  retrieve their own train-split paragraph (``python -m xqg.experiments.selftrain``). One object a
  line, ``{"passage_id", "title", "text", "lang", "question"}`` (``text``: the English paragraph);
  :func:`read_extra_pairs` names the file, line and field of a bad line, and refuses a passage of the
  XQuAD dev or test split (by id, article or text) — self-training must not see held-out paragraphs.

Mixing (seeded, per epoch; see :func:`build_generator_data`): every language gets about the same
number of examples per epoch, ``per_lang`` (default: the number of XQuAD train questions in one
language, ≈ 694), so the ~33k XOR translations do not swamp the ~7.6k XQuAD pairs:

* an XQuAD language gets all its XQuAD pairs each epoch;
* an XOR language that is also in XQuAD (ar, ru) additionally gets ``round(xor_share * per_lang)``
  XOR pairs (default ``xor_share = 0.5``);
* an XOR-only language (bn fi ja ko te) gets ``per_lang`` XOR pairs;
* the XOR pairs of a language are a seeded permutation of its pool, consumed slice by slice across
  epochs (epoch 2 sees different questions than epoch 1 until the pool wraps round);
* extra pairs: ``extra_share=None`` puts *every* extra pair in every epoch; a number puts
  ``min(pool, round(extra_share × XQuAD pairs of the epoch))`` of them (``1.0``: as many generated
  as human pairs), read like the XOR pools: one seeded permutation, consumed slice by slice across
  epochs, wrapping round. They are grouped by paragraph with the XQuAD pairs of the same paragraph.

Each epoch is shuffled with ``numpy.random.Generator(PCG64([seed, epoch]))`` and the epochs are
concatenated into ``train.jsonl`` in exactly the order training reads them, so a run's data folder
records what it saw, example by example (``data_manifest.json`` has counts per language, origin and
epoch, plus the inputs' checksums).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.data.benchmarks.xor_tydi import XOR_LANGS, load_xor_translations
from xqg.data.benchmarks.xquad import XQUAD_LANGS, load_xquad, xquad_split
from xqg.errors import DataFormatError, XqgError
from xqg.io import atomic_open, sha256_file, write_json

ORIGIN_XQUAD = "xquad"
ORIGIN_XOR = "xor-translation"
ORIGIN_EXTRA = "selftrain"
#: Origins whose source is an XQuAD paragraph (``ref`` = its id): grouped by paragraph, split-checked.
GROUNDED_ORIGINS = frozenset({ORIGIN_XQUAD, ORIGIN_EXTRA})
#: The fields of one line of an extra-pairs file, all strings (only ``title`` may be empty).
EXTRA_FIELDS = ("passage_id", "title", "text", "lang", "question")
#: How the data manifest describes the extra pairs' share (key: ``extra_share is None``).
EXTRA_MIXING = {
    True: "; extra pairs: all of them in every epoch",
    False: "; extra pairs: min(pool, round(extra_share*XQuAD pairs of the epoch)) per epoch, "
    "slices of one seeded permutation (PCG64([seed, 7927])) across epochs",
}
#: XQuAD's languages other than English: the question languages of the XQuAD pairs.
XQUAD_TARGET_LANGS: tuple[str, ...] = tuple(lang for lang in XQUAD_LANGS if lang != "en")
DATA_MANIFEST = "data_manifest.json"
TRAIN_FILE = "train.jsonl"
DEV_FILE = "dev.jsonl"


@dataclass(frozen=True, slots=True)
class GenExample:
    """One training pair: generate ``target`` (a question in ``lang``) from the English ``source``.

    ``ref`` says where it came from (XQuAD paragraph id or ``"{lang}-en:{line}"``) so a data file
    can be audited against its inputs.
    """

    source: str
    title: str
    lang: str
    target: str
    origin: str
    ref: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def check_no_test_articles(examples: Iterable[GenExample], data_dir: Path | str | None = None) -> None:
    """Raise if any XQuAD example comes from a test-split article (by title or paragraph text).

    Why both: titles are what the split is defined on; texts catch a paragraph that reached the
    data some other way (e.g. a future source that quotes XQuAD under another name).
    """
    test_titles = set(xquad_split()["test"])
    bench = load_xquad(["en"], "test", data_dir)
    test_texts = {p.text for p in bench.paragraphs_in("test")}
    for ex in examples:
        article = ex.ref.rsplit("#", 1)[0] if ex.origin in GROUNDED_ORIGINS else None
        if article in test_titles or ex.source in test_texts:
            raise XqgError(
                f"a generator training example comes from XQuAD test article {ex.ref or ex.title!r}; "
                "test articles must never be used for training or validation"
            )


def xquad_pairs(
    split: str,
    langs: Sequence[str] = XQUAD_TARGET_LANGS,
    data_dir: Path | str | None = None,
) -> list[GenExample]:
    """(English paragraph, lang) → question pairs from the XQuAD articles of ``split`` (train/dev).

    ``"en"`` in ``langs`` adds the English questions (English → English). Order: language by
    language, paragraphs in release order.
    """
    if split not in ("train", "dev"):
        raise XqgError(f"generator data may use XQuAD 'train' or 'dev' articles, not '{split}'")
    bench = load_xquad(list(dict.fromkeys(["en", *langs])), split, data_dir)
    passages = {p.id: p for p in bench.paragraphs_in(split)}
    out: list[GenExample] = []
    for lang in langs:
        for q in bench.queries[lang]:
            (pid,) = bench.qrels[q.id]
            p = passages[pid]
            out.append(GenExample(p.text, p.title, lang, q.text, ORIGIN_XQUAD, pid))
    check_no_test_articles(out, data_dir)
    return out


def xor_pairs(lang: str, data_dir: Path | str | None = None) -> list[GenExample]:
    """XOR-TyDi train translations as (English question, lang) → native question pairs.

    Blank or one-sided lines are dropped; exact duplicate pairs are kept once.
    """
    seen: set[tuple[str, str]] = set()
    out: list[GenExample] = []
    for i, (native, english) in enumerate(load_xor_translations(lang, "train", data_dir)):
        native, english = native.strip(), english.strip()
        if not native or not english or (native, english) in seen:
            continue
        seen.add((native, english))
        out.append(GenExample(english, "", lang, native, ORIGIN_XOR, f"{lang}-en:{i + 1}"))
    return out


def held_out_passages(data_dir: Path | str | None = None) -> dict[str, str]:
    """XQuAD dev/test paragraphs and articles → their split name: keys are paragraph ids, article
    titles (as the split names them) and paragraph texts, so :func:`read_extra_pairs` can refuse a
    held-out paragraph however a pair names it."""
    split = xquad_split()
    bench = load_xquad(["en"], "all", data_dir)
    held: dict[str, str] = {}
    for name in ("dev", "test"):
        held.update(dict.fromkeys(split[name], name))
        for p in bench.paragraphs_in(name):
            held[p.id] = held[p.text] = name
    return held


def read_extra_pairs(path: Path | str, held_out: Mapping[str, str] | None = None) -> list[GenExample]:
    """Extra training pairs from a JSONL file (see the module docstring), origin ``"selftrain"``.

    Every line must be an object whose :data:`EXTRA_FIELDS` are strings (all non-empty but
    ``title``) and whose ``lang`` is a known language code; other keys (``rank``, ``sample``) are
    kept out of the example. ``held_out`` (:func:`held_out_passages`) refuses a pair whose
    ``passage_id``, article or ``text`` belongs to the XQuAD dev/test split. Each failure is a
    :class:`~xqg.errors.DataFormatError` naming the file, the line and the field.
    """
    from xqg import languages

    held = held_out or {}
    out: list[GenExample] = []
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataFormatError(path, f"cannot read the extra pairs ({exc.strerror or exc})") from None
    with fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, f"not JSON ({exc.msg})", line=i) from None
            if not isinstance(rec, dict):
                raise DataFormatError(path, "expected a JSON object", line=i)
            for name in EXTRA_FIELDS:
                value = rec.get(name)
                if not isinstance(value, str) or (name != "title" and not value.strip()):
                    what = "missing" if name not in rec else f"must be a non-empty string, got {value!r}"
                    raise DataFormatError(path, what, line=i, field=name)
            try:
                languages.name(rec["lang"])
            except XqgError as exc:
                raise DataFormatError(path, str(exc), line=i, field="lang") from None
            pid = rec["passage_id"]
            for name, key in (
                ("passage_id", pid),
                ("passage_id", pid.rsplit("#", 1)[0]),
                ("text", rec["text"]),
            ):
                if key in held:
                    raise DataFormatError(
                        path,
                        f"a paragraph of the XQuAD {held[key]} split ({pid}); extra pairs may only use "
                        "train-split paragraphs",
                        line=i,
                        field=name,
                    )
            out.append(GenExample(rec["text"], rec["title"], rec["lang"], rec["question"], ORIGIN_EXTRA, pid))
    if not out:
        raise DataFormatError(path, "no extra pairs in the file")
    return out


def _grouped(chunk: list[GenExample], size: int, rng: np.random.Generator) -> list[list[GenExample]]:
    """Groups of <= ``size`` pairs (same XQuAD paragraph; XOR pairs in arbitrary runs), shuffled."""
    by_source: dict[str, list[GenExample]] = {}
    loose: list[GenExample] = []
    for e in chunk:
        if e.origin in GROUNDED_ORIGINS:
            by_source.setdefault(e.ref, []).append(e)
        else:
            loose.append(e)
    groups: list[list[GenExample]] = []
    for ref in sorted(by_source):
        items = by_source[ref]
        order = rng.permutation(len(items))
        items = [items[i] for i in order]
        groups.extend(items[k : k + size] for k in range(0, len(items), size))
    loose = [loose[i] for i in rng.permutation(len(loose))]
    groups.extend(loose[k : k + size] for k in range(0, len(loose), size))
    return [groups[i] for i in rng.permutation(len(groups))]


@dataclass
class GeneratorData:
    """The built data: the training stream (epochs concatenated, in reading order) and dev pairs."""

    train: list[GenExample]
    dev: list[GenExample]
    manifest: dict[str, Any]


def _counts(examples: Sequence[GenExample]) -> dict[str, Any]:
    return {
        "total": len(examples),
        "by_lang": dict(sorted(Counter(e.lang for e in examples).items())),
        "by_origin": dict(sorted(Counter(e.origin for e in examples).items())),
        "by_lang_origin": dict(sorted(Counter(f"{e.lang}/{e.origin}" for e in examples).items())),
    }


def build_generator_data(
    *,
    xquad_langs: Sequence[str] = XQUAD_TARGET_LANGS,
    xor_langs: Sequence[str] = XOR_LANGS,
    include_english: bool = False,
    per_lang: int | None = None,
    xor_share: float = 0.5,
    epochs: int = 3,
    dev_per_lang: int = 8,
    group_size: int = 1,
    seed: int = 0,
    extra_pairs: Path | str | None = None,
    extra_share: float | None = None,
    xquad_dir: Path | str | None = None,
    xor_dir: Path | str | None = None,
) -> GeneratorData:
    """Build the seeded training stream and a small stratified dev set (see the module docstring).

    ``dev_per_lang`` XQuAD dev pairs per language (seeded choice) make the validation set: small,
    because a validation pass on CPU costs as much as a few training steps.

    ``group_size`` > 1 keeps up to that many pairs of the same XQuAD paragraph (a seeded mix of its
    languages and questions) consecutive in the stream, and XOR pairs in runs of the same size;
    the groups, not the pairs, are then shuffled. A packed batch (``xqg.train.generator``) computes a
    shared paragraph once, so a batch of 2 groups of 8 costs about 2 paragraphs, not 16.

    ``extra_pairs`` (a JSONL file, :func:`read_extra_pairs`) adds generated pairs to every epoch,
    ``extra_share`` of them relative to the epoch's XQuAD pairs (``None``: all; module docstring).
    """
    if epochs < 1:
        raise XqgError("epochs must be at least 1")
    if not 0 <= xor_share <= 1:
        raise XqgError("xor_share must be between 0 and 1")
    if extra_share is not None and extra_share < 0:
        raise XqgError("extra_share must be at least 0 (or None: every extra pair each epoch)")
    for lang in xor_langs:
        if lang not in XOR_LANGS:
            raise XqgError(f"XOR-TyDi has no translations for '{lang}'; valid: {' '.join(XOR_LANGS)}")
    extra = read_extra_pairs(extra_pairs, held_out_passages(xquad_dir)) if extra_pairs is not None else []
    langs_xq = list(dict.fromkeys([*xquad_langs, *(["en"] if include_english else [])]))
    xq_train = xquad_pairs("train", langs_xq, xquad_dir) if langs_xq else []
    xq_by_lang: dict[str, list[GenExample]] = {}
    for e in xq_train:
        xq_by_lang.setdefault(e.lang, []).append(e)
    if per_lang is None:
        per_lang = max((len(v) for v in xq_by_lang.values()), default=700)
    xor_pool = {lang: xor_pairs(lang, xor_dir) for lang in xor_langs}
    xor_quota = {
        lang: (round(xor_share * per_lang) if lang in xq_by_lang else per_lang) for lang in xor_langs
    }
    # One fixed permutation per language; epoch e reads the next slice (wrapping round the pool).
    xor_order = {
        lang: np.random.Generator(np.random.PCG64([seed, 7919, i])).permutation(len(pool))
        for i, (lang, pool) in enumerate(sorted(xor_pool.items()))
    }
    n_extra = len(extra) if extra_share is None else min(len(extra), round(extra_share * len(xq_train)))
    extra_order = np.random.Generator(np.random.PCG64([seed, 7927])).permutation(len(extra))
    stream: list[GenExample] = []
    per_epoch: list[dict[str, Any]] = []
    for epoch in range(epochs):
        chunk: list[GenExample] = [e for lang in langs_xq for e in xq_by_lang.get(lang, [])]
        chunk.extend(extra[int(extra_order[(epoch * n_extra + k) % len(extra)])] for k in range(n_extra))
        for lang, pool in sorted(xor_pool.items()):
            n = xor_quota[lang]
            if not pool or n == 0:
                continue
            order = xor_order[lang]
            idx = [int(order[(epoch * n + k) % len(pool)]) for k in range(n)]
            chunk.extend(pool[i] for i in idx)
        rng_epoch = np.random.Generator(np.random.PCG64([seed, epoch]))
        if group_size <= 1:
            stream.extend(chunk[i] for i in rng_epoch.permutation(len(chunk)))
        else:
            stream.extend(e for g in _grouped(chunk, group_size, rng_epoch) for e in g)
        per_epoch.append(_counts(chunk))

    xq_dev = xquad_pairs("dev", list(xq_by_lang) or list(XQUAD_TARGET_LANGS), xquad_dir)
    dev: list[GenExample] = []
    rng = np.random.Generator(np.random.PCG64([seed, 104729]))
    for lang in dict.fromkeys(e.lang for e in xq_dev):
        items = [e for e in xq_dev if e.lang == lang]
        pick = sorted(rng.choice(len(items), size=min(dev_per_lang, len(items)), replace=False).tolist())
        dev.extend(items[i] for i in pick)
    check_no_test_articles([*stream, *dev], xquad_dir)

    manifest: dict[str, Any] = {
        "config": {
            "xquad_langs": list(xquad_langs),
            "xor_langs": list(xor_langs),
            "include_english": include_english,
            "per_lang": per_lang,
            "xor_share": xor_share,
            "epochs": epochs,
            "dev_per_lang": dev_per_lang,
            "group_size": group_size,
            "seed": seed,
            **({"extra_pairs": str(extra_pairs), "extra_share": extra_share} if extra_pairs else {}),
        },
        "mixing": (
            "per epoch: all XQuAD train pairs of each XQuAD language; XOR translations: per_lang per "
            "XOR-only language, round(xor_share*per_lang) for XOR languages also in XQuAD; each "
            "epoch shuffled with PCG64([seed, epoch]); epochs concatenated in training order"
            + (EXTRA_MIXING[extra_share is None] if extra_pairs else "")
        ),
        "xquad_split": {k: len(v) for k, v in xquad_split().items()},
        "xquad_train_articles": sorted({e.ref.rsplit("#", 1)[0] for e in xq_train}),
        "xquad_dev_articles": sorted({e.ref.rsplit("#", 1)[0] for e in dev}),
        "xor_pool_sizes": {lang: len(p) for lang, p in sorted(xor_pool.items())},
        "xor_quota_per_epoch": xor_quota,
        **({"extra_pairs": _extra_record(extra_pairs, extra, n_extra)} if extra_pairs else {}),
        "epoch_size": len(stream) // epochs,
        "train": _counts(stream),
        "per_epoch": per_epoch,
        "dev": _counts(dev),
        "source_note": (
            "xor-translation examples have an English *question* as source, not a passage: they "
            "teach the language and the XOR-TyDi question style, not grounding"
        ),
    }
    return GeneratorData(train=stream, dev=dev, manifest=manifest)


def _extra_record(path: Path | str, pool: Sequence[GenExample], per_epoch: int) -> dict[str, Any]:
    """What ``data_manifest.json`` records of an extra-pairs file: name, checksum, counts."""
    return {
        "file": str(path),
        "sha256": sha256_file(path),
        "bytes": Path(path).stat().st_size,
        "pairs": len(pool),
        "per_epoch": per_epoch,
        "by_lang": dict(sorted(Counter(e.lang for e in pool).items())),
        "passages": len({e.ref for e in pool}),
    }


def write_examples(path: Path | str, examples: Iterable[GenExample]) -> int:
    """Write examples as JSONL atomically; returns the count."""
    n = 0
    with atomic_open(path) as fh:
        for e in examples:
            fh.write(e.to_json() + "\n")
            n += 1
    return n


def read_examples(path: Path | str) -> list[GenExample]:
    """Read a JSONL file written by :func:`write_examples`, naming the line of any bad record."""
    out: list[GenExample] = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(GenExample(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise DataFormatError(path, f"not a generator example ({exc})", line=i) from None
    return out


def write_generator_data(data: GeneratorData, out_dir: Path | str) -> dict[str, Any]:
    """Write ``train.jsonl``, ``dev.jsonl`` and, last, ``data_manifest.json`` (with checksums)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_examples(out / TRAIN_FILE, data.train)
    write_examples(out / DEV_FILE, data.dev)
    manifest = dict(data.manifest)
    manifest["files"] = {
        name: {"bytes": (out / name).stat().st_size, "sha256": sha256_file(out / name)}
        for name in (TRAIN_FILE, DEV_FILE)
    }
    write_json(out / DATA_MANIFEST, manifest)
    return manifest


__all__ = [
    "DATA_MANIFEST",
    "DEV_FILE",
    "EXTRA_FIELDS",
    "GROUNDED_ORIGINS",
    "ORIGIN_EXTRA",
    "ORIGIN_XOR",
    "ORIGIN_XQUAD",
    "TRAIN_FILE",
    "XQUAD_TARGET_LANGS",
    "GenExample",
    "GeneratorData",
    "build_generator_data",
    "check_no_test_articles",
    "held_out_passages",
    "read_extra_pairs",
    "read_examples",
    "write_examples",
    "write_generator_data",
    "xor_pairs",
    "xquad_pairs",
]
