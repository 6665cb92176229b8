"""MLflow writes from concurrent trials go through one writer and none is lost (real SQLite store)."""

from __future__ import annotations

import threading

from mlflow.tracking import MlflowClient

from tuner.tracking import TRIAL_STATUS_TAG, StudyTracker, default_tracking_uri


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


def test_a_failing_store_is_reported_not_swallowed(tmp_path):
    tracker = StudyTracker(default_tracking_uri(tmp_path), "broken")
    tracker.log_epoch("never-started", {"val_loss": 1.0}, step=1)  # no such child run: the write fails
    try:
        tracker.flush()
    except RuntimeError as exc:
        assert "MLflow write failed" in str(exc)
    else:
        raise AssertionError("a failed MLflow write passed silently")
