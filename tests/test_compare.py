"""``tuner compare``: when a study came within 95 % of its best (unit), then real studies compared in a fresh
process, and its refusals."""

from __future__ import annotations

import dataclasses
import json
import os
import socket

import pytest

from benchmarks.sleep_space import sleep_spec
from tests.helpers.cli import run_main
from tuner.analysis.trials import StudyTrials, TrialRecord
from tuner.compare import reached
from tuner.study import RunOptions, run_study


def _ended(mode: str, scores: list[float]) -> StudyTrials:
    """Trials ending 10 s apart, in order, with ``scores``."""
    trials = [
        TrialRecord(i, f"t{i}", "completed", s, 1, {}, start_s=10.0 * i - 5, end_s=10.0 * i)
        for i, s in enumerate(scores, 1)
    ]
    return StudyTrials("s", "r", "m", mode, trials)


@pytest.mark.parametrize(
    ("mode", "scores", "expected"),
    [
        ("max", [0.0, 0.5, 0.96, 1.0], (30.0, 3)),  # 95 % of the way from 0.0 to 1.0: 0.95
        ("min", [1.0, 0.5, 0.12, 0.1], (30.0, 3)),  # from 1.0 down to 0.1: at most 0.145
        ("min", [1.0, 0.5, 0.2, 0.1], (40.0, 4)),
        ("max", [0.7, 0.6], (10.0, 1)),  # the first trial was the best
    ],
)
def test_95_percent_of_the_way_from_the_first_score_to_the_best(mode, scores, expected):
    assert reached(_ended(mode, scores)) == expected


def _study(results, spec, searcher: str, name: str) -> None:
    opts = RunOptions(
        trials=4,
        searcher=searcher,
        scheduler="fifo",
        seed=0,
        results_dir=results,
        name=name,
        dashboard=False,
        verify_top=0,
        report_baseline=False,
    )
    run_study(spec, opts)


@pytest.mark.slow
def test_compare_two_searchers_and_its_refusals(ray_instance, tmp_path, capfd):
    results = tmp_path / "results"
    spec = sleep_spec(max_epochs=2, grid=(0.1, 0.4, 0.7, 0.9))
    _study(results, spec, "random", "random")
    _study(results, spec, "grid", "grid")
    _study(results, dataclasses.replace(spec, name="sleep_loss", metric="val_loss", mode="min"), "random", "loss")
    out = tmp_path / "curves.png"

    shown = run_main(
        "compare", "sleep:random", "sleep", "--out", str(out), "--results-dir", str(results), cwd=tmp_path, capfd=capfd
    )
    assert shown.returncode == 0, shown.stderr
    rows = shown.stdout.splitlines()
    assert "best val_score" in rows[0] and "95% at trial" in rows[0] and "ensemble" in rows[0]
    assert rows[1].split()[:3] == ["sleep:random", "random/fifo", "4"]
    assert rows[2].split()[:3] == ["sleep:grid", "grid/fifo", "4"]  # SPACE: its latest finished run
    assert f"best-so-far curves written to {out}" in shown.stdout and out.stat().st_size > 0

    default = run_main(
        "compare", "sleep:random", "sleep:grid", "--results-dir", str(results), cwd=tmp_path, capfd=capfd
    )
    assert default.returncode == 0 and f"written to {results / 'comparisons'}" in default.stdout

    mixed = run_main("compare", "sleep", "sleep_loss", "--results-dir", str(results), cwd=tmp_path, capfd=capfd)
    assert mixed.returncode == 2 and mixed.stdout == ""
    assert mixed.stderr.startswith("error: the studies search different metrics") and "val_loss" in mixed.stderr
    assert len(mixed.stderr.strip().splitlines()) == 1

    live = results / "sleep" / "live"  # a study whose driver (this test's process) is still running
    live.mkdir()
    driver = {"host": socket.gethostname(), "pid": os.getpid()}
    (live / "run.json").write_text(json.dumps({"status": "running", "driver": driver}))
    running = run_main("compare", "sleep", "sleep:live", "--results-dir", str(results), cwd=tmp_path, capfd=capfd)
    assert running.returncode == 2 and running.stdout == ""
    assert running.stderr.startswith("error: sleep:live is running: compare takes finished studies")
    assert len(running.stderr.strip().splitlines()) == 1

    unknown = run_main(
        "compare", "sleep", "nospace", "sleep:nope", "--results-dir", str(results), cwd=tmp_path, capfd=capfd
    )
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: unknown ref(s) nospace, sleep:nope")
    assert len(unknown.stderr.strip().splitlines()) == 1
