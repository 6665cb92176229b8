"""``benchmarks/gpu_checks.sh``: its dry run on the CPU writes every figure, so the script the GPU machine runs
cannot rot; and the parts only a GPU run feeds (nvidia-smi samples, the memory test's line) parse what they get."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers.cli import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_checks.sh"


def load_helper():
    spec = importlib.util.spec_from_file_location("gpu_checks", PROJECT_ROOT / "benchmarks" / "gpu_checks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_samples_are_read_within_the_step_only(tmp_path):
    helper = load_helper()
    samples = tmp_path / "gpu_samples.csv"
    samples.write_text(
        "timestamp, utilization.gpu [%], memory.used [MiB], memory.total [MiB], name\n"
        "2026/12/07 13:00:00.100, 10, 1000, 143771, NVIDIA H200\n"
        "2026/12/07 13:00:01.100, 80, 9000, 143771, NVIDIA H200\n"
        "2026/12/07 13:00:02.100, 90, 12000, 143771, NVIDIA H200\n"
        "2026/12/07 13:00:03.100, 5"  # cut when the sampler was stopped
    )
    at = lambda s: __import__("datetime").datetime(2026, 12, 7, 13, 0, s).timestamp()  # noqa: E731
    figures = helper.gpu_samples(samples, at(1), at(3))
    assert figures == {"samples": 2, "mean_util_pct": 85.0, "median_util_pct": 85.0, "max_memory_used_mb": 12000.0}
    assert helper.gpu_samples(samples, at(5), at(9))["samples"] == 0
    assert helper.device_name(samples) == "NVIDIA H200"


def test_memory_test_outcome_and_figures_come_from_its_log(tmp_path):
    helper = load_helper()
    figures = {"trial_pid": [7.0, 7.0], "device_tolerance_mb": 512.0}
    (tmp_path / "gpu_memory.log").write_text(
        f"{helper.MEMORY_MARK}{json.dumps(figures)}\n.\n1 passed, 9 deselected in 3.1s\n"
    )
    assert helper.memory_figures(tmp_path) == {
        "outcome": "passed",
        "pytest": "1 passed, 9 deselected in 3.1s",
        "figures": figures,
    }
    (tmp_path / "gpu_memory.log").write_text("F\n= 1 failed, 9 deselected in 3.1s =\n")
    assert helper.memory_figures(tmp_path)["outcome"] == "failed"
    (tmp_path / "gpu_memory.log").write_text("ImportError while loading conftest\n")
    assert helper.memory_figures(tmp_path)["outcome"] == "no_result"


@pytest.mark.slow  # three studies and a pytest run in fresh processes: minutes on 2 busy CPUs
def test_dry_run_writes_every_figure_and_a_summary(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(PROJECT_ROOT), "RAY_ADDRESS": "local"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    work = re.search(r"\(full logs: (\S+)\)", proc.stdout)
    if work:  # the script's own temporary folder (not under tmp_path: Ray's socket paths must stay short)
        shutil.rmtree(work.group(1), ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in files), files
    figures = json.loads((out / "gpu_checks.json").read_text())
    assert (out / "gpu_checks.txt").read_text() in proc.stdout

    assert figures["mode"] == "dry_run" and set(figures["steps"]) == {"hms_b1", "usps_auto", "usps_1", "gpu_memory"}
    steps = figures["steps"]
    assert [steps[s]["status"] for s in ("hms_b1", "usps_1", "gpu_memory")] == ["ok", "ok", "ok"], steps
    assert all(0 < step["seconds"] <= step["cap_s"] + 20 for step in steps.values())

    hms = figures["hms_b1"]
    assert hms["run_status"] == "finished" and sum(hms["counts"].values()) == hms["trials_ended"] == 2
    assert (hms["gpus_per_trial"], hms["trials_per_gpu"], hms["gpu_probe"]) == (0.5, 2, None)  # no CUDA: a share
    assert 0 < hms["first_trial_s"] < hms["study_wall_s"] <= hms["wall_s"] and hms["goal_met"] is None
    assert 0 < hms["best_cv_kl"] < 5 and 0 < hms["test_kl"] < 5
    assert (hms["failed_trials"], hms["oom_trials"]) == (0, 0)
    assert hms["gpu_peak_mb"] == {"trials_reporting": 0, "per_trial": [], "max": None, "median": None}  # CPU
    assert hms["gpu_utilisation"]["samples"] == 0 and "skipped" in hms["gpu_utilisation"]["note"]

    usps = figures["usps_cnn"]
    assert usps["time_budget_s"] > 0
    auto, one = usps["auto"], usps["one"]
    assert steps["usps_auto"]["status"] == "failed" and auto["auto_refused_without_cuda"]  # auto needs CUDA
    assert "torch sees no CUDA device" in steps["usps_auto"]["error"] and steps["usps_auto"]["error_file"] in files
    assert (one["gpus_per_trial"], one["trials_per_gpu"], one["trials_ended"]) == (1.0, 1, 2)
    assert one["trials_per_hour"] > 0 and 0 < one["search_span_s"] <= usps["time_budget_s"] + 30

    memory = figures["gpu_memory_test"]
    assert memory["outcome"] == "skipped" and memory["figures"] is None  # no CUDA device here
