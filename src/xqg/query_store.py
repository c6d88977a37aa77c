"""How the vectors of generated queries are stored: the forms ``xqg encode-generated`` writes and
``xqg augment`` reads.

Generated-query vectors dominate xqg's disk at scale (the paper's 18M passages × 35 queries at
768 dimensions are 1.9 TB as float32), yet fusion only needs, per passage, the *sum* and *count*
of the selected queries' vectors. The forms trade what can still be selected later for bytes:

==========  ============================================================  ===========================
form        stored per shard                                              selectable in ``augment``
==========  ============================================================  ===========================
``float32`` ``emb`` float32 (rows, dim): one row per query (the default,  languages, ``n``, anything
            byte for byte what xqg always wrote)
``float16`` ``emb`` float16: half the bytes                               languages, ``n``
``int8``    ``emb`` int8 + ``scale`` float32 per row: ``v ≈ q · scale``   languages, ``n``
            with ``scale = max|v| / 127`` of that row (symmetric, one
            scale per vector), so each component is off by ≤ scale / 2
``sums``    ``emb`` = Σ of a group's vectors (float32, or float16 with    languages (``sum_by:
            ``sum_dtype``) + ``count`` int32: one row per (passage,       language``) or nothing
            language) (``sum_by: language``) or per passage                (``sum_by: passage``);
            (``sum_by: passage``)                                          never fewer samples
==========  ============================================================  ===========================

Sums are taken in float64 within each encoding shard and rounded to the stored dtype once; a
group that straddles two shards becomes two rows, which ``augment`` adds like any other rows of
the same passage. Sum row ids are ``"{lang}:{passage_id}"`` (``sum_by: language``) or the passage
id (``sum_by: passage``); the manifest records the languages summed and ``max_samples``, the most
samples of one (passage, language) that went in, so ``augment`` can refuse a selection the sums
cannot honour (``--n`` below ``max_samples``, or a language subset of per-passage sums) instead of
silently fusing more queries than asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xqg.errors import XqgError

FORMS = ("float32", "float16", "int8", "sums")
SUM_BY = ("language", "passage")
SUM_DTYPES = ("float32", "float16")
#: Extra per-shard arrays of each form (besides ``emb`` and the ids), with their dtype.
EXTRA_ARRAYS: dict[str, dict[str, str]] = {"int8": {"scale": "float32"}, "sums": {"count": "int32"}}


def _choose(value: str, valid: Sequence[str], what: str) -> str:
    if value not in valid:
        raise XqgError(f"unknown {what} '{value}'; choose one of: {', '.join(valid)}")
    return value


@dataclass(frozen=True)
class QueryStorage:
    """A storage form (see the module docstring); ``sum_by``/``sum_dtype`` only matter for sums."""

    form: str = "float32"
    sum_by: str = "language"
    sum_dtype: str = "float32"

    def __post_init__(self) -> None:
        _choose(self.form, FORMS, "query storage form")
        _choose(self.sum_by, SUM_BY, "sum grouping (sum_by)")
        _choose(self.sum_dtype, SUM_DTYPES, "sum dtype")

    @property
    def is_sums(self) -> bool:
        return self.form == "sums"

    @property
    def dtype(self) -> str:
        """The dtype of the ``emb`` arrays on disk."""
        return self.sum_dtype if self.is_sums else self.form

    def describe(self) -> dict[str, Any]:
        """What a manifest records (and what binds a folder's config when not the default)."""
        out: dict[str, Any] = {"form": self.form, "dtype": self.dtype}
        if self.is_sums:
            out["sum_by"] = self.sum_by
        return out

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> QueryStorage:
        """The form of an embedding folder; folders written before forms existed are float32."""
        s = manifest.get("storage") or {}
        form = s.get("form", "float32")
        return cls(
            form, s.get("sum_by", "language"), s.get("dtype", "float32") if form == "sums" else "float32"
        )


def quantize_int8(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 with one float32 scale per row: ``q = round(v / s)``, ``s = max|v| / 127``."""
    v = np.asarray(v, dtype=np.float32)
    amax = np.abs(v).max(axis=1) if len(v) else np.zeros(0, np.float32)
    scale = (amax / np.float32(127.0)).astype(np.float32)
    scale[scale == 0] = 1.0  # an all-zero row stays zero
    q = np.clip(np.rint(v / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def decode(emb: np.ndarray, extra: dict[str, np.ndarray], storage: QueryStorage) -> np.ndarray:
    """Stored rows → float64 vectors (sums stay sums); ``extra`` holds the rows' ``scale``."""
    out = np.asarray(emb, dtype=np.float64)
    if storage.form == "int8":
        out *= np.asarray(extra["scale"], dtype=np.float64)[:, None]
    return out


def group_key(row_id: str, storage: QueryStorage) -> str:
    """The sum row a generated query ``lang:sample:passage`` goes into."""
    lang, _sample, pid = row_id.split(":", 2)
    return f"{lang}:{pid}" if storage.sum_by == "language" else pid


def parse_sum_id(row_id: str, storage: QueryStorage) -> tuple[str | None, str]:
    """``(language or None, passage id)`` of a sum row id."""
    if storage.sum_by == "passage":
        return None, row_id
    lang, pid = row_id.split(":", 1)
    return lang, pid


def store_shard(
    ids: list[str], emb: np.ndarray, storage: QueryStorage
) -> tuple[list[str], dict[str, np.ndarray]]:
    """One encoded shard of generated queries in ``storage``'s form: ``(row ids, arrays)``;
    the arrays are ``emb`` plus the form's extra arrays (:data:`EXTRA_ARRAYS`)."""
    if storage.form in ("float32", "float16"):
        return ids, {"emb": np.ascontiguousarray(emb, dtype=storage.form)}
    if storage.form == "int8":
        q, scale = quantize_int8(emb)
        return ids, {"emb": q, "scale": scale}
    import scipy.sparse as sp

    keys: dict[str, int] = {}
    group = np.fromiter((keys.setdefault(group_key(x, storage), len(keys)) for x in ids), np.int64, len(ids))
    member = sp.csr_matrix((np.ones(len(ids)), (group, np.arange(len(ids)))), shape=(len(keys), len(ids)))
    sums = member @ np.asarray(emb, dtype=np.float64)
    counts = np.bincount(group, minlength=len(keys)).astype(np.int32)
    return list(keys), {"emb": sums.astype(storage.sum_dtype), "count": counts}


def max_samples(ids: Sequence[str]) -> int:
    """The most samples of one (passage, language) among generated-query ids (sample numbers
    start at 0, so this is the largest sample number + 1)."""
    return max((int(x.split(":", 2)[1]) + 1 for x in ids), default=0)
