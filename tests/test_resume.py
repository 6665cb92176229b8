"""Studies survive their driver: SIGKILL mid-study, ``tuner resume``, exactly the requested trials in the end.

Real parts only: the CLI in fresh processes, each with its own local Ray, a real SQLite MLflow store, real files.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from tests.helpers.cli import run_cli, run_main, start_cli
from tuner.schema import TRIAL_STATUS_TAG
from tuner.tracking import default_tracking_uri

TRIALS = 10
SLOTS = 2


def _progress(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "progress.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _ended(progress: dict) -> int:
    return sum(n for status, n in progress.get("counts", {}).items() if status != "running")


@pytest.mark.slow
def test_sigkilled_study_resumes_to_exactly_the_requested_trials(tmp_path):
    results = tmp_path / "results"
    run_dir = results / "steel_binary" / "killed"
    # Its own session: the kill takes the driver and the local Ray it started, as a machine restart would.
    driver = start_cli(
        "run",
        "steel_binary",
        "--trials",
        str(TRIALS),
        "--max-epochs",
        "10",
        "--verify-top",
        "0",
        "--no-report-baseline",
        "--scheduler",
        "asha",
        "--no-dashboard",
        "--num-cpus",
        str(SLOTS),
        "--results-dir",
        str(results),
        "--name",
        "killed",
        "--storage",
        str(tmp_path / "shared"),
        cwd=tmp_path,
    )
    study = tmp_path / "shared" / "steel_binary" / "killed" / "ray"
    deadline = time.monotonic() + 240
    older: dict[Path, bytes] = {}
    while _ended(_progress(run_dir)) < 4 and driver.poll() is None and time.monotonic() < deadline:
        if not older and _ended(_progress(run_dir)) >= 1:
            older = {path: path.read_bytes() for path in study.glob("callback-states-*.pkl")}
        time.sleep(0.2)
    assert driver.poll() is None, "the study ended before it could be killed"
    at_kill = _progress(run_dir)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    assert 4 <= _ended(at_kill) < TRIALS
    # Tune writes a snapshot's trials, then the callbacks' state (tuner's monitor): a driver killed between the two
    # leaves the monitor's state older than the trials. Made certain here: the monitor's state goes back to one
    # saved early in the study, the trials stay as they were at the kill.
    assert older, "no snapshot of the callbacks' state was saved"
    for path, content in older.items():
        path.write_bytes(content)

    status = run_cli("status", "steel_binary", "--results-dir", str(results), cwd=tmp_path)
    assert "interrupted" in status.stdout, status.stdout

    resumed = run_cli("resume", "steel_binary", "--results-dir", str(results), cwd=tmp_path, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed:" in resumed.stdout and "Traceback" not in resumed.stderr

    export = json.loads((run_dir / "best_config.json").read_text())
    assert export["search"]["trials"] == TRIALS
    assert sum(export["search"]["statuses"].values()) == TRIALS
    run_info = json.loads((run_dir / "run.json").read_text())
    assert run_info["status"] == "finished" and len(run_info["resumed"]) == 1
    # Ray Tune's state and the checkpoints went to --storage, and resume found them there
    assert (study / "tuner.pkl").is_file()
    assert not (run_dir / "ray").exists()
    # After the study the trials whose weights later commands read keep one checkpoint, their latest (also those
    # the killed driver checkpointed), the others none; folders of trials it started after its last snapshot
    # (which ran again as new trials) are gone.
    kept = {d.name: sorted(c.name for c in d.glob("checkpoint_*")) for d in study.glob("trial_*")}
    assert len(kept) == TRIALS, sorted(kept)
    assert all(len(checkpoints) <= 1 for checkpoints in kept.values()), kept
    with_weights = [name for name, checkpoints in kept.items() if checkpoints]
    assert len(with_weights) == len(run_info["checkpoints_kept"]["trials"]) >= 1, kept

    client = MlflowClient(default_tracking_uri(results))
    experiment = client.get_experiment_by_name("steel_binary")
    every = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    parents = [r for r in every if "mlflow.parentRunId" not in r.data.tags]
    assert [(p.info.run_name, p.info.status, p.info.lifecycle_stage) for p in parents] == [
        ("killed", "FINISHED", "active")
    ]
    children = [r for r in every if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    active = [c for c in children if c.info.lifecycle_stage == "active"]
    assert len(active) == TRIALS
    assert len({c.data.tags["tuner.trial_id"] for c in active}) == TRIALS
    assert all(c.info.status in ("FINISHED", "FAILED") for c in active), Counter(c.info.status for c in active)
    assert all(c.data.tags.get(TRIAL_STATUS_TAG) for c in active)
    # Runs of trials the study's last snapshot did not hold were closed as lost and deleted, never kept twice.
    lost = [c for c in children if c.info.lifecycle_stage == "deleted"]
    assert all(c.data.tags.get(TRIAL_STATUS_TAG) == "lost" for c in lost)
    # Only trials near the kill run again: the ones running then, or started or ended after the last snapshot
    # (at most 2 s before it; a trial ASHA prunes at its first rung lasts about a second, so a few per slot).
    again = [c for c in active if int(c.data.tags.get("tuner.restarts", "0")) > 0]
    assert len(again) + len(lost) <= 3 * SLOTS, (len(again), len(lost))
    restarts = {c.data.tags["tuner.trial_id"]: c.data.tags.get("tuner.restarts") for c in active}
    ended_before_kill = [t["trial_id"] for t in at_kill["trials"] if t["status"] != "running"]
    assert any(restarts.get(trial_id) == "0" for trial_id in ended_before_kill), "the snapshot kept no ended trial"


def test_resume_refuses_finished_and_unknown_runs(tmp_path, capfd):
    results = tmp_path / "results"
    run_dir = results / "steel_binary" / "done"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(
        json.dumps({"space": "steel_binary", "name": "done", "status": "finished", "started": "2026-01-01T00:00:00"})
    )
    proc = run_main("resume", "steel_binary", "--results-dir", str(results), cwd=tmp_path, capfd=capfd)
    assert proc.returncode == 2 and proc.stderr.startswith("error: run done of steel_binary already finished")
    proc = run_main(
        "resume", "steel_binary", "--name", "nope", "--results-dir", str(results), cwd=tmp_path, capfd=capfd
    )
    assert proc.returncode == 2 and "no run named 'nope'" in proc.stderr and len(proc.stderr.splitlines()) == 1
    (run_dir / "run.json").write_text(
        json.dumps({"space": "steel_binary", "name": "done", "status": "failed", "started": "2026-01-01T00:00:00"})
    )
    proc = run_main("resume", "steel_binary", "--results-dir", str(results), cwd=tmp_path, capfd=capfd)
    assert proc.returncode == 2 and "stopped before Ray Tune saved its state" in proc.stderr
