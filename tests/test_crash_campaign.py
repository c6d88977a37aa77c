"""The crash campaign (scripts/crash_campaign.py), reduced: 3 SIGKILL points per long stage, each
rerun must equal an uninterrupted run (bytes; trained weights within 1e-6) with no row lost or
duplicated and no manifest on an unfinished folder. About 2-3 minutes on 2 cores, so `slow`;
the full campaign (20 points per stage) and its figures: docs/reliability.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _campaign():
    spec = importlib.util.spec_from_file_location("crash_campaign", ROOT / "scripts" / "crash_campaign.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_campaign"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_reduced_campaign_every_stage(tmp_path):
    cc = _campaign()
    reports = cc.run_campaign(points=3, seed=17, work=tmp_path, log=lambda _m: None)
    print("\n" + cc.table(reports))
    assert [r.stage for r in reports] == list(cc.STAGES)
    for r in reports:
        assert r.ok, f"{r.stage}: " + "\n".join(r.failures)
        assert r.points == 3 and r.resumed == 3 and r.identical == 3
        assert r.rows_lost == 0 and r.rows_duplicated == 0 and r.complete_but_wrong == 0 and r.leftovers == 0
    assert sum(r.killed for r in reports) >= 18  # most points really killed the stage


def test_one_kill_of_encode_resumes_identically(tmp_path):
    """The fast subset's slice of the campaign: one event-triggered SIGKILL in encode."""
    cc = _campaign()
    reports = cc.run_campaign(points=1, seed=3, stages=["encode"], work=tmp_path, log=lambda _m: None)
    (r,) = reports
    assert r.ok, r.failures
    assert r.identical == 1 and r.rows_lost == r.rows_duplicated == 0
