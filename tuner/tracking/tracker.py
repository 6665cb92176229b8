"""``StudyTracker``: one experiment per space, one parent run per study, one nested child run per trial.

Every write is queued to one ``SerialWriter`` thread (see ``tuner.tracking``). The trials' writes and the parent's
closing ones never fail the study: when the store stops answering they are retried, then spooled to the run folder
and replayed when it answers again (``tuner.tracking.spool``). Opening the store and the parent run do fail it:
they happen before any trial runs, after the store was checked (``tuner.tracking.check``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

from tuner.schema import (
    ERROR_TAG,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    MLFLOW_ENDED,
    MLFLOW_RUNNING,
    MLFLOW_STATUS,
    PARENT_RUN_TAG,
    TRIAL_ID_TAG,
    TRIAL_STATUS_TAG,
)
from tuner.tracking.outputs import StudyOutputs
from tuner.tracking.resume import StudyResume, last_step
from tuner.tracking.spool import GuardedWrites, Spool
from tuner.tracking.store import now_ms, open_client
from tuner.tracking.writer import SerialWriter

_ENDING = "ENDING"
"""A child run whose final metrics and tags are written and whose status is not yet."""


def _param_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)


class StudyTracker(StudyResume, StudyOutputs):
    """Writes one study to MLflow through a single writer thread (what a study logs besides its runs and
    trials: ``tuner.tracking.outputs``; how it finds and continues an earlier study's runs:
    ``tuner.tracking.resume``)."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        artifact_root: Path | None = None,
        spool: Path | None = None,
        run_tags: dict[str, str] | None = None,
    ):
        self.tracking_uri = tracking_uri
        self.run_tags = dict(run_tags or {})
        """Tags of every run this tracker makes, the parent and each child (MLflow's source and user)."""
        self.guard = GuardedWrites(self, Spool(spool))
        """Runs the trial and closing writes: retried, then spooled when the store fails (``tuner.tracking.spool``)."""
        self._parent_ending: str | None = None
        """The parent run whose final metrics and tags are written (its artifacts and status may not be yet)."""
        self.client = None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self._children: dict[str, str] = {}
        self._child_status: dict[str, str] = {}
        self._logged_through: dict[str, int] = {}
        """trial id -> the highest epoch (step) in its run's history: a trial continued from a checkpoint reports
        again the epochs between its checkpoint and its interruption; they are logged once, not twice."""
        self._unsure: set[str] = set()
        """Trials whose latest run creation or metric write failed as seen from here: the store may have applied it
        before its answer was lost (a server killed mid-request). The next attempt looks before it writes again."""
        self.lost = 0
        """Child runs a resume closed and deleted (trials started after the study's last snapshot)."""
        self._dataset: dict[str, Any] | None = None
        """The study's data (``tuner.tracking.inputs.dataset_record``): an input of the parent and every child run."""
        self.model: dict[str, Any] | None = None
        """The logged model's URI and registered version, once ``log_model``'s write went through."""
        self._writer = SerialWriter("mlflow-writer", failure="an MLflow write failed")
        # Importing mlflow and creating a fresh SQLite store take seconds: they run on the writer thread while
        # Ray Tune starts the first trials.
        self._writer.put(self._open, experiment, artifact_root)

    @property
    def error(self) -> BaseException | None:
        return self._writer.error

    def _open(self, experiment: str, artifact_root: Path | None) -> None:
        self.client = open_client(self.tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        kind = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        if found is None:
            location = (artifact_root / experiment).resolve().as_uri() if artifact_root else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=location, tags=kind)
        else:
            self.experiment_id = found.experiment_id
            if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # made before tuner tagged its experiments
                self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)

    # --- the parent run ---
    def start_parent(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        self._writer.put(self._start_parent, run_name, params, tags)

    def _start_parent(self, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags={**self.run_tags, **tags})
        self.parent_id = run.info.run_id
        self._log_params(self.parent_id, params)

    def end_parent(
        self, status: str, metrics: dict[str, float], tags: dict[str, str], artifacts: dict[str, Any]
    ) -> None:
        """After every queued trial write, close the parent with its summary and artifacts (spooled with the rest
        when the store does not answer)."""
        self._writer.put(self.guard.run, "_end_parent", status, metrics, tags, artifacts)
        self.flush()

    def _end_parent(self, status: str, metrics: dict[str, Any], tags: dict[str, str], artifacts: dict[str, Any]):
        from mlflow.entities import Metric, RunTag

        # Each step once, even when the write is replayed after failing half-way (artifacts overwrite themselves).
        if self._parent_ending != self.parent_id:
            now = now_ms()
            self.client.log_batch(
                self.parent_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
                tags=[RunTag(k, str(v)) for k, v in tags.items()],
            )
            self._parent_ending = self.parent_id
        with tempfile.TemporaryDirectory() as tmp:
            for name, payload in artifacts.items():
                path = Path(tmp) / name
                path.write_text(payload if isinstance(payload, str) else json.dumps(payload, indent=2))
                self.client.log_artifact(self.parent_id, str(path))
        self.client.set_terminated(self.parent_id, status)

    def fail_parent(self, status: str, message: str) -> None:
        """Close the parent run as failed or killed, with the error (after the queued writes; best effort)."""
        self._writer.put_closing(self.guard.run, "_fail_parent", status, message)

    def _fail_parent(self, status: str, message: str) -> None:
        if self.parent_id is not None:
            self.client.set_tag(self.parent_id, ERROR_TAG, message[:5000])
            self.client.set_terminated(self.parent_id, status)

    # --- child runs (queued) ---
    @property
    def children(self) -> dict[str, str]:
        """trial id -> child run id, of the runs this tracker created or found."""
        return dict(self._children)

    def child_run_id(self, trial_id: str) -> str | None:
        return self._children.get(trial_id)

    def start_child(self, trial_id: str, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        self._writer.put(self.guard.run, "_start_child", trial_id, run_name, params, tags)
        if self._dataset is not None:
            self._writer.put(self.guard.run, "_log_dataset", trial_id, self._dataset)

    def log_epoch(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        self._writer.put(self.guard.run, "_log_metrics", trial_id, metrics, step)

    def end_child(self, trial_id: str, status: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        self._writer.put(self.guard.run, "_end_child", trial_id, status, metrics, tags)

    def _start_child(self, trial_id: str, run_name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        # Each step once, even when the write is replayed after failing half-way (the run made, its params not).
        if trial_id in self._unsure:
            self._find_children()  # a run made by the failed attempt is this trial's run
        if trial_id not in self._children:
            all_tags = {**self.run_tags, PARENT_RUN_TAG: self.parent_id, TRIAL_ID_TAG: trial_id, **tags}
            with self._unsure_on_failure(trial_id):
                run = self.client.create_run(self.experiment_id, run_name=run_name, tags=all_tags)
            self._children[trial_id] = run.info.run_id
            self._child_status[trial_id] = MLFLOW_RUNNING
        self._unsure.discard(trial_id)
        self._log_params(self._children[trial_id], params)  # the same values again are accepted

    def _log_metrics(self, trial_id: str, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        run_id = self._children[trial_id]
        if trial_id in self._unsure:  # what the failed attempt may have written (one batch: all of it or none)
            self._logged_through[trial_id] = max(self._logged_through.get(trial_id, -1), last_step(self.client, run_id))
            self._unsure.discard(trial_id)
        if step <= self._logged_through.get(trial_id, -1):
            return  # a continued trial's repeat of an epoch its history holds (see _logged_through)
        now = now_ms()
        rows = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        if rows:
            with self._unsure_on_failure(trial_id):
                self.client.log_batch(run_id, metrics=rows)
        self._logged_through[trial_id] = step

    @contextlib.contextmanager
    def _unsure_on_failure(self, trial_id: str):
        try:
            yield
        except Exception:
            self._unsure.add(trial_id)
            raise

    def _end_child(self, trial_id: str, status: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = self._children[trial_id]
        if self._child_status.get(trial_id) in MLFLOW_ENDED:
            return  # ended before a resume found it: its record is complete
        if self._child_status.get(trial_id) != _ENDING:  # a replay after the batch went through: only the end
            now = now_ms()
            self.client.log_batch(  # one transaction for the final metrics and tags (SQLite writes are the cost)
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None],
                tags=[RunTag(TRIAL_STATUS_TAG, status)] + [RunTag(k, v) for k, v in tags.items()],
            )
            self._child_status[trial_id] = _ENDING
        self.client.set_terminated(run_id, MLFLOW_STATUS[status])
        self._child_status[trial_id] = MLFLOW_STATUS[status]

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, _param_value(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    # --- the writer ---
    def flush(self) -> None:
        self._writer.flush()

    def close(self, raise_errors: bool = True) -> None:
        self._writer.close(raise_errors)
