"""Dev-split MRR@10 per language of distilled (or trained) query towers, without xQG.

Why: choosing a distillation recipe on the grid's test numbers would tune on test, and a full
grid evaluation costs ~7 min per model on this CPU. This script scores a query tower (a run's
``model/`` or any ``checkpoint-N`` folder) against the passage vectors a finished experiment
folder already holds, on the **dev** split only, in about a minute per model.

    .venv/bin/python scripts/distill_dev_check.py --experiment runs/xquad-grid/eval/base \\
        base runs/xquad-grid/models/base-distill/model \\
        runs/xquad-grid/models/base-distill/checkpoints/checkpoint-40

``base`` as a model name scores the experiment's own dev query vectors (the untrained baseline).
The passage tower must be the one that made the experiment's ``embeddings/`` (the grid keeps it
frozen, so the base experiment's passages serve every grid model).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="query-tower folders, or 'base'")
    ap.add_argument("--experiment", default="runs/xquad-grid/eval/base", help="a finished experiment folder")
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--query-max-length", type=int, default=64)
    args = ap.parse_args()

    from xqg.analyse.common import load_vectors
    from xqg.config import EncoderConfig
    from xqg.data.qrels import read_qrels
    from xqg.data.queries import read_queries
    from xqg.evaluate.metrics import metrics_from_ranks
    from xqg.models.encoder import BiEncoder
    from xqg.search import exact_ranks

    exp = Path(args.experiment)
    bench = exp / "benchmark"
    queries = {q.id: q for q in read_queries(bench / "queries.jsonl")}
    gold = {qid: next(iter(docs)) for qid, docs in read_qrels(bench / "qrels" / "all.tsv").items()}
    pids, passages = load_vectors(exp / "embeddings")
    row_of = {p: i for i, p in enumerate(pids)}
    qids, base_q = load_vectors(exp / f"queries-{args.split}")
    own = np.array([row_of[gold[q]] for q in qids])
    langs = sorted({queries[q].lang for q in qids})
    for name in args.models:
        if name == "base":
            q = base_q
        else:
            cfg = EncoderConfig(model=str(Path(name).resolve()), query_max_length=args.query_max_length)
            enc = BiEncoder(cfg.model_copy(update={"dtype": "float32"}))
            q = enc.encode_queries([queries[i].text for i in qids])
        ranks = exact_ranks(np.asarray(q, dtype=np.float32), passages, own)
        rr = metrics_from_ranks(dict(zip(qids, ranks.tolist(), strict=True)), ["mrr@10"])["mrr@10"]
        by = {lang: float(np.mean([v for i, v in rr.items() if queries[i].lang == lang])) for lang in langs}
        cells = " ".join(f"{lang}={v:.3f}" for lang, v in by.items())
        print(f"{name}\t{cells} avg={np.mean(list(by.values())):.3f}", flush=True)


if __name__ == "__main__":
    main()
