"""MLflow: one experiment per space, one parent run per study, one nested child run per trial.

Only the driver writes, and it writes from ONE background thread fed by a queue: SQLite allows one writer at a
time ("database is locked" under concurrency), and a slow store must not stall Ray Tune's event loop. ``close``
drains the queue, so no write is lost; the first write error is raised there rather than swallowed.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Any

# MLflow 3 reports usage to its developers from a background thread unless told not to; like Ray's usage stats,
# tuner leaves it off unless the user turns it on (MLFLOW_DISABLE_TELEMETRY=false).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

TRIAL_STATUS_TAG = "tuner.trial_status"
RUN_DIR_TAG = "tuner.run_dir"
SPACE_TAG = "tuner.space"
MLFLOW_STATUS = {
    "completed": "FINISHED",
    "early_stopped": "FINISHED",
    "pruned": "KILLED",
    "stopped": "KILLED",
    "diverged": "FAILED",
    "failed": "FAILED",
}


def default_tracking_uri(results_dir: Path) -> str:
    return f"sqlite:///{(results_dir / 'mlflow.db').resolve()}"


def cache_dir() -> Path:
    """Per-user cache of things that are expensive to make and never change (``TUNER_CACHE_DIR`` to move it)."""
    env = os.environ.get("TUNER_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tuner"


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI (None for other stores)."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix) :]) if tracking_uri.startswith(prefix) else None


def _empty_store_template(version: str) -> Path | None:
    """An empty MLflow SQLite store with every table, made once per MLflow version: creating a store runs MLflow's
    migrations, ~2 s of CPU that would compete with a study's first trials. None when the cache is unwritable."""
    template = cache_dir() / f"mlflow-{version}-empty.db"
    if template.exists():
        return template
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=template.parent) as tmp:
            from mlflow.tracking import MlflowClient

            partial = Path(tmp) / template.name
            MlflowClient(tracking_uri=f"sqlite:///{partial}").get_experiment("0")  # runs the migrations
            os.replace(partial, template)  # atomic: a concurrent maker's identical file may win
    except OSError:
        return None
    return template


def create_sqlite_store(path: Path) -> bool:
    """Create the SQLite store ``path`` as a copy of the cached empty store; False when it already exists or no
    template could be made (MLflow then creates it). Atomic: a concurrent study never sees a half-copied file."""
    import mlflow

    if path.exists():
        return False
    template = _empty_store_template(mlflow.__version__)
    if template is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(template, partial)
        with sqlite3.connect(partial) as db:  # the Default experiment as MLflow would have made it here and now
            now = _now_ms()
            db.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, last_update_time = ? "
                "WHERE experiment_id = 0",
                (str(Path.cwd() / "mlruns" / "0"), now, now),
            )
        db.close()
        os.link(partial, path)  # fails if another study created the store meanwhile: that one is kept
        return True
    except OSError:  # created meanwhile, or no hard links here: MLflow creates or opens the store itself
        return False
    finally:
        partial.unlink(missing_ok=True)


def ui_command(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri} --port 5000   (then open http://127.0.0.1:5000)"


def _param_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)


class StudyTracker:
    """Writes one study to MLflow through a single writer thread."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Path | None = None):
        self.tracking_uri = tracking_uri
        self.client = None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self._children: dict[str, str] = {}
        self._child_status: dict[str, str] = {}
        self._logged_through: dict[str, int] = {}
        """trial id -> the highest epoch (step) in its run's history: a trial continued from a checkpoint reports
        again the epochs between its checkpoint and its interruption; they are logged once, not twice."""
        self.lost = 0
        """Child runs a resume closed and deleted (trials started after the study's last snapshot)."""
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="mlflow-writer", daemon=True)
        self._thread.start()
        # Importing mlflow and creating a fresh SQLite store take seconds: they run on the writer thread while
        # Ray Tune starts the first trials.
        self._queue.put((self._open, (experiment, artifact_root)))

    @property
    def error(self) -> BaseException | None:
        return self._error

    def start_parent(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        self._queue.put((self._start_parent, (run_name, params, tags)))

    def _open(self, experiment: str, artifact_root: Path | None) -> None:
        import logging

        from mlflow.tracking import MlflowClient

        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Creating initial tables..."

        store_file = sqlite_path(self.tracking_uri)
        if store_file is not None:
            create_sqlite_store(store_file)
        self.client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            location = (artifact_root / experiment).resolve().as_uri() if artifact_root else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location)
        else:
            self.experiment_id = found.experiment_id

    def _start_parent(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        self.parent_id = run.info.run_id
        self._log_params(self.parent_id, params)

    def resume_parent(self, run_dir: str) -> None:
        """Continue the parent run of the study kept in ``run_dir`` (tag ``tuner.run_dir``) and its child runs."""
        self._queue.put((self._resume_parent, (run_dir,)))

    @property
    def children(self) -> dict[str, str]:
        """trial id -> child run id, of the runs this tracker created or found."""
        return dict(self._children)

    def _resume_parent(self, run_dir: str) -> None:
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{RUN_DIR_TAG}` = '{run_dir}'", max_results=100
        )
        parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
        if len(parents) != 1:
            raise RuntimeError(f"expected one parent run tagged {RUN_DIR_TAG}={run_dir}, found {len(parents)}")
        self.parent_id = parents[0].info.run_id
        self.client.update_run(self.parent_id, status="RUNNING")
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], f"tags.mlflow.parentRunId = '{self.parent_id}'",
                                           max_results=1000, page_token=token)  # fmt: skip
            for run in page:
                trial_id = run.data.tags.get("tuner.trial_id")
                if trial_id:
                    self._children[trial_id] = run.info.run_id
                    self._child_status[trial_id] = run.info.status
            token = page.token
            if not token:
                break

    def reconcile(self, known: dict[str, bool], starts: dict[str, tuple[str, dict, dict]]) -> None:
        """After a resume: ``known`` maps the trials the study's snapshot holds to whether they finished. A child
        run of a trial the snapshot does not hold (started after it, so Tune runs that trial anew) is closed as
        ``lost`` and deleted, so each trial keeps exactly one run; a known trial without a run gets one
        (``starts[trial_id]``: its run name, params and tags); unfinished trials' runs are reopened."""
        self._queue.put((self._reconcile, (known, starts)))

    def _reconcile(self, known: dict[str, bool], starts: dict[str, tuple[str, dict, dict]]) -> None:
        from mlflow.entities import RunTag

        for trial_id, run_id in list(self._children.items()):
            if trial_id in known:
                if not known[trial_id]:
                    self._logged_through[trial_id] = self._last_step(run_id)
                    if self._child_status.get(trial_id) != "RUNNING":
                        self.client.update_run(run_id, status="RUNNING")  # it runs again: its end is written anew
                        self._child_status[trial_id] = "RUNNING"
                continue
            self.client.log_batch(
                run_id,
                tags=[
                    RunTag(TRIAL_STATUS_TAG, "lost"),
                    RunTag(
                        "tuner.end_message",
                        "its driver stopped before the study recorded this trial; run again on resume",
                    ),
                ],
            )
            self.client.set_terminated(run_id, "KILLED")
            self.client.delete_run(run_id)
            del self._children[trial_id]
            self._child_status.pop(trial_id, None)  # the trial runs again under a new run: nothing of this one holds
            self._logged_through.pop(trial_id, None)
            self.lost += 1
        for trial_id in known:
            if trial_id not in self._children:
                self._start_child(trial_id, *starts[trial_id])

    # --- child runs (queued) ---
    def start_child(self, trial_id: str, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        self._queue.put((self._start_child, (trial_id, run_name, params, tags)))

    def log_epoch(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        self._queue.put((self._log_metrics, (trial_id, metrics, step)))

    def end_child(self, trial_id: str, status: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        self._queue.put((self._end_child, (trial_id, status, metrics, tags)))

    def child_run_id(self, trial_id: str) -> str | None:
        return self._children.get(trial_id)

    def end_parent(
        self, status: str, metrics: dict[str, float], tags: dict[str, str], artifacts: dict[str, Any]
    ) -> None:
        """Drain every queued trial write, then close the parent with its summary and artifacts."""
        self.flush()
        from mlflow.entities import Metric, RunTag

        now = _now_ms()
        self.client.log_batch(
            self.parent_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        with tempfile.TemporaryDirectory() as tmp:
            for name, payload in artifacts.items():
                path = Path(tmp) / name
                path.write_text(payload if isinstance(payload, str) else json.dumps(payload, indent=2))
                self.client.log_artifact(self.parent_id, str(path))
        self.client.set_terminated(self.parent_id, status)

    def fail_parent(self, status: str, message: str) -> None:
        """Close the parent run as failed or killed, with the error (after the queued writes; best effort)."""
        self._queue.put((self._fail_parent, (status, message)))

    def _fail_parent(self, status: str, message: str) -> None:
        if self.parent_id is not None:
            self.client.set_tag(self.parent_id, "tuner.error", message[:5000])
            self.client.set_terminated(self.parent_id, status)

    def flush(self) -> None:
        self._queue.join()
        if self._error is not None:
            raise RuntimeError(f"an MLflow write failed: {self._error}") from self._error

    def close(self, raise_errors: bool = True) -> None:
        self._queue.join()
        self._queue.put(None)
        self._thread.join(timeout=10)
        if raise_errors and self._error is not None:
            raise RuntimeError(f"an MLflow write failed: {self._error}") from self._error

    # --- writer thread ---
    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                fn, args = item
                if self._error is None or fn == self._fail_parent:  # after a failed write, only the closing one
                    fn(*args)
            except BaseException as exc:  # kept and raised by flush(): a lost write must not pass silently
                self._error = exc
            finally:
                self._queue.task_done()

    def _start_child(self, trial_id: str, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        all_tags = {"mlflow.parentRunId": self.parent_id, "tuner.trial_id": trial_id, **tags}
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
        self._children[trial_id] = run.info.run_id
        self._child_status[trial_id] = "RUNNING"
        self._log_params(run.info.run_id, params)

    def _last_step(self, run_id: str) -> int:
        run = self.client.get_run(run_id)
        steps = (m.step for key in run.data.metrics for m in self.client.get_metric_history(run_id, key))
        return max(steps, default=-1)

    def _log_metrics(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        if step <= self._logged_through.get(trial_id, -1):
            return  # a continued trial's repeat of an epoch its history holds (see _logged_through)
        self._logged_through[trial_id] = step
        now = _now_ms()
        rows = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        if rows:
            self.client.log_batch(self._children[trial_id], metrics=rows)

    def _end_child(self, trial_id: str, status: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = self._children[trial_id]
        if self._child_status.get(trial_id) in ("FINISHED", "KILLED", "FAILED"):
            return  # ended before a resume found it: its record is complete
        now = _now_ms()
        self.client.log_batch(  # one transaction for the final metrics and tags (SQLite writes are the cost)
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
            tags=[RunTag(TRIAL_STATUS_TAG, status)] + [RunTag(k, v) for k, v in tags.items()],
        )
        self.client.set_terminated(run_id, MLFLOW_STATUS[status])
        self._child_status[trial_id] = MLFLOW_STATUS[status]

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _param_value(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
