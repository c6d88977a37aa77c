"""Run the service on uvicorn: ``xqg serve`` and ``xqg demo --serve``.

uvicorn turns SIGINT/SIGTERM into a graceful shutdown: it stops accepting connections, lets open
requests finish (up to ``shutdown_timeout_s``), then the app's lifespan closes the micro-batcher,
which answers what is still queued before its thread ends.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

from xqg.errors import XqgError
from xqg.serve.settings import ServeSettings

LOOPBACK = ("127.0.0.1", "localhost", "::1")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
SWITCH_INTERVAL_S = 0.0001


def run_server(service: Any, settings: ServeSettings, *, log: Any = print) -> None:
    """Serve ``service`` (a :class:`~xqg.serve.service.SearchService`) until SIGINT/SIGTERM."""
    import uvicorn

    from xqg.serve.app import create_app

    if settings.host not in LOOPBACK:
        print(
            f"warning: listening on {settings.host}: other machines can reach this service "
            "(it has no authentication)",
            file=sys.stderr,
        )
    d = service.describe()
    base = f" vs baseline {d['baseline']['name']}" if d["baseline"] else ""
    log(
        f"xqg serve: {d['index']['name']} ({d['passages']} passages{base}, "
        f"{d['generated_queries']} generated queries) — page at /, API docs at /docs"
    )
    config = uvicorn.Config(
        create_app(service, settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM and then re-raises the signal to the
    # handler it found; a no-op one here makes that a clean exit (status 0, no traceback).
    # The encoder thread and the event loop share the GIL; torch releases it inside each op and
    # needs it back between ops, so a shorter switch interval keeps each side from stalling the
    # other for Python's default 5 ms at every hand-over.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    stopped: list[int] = []
    main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, lambda n, _f: stopped.append(n)) for sig in SIGNALS} if main else {}
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped:
        log(f"xqg serve: stopped by {signal.Signals(stopped[0]).name}")


def default_demo_generated() -> Path:
    """The committed generated XQuAD queries: in the working folder, else beside the source tree."""
    rel = Path("reports/generated/xquad-gemma-lora")
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (root / rel / "manifest.json").is_file():
            return root / rel
    return rel


def serve_demo(
    demo_dir: str | Path,
    encoder_config: Any,
    *,
    generated: str | Path,
    settings: ServeSettings,
    log: Any = print,
) -> None:
    """Fuse the demo's passages with ``generated`` queries (the dev-chosen setting), then serve the
    augmented index with the demo's own index as the baseline."""
    from xqg.models.encoder import BiEncoder
    from xqg.pipeline import DEMO_FUSION, build_augmented_index
    from xqg.serve.service import SearchService

    demo_dir = Path(demo_dir)
    encoder = BiEncoder(encoder_config)
    aug = build_augmented_index(demo_dir, generated, encoder=encoder, log=log, **DEMO_FUSION)
    service = SearchService(
        aug, baseline=demo_dir / "index", generated=generated, settings=settings, encoder=encoder
    )
    run_server(service, settings, log=log)


def check_generated(path: str | Path) -> Path:
    p = Path(path)
    if not (p / "manifest.json").is_file():
        raise XqgError(f"{p}: not a finished 'xqg generate' folder (no manifest.json)")
    return p
