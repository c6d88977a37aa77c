"""File plumbing shared by all stages: atomic writes, checksums and manifests.

Every stage writes into a folder and finishes by writing ``manifest.json``. A folder without a
manifest is unfinished by definition; every file is written under a temporary name and renamed
into place, so a crash never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from xqg.errors import ManifestError

MANIFEST = "manifest.json"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``path`` when the block exits cleanly."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically, UTF-8, human-readable."""
    with atomic_open(path) as fh:
        json.dump(obj, fh, ensure_ascii=False, indent=2, sort_keys=False, default=str)
        fh.write("\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_hash(config: dict[str, Any]) -> str:
    """A stable short hash of a configuration, used to refuse resuming with different settings."""
    blob = json.dumps(config, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def environment() -> dict[str, str]:
    """What ran the stage: enough to explain a difference between two machines."""
    import numpy

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
    }
    for mod in ("torch", "transformers", "faiss"):
        m = sys.modules.get(mod)
        if m is not None and hasattr(m, "__version__"):
            env[mod] = m.__version__
    from xqg import __version__

    env["xqg"] = __version__
    return env


def write_manifest(
    out_dir: str | Path,
    *,
    stage: str,
    config: dict[str, Any],
    counts: dict[str, int],
    files: list[str] | None = None,
    inputs: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` last, marking ``out_dir`` complete.

    ``files`` are paths relative to ``out_dir``; each is recorded with its size and sha256 so a
    later stage (or a user) can check nothing was swapped or truncated.
    """
    out_dir = Path(out_dir)
    manifest: dict[str, Any] = {
        "stage": stage,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config,
        "config_hash": config_hash(config),
        "counts": counts,
        "inputs": inputs or {},
        "files": {
            name: {"bytes": (out_dir / name).stat().st_size, "sha256": sha256_file(out_dir / name)}
            for name in (files or [])
        },
        "environment": environment(),
    }
    if extra:
        manifest.update(extra)
    write_json(out_dir / MANIFEST, manifest)
    return manifest


def read_manifest(out_dir: str | Path, *, stage: str | None = None) -> dict[str, Any]:
    """Read a finished stage's manifest; a missing one means the stage never completed."""
    path = Path(out_dir) / MANIFEST
    if not path.exists():
        raise ManifestError(f"{out_dir}: no {MANIFEST} — the stage that writes this folder did not finish")
    manifest = read_json(path)
    if stage is not None and manifest.get("stage") != stage:
        raise ManifestError(f"{path}: expected a '{stage}' folder, found stage '{manifest.get('stage')}'")
    return manifest


def verify_files(out_dir: str | Path, manifest: dict[str, Any]) -> None:
    """Check every file the manifest lists against its recorded size and checksum."""
    out_dir = Path(out_dir)
    for name, meta in manifest.get("files", {}).items():
        p = out_dir / name
        if not p.exists():
            raise ManifestError(f"{p}: listed in the manifest but missing")
        if p.stat().st_size != meta["bytes"] or sha256_file(p) != meta["sha256"]:
            raise ManifestError(f"{p}: does not match the checksum in {out_dir / MANIFEST}")


def bind_folder(
    out_dir: str | Path, run_config: dict[str, Any], *, what: str, overwrite: bool = False
) -> str:
    """Bind a resumable stage's output folder to ``run_config``; return the config hash.

    A folder already bound to other settings is refused (its finished pieces would be reused
    with the wrong meaning) unless ``overwrite``, which deletes its files first. The manifest is
    removed: the folder counts as incomplete until the stage writes a new one at the end.
    """
    out_dir = Path(out_dir)
    cfg_hash = config_hash(run_config)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / "config.json"
    if cfg_path.exists():
        old = read_json(cfg_path)
        if old.get("config_hash") != cfg_hash:
            if not overwrite:
                raise ManifestError(
                    f"{out_dir}: holds {what} made with other settings (config_hash "
                    f"{old.get('config_hash')} ≠ {cfg_hash}); use another folder or --overwrite"
                )
            for p in out_dir.iterdir():
                if p.is_file():
                    p.unlink()
    (out_dir / MANIFEST).unlink(missing_ok=True)
    write_json(cfg_path, {"config": run_config, "config_hash": cfg_hash})
    return cfg_hash
