"""The HTTP layer of ``xqg serve`` (FastAPI): endpoints, limits, the web page.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``POST /search`` ``{query, k, lang?}`` → ranked hits with scores; with a baseline index also the
  baseline's ranking and each passage's move; with an augmented index, why each hit scored.
* ``POST /search/batch`` ``{queries: [{query, lang?}], k}`` → one answer per query.
* ``GET /passages/{id}`` → text, title and the generated queries per language.
* ``GET /health`` → what is served, and the micro-batching counters.
* ``GET /`` → the web page (static HTML + JS + CSS, shipped in ``static/``).

Limits (all in :class:`~xqg.serve.settings.ServeSettings`) are answered with a 4xx and a message
that names the field and the limit: 413 for a body over ``max_body_bytes`` (checked on the
declared length and again on the bytes read), 422 for a query over ``max_query_chars``, ``k``
over ``max_k``, more than ``max_batch_queries`` queries or a malformed id, 404 for an unknown
passage, 429 when ``max_queue`` queries already wait for the encoder. Passage ids are only ever
dictionary keys (no path is built from them). CORS headers are sent only for origins given in
``cors_origins``.

No ``from __future__ import annotations`` here: the request models are built per app from the
settings (their limits appear in the OpenAPI schema), which needs evaluated annotations.
"""

import json
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from xqg import __version__
from xqg.serve.batching import BatcherClosed, MicroBatcher, QueueFull
from xqg.serve.service import QueryItem, SearchService
from xqg.serve.settings import ServeSettings

#: Language codes: ISO 639-1/3 lower case ("ar", "zh", "fil").
LANG_PATTERN = r"^[a-z]{2,3}$"
#: Any printable id without a path separator; ids are looked up, never joined to a path.
ID_PATTERN = r"^[^/\\\x00-\x1f\x7f]+$"
MAX_ID_CHARS = 512
SEARCH_PATHS = ("/search", "/search/batch")
STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "style.css": "text/css"}


# -- response models (for the OpenAPI schema; responses are written as JSON directly) ---------------
class ClosestQuery(BaseModel):
    lang: str
    sample: int
    text: str | None
    score: float = Field(description="inner product of the query with this generated query")


class Explanation(BaseModel):
    plain_score: float = Field(description="the query against the plain passage vector")
    fused_score: float = Field(description="the query against the fused (augmented) passage vector")
    fusion_delta: float = Field(description="fused_score - plain_score: how far fusion moved the score")
    closest_queries: list[ClosestQuery]


class Hit(BaseModel):
    rank: int
    id: str
    title: str
    snippet: str
    score: float
    baseline_rank: int | None = Field(
        None, description="results: the baseline's rank of this passage (null: beyond rank_depth)"
    )
    augmented_rank: int | None = Field(
        None, description="baseline: the served index's rank of this passage (null: beyond rank_depth)"
    )
    rank_change: int | None = Field(
        None, description="places the served (augmented) index ranks it above the baseline"
    )
    explanation: Explanation | None = None


class SearchResponse(BaseModel):
    query: str
    lang: str = Field(description="the query's language, as given or detected ('und': unknown)")
    lang_source: Literal["given", "detected"]
    k: int
    results: list[Hit] = Field(description="the served index's ranking")
    baseline: list[Hit] | None = Field(description="the baseline index's ranking, if one is served")


class BatchResponse(BaseModel):
    results: list[SearchResponse]


class PassageResponse(BaseModel):
    id: str
    title: str
    text: str
    generated: dict[str, list[str]] = Field(description="language → generated queries, sample order")
    generated_count: int


class Message(BaseModel):
    detail: str


class ValidationMessage(BaseModel):
    detail: list[dict[str, Any]]
    message: str = Field(description="the first problem, in words")


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "the body cannot be read (not UTF-8 JSON)"},
    413: {"model": Message, "description": "request body too large"},
    422: {"model": ValidationMessage, "description": "a field breaks a limit or is malformed"},
    429: {"model": Message, "description": "too many queries are waiting for the encoder"},
    503: {"model": Message, "description": "the server is shutting down"},
}


def _json(data: Any, status: int = 200, *, ascii: bool = False) -> Response:
    """JSON without FastAPI's re-validation; ``ascii`` escapes all (an echoed input may hold lone
    surrogates, which UTF-8 cannot encode)."""
    body = json.dumps(data, ensure_ascii=ascii, separators=(",", ":"), allow_nan=False)
    return Response(body.encode("utf-8"), status_code=status, media_type="application/json")


class _BodyLimit:
    """ASGI middleware: 413 for bodies over the limit; counts search requests as they arrive."""

    def __init__(self, app: Any, max_bytes: int, batcher: MicroBatcher) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.batcher = batcher

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = f"request body over {self.max_bytes} bytes"
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _json({"detail": too_large}, 413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # chunked bodies declare no length
                    raise HTTPException(413, too_large)
            return message

        arrival = None
        if scope.get("method") == "POST" and scope.get("path") in SEARCH_PATHS:
            arrival = self.batcher.arrival()
            scope.setdefault("state", {})["arrival"] = arrival
        started = False

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except HTTPException as e:  # raised while a body was read outside FastAPI's own handling
            if started or e.status_code != 413:
                raise
            await _json({"detail": too_large}, 413)(scope, receive, send)
        finally:
            if arrival is not None:
                arrival.done()


def _json_integer(value: Any) -> Any:
    """What JSON Schema's ``integer`` allows (3 or 3.0), so never ``true`` or ``"3"``, which
    pydantic's lax mode would take as 1 and 3 (its strict mode would also refuse 3.0)."""
    if isinstance(value, bool | str):
        raise ValueError("Input should be a valid integer")
    return value


def _first_problem(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "invalid request"
    e = errors[0]
    where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
    return f"{where}: {e.get('msg', 'invalid')}"


def create_app(service: SearchService, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app over a loaded :class:`SearchService`; its encoder is called micro-batched."""
    s = settings or service.settings
    batcher = MicroBatcher(
        service.search_batch, max_batch=s.max_batch, max_wait=s.max_wait_ms / 1000, max_queue=s.max_queue
    )

    QueryText = Annotated[
        str,
        StringConstraints(min_length=1, max_length=s.max_query_chars, pattern=r"\S"),
        Field(description=f"the query, 1 to {s.max_query_chars} characters, not only spaces"),
    ]
    K = Annotated[  # the validator after Field: before it, the schema says `le` for `maximum`
        int,
        Field(ge=1, le=s.max_k, description=f"hits to return, 1 to {s.max_k}"),
        BeforeValidator(_json_integer),
    ]
    Lang = Annotated[
        str | None,
        Field(pattern=LANG_PATTERN, description="the query's language if known (else it is detected)"),
    ]

    class SearchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: QueryText
        k: K = 10
        lang: Lang = None

    class BatchQuery(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: QueryText
        lang: Lang = None

    class BatchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        queries: list[BatchQuery] = Field(
            min_length=1, max_length=s.max_batch_queries, description=f"1 to {s.max_batch_queries} queries"
        )
        k: K = 10

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202 - FastAPI's lifespan protocol
        from xqg.generate.langcheck import preload

        preload()  # langid's model (1-5 s) loads at start, not in the first Latin query's request
        yield
        batcher.close(timeout=s.shutdown_timeout_s)

    app = FastAPI(
        title="xqg search",
        version=__version__,
        description="Cross-lingual dense retrieval over an xqg index, baseline vs xQG-augmented passages, "
        "with the generated queries behind each hit.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.batcher = batcher

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = json.loads(json.dumps(exc.errors(), default=str))
        for e in errors:
            e.pop("ctx", None)
            e.pop("url", None)
            if isinstance(e.get("input"), str) and len(e["input"]) > 80:
                e["input"] = e["input"][:80] + "…"
        return _json({"detail": errors, "message": _first_problem(errors)}, 422, ascii=True)

    async def _answer(request: Request, items: list[QueryItem]) -> list[dict[str, Any]]:
        arrival = getattr(request.state, "arrival", None)
        try:
            return await batcher.submit(items, arrival)
        except QueueFull as e:
            raise HTTPException(
                429, f"server busy: {e}; retry shortly", headers={"Retry-After": "1"}
            ) from None
        except BatcherClosed as e:
            raise HTTPException(503, str(e)) from None

    @app.post("/search", response_model=SearchResponse, responses=ERRORS, summary="Search one query")
    async def search(request: Request, body: SearchRequest) -> Response:
        """Rank passages for one query; with a baseline index, both rankings and each rank move."""
        (answer,) = await _answer(request, [QueryItem(body.query, body.k, body.lang)])
        return _json(answer)

    @app.post("/search/batch", response_model=BatchResponse, responses=ERRORS, summary="Search many queries")
    async def search_batch(request: Request, body: BatchRequest) -> Response:
        """Several queries in one request (encoded in one micro-batch); ``k`` applies to each."""
        items = [QueryItem(q.query, body.k, q.lang) for q in body.queries]
        return _json({"results": await _answer(request, items)})

    @app.get(
        "/passages/{passage_id}",
        response_model=PassageResponse,
        responses={404: {"model": Message, "description": "no such passage"}, **ERRORS},
        summary="One passage and its generated queries",
    )
    async def passage(
        passage_id: Annotated[
            str, Path(pattern=ID_PATTERN, max_length=MAX_ID_CHARS, description="passage id")
        ],
    ) -> Response:
        found = service.passage(passage_id)
        if found is None:
            raise HTTPException(404, f"no passage with id '{passage_id[:100]}' in the served index")
        return _json(found)

    @app.get("/health", summary="Liveness and what is served")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            **service.describe(),
            "queued": batcher.queued,
            "encoding": batcher.running,
            "batching": batcher.stats.as_dict(),
            "limits": s.model_dump(
                include={"max_query_chars", "max_k", "max_body_bytes", "max_batch_queries", "max_batch"}
            ),
        }

    pages = {
        name: resources.files("xqg.serve").joinpath("static", name).read_bytes() for name in STATIC_FILES
    }

    @app.get("/", include_in_schema=False)
    async def index_page() -> Response:
        return Response(pages["index.html"], media_type="text/html; charset=utf-8")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in pages:
            raise HTTPException(404, "no such file")
        return Response(pages[name], media_type=f"{STATIC_FILES[name]}; charset=utf-8")

    if s.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type"])  # fmt: skip
    app.add_middleware(_BodyLimit, max_bytes=s.max_body_bytes, batcher=batcher)
    return app
