"""Progress bars with ETA for long jobs, quiet when output is not a terminal unless asked."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm


def progress_bar(*, total: int | None, desc: str, unit: str = "it", disable: bool = False, **kw: Any) -> tqdm:
    """A tqdm bar (rate + ETA). ``XQG_PROGRESS=0`` silences bars; ``=1`` forces them in logs/CI."""
    env = os.environ.get("XQG_PROGRESS")
    if env == "0":
        disable = True
    elif env == "1":
        disable = False
    elif not disable and not sys.stderr.isatty():
        kw.setdefault("mininterval", 5.0)  # logs: fewer, still-informative lines
    return tqdm(total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True, **kw)
