"""``tuner status``: what a run folder says, including a driver that was killed mid-study."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from tuner.errors import TunerError
from tuner.status import describe, find_run


def _run_folder(results, name, status, pid, host=None, progress=None):
    run_dir = results / "steel_binary" / name
    run_dir.mkdir(parents=True)
    info = {"space": "steel_binary", "name": name, "status": status, "started": f"2026-01-0{len(name)}T10:00:00",
            "driver": {"pid": pid, "host": host or socket.gethostname()}}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(info))
    if progress:
        (run_dir / "progress.json").write_text(json.dumps(progress))
    return run_dir


def test_a_running_study_shows_counts_and_the_best_so_far(tmp_path):
    progress = {"updated": "now", "total": 10, "metric": "val_accuracy", "mode": "max",
                "counts": {"running": 2, "pruned": 3, "completed": 1},
                "best": {"trial": 4, "score": 0.81, "config": {"lr": 0.01}},
                "trials": [{"trial": 4, "status": "completed", "score": 0.81, "epochs": 9},
                           {"trial": 2, "status": "pruned", "score": 0.7, "epochs": 1}]}  # fmt: skip
    run_dir = _run_folder(tmp_path, "a", "running", os.getpid(), progress=progress)
    text = describe(find_run(tmp_path, "steel_binary", None))
    assert text.startswith("steel_binary run a: running")
    assert "trials: 4/10 done (1 completed, 3 pruned), 2 running" in text
    assert 'best val_accuracy (max): 0.8100 (trial 4) {"lr":0.01}' in text
    assert find_run(tmp_path, "steel_binary", "a") == run_dir


def test_a_killed_driver_is_reported_not_shown_as_running(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _run_folder(tmp_path, "a", "running", gone.pid)
    assert f"interrupted (its driver, pid {gone.pid}, is gone" in describe(find_run(tmp_path, "steel_binary", "a"))
    _run_folder(tmp_path, "bb", "running", 1, host="elsewhere")
    assert "running (on elsewhere, pid 1; not checked from here)" in describe(find_run(tmp_path, "steel_binary", None))


def test_unknown_runs_are_errors_listing_the_known_ones(tmp_path):
    with pytest.raises(TunerError, match="no run of space steel_binary under"):
        find_run(tmp_path, "steel_binary", None)
    _run_folder(tmp_path, "a", "finished", os.getpid())
    with pytest.raises(TunerError, match="no run named 'zz' for space steel_binary under .*; runs: a"):
        find_run(tmp_path, "steel_binary", "zz")


def test_a_finished_study_shows_how_its_config_was_chosen_and_its_test_figures_beside_the_reports(tmp_path):
    run_dir = _run_folder(tmp_path, "a", "finished", 1)
    candidate = {"trial_number": 7, "search_score": 0.86, "seeds": [1, 2, 3], "scores": [0.8, 0.82, 0.81],
                 "mean": 0.81, "sd": 0.01}  # fmt: skip
    export = {"metric": {"name": "val_accuracy", "mode": "max", "value": 0.86},
              "verification": {"chosen_trial_number": 7, "candidates": [candidate, {**candidate, "trial_number": 3,
                                                                                     "mean": 0.79}]},
              "test": {"test_accuracy": 0.7959},
              "test_uncertainty": {"interval": {"test_accuracy": [0.71, 0.87]}, "level": 0.95, "resamples": 200,
                                   "split": "test", "split_size": 98},
              "report_baseline": {"note": "trained", "test": {"test_accuracy": 0.7551},
                                  "uncertainty": {"interval": {"test_accuracy": [0.67, 0.84]}}},
              "report": {"results": {"test_accuracy": 0.8}}, "data": {"synthetic": False}}  # fmt: skip
    (run_dir / "best_config.json").write_text(json.dumps(export))
    lines = describe(run_dir).splitlines()
    assert (
        "  chosen: trial 7, val_accuracy 0.8100 +- 0.0100 over fresh seeds [1, 2, 3] (search 0.8600); best mean "
        "of 2 re-verified config(s)"
    ) in lines
    assert any(line.startswith("  test split (98 rows; [95% bootstrap interval, 200 resamples])") for line in lines)
    row = next(line for line in lines if line.strip().startswith("test_accuracy"))
    assert row.split("|") == [row.split("|")[0], "      0.7551 [0.6700, 0.8400] ", " 0.8000"]
    assert "0.7959 [0.7100, 0.8700]" in row.split("|")[0]
