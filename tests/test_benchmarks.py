"""Benchmark loaders and builders against the real shared data (skipped when it is absent)."""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from xqg.data import iter_corpus, read_qrels, read_queries, read_xor
from xqg.data.benchmarks import (
    BENCHMARKS,
    MKQA_LANGS,
    NTREX_CODES,
    XOR_LANGS,
    XQUAD_LANGS,
    build_benchmark,
    build_mkqa,
    build_xor_tydi,
    build_xquad,
    load_mkqa,
    load_ntrex,
    load_primeqa_xor_fixture,
    load_tatoeba,
    load_xor_translations,
    load_xor_tydi,
    load_xquad,
    make_xquad_split,
    tatoeba_languages,
    xquad_split,
)
from xqg.data.benchmarks.xquad import SPLIT_FILE
from xqg.errors import DataFormatError, XqgError
from xqg.io import read_manifest, verify_files
from xqg.paths import data_root

DATA = data_root()
pytestmark = pytest.mark.skipif(not (DATA / "xquad").is_dir(), reason=f"shared data not found at {DATA}")


# --- XQuAD --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xquad_all():
    return load_xquad()


@pytest.fixture(scope="module")
def english_squad() -> dict[str, tuple[str, str, str]]:
    """squad id → (article title, paragraph context, English question), straight from the file."""
    with open(DATA / "xquad" / "xquad.en.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    return {
        qa["id"]: (art["title"], para["context"], qa["question"])
        for art in doc["data"]
        for para in art["paragraphs"]
        for qa in para["qas"]
    }


def test_xquad_sizes(xquad_all) -> None:
    assert len(xquad_all.corpus) == 240
    assert len({p.id for p in xquad_all.corpus}) == 240
    assert list(xquad_all.queries) == list(XQUAD_LANGS)
    assert all(len(qs) == 1190 for qs in xquad_all.queries.values())
    assert len(xquad_all.qrels) == 12 * 1190
    assert len(xquad_all.qid_lang) == 12 * 1190
    assert Counter(xquad_all.paragraph_article.values()) == Counter(
        {t: 5 for t in set(xquad_all.paragraph_article.values())}
    )


def test_xquad_qrels_point_to_the_english_paragraph(xquad_all, english_squad) -> None:
    passages = {p.id: p for p in xquad_all.corpus}
    for lang, queries in xquad_all.queries.items():
        for q in queries:
            assert q.lang == lang and xquad_all.qid_lang[q.id] == lang
            squad_id = q.id.removesuffix(f"-{lang}")
            (pid,) = xquad_all.qrels[q.id]  # exactly one relevant paragraph
            assert xquad_all.qrels[q.id][pid] == 1
            title, context, question = english_squad[squad_id]
            assert passages[pid].text == context
            assert xquad_all.paragraph_article[pid] == title
            if lang == "en":
                assert q.text == question.strip()


def test_xquad_english_question_is_in_its_paragraph_qas(xquad_all) -> None:
    """Independent check: walk the English file and find each query's question under the qrel's paragraph."""
    with open(DATA / "xquad" / "xquad.en.json", encoding="utf-8") as fh:
        doc = json.load(fh)
    qas_by_paragraph = {
        f"{art['title']}#{j}": {qa["id"]: qa["question"] for qa in para["qas"]}
        for art in doc["data"]
        for j, para in enumerate(art["paragraphs"])
    }
    english = {q.id.removesuffix("-en"): q.text for q in xquad_all.queries["en"]}
    for q in xquad_all.queries["de"]:
        squad_id = q.id.removesuffix("-de")
        (pid,) = xquad_all.qrels[q.id]
        assert qas_by_paragraph[pid][squad_id].strip() == english[squad_id]


def test_xquad_query_text_is_stripped(xquad_all) -> None:
    assert all(q.text == q.text.strip() for q in xquad_all.all_queries())


def test_xquad_split_sizes_and_disjoint() -> None:
    split = xquad_split()
    assert {k: len(v) for k, v in split.items()} == {"train": 28, "dev": 10, "test": 10}
    sets = [set(v) for v in split.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert len(set().union(*sets)) == 48


def test_xquad_split_reproduces_committed_json(xquad_all) -> None:
    titles = sorted(set(xquad_all.paragraph_article.values()))
    committed = json.loads(SPLIT_FILE.read_text(encoding="utf-8"))
    assert committed["seed"] == 2023
    assert make_xquad_split(titles, seed=committed["seed"]) == {
        k: committed[k] for k in ("train", "dev", "test")
    }
    shuffled = titles[:]
    random.Random(0).shuffle(shuffled)
    assert make_xquad_split(shuffled) == xquad_split()  # input order does not matter
    assert make_xquad_split(titles, seed=2024) != xquad_split()  # the seed is really used


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_xquad_split_selects_queries_not_corpus(split: str, xquad_all) -> None:
    bench = load_xquad(["de", "en"], split)
    assert len(bench.corpus) == 240
    titles = set(bench.split[split])
    for lang in ("de", "en"):
        assert bench.queries[lang]
        assert len(bench.queries[lang]) == len(bench.queries["en"])
    for docs in bench.qrels.values():
        assert bench.paragraph_article[next(iter(docs))] in titles
    assert len(bench.paragraphs_in(split)) == 5 * len(titles)
    full = {q.id for q in xquad_all.queries["de"]}
    assert {q.id for q in bench.queries["de"]} <= full


def test_xquad_split_question_counts_add_up() -> None:
    counts = [len(load_xquad("th", s).queries["th"]) for s in ("train", "dev", "test")]
    assert sum(counts) == 1190


def test_xquad_bad_args() -> None:
    with pytest.raises(XqgError, match="valid: ar de"):
        load_xquad(["xx"])
    with pytest.raises(XqgError, match="unknown XQuAD split"):
        load_xquad("en", "validation")


def test_xquad_not_parallel(tmp_path: Path) -> None:
    shutil.copy(DATA / "xquad" / "xquad.en.json", tmp_path / "xquad.en.json")
    doc = json.loads((DATA / "xquad" / "xquad.de.json").read_text(encoding="utf-8"))
    doc["data"][3]["paragraphs"][1]["qas"][0]["id"] = "not-the-same"
    (tmp_path / "xquad.de.json").write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"xquad\.de\.json: field 'data\[3\]\.paragraphs\[1\]\.qas'"):
        load_xquad("de", data_dir=tmp_path)


def test_build_xquad(tmp_path: Path) -> None:
    out = build_xquad(tmp_path / "xq", ["ar", "zh"], split="test")
    manifest = read_manifest(out, stage="benchmark")
    verify_files(out, manifest)
    assert manifest["config"] == {"benchmark": "xquad", "langs": ["ar", "zh"], "split": "test", "seed": 2023}
    corpus = list(iter_corpus(out / "corpus.jsonl"))
    queries = read_queries(out / "queries.jsonl")
    qrels = read_qrels(out / "qrels" / "test.tsv")
    assert len(corpus) == 240 == manifest["counts"]["passages"]
    assert len(queries) == manifest["counts"]["queries"] == 2 * manifest["counts"]["queries.ar"]
    assert {q.lang for q in queries} == {"ar", "zh"}
    assert set(qrels) == {q.id for q in queries}
    split = json.loads((out / "split.json").read_text(encoding="utf-8"))
    assert split["seed"] == 2023 and split["test"] == xquad_split()["test"]
    assert manifest["counts"]["articles"] == 10


# --- XOR-TyDi -----------------------------------------------------------------------------------

XOR_DEV = {"ar": 350, "bn": 312, "fi": 360, "ja": 296, "ko": 299, "ru": 255, "te": 238}
XOR_TRAIN = {"ar": 2574, "bn": 2582, "fi": 2088, "ja": 2288, "ko": 2469, "ru": 1941, "te": 1308}


@pytest.mark.parametrize(("split", "expected"), [("dev", XOR_DEV), ("train", XOR_TRAIN)])
def test_xor_tydi_counts(split: str, expected: dict[str, int]) -> None:
    queries = load_xor_tydi(split)
    assert Counter(q.lang for q in queries) == expected
    assert len({q.id for q in queries}) == len(queries)
    assert all(q.answers and all(isinstance(a, str) for a in q.answers) for q in queries)
    assert all(isinstance(q.answers, tuple) for q in queries)


def test_xor_tydi_arabic_lang_quirk_is_stripped() -> None:
    raw = (DATA / "xor_tydi" / "xor_train_retrieve_eng_span.jsonl").read_text(encoding="utf-8")
    assert '"lang": " ar"' in raw  # the quirk is really in the data
    arabic = load_xor_tydi("train", langs=["ar"])
    assert len(arabic) == 2574 and {q.lang for q in arabic} == {"ar"}


def test_xor_tydi_bad_args() -> None:
    with pytest.raises(XqgError, match="unknown XOR-TyDi split"):
        load_xor_tydi("test")
    with pytest.raises(XqgError, match="valid: ar bn"):
        load_xor_tydi("dev", langs=["de"])


@pytest.mark.parametrize("lang", XOR_LANGS)
def test_xor_translations_aligned(lang: str) -> None:
    pairs = load_xor_translations(lang)
    native = (DATA / "xor_tydi" / f"{lang}-en" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    assert len(pairs) == len(native) > 4000
    assert pairs[0][0] == native[0]
    train_questions = {q.text.strip() for q in load_xor_tydi("train", langs=[lang])}
    assert train_questions <= {n.strip() for n, _ in pairs}  # every train question is translated


def test_xor_translations_quirks(tmp_path: Path) -> None:
    assert load_xor_translations("ar")[427][1] == ""  # ar-en/en.txt line 428 is empty
    assert len(load_xor_translations("ar", drop_empty=True)) == len(load_xor_translations("ar")) - 1
    with pytest.raises(XqgError, match="only for the train split"):
        load_xor_translations("ar", "dev")
    (tmp_path / "fi-en").mkdir()
    (tmp_path / "fi-en" / "fi.txt").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "fi-en" / "en.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"en\.txt: 1 lines but fi\.txt has 2"):
        load_xor_translations("fi", data_dir=tmp_path)


def test_build_xor_tydi_records_user_corpus(tmp_path: Path) -> None:
    corpus = DATA / "primeqa_xor_fixture" / "psgs_w100_pyserini_100.jsonl"
    out = build_xor_tydi(tmp_path / "xor", "dev", corpus=corpus, langs=["te", "fi"])
    manifest = read_manifest(out, stage="benchmark")
    verify_files(out, manifest)
    assert manifest["corpus"]["format"] == "pyserini"
    assert manifest["corpus"]["path"] == str(corpus.resolve())
    assert manifest["counts"] == {"queries": 598, "queries.te": 238, "queries.fi": 360}
    assert len(read_xor(out / "xor_dev.jsonl")) == 598
    assert {q.lang for q in read_queries(out / "queries.jsonl")} == {"te", "fi"}


def test_primeqa_fixture() -> None:
    fx = load_primeqa_xor_fixture()
    assert len(fx.corpus) == 100 and len({p.id for p in fx.corpus}) == 100
    assert all(p.title and p.text for p in fx.corpus)
    assert len(fx.collection) == 6
    (ex,) = fx.train
    assert ex.query_id == fx.query.id == fx.query_en.id == "-7239279093922981232"
    assert fx.query.lang == "ko" and fx.query_en.lang == "en"
    assert [p.id for p in ex.positive_passages] == ["1"]
    assert len(ex.negative_passages) == 5 and "1" not in {p.id for p in ex.negative_passages}
    assert ex.positive_passages[0].title == "Kangxi Emperor"
    # the XOR train answer for this query is in the positive passage
    (xor,) = [q for q in load_xor_tydi("train", langs=["ko"]) if q.id == ex.query_id]
    assert any(a in ex.positive_passages[0].full_text() for a in xor.answers)


# --- MKQA, Tatoeba, NTREX -----------------------------------------------------------------------


def test_mkqa_parallel() -> None:
    data = load_mkqa()
    assert list(data) == list(MKQA_LANGS) and len(data) == 12
    ids = list(data["en"])
    assert len(ids) == 1758
    for qs in data.values():
        assert list(qs) == ids and all(t.strip() for t in qs.values())
    assert data["en"]["563260143484355911"] == "who sings i hear you knocking but you can't come in"
    assert list(load_mkqa(["ja", "zh_cn"])) == ["ja", "zh_cn"]
    with pytest.raises(XqgError, match="zh_cn"):
        load_mkqa(["zh"])


def test_build_mkqa(tmp_path: Path) -> None:
    out = build_mkqa(tmp_path / "mkqa", langs=["en", "fi"])
    verify_files(out, read_manifest(out))
    queries = read_queries(out / "queries.jsonl")
    assert len(queries) == 2 * 1758
    assert queries[0].id == "563260143484355911-en" and queries[1758].lang == "fi"


def test_tatoeba() -> None:
    langs = tatoeba_languages()
    assert len(langs) == 112 and "tel" in langs and "eng" not in langs
    xx, en = load_tatoeba("tel")
    assert len(xx) == len(en) == 234
    sizes = {lang: len(load_tatoeba(lang)[0]) for lang in langs}
    assert Counter(v == 1000 for v in sizes.values()) == Counter({True: 72, False: 40})
    assert all(len(load_tatoeba(lang)[1]) == n for lang, n in sizes.items())
    with pytest.raises(XqgError, match="no Tatoeba set"):
        load_tatoeba("xxx")


def test_tatoeba_misaligned(tmp_path: Path) -> None:
    (tmp_path / "tatoeba.abc-eng.abc").write_text("a\nb\n", encoding="utf-8")
    (tmp_path / "tatoeba.abc-eng.eng").write_text("a\n", encoding="utf-8")
    with pytest.raises(
        DataFormatError, match=r"tatoeba\.abc-eng\.eng: 1 lines but tatoeba\.abc-eng\.abc has 2"
    ):
        load_tatoeba("abc", data_dir=tmp_path)


@pytest.mark.parametrize("lang", list(NTREX_CODES))
def test_ntrex(lang: str) -> None:
    en, xx = load_ntrex(lang)
    assert len(en) == len(xx) == 1997
    assert en[0] == "Welsh AMs worried about 'looking like muppets'"
    assert not any(s.endswith("\r") for s in en + xx)  # the release has CRLF line ends
    assert load_ntrex(NTREX_CODES[lang]) == (en, xx)


def test_ntrex_unknown() -> None:
    with pytest.raises(XqgError, match="no NTREX translation for 'de'"):
        load_ntrex("de")


# --- registry -----------------------------------------------------------------------------------


def test_registry(tmp_path: Path) -> None:
    assert set(BENCHMARKS) == {"xquad", "xor-tydi", "mkqa", "tatoeba", "ntrex", "xnli"}
    with pytest.raises(
        XqgError, match="unknown benchmark 'squad'; valid: mkqa, ntrex, tatoeba, xnli, xor-tydi, xquad"
    ):
        build_benchmark("squad", tmp_path)
    with pytest.raises(XqgError, match="bad options .*accepts: langs, split, data_dir"):
        build_benchmark("xquad", tmp_path, language="de")
    out = build_benchmark("ntrex", tmp_path / "ntrex", langs=["ja"])
    manifest = read_manifest(out, stage="benchmark")
    assert manifest["counts"] == {"sentences.ja": 1997, "sentences": 1997}
    assert (out / "ja.txt").read_text(encoding="utf-8").count("\n") == 1997
    out = build_benchmark("tatoeba", tmp_path / "tat", langs="tel")
    assert read_manifest(out)["counts"]["pairs.tel"] == 234
