"""The Ray backend: same shard files as the local backend, resumable at shard granularity.

Ray runs locally with 2 CPUs (no cluster needed); the model is the tiny random BERT of conftest,
loaded once per actor.
"""

from __future__ import annotations

import json

import pytest

from xqg.distributed import LocalRunner, RayOptions, ordered_compute
from xqg.encode import encode_to_shards, shard_names

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_ordered_compute_keeps_task_order_around_done_tasks():
    calls = []

    def compute(x):
        calls.append(x)
        return x * 10

    out = list(ordered_compute(range(7), lambda t: None if t % 3 == 0 else t, LocalRunner(compute)))
    assert out == [(0, None), (1, 10), (2, 20), (3, None), (4, 40), (5, 50), (6, None)]
    assert calls == [1, 2, 4, 5]


def _records(n):
    return [(f"d{i:03d}", f"passage number {i} about topic {i % 7} " * (1 + i % 5)) for i in range(n)]


@pytest.mark.slow  # starts a local Ray cluster (~15 s); the Ray path of generate is slow too
def test_ray_encode_gives_the_local_shards_and_resumes(tmp_path, tiny_encoder_config, local_ray):
    cfg = tiny_encoder_config.model_copy(update={"threads": 1})
    recs = _records(45)
    local = encode_to_shards(recs, tmp_path / "local", config=cfg, shard_size=10, show_progress=False)
    remote = encode_to_shards(recs, tmp_path / "ray", config=cfg, shard_size=10, show_progress=False,
                              backend="ray", ray=RayOptions(workers=2, window=3))  # fmt: skip
    assert local["config_hash"] == remote["config_hash"]
    assert local["counts"]["rows"] == remote["counts"]["rows"] == 45
    for i in range(5):
        for name in shard_names(i):
            assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name
    assert (tmp_path / "local" / "ids.txt").read_bytes() == (tmp_path / "ray" / "ids.txt").read_bytes()
    # Resume: damage one shard; the rerun recomputes only that one, on Ray, identically.
    (tmp_path / "ray" / shard_names(3)[0]).write_bytes(b"broken")
    again = encode_to_shards(recs, tmp_path / "ray", config=cfg, shard_size=10, show_progress=False,
                             backend="ray", ray=RayOptions(workers=2))  # fmt: skip
    assert again["counts"]["reused_shards"] == 4
    assert (tmp_path / "local" / shard_names(3)[0]).read_bytes() == (
        tmp_path / "ray" / shard_names(3)[0]
    ).read_bytes()
    assert json.loads((tmp_path / "ray" / "manifest.json").read_text())["counts"]["shards"] == 5
