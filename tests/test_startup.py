"""A study's start-up to its first trial: the driver imports only what the search needs (the later phases' plots,
model logging and reference models load when those phases run), Ray Tune loads while Ray's processes start, and
the MLflow store opens on its own thread while Ray starts."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time

import pytest

from tests.helpers.cli import cli_env
from tuner.cluster import DRIVER_MODULES, ClusterInfo
from tuner.errors import TunerError
from tuner.options import RunOptions
from tuner.study.plan import resolve

prepare_phase = importlib.import_module("tuner.study.prepare")  # tuner.study's `prepare` is its function

LATER_PHASES_MODULES = ("matplotlib", "mlflow.pyfunc", "mlflow.pytorch", "tuner.tracking.model",
                        "tuner.analysis.plots", "sklearn.ensemble", "optuna.visualization")  # fmt: skip
"""Modules of the phases after the search (publish, analyze, references): not in the driver at its first trial."""
STARTED_ON_THREADS = ("ray", "ray.tune", "mlflow", "torch", "sklearn")
"""Started by the study's threads (Ray's start, the data, the MLflow store), not by importing the CLI and phases."""

MODULES_AT_FIRST_TRIAL = """
import json, sys
from tuner.monitor.callback import StudyMonitor
seen = StudyMonitor.on_trial_start
def first(self, *args, **kwargs):
    if not hasattr(StudyMonitor, "modules"):
        StudyMonitor.modules = sorted(sys.modules)
        open(sys.argv[1], "w").write(json.dumps(StudyMonitor.modules))
    return seen(self, *args, **kwargs)
StudyMonitor.on_trial_start = first
from tuner.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


def _imported(code: str, tmp_path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_cli_and_the_study_phases_import_without_ray_mlflow_or_torch(tmp_path):
    modules = _imported("import tuner.cli, tuner.study", tmp_path)
    assert "tuner.study.verify" in modules and "tuner.study.baseline" in modules
    assert not modules & set(STARTED_ON_THREADS + LATER_PHASES_MODULES)


def test_what_the_driver_imports_as_ray_starts_is_there(tmp_path):
    """A name there that does not import is skipped silently as Ray starts (an optional package): here it fails."""
    modules = _imported(f"import importlib\nfor name in {DRIVER_MODULES!r}: importlib.import_module(name)", tmp_path)
    assert {"ray.tune", "tuner.monitor", "optuna"} <= modules


def _fake_place(results, calls):
    """``place`` as a Ray start that takes until the MLflow store file exists (at most a minute): the store opens
    meanwhile, or never."""

    def place(plan, data, echo):
        calls.append(plan.name)
        deadline = time.monotonic() + 60
        while not (results / "mlflow.db").exists():
            if time.monotonic() > deadline:
                raise AssertionError("the MLflow store did not open while Ray started")
            time.sleep(0.05)
        return ClusterInfo("local", False, cpus=2, gpus=0, nodes=1, dashboard_url=None), {}

    return place


def test_the_mlflow_store_opens_while_ray_starts(tmp_path, monkeypatch):
    results, calls, said = tmp_path / "results", [], []
    monkeypatch.setattr(prepare_phase, "place", _fake_place(results, calls))
    plan = resolve("steel_binary", RunOptions(results_dir=results, trials=1, dashboard=False, name="early"))
    with prepare_phase.prepare(plan, said.append) as study:
        study.tracker.flush()
        assert calls == ["early"] and study.tracker.parent_id is not None
        assert study.tracker.client.get_run(study.tracker.parent_id).info.run_name == "early"
        study.tracker.close()
    assert any(line.startswith("tuner run steel_binary") for line in said)


def test_a_failed_ray_start_leaves_no_run_in_the_store_opened_meanwhile(tmp_path, monkeypatch):
    results, calls = tmp_path / "results", []
    place = _fake_place(results, calls)

    def failing(plan, data, echo):
        place(plan, data, echo)
        raise TunerError("no Ray for this test")

    monkeypatch.setattr(prepare_phase, "place", failing)
    plan = resolve("steel_binary", RunOptions(results_dir=results, trials=1, dashboard=False, name="early"))
    with pytest.raises(TunerError, match="no Ray for this test"):
        with prepare_phase.prepare(plan, lambda line: None):
            raise AssertionError("prepared without Ray")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("steel_binary")
    assert experiment is not None and not client.search_runs([experiment.experiment_id])
    assert not (results / "steel_binary").exists()


@pytest.mark.slow
def test_at_the_first_trial_the_driver_has_not_imported_the_later_phases(tmp_path):
    seen = tmp_path / "modules.json"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MODULES_AT_FIRST_TRIAL,
            str(seen),
            "run",
            "steel_binary",
            "--trials",
            "1",
            "--max-epochs",
            "1",
            "--verify-top",
            "0",
            "--no-references",
            "--no-report-baseline",
            "--no-dashboard",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    modules = set(json.loads(seen.read_text()))
    assert {"ray.tune", "mlflow", "tuner.monitor"} <= modules  # the hook ran inside a started search
    assert not modules & set(LATER_PHASES_MODULES)
