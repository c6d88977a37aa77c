"""Quality checks for generated queries: the language rules on real human questions, exact rates on a
synthetic generation folder, the filter, the few-shot prompt, and the two CLI commands."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from xqg.config import EncoderConfig
from xqg.errors import XqgError
from xqg.generate import store
from xqg.generate.langcheck import SUPPORTED, detect, in_language, script_units
from xqg.generate.prompts import FEWSHOT_LANGS, clean_causal_output, fewshot_demos, get_prompt
from xqg.generate.quality import distinct_n, filter_queries, quality_report, tokens
from xqg.io import read_manifest, write_manifest
from xqg.paths import data_root
from xqg.search import exact_ranks
from xqg.types import GeneratedQuery, Passage

DATA = data_root()
needs_data = pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason=f"shared data not found at {DATA}")


# --- language checks on real questions ----------------------------------------------------------


@pytest.fixture(scope="module")
def real_questions() -> dict[str, list[str]]:
    """Human questions: XQuAD (12 languages, all 1,190 each) and XOR-TyDi dev (bn fi ja ko te)."""
    from xqg.data.benchmarks import load_xor_tydi, load_xquad

    bench = load_xquad()
    out = {lang: [q.text for q in bench.queries[lang]] for lang in bench.langs}
    for q in load_xor_tydi("dev", ["bn", "fi", "ja", "ko", "te"]):
        out.setdefault(q.lang, []).append(q.text)
    return out


@needs_data
def test_real_questions_pass_their_own_language(real_questions):
    rates = {lang: np.mean([in_language(t, lang) for t in qs]) for lang, qs in real_questions.items()}
    assert set(rates) == set(SUPPORTED) | {"bn", "ja", "ko", "te"}
    low = {lang: round(float(r), 3) for lang, r in rates.items() if r < 0.97}
    assert not low, f"real questions failing their own language check: {low}"


@needs_data
@pytest.mark.parametrize(
    ("source", "claimed"),
    [
        ("ru", "ar"),
        ("ar", "ru"),
        ("zh", "ja"),
        ("ja", "zh"),
        ("en", "de"),
        ("de", "en"),
        ("es", "ro"),
        ("hi", "bn"),
    ],
)
def test_other_languages_are_rejected(real_questions, source, claimed):
    accepted = np.mean([in_language(t, claimed) for t in real_questions[source]])
    assert accepted <= 0.02, f"{accepted:.1%} of real {source} questions pass as {claimed}"


@needs_data
def test_xquad_parallel_questions_rarely_pass_as_another_language(real_questions):
    """The 12 XQuAD languages ask the same questions: any one passing as another is a false accept."""
    worst = 0.0
    for target in FEWSHOT_LANGS:
        if target not in SUPPORTED:
            continue
        for source in ("ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"):
            if source == target:
                continue
            qs = real_questions[source][:150]
            worst = max(worst, float(np.mean([in_language(t, target) for t in qs])))
    assert worst <= 0.02


def test_script_rules_on_hand_made_cases():
    assert detect("東京タワーの高さは何メートルですか？") == "ja"
    assert detect("东京塔有多高？") == "zh"
    assert not in_language("东京塔有多高？", "ja")
    assert not in_language("東京タワーの高さは？", "zh")
    assert in_language("Кто выиграл Super Bowl 50?", "ru")  # a Latin name is one unit
    assert not in_language("Хто виграв чемпіонат?", "ru")  # Ukrainian letters
    assert not in_language("این کتاب چیست؟", "ar")  # Persian letters
    assert in_language("iPhone 的 CPU 是什么？", "zh")
    assert not in_language("What is the capital of Egypt?", "ar")
    assert detect("Wann wurde İstanbul gegründet?") == "de"  # a question word outranks a name's letter
    # one Vietnamese name among seven words is not Vietnamese (below VI_WORD_SHARE)
    assert detect("Wann wurde die Trần-Dynastie in Vietnam gegründet?") == "de"
    assert detect("") == "und" and not in_language("", "en")
    assert script_units("पैंथर्स डिफ़ेंस") == {"Devanagari": 2}  # vowel signs do not split words
    # Khmer has no rule of its own: the script decides (xqg.generate.langcheck.in_script)
    assert not in_language("hello", "km") and in_language("តើអ្នកណាឈ្នះ?", "km")


# --- few-shot prompt ----------------------------------------------------------------------------


@pytest.mark.parametrize("lang", FEWSHOT_LANGS)
def test_fewshot_prompt(lang):
    prompt = get_prompt("fewshot")(lang, "Title", "A passage about something.")
    assert prompt.endswith(get_prompt("causal")(lang, "Title", "A passage about something."))
    demos = fewshot_demos(lang)
    assert len(demos) == 2
    for passage, question in demos:
        assert len(passage.split()) <= 60
        assert f"Question: {question}\n\n" in prompt
        assert in_language(question, lang), question  # the demonstrations model the wanted language
    assert clean_causal_output(" Wie hoch ist er?\nPassage: x") == "Wie hoch ist er?"


@needs_data
def test_fewshot_demos_come_from_training_articles():
    from xqg.data.benchmarks import load_xquad, xquad_split

    train = load_xquad(split="train")
    texts = {p.text for p in train.paragraphs_in("train")}
    heldout = {p.text for split in ("dev", "test") for p in train.paragraphs_in(split)}
    for passage, _ in fewshot_demos("de"):
        assert any(passage in t for t in texts) or any(passage.split(". ")[0] in t for t in texts)
        assert not any(passage.split(". ")[0] in t for t in heldout)
    assert "Southern_California" in xquad_split()["train"] and "Oxygen" in xquad_split()["train"]


# --- synthetic generation folder: exact rates ---------------------------------------------------

PASSAGES = [
    Passage("p0", "Volcanoes erupt molten lava. Magma chambers feed eruptions."),
    Passage("p1", "Penguins swim through frozen oceans. Emperor penguins huddle."),
    Passage("p2", "Bakers knead dough. Fresh bread smells wonderful."),
    Passage("p3", "Astronomers observe distant galaxies. Telescopes collect faint starlight."),
    Passage("p4", "Cyclists climb steep mountain passes. Racing bicycles weigh little."),
]

# (passage, lang, sample, text, in_lang, dup, rank of own passage; 0 = beyond depth 2)
CASES: list[tuple[str, str, int, str, int, int, int]] = [
    ("p0", "en", 0, "What do magma chambers feed?", 1, 0, 1),
    ("p0", "en", 1, "what do Magma  chambers feed? ", 1, 1, 1),  # duplicate after normalising
    ("p1", "en", 0, "Where do emperor penguins huddle?", 1, 0, 1),
    ("p1", "en", 1, "Who sells fresh bread?", 1, 0, 0),  # p2's words: rank 3
    ("p2", "en", 0, "When do bakers knead dough?", 1, 0, 1),
    ("p2", "en", 1, "How do penguins swim through frozen oceans with fresh bread?", 1, 0, 2),
    ("p3", "en", 0, "What do telescopes collect?", 1, 0, 1),
    ("p3", "en", 1, "What do volcanoes erupt?", 1, 0, 0),  # p0's words: rank 4
    ("p4", "en", 0, "How steep are mountain passes?", 1, 0, 1),
    ("p4", "en", 1, "How steep are mountain passes?", 1, 1, 1),
    ("p0", "de", 0, "Welche magma chambers feed eruptions?", 1, 0, 1),
    ("p0", "de", 1, "What do magma chambers feed?", 0, 0, 1),  # English, asked for German
    ("p1", "de", 0, "Wann huddle emperor penguins?", 1, 0, 1),
    ("p1", "de", 1, "Wann huddle emperor penguins?", 1, 1, 1),
    ("p2", "de", 0, "Wer knead dough?", 1, 0, 1),
    ("p2", "de", 1, "Пекари месят тесто", 0, 0, 0),  # Russian; no shared word: rank 3
    ("p3", "de", 0, "Welche telescopes collect faint starlight?", 1, 0, 1),
    ("p3", "de", 1, "Welche telescopes observe distant galaxies?", 1, 0, 1),
    ("p4", "de", 0, "Wie weigh racing bicycles?", 1, 0, 1),
    ("p4", "de", 1, "", 0, 0, 0),  # empty: rank 5
]
DEPTH = 2


class BagEncoder:
    """A deterministic stand-in for BiEncoder: bag of the corpus's words, L2-normalised.

    Only words that occur in a passage count, so a query's neighbours are exactly the passages
    it shares words with; an all-zero vector scores 0 everywhere (ties → corpus order).
    """

    def __init__(self, passages: Sequence[Passage]) -> None:
        vocab = sorted({w for p in passages for w in self._words(p.text)})
        self.index = {w: i for i, w in enumerate(vocab)}
        self.config = EncoderConfig(model="bag-of-words", batch_size=4, device="cpu")
        self.calls = 0

    @staticmethod
    def _words(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), len(self.index)), dtype=np.float32)
        for r, t in enumerate(texts):
            for w in self._words(t):
                if w in self.index:
                    out[r, self.index[w]] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1)

    def encode_queries(self, texts, *, progress=None):
        return self._encode(texts)

    def encode_passages(self, passages, *, progress=None):
        return self._encode([p.text for p in passages])

    def describe(self):
        return {
            "config": self.config.model_dump(),
            "model": {"spec": "bag-of-words", "crc": zlib.crc32(b"x")},
        }


def write_generation(out: Path, cases=CASES) -> Path:
    """A generation folder in the store format: two shards per language (p0–p2, p3–p4)."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for lang in ("en", "de"):
        for shard, pids in enumerate((("p0", "p1", "p2"), ("p3", "p4"))):
            rows = [GeneratedQuery(p, lg, s, t) for p, lg, s, t, *_ in cases if lg == lang and p in pids]
            store.write_shard(out, lang, shard, rows)
            files += [store.shard_name(lang, shard), store.shard_meta_name(lang, shard)]
    write_manifest(
        out,
        stage=store.STAGE,
        config={"generator": {"model": "synthetic"}, "n": 2},
        counts={"queries": len(cases), "passages": 5},
        files=files,
        extra={"prompt": "causal"},
    )
    return out


def _expected(lang: str, col: int) -> float:
    vals = [c[col] for c in CASES if c[1] == lang]
    return sum(vals) / len(vals)


def test_quality_report_exact_rates(tmp_path):
    gen = write_generation(tmp_path / "gen")
    enc = BagEncoder(PASSAGES)
    report = quality_report(gen, PASSAGES, encoder=enc, depth=DEPTH, out_dir=tmp_path / "report")
    assert enc.calls == 2  # the corpus once, all queries once
    for lang in ("en", "de"):
        assert report.value(lang, "in_lang") == pytest.approx(_expected(lang, 4))
        assert report.value(lang, "dup") == pytest.approx(_expected(lang, 5))
        ranks = [c[6] for c in CASES if c[1] == lang]
        assert report.value(lang, "rt@1") == pytest.approx(np.mean([r == 1 for r in ranks]))
        assert report.value(lang, f"rt@{DEPTH}") == pytest.approx(np.mean([r > 0 for r in ranks]))
        lengths = [len(c[3].strip()) for c in CASES if c[1] == lang]
        assert report.value(lang, "length") == pytest.approx(np.mean(lengths))
    assert report.value("en", "in_lang") == 1.0 and report.value("de", "in_lang") == 0.7
    assert report.value("en", "dup") == 0.2 and report.value("en", "rt@1") == 0.7
    assert report.value("en", f"rt@{DEPTH}") == 0.8
    assert report.counts == {"de": 10, "en": 10}

    # per-query file: each query's rank exactly as designed
    pq_rows = pq.read_table(tmp_path / "report" / "quality-per-query.parquet").to_pylist()
    got = {(r["passage_id"], r["lang"], r["sample"]): (r["rank"] or 0, int(r["dup"])) for r in pq_rows}
    assert got == {(c[0], c[1], c[2]): (c[6], c[5]) for c in CASES}

    # distinct-n: word tokens, casefolded, punctuation stripped, n-grams inside one query only
    en_tokens = [tokens(c[3], "en") for c in CASES if c[1] == "en"]
    assert report.value("en", "distinct-1") == pytest.approx(distinct_n(en_tokens, 1))
    assert report.value("en", "distinct-2") == pytest.approx(distinct_n(en_tokens, 2))

    out = tmp_path / "report"
    m = read_manifest(out, stage="generate-report")
    assert set(m["files"]) == {"quality.md", "quality.json", "quality-per-query.parquet"}
    assert m["counts"]["queries"] == 20 and m["config"]["depth"] == DEPTH
    data = json.loads((out / "quality.json").read_text(encoding="utf-8"))
    assert data["table"]["metrics"] == ["in_lang", "dup", "rt@1", "rt@2", "length"]
    assert data["distinct"]["en"]["distinct-1"] == pytest.approx(report.value("en", "distinct-1"))
    md = (out / "quality.md").read_text(encoding="utf-8")
    assert "| en |" in md and "distinct-2" in md


def test_quality_report_language_only_needs_no_encoder(tmp_path):
    gen = write_generation(tmp_path / "gen")
    report = quality_report(gen, round_trip=False, langs=["de"], n=1)
    assert report.counts == {"de": 5}
    assert report.table.metrics == ["in_lang", "dup", "length"]
    assert report.value("de", "in_lang") == pytest.approx(1.0)  # sample 0 only: all German


def test_distinct_and_tokens():
    assert tokens("Wer ist Kim?", "de") == ["wer", "ist", "kim"]
    assert tokens("东京塔 多高？", "zh") == ["东", "京", "塔", "多", "高"]
    assert distinct_n([["a", "b", "a"], ["a", "b"]], 1) == pytest.approx(2 / 5)
    assert distinct_n([["a", "b", "a"], ["a", "b"]], 2) == pytest.approx(2 / 3)
    assert distinct_n([["a"]], 2) is None


def test_exact_ranks_break_ties_by_corpus_row():
    p = np.array([[1, 0], [1, 0], [0, 1], [0.5, 0.5]], dtype=np.float32)
    q = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.float32)
    own = np.array([1, 0, 2, 3])
    assert exact_ranks(q, p, own, depth=10).tolist() == [2, 1, 1, 3]
    assert exact_ranks(q, p, own, depth=2, chunk_bytes=8).tolist() == [2, 1, 1, 0]


# --- the filter ----------------------------------------------------------------------------------


def test_filter_keeps_exactly_the_passing_rows(tmp_path):
    gen = write_generation(tmp_path / "gen")
    m = filter_queries(gen, PASSAGES, tmp_path / "kept", round_trip_depth=DEPTH, encoder=BagEncoder(PASSAGES))
    kept = store.read_table(tmp_path / "kept")
    got = set(zip(*(kept[c].to_pylist() for c in ("passage_id", "lang", "sample", "text")), strict=True))
    want = {(c[0], c[1], c[2], c[3]) for c in CASES if c[4] and c[6]}
    assert got == want
    # same shard layout, empty or not; original sample numbers
    assert [(lang, s) for lang, s, _ in store.shard_files(tmp_path / "kept")] == [
        (lang, s) for lang, s, _ in store.shard_files(gen)
    ]
    f = m["filter"]
    assert f["settings"] == {"lang_check": True, "round_trip_depth": DEPTH, "drop_duplicates": False}
    assert f["source"] == str(gen.resolve())
    assert f["per_lang"]["de"] == {
        "input": 10, "kept": 7, "dropped": 3, "failed_language": 3, "failed_round_trip": 2,
    }  # fmt: skip
    assert f["per_lang"]["en"] == {
        "input": 10, "kept": 8, "dropped": 2, "failed_language": 0, "failed_round_trip": 2,
    }  # fmt: skip
    assert m["counts"]["queries"] == 15 and m["counts"]["passages"] == 5
    assert m["prompt"] == "causal" and m["config"]["filter"]["round_trip_depth"] == DEPTH
    # the filtered folder is a generation folder: the report reads it
    report = quality_report(tmp_path / "kept", round_trip=False)
    assert report.value("de", "in_lang") == 1.0

    m2 = filter_queries(gen, None, tmp_path / "lang-only", round_trip_depth=None, drop_duplicates=True)
    assert m2["filter"]["per_lang"]["en"] == {
        "input": 10,
        "kept": 8,
        "dropped": 2,
        "failed_language": 0,
        "failed_duplicate": 2,
    }
    with pytest.raises(XqgError, match="nothing to filter"):
        filter_queries(gen, None, tmp_path / "x", lang_check=False, round_trip_depth=None)
    with pytest.raises(XqgError, match="not in the corpus"):
        filter_queries(gen, PASSAGES[:3], tmp_path / "y", encoder=BagEncoder(PASSAGES))


def test_index_path_agrees_with_in_memory_search(tmp_path, tiny_encoder_config):
    from xqg.config import IndexConfig
    from xqg.encode import encode_corpus
    from xqg.index import build_index
    from xqg.models.encoder import BiEncoder

    gen = write_generation(tmp_path / "gen")
    encode_corpus(PASSAGES, tmp_path / "emb", config=tiny_encoder_config, show_progress=False)
    build_index(tmp_path / "emb", tmp_path / "idx", IndexConfig(), show_progress=False)
    enc = BiEncoder(tiny_encoder_config)
    via_index = quality_report(gen, index_dir=tmp_path / "idx", encoder=enc, depth=3)
    in_memory = quality_report(gen, PASSAGES, encoder=enc, depth=3)
    assert via_index.per_query["rank"].to_pylist() == in_memory.per_query["rank"].to_pylist()
    with pytest.raises(XqgError, match="differs from the one that built"):
        quality_report(gen, index_dir=tmp_path / "idx", encoder=BagEncoder(PASSAGES))


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_commands(tmp_path):
    from typer.testing import CliRunner

    from xqg.cli import app
    from xqg.data.corpus import write_corpus

    gen = write_generation(tmp_path / "gen")
    write_corpus(tmp_path / "corpus.jsonl", PASSAGES)
    runner = CliRunner()
    res = runner.invoke(app, ["generate-report", str(gen), "--no-round-trip"])
    assert res.exit_code == 0, res.output
    assert (gen / "quality" / "manifest.json").exists() and "in_lang" in res.output
    res = runner.invoke(
        app, ["filter-queries", str(gen), "--out", str(tmp_path / "kept"), "--round-trip-depth", "0"]
    )
    assert res.exit_code == 0, res.output
    assert "de: kept 7/10 (failed: language 3)" in res.output
    res = runner.invoke(
        app,
        [
            "generate-report",
            str(gen),
            "--corpus",
            str(tmp_path / "corpus.jsonl"),
            "--index",
            str(tmp_path),  # an existing folder: the paths are checked before the option rule
            "--model",
            "y",
        ],
    )
    assert res.exit_code == 2 and "not both" in res.output, res.output
