"""Ctrl-C stops a study gracefully: one line with what was kept and the command to continue, exit 130, the run
recorded as interrupted without a test evaluation or an export; ``tuner resume`` ends it with every trial and the
same best config as a study with the same seed that nobody interrupted (FIFO, and fewer trials than Optuna's
seeded start-up draws: the configs do not depend on when trials end; a continued trial restores its random state).

Real parts: the CLI in a fresh process group (a terminal's Ctrl-C reaches the driver and the Ray it started),
its own local Ray, a real SQLite MLflow store.
"""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tests.helpers.cli import run_cli, start_cli
from tests.helpers.mlflow_runs import mlflow_runs
from tests.helpers.progress import ended_trials

TRIALS = 4


@pytest.mark.slow
def test_ctrl_c_stops_the_study_gracefully_and_resume_finishes_it(tmp_path):
    results = tmp_path / "results"
    run_dir = results / "steel_multiclass" / "stopped"
    args = ["steel_multiclass", "--trials", str(TRIALS), "--max-epochs", "30", "--scheduler", "fifo",
            "--verify-top", "0", "--no-report-baseline", "--no-dashboard", "--num-cpus", "2",
            "--results-dir", str(results), "--progress-every", "0"]  # fmt: skip
    driver = start_cli("run", *args, "--name", "stopped", cwd=tmp_path, capture=True)
    deadline = time.monotonic() + 240
    while ended_trials(run_dir) < 1 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if driver.poll() is not None:
        out, err = driver.communicate()
        pytest.fail(f"the study ended (exit {driver.returncode}) before it could be interrupted:\n{err[-3000:]}")
    os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    out, err = driver.communicate(timeout=120)

    assert driver.returncode == 130, err[-3000:]
    said = [line for line in err.splitlines() if line.startswith("interrupted")]
    assert len(said) == 1 and said[0].endswith("Continue with: tuner resume steel_multiclass --name stopped")
    assert "Traceback" not in err + out and "Tuner.restore" not in err + out
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert not (run_dir / "best_config.json").exists() and "test split" not in out
    # the trials that were running keep the training state they continue from
    assert list((run_dir / "ray").glob("trial_*/checkpoint_*/state.pt"))

    resumed = run_cli(
        "resume", "steel_multiclass", "--name", "stopped", "--results-dir", str(results), cwd=tmp_path, timeout=400
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    export = json.loads((run_dir / "best_config.json").read_text())
    assert export["search"]["trials"] == TRIALS
    _, parents, children = mlflow_runs(results, "steel_multiclass")
    assert len(parents) == 1 and len(children) == TRIALS
    assert {c.info.status for c in children} == {"FINISHED"}
    # finished: only the trials `tuner verify` may choose among (the top 3; no ensemble) keep their weights, each
    # without a training state
    kept = json.loads((run_dir / "run.json").read_text())["checkpoints_kept"]
    assert kept["top"] == 3 and len(kept["trials"]) == 3, kept
    assert sorted(p.name for p in (run_dir / "ray").glob("trial_*/checkpoint_*/*")) == ["model.pt"] * 3

    calm = run_cli("run", *args, "--name", "calm", cwd=tmp_path, timeout=400)
    assert calm.returncode == 0, calm.stderr[-3000:]
    undisturbed = json.loads((results / "steel_multiclass" / "calm" / "best_config.json").read_text())
    scores = {name: (results / "steel_multiclass" / name / "trials.csv").read_text() for name in ("stopped", "calm")}
    # the config and its score (trial numbers follow the order trials started in, which two slots make a race)
    assert export["config"] == undisturbed["config"], scores
    assert export["metric"]["value"] == pytest.approx(undisturbed["metric"]["value"], abs=1e-6)
