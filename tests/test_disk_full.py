"""A study on a disk that fills up: one line saying what happened and what to run, the traceback in a file it
names, and after space is freed ``tuner resume`` ends it with every trial, one parent run and one child per trial,
and the best config of a study with the same seed that the disk did not stop.

Real parts: a 3 MB tmpfs holding the results folder and the MLflow SQLite store (a study needs more than that: the
generated data, the store and the first checkpoint), the CLI in fresh processes, their own local Ray. Mounting
needs root; elsewhere the test is skipped (``tests/test_snapshots.py`` covers the snapshot a full disk cuts short
without a mount).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.mlflow_runs import mlflow_runs

TRIALS = 4


def _mount(point: Path, size: str, remount: bool = False) -> None:
    options = f"remount,size={size}" if remount else f"size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    point = tmp_path / "small"
    point.mkdir()
    try:
        _mount(point, "3m")
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"cannot mount a small filesystem here ({detail})")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)


@pytest.mark.slow
def test_a_full_disk_stops_the_study_in_one_line_and_resume_finishes_it(small_disk, tmp_path):
    results = small_disk / "results"
    # FIFO and fewer trials than Optuna's seeded start-up draws: the configs do not depend on when trials end
    args = ["steel_multiclass", "--trials", str(TRIALS), "--max-epochs", "10", "--scheduler", "fifo",
            "--verify-top", "0", "--no-report-baseline", "--no-dashboard", "--num-cpus", "2",
            "--progress-every", "0"]  # fmt: skip
    full = run_cli("run", *args, "--results-dir", str(results), "--name", "full", cwd=tmp_path, timeout=300)

    assert full.returncode == 1, full.stderr[-3000:]
    errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], full.stderr[-3000:]
    assert "tuner resume steel_multiclass" in errors[0]
    assert "Traceback" not in full.stdout + full.stderr
    log = Path(re.search(r"traceback in (\S+?)\)", errors[0]).group(1))
    assert "Traceback" in log.read_text()

    _mount(small_disk, "300m", remount=True)  # space freed
    resumed = run_cli("resume", "steel_multiclass", "--results-dir", str(results), cwd=tmp_path, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    export = json.loads((results / "steel_multiclass" / "full" / "best_config.json").read_text())
    assert export["search"]["trials"] == TRIALS and "failed" not in export["search"]["statuses"]
    _, parents, children = mlflow_runs(results, "steel_multiclass")
    assert len(parents) == 1 and len(children) == TRIALS
    assert "FAILED" not in {c.info.status for c in children}

    calm = run_cli("run", *args, "--results-dir", str(tmp_path / "calm"), "--name", "calm", cwd=tmp_path, timeout=300)
    assert calm.returncode == 0, calm.stderr[-3000:]
    undisturbed = json.loads((tmp_path / "calm" / "steel_multiclass" / "calm" / "best_config.json").read_text())
    # the config and its score (trial numbers follow the order trials started in, which two slots make a race)
    assert export["config"] == undisturbed["config"]
    assert export["metric"]["value"] == pytest.approx(undisturbed["metric"]["value"], abs=1e-6)
