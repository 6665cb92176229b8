"""``benchmarks/study_profile.py`` runs a real study as ``tuner run`` does and says where its time went: the phases
fit in the study's wall time and the search phase's slot time splits into shares that add up, the trials' own
timers agreeing with Tune's clock."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "study_profile.py"
_SPEC = importlib.util.spec_from_file_location("study_profile", SCRIPT)
profiler = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(profiler)


@pytest.mark.slow
def test_the_profile_of_a_tiny_study_adds_up(tmp_path):
    figures = tmp_path / "profile.json"
    command = [sys.executable, str(SCRIPT), "steel_multiclass", "--trials", "2",
               "--max-epochs", "2", "--verify-top", "0", "--no-dashboard", "--results-dir", str(tmp_path / "results"),
               "--profile-json", str(figures)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compute share" in done.stdout and "start-up to the first trial" in done.stdout

    profile = json.loads(figures.read_text())
    assert set(profile["phases_s"]) == set(profiler.PHASES)
    assert 0 < profile["first_trial_s"] < profile["wall_s"]
    assert (
        profile["first_trial_s"] + sum(profile["phases_s"].values()) - profile["phases_s"]["search"]
        < (profile["wall_s"])
    )
    assert profile["prepare_s"]["data"] <= profile["prepare_s"]["prepare (all)"]
    search = profile["search"]
    assert search["trials"] == 2 and search["slots"] >= 1
    parts = [search[key] for key in profiler.TRIAL_TIMERS] + [search["trial_start_s"], search["outside_trials"]]
    assert sum(parts) == pytest.approx(1.0)
    assert search[next(iter(profiler.TRIAL_TIMERS))] > 0  # the families computed
    assert all(share >= 0 for share in parts)  # each trial's timers fit in Tune's own time_total_s
