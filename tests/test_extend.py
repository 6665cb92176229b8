"""tuner extend: more trials in a finished study, in the same MLflow parent run, the searcher continuing."""

from __future__ import annotations

import csv
import json
import os

import pytest

from benchmarks.sleep_space import sleep_spec
from tests.helpers.cli import run_main
from tests.helpers.mlflow_runs import mlflow_runs
from tests.helpers.searcher_state import saved_optuna_study
from tuner.options import RunOptions
from tuner.schema import PHASE_TAG
from tuner.study import run_study
from tuner.study.export import TRIALS_FILE
from tuner.study.extend import extend_study


@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["optuna", "random"])
def test_extend_ends_with_old_plus_n_trials_one_parent_and_one_child_per_trial(ray_instance, tmp_path, searcher):
    spec = sleep_spec(max_epochs=2)
    opts = RunOptions(
        trials=3,
        searcher=searcher,
        scheduler="fifo",
        seed=0,
        results_dir=tmp_path,
        name="study",
        dashboard=False,
        progress_every=0,
        verify_top=0,
        report_baseline=False,
    )
    first = run_study(spec, opts, echo=lambda line: None)
    before = [t.value for t in saved_optuna_study(first.run_dir).trials] if searcher == "optuna" else []
    lines: list[str] = []
    extended = extend_study(spec, "study", tmp_path, 2, echo=lines.append)

    assert "extending run study of sleep by 2 trial(s), to 5" in lines
    assert sum(extended.counts.values()) == 5 and extended.export["search"]["trials"] == 5
    assert extended.parent_run_id == first.parent_run_id
    # the searcher continued: the Optuna study Ray Tune saved holds all five trials, the first three from before
    if searcher == "optuna":
        after = [t.value for t in saved_optuna_study(extended.run_dir).trials]
        assert len(before) == 3 and after[:3] == before and len(after) == 5
    with open(extended.run_dir / TRIALS_FILE) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["trial"]) for r in rows] == [1, 2, 3, 4, 5]
    assert len({r["x"] for r in rows}) == 5  # the searcher proposed new configs, not the first three again
    _, parents, children = mlflow_runs(tmp_path, "sleep")
    searched = [c for c in children if c.data.tags.get(PHASE_TAG) == "search"]
    assert len(parents) == 1 and len(searched) == 5
    assert sorted(c.info.run_name for c in searched) == [f"trial-{i:03d}" for i in range(1, 6)]
    assert all(c.data.tags["mlflow.parentRunId"] == first.parent_run_id for c in searched)
    record = json.loads((extended.run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["options"]["trials"] == 5 and record["extended"][0]["trials"] == 2


def _run(results, name: str, status: str, searcher: str = "optuna", time_budget=None, **info) -> None:
    run_dir = results / "steel_binary" / name
    run_dir.mkdir(parents=True)
    options = RunOptions(searcher=searcher, results_dir=results, time_budget=time_budget).to_record()
    (run_dir / "run.json").write_text(
        json.dumps(
            {"space": "steel_binary", "name": name, "status": status, "started": name, "options": options, **info}
        )
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("live", "run live of steel_binary is running; extend takes a finished study (stop its driver first)"),
        (
            "broken",
            "run broken of steel_binary is failed; extend takes a finished study (start it again with tuner "
            "run steel_binary)",
        ),
        (
            "gridded",
            "run gridded of steel_binary searched with grid; extend takes a study of random, hyperopt, optuna",
        ),
        ("nope", "no run named 'nope' for space steel_binary"),
        (
            "timed",
            "run timed of steel_binary was limited by --time-budget 60s, which Ray Tune keeps spent when it restores "
            "the study; extend takes a study limited by its trial count",
        ),
    ],
)
def test_extend_refuses_running_failed_grid_timed_and_unknown_runs_in_one_line(tmp_path, name, message, capfd):
    results = tmp_path / "results"
    _run(results, "live", "running", driver={"pid": os.getpid(), "host": os.uname().nodename})
    _run(results, "broken", "failed")
    _run(results, "gridded", "finished", searcher="grid")
    _run(results, "timed", "finished", time_budget=60.0)
    proc = run_main(
        "extend",
        "steel_binary",
        "--name",
        name,
        "--trials",
        "2",
        "--results-dir",
        str(results),
        cwd=tmp_path,
        capfd=capfd,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {message}") and len(proc.stderr.splitlines()) == 1
