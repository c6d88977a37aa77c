"""``xqg serve``: an HTTP search service and web page over built indexes (issue 16).

* :mod:`xqg.serve.settings` — listening address and request limits (light: the CLI reads it).
* :mod:`xqg.serve.sources` — what an index was built from, via its manifests.
* :mod:`xqg.serve.service` — encoder + indexes + explanations, no web framework.
* :mod:`xqg.serve.batching` — concurrent requests share one encoder call.
* :mod:`xqg.serve.app` — the FastAPI app, its limits and the static page in ``static/``.
* :mod:`xqg.serve.server` — uvicorn, graceful shutdown, the demo's indexes.

Nothing below this package imports it.
"""
