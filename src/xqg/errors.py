"""Errors that name where bad input is, so a user can fix the file rather than debug xqg."""

from __future__ import annotations

from pathlib import Path


class XqgError(Exception):
    """Base class: the CLI prints these without a traceback and exits non-zero."""


class DataFormatError(XqgError):
    """Malformed input: names the file, the 1-based line (or record) and the field."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")


class ManifestError(XqgError):
    """A stage's input does not match what its manifest promises (ids, counts, checksums, config)."""


class OutputError(XqgError):
    """An output could not be written (full disk, file size limit, read-only or unwritable folder).

    Nothing half-written is marked complete; rerunning the same command after fixing the cause
    resumes from the finished pieces.
    """


class FolderLockedError(XqgError):
    """Another process is writing the same output folder (the message names its pid)."""
