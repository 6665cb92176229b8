"""What ``tuner resume`` reads and closes in MLflow: the study's parent run, its child runs, how far a run's history
goes, and the run of a trial that runs anew.

Functions of the tracker's client, called from its writer thread; the tracker keeps its own maps of trials to runs
and decides with them (``StudyTracker.reconcile``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tuner.schema import (
    END_MESSAGE_TAG,
    MLFLOW_STATUS,
    PARENT_RUN_TAG,
    RUN_DIR_TAG,
    TRIAL_ID_TAG,
    TRIAL_STATUS_TAG,
    TrialStatus,
)

_LOST_MESSAGE = "its driver stopped before the study recorded this trial; run again on resume"


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
        page = client.search_runs([experiment_id], f"tags.{PARENT_RUN_TAG} = '{parent_id}'",
                                  max_results=1000, page_token=token)  # fmt: skip
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
