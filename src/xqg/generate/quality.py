"""Quality of generated queries, per language, and a filter that keeps the good ones.

Why: a generator can look fine in aggregate and still write English when asked for Telugu, repeat
one question five times, or ask about something its passage never mentions. Each of those is
cheap to measure, and the last one is measured the way it matters for retrieval, by *round trip*:
a query written for passage *p* should retrieve *p* with the baseline encoder. Keeping only
queries that pass (Alberti et al.'s round-trip consistency) is a well-known quality lever that the
reference code lacks; :func:`filter_queries` applies it and records what it dropped.

Numbers, per language (``docs/quality.md`` has the details):

* ``in_lang`` share of queries in the requested language (:mod:`xqg.generate.langcheck`);
* ``dup`` share of queries that repeat an earlier sample for the same passage (after stripping,
  collapsing whitespace and casefolding);
* ``rt@1`` / ``rt@{depth}`` share whose own passage is ranked first / within ``depth`` when the
  query is searched over the whole corpus with the baseline encoder;
* ``length`` mean length in characters;
* ``distinct-1`` / ``distinct-2`` distinct n-grams / all n-grams over all queries of the language
  (an aggregate, reported in a second table): space-separated words (Thai: phrases), characters
  for zh and ja.

Every generated query is encoded once (the encoder sorts by length and batches), and the ranks of
all own passages come from one pass of matrix products over the corpus matrix, or one batched
search of a given index folder.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from xqg.errors import XqgError
from xqg.evaluate.tables import LanguageTable
from xqg.generate import store
from xqg.generate.langcheck import check_level, in_language
from xqg.io import atomic_open, atomic_path, read_manifest, write_json, write_manifest
from xqg.search import exact_ranks
from xqg.types import GeneratedQuery, Passage

STAGE = "generate-report"
REPORT_NAME = "quality"
PER_QUERY_FILE = "quality-per-query.parquet"
#: Logographic languages (a character is about a morpheme): distinct-n counts characters there.
#: Thai also has no spaces between words, but its characters are letters of an alphabet (distinct-1
#: over them is ~0.01 for any text), so Thai counts its space-separated chunks (phrases) instead.
CHAR_TOKEN_LANGS = frozenset({"zh", "ja"})
#: Manifest keys that describe a folder rather than its generation settings (not copied by the filter).
_OWN_MANIFEST_KEYS = frozenset(
    {"stage", "created", "config", "config_hash", "counts", "inputs", "files", "environment"}
)
#: Encoder settings that change speed, not vectors: they may differ from the index's.
_SPEED_ONLY = frozenset({"batch_size", "device", "threads", "dtype"})


# --- per-query checks ----------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The form duplicates are compared in: stripped, inner whitespace collapsed, casefolded."""
    return " ".join(text.split()).casefold()


def tokens(text: str, lang: str) -> list[str]:
    """Tokens for distinct-n: casefolded space-separated words without punctuation; characters for zh/ja."""
    if lang in CHAR_TOKEN_LANGS:
        return [
            ch for ch in text.casefold() if not ch.isspace() and unicodedata.category(ch)[0] not in "PSZC"
        ]
    out = []
    for word in text.casefold().split():
        word = "".join(ch for ch in word if unicodedata.category(ch)[0] not in "PS")
        if word:
            out.append(word)
    return out


def distinct_n(texts: Sequence[list[str]], n: int) -> float | None:
    """Distinct n-grams / all n-grams over token lists (n-grams never cross two texts); None if none."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for toks in texts:
        for i in range(len(toks) - n + 1):
            seen.add(tuple(toks[i : i + n]))
            total += 1
    return len(seen) / total if total else None


def language_flags(texts: Sequence[str], langs: Sequence[str]) -> list[int]:
    """1/0 per query for "in the requested language".

    Every language is checked: by the full rules where :mod:`xqg.generate.langcheck` has them,
    else by its script only (:func:`~xqg.generate.langcheck.check_level`; the report says which).
    """
    return [int(in_language(t, lang)) for t, lang in zip(texts, langs, strict=True)]


def duplicate_flags(
    passage_ids: Sequence[str], langs: Sequence[str], samples: Sequence[int], texts: Sequence[str]
) -> np.ndarray:
    """1 where a query equals (after :func:`normalise`) an earlier sample of the same passage and language."""
    order = sorted(range(len(texts)), key=lambda i: (passage_ids[i], langs[i], samples[i]))
    seen: set[tuple[str, str, str]] = set()
    flags = np.zeros(len(texts), dtype=np.int8)
    for i in order:
        key = (passage_ids[i], langs[i], normalise(texts[i]))
        if key in seen:
            flags[i] = 1
        seen.add(key)
    return flags


def _check_encoder(encoder: Any, index_config: dict[str, Any], where: str | Path) -> None:
    """Refuse a query encoder that embeds differently from the one that built the index."""
    mine = encoder.config.model_dump()
    diff = {
        k: (v, index_config.get(k))
        for k, v in mine.items()
        if index_config.get(k) != v and k not in _SPEED_ONLY
    }
    if diff:
        raise XqgError(f"query encoder differs from the one that built {where}: {diff}")


def own_passage_ranks(
    texts: Sequence[str],
    passage_ids: Sequence[str],
    *,
    corpus: Sequence[Passage] | None = None,
    encoder: Any | None = None,
    index_dir: str | Path | None = None,
    depth: int = 10,
    show_progress: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Rank of each query's own passage (0 = not within ``depth``) and a description for manifests.

    With ``index_dir`` the queries search that index (its encoder settings, checked against
    ``encoder`` if one is given); otherwise the ``corpus`` is encoded in memory by ``encoder``
    (default: the baseline :class:`~xqg.config.EncoderConfig`) and ranked exactly.
    """
    from xqg.progress import progress_bar

    if depth < 1:
        raise XqgError(f"round-trip depth must be ≥ 1, got {depth}")
    if index_dir is not None:
        from xqg.search import Searcher

        searcher = Searcher(index_dir)
        index_cfg = searcher.manifest["encoder"]
        if encoder is None:
            from xqg.models.encoder import BiEncoder

            encoder = BiEncoder(searcher.encoder_config)
        else:
            _check_encoder(encoder, index_cfg, index_dir)
        known = set(searcher.all_ids.tolist())
        missing = sorted({p for p in passage_ids if p not in known})
        if missing:
            raise XqgError(
                f"{len(missing)} source passage(s) are not in the index {index_dir}, e.g. {missing[:3]}"
            )
        bar = progress_bar(total=len(texts), desc="encode queries", unit="q", disable=not show_progress)
        vecs = encoder.encode_queries(list(texts), progress=bar.update)
        bar.close()
        ranks = np.zeros(len(texts), dtype=np.int64)
        for start in range(0, len(texts), 4096):
            hits = searcher.search(vecs[start : start + 4096], depth)
            for j, docs in enumerate(hits.docids):
                pid = passage_ids[start + j]
                ranks[start + j] = docs.index(pid) + 1 if pid in docs else 0
        source = {"index": str(Path(index_dir).resolve()), "passages": searcher.ntotal}
    else:
        if corpus is None:
            raise XqgError("round trip needs the corpus (or an index folder) the queries were generated from")
        if encoder is None:
            from xqg.models.encoder import BiEncoder

            encoder = BiEncoder()
        row = {}
        for i, p in enumerate(corpus):
            if p.id in row:
                raise XqgError(f"duplicate passage id '{p.id}' in the corpus")
            row[p.id] = i
        missing = sorted({p for p in passage_ids if p not in row})
        if missing:
            raise XqgError(f"{len(missing)} source passage(s) are not in the corpus, e.g. {missing[:3]}")
        bar = progress_bar(
            total=len(corpus) + len(texts), desc="encode", unit="text", disable=not show_progress
        )
        pvecs = encoder.encode_passages(list(corpus), progress=bar.update)
        vecs = encoder.encode_queries(list(texts), progress=bar.update)
        bar.close()
        own = np.array([row[p] for p in passage_ids], dtype=np.int64)
        ranks = exact_ranks(vecs, pvecs, own, depth)
        source = {"corpus_passages": len(corpus), "search": "exact inner product, in memory"}
    describe = getattr(encoder, "describe", None)
    source["encoder"] = describe() if callable(describe) else {"config": encoder.config.model_dump()}
    return ranks, source


# --- the report ----------------------------------------------------------------------------------


@dataclass
class QualityReport:
    """Per-language quality of one generation folder.

    ``table`` holds the means of per-query values (``in_lang``, ``dup``, ``rt@1``, ``rt@{depth}``,
    ``length``); ``distinct`` the per-language distinct-1/2; ``per_query`` one row per query.
    """

    table: LanguageTable
    distinct: dict[str, dict[str, float | None]]
    counts: dict[str, int]
    depth: int | None
    per_query: pa.Table
    source: dict[str, Any] = field(default_factory=dict)
    out_dir: Path | None = None

    def value(self, lang: str, metric: str) -> float | None:
        """One number: a table metric or ``distinct-1``/``distinct-2`` for ``lang`` (or ``avg``)."""
        if metric.startswith("distinct-"):
            return self.distinct.get(lang, {}).get(metric)
        for row in self.table.rows:
            if row.label == lang:
                return row.values.get(metric)
        raise XqgError(f"no row '{lang}' in the quality report")

    def distinct_markdown(self, digits: int = 3) -> str:
        lines = ["| lang | tokens | distinct-1 | distinct-2 |", "|---|---|---:|---:|"]
        for lang, d in self.distinct.items():
            unit = "characters" if lang in CHAR_TOKEN_LANGS else ("phrases" if lang == "th" else "words")
            unit = "–" if lang == "avg" else unit
            cells = ["–" if d.get(m) is None else f"{d[m]:.{digits}f}" for m in ("distinct-1", "distinct-2")]
            lines.append(f"| {lang} | {unit} | {cells[0]} | {cells[1]} |")
        return "\n".join(lines) + "\n"

    def to_markdown(self, digits: int = 3) -> str:
        rt = (
            f"rt@1 / rt@{self.depth}: own passage ranked first / in the top {self.depth}"
            if self.depth
            else ""
        )
        notes = [
            "in_lang: share in the requested language"
            + (
                f" (script only for {', '.join(script_only)}: see docs/quality.md)"
                if (script_only := [x for x in self.distinct if x != "avg" and check_level(x) == "script"])
                else ""
            ),
            "dup: share repeating an earlier sample of the same passage",
            *([rt] if rt else []),
            "length: mean characters",
        ]
        return (
            self.table.to_markdown(digits)
            + "\n"
            + "; ".join(notes)
            + ".\n\n**Distinct n-grams over all queries of a language**\n\n"
            + self.distinct_markdown(digits)
            + "\n`avg` = mean over languages. Distinct-n falls as the number of queries grows: compare "
            "folders with the same passages and samples.\n"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table.to_dict(),
            "distinct": self.distinct,
            "counts": self.counts,
            "depth": self.depth,
            "round_trip": self.source,
        }


def _langs_in(table: pa.Table, langs: Sequence[str] | None) -> list[str]:
    present = sorted(set(table["lang"].to_pylist()))
    if langs is None:
        return present
    return list(dict.fromkeys(list(langs)))


def quality_report(
    gen_dir: str | Path,
    corpus: Sequence[Passage] | None = None,
    *,
    encoder: Any | None = None,
    index_dir: str | Path | None = None,
    depth: int = 10,
    round_trip: bool = True,
    langs: Sequence[str] | None = None,
    n: int | None = None,
    out_dir: str | Path | None = None,
    show_progress: bool = False,
) -> QualityReport:
    """Measure the queries of a generation folder per language (see the module docstring).

    ``langs`` restricts (and orders) the languages, ``n`` keeps the first ``n`` samples per
    passage. ``round_trip=False`` skips the encoder entirely (language, duplicates, length and
    distinct-n only). With ``out_dir`` the report is written there: ``quality.md``,
    ``quality.json``, ``quality-per-query.parquet`` (each query with its checks, for reading the
    failures) and, last, ``manifest.json``.
    """
    gen_dir = Path(gen_dir)
    gen_manifest = read_manifest(gen_dir, stage=store.STAGE)
    table = store.read_table(gen_dir, langs=langs, n=n)
    order = _langs_in(table, langs)
    pids = table["passage_id"].to_pylist()
    qlangs = table["lang"].to_pylist()
    samples = table["sample"].to_pylist()
    texts = table["text"].to_pylist()
    qids = [f"{p}\t{lang}\t{s}" for p, lang, s in zip(pids, qlangs, samples, strict=True)]
    qid_lang = dict(zip(qids, qlangs, strict=True))

    in_lang = language_flags(texts, qlangs)
    dup = duplicate_flags(pids, qlangs, samples, texts)
    length = np.array([len(t.strip()) for t in texts], dtype=np.int64)
    values: dict[str, dict[str, float | None]] = {
        "in_lang": dict(zip(qids, in_lang, strict=True)),
        "dup": dict(zip(qids, dup.tolist(), strict=True)),
    }
    ranks: np.ndarray | None = None
    source: dict[str, Any] = {}
    if round_trip:
        ranks, source = own_passage_ranks(
            texts,
            pids,
            corpus=corpus,
            encoder=encoder,
            index_dir=index_dir,
            depth=depth,
            show_progress=show_progress,
        )
        values["rt@1"] = dict(zip(qids, (ranks == 1).astype(int).tolist(), strict=True))
        if depth != 1:
            values[f"rt@{depth}"] = dict(zip(qids, (ranks > 0).astype(int).tolist(), strict=True))
    values["length"] = dict(zip(qids, length.tolist(), strict=True))
    lang_table = LanguageTable.build(values, qid_lang, langs=order, title="Quality of generated queries")

    by_lang: dict[str, list[list[str]]] = {lang: [] for lang in order}
    for t, lang in zip(texts, qlangs, strict=True):
        by_lang[lang].append(tokens(t, lang))
    distinct: dict[str, dict[str, float | None]] = {
        lang: {f"distinct-{k}": distinct_n(toks, k) for k in (1, 2)} for lang, toks in by_lang.items()
    }
    avg: dict[str, float | None] = {}
    for k in (f"distinct-{i}" for i in (1, 2)):
        vals = [v for v in (d[k] for d in distinct.values()) if v is not None]
        avg[k] = math.fsum(vals) / len(vals) if vals else None
    distinct["avg"] = avg
    counts = {lang: len(by_lang[lang]) for lang in order}

    rank_list = ranks.tolist() if ranks is not None else [0] * len(texts)
    per_query = pa.table(
        {
            "passage_id": pa.array(pids, pa.string()),
            "lang": pa.array(qlangs, pa.string()),
            "sample": pa.array(samples, pa.int16()),
            "text": pa.array(texts, pa.string()),
            "in_lang": pa.array([None if v is None else bool(v) for v in in_lang], pa.bool_()),
            "dup": pa.array(dup.astype(bool)),
            "rank": pa.array([None if r == 0 else int(r) for r in rank_list], pa.int32()),
            "length": pa.array(length, pa.int32()),
        }
    )
    report = QualityReport(
        table=lang_table,
        distinct=distinct,
        counts=counts,
        depth=depth if round_trip else None,
        per_query=per_query,
        source=source,
    )
    if out_dir is not None:
        report.out_dir = _write_report(report, out_dir, gen_dir, gen_manifest, n=n, langs=order)
    return report


def _write_report(
    report: QualityReport,
    out_dir: str | Path,
    gen_dir: Path,
    gen_manifest: dict[str, Any],
    *,
    n: int | None,
    langs: list[str],
) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    with atomic_open(out / f"{REPORT_NAME}.md") as fh:
        fh.write(report.to_markdown())
    write_json(out / f"{REPORT_NAME}.json", report.to_dict())
    with atomic_path(out / PER_QUERY_FILE) as tmp:
        pq.write_table(report.per_query, tmp, compression="zstd")
    write_manifest(
        out,
        stage=STAGE,
        config={"depth": report.depth, "round_trip": report.depth is not None, "n": n, "langs": langs},
        counts={
            "queries": report.per_query.num_rows,
            **{f"queries.{k}": v for k, v in report.counts.items()},
        },
        files=[f"{REPORT_NAME}.md", f"{REPORT_NAME}.json", PER_QUERY_FILE],
        inputs={
            "generated": str(gen_dir.resolve()),
            "generated_config_hash": gen_manifest.get("config_hash"),
        },
        extra={"round_trip": report.source},
    )
    return out


# --- the filter ----------------------------------------------------------------------------------


def filter_queries(
    gen_dir: str | Path,
    corpus: Sequence[Passage] | None,
    out_dir: str | Path,
    *,
    lang_check: bool = True,
    round_trip_depth: int | None = 10,
    drop_duplicates: bool = False,
    encoder: Any | None = None,
    index_dir: str | Path | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Copy a generation folder keeping only queries that pass the chosen checks; return the manifest.

    A query is kept if it is in the requested language (``lang_check``), its own passage is within
    the top ``round_trip_depth`` (``None`` = no round-trip check) and, with ``drop_duplicates``, it
    does not repeat an earlier sample of its passage. The output has the same store format and shard
    layout (a shard whose rows all fail is written empty); kept rows keep their original ``sample``
    numbers, so samples may have gaps and :func:`~xqg.generate.store.check_complete` no longer
    holds. The manifest keeps the source's generation settings and adds ``filter``: the source
    folder, the settings, and per language the rows read, kept, dropped and failing each check.
    """
    gen_dir, out = Path(gen_dir), Path(out_dir)
    if not lang_check and round_trip_depth is None and not drop_duplicates:
        raise XqgError(
            "nothing to filter: enable the language check, the round-trip check or duplicate removal"
        )
    if out.resolve() == gen_dir.resolve():
        raise XqgError("the filtered folder must differ from the source folder")
    src_manifest = read_manifest(gen_dir, stage=store.STAGE)
    parts = [
        (lang, shard, pq.read_table(path, schema=store.SCHEMA))
        for lang, shard, path in store.shard_files(gen_dir)
    ]
    table = pa.concat_tables([t for _, _, t in parts]) if parts else store.SCHEMA.empty_table()
    pids = table["passage_id"].to_pylist()
    qlangs = table["lang"].to_pylist()
    samples = table["sample"].to_pylist()
    texts = table["text"].to_pylist()

    keep = np.ones(len(texts), dtype=bool)
    fails: dict[str, np.ndarray] = {}
    if lang_check:
        fails["language"] = np.array(language_flags(texts, qlangs), dtype=np.int8) == 0
    source: dict[str, Any] = {}
    if round_trip_depth is not None:
        ranks, source = own_passage_ranks(
            texts,
            pids,
            corpus=corpus,
            encoder=encoder,
            index_dir=index_dir,
            depth=round_trip_depth,
            show_progress=show_progress,
        )
        fails["round_trip"] = ranks == 0
    if drop_duplicates:
        fails["duplicate"] = duplicate_flags(pids, qlangs, samples, texts).astype(bool)
    for bad in fails.values():
        keep &= ~bad

    per_lang: dict[str, dict[str, int]] = {}
    lang_arr = np.array(qlangs, dtype=object)
    for lang in sorted(set(qlangs)):
        m = lang_arr == lang
        entry = {"input": int(m.sum()), "kept": int((keep & m).sum()), "dropped": int((~keep & m).sum())}
        entry.update({f"failed_{reason}": int((bad & m).sum()) for reason, bad in fails.items()})
        per_lang[lang] = entry

    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    for old in list(out.glob("queries-*.parquet")) + list(out.glob("queries-*.json")):
        old.unlink()
    files: list[str] = []
    offset = 0
    for lang, shard, part in parts:
        rows = [
            GeneratedQuery(pids[i], qlangs[i], int(samples[i]), texts[i])
            for i in range(offset, offset + part.num_rows)
            if keep[i]
        ]
        store.write_shard(out, lang, shard, rows, extra={"source_rows": part.num_rows})
        files += [store.shard_name(lang, shard), store.shard_meta_name(lang, shard)]
        offset += part.num_rows

    settings = {
        "lang_check": lang_check,
        "round_trip_depth": round_trip_depth,
        "drop_duplicates": drop_duplicates,
    }
    extra = {k: v for k, v in src_manifest.items() if k not in _OWN_MANIFEST_KEYS}
    extra["filter"] = {
        "source": str(gen_dir.resolve()),
        "source_config_hash": src_manifest.get("config_hash"),
        "settings": settings,
        "round_trip": source,
        "per_lang": per_lang,
        "note": "kept rows keep their sample numbers; samples may have gaps",
    }
    return write_manifest(
        out,
        stage=store.STAGE,
        config={**src_manifest.get("config", {}), "filter": settings},
        counts={
            **src_manifest.get("counts", {}),
            "queries": int(keep.sum()),
            "dropped": int((~keep).sum()),
            **{f"queries.{lang}": e["kept"] for lang, e in per_lang.items()},
        },
        files=files,
        inputs={**src_manifest.get("inputs", {}), "filtered_from": str(gen_dir.resolve())},
        extra=extra,
    )
