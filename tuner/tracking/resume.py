"""Continuing an earlier study's runs (``tuner resume``, ``tuner extend``, ``tuner sync``): find the study's parent
run and its child runs, reopen what runs again, close the run of a trial that runs anew.

``StudyResume`` is a mixin of ``StudyTracker`` (``tuner.tracking.tracker``): its writes go through the tracker's
writer thread and guard, and it keeps the tracker's maps of trials to runs. The functions below it are calls on
the tracker's client, made from that thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tuner.schema import (
    END_MESSAGE_TAG,
    MLFLOW_RUNNING,
    MLFLOW_STATUS,
    PARENT_RUN_TAG,
    RUN_DIR_TAG,
    TRIAL_ID_TAG,
    TRIAL_STATUS_TAG,
    TrialStatus,
)

_LOST_MESSAGE = "its driver stopped before the study recorded this trial; run again on resume"


class StudyResume:
    """Finding and continuing a study's runs; needs the tracker's ``client``, ``experiment_id``, ``parent_id``, its
    maps of trials to runs (``_children``, ``_child_status``, ``_logged_through``, ``_unsure``), ``_dataset``,
    ``lost``, ``_writer``, ``guard``, ``flush``, ``_start_child`` and ``_log_dataset``."""

    def resume_parent(self, run_dir: str) -> None:
        """Continue the parent run of the study kept in ``run_dir`` (its ``RUN_DIR_TAG``) and its child runs."""
        self._writer.put(self._resume_parent, run_dir)

    def _resume_parent(self, run_dir: str) -> None:
        self.parent_id = find_parent(self.client, self.experiment_id, run_dir)
        self.client.update_run(self.parent_id, status=MLFLOW_RUNNING)
        self._find_children()
        self._unsure.update(self._children)  # as in _find_study: the spool's last writes may have landed
        self.guard.replay()  # what the study's earlier driver could not write, before anything new

    def reconcile(self, known: dict[str, bool], starts: dict[str, tuple[str, dict, dict]]) -> None:
        """After a resume: ``known`` maps the trials the study's snapshot holds to whether they finished. A child
        run of a trial the snapshot does not hold (started after it, so Tune runs that trial anew) is closed as
        ``lost`` and deleted, so each trial keeps exactly one run; a known trial without a run gets one
        (``starts[trial_id]``: its run name, params and tags); unfinished trials' runs are reopened."""
        self._writer.put(self._reconcile, known, starts)

    def _reconcile(self, known: dict[str, bool], starts: dict[str, tuple[str, dict, dict]]) -> None:
        for trial_id, run_id in list(self._children.items()):
            if trial_id in known:
                if not known[trial_id]:
                    self._logged_through[trial_id] = last_step(self.client, run_id)
                    if self._child_status.get(trial_id) != MLFLOW_RUNNING:
                        self.client.update_run(run_id, status=MLFLOW_RUNNING)  # it runs again: its end is written anew
                        self._child_status[trial_id] = MLFLOW_RUNNING
                continue
            close_lost(self.client, run_id)
            del self._children[trial_id]
            self._child_status.pop(trial_id, None)  # the trial runs again under a new run: nothing of this one holds
            self._logged_through.pop(trial_id, None)
            self.lost += 1
        for trial_id in known:
            if trial_id not in self._children:
                self._start_child(trial_id, *starts[trial_id])
                if self._dataset is not None:
                    self._log_dataset(trial_id, self._dataset)

    def sync(self, run_dir: str) -> int:
        """``tuner sync``: find the study's parent and child runs, then replay its spool; the records replayed."""
        pending = self.guard.spool.pending
        self._writer.put(self._find_study, run_dir)
        self._writer.put(self.guard.replay)
        self.flush()
        return pending

    def _find_study(self, run_dir: str) -> None:
        self.parent_id = find_parent(self.client, self.experiment_id, run_dir)
        self._find_children()
        # The spool may end with writes whose answer was lost but which the store applied: look before replaying.
        self._unsure.update(self._children)

    def _find_children(self) -> None:
        for trial_id, run_id, status in child_runs(self.client, self.experiment_id, self.parent_id):
            self._children[trial_id] = run_id
            self._child_status[trial_id] = status


def find_parent(client: Any, experiment_id: str, run_dir: str) -> str:
    """The run id of the parent run of the study kept in ``run_dir`` (its ``RUN_DIR_TAG``)."""
    found = client.search_runs([experiment_id], filter_string=f"tags.`{RUN_DIR_TAG}` = '{run_dir}'", max_results=100)
    parents = [r for r in found if PARENT_RUN_TAG not in r.data.tags]
    if len(parents) != 1:
        raise RuntimeError(f"expected one parent run tagged {RUN_DIR_TAG}={run_dir}, found {len(parents)}")
    return parents[0].info.run_id


def child_runs(client: Any, experiment_id: str, parent_id: str) -> Iterator[tuple[str, str, str]]:
    """(trial id, run id, MLflow run status) of each trial's child run of ``parent_id``, page by page."""
    token = None
    while True:
        page = client.search_runs(
            [experiment_id], f"tags.{PARENT_RUN_TAG} = '{parent_id}'", max_results=1000, page_token=token
        )
        for run in page:
            trial_id = run.data.tags.get(TRIAL_ID_TAG)
            if trial_id:
                yield trial_id, run.info.run_id, run.info.status
        token = page.token
        if not token:
            return


def last_step(client: Any, run_id: str) -> int:
    """The highest step (epoch) in the run's metric history; -1 when it holds none."""
    run = client.get_run(run_id)
    steps = (m.step for key in run.data.metrics for m in client.get_metric_history(run_id, key))
    return max(steps, default=-1)


def close_lost(client: Any, run_id: str) -> None:
    """Close the run as ``lost`` and delete it: its trial runs again under a new run, so each trial keeps exactly
    one run."""
    from mlflow.entities import RunTag

    lost = TrialStatus.LOST
    client.log_batch(run_id, tags=[RunTag(TRIAL_STATUS_TAG, str(lost)), RunTag(END_MESSAGE_TAG, _LOST_MESSAGE)])
    client.set_terminated(run_id, MLFLOW_STATUS[lost])
    client.delete_run(run_id)
