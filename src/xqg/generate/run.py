"""Stage: passages → generated queries (Parquet shards per language) + manifest, resumable.

The on-disk format is :mod:`xqg.generate.store`'s; this module decides what to (re)compute.

Passages are streamed ``shard_size`` at a time. For each shard, every target language is
generated in one pass (the causal backend shares a passage's prefill across its languages), then
one file per (language, shard) is written with :func:`store.write_shard`, whose completion record
carries this run's config hash and a hash of the shard's passage ids.

Resume: a rerun keeps a shard when, for every language, the completion record is intact (file
checksum) and carries the same config hash and passage-id hash; otherwise the whole shard is
generated again. Output never depends on what ran before in the process — each shard samples
from seeds derived from ``(config.seed, shard index)`` and batches are formed deterministically —
so a run killed at any point and rerun gives the same table as an uninterrupted run.

The languages are part of the config hash: they change batch composition and so the samples, and
a folder must not mix queries from two runs. A folder made with other settings is refused unless
``overwrite``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from xqg.config import GeneratorConfig
from xqg.errors import XqgError
from xqg.generate import store
from xqg.generate.backends import (
    Generator,
    adapter_fingerprint,
    decoding_params,
    derive_seed,
    describe_generator,
    resolved_config,
)
from xqg.generate.engines import load_generator, resolve_engine
from xqg.generate.spec import adapter_name
from xqg.io import bind_folder, config_hash, read_json, write_manifest
from xqg.models.encoder import resolve_device
from xqg.models.hardware import resolve_dtype
from xqg.progress import progress_bar
from xqg.types import GeneratedQuery, Passage


def _batched(it: Iterable[Passage], n: int) -> Iterator[list[Passage]]:
    it = iter(it)
    while chunk := list(islice(it, n)):
        yield chunk


def ids_hash(ids: list[str]) -> str:
    """Fingerprint of a shard's passage ids, in order (what a reused shard must have been made from)."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def run_config(
    config: GeneratorConfig, shard_size: int, *, adapter: str | None | bool = True
) -> dict[str, Any]:
    """Everything that determines the folder's content; its hash binds the folder.

    The engine is recorded as resolved (``auto`` means different engines on different machines,
    and their samples differ), and only when it is not transformers: folders made before engines
    existed were all made by transformers, and keep their hash. The adapter is recorded by
    :func:`adapter_name`; ``adapter`` (a path string) rebuilds the form earlier versions wrote,
    with the adapter's absolute path, so their folders keep resuming (:func:`legacy_run_configs`).
    """
    gen = config.model_dump()
    gen["adapter"] = adapter_name(config.adapter) if adapter is True else adapter
    gen.pop("engine", None)
    engine = resolve_engine(config)
    if not gen.get("refill", True) or engine == "llama.cpp":
        # Folders made before continuous batching existed were made by the batch loop (as
        # llama.cpp's always are), and keep their hash.
        gen.pop("refill")
    # dtype as resolved: "auto" is float32 on one machine and bfloat16 on another, and their
    # samples differ; a folder made with an explicit dtype keeps its hash.
    gen["dtype"] = resolve_dtype(config.dtype, str(resolve_device(config.device)))
    if engine != "transformers":
        gen["engine"] = engine
    return {
        "generator": gen,
        "shard_size": shard_size,
        "adapter_sha256": (adapter_fingerprint(config.adapter) or {}).get("sha256"),
    }


#: (earlier, present) default ``batch_size``: a folder made at the earlier default resumes with it.
LEGACY_BATCH = (22, 132)


def legacy_run_configs(out_dir: Path, config: GeneratorConfig, shard_size: int) -> list[dict[str, Any]]:
    """The run config as earlier xqg versions wrote it: before adapters were recorded by name (the
    adapter's absolute path on this machine, and the path the folder itself recorded: a folder
    copied from another machine; the adapter's checksums in the config still have to match), and
    before continuous batching (no ``refill``: made by the batch loop, which then resumes it), and
    at the earlier default batch size (:data:`LEGACY_BATCH`, which then resumes it)."""
    out: list[dict[str, Any]] = []
    variants = [config]
    if config.refill:  # a folder made before continuous batching resumes with the batch loop
        variants.append(config.model_copy(update={"refill": False}))
    if config.batch_size == LEGACY_BATCH[1]:  # a folder made at the earlier default batch size
        variants += [c.model_copy(update={"batch_size": LEGACY_BATCH[0]}) for c in list(variants)]
    if config.adapter is None:
        return [run_config(c, shard_size) for c in variants[1:]]
    paths = {config.adapter}
    recorded = (out_dir / "config.json").exists() and read_json(out_dir / "config.json")
    if isinstance(recorded, dict):
        old = recorded.get("config", {}).get("generator", {}).get("adapter")
        if isinstance(old, str) and old.startswith("/"):
            paths.add(old)
    for c in variants:
        out += [run_config(c, shard_size, adapter=p) for p in sorted(paths)]
    out += [run_config(c, shard_size) for c in variants[1:]]
    return out


def _shard_reusable(
    out_dir: Path, shard: int, langs: list[str], ids_sha: str, rows: int, cfg_hash: str
) -> bool:
    for lang in langs:
        meta = store.read_shard_meta(out_dir, lang, shard)
        if (
            meta is None
            or meta.get("config_hash") != cfg_hash
            or meta.get("ids_sha256") != ids_sha
            or meta.get("rows") != rows
        ):
            return False
    return True


def _check_shard(out_dir: Path, shard: int, ids: list[str], langs: list[str], n: int) -> None:
    """Read the shard's files back and prove every (passage, lang, sample) is there exactly once."""
    parts = [pq.read_table(out_dir / store.shard_name(lang, shard), schema=store.SCHEMA) for lang in langs]
    store.check_complete(pa.concat_tables(parts), ids, langs, n)


def _remove_stale(out_dir: Path, langs: list[str], n_shards: int) -> None:
    """Shards beyond the end (an earlier run over a longer input) must not be picked up."""
    for lang, shard, path in store.shard_files(out_dir, langs):
        if shard >= n_shards:
            path.unlink(missing_ok=True)
            (out_dir / store.shard_meta_name(lang, shard)).unlink(missing_ok=True)


def generate_queries(
    passages: Iterable[Passage],
    out_dir: str | Path,
    config: GeneratorConfig,
    *,
    shard_size: int = 1000,
    total: int | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    generator: Generator | None = None,
    inputs: dict[str, Any] | None = None,
    backend: str = "local",
    ray: Any | None = None,
) -> dict[str, Any]:
    """Generate ``config.n`` queries per passage in each of ``config.langs`` into ``out_dir``.

    ``backend="ray"`` generates shards on a Ray actor pool, one model per actor (``ray``: a
    :class:`~xqg.distributed.RayOptions`); shards are seeded by index, so the files equal local's.

    ``passages`` is consumed lazily, one shard at a time. The generator is loaded only if some
    shard needs generating (a finished folder reruns in seconds); pass ``generator`` to reuse a
    loaded one (its config must equal ``config``). Returns the manifest.
    """
    if shard_size < 1:
        raise XqgError(f"shard_size must be at least 1, not {shard_size}")
    config = resolved_config(config)
    if generator is not None and generator.config != config:
        raise XqgError("the generator passed in was loaded with other settings than `config`")
    langs = list(config.langs)
    if not langs:
        raise XqgError("no target languages given")
    if len(set(langs)) != len(langs):
        raise XqgError(f"a language is listed twice: {', '.join(langs)}")
    n = config.n
    out_dir = Path(out_dir)
    run_cfg = run_config(config, shard_size)
    legacy = legacy_run_configs(out_dir, config, shard_size)
    cfg_hash = bind_folder(out_dir, run_cfg, what="queries generated", overwrite=overwrite, legacy=legacy)
    # A folder made before adapters were recorded by name keeps its config (and hash); one made
    # before continuous batching, or at the earlier default batch size, is resumed as it was made.
    run_cfg = next((c for c in legacy if config_hash(c) == cfg_hash), run_cfg)
    made = run_cfg["generator"]
    update = {"refill": bool(made.get("refill", False)), "batch_size": made["batch_size"]}
    if any(getattr(config, k) != v for k, v in update.items()):
        config = config.model_copy(update=update)
        if generator is not None:
            generator.config = config

    seen: set[str] = set()
    shards: list[dict[str, Any]] = []
    per_lang = dict.fromkeys(langs, 0)
    reused = 0
    n_passages = 0
    bar = progress_bar(
        total=total * len(langs) if total is not None else None,
        desc=f"generate {len(langs)} lang × {n}",
        unit="psg·lang",
        disable=not show_progress,
    )

    def tasks() -> Iterator[tuple[int, list[Passage], list[str], str]]:
        for i, chunk in enumerate(_batched(passages, shard_size)):
            ids = [p.id for p in chunk]
            for x in ids:
                if x in seen:
                    raise XqgError(f"duplicate passage id '{x}' in the input to generate ({out_dir})")
                seen.add(x)
            yield i, chunk, ids, ids_hash(ids)

    def needs(task: tuple[int, list[Passage], list[str], str]) -> tuple[list[Any], int, int] | None:
        i, chunk, ids, ids_sha = task
        if _shard_reusable(out_dir, i, langs, ids_sha, len(ids) * n, cfg_hash):
            return None
        return [(p, lang) for p in chunk for lang in langs], n, derive_seed(config.seed, i)

    def compute(payload: tuple[list[Any], int, int]) -> list[list[str]]:
        nonlocal generator
        if generator is None:
            generator = load_generator(config)
        items, k, seed = payload
        return generator.generate(items, k, seed, progress=bar.update)

    from xqg.distributed import GenerateWorker, make_runner, ordered_compute

    runner = make_runner(backend, compute, GenerateWorker, "generate", config, ray)

    try:
        for (i, chunk, ids, ids_sha), texts in ordered_compute(tasks(), needs, runner):
            if texts is None:
                reused += 1
                bar.update(len(chunk) * len(langs))
            else:
                if backend == "ray":
                    bar.update(len(chunk) * len(langs))
                items = [(p, lang) for p in chunk for lang in langs]
                by_lang: dict[str, list[GeneratedQuery]] = {lang: [] for lang in langs}
                for (p, lang), qs in zip(items, texts, strict=True):
                    if len(qs) != n:
                        raise XqgError(f"generator returned {len(qs)} queries for ({p.id}, {lang}), not {n}")
                    by_lang[lang].extend(GeneratedQuery(p.id, lang, s, q) for s, q in enumerate(qs))
                extra = {"config_hash": cfg_hash, "ids_sha256": ids_sha, "passages": len(ids), "n": n}
                for lang in langs:
                    store.write_shard(out_dir, lang, i, by_lang[lang], extra=extra)
            _check_shard(out_dir, i, ids, langs, n)
            for lang in langs:
                per_lang[lang] += len(ids) * n
            n_passages += len(ids)
            shards.append(
                {
                    "shard": i,
                    "passages": len(ids),
                    "first_id": ids[0],
                    "files": {lang: store.shard_name(lang, i) for lang in langs},
                }
            )
    finally:
        bar.close()
        runner.close()

    _remove_stale(out_dir, langs, len(shards))
    description = generator.describe() if generator is not None else describe_generator(config)
    # A loaded generator records its device; a fully resumed run must write the same manifest.
    description.setdefault("device", str(resolve_device(config.device)))
    files = [
        name
        for s in shards
        for lang in langs
        for name in (store.shard_name(lang, s["shard"]), store.shard_meta_name(lang, s["shard"]))
    ]
    return write_manifest(
        out_dir,
        stage=store.STAGE,
        config=run_cfg,
        counts={
            "passages": n_passages,
            "languages": len(langs),
            "queries": sum(per_lang.values()),
            "shards": len(shards),
            "reused_shards": reused,
        },
        files=files,
        inputs=inputs,
        extra={
            "generator": description,
            "prompt": description["prompt"],
            "decoding": decoding_params(config),
            "seed": config.seed,
            "seed_derivation": (
                "per shard: SeedSequence([seed, shard]) → shard seed; SeedSequence([shard seed, 0]) "
                "→ the seed of the shard's one continuous batch"
                if config.refill and description.get("backend") == "causal"
                else "per batch: SeedSequence([seed, shard]) → shard seed; "
                "SeedSequence([shard seed, batch index]) → batch seed"
            ),
            "langs": langs,
            "n": n,
            "queries_per_lang": per_lang,
            "schema": {f.name: str(f.type) for f in store.SCHEMA},
            "shards": shards,
        },
    )
