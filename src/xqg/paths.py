"""Where xqg keeps caches (rebuilt models, tokenizer data) and where the shared data lives."""

from __future__ import annotations

import os
from pathlib import Path


def xqg_home() -> Path:
    """Cache root: ``$XQG_HOME``, else ``~/.cache/xqg``. Rebuilt models live under ``models/``."""
    home = os.environ.get("XQG_HOME")
    p = Path(home).expanduser() if home else Path.home() / ".cache" / "xqg"
    p.mkdir(parents=True, exist_ok=True)
    return p


def data_root() -> Path:
    """Root of the real data sets: ``$XQG_DATA``, else ``../shared/data`` beside the checkout.

    xqg never copies these into the repository; benchmark builders read from here.
    """
    env = os.environ.get("XQG_DATA")
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "data"
