"""Property-based fuzzing of every reader: malformed input is an ``XqgError`` naming the file (and,
for line formats, ``path:line:``), never another exception.

Each reader gets valid files mutated by hypothesis (fields replaced by any JSON value, keys
dropped or renamed, lines duplicated, truncated, garbage bytes, invalid UTF-8, BOMs, CRLF, NULs,
wrong column counts …) and plain random bytes. Two profiles (docs/reliability.md):

* ``xqg-ci`` (default): 60 examples per reader test, a few seconds in all;
* ``xqg-full``: 1,200 per reader test — ``HYPOTHESIS_PROFILE=xqg-full pytest tests/test_fuzz_readers.py``.

With ``XQG_FUZZ_COUNTS=FILE`` the number of inputs each reader was fed is written to FILE.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from xqg.errors import DataFormatError, XqgError  # noqa: E402

settings.register_profile(
    "xqg-ci", max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
settings.register_profile(
    "xqg-full", max_examples=1200, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "xqg-ci"))

COUNTS: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    dest = os.environ.get("XQG_FUZZ_COUNTS")
    if dest:
        Path(dest).write_text(json.dumps({"inputs": COUNTS, "outcomes": OUTCOMES}, indent=2, sort_keys=True))


# --- strategies ------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.just(""),
    st.just("   "),
    st.just("\t"),
    st.just("a\nb"),
)
json_values = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6,
)
words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


def _records(keys: dict[str, st.SearchStrategy], n: int = 5) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.fixed_dictionaries(keys), min_size=1, max_size=n)


@st.composite
def mutated_jsonl(draw: Any, keys: dict[str, st.SearchStrategy]) -> bytes:
    """Valid records, then structural mutations of the records, then byte-level ones of the file."""
    recs = draw(_records(keys))
    lines: list[str] = []
    for rec in recs:
        rec = dict(rec)
        op = draw(st.sampled_from(["keep", "keep", "value", "drop", "rename", "extra"]))
        if op == "value" and rec:
            rec[draw(st.sampled_from(sorted(rec)))] = draw(json_values)
        elif op == "drop" and rec:
            rec.pop(draw(st.sampled_from(sorted(rec))))
        elif op == "rename" and rec:
            k = draw(st.sampled_from(sorted(rec)))
            rec[k.upper() + "_"] = rec.pop(k)
        elif op == "extra":
            rec[draw(st.text(max_size=5))] = draw(json_values)
        lines.append(json.dumps(rec, ensure_ascii=draw(st.booleans())))
    line_op = draw(st.sampled_from(["none", "dup", "blank", "json", "garbage", "array"]))
    if line_op == "dup":
        lines.append(lines[0])
    elif line_op == "blank":
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "  ", "\t"])))
    elif line_op == "json":
        lines.insert(draw(st.integers(0, len(lines))), json.dumps(draw(json_values)))
    elif line_op == "garbage":
        lines.insert(draw(st.integers(0, len(lines))), draw(st.text(max_size=30)))
    elif line_op == "array":
        lines[0] = "[" + lines[0] + "]"
    return draw(byte_mutations("\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))))


@st.composite
def mutated_lines(draw: Any, row: st.SearchStrategy[list[str]], sep: str) -> bytes:
    """Delimited text rows with cells dropped, added or replaced, then byte-level mutations."""
    rows = draw(st.lists(row, min_size=1, max_size=6))
    out = []
    for cells in rows:
        cells = list(cells)
        op = draw(st.sampled_from(["keep", "keep", "drop", "add", "cell", "sep"]))
        if op == "drop" and cells:
            cells.pop(draw(st.integers(0, len(cells) - 1)))
        elif op == "add":
            cells.append(draw(words))
        elif op == "cell" and cells:
            cells[draw(st.integers(0, len(cells) - 1))] = draw(st.text(max_size=10))
        elif op == "sep" and cells:
            cells[0] = cells[0] + draw(st.sampled_from(["\t", " ", '"', "\r"]))
        out.append(sep.join(cells))
    return draw(byte_mutations("\n".join(out) + "\n"))


@st.composite
def byte_mutations(draw: Any, text: str) -> bytes:
    data = bytearray(text.encode("utf-8"))
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["truncate", "flip", "insert", "bom", "crlf", "nul", "latin1", "none"]))
        if op == "truncate" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "bom":
            data[0:0] = b"\xef\xbb\xbf"
        elif op == "crlf":
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
        elif op == "nul":
            data.insert(draw(st.integers(0, len(data))), 0)
        elif op == "latin1":
            data.extend(b"\xe9\xff\xfe")
    return bytes(data)


def file_inputs(structured: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Mostly structured mutations, sometimes plain random bytes."""
    return st.one_of(structured, structured, structured, st.binary(max_size=200))


# --- the property ----------------------------------------------------------------------------------


def check_reader(
    name: str, reader: Callable[[Path], Any], data: bytes, suffix: str, *, lines: bool = True
) -> None:
    """``reader`` either reads ``data`` or raises an XqgError that names the file (and the line)."""
    COUNTS[name] += 1
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"input{suffix}"
        path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
        try:
            result = reader(path)
            if hasattr(result, "__next__"):
                for _ in result:
                    pass
        except XqgError as e:
            msg = str(e)
            assert msg.startswith(str(path)), f"{name}: error does not start with the path: {msg!r}"
            if isinstance(e, DataFormatError) and e.line is not None:
                assert msg.startswith(f"{path}:{e.line}: "), msg
            if lines and isinstance(e, DataFormatError) and e.line is None:
                assert re.search(r"empty|gzip|encoding|UTF|BOM|not a readable|column|header", msg), (
                    f"{name}: a line-format error without a line number: {msg!r}"
                )
            OUTCOMES[f"{name}: {type(e).__name__}"] += 1
        else:
            OUTCOMES[f"{name}: read"] += 1


ID = st.one_of(words, st.integers(0, 10**6))
TEXT = words

CORPUS = {
    "beir": {"_id": ID, "title": TEXT, "text": TEXT},
    "tevatron": {"docid": ID, "title": TEXT, "text": TEXT},
    "pyserini": {"id": ID, "contents": TEXT},
}
QUERIES = {
    "beir": {"_id": ID, "text": TEXT, "lang": st.sampled_from(["en", "ar", "xx", "", " ar"])},
    "tevatron": {"query_id": ID, "query": TEXT},
}


@pytest.mark.parametrize("variant", sorted(CORPUS))
@given(data=st.data())
def test_corpus_jsonl(variant, data):
    from xqg.data.corpus import iter_corpus

    suffix = data.draw(st.sampled_from([".jsonl", ".jsonl.gz"]))
    check_reader(
        f"corpus-jsonl-{variant}", iter_corpus, data.draw(file_inputs(mutated_jsonl(CORPUS[variant]))), suffix
    )


@pytest.mark.parametrize("variant", sorted(QUERIES))
@given(data=st.data())
def test_queries_jsonl(variant, data):
    from xqg.data.queries import read_queries

    check_reader(
        f"queries-jsonl-{variant}",
        read_queries,
        data.draw(file_inputs(mutated_jsonl(QUERIES[variant]))),
        ".jsonl",
    )


@given(data=file_inputs(mutated_lines(st.tuples(words, words).map(list), "\t")))
def test_queries_tsv(data):
    from xqg.data.queries import read_queries

    check_reader("queries-tsv", read_queries, data, ".tsv")


@given(
    data=file_inputs(
        mutated_lines(st.tuples(words, words, st.sampled_from(["1", "0", "2", "x", "1.5"])).map(list), "\t")
    )
)
def test_qrels_tsv(data):
    from xqg.data.qrels import read_qrels

    check_reader("qrels-tsv", read_qrels, b"query-id\tcorpus-id\tscore\n" + data, ".tsv")


@given(
    data=file_inputs(
        mutated_lines(
            st.tuples(words, st.just("0"), words, st.sampled_from(["1", "0", "-1", "x"])).map(list), " "
        )
    )
)
def test_qrels_trec(data):
    from xqg.data.qrels import read_qrels

    check_reader("qrels-trec", read_qrels, data, ".txt")


RUN_ROW = st.tuples(
    words,
    st.just("Q0"),
    words,
    st.integers(0, 99).map(str),
    st.one_of(st.floats(allow_nan=True).map(str), words),
    st.just("xqg"),
).map(list)


@given(data=file_inputs(mutated_lines(RUN_ROW, " ")))
def test_trec_run(data):
    from xqg.data.runs import read_trec_run

    check_reader("run-trec", read_trec_run, data, ".trec")


@given(
    data=file_inputs(
        mutated_jsonl(
            {"query_id": ID, "docids": st.lists(ID, max_size=3), "scores": st.lists(st.floats(), max_size=3)}
        )
    )
)
def test_jsonl_run(data):
    from xqg.data.runs import read_jsonl_run

    check_reader("run-jsonl", read_jsonl_run, data, ".jsonl")


XOR = {
    "id": ID,
    "question": TEXT,
    "answers": st.lists(TEXT, max_size=2),
    "lang": st.sampled_from(["ar", "ja", " ar"]),
}


@given(data=file_inputs(mutated_jsonl(XOR)))
def test_xor_tydi_jsonl(data):
    from xqg.data.xor import read_xor

    check_reader("xor-tydi-jsonl", read_xor, data, ".jsonl")


TEVATRON_TRAIN = {
    "query_id": ID,
    "query": TEXT,
    "positive_passages": st.lists(
        st.fixed_dictionaries({"docid": ID, "title": TEXT, "text": TEXT}), max_size=2
    ),
    "negative_passages": st.lists(st.fixed_dictionaries({"docid": ID, "text": TEXT}), max_size=2),
}


@given(data=file_inputs(mutated_jsonl(TEVATRON_TRAIN)))
def test_tevatron_train_jsonl(data):
    from xqg.data.tevatron import iter_tevatron_train

    check_reader("tevatron-train-jsonl", iter_tevatron_train, data, ".jsonl")


@given(data=file_inputs(mutated_lines(st.tuples(words, words, words).map(list), "\t")))
def test_dpr_tsv(data):
    from xqg.data.corpus import iter_corpus

    check_reader("dpr-tsv", iter_corpus, b"id\ttext\ttitle\n" + data, ".tsv")


@st.composite
def parquet_files(draw: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = draw(st.integers(0, 4))
    cols: dict[str, Any] = {}
    for name in draw(
        st.lists(st.sampled_from(["id", "text", "title", "other", "ID"]), unique=True, max_size=4)
    ):
        kind = draw(st.sampled_from(["str", "int", "float", "null", "list"]))
        values = {
            "str": st.lists(st.one_of(st.none(), st.text(max_size=8)), min_size=n, max_size=n),
            "int": st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n),
            "float": st.lists(st.floats(allow_nan=True), min_size=n, max_size=n),
            "null": st.just([None] * n),
            "list": st.lists(st.lists(st.integers(0, 3), max_size=2), min_size=n, max_size=n),
        }[kind]
        cols[name] = draw(values)
    buf = io.BytesIO()
    pq.write_table(pa.table(cols) if cols else pa.table({"x": pa.array([], pa.int8())}), buf)
    return draw(byte_mutations_raw(buf.getvalue()))


@st.composite
def byte_mutations_raw(draw: Any, data: bytes) -> bytes:
    if draw(st.booleans()):
        return data
    b = bytearray(data)
    i = draw(st.integers(0, max(len(b) - 1, 0)))
    if draw(st.booleans()):
        del b[i:]
    elif b:
        b[i] ^= draw(st.integers(1, 255))
    return bytes(b)


@given(data=st.one_of(parquet_files(), parquet_files(), st.binary(max_size=100)))
def test_parquet_corpus(data):
    from xqg.data.corpus import iter_corpus

    check_reader("corpus-parquet", iter_corpus, data, ".parquet", lines=False)


# --- configs ---------------------------------------------------------------------------------------

CONFIG_KEYS = [
    "encoder",
    "index",
    "search",
    "generator",
    "shard_size",
    "langs",
    "out_dir",
    "benchmark",
    "model",
    "batch_size",
    "pooling",
    "factory",
    "depth",
    "n",
    "augment",
    "nonsense",
]
config_docs = st.recursive(
    json_scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(CONFIG_KEYS), c, max_size=4),
    max_leaves=8,
)


@st.composite
def yaml_files(draw: Any) -> bytes:
    import yaml

    text = yaml.safe_dump(draw(config_docs), allow_unicode=True)
    return draw(
        byte_mutations(text + draw(st.sampled_from(["", "\n: :\n", "\n  - [\n", "\nkey: *alias\n", "\t\n"])))
    )


@st.composite
def toml_files(draw: Any) -> bytes:
    doc = draw(
        st.dictionaries(
            st.sampled_from(CONFIG_KEYS),
            st.one_of(
                st.integers(),
                st.text(max_size=6),
                st.booleans(),
                st.dictionaries(st.sampled_from(CONFIG_KEYS), st.integers(), max_size=2),
            ),
            max_size=4,
        )
    )
    lines = []
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()]
        else:
            lines.insert(0, f"{k} = {json.dumps(v)}")
    return draw(
        byte_mutations("\n".join(lines) + draw(st.sampled_from(["\n", "\n[[x\n", "\na = \n", "\n= 1\n"])))
    )


def _load_experiment(path: Path) -> Any:
    from xqg.config import load_experiment

    return load_experiment(path)


@given(data=st.one_of(yaml_files(), yaml_files(), st.binary(max_size=100)))
def test_config_yaml(data):
    check_reader("config-yaml", _load_experiment, data, ".yaml", lines=False)


@given(data=st.one_of(toml_files(), toml_files(), st.binary(max_size=100)))
def test_config_toml(data):
    check_reader("config-toml", _load_experiment, data, ".toml", lines=False)


# --- manifests -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stage_folders(tmp_path_factory):
    """A real embedding folder and index folder (random vectors through the real writers)."""
    import numpy as np

    from xqg.config import EncoderConfig, IndexConfig
    from xqg.encode import encode_to_shards
    from xqg.index import build_index

    rng = np.random.default_rng(0)

    class Fixed:
        config = EncoderConfig(model="fixed-test-encoder")

        def encode(self, texts, kind, progress=None):
            return rng.standard_normal((len(texts), 8)).astype(np.float32)

        def describe(self):
            return {"model": {"spec": "fixed-test-encoder"}}

    root = tmp_path_factory.mktemp("manifests")
    encode_to_shards(
        [(f"d{i}", "x") for i in range(12)], root / "emb", encoder=Fixed(), shard_size=5, show_progress=False
    )
    build_index(root / "emb", root / "index", IndexConfig(per_shard=True), show_progress=False)
    return root


@st.composite
def mutated_manifest(draw: Any, manifest: dict[str, Any]) -> bytes:
    m = json.loads(json.dumps(manifest))
    for _ in range(draw(st.integers(1, 3))):
        path: list[Any] = []
        node: Any = m
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            path.append(key)
            node = node[key]
        if not path:
            continue
        parent = m
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1])
        else:
            parent[path[-1]] = draw(json_values)
    return draw(byte_mutations(json.dumps(m)))


@pytest.mark.parametrize("kind", ["emb", "index"])
@given(data=st.data())
def test_manifests(stage_folders, kind, data):
    import shutil

    from xqg.encode import EmbeddingShards
    from xqg.search import Searcher

    src = stage_folders / kind
    manifest = json.loads((src / "manifest.json").read_text())
    blob = data.draw(
        st.one_of(mutated_manifest(manifest), mutated_manifest(manifest), st.binary(max_size=80))
    )
    COUNTS[f"manifest-{kind}"] += 1
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / kind
        shutil.copytree(src, folder)
        (folder / "manifest.json").write_bytes(blob)
        try:
            obj = EmbeddingShards.open(folder) if kind == "emb" else Searcher(folder)
            if kind == "emb":
                obj.load()
        except XqgError as e:
            assert str(folder) in str(e), f"manifest error does not name the folder: {e}"
            OUTCOMES[f"manifest-{kind}: {type(e).__name__}"] += 1
        else:
            OUTCOMES[f"manifest-{kind}: read"] += 1
