"""Stage: texts → sharded embedding files + manifest.

Layout of an embedding folder::

    config.json            the encoder settings this folder is bound to (checked on resume)
    emb-00000.npy          float32 (rows, dim), memory-mappable
    ids-00000.txt          the ids of those rows, one per line, same order
    shard-00000.json       written last for each shard: rows, checksums → the shard is complete
    ids.txt                all ids in row order (written at the end)
    manifest.json          written last: the folder is complete

Resume: a rerun keeps every shard whose ``shard-*.json`` exists and whose files match their
checksums and whose ids equal the input's ids at that position; the rest is recomputed.
Encoding a shard only depends on that shard's texts, so the result is identical to an
uninterrupted run. Nothing is pickled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal

import numpy as np

from xqg.config import EncoderConfig
from xqg.errors import ManifestError, XqgError
from xqg.io import (
    atomic_open,
    atomic_path,
    bind_folder,
    read_json,
    read_manifest,
    sha256_file,
    write_json,
    write_manifest,
)
from xqg.progress import progress_bar
from xqg.query_store import EXTRA_ARRAYS, QueryStorage, decode, max_samples, store_shard
from xqg.types import Passage, Query

STAGE = "encode"
EXTRA_NAMES = sorted({name for arrays in EXTRA_ARRAYS.values() for name in arrays})
#: Stages whose folders hold embedding shards in this layout (augment writes fused passage vectors).
EMBEDDING_STAGES = ("encode", "augment")


def shard_names(i: int) -> tuple[str, str, str]:
    return f"emb-{i:05d}.npy", f"ids-{i:05d}.txt", f"shard-{i:05d}.json"


def extra_name(name: str, i: int) -> str:
    """File of a storage form's extra per-row array (``scale``, ``count``) of shard ``i``."""
    return f"{name}-{i:05d}.npy"


def _ids_text(ids: list[str]) -> str:
    return "".join(f"{x}\n" for x in ids)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _batched(it: Iterable[Any], n: int) -> Iterator[list[Any]]:
    it = iter(it)
    while chunk := list(islice(it, n)):
        yield chunk


def _shard_is_done(out_dir: Path, i: int, ids: list[str], cfg_hash: str) -> bool:
    emb_name, ids_name, meta_name = shard_names(i)
    meta_path = out_dir / meta_name
    if not meta_path.exists():
        return False
    meta = read_json(meta_path)
    if meta.get("config_hash") != cfg_hash or meta.get("input_rows", meta.get("rows")) != len(ids):
        return False
    emb_path, ids_path = out_dir / emb_name, out_dir / ids_name
    extra = [(out_dir / f["file"], f["sha256"]) for f in meta.get("extra", {}).values()]
    if not all(p.exists() for p in (emb_path, ids_path, *(e for e, _ in extra))):
        return False
    if sha256_file(emb_path) != meta["emb_sha256"] or sha256_file(ids_path) != meta["ids_sha256"]:
        return False
    if any(sha256_file(e) != h for e, h in extra):
        return False
    if "input_ids_sha256" in meta:
        return sha256_text(_ids_text(ids)) == meta["input_ids_sha256"]
    return ids_path.read_text(encoding="utf-8").splitlines() == ids


class _Writes:
    """A file seen by numpy as a plain stream: ``np.save`` on a real file writes through a dup'd C
    ``FILE*`` and loses the error of a short write (full disk, RLIMIT_FSIZE), leaving a truncated
    shard that its checksum would then vouch for; Python's own writes raise."""

    def __init__(self, fh: Any) -> None:
        self.write = fh.write


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(_Writes(fh), np.ascontiguousarray(array), allow_pickle=False)  # type: ignore[arg-type]


def write_embedding_shard(
    out_dir: Path,
    i: int,
    ids: list[str],
    emb: np.ndarray,
    cfg_hash: str,
    storage: QueryStorage | None = None,
    *,
    truncated: dict[str, list[int]] | None = None,
) -> dict[str, Any]:
    """Write shard ``i`` (vectors, ids) atomically, then its completion record; return the record.

    ``truncated`` (``{lang: [texts, cut at the max length]}``) is kept in the record, so a rerun
    that reuses the shard reports the same counts without tokenising it again.

    ``storage`` (generated queries only) stores the vectors in a lean form
    (:mod:`xqg.query_store`); the record then also names the input ids' checksum, which resume
    compares, since the stored rows (sums) need not be the input's rows.
    """
    emb_name, ids_name, meta_name = shard_names(i)
    lean = storage is not None and storage.form != "float32"
    row_ids, arrays = store_shard(ids, emb, storage) if lean else (ids, {"emb": emb.astype(np.float32)})
    _save_npy(out_dir / emb_name, arrays.pop("emb"))
    with atomic_open(out_dir / ids_name) as fh:
        fh.write(_ids_text(row_ids))
    meta: dict[str, Any] = {
        "shard": i,
        "rows": len(row_ids),
        "dim": int(emb.shape[1]),
        "config_hash": cfg_hash,
        "emb_sha256": sha256_file(out_dir / emb_name),
        "ids_sha256": sha256_file(out_dir / ids_name),
    }
    if lean:
        for name, array in arrays.items():
            _save_npy(out_dir / extra_name(name, i), array)
        meta["extra"] = {
            name: {"file": extra_name(name, i), "sha256": sha256_file(out_dir / extra_name(name, i))}
            for name in arrays
        }
        meta |= {"input_rows": len(ids), "input_ids_sha256": sha256_text(_ids_text(ids))}
        if storage.is_sums:
            meta |= {"max_samples": max_samples(ids), "langs": sorted({x.split(":", 1)[0] for x in ids})}
    if truncated is not None:
        meta["truncated"] = truncated
    write_json(out_dir / meta_name, meta)  # last: marks the shard complete
    return meta


def encode_to_shards(
    records: Iterable[tuple[str, str]] | Iterable[tuple[str, str, str | None]],
    out_dir: str | Path,
    *,
    encoder: Any | None = None,
    config: EncoderConfig | None = None,
    kind: Literal["query", "passage"] = "passage",
    shard_size: int = 50_000,
    total: int | None = None,
    inputs: dict[str, Any] | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    backend: str = "local",
    ray: Any | None = None,
    unique_ids: Literal["check", "given"] = "check",
    storage: QueryStorage | None = None,
) -> dict[str, Any]:
    """Encode ``(id, text)`` records into shards under ``out_dir``; return the manifest.

    ``storage`` (generated queries, ids ``lang:sample:passage``) writes a lean form: float16,
    int8 with a per-row scale, or per-(passage, language) sums (:mod:`xqg.query_store`); the
    default float32 writes exactly the files (and config hash) xqg always wrote.

    Ids must be unique. ``unique_ids="check"`` proves it across the whole input with a set of all
    ids (about 100 bytes per id); ``"given"`` checks within each shard only, for inputs unique by
    construction (generated-query ids ``lang:sample:passage``, proven complete and duplicate-free
    by the generation store), so memory stays flat for hundreds of millions of rows.

    ``backend="ray"`` encodes the shards on a Ray actor pool (``ray``: a
    :class:`~xqg.distributed.RayOptions`); files, manifest and resume are the same as local.

    Texts cut at the max length are counted per language (a record's optional third field, which
    :func:`encode_queries` and :func:`encode_generated_queries` fill; else ``und``), recorded in the
    manifest under ``truncation`` (shard records keep their counts for reruns)
    and warned about past :data:`~xqg.models.encoder.TRUNCATION_WARN_SHARE` of a language.

    ``records`` is consumed lazily, ``shard_size`` at a time, so memory holds one shard. The
    encoder is only loaded if some shard actually needs encoding (a finished folder reruns in
    seconds). ``overwrite`` discards a folder made with another configuration instead of failing.
    """
    from xqg.models.encoder import BiEncoder, TruncationCounter

    out_dir = Path(out_dir)
    cfg = encoder.config if encoder is not None else (config or EncoderConfig())
    max_len = cfg.query_max_length if kind == "query" else cfg.passage_max_length
    counter = TruncationCounter(encoder if encoder is not None else _TokenizerOnly(cfg), kind, max_len)
    storage = storage or QueryStorage()
    if storage.form != "float32" and kind != "query":
        raise XqgError(f"query storage '{storage.form}' is for generated queries, not {kind}s")
    run_cfg = {"encoder": cfg.model_dump(), "kind": kind, "shard_size": shard_size}
    if storage.form != "float32":  # float32 folders keep the config hash they always had
        run_cfg["storage"] = storage.describe()
    cfg_hash = bind_folder(out_dir, run_cfg, what="embeddings", overwrite=overwrite)

    seen: set[str] = set()
    shards: list[dict[str, Any]] = []
    reused = 0
    rows = 0
    dim: int | None = None
    what = "queries" if kind == "query" else "passages"
    bar = progress_bar(total=total, desc=f"encode {what}", unit=kind[0], disable=not show_progress)

    def tasks() -> Iterator[tuple[int, list[str], list[str], list[str | None]]]:
        for i, chunk in enumerate(_batched(records, shard_size)):
            ids = [str(r[0]) for r in chunk]
            # "check": one set over the whole input; "given": within this shard only.
            known = seen if unique_ids == "check" else set()
            for x in ids:
                if x in known:
                    raise XqgError(f"duplicate id '{x}' in the input to encode ({out_dir})")
                known.add(x)
            yield i, ids, [r[1] for r in chunk], [_record_lang(r) for r in chunk]

    def needs(task: tuple[int, list[str], list[str], list[str | None]]) -> tuple[list[str], str] | None:
        i, ids, texts, _ = task
        return None if _shard_is_done(out_dir, i, ids, cfg_hash) else (texts, kind)

    def compute(payload: tuple[list[str], str]) -> np.ndarray:
        nonlocal encoder
        if encoder is None:
            encoder = BiEncoder(cfg)
        return encoder.encode(payload[0], kind=payload[1], progress=bar.update)

    from xqg.distributed import EncodeWorker, make_runner, ordered_compute

    runner = make_runner(backend, compute, EncodeWorker, "encode", cfg, ray)

    try:
        for (i, ids, texts, langs), emb in ordered_compute(tasks(), needs, runner):
            if emb is None:
                meta = read_json(out_dir / shard_names(i)[2])
                reused += 1
                bar.update(meta.get("input_rows", meta["rows"]))
                if isinstance(meta.get("truncated"), dict):
                    counter.merge(meta["truncated"])
                else:  # a shard written before truncation was counted
                    counter.add(texts, langs)
            else:
                if encoder is not None:
                    counter.use(encoder)  # the encoder loaded for this run has the tokenizer already
                cut = counter.add(texts, langs)
                meta = write_embedding_shard(
                    out_dir, i, ids, emb, cfg_hash, storage, truncated=cut if counter.counted else None
                )
                if backend == "ray":
                    bar.update(meta.get("input_rows", meta["rows"]))
            rows += meta["rows"]
            dim = meta["dim"]
            shards.append(meta)
            emb = None  # release this shard's vectors before the next shard is encoded
    finally:
        bar.close()
        runner.close()

    # Stale shards beyond the end (an earlier run over a longer input) must not be picked up.
    j = len(shards)
    while (out_dir / shard_names(j)[2]).exists():
        for name in (*shard_names(j), *(extra_name(x, j) for x in EXTRA_NAMES)):
            (out_dir / name).unlink(missing_ok=True)
        j += 1

    with atomic_open(out_dir / "ids.txt") as fh:
        for i in range(len(shards)):
            fh.write((out_dir / shard_names(i)[1]).read_text(encoding="utf-8"))
    if encoder is not None:
        described_encoder = encoder.describe()
        model = described_encoder["model"]
        engine = described_encoder.get("engine", {"name": cfg.engine})  # encoders other than BiEncoder
    else:
        from xqg.models.sources import model_info

        model, engine = model_info(cfg.model), {"name": cfg.engine}
    counts = {"rows": rows, "shards": len(shards), "reused_shards": reused}
    truncation = counter.summary(f"{out_dir}: {what}")
    if truncation["counted"]:
        counts["truncated"] = truncation["truncated"]
    described = storage.describe()
    if storage.form != "float32":
        counts["queries"] = sum(m["input_rows"] for m in shards)
    if storage.is_sums:
        described["langs"] = sorted({lang for m in shards for lang in m["langs"]})
        described["max_samples"] = max((m["max_samples"] for m in shards), default=0)
    extras = [{x: f["file"] for x, f in m.get("extra", {}).items()} for m in shards]
    return write_manifest(
        out_dir,
        stage=STAGE,
        config=run_cfg,
        counts=counts,
        files=["ids.txt"] + [n for i, e in enumerate(extras) for n in (*shard_names(i)[:2], *e.values())],
        inputs=inputs,
        extra={
            "kind": kind,
            "dim": dim,
            "dtype": storage.dtype,
            "storage": described,
            "model": model,
            "engine": engine,
            "pooling": cfg.pooling,
            "normalize": cfg.normalize,
            "prefix": cfg.query_prefix if kind == "query" else cfg.passage_prefix,
            "max_length": max_len,
            "truncation": truncation,
            "id_file": "ids.txt",
            "shards": [
                {"emb": shard_names(m["shard"])[0], "ids": shard_names(m["shard"])[1], "rows": m["rows"], **e}
                for m, e in zip(shards, extras, strict=True)
            ],
        },
    )


def _record_lang(record: tuple[Any, ...]) -> str | None:
    """A record's language: its optional third field."""
    return record[2] if len(record) > 2 else None


class _TokenizerOnly:
    """``truncated()`` from the model's tokenizer alone, for when no encoder is loaded here (a
    Ray run, or a rerun that reuses every shard); loaded on first use. A model whose tokenizer
    cannot be loaded (a test fake) is not counted (``None``)."""

    def __init__(self, config: EncoderConfig) -> None:
        self.config = config
        self._tokenizer: Any = None

    def truncated(self, texts: list[str], *, kind: Literal["query", "passage"]) -> np.ndarray | None:
        from xqg.models.encoder import truncated_mask

        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from xqg.models.sources import resolve_model

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(resolve_model(self.config.model))
            except (OSError, ValueError, XqgError):
                self._tokenizer = False
        if self._tokenizer is False:
            return None
        return truncated_mask(self._tokenizer, self.config, texts, kind=kind)


def encode_corpus(
    passages: Iterable[Passage], out_dir: str | Path, *, config: EncoderConfig | None = None, **kw: Any
) -> dict[str, Any]:
    """Encode a corpus (streamed) as passages. The title is used if ``config.use_title``."""
    cfg = config or EncoderConfig()

    def records() -> Iterator[tuple[str, str]]:
        for p in passages:
            yield p.id, (p.full_text(cfg.title_sep) if cfg.use_title else p.text)

    return encode_to_shards(records(), out_dir, config=cfg, kind="passage", **kw)


def encode_queries(
    queries: Iterable[Query], out_dir: str | Path, *, config: EncoderConfig | None = None, **kw: Any
) -> dict[str, Any]:
    """Encode queries with the query prefix and max length (e.g. generated queries for augmentation)."""
    return encode_to_shards(
        ((q.id, q.text, q.lang) for q in queries), out_dir, config=config, kind="query", **kw
    )


@dataclass
class EmbeddingShards:
    """Read side of an embedding folder: memory-mapped shards, verified against the manifest."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path, *, verify: bool = True) -> EmbeddingShards:
        """Open a finished folder. With ``verify`` every listed file's size and checksum is checked
        (:func:`xqg.io.read_manifest`), and every shard's rows, dimension, dtype and id file
        against the manifest, so a tampered or swapped shard is an error naming it."""
        path = Path(path)
        manifest = read_manifest(path, verify=verify)
        if manifest.get("stage") not in EMBEDDING_STAGES:
            raise ManifestError(f"{path}: not an embedding folder (stage '{manifest.get('stage')}')")
        shards = cls(path, manifest)
        if verify:
            shards.check_layout()
        return shards

    def check_layout(self) -> None:
        """Shards, ids, dimension and model against the manifest (array headers and line counts)."""
        try:
            self._check_layout()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise ManifestError(
                f"{self.path / 'manifest.json'}: field {e}: missing or malformed ({type(e).__name__})"
            ) from None

    def _check_layout(self) -> None:
        m, where = self.manifest, self.path / "manifest.json"
        try:
            self.storage  # noqa: B018
        except XqgError as e:
            raise ManifestError(f"{where}: field 'storage': {e}") from None
        dim, total, shards = int(m["dim"]), int(m["counts"]["rows"]), list(m["shards"])
        listed = set(m["files"])
        self.encoder_config  # noqa: B018 - a malformed encoder config is an error here, not later
        model, enc = m.get("model"), (m.get("config") or {}).get("encoder") or {}
        if isinstance(model, dict) and "spec" in model and enc.get("model") not in (None, model["spec"]):
            raise ManifestError(
                f"{where}: field 'model': {model['spec']!r}, the config says {enc.get('model')!r}"
            )
        if m.get("id_file") not in listed:
            raise ManifestError(f"{where}: field 'id_file': {m.get('id_file')!r} is not a listed file")
        rows = 0
        for s in shards:
            for key in ("emb", "ids"):
                if s.get(key) not in listed:
                    raise ManifestError(f"{where}: field 'shards': {s.get(key)!r} is not a listed file")
            emb, _ = self.shard_arrays(s)
            n_ids = (self.path / s["ids"]).read_bytes().count(b"\n")
            if emb.ndim != 2 or emb.shape[1] != dim:
                raise ManifestError(f"{self.path / s['emb']}: shape {emb.shape}, the manifest says dim {dim}")
            if emb.shape[0] != s["rows"] or n_ids != s["rows"]:
                raise ManifestError(
                    f"{self.path / s['emb']}: {emb.shape[0]} rows and {n_ids} ids, "
                    f"the manifest says {s['rows']}"
                )
            rows += s["rows"]
        n_ids = (self.path / m["id_file"]).read_bytes().count(b"\n")
        if rows != total or (n_ids != total and not self.storage.is_sums):
            raise ManifestError(
                f"{where}: {rows} rows in shards, {n_ids} ids in {m['id_file']}, counts say {total}"
            )

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    @property
    def rows(self) -> int:
        return int(self.manifest["counts"]["rows"])

    @property
    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig.model_validate(self.manifest["config"]["encoder"])

    @property
    def storage(self) -> QueryStorage:
        """How the vectors are stored (:mod:`xqg.query_store`; float32 unless the manifest says)."""
        return QueryStorage.from_manifest(self.manifest)

    def _array(self, name: str) -> np.ndarray:
        try:
            return np.load(self.path / name, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as e:  # missing, truncated or not a .npy file
            raise ManifestError(f"{self.path / name}: cannot read the shard's array ({e})") from None

    def shard_arrays(self, s: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A shard's stored ``emb`` and the form's extra arrays, as read-only memory maps."""
        emb = self._array(s["emb"])
        extra = {}
        for name in EXTRA_ARRAYS.get(self.storage.form, {}):
            if name not in s:
                raise ManifestError(f"{self.path}: the manifest names no '{name}' file for {s['emb']}")
            extra[name] = self._array(s[name])
            if extra[name].shape[0] != emb.shape[0]:
                raise ManifestError(
                    f"{self.path / s[name]}: {extra[name].shape[0]} rows, {emb.shape[0]} vectors"
                )
        return emb, extra

    def __iter__(self) -> Iterator[tuple[list[str], np.ndarray]]:
        """Yield ``(ids, embeddings)`` per shard: read-only memory maps of float32 folders; float32
        arrays decoded from float16 and int8 ones. Sums are not one vector per id: only
        ``xqg augment`` reads them (and says so here)."""
        storage = self.storage
        if storage.is_sums:
            raise ManifestError(
                f"{self.path}: holds per-{storage.sum_by} sums of generated-query vectors, not one "
                "vector per query; only 'xqg augment' reads it (--storage float16 keeps vectors)"
            )
        for s in self.manifest["shards"]:
            ids = (self.path / s["ids"]).read_text(encoding="utf-8").splitlines()
            emb, extra = self.shard_arrays(s)
            if len(ids) != emb.shape[0]:
                raise ManifestError(f"{self.path / s['emb']}: {emb.shape[0]} rows but {len(ids)} ids")
            yield ids, (emb if storage.form == "float32" else decode(emb, extra, storage).astype(np.float32))

    def ids(self) -> list[str]:
        return (self.path / self.manifest["id_file"]).read_text(encoding="utf-8").splitlines()

    def load(self) -> tuple[list[str], np.ndarray]:
        """All ids and one in-memory array (small folders only: queries, XQuAD-sized corpora)."""
        ids: list[str] = []
        parts: list[np.ndarray] = []
        for i, e in self:
            ids.extend(i)
            parts.append(np.asarray(e))
        return ids, (np.concatenate(parts) if parts else np.empty((0, self.dim), np.float32))


def generated_query_id(lang: str, sample: int, passage_id: str) -> str:
    """Row id of an encoded generated query: ``"{lang}:{sample}:{passage_id}"``.

    Language codes and sample numbers never contain ':', so the passage id (which may) is
    everything after the second colon; :func:`parse_generated_id` inverts it exactly.
    """
    return f"{lang}:{sample}:{passage_id}"


def parse_generated_id(row_id: str) -> tuple[str, int, str]:
    lang, sample, passage_id = row_id.split(":", 2)
    return lang, int(sample), passage_id


def encode_generated_queries(
    gen_dir: str | Path,
    out_dir: str | Path,
    *,
    config: EncoderConfig | None = None,
    langs: Iterable[str] | None = None,
    n: int | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Encode a generation folder's queries with the *query* side of the encoder (the paper: max
    length 32), streaming shard by shard; row ids come from :func:`generated_query_id`.
    ``storage=QueryStorage(...)`` (passed on to :func:`encode_to_shards`) keeps them in a lean form."""
    import pyarrow.parquet as pq

    from xqg.generate.store import iter_generated, shard_files

    gen_dir = Path(gen_dir)
    langs = list(langs) if langs is not None else None
    # Row count from Parquet metadata (no data read); unknown when only the first n samples are kept.
    total = (
        sum(pq.ParquetFile(p).metadata.num_rows for *_, p in shard_files(gen_dir, langs))
        if n is None
        else None
    )
    records = (
        (generated_query_id(g.lang, g.sample, g.passage_id), g.text, g.lang)
        for g in iter_generated(gen_dir, langs=langs, n=n)
    )
    inputs = {"generated": str(gen_dir.resolve()), "langs": langs, "n": n}
    # (lang, sample, passage) is unique per generation folder (store.check_complete proved it per
    # shard, and shards hold disjoint passages), so the ids need no corpus-wide set.
    kw.setdefault("unique_ids", "given")
    return encode_to_shards(records, out_dir, config=config, kind="query", total=total, inputs=inputs, **kw)
