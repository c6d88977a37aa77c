"""Where shard computations run: in this process (``local``) or on a Ray cluster (``ray``).

``encode`` and ``generate`` are shard loops: decide which shards need (re)computing, compute
them, write each shard's files atomically, then write the manifest. Only the *compute* step moves
to Ray; deciding what to compute, writing files and the manifest stay in the driver, so both
backends produce the same shard files and manifests and resume the same way (a finished shard is
never recomputed, whichever backend made it).

On Ray, the model lives in long-lived actors (``ray.util.ActorPool``), one per GPU when the
encoder or generator runs on CUDA, else one per ``cpus_per_worker`` CPUs; each actor loads the
model once and receives whole shards. At most ``window`` shards are in flight, so the driver's
memory holds a bounded number of shards whatever the corpus size, and results come back in
shard order. (Ray Data's ``map_batches`` also keeps actors, but only for the life of one dataset,
and building a dataset from xqg's streaming readers needs the whole input materialised or a
custom datasource; the actor pool gives the same model-per-slot placement with streaming input.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from xqg.errors import XqgError

T = TypeVar("T")
Backend = Literal["local", "ray"]


@dataclass(frozen=True)
class RayOptions:
    """How to reach Ray and how big the actor pool is."""

    address: str | None = None  # None: start a local Ray (or join RAY_ADDRESS when set)
    workers: int | None = None  # actors; default: GPUs (CUDA model) or CPUs // cpus_per_worker
    cpus_per_worker: int = 1
    gpus_per_worker: float = 0.0
    window: int | None = None  # shards in flight; default 2 × workers


class LocalRunner:
    """Calls ``compute(payload)`` in this process, in order."""

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self.compute = compute

    def map_ordered(self, payloads: Iterable[Any]) -> Iterator[Any]:
        for p in payloads:
            yield self.compute(p)

    def close(self) -> None:
        pass


def _init_ray(address: str | None) -> Any:
    try:
        import ray
    except ImportError:
        raise XqgError("the ray backend needs Ray: pip install 'ray>=2.9'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    return ray


class RayRunner:
    """An ordered, windowed map over an actor pool whose actors each build ``factory()`` once.

    ``factory`` must be importable by the workers (a module-level function or class); ``method``
    is called on what it returns with one payload.
    """

    def __init__(
        self, factory: Callable[..., Any], args: tuple[Any, ...], method: str, opts: RayOptions
    ) -> None:
        ray = _init_ray(opts.address)
        from ray.util import ActorPool

        resources = ray.available_resources()
        if opts.workers is not None:
            workers = opts.workers
        elif opts.gpus_per_worker:
            workers = max(1, int(resources.get("GPU", 0) / opts.gpus_per_worker))
        else:
            workers = max(1, int(resources.get("CPU", 1) // opts.cpus_per_worker))
        actor_cls = ray.remote(num_cpus=opts.cpus_per_worker, num_gpus=opts.gpus_per_worker)(_ModelActor)
        self.actors = [actor_cls.remote(factory, args, method) for _ in range(workers)]
        self.pool = ActorPool(self.actors)
        self.window = opts.window or 2 * workers
        self.workers = workers
        self._ray = ray

    def map_ordered(self, payloads: Iterable[Any]) -> Iterator[Any]:
        pending: deque[int] = deque()
        for i, p in enumerate(payloads):
            self.pool.submit(lambda a, v: a.run.remote(v), p)
            pending.append(i)
            if len(pending) >= self.window:
                pending.popleft()
                yield self.pool.get_next()
        while pending:
            pending.popleft()
            yield self.pool.get_next()

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)


class _ModelActor:
    """Holds one model for the life of the pool; ``run`` applies ``method`` to a payload."""

    def __init__(self, factory: Callable[..., Any], args: tuple[Any, ...], method: str) -> None:
        self.obj = factory(*args)
        self.method = method

    def run(self, payload: Any) -> Any:
        return getattr(self.obj, self.method)(payload)


def make_runner(
    backend: str,
    local_compute: Callable[[Any], Any],
    worker: Callable[..., Any],
    method: str,
    config: Any,
    ray: RayOptions | None,
) -> LocalRunner | RayRunner:
    """The runner for ``backend``: ``local_compute`` in-process, or ``worker(config dict).method``
    on a Ray actor pool (one GPU per actor when ``config.device`` is CUDA)."""
    if backend == "local":
        return LocalRunner(local_compute)
    if backend != "ray":
        raise XqgError(f"unknown backend '{backend}'; choose local or ray")
    opts = ray or RayOptions()
    if uses_cuda(config.device) and not opts.gpus_per_worker:
        opts = RayOptions(**{**opts.__dict__, "gpus_per_worker": 1.0})
    return RayRunner(worker, (config.model_dump(),), method, opts)


def ordered_compute(
    tasks: Iterable[T],
    needs: Callable[[T], Any | None],
    runner: LocalRunner | RayRunner,
) -> Iterator[tuple[T, Any | None]]:
    """Yield ``(task, result)`` in task order; ``needs(task)`` returns the payload to compute, or
    ``None`` for a task that is already done (its result is ``None``).

    Done tasks wait their turn behind computing ones, so the caller sees every task in order (it
    writes shard files and the manifest in order) while up to the runner's window computes ahead.
    """
    queue: deque[tuple[T, bool]] = deque()

    def payloads() -> Iterator[Any]:
        for task in tasks:
            payload = needs(task)
            queue.append((task, payload is not None))
            if payload is not None:
                yield payload

    results = runner.map_ordered(payloads())
    for result in results:
        while queue and not queue[0][1]:
            yield queue.popleft()[0], None
        task, _ = queue.popleft()
        yield task, result
        result = None  # drop the shard before the next one is computed (peak = one shard, not two)
    while queue:
        task, computed = queue.popleft()
        if computed:  # pragma: no cover - the runner yields one result per payload
            raise XqgError("internal error: a computed shard has no result")
        yield task, None


# --- the workers' models -------------------------------------------------------------------------


class EncodeWorker:
    """Encodes ``(texts, kind)`` payloads with a :class:`~xqg.models.encoder.BiEncoder`."""

    def __init__(self, config_dict: dict[str, Any]) -> None:
        from xqg.config import EncoderConfig
        from xqg.models.encoder import BiEncoder

        self.encoder = BiEncoder(EncoderConfig.model_validate(config_dict))

    def encode(self, payload: tuple[list[str], str]) -> Any:
        texts, kind = payload
        return self.encoder.encode(texts, kind=kind)


class GenerateWorker:
    """Generates for ``(items, n, seed)`` payloads with :func:`~xqg.generate.engines.load_generator`."""

    def __init__(self, config_dict: dict[str, Any]) -> None:
        from xqg.config import GeneratorConfig
        from xqg.generate.engines import load_generator

        self.generator = load_generator(GeneratorConfig.model_validate(config_dict))

    def generate(self, payload: tuple[list[Any], int, int]) -> list[list[str]]:
        items, n, seed = payload
        return self.generator.generate(items, n, seed)


def uses_cuda(device: str) -> bool:
    if device.startswith("cuda"):
        return True
    if device != "auto":
        return False
    import torch

    return torch.cuda.is_available()
