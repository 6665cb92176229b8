"""Fractional GPUs: with a GPU share F per trial, 1/F trials share one GPU at the same time, and never more.

The session's Ray instance has no GPUs, so the studies run in a fresh process whose local Ray declares one
logical GPU (``RunOptions.num_gpus``, ``--num-gpus``). Ray accounts for it as for a real one; torch sees no CUDA
there and the trials (the sleep family) run on the CPU, which is all a scheduling test needs. Each trial reports
when it started and ended; the overlap of those intervals is the number of trials running at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from benchmarks.sleep_space import sleep_spec
from tests.helpers.cli import PROJECT_ROOT
from tuner.cli import main as cli_main
from tuner.errors import TunerError
from tuner.options import RunOptions
from tuner.schema import TRIAL_STATUS_TAG
from tuner.study.plan import resolve
from tuner.tracking import default_tracking_uri

FRACTIONS = (0.25, 0.5)
TRIALS = 8
SLEEP_S = 4.0  # long beside the spread of the actors' starts on a busy machine (2 s once saw 3 of 4 overlap)
MARK = "STUDIES "

# One process, one Ray start, both studies. The space itself asks for a whole GPU per trial: the per-trial value
# given as an option must win. CPUs (4 logical, 0.5 per trial: 8 slots) and max_concurrent (8) leave the GPU as
# the only limit, so what is measured is Ray's GPU accounting, not tuner's own concurrency cap.
STUDIES = f"""
import dataclasses, json, sys
from pathlib import Path
from benchmarks.sleep_space import sleep_spec
from tuner.study import RunOptions, run_study
from tuner.spec import Resources

spec = dataclasses.replace(sleep_spec(sleep_s={SLEEP_S}), resources=Resources(cpus=1.0, gpus=1.0))
out = {{}}
for fraction in {FRACTIONS!r}:
    opts = RunOptions(trials={TRIALS}, searcher="random", scheduler="fifo", cpus_per_trial=0.5, verify_top=0,
                      gpus_per_trial=fraction, max_concurrent={TRIALS}, results_dir=Path(sys.argv[1]),
                      name=f"gpu-{{fraction}}", dashboard=False, report_start=False, num_cpus=4, num_gpus=1)
    study = run_study(spec, opts, echo=lambda line: print(line, file=sys.stderr))
    out[str(fraction)] = {{"parent": study.parent_run_id, "counts": study.counts, "wall_s": study.wall_s}}
print({MARK!r} + json.dumps(out))
"""


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (one that ends exactly when another starts does not overlap it)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:  # at equal times the end (-1) sorts first
        running += step
        peak = max(peak, running)
    return peak


def test_max_overlap():
    assert max_overlap([(0, 1), (1, 2)]) == 1
    assert max_overlap([(0, 2), (1, 3), (1.5, 4), (3, 5)]) == 3
    assert max_overlap([]) == 0


@pytest.mark.slow
def test_fractional_gpus_pack_one_over_f_trials_per_gpu_and_never_more(tmp_path):
    results = tmp_path / "results"
    # RAY_ADDRESS=local: a new local Ray, even when a cluster started by `ray start` runs on this machine
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "RAY_ADDRESS": "local"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, "-c", STUDIES, str(results)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "local instance: 1 node(s), 4 CPUs, 1 GPUs" in proc.stderr  # the header of each study
    assert "0.5 CPU + 0.25 GPU per trial" in proc.stderr and "0.5 CPU + 0.5 GPU per trial" in proc.stderr
    studies = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith(MARK))[len(MARK) :])

    client = MlflowClient(default_tracking_uri(results))
    for fraction in FRACTIONS:
        study = studies[str(fraction)]
        assert study["counts"] == {"completed": TRIALS}
        parent = client.get_run(study["parent"])
        assert float(parent.data.params["gpus_per_trial"]) == fraction
        assert float(parent.data.params["cpus_per_trial"]) == 0.5
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{study['parent']}'", max_results=100
        )
        assert len(children) == TRIALS
        assert {c.data.tags[TRIAL_STATUS_TAG] for c in children} == {"completed"}
        intervals = [(c.data.metrics["started_at"], c.data.metrics["ended_at"]) for c in children]
        assert all(end - start >= SLEEP_S for start, end in intervals)
        per_gpu = round(1 / fraction)
        assert max_overlap(intervals) == per_gpu, (fraction, sorted(intervals))


def test_num_gpus_is_checked_before_anything_starts(capsys):
    spec = sleep_spec()
    with pytest.raises(TunerError, match="--num-gpus must be 0 or more"):
        resolve(spec, RunOptions(num_gpus=-1))
    with pytest.raises(TunerError, match="--num-gpus sizes a local Ray instance"):
        resolve(spec, RunOptions(num_gpus=1, address="127.0.0.1:1"))
    # from the command line to the same checks; no Ray, no results folder
    assert cli_main(["run", "steel_binary", "--num-gpus", "1", "--address", "127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.startswith("error: --num-gpus sizes a local Ray instance")
    assert cli_main(["run", "steel_binary", "--num-gpus", "0.5"]) == 2
    assert "--num-gpus" in capsys.readouterr().err
