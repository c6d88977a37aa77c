"""Share of texts cut at each max length: e5-small tokenizer, xqg's prefixes, special tokens counted.

Run: ``.venv/bin/python bench/truncation_lengths.py`` (tokenisation only; reads ``../shared/data``).
The results and what they mean: ``docs/truncation.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

from transformers import AutoTokenizer

from xqg.analyse.common import md_table
from xqg.config import EncoderConfig
from xqg.data.benchmarks.xquad import load_xquad
from xqg.models.encoder import token_ids
from xqg.models.sources import resolve_model
from xqg.paths import data_root


def row(name: str, lengths: Sequence[int], caps: Sequence[int]) -> list[str]:
    """Name, count, median, p95, max and the share cut at each cap."""
    ls = sorted(lengths)
    n = len(ls)
    cut = [f"{100 * sum(x > c for x in ls) / n:.1f}%" for c in caps]
    return [name, str(n), str(ls[n // 2]), str(ls[int(0.95 * (n - 1))]), str(ls[-1]), *cut]


def xnli_hypotheses(lang: str) -> list[str]:
    out = []
    for split in ("dev", "test"):
        with open(data_root() / "xnli" / f"{split}-{lang}.tsv", encoding="utf-8") as fh:
            out += [r[1] for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) >= 2]
    return out


def main() -> None:
    cfg = EncoderConfig()
    tok = AutoTokenizer.from_pretrained(resolve_model(cfg.model))

    def lengths(texts: list[str], prefix: str) -> list[int]:
        return [len(x) for x in token_ids(tok, [prefix + t for t in texts], None)]

    bench = load_xquad(split="all")
    by_lang: dict[str, list[str]] = {}
    for q in bench.all_queries():
        by_lang.setdefault(q.lang, []).append(q.text)
    rows = [
        row(f"XQuAD {lang}", lengths(by_lang[lang], cfg.query_prefix), (32, 64)) for lang in sorted(by_lang)
    ]
    rows += [
        row(f"XNLI {x} hypotheses", lengths(xnli_hypotheses(x), cfg.query_prefix), (32, 64))
        for x in ("sw", "ur")
    ]
    head = ["texts", "n", "median", "p95", "max", "cut at 32", "cut at 64"]
    print("\n".join(md_table(head, rows)))
    passages = lengths([p.text for p in bench.corpus], cfg.passage_prefix)
    head = ["texts", "n", "median", "p95", "max", "cut at 128", "cut at 512"]
    print("\n".join(md_table(head, [row("XQuAD en paragraphs", passages, (128, 512))])))


if __name__ == "__main__":
    main()
