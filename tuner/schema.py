"""The names a study writes: trial statuses, run statuses and every MLflow tag key, declared once.

Everything else imports these names; a tag or a status spelled anywhere else is a bug waiting to happen. The
trial's own end reasons (completed, early_stopped, diverged, failed) are spelled by the trainables that report
them (``trainables.reporting``, which must not import tuner); the statuses only the driver knows are added here.
"""

from __future__ import annotations

from enum import StrEnum

from trainables import reporting


class TrialStatus(StrEnum):
    """A trial's status in the study's ledger, ``progress.json``, ``trials.csv`` and the MLflow tag
    ``tuner.trial_status``. Being a ``str``, a status compares equal to its text and is written as it."""

    RUNNING = "running"
    COMPLETED = reporting.COMPLETED
    """Ran every epoch of its budget."""
    EARLY_STOPPED = reporting.EARLY_STOPPED
    """Stopped by its own early-stopping rule."""
    PRUNED = "pruned"
    """Stopped by the scheduler (ASHA, median stopping)."""
    DIVERGED = reporting.DIVERGED
    """A loss or metric became NaN or infinite."""
    FAILED = reporting.FAILED
    """Its code raised, or its worker was lost more often than the retries allow."""
    STOPPED = "stopped"
    """Cut by the time budget or an interrupt before it ended on its own."""
    LOST = "lost"
    """Only in MLflow: the run of a trial a killed driver started after its last snapshot (deleted on resume)."""


ENDED = (
    TrialStatus.COMPLETED,
    TrialStatus.EARLY_STOPPED,
    TrialStatus.PRUNED,
    TrialStatus.DIVERGED,
    TrialStatus.FAILED,
    TrialStatus.STOPPED,
)
"""The statuses of a trial that ended, in the order tallies print them."""
ENDED_ON_ITS_OWN = (TrialStatus.COMPLETED, TrialStatus.EARLY_STOPPED)
"""Trials that ended on their own: their score is final (a pruned or stopped trial's covers fewer epochs)."""

MLFLOW_RUNNING = "RUNNING"
MLFLOW_FINISHED = "FINISHED"
MLFLOW_FAILED = "FAILED"
MLFLOW_KILLED = "KILLED"
"""MLflow's own run statuses (``mlflow.entities.RunStatus``'s names) that tuner writes."""

MLFLOW_STATUS = {
    TrialStatus.COMPLETED: MLFLOW_FINISHED,
    TrialStatus.EARLY_STOPPED: MLFLOW_FINISHED,
    TrialStatus.PRUNED: MLFLOW_FINISHED,
    TrialStatus.STOPPED: MLFLOW_FINISHED,
    TrialStatus.DIVERGED: MLFLOW_FAILED,
    TrialStatus.FAILED: MLFLOW_FAILED,
    TrialStatus.LOST: MLFLOW_KILLED,
}
"""MLflow's run status for each ended trial status (the precise end is the ``tuner.trial_status`` tag). A pruned,
early-stopped or budget-stopped trial ended as the study meant it to: FINISHED, not a red cross in the UI beside
the crashes; only a trial whose code raised or whose numbers blew up is FAILED."""

MLFLOW_ENDED = frozenset(MLFLOW_STATUS.values())
"""MLflow run statuses of a run that has ended."""


class RunStatus(StrEnum):
    """A study's status in its ``run.json``."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


# --- MLflow tags: MLflow's own ---
PARENT_RUN_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""On each space's experiment: MLflow 3's UI opens an experiment without it on its GenAI (traces) page."""
EXPERIMENT_KIND = "custom_model_development"
"""The kind of a space's experiment: model training (MLflow's value for it)."""
SOURCE_NAME_TAG = "mlflow.source.name"
"""On every run: what made it (the UI's Source column)."""
SOURCE_TYPE_TAG = "mlflow.source.type"
SOURCE_TYPE = "LOCAL"
USER_TAG = "mlflow.user"
"""On every run: who ran the study (the UI's User column)."""
SOURCE_GIT_COMMIT_TAG = "mlflow.source.git.commit"
DATASET_CONTEXT_TAG = "mlflow.data.context"
"""On a run's dataset input: what the run used it for."""
DATASET_CONTEXT = "training"

# --- tags of a dataset input (parent and child runs) ---
DATASET_SYNTHETIC_TAG = "tuner.synthetic"
"""``true`` when the dataset was generated (figures not comparable to a report's)."""

# --- tags of a study's parent run ---
SPACE_TAG = "tuner.space"
"""On the parent and every child run: the space's name."""
REPORT_TAG = "tuner.report"
RUN_DIR_TAG = "tuner.run_dir"
"""The study's results folder: how ``tuner resume`` finds its parent run."""
ERROR_TAG = "tuner.error"
SEARCHER_TAG = "searcher"
SCHEDULER_TAG = "scheduler"
SEED_TAG = "seed"
GIT_COMMIT_TAG = "git_commit"
DATA_FINGERPRINT_TAG = "data_fingerprint"
DATA_SYNTHETIC_TAG = "data_synthetic"
DATA_SOURCE_TAG = "data_source"
MODE_TAG = "mode"
"""``search``, or ``fixed-config`` for ``run --config``."""
CHOSEN_TRIAL_TAG = "tuner.chosen_trial"
"""On the parent run: the number of the search trial whose config the study chose (``tuner.chosen_run_id``: its
child run; ``chosen.<param>``: its config, tags because a later ``verify`` or ``extend`` may choose another)."""
CHOSEN_RUN_TAG = "tuner.chosen_run_id"
CHOSEN_PARAM_PREFIX = "chosen."
NOTE_TAG = "mlflow.note.content"
"""A run's description (markdown), shown at the top of its page: the parent's says what was chosen and why."""

# --- tags of a trial's child run ---
CHOSEN_TAG = "tuner.chosen"
"""``true`` on the child run of the chosen trial, ``false`` on one an earlier export chose."""
TRIAL_ID_TAG = "tuner.trial_id"
TRIAL_STATUS_TAG = "tuner.trial_status"
END_MESSAGE_TAG = "tuner.end_message"
TRACEBACK_TAG = "tuner.traceback"
NODE_IP_TAG = "tuner.node_ip"
HOSTNAME_TAG = "tuner.hostname"
NODE_ID_TAG = "tuner.node_id"
RESTARTS_TAG = "tuner.restarts"
RESUMED_FROM_TAG = "tuner.resumed_from_epoch"
PHASE_TAG = "tuner.phase"
"""The study phase that ran the trial: ``search``, ``verify`` (a top config re-trained with a fresh seed) or
``baseline`` (the report's published config)."""
SEARCH_PHASE = "search"
VERIFY_PHASE = "verify"
BASELINE_PHASE = "baseline"
SEARCH_TRIAL_TAG = "tuner.search_trial"
"""On a verify or baseline run: the number of the search trial whose config it trains again (absent when no search
trial had that config)."""
TRIAL_SEED_TAG = "tuner.seed"
"""The seed the trial trained with (the study's, or a verify trial's fresh one)."""

__all__ = [name for name in dir() if name.isupper() or name in ("TrialStatus", "RunStatus")]
