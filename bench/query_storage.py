"""Bytes per generated query in each storage form, the disk the paper's setting needs at peak, and
fused MRR@10 on XQuAD per form against float32.

The real pipeline on the committed generated queries (``reports/generated/xquad-gemma-lora``:
240 XQuAD paragraphs × 11 languages × 5 Gemma queries = 13,200), with the xquad-xqg experiment's
encoder settings (e5-small, passages ≤ 512 tokens, questions ≤ 64, generated queries ≤ 32):

1. ``encode`` the 240 paragraphs and the test-split questions (12 languages, 2,784);
2. ``encode-generated`` once per storage form. The first (float32) pass runs the model; the other
   forms get the *same* model outputs through a memo of that pass (encoding is deterministic),
   so the forms differ only in how the vectors are stored;
3. per form and system: ``augment`` → ``index`` (Flat) → search the test questions → MRR@10 per
   language. Systems: the paper's setting (``paper``, α = 0.01), the dev-chosen ``tuned`` one and
   ``same-lang`` (a question in L against passages fused with L's queries only), both with the
   settings the xquad-xqg experiment chose on dev (read from ``reports/xquad-xqg/results.json``).

Then bytes on disk per generated query (vectors, ids and metadata files: everything in the
folder), and the projection to 18M passages × 35 queries at 768 dimensions from those measured
bytes (vector bytes scale with the dimension; id and metadata bytes as measured).

    .venv/bin/python bench/query_storage.py                        # ~5 min on 2 CPU cores
    .venv/bin/python bench/query_storage.py --work /tmp/qs --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from xqg.query_store import QueryStorage

ROOT = Path(__file__).resolve().parents[1]
FORMS = {
    "float32": QueryStorage("float32"),
    "float16": QueryStorage("float16"),
    "int8": QueryStorage("int8"),
    "sums (language)": QueryStorage("sums"),
    "sums (language, f16)": QueryStorage("sums", sum_dtype="float16"),
    "sums (passage)": QueryStorage("sums", sum_by="passage"),
    "sums (passage, f16)": QueryStorage("sums", sum_by="passage", sum_dtype="float16"),
}
PAPER = {"passages": 18_000_000, "langs": 7, "n": 5, "dim": 768}
GB = 1e9


class MemoEncoder:
    """The real encoder, remembering each (kind, text) → vector it computed."""

    def __init__(self, encoder: Any) -> None:
        self.inner, self.config, self.memo = encoder, encoder.config, {}

    def encode(self, texts, *, kind, progress=None):  # noqa: ANN001 - the BiEncoder protocol
        todo = list(dict.fromkeys(t for t in texts if (kind, t) not in self.memo))
        if todo:
            for t, v in zip(todo, self.inner.encode(todo, kind=kind), strict=True):
                self.memo[(kind, t)] = v
        if progress:
            progress(len(texts))
        return np.stack([self.memo[(kind, t)] for t in texts])

    def describe(self):
        return self.inner.describe()


def folder_bytes(path: Path) -> dict[str, int]:
    """Bytes of everything in an embedding folder, by role."""
    out = {"vectors": 0, "ids": 0, "metadata": 0}
    for f in path.iterdir():
        role = "vectors" if f.suffix == ".npy" else "ids" if f.suffix == ".txt" else "metadata"
        out[role] += f.stat().st_size
    return out


def mrr_by_lang(run: dict, qrels: dict, qid_lang: dict[str, str]) -> dict[str, float]:
    from xqg.evaluate.metrics import evaluate_qrels

    per_q = evaluate_qrels(run, qrels, ["mrr@10"])["mrr@10"]
    langs = sorted({qid_lang[q] for q in run})
    return {lang: math.fsum(v for q, v in per_q.items() if qid_lang[q] == lang) /
            sum(1 for q in per_q if qid_lang[q] == lang) for lang in langs}  # fmt: skip


def fused_mrr(work: Path, qdir: Path, spec: dict, split: Any, bench: Any, langs: list[str] | None):
    """augment → Flat index → search → MRR@10 per language of the questions searched."""
    from xqg.augment import augment
    from xqg.config import IndexConfig
    from xqg.index import build_index
    from xqg.search import Searcher, search_vectors

    augment(work / "embeddings", qdir, work / "fused", strategy=spec["strategy"], alpha=spec["alpha"],
            langs=langs, show_progress=False)  # fmt: skip
    build_index(work / "fused", work / "index", IndexConfig(), show_progress=False)
    qids, vecs = split
    if langs is not None:  # same-lang: only the questions in that language
        keep = [i for i, q in enumerate(qids) if bench.qid_lang[q] in langs]
        qids, vecs = [qids[i] for i in keep], vecs[keep]
    run = search_vectors(Searcher(work / "index"), qids, vecs, depth=100)
    return mrr_by_lang(run, bench.qrels, bench.qid_lang)


def projection(measured: dict[str, dict[str, Any]], gen_text_bytes: float, passage_id_bytes: float):
    """Disk for the paper's setting from the measured bytes (see the module docstring)."""
    from xqg.config import IndexConfig
    from xqg.index import estimate_index

    p, d = PAPER["passages"], PAPER["dim"]
    queries = p * PAPER["langs"] * PAPER["n"]
    rows_of = {"rows": queries, "language": p * PAPER["langs"], "passage": p}
    out = {}
    for name, m in measured.items():
        st: QueryStorage = FORMS[name]
        rows = rows_of[st.sum_by if st.is_sums else "rows"]
        itemsize = np.dtype(st.dtype).itemsize
        extra = 4 if st.form in ("int8", "sums") else 0  # the scale or the count of each row
        shards = math.ceil(queries / 50_000)  # encode-generated's default shard size (input rows)
        vectors = rows * (d * itemsize + extra) + shards * 128 * (2 if extra else 1)  # + .npy headers
        ids = rows * m["id_bytes_per_row"]
        meta = shards * m["meta_bytes_per_shard"]
        total = vectors + ids + meta
        out[name] = {"rows": rows, "bytes": total, "per_query": total / queries}
    passages = p * (d * 4 + 2 * passage_id_bytes)  # float32 vectors + ids-*.txt and ids.txt
    text = queries * gen_text_bytes
    index = {f: estimate_index(p, d, IndexConfig(factory=f), id_bytes=passage_id_bytes)["disk_bytes"]
             for f in ("HNSW32", "Flat", "IVF65536,PQ96")}  # fmt: skip
    return out, {"text": text, "passages": passages, "fused": passages, "index": index, "queries": queries}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generated", type=Path, default=ROOT / "reports/generated/xquad-gemma-lora")
    ap.add_argument("--results", type=Path, default=ROOT / "reports/xquad-xqg/results.json",
                    help="the experiment whose dev-chosen settings are used")  # fmt: skip
    ap.add_argument("--work", type=Path, default=ROOT / "runs/query-storage")
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = ap.parse_args()

    from xqg.config import load_experiment
    from xqg.data.benchmarks.xquad import load_xquad
    from xqg.encode import EmbeddingShards, encode_corpus, encode_generated_queries, encode_queries
    from xqg.models.encoder import BiEncoder

    cfg = load_experiment(ROOT / "src/xqg/configs/xquad-xqg.yaml")
    systems = {k: v["settings"] for k, v in json.loads(args.results.read_text())["systems"].items()}
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    bench = load_xquad(cfg.langs, split="test")
    encoder = BiEncoder(cfg.encoder)
    encode_corpus(iter(bench.corpus), work / "embeddings", encoder=encoder, show_progress=False)
    encode_queries(bench.all_queries(), work / "queries-test", encoder=encoder, show_progress=False)
    qids, qvecs = EmbeddingShards.open(work / "queries-test").load()
    gen_langs = [lang for lang in cfg.langs if lang != "en"]
    memo = MemoEncoder(encoder.with_settings(query_max_length=cfg.augment.query_max_length))

    measured: dict[str, dict[str, Any]] = {}
    mrr: dict[str, dict[str, dict[str, float]]] = {}
    for name, st in FORMS.items():
        qdir = work / f"gen-{name.replace(' ', '').replace('(', '-').replace(')', '').replace(',', '-')}"
        m = encode_generated_queries(args.generated, qdir, encoder=memo, langs=gen_langs, n=cfg.generator.n,
                                     storage=st, overwrite=True, show_progress=False)  # fmt: skip
        b = folder_bytes(qdir)
        n_queries = m["counts"].get("queries", m["counts"]["rows"])
        rows, shards = m["counts"]["rows"], m["counts"]["shards"]
        measured[name] = {**b, "total": sum(b.values()), "queries": n_queries, "rows": rows,
                          "per_query": sum(b.values()) / n_queries, "id_bytes_per_row": b["ids"] / rows,
                          "meta_bytes_per_shard": b["metadata"] / shards}  # fmt: skip
        mrr[name] = {}
        for system in ("paper", "tuned"):
            mrr[name][system] = fused_mrr(work, qdir, systems[system], (qids, qvecs), bench, None)
        if not (st.is_sums and st.sum_by == "passage"):  # per-passage sums cannot select languages
            spec, same = systems["same-lang"], {}
            for lang in gen_langs:
                same.update(fused_mrr(work, qdir, spec, (qids, qvecs), bench, [lang]))
            mrr[name]["same-lang"] = same
        print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)

    gen_text = sum(f.stat().st_size for f in args.generated.iterdir()) / measured["float32"]["queries"]
    pb = folder_bytes(work / "embeddings")
    proj, fixed = projection(measured, gen_text, pb["ids"] / 2 / len(bench.corpus))

    d = EmbeddingShards.open(work / "embeddings").dim
    print(f"\n## Bytes per generated query (XQuAD, {measured['float32']['queries']:,} queries, {d}-d)\n")
    print("| form | rows stored | vectors | ids | metadata | bytes per query | vs float32 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    f32 = measured["float32"]["per_query"]
    for name, m in measured.items():
        q = m["queries"]
        print(f"| {name} | {m['rows']:,} | {m['vectors'] / q:,.1f} | {m['ids'] / q:,.1f} | "
              f"{m['metadata'] / q:,.1f} | **{m['per_query']:,.1f}** | "
              f"{f32 / m['per_query']:.1f}× smaller |")  # fmt: skip

    per_passage = PAPER["langs"] * PAPER["n"]
    print(f"\n## The paper's setting: {PAPER['passages']:,} passages × {per_passage} queries, "
          f"{PAPER['dim']}-d ({fixed['queries']:,} queries)\n")  # fmt: skip
    print(f"generated text {fixed['text'] / GB:,.1f} GB ({gen_text:.1f} B/query measured); passage vectors "
          f"{fixed['passages'] / GB:,.1f} GB; fused vectors {fixed['fused'] / GB:,.1f} GB; index: "
          + ", ".join(f"{k} {v / GB:,.1f} GB" for k, v in fixed["index"].items()))  # fmt: skip
    print("\n| form | query store | text + store + fused + HNSW32 | + passage vectors (all kept) "
          "| all kept, IVF65536,PQ96 index |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for name, p in proj.items():
        base = fixed["text"] + p["bytes"] + fixed["fused"]
        print(f"| {name} | {p['bytes'] / GB:,.1f} GB ({p['per_query']:,.1f} B/q) | "
              f"{(base + fixed['index']['HNSW32']) / GB:,.1f} GB | "
              f"{(base + fixed['index']['HNSW32'] + fixed['passages']) / GB:,.1f} GB | "
              f"{(base + fixed['index']['IVF65536,PQ96'] + fixed['passages']) / GB:,.1f} GB |")  # fmt: skip

    print("\n## Fused MRR@10 on the XQuAD test split, Δ against float32 (largest |Δ| over languages)\n")
    for system in ("paper", "tuned", "same-lang"):
        ref = mrr["float32"][system]
        langs = list(ref)
        print(f"\n{system} ({systems[system]}):\n")
        print("| form | " + " | ".join(langs) + " | macro | max abs Δ |")
        print("|---|" + "---:|" * (len(langs) + 2))
        for name, by in mrr.items():
            if system not in by:
                continue
            got = by[system]
            dmax = max(abs(got[lang] - ref[lang]) for lang in langs)
            macro = float(np.mean([got[lang] for lang in langs]))
            print(f"| {name} | " + " | ".join(f"{got[lang]:.4f}" for lang in langs) +
                  f" | {macro:.4f} | {dmax:.4f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"measured": measured, "projection": proj, "fixed": fixed, "mrr": mrr,
                                         "systems": systems}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
