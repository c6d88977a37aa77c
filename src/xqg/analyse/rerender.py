"""``python -m xqg.analyse.rerender FOLDER…``: render written analysis folders again from their
``analysis.json`` data (:func:`xqg.analyse.common.rerender`), without recomputing anything."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from xqg.analyse.common import rerender
from xqg.errors import XqgError


def main(argv: Sequence[str] | None = None) -> int:
    folders = list(sys.argv[1:] if argv is None else argv)
    if not folders or any(f in ("-h", "--help") for f in folders):
        print(__doc__.strip())
        return 0 if folders else 2
    for folder in folders:
        try:
            out = rerender(folder)
        except XqgError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"re-rendered {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
