"""The search behind ``xqg serve``: one encoder, one or two indexes, and the explanations of a hit.

:class:`SearchService` is plain Python (no web framework): :meth:`SearchService.search_batch`
encodes a batch of queries in one encoder call, searches the index (and the baseline index, with
the same query vectors), and for every hit reports

* the other index's rank of the same passage and the move (``rank_change`` > 0: the augmented
  index ranks it higher than the baseline does);
* how far fusion moved its score: the query against the fused vector and against the plain
  passage vector it was made from;
* the passage's generated queries closest to the query (those fusion used, by inner product of
  their stored vectors with the query vector: nothing is re-encoded).

Everything is read through the stages' own readers (:class:`~xqg.search.Searcher`,
:class:`~xqg.encode.EmbeddingShards`, :func:`~xqg.generate.store.read_table`,
:func:`~xqg.data.corpus.iter_corpus`); the folders are found from the index's manifests
(:mod:`xqg.serve.sources`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xqg.errors import XqgError
from xqg.serve.settings import ServeSettings
from xqg.serve.sources import IndexSources, resolve_sources
from xqg.types import Passage

SNIPPET_CHARS = 240


@dataclass(frozen=True)
class QueryItem:
    """One query of a request: text, hits wanted, the language if the caller knows it."""

    query: str
    k: int
    lang: str | None = None


class VectorTable:
    """Vectors of an embedding folder looked up by id; shards stay memory-mapped."""

    def __init__(self, path: str | Path) -> None:
        from xqg.encode import EmbeddingShards

        shards = EmbeddingShards.open(path)
        self.path = Path(path)
        self.manifest = shards.manifest
        self.dim = shards.dim
        self.ids: list[str] = []
        parts = []
        for ids, emb in shards:
            self.ids.extend(ids)
            parts.append(emb)
        # One shard (the usual small corpus) is indexed directly; several are stacked once.
        self.vectors = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.empty((0, 0))
        self.row_of = {x: i for i, x in enumerate(self.ids)}

    def rows(self, ids: Sequence[str]) -> np.ndarray:
        return np.asarray(self.vectors[[self.row_of[x] for x in ids]], dtype=np.float32)


class GeneratedQueries:
    """A generation folder's queries per passage, and (for an augmented index) their vectors.

    Only the queries the fusion used (its ``langs`` and first ``n`` samples) explain a hit.
    """

    def __init__(
        self,
        generated: Path | None,
        query_embeddings: Path | None,
        *,
        langs: Iterable[str] | None = None,
        n: int | None = None,
    ) -> None:
        self.texts: dict[tuple[str, str, int], str] = {}
        self.by_passage: dict[str, list[tuple[str, int, str]]] = {}
        if generated is not None:
            from xqg.generate.store import read_table

            table = read_table(generated)
            cols = table.to_pydict()
            for pid, lang, sample, text in zip(
                cols["passage_id"], cols["lang"], cols["sample"], cols["text"], strict=True
            ):
                self.texts[(pid, lang, int(sample))] = text
                self.by_passage.setdefault(pid, []).append((lang, int(sample), text))
            for rows in self.by_passage.values():
                rows.sort()
        self.vectors: VectorTable | None = None
        self.rows_of: dict[str, np.ndarray] = {}
        self.meta: dict[str, list[tuple[str, int]]] = {}
        if query_embeddings is not None and self.texts and not _holds_sums(query_embeddings):
            from xqg.encode import parse_generated_id

            self.vectors = VectorTable(query_embeddings)
            wanted = set(langs) if langs is not None else None
            rows: dict[str, list[int]] = {}
            for r, rid in enumerate(self.vectors.ids):
                lang, sample, pid = parse_generated_id(rid)
                if (wanted is None or lang in wanted) and (n is None or sample < n):
                    rows.setdefault(pid, []).append(r)
                    self.meta.setdefault(pid, []).append((lang, sample))
            self.rows_of = {pid: np.asarray(r, dtype=np.int64) for pid, r in rows.items()}

    @property
    def explains(self) -> bool:
        return self.vectors is not None

    def closest(self, pid: str, q: np.ndarray, top: int) -> list[dict[str, Any]]:
        """The ``top`` generated queries of ``pid`` with the highest inner product with ``q``."""
        rows = self.rows_of.get(pid)
        if rows is None or top == 0 or self.vectors is None:
            return []
        scores = np.asarray(self.vectors.vectors[rows], dtype=np.float32) @ q
        order = np.argsort(-scores, kind="stable")[:top]
        out = []
        for j in order:
            lang, sample = self.meta[pid][j]
            text = self.texts.get((pid, lang, sample))
            out.append({"lang": lang, "sample": sample, "text": text, "score": round(float(scores[j]), 5)})
        return out

    def of_passage(self, pid: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for lang, _, text in self.by_passage.get(pid, []):
            out.setdefault(lang, []).append(text)
        return out


def _holds_sums(query_embeddings: Path) -> bool:
    """Query vectors stored only as per-passage sums (``--storage sums``) cannot be ranked one by one."""
    from xqg.encode import EmbeddingShards

    return EmbeddingShards.open(query_embeddings).storage.is_sums


def detect_language(text: str) -> str:
    """The query's language by xqg's script rules + langid (``"und"`` when it cannot tell)."""
    from xqg.generate.langcheck import detect

    return detect(text)


class SearchService:
    """Search an index (and optionally a baseline index) and explain each hit.

    Args:
        index: the folder to serve (usually one built from fused, xQG-augmented vectors).
        baseline: an index over the same passages to compare rankings with.
        generated: an ``xqg generate`` folder (default: the one recorded in ``index``'s manifests).
        corpus: the passages' texts (default: the corpus recorded in the manifests).
        settings: limits and explanation settings.
        encoder: a loaded :class:`~xqg.models.encoder.BiEncoder` (default: the one the index
            records, loaded last, after every folder has been checked).
        dtype: run that encoder in this dtype instead (``bfloat16``: ~3× faster on CPUs with
            AVX-512 BF16 / AMX, and batches gain more).
    """

    def __init__(
        self,
        index: str | Path,
        *,
        baseline: str | Path | None = None,
        generated: str | Path | None = None,
        corpus: str | Path | None = None,
        settings: ServeSettings | None = None,
        encoder: Any | None = None,
        dtype: str | None = None,
    ) -> None:
        from xqg.config import EncoderConfig, parse_config
        from xqg.data.corpus import iter_corpus
        from xqg.search import Searcher, check_same_encoder

        self.settings = settings or ServeSettings()
        self.sources: IndexSources = resolve_sources(index)
        self.index = Searcher(index)
        enc_cfg = self.index.encoder_config
        if dtype is not None:  # a runtime setting: same vectors up to rounding, faster on bf16 CPUs
            enc_cfg = parse_config(EncoderConfig, {**enc_cfg.model_dump(), "dtype": dtype}, "--dtype")
        self.baseline = None
        self.baseline_sources: IndexSources | None = None
        if baseline is not None:
            self.baseline_sources = resolve_sources(baseline)
            self.baseline = Searcher(baseline)
            check_same_encoder(
                self.baseline.encoder_config, self.index.encoder_config, f"the one that built {index}"
            )
            if set(self.baseline.all_ids.tolist()) != set(self.index.all_ids.tolist()):
                raise XqgError(
                    f"{baseline} and {index} index different passages ({self.baseline.ntotal} vs "
                    f"{self.index.ntotal}): a baseline must index the same corpus"
                )

        corpus_path = Path(corpus) if corpus is not None else self.sources.corpus
        if corpus_path is None and self.baseline_sources is not None:
            corpus_path = self.baseline_sources.corpus
        if corpus_path is None:
            raise XqgError(
                f"{index}: its manifests do not lead to an existing corpus file; give it with --corpus"
            )
        if not corpus_path.is_file():
            raise XqgError(f"{corpus_path}: no such corpus file")
        wanted = set(self.index.all_ids.tolist())
        self.passages: dict[str, Passage] = {p.id: p for p in iter_corpus(corpus_path) if p.id in wanted}
        missing = len(wanted) - len(self.passages)
        if missing:
            raise XqgError(f"{corpus_path}: {missing} of the {len(wanted)} indexed passages are not in it")
        self.corpus_path = corpus_path

        gen = Path(generated) if generated is not None else self.sources.generated
        if gen is not None and not gen.is_dir():
            raise XqgError(f"{gen}: no such generation folder ('xqg generate' writes one)")
        self.generated_path = gen
        self.plain: VectorTable | None = None
        self.fused: VectorTable | None = None
        langs = n = None
        if self.sources.augmented and self.sources.plain_embeddings is not None:
            self.plain = VectorTable(self.sources.plain_embeddings)
            self.fused = VectorTable(self.sources.embeddings)  # type: ignore[arg-type]
            aug_cfg = self.fused.manifest["config"]
            langs, n = aug_cfg.get("langs"), aug_cfg.get("n")
        self.generated = GeneratedQueries(
            gen, self.sources.query_embeddings if self.plain is not None else None, langs=langs, n=n
        )

        if encoder is None:
            from xqg.models.encoder import BiEncoder

            encoder = BiEncoder(enc_cfg)
        else:
            check_same_encoder(encoder.config, self.index.encoder_config, f"the one that built {index}")
        self.encoder = encoder

    # -- reading -----------------------------------------------------------------------------
    @property
    def explains(self) -> bool:
        """Whether hits carry plain-vs-fused scores and closest generated queries."""
        return self.plain is not None

    def passage(self, pid: str) -> dict[str, Any] | None:
        p = self.passages.get(pid)
        if p is None:
            return None
        gen = self.generated.of_passage(pid)
        return {
            "id": p.id,
            "title": p.title,
            "text": p.text,
            "generated": gen,
            "generated_count": sum(len(v) for v in gen.values()),
        }

    def describe(self) -> dict[str, Any]:
        def one(s: Any, src: IndexSources | None) -> dict[str, Any] | None:
            if s is None:
                return None
            return {"name": s.path.name, "passages": s.ntotal, "augmented": bool(src and src.augmented)}

        return {
            "model": self.index.encoder_config.model,
            "passages": len(self.passages),
            "index": one(self.index, self.sources),
            "baseline": one(self.baseline, self.baseline_sources),
            "generated_queries": len(self.generated.texts),
            "explanations": self.explains,
        }

    # -- searching ---------------------------------------------------------------------------
    def search_batch(self, items: Sequence[QueryItem]) -> list[dict[str, Any]]:
        """Answer a batch of queries with one encoder call and one search per index."""
        if not items:
            return []
        vectors = self.encoder.encode_queries([it.query for it in items])
        k_max = max(it.k for it in items)
        depth = max(k_max, self.settings.rank_depth)
        main = self.index.search(vectors, min(depth, self.index.ntotal))
        base = self.baseline.search(vectors, min(depth, self.baseline.ntotal)) if self.baseline else None
        out = []
        for i, it in enumerate(items):
            q = vectors[i]
            m_ids, m_scores = main.docids[i], main.scores[i]
            lang, source = (it.lang, "given") if it.lang else (detect_language(it.query), "detected")
            answer: dict[str, Any] = {"query": it.query, "lang": lang, "lang_source": source, "k": it.k}
            if base is None:
                answer["results"] = self._hits(q, m_ids, m_scores, it.k, None, "baseline_rank", +1)
                answer["baseline"] = None
            else:
                b_ids, b_scores = base.docids[i], base.scores[i]
                b_rank = {d: r + 1 for r, d in enumerate(b_ids)}
                m_rank = {d: r + 1 for r, d in enumerate(m_ids)}
                answer["results"] = self._hits(q, m_ids, m_scores, it.k, b_rank, "baseline_rank", +1)
                answer["baseline"] = self._hits(q, b_ids, b_scores, it.k, m_rank, "augmented_rank", -1)
            out.append(answer)
        return out

    def _hits(
        self,
        q: np.ndarray,
        ids: list[str],
        scores: np.ndarray,
        k: int,
        other_rank: dict[str, int] | None,
        other_key: str,
        sign: int,
    ) -> list[dict[str, Any]]:
        """Top ``k`` hits as dicts; ``rank_change`` is how many places the augmented index is higher."""
        ids = ids[:k]
        explain = None
        if self.plain is not None and self.fused is not None and ids:
            plain_s = self.plain.rows(ids) @ q
            fused_s = self.fused.rows(ids) @ q
            explain = (plain_s, fused_s)
        hits = []
        for r, (pid, score) in enumerate(zip(ids, scores[:k], strict=True)):
            p = self.passages[pid]
            hit: dict[str, Any] = {
                "rank": r + 1,
                "id": pid,
                "title": p.title,
                "snippet": p.text[:SNIPPET_CHARS],
                "score": round(float(score), 5),
            }
            if other_rank is not None:
                other = other_rank.get(pid)
                hit[other_key] = other
                hit["rank_change"] = None if other is None else sign * (other - (r + 1))
            if explain is not None:
                plain, fused = float(explain[0][r]), float(explain[1][r])
                hit["explanation"] = {
                    "plain_score": round(plain, 5),
                    "fused_score": round(fused, 5),
                    "fusion_delta": round(fused - plain, 5),
                    "closest_queries": self.generated.closest(pid, q, self.settings.explain_queries),
                }
            hits.append(hit)
        return hits
