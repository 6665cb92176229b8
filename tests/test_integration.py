"""End to end on a real local Ray, a real MLflow SQLite store and real files: what a user does, step by step."""

from __future__ import annotations

import json

import pytest

from benchmarks.sleep_space import sleep_spec
from tests.helpers.cli import run_cli
from tests.helpers.mlflow_runs import mlflow_runs
from tuner import spaces
from tuner.cli import main as cli_main
from tuner.schema import TRIAL_STATUS_TAG
from tuner.study import RunOptions, run_study

pytestmark = pytest.mark.slow
STATUSES = {"completed", "early_stopped", "pruned", "diverged", "failed", "stopped"}


def test_search_export_and_rerun_the_exported_config(ray_instance, tmp_path, capsys):
    results = tmp_path / "results"
    spec = spaces.get("steel_multiclass")
    opts = RunOptions(
        trials=4,
        searcher="random",
        scheduler="asha",
        max_epochs=4,
        seed=1,
        results_dir=results,
        name="study",
        dashboard=False,
        verify_top=0,
        report_baseline=False,
    )
    study = run_study(spec, opts)
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "top trials" in out and "test_macro_accuracy" in out

    client, parents, children = mlflow_runs(results, spec.name)
    assert len(parents) == 1 and len(children) == 4
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    for tag in ("searcher", "scheduler", "seed", "git_commit", "data_fingerprint", "data_synthetic"):
        assert parent.data.tags[tag]
    assert parent.data.tags["data_synthetic"] == "true" and parent.data.tags["seed"] == "1"
    assert "best_config.json" in [a.path for a in client.list_artifacts(parent.info.run_id)]
    import ray

    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["tuner.node_ip"] == ray.util.get_node_ip_address()  # where the trial ran
        assert child.data.tags[TRIAL_STATUS_TAG] in STATUSES
        assert "lr" in child.data.params
        history = client.get_metric_history(child.info.run_id, spec.metric)
        assert [m.step for m in history] == list(range(1, len(history) + 1)) and history

    assert cli_main(["status", spec.name, "--results-dir", str(results)]) == 0
    status = capsys.readouterr().out
    assert f"{spec.name} run study: finished" in status and "trials: 4/4 done" in status
    progress = json.loads((study.run_dir / "progress.json").read_text())
    assert progress["best"]["score"] == pytest.approx(study.export["metric"]["value"])
    assert len(progress["trials"]) == 4 and progress["counts"].get("running", 0) == 0

    exported = json.loads((study.run_dir / "best_config.json").read_text())
    metric_key = f"best_{spec.metric}"  # each child run's own best epoch
    best_child = max(children, key=lambda r: r.data.metrics.get(metric_key, float("-inf")))
    assert exported["metric"] == {"name": spec.metric, "mode": "max", "value": best_child.data.metrics[metric_key]}
    assert exported["mlflow"]["child_run_id"] == best_child.info.run_id
    assert parent.data.metrics[f"chosen_{spec.metric}"] == exported["metric"]["value"]
    assert parent.data.metrics[f"search_best_{spec.metric}"] >= parent.data.metrics[f"chosen_{spec.metric}"]
    # The choice is marked where a user looks in the UI: the chosen child, the parent's tags and description.
    marks = {r.info.run_id: client.get_run(r.info.run_id).data.tags.get("tuner.chosen") for r in children}
    assert [run for run, mark in marks.items() if mark == "true"] == [exported["mlflow"]["child_run_id"]]
    tags = client.get_run(parent.info.run_id).data.tags
    assert tags["tuner.chosen_trial"] == str(exported["trial_number"])
    assert tags["tuner.chosen_run_id"] == exported["mlflow"]["child_run_id"]
    assert {k.removeprefix("chosen."): v for k, v in tags.items() if k.startswith("chosen.")} == {
        k: str(v) for k, v in exported["config"].items()
    }
    assert f"runs/{exported['mlflow']['child_run_id']}?workflowType=machine_learning)" in tags["mlflow.note.content"]
    for run in (parent, *children):  # MLflow's own source and user on every run
        assert {"mlflow.source.name", "mlflow.source.type", "mlflow.user"} <= set(run.data.tags)
    for key in ("config", "best_epoch", "trial_id", "seed", "git_commit", "data", "library_versions", "test"):
        assert key in exported
    assert set(exported["test"]) == {"test_loss", "test_macro_accuracy", "test_macro_precision"}
    spec.validate_config(exported["config"])

    out_file = tmp_path / "best.json"
    assert cli_main(["export", spec.name, "--results-dir", str(results), "--out", str(out_file)]) == 0
    assert json.loads(out_file.read_text()) == exported

    rerun = run_study(
        spec, RunOptions(config_file=out_file, seed=1, max_epochs=4, results_dir=results, name="rerun", dashboard=False)
    )
    assert rerun.export["config"] == exported["config"]
    assert rerun.export["search"]["trials"] == 1
    # same config, same seed, same data and split: the same training, the same figures
    assert rerun.export["metric"]["value"] == pytest.approx(exported["metric"]["value"])
    _, parents, children = mlflow_runs(results, spec.name)
    assert len(parents) == 2 and len(children) == 5


def test_trial_statuses_failed_diverged_completed(ray_instance, tmp_path):
    spec = sleep_spec(max_epochs=2, grid=(0.2, 0.7, 0.85, 0.95), diverge_above=0.8, fail_above=0.9)
    opts = RunOptions(
        trials=4,
        searcher="grid",
        scheduler="fifo",
        results_dir=tmp_path,
        name="statuses",
        verify_top=0,
        dashboard=False,
    )
    study = run_study(spec, opts)
    assert study.counts == {"completed": 2, "diverged": 1, "failed": 1}
    _, _, children = mlflow_runs(tmp_path, "sleep")
    by_x = {float(c.data.params["x"]): c for c in children}
    assert by_x[0.95].data.tags[TRIAL_STATUS_TAG] == "failed" and by_x[0.95].info.status == "FAILED"
    assert "fail_above" in by_x[0.95].data.tags["tuner.end_message"]
    # An exception in the trial's code is its end, with the traceback in MLflow; it is not retried like a lost worker.
    assert "Traceback" in by_x[0.95].data.tags["tuner.traceback"]
    assert "RuntimeError: x=0.950 is above fail_above=0.9" in by_x[0.95].data.tags["tuner.traceback"]
    assert by_x[0.95].data.tags["tuner.restarts"] == "0"
    assert all(c.data.tags["tuner.node_id"] for c in children)
    assert by_x[0.85].data.tags[TRIAL_STATUS_TAG] == "diverged"
    assert study.export["config"] == {"x": 0.7}


def test_asha_prunes_poor_trials_and_mlflow_says_so(ray_instance, tmp_path):
    # one trial at a time, good ones first: ASHA's first rung then stops the poor ones deterministically
    spec = sleep_spec(max_epochs=9, grid=(0.7, 0.68, 0.72, 0.0, 0.05, 0.1), grace_period=1)
    opts = RunOptions(
        trials=6,
        searcher="grid",
        scheduler="asha",
        max_concurrent=1,
        results_dir=tmp_path,
        verify_top=0,
        name="asha",
        dashboard=False,
    )
    study = run_study(spec, opts)
    _, _, children = mlflow_runs(tmp_path, "sleep")
    status = {float(c.data.params["x"]): c.data.tags[TRIAL_STATUS_TAG] for c in children}
    assert status[0.7] == "completed"
    assert {status[0.0], status[0.05], status[0.1]} == {"pruned"}
    assert study.counts["pruned"] == sum(1 for s in status.values() if s == "pruned")
    assert all(c.data.metrics["epochs_run"] < 9 for c in children if c.data.tags[TRIAL_STATUS_TAG] == "pruned")
    # pruned trials ended as the scheduler meant: FINISHED runs in MLflow, not crashes
    assert {c.info.status for c in children if c.data.tags[TRIAL_STATUS_TAG] == "pruned"} == {"FINISHED"}


def test_cli_run_end_to_end_in_a_fresh_process(tmp_path):
    proc = run_cli(
        "run",
        "steel_binary",
        "--trials",
        "2",
        "--max-epochs",
        "2",
        "--no-dashboard",
        "--num-cpus",
        "2",
        "--verify-top",
        "0",
        "--no-report-baseline",
        "--results-dir",
        str(tmp_path / "results"),
        "--name",
        "cli",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "SYNTHETIC" in proc.stdout and "tuner ui steel_binary --results-dir" in proc.stdout
    assert "/#/experiments/1?workflowType=machine_learning" in proc.stdout
    assert "best config written to" in proc.stdout and "Traceback" not in proc.stderr
    exported = json.loads((tmp_path / "results" / "steel_binary" / "cli" / "best_config.json").read_text())
    assert exported["space"] == "steel_binary" and exported["data"]["synthetic"] is True
