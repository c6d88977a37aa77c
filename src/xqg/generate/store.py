"""On-disk format of generated queries: Parquet shards keyed by language, plus a manifest.

Layout of a generation folder::

    queries-{lang}-{shard:05d}.parquet   rows of one language for one shard of passages
    queries-{lang}-{shard:05d}.json      written last for each file: rows, sha256 → it is complete
    manifest.json                        written last: generator, prompt, decoding, seed, counts

The reference code lost six of seven languages by building every language's output path from
one unset variable. Here the language is part of every file name *and* a column of every row,
each (passage_id, lang, sample) appears exactly once, and :func:`check_complete` proves it.

Schema (compressed with zstd; ids and languages dictionary-encoded, so a passage id repeated
for its n samples is stored once per row group):

    passage_id: string   lang: string   sample: int16   text: string
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xqg.errors import ManifestError
from xqg.io import atomic_path, read_json, read_manifest, sha256_file, write_json
from xqg.types import GeneratedQuery

STAGE = "generate"
SCHEMA = pa.schema(
    [
        pa.field("passage_id", pa.string()),
        pa.field("lang", pa.string()),
        pa.field("sample", pa.int16()),
        pa.field("text", pa.string()),
    ]
)
_FILE = re.compile(r"^queries-([A-Za-z_-]+)-(\d{5})\.parquet$")


def shard_name(lang: str, shard: int) -> str:
    return f"queries-{lang}-{shard:05d}.parquet"


def shard_meta_name(lang: str, shard: int) -> str:
    return f"queries-{lang}-{shard:05d}.json"


def write_shard(
    out_dir: str | Path,
    lang: str,
    shard: int,
    rows: Sequence[GeneratedQuery],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write one (language, shard) file atomically, then its completion record; return the record."""
    out_dir = Path(out_dir)
    bad = [r for r in rows if r.lang != lang]
    if bad:
        raise ManifestError(f"shard for '{lang}' got a row in '{bad[0].lang}' (passage {bad[0].passage_id})")
    table = pa.Table.from_pydict(
        {
            "passage_id": [r.passage_id for r in rows],
            "lang": [r.lang for r in rows],
            "sample": [r.sample for r in rows],
            "text": [r.text for r in rows],
        },
        schema=SCHEMA,
    )
    name = shard_name(lang, shard)
    with atomic_path(out_dir / name) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=["passage_id", "lang"])
    meta = {"lang": lang, "shard": shard, "rows": len(rows), "sha256": sha256_file(out_dir / name)}
    if extra:
        meta.update(extra)
    write_json(out_dir / shard_meta_name(lang, shard), meta)
    return meta


def read_shard_meta(out_dir: str | Path, lang: str, shard: int) -> dict[str, Any] | None:
    """The completion record of a shard if the shard is complete and intact, else ``None``."""
    out_dir = Path(out_dir)
    meta_path, data_path = out_dir / shard_meta_name(lang, shard), out_dir / shard_name(lang, shard)
    if not meta_path.exists() or not data_path.exists():
        return None
    meta = read_json(meta_path)
    if sha256_file(data_path) != meta.get("sha256"):
        return None
    return meta


def shard_files(out_dir: str | Path, langs: Iterable[str] | None = None) -> list[tuple[str, int, Path]]:
    """``(lang, shard, path)`` of every shard file present, sorted by language then shard."""
    wanted = set(langs) if langs is not None else None
    found = []
    for p in Path(out_dir).iterdir():
        m = _FILE.match(p.name)
        if m and (wanted is None or m.group(1) in wanted):
            found.append((m.group(1), int(m.group(2)), p))
    return sorted(found)


def read_table(
    out_dir: str | Path,
    *,
    langs: Iterable[str] | None = None,
    n: int | None = None,
    require_manifest: bool = True,
) -> pa.Table:
    """All generated queries (optionally some languages, the first ``n`` samples) as one Arrow table."""
    out_dir = Path(out_dir)
    if require_manifest:
        read_manifest(out_dir, stage=STAGE)
    files = shard_files(out_dir, langs)
    if not files:
        return SCHEMA.empty_table()
    table = pa.concat_tables([pq.read_table(p, schema=SCHEMA) for _, _, p in files])
    if n is not None:
        table = table.filter(pc.less(table["sample"], n))
    return table


def iter_generated(
    out_dir: str | Path,
    *,
    langs: Iterable[str] | None = None,
    n: int | None = None,
    require_manifest: bool = True,
) -> Iterator[GeneratedQuery]:
    """Stream generated queries shard by shard (bounded memory)."""
    out_dir = Path(out_dir)
    if require_manifest:
        read_manifest(out_dir, stage=STAGE)
    for _, _, path in shard_files(out_dir, langs):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            cols = batch.to_pydict()
            for pid, lang, sample, text in zip(
                cols["passage_id"], cols["lang"], cols["sample"], cols["text"], strict=True
            ):
                if n is None or sample < n:
                    yield GeneratedQuery(pid, lang, int(sample), text)


def check_complete(table: pa.Table, passage_ids: Sequence[str], langs: Sequence[str], n: int) -> None:
    """Every (passage, lang, sample < n) exactly once — no language or sample lost or duplicated."""
    expected = len(passage_ids) * len(langs) * n
    keys = set(
        zip(
            table["passage_id"].to_pylist(),
            table["lang"].to_pylist(),
            table["sample"].to_pylist(),
            strict=True,
        )
    )
    if len(keys) != table.num_rows:
        raise ManifestError(f"{table.num_rows - len(keys)} duplicated (passage, lang, sample) rows")
    missing = [
        (p, lang, s) for p in passage_ids for lang in langs for s in range(n) if (p, lang, s) not in keys
    ]
    if missing or len(keys) != expected:
        raise ManifestError(
            f"expected {expected} generated queries, found {len(keys)}; missing e.g. {missing[:3]}"
        )
