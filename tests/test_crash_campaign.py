"""The crash campaign (scripts/crash_campaign.py), reduced: 3 SIGKILL points per long stage, each
rerun must equal an uninterrupted run (bytes; trained weights within 1e-6) with no row lost or
duplicated and no manifest on an unfinished folder. About 37 CPU-s (two points at a time: 80 s
on the shared 2 cores at load 4.5), so `slow`; the full campaign (20 points per stage) and its
figures: docs/reliability.md."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_script(tmp_path: Path, *args: str) -> list[dict]:
    """Run the campaign in a fresh process: it forks, and a fork from this pytest process (whose
    earlier tests started torch's and other libraries' threads) can deadlock in the child."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    out = tmp_path / "figures.json"
    script = str(ROOT / "scripts" / "crash_campaign.py")
    cmd = [sys.executable, script, "--quiet", "--work", str(tmp_path / "w"), "--json", str(out), *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8"))


def _campaign():
    spec = importlib.util.spec_from_file_location("crash_campaign", ROOT / "scripts" / "crash_campaign.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_campaign"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_reduced_campaign_every_stage(tmp_path):
    reports = _run_script(tmp_path, "--points", "3", "--seed", "17")
    assert [r["stage"] for r in reports] == list(_campaign().STAGES)
    for r in reports:
        assert not r["failures"], f"{r['stage']}: " + "\n".join(r["failures"])
        assert r["points"] == 3 and r["resumed"] == 3 and r["identical"] == 3
        assert r["rows_lost"] == 0 and r["rows_duplicated"] == 0
        assert r["complete_but_wrong"] == 0 and r["leftovers"] == 0
    assert sum(r["killed"] for r in reports) >= 18  # most points really killed the stage


def test_one_kill_of_encode_resumes_identically(tmp_path):
    """The fast subset's slice of the campaign: one event-triggered SIGKILL in encode."""
    (r,) = _run_script(tmp_path, "--points", "1", "--seed", "3", "--stages", "encode")
    assert not r["failures"], r["failures"]
    assert r["identical"] == 1 and r["rows_lost"] == r["rows_duplicated"] == 0
