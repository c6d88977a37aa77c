"""Resource faults: a full disk (RLIMIT_FSIZE, and a small tmpfs where this machine can mount one)
or a read-only output folder during encode, generate, augment and index gives a clear error and
leaves nothing that looks complete, and a rerun after fixing it resumes; two processes writing one
folder: the second is refused by a lock naming the first's pid; manifests checked on load (a
tampered shard is named); a folder moved elsewhere still loads and checks."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from xqg.errors import FolderLockedError, ManifestError, OutputError
from xqg.io import LOCK, lock_folder, read_manifest, unlock_folder

ENV = {**os.environ, "XQG_PROGRESS": "0", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _corpus(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(
                json.dumps(
                    {"_id": f"p{i}", "title": f"T{i}", "text": f"passage number {i} about item {i % 7}"}
                )
                + "\n"
            )
    return path


def _xqg(args: list[str], *, fsize: int | None = None) -> subprocess.CompletedProcess:
    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "xqg", *args], env=ENV, capture_output=True, text=True,
                          preexec_fn=limit)  # fmt: skip


def _looks_complete(folder: Path) -> bool:
    return (folder / "manifest.json").exists()


class _FileSizeLimit:
    """RLIMIT_FSIZE for this process (soft limit only, so it can be lifted again); Python ignores
    SIGXFSZ, so a write past it fails with EFBIG like a write to a full disk."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes

    def __enter__(self) -> None:
        self.old = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.nbytes, self.old[1]))

    def __exit__(self, *exc: object) -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, self.old)


def _encode(corpus: Path, out: Path, config, shard_size: int = 20):
    from xqg.data.corpus import iter_corpus
    from xqg.encode import encode_corpus

    return encode_corpus(iter_corpus(corpus), out, config=config, shard_size=shard_size, show_progress=False)


def test_a_full_disk_in_process_leaves_nothing_complete_and_the_rerun_resumes(tmp_path, tiny_encoder_config):
    """Fast subset: the limit admits the shards, not the final manifest; then one below a shard."""
    corpus = _corpus(tmp_path / "c.jsonl", 50)
    ref = _encode(corpus, tmp_path / "ref", tiny_encoder_config)
    biggest = max(p.stat().st_size for p in (tmp_path / "ref").iterdir() if p.name != "manifest.json")
    assert (tmp_path / "ref" / "manifest.json").stat().st_size > biggest + 1
    out = tmp_path / "emb"
    with (
        _FileSizeLimit(biggest + 1),
        pytest.raises(OutputError, match=r"manifest\.json: cannot write \(File too large\)"),
    ):
        _encode(corpus, out, tiny_encoder_config)
    assert (
        not _looks_complete(out) and not list(out.glob(".*.tmp")) and len(list(out.glob("shard-*.json"))) == 3
    )
    m = _encode(corpus, out, tiny_encoder_config)
    assert m["counts"]["reused_shards"] == 3 and m["files"] == ref["files"]
    out2 = tmp_path / "emb2"
    with _FileSizeLimit((tmp_path / "ref" / "emb-00000.npy").stat().st_size - 1):
        with pytest.raises(
            OutputError, match=r"emb-00000\.npy: cannot write"
        ):  # np.save used to truncate silently
            _encode(corpus, out2, tiny_encoder_config)
    assert (
        not list(out2.glob("shard-*.json")) and not list(out2.glob("emb-*.npy")) and not _looks_complete(out2)
    )
    assert _encode(corpus, out2, tiny_encoder_config)["files"] == ref["files"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("faults")
    corpus = _corpus(root / "corpus.jsonl", 60)
    emb = root / "emb"
    r = _xqg(["encode", str(corpus), "--out", str(emb), "--model", str(tiny_model_dir), "--shard-size", "20",
              "--device", "cpu"])  # fmt: skip
    assert r.returncode == 0, r.stderr
    return {"root": root, "corpus": corpus, "emb": emb, "model": tiny_model_dir}


@pytest.mark.slow
def test_encode_on_a_full_disk_fails_cleanly_and_the_rerun_resumes(inputs, tmp_path):
    """RLIMIT_FSIZE above every shard and id file but below the manifest: the last write fails."""
    out = tmp_path / "emb"
    args = ["encode", str(inputs["corpus"]), "--out", str(out), "--model", str(inputs["model"]),
            "--shard-size", "20", "--device", "cpu"]  # fmt: skip
    limit = max(p.stat().st_size for p in inputs["emb"].iterdir() if p.name != "manifest.json") + 1
    assert (inputs["emb"] / "manifest.json").stat().st_size > limit
    r = _xqg(args, fsize=limit)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "cannot write (File too large)" in r.stderr, r.stderr
    assert "manifest.json" in r.stderr or "ids.txt" in r.stderr, r.stderr
    assert not _looks_complete(out) and not list(out.glob(".*.tmp"))
    assert len(list(out.glob("shard-*.json"))) == 3
    r = _xqg(args)
    assert r.returncode == 0 and "reused 3" in r.stdout, r.stderr
    for p in inputs["emb"].iterdir():
        if p.suffix in (".npy", ".txt"):
            assert p.read_bytes() == (out / p.name).read_bytes(), p.name


@pytest.mark.slow
def test_a_limit_below_one_shard_leaves_no_shard_marked_done(inputs, tmp_path):
    out = tmp_path / "emb"
    args = ["encode", str(inputs["corpus"]), "--out", str(out), "--model", str(inputs["model"]),
            "--shard-size", "20", "--device", "cpu"]  # fmt: skip
    r = _xqg(args, fsize=(inputs["emb"] / "emb-00000.npy").stat().st_size - 1)
    assert r.returncode == 2 and "emb-00000.npy: cannot write" in r.stderr, r.stderr
    assert not list(out.glob("shard-*.json")) and not _looks_complete(out) and not list(out.glob("emb-*.npy"))
    assert _xqg(args).returncode == 0 and _looks_complete(out)


@pytest.mark.slow
def test_augment_and_index_on_a_full_disk(inputs, tmp_path):
    """No generated queries needed: index the passage vectors; augment with an empty-ish query set
    is covered by the campaign. A limit that admits nothing but config-sized files."""
    out = tmp_path / "index"
    r = _xqg(["index", str(inputs["emb"]), "--out", str(out), "--per-shard"], fsize=300)
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not _looks_complete(out) and not list(out.glob(".*.tmp"))
    r = _xqg(["index", str(inputs["emb"]), "--out", str(out), "--per-shard"])
    assert r.returncode == 0 and _looks_complete(out), r.stderr


def _readonly(folder: Path):
    """Make ``folder`` read-only for this process: chmod for ordinary users; a read-only bind
    mount for root (which chmod does not stop). Returns an undo function, or None if impossible."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if shutil.which("mount") is None:
        return None
    ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode == 0
    if not ok:
        return None
    if subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(folder)], capture_output=True)
        return None
    return lambda: subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["encode", "index", "augment", "generate"])
def test_a_read_only_output_folder_is_a_clear_error_and_a_rerun_resumes(stage, inputs, tmp_path):
    out = tmp_path / stage
    undo = _readonly(out)
    if undo is None:
        pytest.skip("cannot make a read-only folder here")
    emb, model = str(inputs["emb"]), str(inputs["model"])
    args = {
        "encode": ["encode", str(inputs["corpus"]), "--out", str(out), "--model", model, "--device", "cpu"],
        "index": ["index", emb, "--out", str(out)],
        "augment": ["augment", emb, emb, "--out", str(out)],
        "generate": ["generate", str(inputs["corpus"]), "--out", str(out), "--model", model, "--langs", "ar"],
    }[stage]
    try:
        from xqg.io import start_folder

        with pytest.raises(OutputError, match="cannot write"):
            start_folder(out)
        r = _xqg(args)
    finally:
        undo()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cannot write" in r.stderr or "not writable" in r.stderr, r.stderr
    assert not _looks_complete(out)
    if stage in ("encode", "index"):
        assert _xqg(args).returncode == 0 and _looks_complete(out)


@pytest.mark.slow
def test_full_tmpfs_during_generate_and_encode(inputs, tmp_path, causal_model_dir):
    """A real ENOSPC: a 64 KiB tmpfs (root only); the rerun on a bigger disk resumes."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mnt / "gen"
        corpus = _corpus(tmp_path / "c.jsonl", 120)
        args = ["generate", str(corpus), "--out", str(out), "--model", str(causal_model_dir),
                "--langs", "ar,fi", "--n", "2", "--max-new-tokens", "4", "--shard-size", "30",
                "--device", "cpu", "--dtype", "float32"]  # fmt: skip
        (mnt / "filler").write_bytes(b"\0" * 500_000)
        r = _xqg(args)
        assert r.returncode == 2 and "No space left on device" in r.stderr and "Traceback" not in r.stderr, (
            r.stderr
        )
        assert not _looks_complete(out) and not list(out.glob(".*.tmp"))
        done = len(list(out.glob("queries-fi-*.json")))
        (mnt / "filler").unlink()
        r = _xqg(args)
        assert r.returncode == 0 and _looks_complete(out), r.stderr
        assert f"reused {done})" in r.stdout
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture(scope="module")
def causal_model_dir(tmp_path_factory):
    from tests.test_generate import make_tiny_causal

    return make_tiny_causal(tmp_path_factory.mktemp("causal"))


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "folder"
    out.mkdir()
    code = textwrap.dedent(f"""
        import sys, time
        from xqg.io import lock_folder
        lock_folder({str(out)!r})
        print("locked", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLockedError, match=rf"process {holder.pid} is writing this folder"):
            lock_folder(out)
    finally:
        holder.kill()
        holder.wait()
    lock_folder(out)  # the kernel dropped the killed holder's lock
    unlock_folder(out)
    assert not (out / LOCK).exists()


@pytest.mark.slow
def test_a_second_encode_into_the_same_folder_is_refused(inputs, tmp_path):
    out = tmp_path / "emb"
    out.mkdir()
    lock_folder(out)  # this test process holds it
    try:
        args = ["encode", str(inputs["corpus"]), "--out", str(out), "--model", str(inputs["model"])]
        r = _xqg([*args, "--device", "cpu"])
    finally:
        unlock_folder(out)
    assert r.returncode == 2 and f"process {os.getpid()} is writing this folder" in r.stderr, r.stderr
    assert not _looks_complete(out)


def test_a_tampered_shard_is_named(tmp_path, tiny_encoder_config):
    from xqg.config import IndexConfig
    from xqg.encode import EmbeddingShards
    from xqg.index import build_index

    emb = tmp_path / "emb"
    _encode(_corpus(tmp_path / "c.jsonl", 50), emb, tiny_encoder_config)
    good = (emb / "emb-00001.npy").read_bytes()
    arr = np.load(emb / "emb-00001.npy")
    arr[3, 2] += 1.0
    np.save(emb / "emb-00001.npy", arr)  # same size, other bytes
    with pytest.raises(ManifestError, match=r"emb-00001\.npy: does not match the checksum"):
        EmbeddingShards.open(emb)
    with pytest.raises(ManifestError, match=r"emb-00001\.npy"):
        build_index(emb, tmp_path / "index", IndexConfig(), show_progress=False)
    (emb / "emb-00001.npy").write_bytes(good)
    (emb / "ids-00002.txt").write_text("short\n")
    with pytest.raises(ManifestError, match=r"ids-00002\.txt: \d+ bytes"):
        read_manifest(emb)


def test_a_read_only_folder_in_process(tmp_path, tiny_encoder_config):
    corpus = _corpus(tmp_path / "c.jsonl", 30)
    out = tmp_path / "emb"
    undo = _readonly(out)
    if undo is None:
        pytest.skip("cannot make a read-only folder here")
    try:
        with pytest.raises(OutputError, match="cannot write"):
            _encode(corpus, out, tiny_encoder_config)
    finally:
        undo()
    assert not _looks_complete(out)
    assert _encode(corpus, out, tiny_encoder_config)["counts"]["rows"] == 30


def test_a_moved_folder_still_loads_and_checks(tmp_path, tiny_encoder_config):
    """Copy the corpus, embeddings and index to another place: the manifests hold no absolute path
    of the first place, everything loads and verifies, and the recorded inputs still resolve."""
    from xqg.config import IndexConfig
    from xqg.data.corpus import iter_corpus
    from xqg.encode import EmbeddingShards, encode_corpus
    from xqg.index import build_index
    from xqg.io import recorded_path
    from xqg.search import Searcher
    from xqg.serve.sources import resolve_sources

    first = tmp_path / "first"
    first.mkdir()
    corpus = _corpus(first / "corpus.jsonl", 60)
    encode_corpus(iter_corpus(corpus), first / "emb", config=tiny_encoder_config, shard_size=25,
                  inputs={"path": str(corpus.resolve())}, show_progress=False)  # fmt: skip
    build_index(first / "emb", first / "index", IndexConfig(), show_progress=False)
    for name in ("emb", "index"):
        manifest = json.loads((first / name / "manifest.json").read_text())
        assert str(first) not in json.dumps({k: v for k, v in manifest.items() if k != "config"})
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    shards = EmbeddingShards.open(moved / "emb")
    assert len(shards.ids()) == 60
    assert Searcher(moved / "index").ntotal == 60
    m = read_manifest(moved / "emb")
    assert recorded_path(moved / "emb", m["inputs"]["path"]) == moved / "emb" / ".." / "corpus.jsonl"
    src = resolve_sources(moved / "index")
    assert src.embeddings is not None and src.embeddings.resolve() == (moved / "emb").resolve()
    assert src.corpus is not None and src.corpus.resolve() == (moved / "corpus.jsonl").resolve()


def test_committed_generated_folder_records_no_path_and_is_reused_as_is():
    """reports/generated/xquad-gemma-lora was rewritten by xqg.generate.portable: it records no
    path of any machine and is bound by today's run config (a rerun reuses it unchanged)."""
    root = Path(__file__).resolve().parents[1]
    folder = root / "reports" / "generated" / "xquad-gemma-lora"
    if not folder.is_dir():
        pytest.skip("no committed generated folder")
    from xqg.config import load_experiment
    from xqg.generate.run import run_config
    from xqg.generate.spec import resolved_config
    from xqg.io import config_hash, read_manifest
    from xqg.pipeline import packaged_config

    bound = json.loads((folder / "config.json").read_text())
    exp = load_experiment(packaged_config("xquad-xqg"), {})
    gen = resolved_config(exp.generator.model_copy(update={"langs": bound["config"]["generator"]["langs"]}))
    shard_size = bound["config"]["shard_size"]
    assert bound["config_hash"] == config_hash(run_config(gen, shard_size))
    assert run_config(gen, shard_size)["generator"]["adapter"] == "builtin"
    for f in folder.glob("*.json"):
        text = f.read_text(encoding="utf-8")
        assert '"/' not in text, f"{f.name} records an absolute path"
    read_manifest(folder)  # checksums hold
