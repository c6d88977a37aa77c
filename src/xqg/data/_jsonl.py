"""Line-level reading and writing shared by every text format in :mod:`xqg.data`.

Every reader goes through :func:`iter_lines`, which reads *bytes* and decodes one line at a time.
That is what lets a bad byte be reported as ``file:line`` instead of a bare ``UnicodeDecodeError``
somewhere in a multi-gigabyte corpus, and it keeps memory flat: nothing here holds more than one
line. ``.gz`` files are read and written transparently.

The field helpers (:func:`get_id`, :func:`get_text`, ...) are the single place where the
validation rules live (ids are strings or integers, text must be a non-empty string, ...), so all
formats report the same problem with the same words.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

from xqg.errors import DataFormatError, XqgError
from xqg.io import atomic_open

PathLike = str | Path


def is_gzip(path: PathLike) -> bool:
    return str(path).endswith(".gz")


def base_name(path: PathLike) -> str:
    """The file name without a trailing ``.gz``, used for format detection by extension."""
    name = Path(path).name
    return name[:-3] if name.endswith(".gz") else name


def open_binary(path: PathLike) -> BinaryIO:
    """Open for reading bytes, decompressing ``.gz`` on the fly."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def iter_lines(
    path: PathLike, *, stream: IO[bytes] | None = None, keep_ends: bool = False
) -> Iterator[tuple[int, str]]:
    """Yield ``(1-based line number, decoded line)`` lazily.

    Decoding happens per line so invalid UTF-8 is reported with its line. A UTF-8 byte-order
    mark on the first line is dropped, and so is the line terminator (``\\n`` or ``\\r\\n``)
    unless ``keep_ends`` (the csv module wants them). ``stream`` lets callers read a member of
    an archive while still naming ``path`` in errors.
    """
    own = stream is None
    fh: IO[bytes] = open_binary(path) if stream is None else stream
    lineno = 0
    try:
        while True:
            try:
                raw = fh.readline()
            except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
                raise DataFormatError(path, f"cannot read compressed data ({exc})", line=lineno + 1) from None
            if not raw:
                return
            lineno += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 4]
                raise DataFormatError(
                    path,
                    f"invalid UTF-8 (byte {exc.start} of the line: {bad!r}); files must be UTF-8",
                    line=lineno,
                ) from None
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if not keep_ends:
                if text.endswith("\n"):
                    text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
            yield lineno, text
    finally:
        if own:
            fh.close()


def json_type(value: Any) -> str:
    """JSON's name for a Python value's type: error messages speak the file's language."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def iter_json_objects(path: PathLike, *, stream: IO[bytes] | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(line, object)`` for each non-blank line of a JSONL file.

    Blank lines are skipped (many tools write a trailing one); anything else must be one JSON
    object.
    """
    for lineno, text in iter_lines(path, stream=stream):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                path, f"invalid JSON: {exc.msg} (column {exc.colno})", line=lineno
            ) from None
        if not isinstance(obj, dict):
            raise DataFormatError(path, f"expected a JSON object, found {json_type(obj)}", line=lineno)
        yield lineno, obj


def coerce_id(value: Any, path: PathLike, line: int | None, field: str) -> str:
    """Ids may be strings or integers (many corpora use numeric ids); both become ``str``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataFormatError(
            path, f"id must be a string or integer, found {json_type(value)}", line=line, field=field
        )
    out = str(value)
    if not out.strip():
        raise DataFormatError(path, "id is empty", line=line, field=field)
    return out


def get_id(rec: dict, key: str, path: PathLike, line: int | None, field: str | None = None) -> str:
    if key not in rec:
        raise DataFormatError(path, "missing", line=line, field=field or key)
    return coerce_id(rec[key], path, line, field or key)


def check_text(value: Any, path: PathLike, line: int | None, field: str, *, allow_empty: bool = False) -> str:
    """Text must be a string; whitespace-only counts as empty because it encodes to nothing useful."""
    if not isinstance(value, str):
        raise DataFormatError(path, f"must be a string, found {json_type(value)}", line=line, field=field)
    if not allow_empty and not value.strip():
        raise DataFormatError(path, "is empty", line=line, field=field)
    return value


def get_text(
    rec: dict,
    key: str,
    path: PathLike,
    line: int | None,
    *,
    allow_empty: bool = False,
    field: str | None = None,
) -> str:
    if key not in rec:
        raise DataFormatError(path, "missing", line=line, field=field or key)
    return check_text(rec[key], path, line, field or key, allow_empty=allow_empty)


def get_optional_str(rec: dict, key: str, path: PathLike, line: int | None, field: str | None = None) -> str:
    """Optional string fields (titles): missing or null means empty, anything else must be a string."""
    value = rec.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataFormatError(
            path, f"must be a string, found {json_type(value)}", line=line, field=field or key
        )
    return value


class SeenIds:
    """Duplicate-id detection: a set of the ids seen so far (about 100 bytes per id).

    Only ids are kept, never records, so a corpus is still streamed. ``enabled=False`` turns
    the check off for corpora so large that even their ids should not be held.
    """

    def __init__(self, path: PathLike, field: str, enabled: bool = True) -> None:
        self.path = path
        self.field = field
        self.enabled = enabled
        self._seen: set[str] = set()

    def add(self, id_: str, line: int | None) -> None:
        if not self.enabled:
            return
        if id_ in self._seen:
            raise DataFormatError(
                self.path, f"duplicate id '{id_}' (seen earlier in the file)", line=line, field=self.field
            )
        self._seen.add(id_)


@contextmanager
def atomic_text_writer(path: PathLike) -> Iterator[IO[str]]:
    """A UTF-8 text handle whose file appears at ``path`` only if the block succeeds.

    ``.gz`` paths are gzip-compressed with a zero timestamp so the same content always gives
    the same bytes (and the same checksum in a manifest).
    """
    path = Path(path)
    with atomic_open(path, "wb") as raw:
        if is_gzip(path):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                text = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
                try:
                    yield text
                    text.flush()
                finally:
                    text.detach()
        else:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            try:
                yield text
                text.flush()
            finally:
                text.detach()


def dump_line(obj: Any) -> str:
    """One JSONL line: UTF-8 as-is (not ``\\u`` escapes) so files stay readable and small."""
    return json.dumps(obj, ensure_ascii=False) + "\n"


def check_tsv_cell(value: str, what: str) -> str:
    """TSV has no escaping: a tab or newline inside a value would silently shift columns."""
    if "\t" in value or "\n" in value or "\r" in value:
        raise XqgError(f"cannot write {what} {value[:60]!r} to TSV: it contains a tab or newline")
    return value


def source_file(root: PathLike, *parts: str, what: str) -> Path:
    """A file of a shared data set, with an error that says how to point xqg at the data."""
    path = Path(root, *parts)
    if not path.is_file():
        raise XqgError(f"{what} not found at {path}; set XQG_DATA to the folder holding the shared data sets")
    return path


def describe_inputs(paths: list[Path]) -> dict[str, dict[str, object]]:
    """Manifest ``inputs``: each source file's path, size and sha256, so a build is traceable."""
    from xqg.io import sha256_file

    return {
        p.name: {"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in paths
    }


def read_aligned_lines(first: Path, second: Path) -> tuple[list[str], list[str]]:
    """Two line-aligned text files (bitext); a length mismatch means the pairing is lost."""
    a = [text for _, text in iter_lines(first)]
    b = [text for _, text in iter_lines(second)]
    if len(a) != len(b):
        raise DataFormatError(
            second, f"{len(b)} lines but {first.name} has {len(a)}; the files must be line-aligned"
        )
    return a, b
