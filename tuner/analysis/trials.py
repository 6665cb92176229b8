"""A finished study's search trials, read back from its results folder (and, for learning curves, from MLflow).

What each source holds:

- ``progress.json`` (tuner's own): every search trial's number, status, score, epochs and active config;
- Ray Tune's newest ``experiment_state-*.json`` in the study's storage: each trial's start and last-result wall
  times and its last result (Tune's state format; read defensively, a study without it has no times);
- the MLflow child runs (``tuner.phase=search``): the per-epoch history of the metric (tuner writes no per-epoch
  files: Tune's result.json loggers are off), read only when the store answers.

A missing optional source leaves its fields empty and says why in ``StudyTrials.notes``; nothing here fails on it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.metrics import GPU_PEAK_MEM_MB
from tuner.errors import TunerError, first_line
from tuner.internals.tune_files import newest_experiment_state, trial_runs
from tuner.run_files import PROGRESS_FILE, RUN_FILE, read_json
from tuner.schema import ENDED_ON_ITS_OWN, PARENT_RUN_TAG, PHASE_TAG, SEARCH_PHASE, TRIAL_ID_TAG, TrialStatus
from tuner.storage import SEARCH_EXPERIMENT


@dataclass
class TrialRecord:
    number: int
    trial_id: str
    status: str
    score: float | None
    epochs: int
    config: dict[str, Any]
    start_s: float | None = None
    """Seconds from the study's start to the trial's start (None: Tune's state was not readable)."""
    end_s: float | None = None
    history: dict[int, float] = field(default_factory=dict)
    """epoch -> the searched metric that epoch (empty: MLflow did not answer)."""
    gpu_peak_mb: float | None = None


@dataclass
class StudyTrials:
    space: str
    run: str
    metric: str
    mode: str
    trials: list[TrialRecord]
    notes: list[str] = field(default_factory=list)
    """What could not be read, and why."""

    def scored(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.score is not None]

    def final(self) -> list[TrialRecord]:
        """Trials with a final score: the ones importance and slices are computed on."""
        return [t for t in self.scored() if t.status in ENDED_ON_ITS_OWN]

    def better(self, a: float, b: float) -> bool:
        return a > b if self.mode == "max" else a < b

    def best_so_far(self) -> list[tuple[TrialRecord, float]]:
        """(trial, best score so far) in the order the trials ended (their number where no times are known)."""
        timed = all(t.end_s is not None for t in self.scored())
        ordered = sorted(self.scored(), key=lambda t: (t.end_s if timed else t.number, t.number))
        best, rows = None, []
        for trial in ordered:
            if best is None or self.better(trial.score, best):
                best = trial.score
            rows.append((trial, best))
        return rows

    @property
    def timed(self) -> bool:
        return bool(self.scored()) and all(t.end_s is not None for t in self.scored())


def load_trials(
    run_dir: Path, study_root: str | None = None, tracking_uri: str | None = None, parent_id: str | None = None
) -> StudyTrials:
    """The search trials of the study in ``run_dir``. ``study_root``: where Ray Tune kept its state (default the
    run folder); ``tracking_uri``: the MLflow store to read the learning curves from (None: not read);
    ``parent_id``: the study's parent run (default: the one its finished run record names)."""
    info = read_json(run_dir / RUN_FILE, "run record")
    progress = read_json(run_dir / PROGRESS_FILE, "the study's trials")
    trials = [
        TrialRecord(
            int(t["trial"]),
            t["trial_id"],
            t["status"],
            t.get("score"),
            int(t.get("epochs") or 0),
            dict(t.get("config") or {}),
        )
        for t in progress.get("trials", [])
        if t.get("status") != TrialStatus.RUNNING
    ]
    if not trials:
        raise TunerError(f"{run_dir / PROGRESS_FILE} holds no ended trial; nothing to analyse")
    study = StudyTrials(
        info.get("space", run_dir.parent.name),
        run_dir.name,
        progress["metric"],
        progress["mode"],
        sorted(trials, key=lambda t: t.number),
    )
    _add_times(study, Path(study_root or run_dir) / SEARCH_EXPERIMENT, _started(info))
    if tracking_uri:
        _add_histories(study, tracking_uri, parent_id or (info.get("mlflow") or {}).get("parent_run_id"))
    else:
        study.notes.append("learning curves: no MLflow store given")
    return study


def _started(info: dict[str, Any]) -> float | None:
    try:
        return dt.datetime.fromisoformat(info["started"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _add_times(study: StudyTrials, experiment: Path, started: float | None) -> None:
    """Each trial's start and end from Tune's newest experiment state (and its GPU peak from its last result)."""
    state = newest_experiment_state(experiment)
    if state is None or started is None:
        study.notes.append(f"wall times: no Ray Tune experiment state in {experiment}")
        return
    try:
        runs = trial_runs(state)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        study.notes.append(f"wall times: {state} could not be read ({first_line(exc)})")
        return
    for trial in study.trials:
        run = runs.get(trial.trial_id) or {}
        if run.get("start_time") and run.get("last_result_time"):
            trial.start_s, trial.end_s = run["start_time"] - started, run["last_result_time"] - started
        peak = (run.get("last_result") or {}).get(GPU_PEAK_MEM_MB)
        trial.gpu_peak_mb = float(peak) if isinstance(peak, int | float) else None


def _add_histories(study: StudyTrials, tracking_uri: str, parent_id: str | None) -> None:
    """The per-epoch metric of every search trial from its MLflow child run; a store that fails is a note."""
    if not parent_id:
        study.notes.append("learning curves: the run record names no MLflow parent run")
        return
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        experiment_id = client.get_run(parent_id).info.experiment_id
        children = client.search_runs([experiment_id], f"tags.`{PARENT_RUN_TAG}` = '{parent_id}'", max_results=5000)
        by_trial = {t.trial_id: t for t in study.trials}
        for run in children:
            trial = by_trial.get(run.data.tags.get(TRIAL_ID_TAG, ""))
            if trial is None or run.data.tags.get(PHASE_TAG, SEARCH_PHASE) != SEARCH_PHASE:
                continue
            trial.history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, study.metric)}
            if GPU_PEAK_MEM_MB in run.data.metrics:
                peaks = client.get_metric_history(run.info.run_id, GPU_PEAK_MEM_MB)
                trial.gpu_peak_mb = max(m.value for m in peaks)
    except Exception as exc:  # an optional source: the rest of the analysis stands without it
        study.notes.append(f"learning curves: the MLflow store {tracking_uri} did not answer ({first_line(exc)})")
