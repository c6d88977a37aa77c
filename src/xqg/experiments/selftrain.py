"""Self-training with retrieval feedback (issue 13): generated questions that find their own passage.

One round: generate on the XQuAD corpus (``xqg queries generate``, e.g. n = 20 per language), keep
the generated questions of **train-split** paragraphs whose round trip succeeds — the question,
encoded with the default e5-small bi-encoder (query side, max length 32 as in the lever study),
ranks its own paragraph at ``<= max_rank`` among all 240 (encoder settings: those of the
``xquad-xqg-v2`` experiment, ``--experiment``) — and fine-tune the adapter again on them
next to the human pairs (``xqg train generator --init-adapter builtin --extra-pairs FILE``).

This module writes that pairs file: one JSON object a line,
``{"passage_id", "title", "text", "lang", "question", "rank", "sample"}`` (what
:func:`xqg.train.generator_data.read_extra_pairs` reads), atomically, and a manifest next to it
(``<name>.manifest.json``: the inputs' checksums, the settings, per-language counts) whose paths
are relative to its own folder. Dev and test paragraphs never enter: only passages of articles in
the split's ``train`` list are kept, and a train passage whose text is also a dev/test passage's is
dropped too.

Embeddings are cached under ``--emb-dir`` (``embeddings/`` for the passages, ``generated-emb/``
for the queries; resumable stage folders, verified by checksum). ``--reuse-emb DIR`` first copies
matching folders of another run with the same encoder settings (the lever study's
``runs/xquad-xqg-v2``: ``embeddings/`` and the ``generated-emb*`` folder made from the same
generation folder with every language and sample) instead of encoding ~58k queries again; the
copy is then verified like any cached folder, and ``DIR`` is only read.

    python -m xqg.experiments.selftrain --generated reports/generated/xquad-v2-n20 \\
        --out runs/selftrain/pairs.jsonl --reuse-emb runs/xquad-xqg-v2
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xqg.errors import XqgError

#: The lever study's query length for generated queries (the paper's 32 tokens), for an experiment
#: file without an ``augment`` section.
QUERY_MAX_LENGTH = 32
#: The experiment whose encoder settings the round trip uses (the lever study's).
DEFAULT_EXPERIMENT = "xquad-xqg-v2"
PASSAGES_DIR = "embeddings"
QUERIES_DIR = "generated-emb"


@dataclass(frozen=True, slots=True)
class Candidate:
    """One generated question and the rank (1-based) of its own passage among all passages."""

    passage_id: str
    lang: str
    sample: int
    question: str
    rank: int


def manifest_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.manifest.json")


# --- selection (pure) -------------------------------------------------------------------------------


def train_passages(corpus: Sequence[Any], split: dict[str, Sequence[str]]) -> dict[str, Any]:
    """Passage id → passage for the corpus passages of train-split articles (id ``article#k``);
    a train passage whose text is also a dev/test passage's is left out."""
    train = set(split["train"])
    held = set(split.get("dev", [])) | set(split.get("test", []))
    if train & held:
        raise XqgError(f"the split puts articles in train and dev/test: {sorted(train & held)[:3]}")
    held_texts = {p.text for p in corpus if p.id.rsplit("#", 1)[0] in held}
    return {p.id: p for p in corpus if p.id.rsplit("#", 1)[0] in train and p.text not in held_texts}


def select_pairs(
    candidates: Iterable[Candidate],
    passages: dict[str, Any],
    *,
    langs: Sequence[str],
    max_rank: int = 1,
    per_lang_cap: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
    """The pairs to train on and per-language counts.

    Kept: a candidate of a passage in ``passages`` (train split), in ``langs``, with
    ``1 <= rank <= max_rank``, a non-blank question, and not an exact repeat of a question kept for
    the same passage and language. ``per_lang_cap`` keeps, per language, the first ``cap`` in
    (sample, corpus order): every passage's earliest kept sample before any passage's second.
    Counts per language: ``seen`` (train-split candidates), ``rank_ok``, ``duplicates``, ``kept``.
    """
    if max_rank < 1:
        raise XqgError(f"max_rank must be at least 1, got {max_rank}")
    order = {pid: i for i, pid in enumerate(passages)}
    wanted = set(langs)
    counts = {lang: {"seen": 0, "rank_ok": 0, "duplicates": 0, "kept": 0} for lang in langs}
    seen_text: set[tuple[str, str, str]] = set()
    by_lang: dict[str, list[Candidate]] = {lang: [] for lang in langs}
    for c in candidates:
        if c.lang not in wanted or c.passage_id not in passages:
            continue
        n = counts[c.lang]
        n["seen"] += 1
        question = " ".join(c.question.split())
        if not (1 <= c.rank <= max_rank) or not question:
            continue
        n["rank_ok"] += 1
        key = (c.passage_id, c.lang, question)
        if key in seen_text:
            n["duplicates"] += 1
            continue
        seen_text.add(key)
        by_lang[c.lang].append(Candidate(c.passage_id, c.lang, c.sample, question, c.rank))
    pairs: list[dict[str, Any]] = []
    for lang in langs:
        kept = sorted(by_lang[lang], key=lambda c: (c.sample, order[c.passage_id]))
        kept = kept[:per_lang_cap] if per_lang_cap is not None else kept
        counts[lang]["kept"] = len(kept)
        for c in sorted(kept, key=lambda c: (order[c.passage_id], c.sample)):
            p = passages[c.passage_id]
            pairs.append(
                {
                    "passage_id": c.passage_id,
                    "title": p.title,
                    "text": p.text,
                    "lang": lang,
                    "question": c.question,
                    "rank": c.rank,
                    "sample": c.sample,
                }
            )
    return pairs, counts


def write_pairs(out: str | Path, pairs: Iterable[dict[str, Any]], manifest: dict[str, Any]) -> Path:
    """The JSONL (temporary name, then renamed) and then its manifest, with the file's checksum and
    every absolute path rewritten relative to the output's folder."""
    from xqg.io import atomic_open, portable_tree, sha256_file, write_json

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with atomic_open(out) as fh:
        for rec in pairs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    doc = {**manifest, "output": {"file": out.name, "pairs": n, "sha256": sha256_file(out)}}
    write_json(manifest_path(out), portable_tree(doc, out.parent.resolve()))
    return out


# --- round trip ---------------------------------------------------------------------------------


def encoder_configs(experiment: str | Path = DEFAULT_EXPERIMENT) -> tuple[Any, Any]:
    """(passage, generated-query) encoder settings of an xQG experiment file (a packaged name or a
    path): its ``encoder`` section, and that with ``augment.query_max_length`` for the queries — the
    vectors the experiment and the lever study fuse, so the round trip here is theirs."""
    from xqg.config import load_experiment
    from xqg.pipeline import packaged_config

    cfg = load_experiment(packaged_config(experiment))
    qlen = cfg.augment.query_max_length if cfg.augment is not None else QUERY_MAX_LENGTH
    return cfg.encoder, cfg.encoder.model_copy(update={"query_max_length": qlen})


def _expected_hash(cfg: Any, kind: str) -> str:
    """The config hash :func:`xqg.encode.encode_to_shards` binds an embedding folder to."""
    from xqg.io import config_hash

    return config_hash({"encoder": cfg.model_dump(), "kind": kind, "shard_size": 50_000})


def _folder_hash(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("config_hash")
    except (OSError, ValueError):
        return None


def _made_from(folder: Path, gen_dir: Path) -> bool:
    """True when ``folder`` holds every query of ``gen_dir`` (all languages and samples)."""
    try:
        inputs = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["inputs"]
    except (OSError, ValueError, KeyError):
        return False
    from xqg.io import recorded_path

    src = inputs.get("generated")
    if not isinstance(src, str) or inputs.get("langs") is not None or inputs.get("n") is not None:
        return False
    made = recorded_path(folder, src)
    return made is not None and made.resolve() == gen_dir.resolve()


def seed_cache(
    reuse: Path, emb_dir: Path, gen_dir: Path, configs: tuple[Any, Any], log: Any = print
) -> dict[str, str]:
    """Copy ``reuse``'s passage and query embedding folders into an empty ``emb_dir`` when they were
    made with the encoder settings used here (and the queries from ``gen_dir``); returns what was
    copied (cache folder name → source folder). Nothing in ``reuse`` is written."""
    p_cfg, q_cfg = configs
    log = log or (lambda _m: None)
    copied: dict[str, str] = {}
    sources = {PASSAGES_DIR: ([reuse / PASSAGES_DIR], p_cfg, "passage")}
    sources[QUERIES_DIR] = (
        [f for f in sorted(reuse.glob("generated-emb*")) if _made_from(f, gen_dir)],
        q_cfg,
        "query",
    )
    for name, (folders, cfg, kind) in sources.items():
        dest = emb_dir / name
        if (dest / "config.json").exists():
            continue
        for src in folders:
            if (src / "manifest.json").is_file() and _folder_hash(src) == _expected_hash(cfg, kind):
                shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".xqg.lock"))
                copied[name] = str(src.resolve())
                break
    if copied:
        log("copied embeddings: " + "; ".join(f"{k} <- {v}" for k, v in copied.items()))
    return copied


def round_trip_candidates(
    gen_dir: str | Path,
    corpus: Sequence[Any],
    emb_dir: str | Path,
    *,
    reuse: str | Path | None = None,
    experiment: str | Path = DEFAULT_EXPERIMENT,
    show_progress: bool = True,
    log: Any = print,
) -> tuple[list[Candidate], dict[str, str]]:
    """Every generated question of ``gen_dir`` with the rank of its own passage among ``corpus``
    (exact inner product over the e5 vectors, as the lever study's ``gen_rank``)."""
    from xqg.encode import encode_corpus, encode_generated_queries
    from xqg.experiments.augmentation import _load_corpus_vectors
    from xqg.generate.store import read_table

    gen_dir, emb_dir = Path(gen_dir), Path(emb_dir)
    table = read_table(gen_dir)  # checks the generation folder's manifest before anything is encoded
    emb_dir.mkdir(parents=True, exist_ok=True)
    p_cfg, q_cfg = configs = encoder_configs(experiment)
    copied = seed_cache(Path(reuse), emb_dir, gen_dir, configs, log) if reuse is not None else {}
    encode_corpus(
        iter(corpus), emb_dir / PASSAGES_DIR, config=p_cfg, total=len(corpus), show_progress=show_progress
    )
    encode_generated_queries(gen_dir, emb_dir / QUERIES_DIR, config=q_cfg, show_progress=show_progress)
    cv = _load_corpus_vectors(emb_dir / PASSAGES_DIR, emb_dir / QUERIES_DIR)
    text = {
        (r["lang"], int(r["sample"]), r["passage_id"]): r["text"]
        for r in table.select(["lang", "sample", "passage_id", "text"]).to_pylist()
    }
    out = [
        Candidate(cv.pids[row], lang, int(sample), text[(lang, int(sample), cv.pids[row])], int(rank))
        for lang, sample, row, rank in zip(cv.gen_lang, cv.gen_sample, cv.gen_row, cv.gen_rank, strict=True)
    ]
    return out, copied


# --- the command ----------------------------------------------------------------------------------


def _checksum(path: Path) -> dict[str, Any]:
    from xqg.io import sha256_file

    return {"path": str(path.resolve()), "sha256": sha256_file(path)}


def build_pairs_file(
    generated: str | Path,
    out: str | Path,
    *,
    corpus: str | Path = "runs/xquad/corpus.jsonl",
    split: str | Path = "runs/xquad/split.json",
    emb_dir: str | Path | None = None,
    reuse: str | Path | None = None,
    experiment: str | Path = DEFAULT_EXPERIMENT,
    langs: Sequence[str] | None = None,
    include_english: bool = False,
    max_rank: int = 1,
    per_lang_cap: int | None = None,
    show_progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Build the pairs file and its manifest (module docstring); returns the manifest."""
    from xqg.data.corpus import read_corpus

    generated, out, split, corpus = Path(generated), Path(out), Path(split), Path(corpus)
    emb = Path(emb_dir) if emb_dir is not None else out.with_name(f"{out.stem}-emb")
    split_doc = json.loads(split.read_text(encoding="utf-8"))
    passages_all = list(read_corpus(corpus))
    passages = train_passages(passages_all, split_doc)
    if not passages:
        raise XqgError(f"{split}: no corpus passage of {corpus} is in a train-split article")
    candidates, copied = round_trip_candidates(
        generated, passages_all, emb, reuse=reuse, experiment=experiment, show_progress=show_progress, log=log
    )
    found = sorted({c.lang for c in candidates})
    chosen = list(langs) if langs else [x for x in found if x != "en"]
    if include_english and "en" not in chosen:
        chosen.append("en")
    missing = sorted(set(chosen) - set(found))
    if missing:
        raise XqgError(
            f"{generated}: no generated queries in {', '.join(missing)} (found: {', '.join(found)})"
        )
    pairs, counts = select_pairs(
        candidates, passages, langs=chosen, max_rank=max_rank, per_lang_cap=per_lang_cap
    )
    gen_manifest = generated / "manifest.json"
    gen_cfg = json.loads(gen_manifest.read_text(encoding="utf-8")).get("config", {})
    p_cfg, q_cfg = encoder_configs(experiment)
    manifest: dict[str, Any] = {
        "what": "self-training pairs: generated questions of train-split passages whose round trip "
        "ranks their own passage <= max_rank (xqg.experiments.selftrain)",
        "inputs": {
            "generated": {**_checksum(gen_manifest), "folder": str(generated.resolve())},
            "generator": {k: gen_cfg.get("generator", {}).get(k) for k in ("model", "adapter", "n", "seed")},
            "generator_adapter_sha256": gen_cfg.get("adapter_sha256"),
            "corpus": _checksum(corpus),
            "split": _checksum(split),
        },
        "encoder": {
            "experiment": str(experiment),
            "model": q_cfg.model,
            "query_max_length": q_cfg.query_max_length,
            "passage_max_length": p_cfg.passage_max_length,
        },
        "embeddings": {"folder": str(emb.resolve()), "reused": copied},
        "settings": {"max_rank": max_rank, "langs": chosen, "per_lang_cap": per_lang_cap},
        "passages": {"corpus": len(passages_all), "train_split": len(passages)},
        "counts": counts,
        "total": {k: sum(c[k] for c in counts.values()) for k in ("seen", "rank_ok", "duplicates", "kept")},
        "by_lang_kept": dict(Counter(p["lang"] for p in pairs)),
    }
    write_pairs(out, pairs, manifest)
    return json.loads(manifest_path(out).read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m xqg.experiments.selftrain",
        description="Pairs for self-training the generator: generated questions of train-split "
        "paragraphs that retrieve their own paragraph (round-trip rank <= --max-rank).",
    )
    ap.add_argument("--generated", required=True, type=Path, help="generation folder (xqg queries generate)")
    ap.add_argument("--out", required=True, type=Path, help="pairs JSONL to write (+ .manifest.json)")
    ap.add_argument("--corpus", type=Path, default=Path("runs/xquad/corpus.jsonl"))
    ap.add_argument("--split", type=Path, default=Path("runs/xquad/split.json"))
    ap.add_argument("--max-rank", type=int, default=1, help="keep round-trip ranks 1..this")
    ap.add_argument("--langs", default=None, help="comma list (default: every non-English language found)")
    ap.add_argument("--include-english", action="store_true", help="keep English questions too")
    ap.add_argument("--per-lang-cap", type=int, default=None, help="at most this many pairs per language")
    ap.add_argument(
        "--experiment", default=DEFAULT_EXPERIMENT, help="experiment file whose encoder settings to use"
    )
    ap.add_argument("--emb-dir", type=Path, default=None, help="embedding cache (default: <out stem>-emb)")
    ap.add_argument("--reuse-emb", type=Path, default=None, help="copy matching embeddings from this run")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    if a.per_lang_cap is not None and a.per_lang_cap < 1:
        ap.error("--per-lang-cap must be at least 1")
    langs = [x.strip() for x in a.langs.split(",") if x.strip()] if a.langs else None
    try:
        doc = build_pairs_file(
            a.generated,
            a.out,
            corpus=a.corpus,
            split=a.split,
            emb_dir=a.emb_dir,
            reuse=a.reuse_emb,
            experiment=a.experiment,
            langs=langs,
            include_english=a.include_english,
            max_rank=a.max_rank,
            per_lang_cap=a.per_lang_cap,
            show_progress=not a.no_progress,
        )
    except XqgError as exc:  # bad input: a clean message and exit 2, as the CLI gives
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kept = ", ".join(f"{k} {v['kept']}/{v['seen']}" for k, v in doc["counts"].items())
    print(f"{doc['output']['pairs']} pairs → {a.out} (kept/seen: {kept})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
