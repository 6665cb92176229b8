"""MLflow writes from concurrent trials go through one writer and none is lost (real SQLite store)."""

from __future__ import annotations

import json
import sqlite3
import threading

import mlflow
from mlflow.tracking import MlflowClient

from tuner.schema import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, PARENT_RUN_TAG, TRIAL_STATUS_TAG
from tuner.tracking import StudyTracker, cache_dir, create_sqlite_store, default_tracking_uri
from tuner.tracking import spool as spool_module


def test_concurrent_trial_writes_all_land(tmp_path):
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "concurrency", tmp_path / "artifacts")
    tracker.start_parent("study", {"trials": 6}, {"tuner.space": "concurrency"})
    trials = [f"t{i}" for i in range(6)]
    for t in trials:
        tracker.start_child(t, t, {"x": t}, {})

    def trial_writer(trial_id):
        for epoch in range(1, 41):
            tracker.log_epoch(trial_id, {"val_loss": 1.0 / epoch, "val_acc": epoch / 40}, step=epoch)
        tracker.end_child(trial_id, "completed", {"best_val_acc": 1.0}, {})

    threads = [threading.Thread(target=trial_writer, args=(t,)) for t in trials]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tracker.end_parent("FINISHED", {"best_val_acc": 1.0}, {}, {"summary.json": {"ok": True}})
    tracker.close()

    client = MlflowClient(uri)
    for t in trials:
        run = client.get_run(tracker.child_run_id(t))
        assert run.data.tags["mlflow.parentRunId"] == tracker.parent_id
        assert run.data.tags[TRIAL_STATUS_TAG] == "completed" and run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_loss")
        assert sorted(m.step for m in history) == list(range(1, 41))
    assert client.get_run(tracker.parent_id).info.status == "FINISHED"


def test_a_continued_trial_logs_each_epoch_once_in_this_driver_and_after_a_resume(tmp_path):
    """A trial continued from its checkpoint of epoch 2 reports epochs 3.. again; its history keeps each epoch once
    (the first report of it), whether Tune retried it in the same driver or ``tuner resume`` started a new one."""
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "continued", tmp_path / "artifacts")
    tracker.start_parent("study", {}, {"tuner.run_dir": "run-a"})
    tracker.start_child("t1", "trial-001", {"x": 1}, {})
    for epoch in (1, 2, 3, 4):  # checkpoint at 2, worker lost after 4
        tracker.log_epoch("t1", {"val_loss": epoch / 10}, step=epoch)
    for epoch in (3, 4, 5):  # the retry, from the checkpoint of epoch 2
        tracker.log_epoch("t1", {"val_loss": epoch / 10 + 1}, step=epoch)
    tracker.flush()
    client = MlflowClient(uri)
    run_id = tracker.child_run_id("t1")
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val_loss"))
    assert history == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4), (5, 1.5)]
    tracker.close()

    resumed = StudyTracker(uri, "continued", tmp_path / "artifacts")  # a new driver: `tuner resume`
    resumed.resume_parent("run-a")
    resumed.reconcile({"t1": False}, {})
    for epoch in (4, 5, 6):  # continued from a checkpoint of epoch 3
        resumed.log_epoch("t1", {"val_loss": epoch / 10 + 2}, step=epoch)
    resumed.end_child("t1", "completed", {}, {})
    resumed.close()
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "val_loss"))
    assert history == [(1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4), (5, 1.5), (6, 2.6)]


def test_a_trial_run_again_after_a_resume_gets_a_new_run_that_ends(tmp_path):
    """A trial the killed driver ended (here: pruned) after the study's last snapshot runs again on resume: its old
    run is closed as lost and deleted, and its new run is ended like any other (not skipped as already ended)."""
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "again", tmp_path / "artifacts")
    tracker.start_parent("study", {}, {"tuner.run_dir": "run-b"})
    tracker.start_child("t1", "trial-001", {"x": 1}, {})
    tracker.log_epoch("t1", {"val_loss": 0.5}, step=1)
    tracker.end_child("t1", "pruned", {}, {})
    tracker.close()
    old_run = tracker.child_run_id("t1")

    resumed = StudyTracker(uri, "again", tmp_path / "artifacts")
    resumed.resume_parent("run-b")
    resumed.reconcile({}, {})  # the snapshot does not hold t1's start: it runs anew
    resumed.start_child("t1", "trial-001", {"x": 1}, {})
    resumed.log_epoch("t1", {"val_loss": 0.4}, step=1)
    resumed.end_child("t1", "completed", {}, {})
    resumed.close()
    client = MlflowClient(uri)
    new_run = client.get_run(resumed.child_run_id("t1"))
    assert new_run.info.run_id != old_run and new_run.info.status == "FINISHED"
    assert new_run.data.tags[TRIAL_STATUS_TAG] == "completed"
    assert [m.value for m in client.get_metric_history(new_run.info.run_id, "val_loss")] == [0.4]
    assert client.get_run(old_run).info.lifecycle_stage == "deleted"


def test_a_failing_store_is_reported_not_swallowed(tmp_path):
    tracker = StudyTracker(default_tracking_uri(tmp_path), "broken")
    tracker.log_epoch("never-started", {"val_loss": 1.0}, step=1)  # no such child run: the write fails
    try:
        tracker.flush()
    except RuntimeError as exc:
        assert "MLflow write failed" in str(exc)
    else:
        raise AssertionError("a failed MLflow write passed silently")


def test_a_new_store_is_a_copy_of_the_cached_empty_store_and_works_as_mlflow_made_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    first, second = tmp_path / "a" / "mlflow.db", tmp_path / "b" / "mlflow.db"
    assert create_sqlite_store(first)
    template = cache_dir() / f"mlflow-{mlflow.__version__}-empty.db"
    made = template.stat().st_mtime_ns
    assert create_sqlite_store(second)
    assert template.stat().st_mtime_ns == made, "the template is made once, then reused"
    assert not create_sqlite_store(first), "an existing store is never replaced"
    assert sorted(p.name for p in first.parent.iterdir()) == ["mlflow.db"], "no partial file left behind"

    client = MlflowClient(f"sqlite:///{second}")
    assert client.get_experiment("0").artifact_location == str(tmp_path / "mlruns" / "0")
    tracker = StudyTracker(f"sqlite:///{second}", "copied", tmp_path / "artifacts")
    tracker.start_parent("study", {"trials": 1}, {})
    tracker.start_child("t0", "t0", {"x": 1}, {})
    tracker.log_epoch("t0", {"val_loss": 0.5}, step=1)
    tracker.end_child("t0", "completed", {"best_val_loss": 0.5}, {})
    tracker.end_parent("FINISHED", {}, {}, {})
    tracker.close()
    assert client.get_run(tracker.child_run_id("t0")).data.metrics["best_val_loss"] == 0.5
    with sqlite3.connect(first) as db:  # the other copy holds no run of this study
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_an_unwritable_cache_leaves_the_store_to_mlflow(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("TUNER_CACHE_DIR", str(blocker / "cache"))
    store = tmp_path / "mlflow.db"
    assert not create_sqlite_store(store)
    assert not store.exists()
    tracker = StudyTracker(f"sqlite:///{store}", "plain")
    tracker.start_parent("study", {}, {})
    tracker.close()
    assert MlflowClient(f"sqlite:///{store}").get_run(tracker.parent_id).info.status == "RUNNING"


def test_experiments_are_model_development_ones_new_or_reused(tmp_path):
    """MLflow 3's UI opens an experiment without ``mlflow.experimentKind`` on its GenAI page: a new experiment gets
    the tag, and an experiment made without it (by an older tuner) gets it when a study reuses it."""
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "fresh", tmp_path / "artifacts")
    tracker.close()
    client = MlflowClient(uri)
    assert client.get_experiment(tracker.experiment_id).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    old = client.create_experiment("older")
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    StudyTracker(uri, "older").close()
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_trials_that_ended_as_designed_are_finished_and_only_crashes_failed(tmp_path):
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "ends", tmp_path / "artifacts")
    tracker.start_parent("study", {}, {})
    ends = ("completed", "early_stopped", "pruned", "stopped", "diverged", "failed")
    for status in ends:
        tracker.start_child(status, status, {}, {})
        tracker.end_child(status, status, {}, {})
    tracker.close()
    client = MlflowClient(uri)
    runs = {s: client.get_run(tracker.child_run_id(s)) for s in ends}
    assert {s: r.info.status for s, r in runs.items()} == {
        "completed": "FINISHED",
        "early_stopped": "FINISHED",
        "pruned": "FINISHED",
        "stopped": "FINISHED",
        "diverged": "FAILED",
        "failed": "FAILED",
    }
    assert all(r.data.tags[TRIAL_STATUS_TAG] == s for s, r in runs.items()), "the precise end stays in the tag"


def _datasets(client, run_id):
    return [
        (
            d.dataset.name,
            d.dataset.digest,
            d.dataset.source_type,
            json.loads(d.dataset.source)["uri"],
            {t.key: t.value for t in d.tags},
        )
        for d in client.get_run(run_id).inputs.dataset_inputs
    ]


def test_the_data_is_a_dataset_input_of_the_parent_and_every_trial(tmp_path):
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "data", tmp_path / "artifacts")
    tracker.start_parent("study", {}, {})
    tracker.use_dataset("steel", "0123456789abcdef", str(tmp_path / "steel.csv"), True)
    for t in ("t1", "t2"):
        tracker.start_child(t, t, {}, {})
        tracker.end_child(t, "completed", {}, {})
    tracker.close()
    client = MlflowClient(uri)
    expected = [
        (
            "steel (synthetic)",
            "0123456789abcdef",
            "local",
            str(tmp_path / "steel.csv"),
            {"mlflow.data.context": "training", "tuner.synthetic": "true"},
        )
    ]
    for run_id in (tracker.parent_id, tracker.child_run_id("t1"), tracker.child_run_id("t2")):
        assert _datasets(client, run_id) == expected


class _StoreDown:
    """The store's client while the store does not answer: every call raises."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("store down")

        return fail


def test_a_dataset_write_during_an_outage_is_spooled_and_replayed(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "RETRY_S", (0.0,))
    monkeypatch.setattr(spool_module, "REPLAY_EVERY_S", 0.0)
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "outage", tmp_path / "artifacts", spool=tmp_path / "spool.jsonl")
    tracker.start_parent("study", {}, {})
    tracker.flush()
    store = tracker.client
    tracker.client = _StoreDown()
    tracker.use_dataset("steel", "feedfacefeedface", "/data/steel.csv", False)
    tracker.flush()
    assert [r["op"] for r in tracker.guard.spool.records()] == ["_log_dataset"], "spooled, not raised"
    tracker.client = store
    tracker.end_parent("FINISHED", {}, {}, {})  # the store answers again: the spool is replayed first
    tracker.close()
    assert tracker.guard.spool.pending == 0
    assert [d[0] for d in _datasets(MlflowClient(uri), tracker.parent_id)] == ["steel"]


class _AnswerLost:
    """A real MLflow client whose chosen calls are applied by the store and then fail once, as when a server is
    killed after it committed a request and before it answered."""

    def __init__(self, client, failing: set[str]):
        self._client, self.failing = client, failing

    def __getattr__(self, name):
        call = getattr(self._client, name)
        if name not in self.failing:
            return call

        def applied_then_lost(*args, **kwargs):
            call(*args, **kwargs)
            self.failing.discard(name)
            raise ConnectionError(f"{name}: connection reset before the answer")

        return applied_then_lost


def test_a_write_the_store_applied_but_never_answered_is_not_written_twice(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "RETRY_S", (0.0,))
    uri = default_tracking_uri(tmp_path)
    tracker = StudyTracker(uri, "lost-answers", tmp_path / "artifacts")
    tracker.start_parent("study", {}, {"tuner.run_dir": "run-a"})
    tracker.flush()
    tracker.client = _AnswerLost(tracker.client, {"create_run"})
    tracker.start_child("t1", "trial-001", {"x": 1}, {})
    tracker.log_epoch("t1", {"val_loss": 0.5}, step=1)
    tracker.flush()
    tracker.client.failing.add("log_batch")
    tracker.log_epoch("t1", {"val_loss": 0.4}, step=2)
    tracker.log_epoch("t1", {"val_loss": 0.3}, step=3)
    tracker.end_child("t1", "completed", {}, {})
    tracker.close()

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("lost-answers")
    children = client.search_runs([experiment.experiment_id], f"tags.{PARENT_RUN_TAG} = '{tracker.parent_id}'")
    assert [c.info.run_id for c in children] == [tracker.child_run_id("t1")]  # one run, not two
    history = client.get_metric_history(tracker.child_run_id("t1"), "val_loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.5), (2, 0.4), (3, 0.3)]  # each epoch once
    assert not tracker.guard.spool.pending
