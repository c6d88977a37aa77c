"""Settings of ``xqg serve``: where it listens and the limits every request is held to.

Kept apart from the app so the CLI can show these defaults in ``--help`` and check a bad value
before any model or index is loaded.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from xqg.config import _Strict


class ServeSettings(_Strict):
    """Listening address, request limits and micro-batching of ``xqg serve``."""

    host: str = Field(
        "127.0.0.1", description="interface to bind; the default is reachable from this host only"
    )
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS; empty = no CORS headers at all"
    )
    max_query_chars: int = Field(512, ge=1, description="longest query text, in characters")
    max_k: int = Field(100, ge=1, description="most hits a request may ask for")
    max_body_bytes: int = Field(16_384, ge=256, description="largest request body")
    max_batch_queries: int = Field(16, ge=1, description="most queries in one POST /search/batch")
    max_batch: int = Field(32, ge=1, description="most queries the encoder takes in one micro-batch")
    max_wait_ms: float = Field(
        25.0, ge=0, description="how long a micro-batch may wait for requests on their way"
    )
    max_queue: int = Field(1024, ge=1, description="queries waiting for the encoder before 429 Busy")
    rank_depth: int = Field(
        100, ge=1, description="depth searched in each index to report the other ranking's rank"
    )
    explain_queries: int = Field(3, ge=0, description="generated queries shown per hit (closest first)")
    shutdown_timeout_s: float = Field(10.0, ge=0, description="time given to open requests on shutdown")

    @model_validator(mode="after")
    def _batch_fits(self) -> ServeSettings:
        if self.max_batch_queries > self.max_batch:
            raise ValueError(
                f"max_batch_queries ({self.max_batch_queries}) cannot exceed max_batch ({self.max_batch}): "
                "one request's queries are encoded in one micro-batch"
            )
        return self
