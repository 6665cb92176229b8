"""A study survives a snapshot a full disk cut short: the last complete one is kept and resumed from."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.helpers.cli import run_cli, start_cli
from tests.helpers.progress import ended_trials
from tuner.errors import TunerError
from tuner.monitor.snapshots import BACKUP, SnapshotKeeper, repair

SESSION = "2026-12-01_10-00-00"


def write_snapshot(folder, session=SESSION, trials=1):
    (folder / f"experiment_state-{session}.json").write_text(json.dumps({"trial_data": list(range(trials))}))
    (folder / f"searcher-state-{session}.pkl").write_bytes(b"\x80\x04K\x01.")
    (folder / f"callback-states-{session}.pkl").write_bytes(b"\x80\x04K\x02.")


def test_a_complete_snapshot_is_copied_and_a_cut_one_is_replaced_by_the_copy(tmp_path):
    write_snapshot(tmp_path, trials=3)
    keeper = SnapshotKeeper(tmp_path)
    keeper.step()
    assert sorted(p.name for p in (tmp_path / BACKUP).iterdir()) == sorted(
        p.name for p in tmp_path.iterdir() if p.is_file()
    )
    # the disk fills up while Tune writes the next snapshot of the same session
    state = tmp_path / f"experiment_state-{SESSION}.json"
    state.write_text(state.read_text()[:7])
    (tmp_path / f"searcher-state-{SESSION}.pkl").write_bytes(b"")
    keeper.step()  # a cut snapshot is never copied over the complete one
    note = repair(tmp_path)
    assert "incomplete" in note and f"searcher-state-{SESSION}.pkl" in note
    assert json.loads(state.read_text()) == {"trial_data": [0, 1, 2]}
    assert (tmp_path / ".tuner-broken" / state.name).exists()
    assert repair(tmp_path) == ""  # whole again


def test_a_cut_snapshot_without_a_copy_is_one_line_error(tmp_path):
    write_snapshot(tmp_path)
    (tmp_path / f"searcher-state-{SESSION}.pkl").write_bytes(b"\x80\x04K")
    with pytest.raises(TunerError, match="incomplete .* no complete copy was kept"):
        repair(tmp_path)


@pytest.mark.slow
def test_a_killed_study_whose_last_snapshot_was_cut_resumes_from_the_complete_one(tmp_path):
    trials, results = 8, tmp_path / "results"
    run_dir = results / "steel_binary" / "cut"
    driver = start_cli(
        "run",
        "steel_binary",
        "--trials",
        str(trials),
        "--max-epochs",
        "10",
        "--verify-top",
        "0",
        "--no-report-baseline",
        "--no-dashboard",
        "--num-cpus",
        "2",
        "--results-dir",
        str(results),
        "--name",
        "cut",
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 240
    while ended_trials(run_dir) < 3 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert driver.poll() is None, "the study ended before it could be killed"
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(timeout=30)
    experiment = run_dir / "ray"
    assert (experiment / BACKUP).is_dir()
    # what a full disk leaves: the snapshot's files cut short
    for path in experiment.glob("experiment_state-*.json"):
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    for path in experiment.glob("searcher-state-*.pkl"):
        path.write_bytes(b"")

    resumed = run_cli("resume", "steel_binary", "--results-dir", str(results), cwd=tmp_path, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "snapshot was incomplete" in resumed.stdout
    export = json.loads((run_dir / "best_config.json").read_text())
    assert export["search"]["trials"] == trials
