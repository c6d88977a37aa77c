"""Micro-batching: concurrent requests share one encoder call.

One worker thread owns the encoder (so the model is never entered twice at once) and runs
``fn(payloads)`` on a batch of queued payloads. While it runs, new requests queue up and form
the next batch, so the batch size follows the load with no tuning: one client is never delayed,
sixteen share a forward pass. A batch may also wait up to ``max_wait`` for requests that have
already *arrived* (counted by :meth:`MicroBatcher.arrival` as soon as the HTTP request starts,
before its body is read) but not yet queued, and for the clients the previous batch answered
(clients that send their next query as soon as they are answered would otherwise settle into
two half-size batches taking turns). It never waits when nothing is on the way and the
batch is as large as the last, which is what keeps a lone client's latency that of the bare
encoder.

The queue is bounded (``max_queue`` payloads): past it :meth:`submit` raises :class:`QueueFull`
at once, which the app answers with 429, instead of letting latency grow without limit.
:meth:`close` finishes what is queued and stops the thread (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """More payloads are waiting than ``max_queue`` allows."""


class BatcherClosed(Exception):
    """The batcher was closed (the server is shutting down)."""


@dataclass
class _Entry:
    payloads: Sequence[Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Any]]


@dataclass
class BatchStats:
    batches: int = 0
    payloads: int = 0
    largest: int = 0
    seconds: float = 0.0
    """Time spent in the batch function (the encoder, the searches, the explanations)."""
    sizes: dict[int, int] = field(default_factory=dict)
    """batch size → how many batches had it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "queries": self.payloads,
            "mean_batch": round(self.payloads / self.batches, 3) if self.batches else 0.0,
            "largest_batch": self.largest,
            "batch_seconds": round(self.seconds, 4),
            "batch_sizes": {str(k): v for k, v in sorted(self.sizes.items())},
        }


class Arrival:
    """A request on its way to :meth:`MicroBatcher.submit`; :meth:`done` when it queued or gave up."""

    def __init__(self, batcher: MicroBatcher) -> None:
        self._batcher = batcher
        self._open = True
        with batcher._cond:
            batcher._arriving += 1

    def done(self) -> None:
        with self._batcher._cond:
            self._done_locked()

    def _done_locked(self) -> None:
        if self._open:
            self._open = False
            self._batcher._arriving -= 1
            self._batcher._cond.notify_all()


def _resolve(
    future: asyncio.Future[list[Any]], result: list[Any] | None, error: BaseException | None
) -> None:
    if future.done():  # the client went away and the request was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result or [])


class MicroBatcher:
    """Run ``fn`` over batches of payloads submitted from any event loop.

    Args:
        fn: called on the worker thread with a list of payloads; returns one result per payload.
        max_batch: most payloads in one call of ``fn``.
        max_wait: seconds a batch may wait for requests that have arrived but not yet queued.
        max_queue: most payloads waiting; more raise :class:`QueueFull`.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], list[Any]],
        *,
        max_batch: int = 32,
        max_wait: float = 0.003,
        max_queue: int = 1024,
        name: str = "xqg-encoder",
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("max_batch and max_queue must be ≥ 1 and max_wait ≥ 0")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._cond = threading.Condition()
        self._entries: deque[_Entry] = deque()
        self._queued = 0
        self.running = 0
        """Payloads in the batch the worker is computing now."""
        self._arriving = 0
        self._last_size = 0
        self._last_end = 0.0
        self._carried = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # -- request side ------------------------------------------------------------------------
    def arrival(self) -> Arrival:
        """Count a request that will submit soon, so a forming batch may wait for it."""
        return Arrival(self)

    async def submit(self, payloads: Sequence[Any], arrival: Arrival | None = None) -> list[Any]:
        """Queue ``payloads`` (all in one batch) and await their results, in order."""
        if not 0 < len(payloads) <= self.max_batch:
            raise ValueError(f"a submission holds 1 to {self.max_batch} payloads, not {len(payloads)}")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        with self._cond:
            if arrival is not None:
                arrival._done_locked()
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            if self._queued + len(payloads) > self.max_queue:
                raise QueueFull(
                    f"{self._queued} queries are waiting for the encoder (limit {self.max_queue})"
                )
            self._entries.append(_Entry(payloads, loop, future))
            self._queued += len(payloads)
            self._cond.notify_all()
        return await future

    @property
    def queued(self) -> int:
        return self._queued

    # -- worker side -------------------------------------------------------------------------
    def _take_batch(self) -> list[_Entry] | None:
        """Block for the next batch; ``None`` once closed and drained."""
        with self._cond:
            while not self._entries and not self._closed:
                self._cond.wait()
            if not self._entries:
                return None
            # Clients the last batch answered a moment ago usually send again at once: expect
            # them, on top of the requests that queued while that batch was computed.
            recent = time.monotonic() - self._last_end <= self.max_wait
            target = min(self.max_batch, self._carried + (self._last_size if recent else 0))
            batch = [self._entries.popleft()]
            size = len(batch[0].payloads)
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch:
                if self._entries:
                    if size + len(self._entries[0].payloads) > self.max_batch:
                        break
                    entry = self._entries.popleft()
                    batch.append(entry)
                    size += len(entry.payloads)
                    continue
                remaining = deadline - time.monotonic()
                # Worth waiting for: requests already being read, or fewer than expected.
                expected = self._arriving > 0 or size < target
                if not expected or self._closed or remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._queued -= size
            self.running = size
            self._last_size = size
            return batch

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            payloads = [p for e in batch for p in e.payloads]
            results: list[Any] | None = None
            error: BaseException | None = None
            t0 = time.perf_counter()
            try:
                results = self.fn(payloads)
                if len(results) != len(payloads):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(payloads)}")
            except BaseException as e:  # handed to every waiting request; the worker keeps running
                error = e
            self.running = 0
            s = self.stats
            s.seconds += time.perf_counter() - t0
            s.batches += 1
            s.payloads += len(payloads)
            s.largest = max(s.largest, len(payloads))
            s.sizes[len(payloads)] = s.sizes.get(len(payloads), 0) + 1
            start = 0
            for e in batch:
                part = None if results is None else results[start : start + len(e.payloads)]
                start += len(e.payloads)
                try:
                    e.loop.call_soon_threadsafe(_resolve, e.future, part, error)
                except RuntimeError:  # that event loop is closed: nobody is waiting any more
                    pass
            with self._cond:
                self._carried = self._queued  # these queued while the batch was computed
                self._last_end = time.monotonic()

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish what is queued, stop the worker thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
